//! Configuration: one TOML file whose sections are owned by the modules they configure (each a serde
//! type with defaults for every key and its own range checks). This module only loads the file,
//! reads each section, and collects every error with its dotted key at once, so `validate` can list
//! them all; it depends on the sections, never the other way round.

pub use crate::filter::FilterConfig;
pub use crate::pipeline::config::BatchConfig;
pub use crate::pipeline::spool::config::SpoolConfig;
pub use crate::retention::RetentionConfig;
pub use crate::service::config::ServiceConfig;
pub use crate::settings::KeyError;
use crate::settings::{Problems, Section};
pub use crate::source::otlp::config::OtlpConfig;
pub use crate::source::syslog::config::SyslogConfig;
pub use crate::source::syslog::template::{LoggerTemplate, TemplatePart};
pub use crate::storage::config::StorageConfig;
pub use crate::tls::config::TlsConfig;
use std::path::Path;
use toml::{Table, Value};

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub storage: StorageConfig,
    pub syslog: SyslogConfig,
    pub otlp: OtlpConfig,
    pub filter: FilterConfig,
    pub batch: BatchConfig,
    pub spool: SpoolConfig,
    pub retention: RetentionConfig,
    pub service: ServiceConfig,
    pub tls: TlsConfig,
}

/// Why a config could not be loaded: unreadable, not TOML, or a list of key errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path} has {} error(s):\n{}", .errors.len(), .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Keys { path: String, errors: Vec<KeyError> },
}

const SECTIONS: [&str; 9] = [
    "storage",
    "syslog",
    "otlp",
    "filter",
    "batch",
    "spool",
    "retention",
    "service",
    "tls",
];

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: shown,
                message,
            },
            ConfigError::Keys { errors, .. } => ConfigError::Keys {
                path: shown,
                errors,
            },
            other => other,
        })
    }

    /// Parses TOML text; every missing key takes its default.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let root: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: "<string>".into(),
                message: e.to_string(),
            })?;
        let mut errors = Vec::new();
        for (k, v) in &root {
            if !SECTIONS.contains(&k.as_str()) {
                errors.push(KeyError {
                    key: toml_key(k),
                    reason: format!("unknown section (known: {})", SECTIONS.join(", ")),
                });
            } else if !v.is_table() {
                errors.push(KeyError {
                    key: toml_key(k),
                    reason: "must be a table ([section])".into(),
                });
            }
        }
        let cfg = Config {
            storage: section(&root, &mut errors),
            syslog: section(&root, &mut errors),
            otlp: section(&root, &mut errors),
            filter: section(&root, &mut errors),
            batch: section(&root, &mut errors),
            spool: section(&root, &mut errors),
            retention: section(&root, &mut errors),
            service: section(&root, &mut errors),
            tls: section(&root, &mut errors),
        };
        cross_checks(&cfg, &mut errors);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Keys {
                path: "<string>".into(),
                errors,
            })
        }
    }
}

/// Keys of one section that need another section.
fn cross_checks(cfg: &Config, errors: &mut Vec<KeyError>) {
    let have_tls = cfg.tls.cert.is_some() && cfg.tls.key.is_some();
    let mut need = |key: &str, on: bool| {
        if on && !have_tls {
            errors.push(KeyError {
                key: key.into(),
                reason: "TLS listeners need [tls] cert and key".into(),
            });
        }
    };
    need("syslog.tls", !cfg.syslog.tls.is_empty());
    need("otlp.tls", cfg.otlp.tls);
    for addr in &cfg.syslog.tls {
        if cfg.syslog.tcp.contains(addr) && addr.port() != 0 {
            errors.push(KeyError {
                key: "syslog.tls".into(),
                reason: format!("{addr} is also a syslog.tcp listener"),
            });
        }
    }
}

/// A key as TOML writes it: bare when it can be, else quoted, so that an error always names it
/// (an empty key `""` was shown as nothing; found by the `config` fuzz target).
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Reads one section. A key whose value does not fit is reported and left at its default, so that
/// the other keys are still read and checked: every error of the file comes out in one pass.
fn section<S: Section>(root: &Table, errors: &mut Vec<KeyError>) -> S {
    let Some(table) = root.get(S::NAME).and_then(Value::as_table) else {
        return S::default();
    };
    let mut good = Table::new();
    for (key, value) in table {
        let mut one = Table::new();
        one.insert(key.clone(), value.clone());
        match Value::Table(one).try_into::<S>() {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => errors.push(KeyError {
                key: format!("{}.{}", S::NAME, toml_key(key)),
                reason: reason(&e),
            }),
        }
    }
    let parsed = match Value::Table(good).try_into::<S>() {
        Ok(s) => s,
        Err(e) => {
            errors.push(KeyError {
                key: S::NAME.to_string(),
                reason: reason(&e),
            });
            S::default()
        }
    };
    parsed.check(&mut Problems::new(S::NAME, errors));
    parsed
}

/// serde's wording, in the terms of a config file.
fn reason(e: &toml::de::Error) -> String {
    let m = e.message().trim().replace('`', "");
    if let Some(rest) = m.strip_prefix("unknown field ") {
        let known = rest.split_once(", expected").map(|(_, k)| k).unwrap_or("");
        return format!(
            "unknown key (known: {})",
            known.trim().trim_start_matches("one of ")
        );
    }
    // "invalid type: string \"many\", expected usize" -> "expected an integer, found string \"many\""
    if let Some(rest) = m.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        let expected = match expected {
            "usize" | "u64" | "u32" | "u16" | "i64" | "i32" => "an integer",
            "a boolean" => "true or false",
            other => other,
        };
        return format!("expected {expected}, found {found}");
    }
    m.replace("invalid value: ", "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Level;
    use std::time::Duration;

    #[test]
    fn odd_keys_are_named_quoted() {
        let Err(ConfigError::Keys { errors, .. }) =
            Config::from_toml_str("\"\" = 1\n[syslog]\n\"a b\" = 2\n")
        else {
            panic!("refused")
        };
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["\"\"", "syslog.\"a b\""]);
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
    }

    #[test]
    fn reads_every_documented_key() {
        let c = Config::from_toml_str(
            r#"
            [storage]
            url = "postgres://u:p@127.0.0.1:5432/db"
            time_zone = "Europe/Vienna"
            preview_length = 100
            chunk_size = 1000
            context = false
            [syslog]
            udp = ["127.0.0.1:1514", "[::1]:1514"]
            tcp = "0.0.0.0:1514"
            source_time_zone = "America/New_York"
            max_frame = 8192
            logger_name = "{host}/{app}"
            [otlp]
            grpc = ""
            http = "0.0.0.0:14318"
            max_message_bytes = 2048
            [retention]
            days = 7
            interval = "15m"
            batch = 10
            [filter]
            min_level = "warning"
            ignore_loggers = ["django.*", "noisy"]
            ignore_messages = ["healthcheck"]
            [batch]
            max_records = 10
            max_delay_ms = 50
            queue_bytes = 2097152
            writers = 3
            "#,
        )
        .unwrap();
        assert_eq!(c.storage.time_zone, chrono_tz::Europe::Vienna);
        assert_eq!(c.syslog.udp.len(), 2);
        assert_eq!(c.syslog.tcp, vec!["0.0.0.0:1514".parse().unwrap()]);
        assert_eq!(
            c.syslog.logger_name.0,
            vec![
                TemplatePart::Host,
                TemplatePart::Text("/".into()),
                TemplatePart::App
            ]
        );
        assert_eq!(c.filter.min_level, Level::Warning);
        assert_eq!(c.batch.max_delay, Duration::from_millis(50));
        assert_eq!(c.batch.writers, 3);
        assert!(!c.storage.context);
        assert_eq!(c.otlp.grpc, None);
        assert_eq!(c.otlp.http, Some("0.0.0.0:14318".parse().unwrap()));
        assert_eq!(c.otlp.max_message_bytes, 2048);
        assert_eq!(c.retention.days, 7);
        assert_eq!(c.retention.interval, Duration::from_secs(900));
        assert_eq!(c.retention.batch, 10);
    }

    #[test]
    fn lists_every_error_with_its_key() {
        let err = Config::from_toml_str(
            r#"
            colour = 1
            [storage]
            url = 5
            time_zone = "Mars/Olympus"
            flavour = "x"
            [syslog]
            udp = ["nowhere"]
            max_frame = -1
            logger_name = "{pid}"
            [batch]
            max_records = "many"
            "#,
        )
        .unwrap_err();
        let ConfigError::Keys { errors, .. } = err else {
            panic!("expected key errors, got {err}")
        };
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "colour",
            "storage.url",
            "storage.time_zone",
            "storage.flavour",
            "syslog.udp",
            "syslog.max_frame",
            "syslog.logger_name",
            "batch.max_records",
        ] {
            assert!(keys.contains(&k), "missing error for {k}: {errors:?}");
        }
        assert_eq!(errors.len(), 8, "{errors:?}");
        let url = errors.iter().find(|e| e.key == "storage.url").unwrap();
        assert!(url.reason.contains("expected a string, found integer"));
    }

    #[test]
    fn duplicate_listeners_and_absurd_values_are_refused() {
        let err = Config::from_toml_str(
            "[syslog]\nudp = [\"127.0.0.1:514\", \"127.0.0.1:514\"]\n[retention]\ndays = 99999999\ninterval = \"99999999999999d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("syslog.udp: 127.0.0.1:514 is listed twice"),
            "{err}"
        );
        assert!(
            err.contains("retention.days: 99999999 days is more than 100 years"),
            "{err}"
        );
        assert!(err.contains("retention.interval"), "{err}");
    }

    #[test]
    fn durations_take_human_strings_and_the_old_ms_keys() {
        let old = Config::from_toml_str(
            "[batch]\nmax_delay_ms = 50\nretry_initial_ms = 10\nretry_max_ms = 2000\n[otlp]\nqueue_wait_ms = 250\n",
        )
        .unwrap();
        let new = Config::from_toml_str(
            "[batch]\nmax_delay = \"50ms\"\nretry_initial = \"10ms\"\nretry_max = \"2s\"\n[otlp]\nqueue_wait = \"250ms\"\n",
        )
        .unwrap();
        assert_eq!(old, new);
        assert_eq!(new.batch.retry_max, Duration::from_secs(2));
        assert_eq!(new.otlp.queue_wait, Duration::from_millis(250));
        let both = Config::from_toml_str("[batch]\nmax_delay = \"5ms\"\nmax_delay_ms = 5\n")
            .unwrap_err()
            .to_string();
        assert!(both.contains("batch"), "{both}");
    }

    #[test]
    fn no_numeric_key_can_overflow_or_panic() {
        for (section, key) in [
            ("batch", "max_delay_ms"),
            ("batch", "retry_initial_ms"),
            ("batch", "retry_max_ms"),
            ("otlp", "queue_wait_ms"),
            ("syslog", "frame_timeout"),
            ("otlp", "header_timeout"),
            ("service", "shutdown_timeout"),
            ("retention", "interval"),
        ] {
            let text = format!("[{section}]\n{key} = 9223372036854775807\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("{section}.{key}")), "{text}: {err}");
        }
        for (section, key, value) in [
            ("syslog", "max_connections", "0"),
            ("syslog", "max_frame", "\"2GiB\""),
            ("otlp", "max_concurrent_requests", "0"),
            ("otlp", "max_message_bytes", "10"),
            ("batch", "writers", "65"),
            ("batch", "queue_bytes", "-1"),
            ("storage", "chunk_size", "0"),
            ("retention", "batch", "0"),
        ] {
            let text = format!("[{section}]\n{key} = {value}\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("{section}.{key}")), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_take_units() {
        let c = Config::from_toml_str(
            "[syslog]\nmax_frame = \"2MiB\"\nmax_pending_bytes = \"128MiB\"\n[batch]\nqueue_bytes = \"64MiB\"\n",
        )
        .unwrap();
        assert_eq!(c.syslog.max_frame, 2 << 20);
        assert_eq!(c.syslog.max_pending_bytes, 128 << 20);
        assert_eq!(c.batch.queue_bytes, 64 << 20);
    }

    #[test]
    fn syntax_error_is_reported() {
        assert!(matches!(
            Config::from_toml_str("[storage"),
            Err(ConfigError::Syntax { .. })
        ));
    }
}
