//! `[storage]`: where records go and the Django settings that shape them (preview, chunk size, time
//! zone), plus MongoDB's connection settings as the package names them.

use super::MongoSettings;
use crate::settings::{self, Problems, Section};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, de};
use std::collections::BTreeMap;

/// Where and how records are stored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH`, `postgres://…`, `mysql://…` or `mongodb://…`.
    #[serde(deserialize_with = "url")]
    pub url: String,
    /// The Django project's `TIME_ZONE`: timeline buckets start at its hours and midnights.
    #[serde(with = "settings::time_zone")]
    pub time_zone: Tz,
    /// `MESSAGE_PREVIEW_LENGTH` of the Django side.
    pub preview_length: usize,
    /// `MESSAGE_CHUNK_SIZE` of the Django side.
    pub chunk_size: usize,
    /// Append the context line (facility, pid, peer, ...) to each message.
    pub context: bool,
    /// MongoDB only: the package's `database`, over the URI's own.
    pub database: Option<String>,
    /// MongoDB only: user, over the URI's own.
    pub user: Option<String>,
    /// MongoDB only: password, over the URI's own.
    pub password: Option<String>,
    /// MongoDB only: port applied to every host.
    pub port: Option<u16>,
    /// MongoDB only: driver options, as in the connection string's query.
    #[serde(deserialize_with = "options")]
    pub options: BTreeMap<String, String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: "sqlite://./log-panel.sqlite3".into(),
            time_zone: Tz::UTC,
            preview_length: 16384,
            chunk_size: 262144,
            context: true,
            database: None,
            user: None,
            password: None,
            port: None,
            options: BTreeMap::new(),
        }
    }
}

impl StorageConfig {
    /// MongoDB's connection settings, which take precedence over the URI's own values.
    pub fn mongo(&self) -> MongoSettings {
        MongoSettings {
            database: self.database.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            port: self.port,
            options: self.options.clone(),
        }
    }
}

impl Section for StorageConfig {
    const NAME: &'static str = "storage";

    fn check(&self, p: &mut Problems<'_>) {
        p.range("preview_length", self.preview_length, 1, 1 << 30);
        p.range("chunk_size", self.chunk_size, 1, 1 << 30);
        if self.port == Some(0) {
            p.key("port", "must be a port number (1-65535)");
        }
        if self.mongo() != MongoSettings::default() && !self.url.starts_with("mongodb") {
            p.key(
                "",
                "database, user, password, port and options apply to mongodb:// URLs only",
            );
        }
    }
}

fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let scheme = s.split("://").next().unwrap_or("");
    match scheme {
        "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb" | "mongodb" | "mongodb+srv"
            if s.contains("://") =>
        {
            Ok(s)
        }
        _ => Err(de::Error::custom(format!(
            "{s:?} is not a storage URL (expected sqlite://PATH, postgres://USER:PASS@HOST:PORT/DB, mysql://USER:PASS@HOST:PORT/DB or mongodb://HOST/DB)"
        ))),
    }
}

/// Driver options are strings in the URI: numbers and booleans are taken as their text.
fn options<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let table = BTreeMap::<String, toml::Value>::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(de::Error::custom(format!(
                        "option {k}: expected a string, number or boolean, found {}",
                        other.type_str()
                    )));
                }
            };
            Ok((k, text))
        })
        .collect()
}
