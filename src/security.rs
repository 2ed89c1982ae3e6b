//! The files the config names for TLS and authentication (`[tls]` certificate, key and client CA,
//! `[otlp] bearer_token_file`), read together at start, on every reload and by `validate`, so that
//! a bad file is refused the same way everywhere, with its key named.

use crate::config::Config;
use crate::source::otlp::auth::{TokenError, Tokens};
use crate::tls::{TlsError, TlsHandle};
use std::sync::Arc;

/// Why the material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// A TLS listener is configured but `[tls]` has no certificate and key.
    #[error("{0}: TLS listeners are configured but [tls] cert and key are not")]
    NoTls(&'static str),
    /// A reload that drops `[tls]` while the running OTLP listeners speak TLS.
    #[error(
        "tls: the OTLP listeners speak TLS until a restart (otlp.tls changes need one), so [tls] cert and key must stay"
    )]
    StillInUse,
}

/// The loaded TLS configuration and bearer tokens (each `None` when not configured).
pub struct Material {
    pub tls: Option<Arc<TlsHandle>>,
    pub tokens: Option<Arc<Tokens>>,
}

/// Reads the token file, when one is configured.
pub fn load_tokens(cfg: &Config) -> Result<Option<Arc<Tokens>>, TokenError> {
    cfg.otlp
        .bearer_token_file
        .as_deref()
        .map(|p| Tokens::load(p).map(Arc::new))
        .transpose()
}

/// Loads the TLS material, and refuses TLS listeners without it.
pub fn load_tls(cfg: &Config) -> Result<Option<Arc<TlsHandle>>, MaterialError> {
    match cfg.tls.settings() {
        Some(s) => Ok(Some(TlsHandle::load(&s)?)),
        None if !cfg.syslog.tls.is_empty() => Err(MaterialError::NoTls("syslog.tls")),
        None if cfg.otlp.tls => Err(MaterialError::NoTls("otlp.tls")),
        None => Ok(None),
    }
}

/// Loads everything; the first error wins.
pub fn load(cfg: &Config) -> Result<Material, MaterialError> {
    Ok(Material {
        tls: load_tls(cfg)?,
        tokens: load_tokens(cfg)?,
    })
}

/// Reads every file without starting anything (for `validate`): each error, with its key.
pub fn check_files(cfg: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = load_tls(cfg) {
        errors.push(e.to_string());
    }
    if let Err(e) = load_tokens(cfg) {
        errors.push(e.to_string());
    }
    errors
}
