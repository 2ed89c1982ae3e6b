//! Retention, the package's `delete_old_logs` as a scheduled task of the daemon: oldest rows first, in
//! batches, each batch's counters subtracted in the same transaction, so the dashboard never blanks
//! and concurrent ingestion loses no increments.

use crate::settings::SECOND;
use crate::storage::{Backend, StorageError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::Duration;

/// `[retention]`: keep `days` days (0: keep everything), check every `interval`, `batch` rows at once.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    pub days: u32,
    #[serde(with = "crate::settings::duration")]
    pub interval: Duration,
    pub batch: usize,
}

impl crate::settings::Section for RetentionConfig {
    const NAME: &'static str = "retention";

    fn check(&self, p: &mut crate::settings::Problems<'_>) {
        if self.days > 36_500 {
            p.key(
                "days",
                format!(
                    "{} days is more than 100 years; use 0 to keep everything",
                    self.days
                ),
            );
        }
        p.duration_range(
            "interval",
            self.interval,
            SECOND,
            crate::settings::MAX_DURATION,
        );
        p.range("batch", self.batch, 1, 1_000_000);
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            days: 90,
            interval: Duration::from_secs(3600),
            batch: 1000,
        }
    }
}

/// Rows older than this are deleted.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(days as i64)
}

/// Deletes every row older than `cutoff`, `batch` rows per transaction; returns how many.
pub async fn run_pass<B: Backend>(
    backend: &B,
    cutoff: DateTime<Utc>,
    batch: usize,
    tz: Tz,
) -> Result<u64, StorageError> {
    let mut total = 0u64;
    loop {
        let n = backend.delete_batch(cutoff, batch, tz).await?;
        total += n as u64;
        if n < batch {
            return Ok(total);
        }
    }
}

/// How long after start the first pass runs.
pub const FIRST_RUN_DELAY: Duration = Duration::from_secs(5);

/// Runs passes on the schedule until cancelled: the first shortly after start, then every interval;
/// a pass that fails is logged and tried again at the next tick.
pub async fn schedule<B: Backend>(backend: Arc<B>, cfg: RetentionConfig, tz: Tz) {
    if cfg.days == 0 {
        return;
    }
    tokio::time::sleep(FIRST_RUN_DELAY).await;
    loop {
        let cut = cutoff(Utc::now(), cfg.days);
        match run_pass(&*backend, cut, cfg.batch, tz).await {
            Ok(0) => tracing::debug!("retention: nothing older than {cut}"),
            Ok(n) => tracing::info!("retention: deleted {n} row(s) older than {cut}"),
            Err(e) => tracing::warn!(
                "retention pass failed (next try in {:?}): {e}",
                cfg.interval
            ),
        }
        tokio::time::sleep(cfg.interval).await;
    }
}
