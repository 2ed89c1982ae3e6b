//! Delivery: takes batches off the queue, builds them once, and writes them with retries (capped
//! exponential backoff, logged once per state change) so that a database outage delays records but
//! loses none. Queue bytes are released only after commit.

use super::batch::{Batch, Layout};
use super::config::BatchConfig;
use super::queue::{Next, QueueReceiver};
use super::spool::reader::Next as SpoolNext;
use super::spool::{Spool, SpoolReader};
use crate::live::Live;
use crate::record::Record;
use crate::stats::Stats;
use crate::storage::{Backend, StorageError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use uuid::Uuid;

/// How often an idle writer shows it is alive.
pub const IDLE_BEAT: Duration = Duration::from_millis(500);

/// Retries an operation until it succeeds, sleeping `initial`, `2*initial`, … up to `max`.
pub struct Retry {
    cfg: Arc<Live<BatchConfig>>,
    failing: AtomicBool,
}

impl Retry {
    /// A policy shared by all writers, so "storage down" / "recovered" is logged once.
    pub fn new(cfg: Arc<Live<BatchConfig>>) -> Self {
        Retry {
            cfg,
            failing: AtomicBool::new(false),
        }
    }

    /// Runs `op` until it returns `Ok`.
    pub async fn run<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
        &self,
        what: &str,
        stats: &Stats,
        op: impl FnMut() -> F,
    ) -> T {
        match self.run_until(what, stats, op, |_| false).await {
            Ok(v) => v,
            Err(_) => unreachable!("no error is given up on"),
        }
    }

    /// Runs `op` until it returns `Ok`, or until an error that `give_up` calls permanent came
    /// three times in a row (the same data refused again and again).
    pub async fn run_until<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
        &self,
        what: &str,
        stats: &Stats,
        mut op: impl FnMut() -> F,
        give_up: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        let mut delay = self.cfg.get().retry_initial;
        let mut refused = 0;
        loop {
            stats.beat();
            match op().await {
                Ok(v) => {
                    stats.storage_up.store(true, Ordering::Relaxed);
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("storage is back: {what} succeeded");
                    }
                    return Ok(v);
                }
                Err(e)
                    if give_up(&e) && {
                        refused += 1;
                        refused >= 3
                    } =>
                {
                    Stats::inc(&stats.write_errors);
                    return Err(e);
                }
                Err(e) => {
                    Stats::inc(&stats.write_errors);
                    // A database that refuses the data answered: it is up (and a stop does not
                    // take it for an outage).
                    stats.storage_up.store(give_up(&e), Ordering::Relaxed);
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "storage failed while {what}; retrying until it works, nothing is dropped: {e}"
                        );
                    } else {
                        tracing::debug!("still failing ({what}): {e}");
                    }
                    // Sleep in slices that each show the pipeline alive: waiting for storage is not
                    // being stuck (the watchdog must not restart the service for an outage).
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        tokio::time::sleep((until - Instant::now()).min(IDLE_BEAT)).await;
                        stats.beat();
                    }
                    delay = (delay * 2).min(self.cfg.get().retry_max);
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
    stats: &Stats,
) -> Result<(), StorageError> {
    if attempts.fetch_add(1, Ordering::Relaxed) > 0 {
        Stats::inc(&stats.retries);
        if let Some(first) = batch.rows.first()
            && backend.contains_row(first.id).await?
        {
            tracing::info!(
                "a batch retried after an error had been committed already; not writing it again"
            );
            return Ok(());
        }
    }
    let t0 = Instant::now();
    let r = backend.write_batch(batch).await;
    stats.write_seconds.observe(t0.elapsed().as_secs_f64());
    r
}

/// Writes a batch with retries until it is stored, or until the database refuses its data three
/// times (a permanent error, returned).
async fn write_until_refused<B: Backend>(
    backend: &B,
    batch: &Batch,
    what: &str,
    retry: &Retry,
    stats: &Stats,
) -> Result<(), StorageError> {
    let attempts = AtomicU32::new(0);
    retry
        .run_until(
            what,
            stats,
            || {
                let attempts = &attempts;
                async move { write_once(backend, batch, attempts, stats).await }
            },
            StorageError::is_permanent,
        )
        .await
}

/// Writes a batch, retrying until it is stored. When the database refuses its data (not the
/// connection) again and again, the batch is written in halves, down to the one record it refuses;
/// that record is stored as an error record that says why and carries its text, so nothing is lost
/// silently and no bad record stops the pipeline. The halves keep the rows' ids, so what a
/// non-transactional database (MongoDB) stored of a refused batch is not stored again. Returns how
/// many of the batch's records were stored as themselves (the rest were set aside).
fn deliver<'a, B: Backend>(
    backend: &'a B,
    batch: Batch,
    layout: &'a Layout,
    retry: &'a Retry,
    stats: &'a Stats,
) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send + 'a>> {
    Box::pin(async move {
        let Err(e) = write_until_refused(backend, &batch, "writing a batch", retry, stats).await
        else {
            return batch.rows.len() as u64;
        };
        let mut records = batch.records_with_ids();
        if records.len() > 1 {
            tracing::warn!(
                "storage refuses a batch of {} records ({e}); writing it in halves",
                records.len()
            );
            let second = records.split_off(records.len() / 2);
            let mut stored = 0;
            for part in [records, second] {
                let part = Batch::build_with_ids(part, layout);
                stored += deliver(backend, part, layout, retry, stats).await;
            }
            return stored;
        }
        let Some((_, bad)) = records.pop() else {
            return 0;
        };
        tracing::error!(
            "storage refuses a record of logger {:?} ({e}); storing an error record in its place",
            bad.logger_name
        );
        let mut message = format!(
            "log-panel-collector could not store a record of logger {:?} at {} ({}): {e}\n",
            bad.logger_name, bad.timestamp, bad.level
        );
        let mut text = bad.message;
        crate::record::clip_chars(&mut text, layout.preview);
        message.push_str(&text);
        let stand_in = crate::record::Record {
            timestamp: chrono::Utc::now(),
            level: crate::record::Level::Error,
            logger_name: "log-panel-collector".into(),
            module: String::new(),
            pathname: String::new(),
            line_number: 0,
            message,
        };
        // The stand-in's id derives from the refused record's, so a replay writes it once.
        let id = Uuid::new_v5(&batch.rows[0].id, b"error-record");
        let batch = Batch::build_with_ids(vec![(id, stand_in)], layout);
        match write_until_refused(backend, &batch, "writing an error record", retry, stats).await {
            Ok(()) => Stats::inc(&stats.error_records),
            Err(e) => {
                tracing::error!(
                    "storage refuses even the error record ({e}); the record is dropped"
                )
            }
        }
        0
    })
}

/// Where delivery takes records from.
pub enum Feed {
    /// The in-memory queue (spool off).
    Queue(QueueReceiver),
    /// The disk spool: records come with their ids; segments are released after commit.
    Spool(Spool),
}

/// Records replayed from the spool that the database has already (committed before a crash):
/// dropped from the batch, so they are neither written nor counted again.
async fn skip_stored<B: Backend>(
    backend: &B,
    records: &mut Vec<(Uuid, Record)>,
    retry: &Retry,
    stats: &Stats,
) {
    let ids: Vec<Uuid> = records.iter().map(|(id, _)| *id).collect();
    let found = retry
        .run("looking up replayed records", stats, || {
            backend.existing_ids(&ids)
        })
        .await;
    if !found.is_empty() {
        tracing::info!(
            "spool: {} replayed record(s) were committed before the restart; not writing them again",
            found.len()
        );
        stats.spool_skipped.inc_by(found.len() as u64);
        records.retain(|(id, _)| !found.contains(id));
    }
}

/// Everything a writer task needs.
struct Writer<B> {
    backend: Arc<B>,
    layout: Layout,
    retry: Arc<Retry>,
    stats: Arc<Stats>,
    cfg: Arc<Live<BatchConfig>>,
}

impl<B: Backend> Writer<B> {
    async fn write(&self, records: Vec<(Uuid, Record)>) {
        if records.is_empty() {
            return;
        }
        let batch = Batch::build_with_ids(records, &self.layout);
        let stored = deliver(
            &*self.backend,
            batch,
            &self.layout,
            &self.retry,
            &self.stats,
        )
        .await;
        self.stats.rows_written.inc_by(stored);
        Stats::inc(&self.stats.batches_written);
    }

    async fn drain_queue(self, queue: Arc<Mutex<QueueReceiver>>) {
        loop {
            self.stats.beat();
            let c = self.cfg.get();
            let next = queue
                .lock()
                .await
                .next_batch_or_idle(c.cap(), c.max_delay, IDLE_BEAT)
                .await;
            let (records, ticket) = match next {
                Next::Batch(r, t) => (r, t),
                Next::Idle => continue,
                Next::Closed => break,
            };
            self.write(records.into_iter().map(|r| (Uuid::now_v7(), r)).collect())
                .await;
            ticket.release();
        }
    }

    async fn drain_spool(self, spool: Spool, reader: Arc<Mutex<SpoolReader>>) {
        loop {
            self.stats.beat();
            let c = self.cfg.get();
            let next = reader
                .lock()
                .await
                .next(c.cap(), c.max_delay, IDLE_BEAT)
                .await;
            let mut taken = match next {
                SpoolNext::Batch(t) => t,
                SpoolNext::Idle => continue,
                SpoolNext::Closed => break,
            };
            if taken.replayed {
                skip_stored(&*self.backend, &mut taken.records, &self.retry, &self.stats).await;
            }
            self.write(taken.records).await;
            spool.committed(&taken.marks);
        }
    }
}

/// Migrates, then writes batches until the queue is closed and drained. `writers` batches are
/// written at once; batch size and delay are read from `cfg` for every batch (reloadable).
pub async fn run<B: Backend>(
    backend: Arc<B>,
    feed: Feed,
    layout: Layout,
    cfg: Arc<Live<BatchConfig>>,
    writers: usize,
    stats: Arc<Stats>,
) {
    let retry = Arc::new(Retry::new(cfg.clone()));
    let report = match retry
        .run_until(
            "migrating the schema",
            &stats,
            || backend.migrate(),
            StorageError::is_schema_conflict,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let msg = format!(
                "cannot set up the schema in {} ({e}): {}",
                backend.describe(),
                crate::storage::SCHEMA_CONFLICT_HELP
            );
            tracing::error!("{msg}");
            *stats.fatal.lock().expect("fatal lock") = Some(msg);
            return;
        }
    };
    if report.applied.is_empty() {
        tracing::info!("schema is up to date in {}", backend.describe());
    } else {
        tracing::info!(applied = ?report.applied, "created the panel schema in {}", backend.describe());
    }
    let mut tasks = JoinSet::new();
    let (queue, spool) = match feed {
        Feed::Queue(q) => (Some(Arc::new(Mutex::new(q))), None),
        Feed::Spool(s) => {
            let reader = Arc::new(Mutex::new(s.reader()));
            (None, Some((s, reader)))
        }
    };
    for _ in 0..writers.max(1) {
        let w = Writer {
            backend: backend.clone(),
            layout,
            retry: retry.clone(),
            stats: stats.clone(),
            cfg: cfg.clone(),
        };
        match (&queue, &spool) {
            (Some(q), _) => tasks.spawn(w.drain_queue(q.clone())),
            (None, Some((s, r))) => tasks.spawn(w.drain_spool(s.clone(), r.clone())),
            (None, None) => unreachable!("one feed"),
        };
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!("a writer task failed: {e}");
        }
    }
}
