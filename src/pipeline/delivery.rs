//! Delivery: takes batches off the queue, builds them once, and writes them with retries (capped
//! exponential backoff, logged once per state change) so that a database outage delays records but
//! loses none. Queue bytes are released only after commit.

use super::batch::{Batch, Layout};
use super::queue::QueueReceiver;
use crate::config::BatchConfig;
use crate::stats::Stats;
use crate::storage::{Backend, StorageError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// Retries an operation until it succeeds, sleeping `initial`, `2*initial`, … up to `max`.
pub struct Retry {
    initial: Duration,
    max: Duration,
    failing: AtomicBool,
}

impl Retry {
    /// A policy shared by all writers, so "storage down" / "recovered" is logged once.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Retry {
            initial,
            max,
            failing: AtomicBool::new(false),
        }
    }

    /// Runs `op` until it returns `Ok`.
    pub async fn run<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
        &self,
        what: &str,
        stats: &Stats,
        mut op: impl FnMut() -> F,
    ) -> T {
        let mut delay = self.initial;
        loop {
            match op().await {
                Ok(v) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("storage is back: {what} succeeded");
                    }
                    return v;
                }
                Err(e) => {
                    Stats::inc(&stats.write_errors);
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "storage failed while {what}; retrying until it works, nothing is dropped: {e}"
                        );
                    } else {
                        tracing::debug!("still failing ({what}): {e}");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max);
                }
            }
        }
    }
}

/// Writes a batch; on a retry, first checks whether the previous attempt committed after all.
async fn write_once<B: Backend>(
    backend: &B,
    batch: &Batch,
    attempts: &AtomicU32,
) -> Result<(), StorageError> {
    if attempts.fetch_add(1, Ordering::Relaxed) > 0
        && let Some(first) = batch.rows.first()
        && backend.contains_row(first.id).await?
    {
        tracing::info!(
            "a batch retried after an error had been committed already; not writing it again"
        );
        return Ok(());
    }
    backend.write_batch(batch).await
}

/// Migrates, then writes batches until the queue is closed and drained.
pub async fn run<B: Backend>(
    backend: Arc<B>,
    queue: QueueReceiver,
    layout: Layout,
    cfg: BatchConfig,
    stats: Arc<Stats>,
) {
    let retry = Arc::new(Retry::new(cfg.retry_initial, cfg.retry_max));
    let report = retry
        .run("migrating the schema", &stats, || backend.migrate())
        .await;
    if report.applied.is_empty() {
        tracing::info!("schema is up to date in {}", backend.describe());
    } else {
        tracing::info!(applied = ?report.applied, "created the panel schema in {}", backend.describe());
    }
    let queue = Arc::new(Mutex::new(queue));
    let mut writers = JoinSet::new();
    for _ in 0..cfg.writers {
        let (backend, queue, retry, stats) =
            (backend.clone(), queue.clone(), retry.clone(), stats.clone());
        let cfg = cfg.clone();
        writers.spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .await
                    .next_batch(cfg.max_records, cfg.max_delay)
                    .await;
                let Some((records, ticket)) = next else { break };
                let n = records.len() as u64;
                let batch = Batch::build(records, &layout);
                let attempts = AtomicU32::new(0);
                retry
                    .run("writing a batch", &stats, || {
                        let (backend, batch, attempts) = (&*backend, &batch, &attempts);
                        async move { write_once(backend, batch, attempts).await }
                    })
                    .await;
                ticket.release();
                stats.rows_written.fetch_add(n, Ordering::Relaxed);
                Stats::inc(&stats.batches_written);
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        if let Err(e) = r {
            tracing::error!("a writer task failed: {e}");
        }
    }
}
