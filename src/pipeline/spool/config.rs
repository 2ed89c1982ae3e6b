//! `[spool]`: where the disk spool lives, how much it may hold, and when it syncs.

use super::{SpoolSettings, SyncPolicy};
use crate::settings::{self, MILLISECOND, MINUTE, Problems, Section};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The spool's section. Without `dir` the spool sits beside a SQLite database (`x.sqlite3` ->
/// `x.spool`); with another database it needs a `dir` (the Debian package sets one); `""` turns
/// it off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    pub dir: Option<String>,
    /// Bytes of records held before sources get backpressure.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_bytes: usize,
    /// `always`, `interval` or `never`.
    pub sync: SyncName,
    /// How often `interval` syncs (and how far syslog TCP reads ahead of the spool).
    #[serde(with = "settings::duration", alias = "sync_interval_ms")]
    pub sync_interval: Duration,
}

/// The spelled sync policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncName {
    Always,
    Interval,
    Never,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            max_bytes: 1 << 30,
            sync: SyncName::Always,
            sync_interval: Duration::from_millis(100),
        }
    }
}

/// Segment files are at most this large (and at most an eighth of `max_bytes`).
const SEGMENT_BYTES: u64 = 16 << 20;

impl SpoolConfig {
    /// The directory in use: the configured one, or beside a SQLite database; `None` when off.
    pub fn resolved_dir(&self, storage_url: &str) -> Option<PathBuf> {
        match self.dir.as_deref() {
            Some("") => None,
            Some(d) => Some(PathBuf::from(d)),
            None => {
                let path = storage_url.strip_prefix("sqlite://")?;
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path.starts_with(':') {
                    return None; // in-memory database: nothing to sit beside
                }
                Some(PathBuf::from(path).with_extension("spool"))
            }
        }
    }

    /// What the spool runs with, when on.
    pub fn settings(&self, storage_url: &str) -> Option<SpoolSettings> {
        Some(SpoolSettings {
            dir: self.resolved_dir(storage_url)?,
            max_bytes: self.max_bytes as u64,
            sync: match self.sync {
                SyncName::Always => SyncPolicy::Always,
                SyncName::Interval => SyncPolicy::Interval(self.sync_interval),
                SyncName::Never => SyncPolicy::Never,
            },
            segment_bytes: SEGMENT_BYTES,
        })
    }
}

impl Section for SpoolConfig {
    const NAME: &'static str = "spool";

    fn check(&self, p: &mut Problems<'_>) {
        if self.max_bytes < 1 << 20 {
            p.key("max_bytes", "must be at least 1048576 (1 MiB)");
        }
        p.duration_range("sync_interval", self.sync_interval, MILLISECOND, MINUTE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_sqlite_by_default_off_when_empty() {
        let c = SpoolConfig::default();
        assert_eq!(
            c.resolved_dir("sqlite://./log-panel.sqlite3"),
            Some(PathBuf::from("./log-panel.spool"))
        );
        assert_eq!(c.resolved_dir("sqlite::memory:"), None);
        assert_eq!(c.resolved_dir("postgres://h/db"), None);
        let off = SpoolConfig {
            dir: Some(String::new()),
            ..c.clone()
        };
        assert_eq!(off.resolved_dir("sqlite://./x.sqlite3"), None);
        let set = SpoolConfig {
            dir: Some("/var/lib/lpc/spool".into()),
            ..c
        };
        assert_eq!(
            set.resolved_dir("postgres://h/db"),
            Some(PathBuf::from("/var/lib/lpc/spool"))
        );
    }
}
