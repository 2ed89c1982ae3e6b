//! The TLS material in force, shared by every TLS listener and replaced whole on SIGHUP: a
//! handshake takes the configuration current when it starts, so established connections keep
//! theirs and new ones get the new one. A reload that fails leaves the old material in force.

use super::{TlsError, TlsSettings, fingerprint, load};
use crate::live::Live;
use rustls::ServerConfig;
use std::sync::Arc;

/// Which application protocol a listener speaks (offered by ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// Syslog (RFC 5425): no ALPN.
    None,
    /// gRPC: `h2`.
    H2,
    /// OTLP/HTTP served by an HTTP/1.1 server: `http/1.1`.
    Http1,
}

/// One loaded set of material, per ALPN.
#[derive(Debug)]
struct Material {
    plain: Arc<ServerConfig>,
    h2: Arc<ServerConfig>,
    http1: Arc<ServerConfig>,
    fingerprint: String,
}

impl Material {
    fn load(s: &TlsSettings) -> Result<Material, TlsError> {
        let base = load(s)?;
        let with = |alpn: &[&[u8]]| {
            let mut c = (*base).clone();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            if alpn.is_empty() {
                // Syslog senders never read: a session ticket left unread in their socket turns
                // their close into a TCP reset, which can discard the last frames still in our
                // receive buffer. RFC 5425 is one-way, so send none.
                c.send_tls13_tickets = 0;
            }
            Arc::new(c)
        };
        let certs = super::load_certs("tls.cert", &s.cert)?;
        Ok(Material {
            h2: with(&[b"h2"]),
            http1: with(&[b"http/1.1"]),
            plain: with(&[]),
            fingerprint: fingerprint(&certs[0]),
        })
    }
}

/// The shared, reloadable TLS configuration.
#[derive(Debug)]
pub struct TlsHandle {
    current: Arc<Live<Material>>,
}

impl TlsHandle {
    /// Loads the material; fails naming the key of the bad file.
    pub fn load(s: &TlsSettings) -> Result<Arc<TlsHandle>, TlsError> {
        let m = Material::load(s)?;
        tracing::info!(
            "TLS certificate {} loaded (SHA-256 {})",
            s.cert.display(),
            m.fingerprint
        );
        Ok(Arc::new(TlsHandle {
            current: Live::new(m),
        }))
    }

    /// Puts `other`'s material in force here (a reload loaded into a fresh handle first, so that
    /// nothing changes until every other part of the reload has succeeded).
    pub fn adopt(&self, other: &TlsHandle) {
        let m = other.current.get();
        tracing::info!(
            "TLS certificate SHA-256 {} in force for new connections",
            m.fingerprint
        );
        self.current.set_arc(m);
    }

    /// The configuration for a handshake starting now.
    pub fn config(&self, alpn: Alpn) -> Arc<ServerConfig> {
        let m = self.current.get();
        match alpn {
            Alpn::None => m.plain.clone(),
            Alpn::H2 => m.h2.clone(),
            Alpn::Http1 => m.http1.clone(),
        }
    }

    /// SHA-256 fingerprint of the server certificate in force.
    pub fn fingerprint(&self) -> String {
        self.current.get().fingerprint.clone()
    }
}
