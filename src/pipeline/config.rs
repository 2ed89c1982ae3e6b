//! `[batch]`: queue size, batch size and age, parallel writers, and the retry policy of delivery.

use crate::settings::{self, DAY, HOUR, MILLISECOND, Problems, Section};
use serde::Deserialize;
use std::time::Duration;

/// Queue and batch sizes, and the retry policy of delivery.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    pub max_records: usize,
    /// Bytes of records (their queue weight) in one batch: a batch of large messages is copied
    /// into rows, chunks and statement text while it is written, so its size bounds that copy.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_bytes: usize,
    #[serde(with = "settings::duration", alias = "max_delay_ms")]
    pub max_delay: Duration,
    /// Bytes of records held between the sources and the database commit.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub queue_bytes: usize,
    /// Batches written at once (each on its own connection).
    pub writers: usize,
    #[serde(with = "settings::duration", alias = "retry_initial_ms")]
    pub retry_initial: Duration,
    #[serde(with = "settings::duration", alias = "retry_max_ms")]
    pub retry_max: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: 5000,
            max_bytes: 8 << 20,
            max_delay: Duration::from_millis(200),
            queue_bytes: 256 << 20,
            writers: 2,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Where a batch ends, in records and in their weight; the queue and the spool reader cut by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchCap {
    pub records: usize,
    /// Record weight ([`crate::record::Record::weight`]); the record that crosses it is included.
    pub bytes: usize,
}

impl BatchCap {
    /// No byte cap: batches end by record count only.
    pub const fn records(records: usize) -> Self {
        BatchCap {
            records,
            bytes: usize::MAX,
        }
    }

    /// A batch of `records` weighing `weight` takes no more.
    pub fn full(&self, records: usize, weight: usize) -> bool {
        records >= self.records || weight >= self.bytes
    }
}

impl BatchConfig {
    /// The cap batches are cut at: `max_records`, and `max_bytes` but at most a quarter of
    /// `queue_bytes`, so that several writers find batches in a small queue and a batch's copies
    /// stay small beside it.
    pub fn cap(&self) -> BatchCap {
        BatchCap {
            records: self.max_records,
            bytes: self.max_bytes.min(self.queue_bytes / 4).max(1),
        }
    }
}

impl Section for BatchConfig {
    const NAME: &'static str = "batch";

    fn check(&self, p: &mut Problems<'_>) {
        p.range("max_records", self.max_records, 1, 1_000_000);
        if self.max_bytes < 64 << 10 {
            p.key("max_bytes", "must be at least 65536 (64 KiB)");
        } else if self.max_bytes > 1 << 30 {
            p.key("max_bytes", "must be at most 1 GiB");
        }
        p.duration_range("max_delay", self.max_delay, MILLISECOND, HOUR);
        if self.queue_bytes < 1 << 20 {
            p.key("queue_bytes", "must be at least 1048576 (1 MiB)");
        } else if self.queue_bytes > 1 << 40 {
            p.key("queue_bytes", "must be at most 1 TiB");
        }
        p.range("writers", self.writers, 1, 64);
        p.duration_range("retry_initial", self.retry_initial, MILLISECOND, HOUR);
        p.duration_range("retry_max", self.retry_max, MILLISECOND, DAY);
        if self.retry_initial > self.retry_max {
            p.key("retry_initial", "must not be longer than retry_max");
        }
    }
}
