//! `[tls]`: the certificate, key and client CA that the TLS listeners (`[syslog] tls`, `[otlp] tls`)
//! share. The files themselves are read when the daemon starts, on SIGHUP and by `validate`
//! ([`super::load`]); here only the keys are checked.

use super::{MinVersion, TlsSettings};
use crate::settings::{Problems, Section};
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// The TLS material and client authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server certificate first.
    pub cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    pub key: Option<PathBuf>,
    /// PEM CA certificate(s): when set, clients must present a certificate they issued (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Accepted client names (subject CN or SAN); empty accepts any certificate `client_ca` issued.
    pub client_names: Vec<String>,
    /// `"1.2"` (the default) or `"1.3"`.
    #[serde(deserialize_with = "min_version")]
    pub min_version: MinVersion,
}

fn min_version<'de, D: Deserializer<'de>>(d: D) -> Result<MinVersion, D::Error> {
    let s = String::deserialize(d)?;
    MinVersion::parse(&s).map_err(serde::de::Error::custom)
}

impl TlsConfig {
    /// The settings to load, when cert and key are both set.
    pub fn settings(&self) -> Option<TlsSettings> {
        Some(TlsSettings {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            client_ca: self.client_ca.clone(),
            client_names: self.client_names.clone(),
            min_version: self.min_version,
        })
    }
}

impl Section for TlsConfig {
    const NAME: &'static str = "tls";

    fn check(&self, p: &mut Problems<'_>) {
        match (&self.cert, &self.key) {
            (Some(_), None) => p.key("key", "tls.cert is set but tls.key is not"),
            (None, Some(_)) => p.key("cert", "tls.key is set but tls.cert is not"),
            _ => {}
        }
        for (key, path) in [
            ("cert", &self.cert),
            ("key", &self.key),
            ("client_ca", &self.client_ca),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                p.key(
                    key,
                    "must be a file path (leave the key out instead of \"\")",
                );
            }
        }
        if !self.client_names.is_empty() && self.client_ca.is_none() {
            p.key(
                "client_names",
                "needs tls.client_ca (names are checked on verified client certificates)",
            );
        }
        if self.client_names.iter().any(|n| n.trim().is_empty()) {
            p.key("client_names", "an empty name matches nothing");
        }
    }
}
