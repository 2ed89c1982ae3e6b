//! `[service]`: the daemon's own endpoints and log, and how long stopping may take.

use crate::settings::{self, DAY, Problems, SECOND, Section};
use serde::{Deserialize, Deserializer, de};
use std::net::SocketAddr;
use std::time::Duration;

/// The daemon itself: its metrics and health endpoints and its own log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// `/metrics` (Prometheus), `/health` and `/ready`; `None` when off.
    #[serde(deserialize_with = "settings::optional_address::deserialize")]
    pub metrics: Option<SocketAddr>,
    /// The daemon's own log level (`RUST_LOG` overrides it), e.g. "info" or "warn,log_panel_collector=debug".
    #[serde(deserialize_with = "log_filter")]
    pub log_level: String,
    /// How long SIGTERM waits for storage to take the last records.
    #[serde(with = "settings::duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9598))),
            log_level: "info".into(),
            shutdown_timeout: Duration::from_secs(60),
        }
    }
}

impl Section for ServiceConfig {
    const NAME: &'static str = "service";

    fn check(&self, p: &mut Problems<'_>) {
        p.duration_range("shutdown_timeout", self.shutdown_timeout, SECOND, DAY);
    }
}

fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let level = String::deserialize(d)?;
    // tracing-subscriber 0.3 panics on some non-ASCII directives (it slices inside a character):
    // levels and targets are ASCII, so anything else is refused first (found by the `config` fuzz
    // target).
    if !level.is_ascii() {
        return Err(de::Error::custom(format!(
            "{level:?} is not a log filter: use a level such as \"info\" or directives such as \"info,sqlx=warn\" (ASCII)"
        )));
    }
    tracing_subscriber::EnvFilter::try_new(&level)
        .map(|_| level.clone())
        .map_err(|e| de::Error::custom(format!("{level:?} is not a log filter: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    #[test]
    fn a_non_ascii_log_level_is_an_error_not_a_panic() {
        let text = "[service]\nlog_level = \" in[\u{eb}\u{eb}{{{,h2{{\"\n";
        let Err(ConfigError::Keys { errors, .. }) = Config::from_toml_str(text) else {
            panic!("accepted")
        };
        assert_eq!(errors[0].key, "service.log_level");
        assert!(errors[0].reason.contains("not a log filter"), "{errors:?}");
    }
}
