//! The disk spool between intake and delivery: what a source hands over is appended to segment
//! files (with its final row id) before it is acknowledged, delivery reads the records back from
//! the files, and a segment is removed once all its records are committed. After a crash the
//! daemon replays what is left; ids already in the database are skipped, so nothing is written
//! twice. See README "Delivery semantics" for the promise per sync policy.

pub mod config;
pub mod format;
pub mod reader;
mod room;
pub mod writer;

use crate::record::Record;
use crate::stats::Stats;
use room::Room;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

pub use reader::{SpoolReader, Taken};

/// When the spool forces written records to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging (one fsync covers every request waiting: group commit).
    Always,
    /// Acknowledge once written to the file (safe from a daemon crash), fsync every interval
    /// (a power loss can take the last interval).
    Interval(Duration),
    /// Acknowledge once written to the file; the kernel writes it back when it likes.
    Never,
}

impl SyncPolicy {
    /// How far a stream source (syslog TCP) may read ahead of the spool.
    pub fn lag(self) -> Duration {
        match self {
            SyncPolicy::Interval(d) => d,
            _ => Duration::from_millis(100),
        }
    }
}

/// Where and how to spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Directory of the segment files (created when missing).
    pub dir: PathBuf,
    /// Bytes of records the spool may hold before sources get backpressure.
    pub max_bytes: u64,
    pub sync: SyncPolicy,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

/// Why the spool could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("spool directory {dir}: {what}: {source}")]
pub struct SpoolError {
    pub dir: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// How a record's failed write (disk full) is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The appender waits for the outcome and answers "retry" on failure (OTLP).
    Wait,
    /// Kept in memory and written again until it succeeds (syslog TCP: bytes already read).
    Keep,
    /// Dropped and counted on failure (syslog UDP).
    Drop,
}

/// The outcome of one flush, shared by every record in it.
pub(crate) struct Group {
    done: watch::Sender<Option<bool>>,
}

impl Group {
    fn new() -> Arc<Group> {
        Arc::new(Group {
            done: watch::channel(None).0,
        })
    }
}

/// Resolves when the record is written (and synced, under `always`).
pub struct Ack(watch::Receiver<Option<bool>>);

impl Ack {
    /// True once durable under the sync policy; false when the write failed (disk full, shutdown).
    pub async fn wait(mut self) -> bool {
        match self.0.wait_for(|v| v.is_some()).await {
            Ok(v) => v.unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// Records appended but not written yet.
pub(crate) struct Pending {
    buf: Vec<u8>,
    entries: Vec<(u32, Kind)>,
    group: Arc<Group>,
    since: Option<Instant>,
    closing: bool,
}

/// Where the reader may read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    seg: u64,
    off: u64,
    /// No more writes will come (shutdown).
    closed: bool,
}

/// Bookkeeping of one segment file.
#[derive(Debug, Default)]
pub(crate) struct Seg {
    /// Final length once no more records go in (always set for segments found at start).
    sealed: Option<u64>,
    /// Found at start: a previous run wrote it, so its records may be committed already.
    replay: bool,
    /// The reader is past its end; `read` is then final.
    read_done: bool,
    read: u64,
    committed: u64,
    /// Record bytes written (or found) in it.
    bytes: u64,
    /// Bytes given back to the room so far (on commit; the rest when the file is removed).
    given: u64,
}

pub(crate) struct Shared {
    dir: PathBuf,
    settings: SpoolSettings,
    pending: Mutex<Pending>,
    wake: Condvar,
    room: Room,
    segs: Mutex<BTreeMap<u64, Seg>>,
    readable: watch::Sender<Pos>,
    /// The last write failed (disk full): new records wait or are refused until one succeeds.
    full: AtomicBool,
    stats: Arc<Stats>,
    /// Held (flock) while this process uses the directory; let go by [`Spool::close`].
    lock: Mutex<Option<std::fs::File>>,
}

/// The spool handle, shared by intake (appending) and delivery (reading, committing).
#[derive(Clone)]
pub struct Spool {
    sh: Arc<Shared>,
}

/// The spool is shut down.
#[derive(Debug, thiserror::Error)]
#[error("the spool is shut down")]
pub struct SpoolClosed;

/// Bytes appended but not yet written past which datagrams are dropped (stream and request sources
/// wait for the writer anyway).
const PENDING_MAX: usize = 32 << 20;

fn seg_name(no: u64) -> String {
    format!("{no:020}.seg")
}

pub(crate) fn seg_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(seg_name(no))
}

impl Spool {
    /// Opens (creating) the spool directory, takes its lock, lists what a previous run left for
    /// replay and starts the writer thread on a new segment.
    pub fn open(mut settings: SpoolSettings, stats: Arc<Stats>) -> Result<Spool, SpoolError> {
        // Several segments fit the budget, so removing one frees a useful part of the disk.
        settings.segment_bytes = settings
            .segment_bytes
            .min((settings.max_bytes / 8).max(64 * 1024));
        let dir = settings.dir.clone();
        let err = |what| {
            let dir = dir.clone();
            move |source| SpoolError { dir, what, source }
        };
        std::fs::create_dir_all(&dir).map_err(err("cannot create it"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(err("cannot open its lock file"))?;
        lock.try_lock().map_err(|e| SpoolError {
            dir: dir.clone(),
            what: "another collector uses it (lock file held)",
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut segs = BTreeMap::new();
        let mut used = 0;
        for entry in std::fs::read_dir(&dir).map_err(err("cannot list it"))? {
            let entry = entry.map_err(err("cannot list it"))?;
            let name = entry.file_name();
            let Some(no) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry
                .metadata()
                .map_err(err("cannot stat a segment"))?
                .len();
            let bytes = len.saturating_sub(format::SEGMENT_HEADER.len() as u64);
            used += bytes;
            segs.insert(
                no,
                Seg {
                    sealed: Some(len),
                    replay: true,
                    bytes,
                    ..Seg::default()
                },
            );
        }
        if !segs.is_empty() {
            tracing::info!(
                segments = segs.len(),
                bytes = used,
                "spool: replaying what the last run left in {}",
                dir.display()
            );
        }
        let first = segs.keys().next_back().map_or(1, |n| n + 1);
        let file = writer::create_segment(&dir, first, settings.sync != SyncPolicy::Never)
            .map_err(err("cannot create a segment"))?;
        segs.insert(first, Seg::default());
        let start = Pos {
            seg: first,
            off: format::SEGMENT_HEADER.len() as u64,
            closed: false,
        };
        let sh = Arc::new(Shared {
            dir: dir.clone(),
            room: Room::new(settings.max_bytes, used, stats.clone()),
            settings,
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                entries: Vec::new(),
                group: Group::new(),
                since: None,
                closing: false,
            }),
            wake: Condvar::new(),
            segs: Mutex::new(segs),
            readable: watch::channel(start).0,
            full: AtomicBool::new(false),
            stats,
            lock: Mutex::new(Some(lock)),
        });
        let w = sh.clone();
        std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || writer::run(w, file, first))
            .map_err(err("cannot start the writer thread"))?;
        Ok(Spool { sh })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &SpoolSettings {
        &self.sh.settings
    }

    /// A reader from the oldest segment on. Delivery holds the only one.
    pub fn reader(&self) -> SpoolReader {
        SpoolReader::new(self.sh.clone())
    }

    fn append_locked(p: &mut Pending, items: &[(Uuid, &Record)], kind: Kind) -> Ack {
        for (id, r) in items {
            let before = p.buf.len();
            format::encode(*id, r, &mut p.buf);
            p.entries.push(((p.buf.len() - before) as u32, kind));
        }
        p.since.get_or_insert_with(Instant::now);
        Ack(p.group.done.subscribe())
    }

    fn append(&self, items: &[(Uuid, &Record)], kind: Kind) -> Result<Ack, SpoolClosed> {
        let mut p = self.sh.pending.lock().expect("spool lock");
        if p.closing {
            return Err(SpoolClosed);
        }
        let ack = Self::append_locked(&mut p, items, kind);
        drop(p);
        self.sh.wake.notify_one();
        Ok(ack)
    }

    /// Stream sources: waits for room (and for the disk while it is full), appends, and waits for
    /// the write only when the spool is more than one sync interval behind.
    pub async fn submit(&self, record: &Record) -> Result<(), SpoolClosed> {
        let id = Uuid::now_v7();
        let len = format::encoded_len(record) as u64;
        loop {
            self.sh.room.take(len).await;
            if !self.sh.full.load(Ordering::Relaxed) {
                break;
            }
            self.sh.room.give(len);
            self.sh.room.wait_change(Duration::from_millis(100)).await;
        }
        let ack = self.append(&[(id, record)], Kind::Keep).inspect_err(|_| {
            self.sh.room.give(len);
        })?;
        if self.behind() {
            ack.wait().await;
        }
        Ok(())
    }

    /// True while the oldest unwritten record waits for longer than the sync lag.
    fn behind(&self) -> bool {
        let lag = self.sh.settings.sync.lag();
        let p = self.sh.pending.lock().expect("spool lock");
        p.since.is_some_and(|t| t.elapsed() > lag)
    }

    /// Request sources: all records or none, waiting up to `wait` for room; true once they are
    /// durable under the sync policy, false when they were not spooled (full, disk full, closed).
    /// While the disk is full each request still tries (and fails fast), so the first write that
    /// fits again ends the backpressure.
    pub async fn submit_all(
        &self,
        records: &[Record],
        wait: Duration,
    ) -> Result<bool, SpoolClosed> {
        let len: u64 = records.iter().map(|r| format::encoded_len(r) as u64).sum();
        if tokio::time::timeout(wait, self.sh.room.take(len))
            .await
            .is_err()
        {
            return Ok(false);
        }
        let items: Vec<(Uuid, &Record)> = records.iter().map(|r| (Uuid::now_v7(), r)).collect();
        let ack = self.append(&items, Kind::Wait).inspect_err(|_| {
            self.sh.room.give(len);
        })?;
        Ok(ack.wait().await)
    }

    /// Datagram sources: appends if there is room now; false means dropped (count it).
    pub fn offer(&self, record: &Record) -> Result<bool, SpoolClosed> {
        let len = format::encoded_len(record) as u64;
        // A writer stalled on the disk must not grow memory: past this, datagrams are dropped.
        let pending = self.sh.pending.lock().expect("spool lock").buf.len();
        if pending > PENDING_MAX || !self.sh.room.try_take(len) {
            return Ok(false);
        }
        self.append(&[(Uuid::now_v7(), record)], Kind::Drop)
            .inspect_err(|_| self.sh.room.give(len))?;
        Ok(true)
    }

    /// The daemon is stopping: sources may spool what they hold in hand past `max_bytes` (at
    /// most what the stopping listeners still read: syslog TCP reads on for up to 3 s), so a full
    /// spool does not turn a stop into lost frames. A full disk still stops them.
    pub fn overflow_for_stop(&self) {
        self.sh.room.overflow_for_stop();
    }

    /// Records of these segments are committed: their bytes are free again, and segments whose
    /// records are all committed are removed.
    pub fn committed(&self, marks: &[(u64, u64, u64)]) {
        for &(seg, n, bytes) in marks {
            self.sh.progress(seg, |s| {
                s.committed += n;
                s.given += bytes;
            });
            self.sh.room.give(bytes);
        }
    }

    /// Stops taking records, writes and syncs what is pending, and waits until the writer is done.
    pub async fn close(&self) {
        {
            let mut p = self.sh.pending.lock().expect("spool lock");
            p.closing = true;
        }
        self.sh.wake.notify_one();
        let mut rx = self.sh.readable.subscribe();
        let _ = rx.wait_for(|p| p.closed).await;
        // Nothing is written any more: another process may take the directory over.
        self.sh.lock.lock().expect("lock").take();
    }

    /// Bytes of records held now (for metrics and tests).
    pub fn used_bytes(&self) -> u64 {
        self.sh.room.used()
    }

    /// Segment files present.
    pub fn segments(&self) -> usize {
        self.sh.segs.lock().expect("segs lock").len()
    }
}

impl Shared {
    /// Updates a segment's bookkeeping and removes its file once every record in it is committed.
    pub(crate) fn progress(&self, seg: u64, f: impl FnOnce(&mut Seg)) {
        let mut segs = self.segs.lock().expect("segs lock");
        let Some(s) = segs.get_mut(&seg) else { return };
        f(s);
        if s.sealed.is_some() && s.read_done && s.committed >= s.read {
            let bytes = s.bytes.saturating_sub(s.given);
            segs.remove(&seg);
            drop(segs);
            let path = seg_path(&self.dir, seg);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("spool: cannot remove {}: {e}", path.display());
            }
            self.room.give(bytes);
        }
    }
}

#[cfg(test)]
mod tests;
