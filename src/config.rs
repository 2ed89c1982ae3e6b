//! Configuration: TOML with defaults for every key, read in one pass that collects every error with
//! the key it belongs to, so `validate` can list them all at once.

use crate::record::Level;
pub use crate::retention::RetentionConfig;
use chrono_tz::Tz;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use toml::{Table, Value};

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub storage: StorageConfig,
    pub syslog: SyslogConfig,
    pub otlp: OtlpConfig,
    pub filter: FilterConfig,
    pub batch: BatchConfig,
    pub retention: RetentionConfig,
    pub service: ServiceConfig,
}

/// The daemon itself: its metrics and health endpoints and its own log.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `/metrics` (Prometheus), `/health` and `/ready`; `None` when off.
    pub metrics: Option<SocketAddr>,
    /// The daemon's own log level (`RUST_LOG` overrides it), e.g. "info" or "warn,log_panel_collector=debug".
    pub log_level: String,
    /// How long SIGTERM waits for storage to take the last records.
    pub shutdown_timeout: Duration,
}

/// OTLP listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// gRPC `LogsService/Export`; `None` when off (`grpc = ""`).
    pub grpc: Option<SocketAddr>,
    /// HTTP `POST /v1/logs`; `None` when off.
    pub http: Option<SocketAddr>,
    /// Largest request body, after decompression.
    pub max_message_bytes: usize,
    /// How long a request waits for queue room before it is answered "unavailable, retry".
    pub queue_wait: Duration,
}

/// Where and how records are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://user:pass@host:port/db`.
    pub url: String,
    /// The Django project's `TIME_ZONE`: timeline buckets start at its hours and midnights.
    pub time_zone: Tz,
    /// `MESSAGE_PREVIEW_LENGTH` of the Django side.
    pub preview_length: usize,
    /// `MESSAGE_CHUNK_SIZE` of the Django side.
    pub chunk_size: usize,
    /// Append the context line (facility, pid, peer, ...) to each message.
    pub context: bool,
    /// MongoDB only: `database`, `user`, `password`, `port`, `options`, over the URI's own values.
    pub mongo: crate::storage::MongoSettings,
}

/// Syslog listeners and parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    /// Zone of RFC 3164 timestamps, which carry none.
    pub source_time_zone: Tz,
    /// Longest frame kept whole; longer ones are cut here and stored.
    pub max_frame: usize,
    /// Template for `logger_name`.
    pub logger_name: LoggerTemplate,
    /// SO_RCVBUF for UDP sockets, in bytes (0 keeps the kernel default).
    pub udp_recv_buffer: usize,
}

/// The package's LOG_LEVEL / IGNORED_LOGGER_* / IGNORED_MESSAGE_SUBSTRINGS, applied before queueing.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    pub min_level: Level,
    pub ignore_loggers: Vec<String>,
    pub ignore_messages: Vec<String>,
}

/// Queue and batch sizes, and the retry policy of delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    pub max_records: usize,
    pub max_delay: Duration,
    pub queue_bytes: usize,
    /// Batches written at once (each on its own connection).
    pub writers: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// One placeholder-or-text piece of the logger name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    App,
    Host,
    Facility,
    MsgId,
}

/// `logger_name` template such as `{app}` or `{host}/{app}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerTemplate(pub Vec<TemplatePart>);

impl LoggerTemplate {
    /// Parses `{app}`, `{host}`, `{facility}`, `{msgid}` and literal text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?
                + open;
            parts.push(match &rest[open + 1..close] {
                "app" => TemplatePart::App,
                "host" => TemplatePart::Host,
                "facility" => TemplatePart::Facility,
                "msgid" => TemplatePart::MsgId,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} (use {{app}}, {{host}}, {{facility}} or {{msgid}})"
                    ));
                }
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("empty template".into());
        }
        Ok(LoggerTemplate(parts))
    }
}

impl Default for Config {
    fn default() -> Self {
        let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Config {
            storage: StorageConfig {
                url: "sqlite://./log-panel.sqlite3".into(),
                time_zone: Tz::UTC,
                preview_length: 16384,
                chunk_size: 262144,
                context: true,
                mongo: Default::default(),
            },
            syslog: SyslogConfig {
                udp: vec![local(5514)],
                tcp: vec![local(5514)],
                source_time_zone: Tz::UTC,
                max_frame: 65536,
                logger_name: LoggerTemplate(vec![TemplatePart::App]),
                udp_recv_buffer: 8 << 20,
            },
            otlp: OtlpConfig {
                grpc: Some(local(4317)),
                http: Some(local(4318)),
                max_message_bytes: 4 << 20,
                queue_wait: Duration::from_millis(1000),
            },
            filter: FilterConfig {
                min_level: Level::Debug,
                ignore_loggers: Vec::new(),
                ignore_messages: Vec::new(),
            },
            batch: BatchConfig {
                max_records: 5000,
                max_delay: Duration::from_millis(200),
                queue_bytes: 256 << 20,
                writers: 2,
                retry_initial: Duration::from_millis(100),
                retry_max: Duration::from_secs(30),
            },
            retention: RetentionConfig::default(),
            service: ServiceConfig {
                metrics: Some(local(9598)),
                log_level: "info".into(),
                shutdown_timeout: Duration::from_secs(60),
            },
        }
    }
}

/// One problem in a config file, tied to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted key, such as `batch.max_records`.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
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
        let mut r = Reader::default();
        let d = Config::default();
        let known = [
            "storage",
            "syslog",
            "otlp",
            "filter",
            "batch",
            "retention",
            "service",
        ];
        for (k, v) in &root {
            if !known.contains(&k.as_str()) {
                r.error(k, "unknown section");
            } else if !v.is_table() {
                r.error(k, "must be a table ([section])");
            }
        }

        let mut s = r.section(&root, "storage");
        let storage = StorageConfig {
            url: s.get(&mut r, "url", d.storage.url, parse_url),
            time_zone: s.get(&mut r, "time_zone", d.storage.time_zone, parse_tz),
            preview_length: s.get(&mut r, "preview_length", d.storage.preview_length, positive),
            chunk_size: s.get(&mut r, "chunk_size", d.storage.chunk_size, positive),
            context: s.get(&mut r, "context", d.storage.context, boolean),
            mongo: crate::storage::MongoSettings {
                database: s.get(&mut r, "database", None, |v| string(v).map(|x| Some(x.to_string()))),
                user: s.get(&mut r, "user", None, |v| string(v).map(|x| Some(x.to_string()))),
                password: s.get(&mut r, "password", None, |v| string(v).map(|x| Some(x.to_string()))),
                port: s.get(&mut r, "port", None, |v| {
                    let n = positive(v)?;
                    u16::try_from(n).map(Some).map_err(|_| "must be a port number (1-65535)".to_string())
                }),
                options: s.get(&mut r, "options", Default::default(), |v| {
                    let t = v.as_table().ok_or_else(|| format!("expected a table, found {}", type_name(v)))?;
                    t.iter()
                        .map(|(k, x)| {
                            let text = match x {
                                Value::String(s) => s.clone(),
                                Value::Integer(i) => i.to_string(),
                                Value::Boolean(b) => b.to_string(),
                                Value::Float(f) => f.to_string(),
                                other => return Err(format!("option {k}: expected a string, number or boolean, found {}", other.type_str())),
                            };
                            Ok((k.clone(), text))
                        })
                        .collect()
                }),
            },
        };
        let mongo_keys_used = storage.mongo != Default::default();
        if mongo_keys_used && !storage.url.starts_with("mongodb") {
            r.error(
                "storage",
                "database, user, password, port and options apply to mongodb:// URLs only",
            );
        }
        s.finish(&mut r);

        let mut s = r.section(&root, "syslog");
        let syslog = SyslogConfig {
            udp: s.get(&mut r, "udp", d.syslog.udp, addresses),
            tcp: s.get(&mut r, "tcp", d.syslog.tcp, addresses),
            source_time_zone: s.get(
                &mut r,
                "source_time_zone",
                d.syslog.source_time_zone,
                parse_tz,
            ),
            max_frame: s.get(&mut r, "max_frame", d.syslog.max_frame, |v| {
                let n = positive(v)?;
                if n < 480 {
                    return Err("must be at least 480 (RFC 5426's minimum message size)".into());
                }
                Ok(n)
            }),
            logger_name: s.get(&mut r, "logger_name", d.syslog.logger_name, |v| {
                LoggerTemplate::parse(string(v)?)
            }),
            udp_recv_buffer: s.get(
                &mut r,
                "udp_recv_buffer",
                d.syslog.udp_recv_buffer,
                unsigned,
            ),
        };
        s.finish(&mut r);

        for (key, list) in [("syslog.udp", &syslog.udp), ("syslog.tcp", &syslog.tcp)] {
            let mut seen = std::collections::HashSet::new();
            for addr in list {
                if !seen.insert(addr) {
                    r.error(key, format!("{addr} is listed twice"));
                }
            }
        }

        let mut s = r.section(&root, "otlp");
        let otlp = OtlpConfig {
            grpc: s.get(&mut r, "grpc", d.otlp.grpc, optional_address),
            http: s.get(&mut r, "http", d.otlp.http, optional_address),
            max_message_bytes: s.get(&mut r, "max_message_bytes", d.otlp.max_message_bytes, |v| {
                let n = positive(v)?;
                if n < 1024 {
                    return Err("must be at least 1024".into());
                }
                Ok(n)
            }),
            queue_wait: s.get(&mut r, "queue_wait_ms", d.otlp.queue_wait, millis),
        };
        s.finish(&mut r);

        let mut s = r.section(&root, "filter");
        let filter = FilterConfig {
            min_level: s.get(&mut r, "min_level", d.filter.min_level, |v| {
                string(v)?.parse()
            }),
            ignore_loggers: s.get(&mut r, "ignore_loggers", d.filter.ignore_loggers, strings),
            ignore_messages: s.get(&mut r, "ignore_messages", d.filter.ignore_messages, strings),
        };
        s.finish(&mut r);

        let mut s = r.section(&root, "batch");
        let batch = BatchConfig {
            max_records: s.get(&mut r, "max_records", d.batch.max_records, positive),
            max_delay: s.get(&mut r, "max_delay_ms", d.batch.max_delay, millis),
            queue_bytes: s.get(&mut r, "queue_bytes", d.batch.queue_bytes, |v| {
                let n = positive(v)?;
                if n < 1 << 20 {
                    return Err("must be at least 1048576 (1 MiB)".into());
                }
                Ok(n)
            }),
            writers: s.get(&mut r, "writers", d.batch.writers, |v| {
                let n = positive(v)?;
                if n > 64 {
                    return Err("must be at most 64".into());
                }
                Ok(n)
            }),
            retry_initial: s.get(&mut r, "retry_initial_ms", d.batch.retry_initial, millis),
            retry_max: s.get(&mut r, "retry_max_ms", d.batch.retry_max, millis),
        };
        s.finish(&mut r);

        let mut s = r.section(&root, "retention");
        let retention = RetentionConfig {
            days: s.get(&mut r, "days", d.retention.days, |v| match unsigned(v)? {
                n if n > 36_500 => Err(format!(
                    "{n} days is more than 100 years; use 0 to keep everything"
                )),
                n => Ok(n as u32),
            }),
            interval: s.get(&mut r, "interval", d.retention.interval, |v| {
                parse_duration(string(v)?)
            }),
            batch: s.get(&mut r, "batch", d.retention.batch, positive),
        };
        s.finish(&mut r);

        let mut s = r.section(&root, "service");
        let service = ServiceConfig {
            metrics: s.get(&mut r, "metrics", d.service.metrics, optional_address),
            log_level: s.get(&mut r, "log_level", d.service.log_level, |v| {
                let level = string(v)?;
                tracing_subscriber::EnvFilter::try_new(level)
                    .map(|_| level.to_string())
                    .map_err(|e| format!("{level:?} is not a log filter: {e}"))
            }),
            shutdown_timeout: s.get(
                &mut r,
                "shutdown_timeout",
                d.service.shutdown_timeout,
                |v| parse_duration(string(v)?),
            ),
        };
        s.finish(&mut r);

        if r.errors.is_empty() {
            Ok(Config {
                storage,
                syslog,
                otlp,
                filter,
                batch,
                retention,
                service,
            })
        } else {
            Err(ConfigError::Keys {
                path: "<string>".into(),
                errors: r.errors,
            })
        }
    }
}

#[derive(Default)]
struct Reader {
    errors: Vec<KeyError>,
}

impl Reader {
    fn error(&mut self, key: &str, reason: impl Into<String>) {
        self.errors.push(KeyError {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    fn section<'a>(&self, root: &'a Table, name: &'static str) -> Section<'a> {
        Section {
            name,
            table: root.get(name).and_then(Value::as_table),
            used: Vec::new(),
        }
    }
}

struct Section<'a> {
    name: &'static str,
    table: Option<&'a Table>,
    used: Vec<&'static str>,
}

impl Section<'_> {
    fn get<T>(
        &mut self,
        r: &mut Reader,
        key: &'static str,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> T {
        self.used.push(key);
        match self.table.and_then(|t| t.get(key)) {
            None => default,
            Some(v) => parse(v).unwrap_or_else(|reason| {
                r.error(&format!("{}.{key}", self.name), reason);
                default
            }),
        }
    }

    fn finish(self, r: &mut Reader) {
        if let Some(t) = self.table {
            for k in t.keys() {
                if !self.used.contains(&k.as_str()) {
                    r.error(
                        &format!("{}.{k}", self.name),
                        format!("unknown key (known: {})", self.used.join(", ")),
                    );
                }
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    v.type_str()
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected a string, found {}", type_name(v)))
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, found {}", type_name(v)))
}

fn unsigned(v: &Value) -> Result<usize, String> {
    match v.as_integer() {
        Some(n) if n >= 0 => Ok(n as usize),
        Some(n) => Err(format!("must not be negative, found {n}")),
        None => Err(format!("expected an integer, found {}", type_name(v))),
    }
}

fn positive(v: &Value) -> Result<usize, String> {
    match unsigned(v)? {
        0 => Err("must be greater than 0".into()),
        n => Ok(n),
    }
}

fn millis(v: &Value) -> Result<Duration, String> {
    Ok(Duration::from_millis(positive(v)? as u64))
}

fn parse_tz(v: &Value) -> Result<Tz, String> {
    let s = string(v)?;
    s.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {s:?} (use an IANA name such as \"UTC\" or \"Europe/Vienna\")")
    })
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    let arr = v
        .as_array()
        .ok_or_else(|| format!("expected an array of strings, found {}", type_name(v)))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("element {i}: expected a string, found {}", type_name(x)))
        })
        .collect()
}

fn addresses(v: &Value) -> Result<Vec<SocketAddr>, String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        _ => strings(v)?,
    };
    list.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .map_err(|_| format!("{s:?} is not an address of the form IP:PORT (e.g. \"127.0.0.1:5514\" or \"[::]:514\")"))
        })
        .collect()
}

/// `30s`, `15m`, `1h`, `2d`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. \"30m\", \"1h\", \"1d\")"))?;
    let unit_secs: u64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration (e.g. \"30m\", \"1h\", \"1d\")"
            ));
        }
    };
    let secs = n
        .checked_mul(unit_secs)
        .filter(|&x| x <= 10 * 365 * 86400)
        .ok_or_else(|| format!("{s:?} is too long (at most 10 years)"))?;
    if secs == 0 {
        return Err("must be greater than 0".into());
    }
    Ok(Duration::from_secs(secs))
}

fn optional_address(v: &Value) -> Result<Option<SocketAddr>, String> {
    match string(v)? {
        "" => Ok(None),
        s => s.parse().map(Some).map_err(|_| {
            format!("{s:?} is not an address of the form IP:PORT (or \"\" to turn it off)")
        }),
    }
}

fn parse_url(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    let scheme = s.split("://").next().unwrap_or("");
    match scheme {
        "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb" | "mongodb" | "mongodb+srv"
            if s.contains("://") =>
        {
            Ok(s.to_string())
        }
        _ => Err(format!(
            "{s:?} is not a storage URL (expected sqlite://PATH, postgres://USER:PASS@HOST:PORT/DB, mysql://USER:PASS@HOST:PORT/DB or mongodb://HOST/DB)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn syntax_error_is_reported() {
        assert!(matches!(
            Config::from_toml_str("[storage"),
            Err(ConfigError::Syntax { .. })
        ));
    }
}
