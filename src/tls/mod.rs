//! TLS for the listeners (syslog over TLS, OTLP gRPC and HTTP): the `[tls]` material (certificate
//! chain, key, optional client CA for mTLS, accepted client names, minimum version) loaded into a
//! rustls `ServerConfig` with the ring provider, and replaced on SIGHUP (see [`reload`]).
//! Every error names the config key whose file is at fault, so `validate` and a reload can say so.

pub mod config;
pub mod incoming;
pub mod names;
pub mod reload;

pub use incoming::{Handshaker, TlsIncoming};
pub use reload::TlsHandle;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default: what rsyslog, syslog-ng and older SDKs still speak).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinVersion {
    /// Parses `"1.2"` or `"1.3"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            other => Err(format!(
                "unknown TLS version {other:?} (use \"1.2\" or \"1.3\")"
            )),
        }
    }
}

/// Where the TLS material is and what client certificates are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    pub key: PathBuf,
    /// PEM CA certificates: when set, clients must present a certificate issued by one of them.
    pub client_ca: Option<PathBuf>,
    /// When not empty (and `client_ca` is set), a client certificate must name one of these in its
    /// subject CN or a SAN (DNS name or IP address).
    pub client_names: Vec<String>,
    /// Lowest protocol version.
    pub min_version: MinVersion,
}

/// Why the TLS material could not be loaded; `key` is the config key (e.g. `tls.cert`).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {path}: {reason}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls.key: {path} does not match the certificate in tls.cert ({cert}): {reason}")]
    Mismatch {
        path: PathBuf,
        cert: PathBuf,
        reason: String,
    },
    #[error("tls.client_ca: {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
}

impl TlsError {
    /// The config key the error belongs to.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::Pem { key, .. } => key,
            TlsError::Mismatch { .. } => "tls.key",
            TlsError::ClientCa { .. } => "tls.client_ca",
        }
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// All certificates in a PEM file (at least one).
pub fn load_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_path_buf(),
            reason: format!("unreadable PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            key,
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block in the file".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("tls.key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        key: "tls.key",
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block in the file".to_string()
            }
            e => format!("unreadable PEM: {e}"),
        },
    })
}

/// The ring provider, which every TLS part of the daemon uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the files and builds the server configuration (without ALPN: [`TlsHandle`] sets it per
/// listener).
pub fn load(s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs("tls.cert", &s.cert)?;
    let key = load_key(&s.key)?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match s.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("ring supports TLS 1.2 and 1.3");
    let builder = match &s.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs("tls.client_ca", ca)? {
                roots.add(c).map_err(|e| TlsError::ClientCa {
                    path: ca.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::ClientCa {
                path: ca.clone(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(names::NameVerifier::wrap(
                verifier,
                s.client_names.clone(),
            ))
        }
    };
    let cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch {
            path: s.key.clone(),
            cert: s.cert.clone(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(cfg))
}

/// SHA-256 fingerprint (hex) of a DER certificate, as `openssl x509 -fingerprint -sha256` shows it
/// without colons: for logs, so an operator can see which certificate a reload put in force.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}
