//! The spool's writer thread: takes what intake appended, writes it to the current segment with one
//! positioned write, syncs under the policy (one fsync for everything pending: group commit), then
//! tells the waiters and the reader. A failed write (disk full) is cut off again; records of stream
//! sources are kept and written again, the others are refused, and intake sees backpressure until
//! a write succeeds.

use super::{Group, Kind, Pos, Shared, SyncPolicy, format, seg_path};
use crate::stats::Stats;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Creates segment `no` with its header (and makes the new name durable when `sync`).
pub(crate) fn create_segment(dir: &Path, no: u64, sync: bool) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(seg_path(dir, no))?;
    file.write_all_at(format::SEGMENT_HEADER, 0)?;
    if sync {
        file.sync_data()?;
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

struct Current {
    file: File,
    no: u64,
    off: u64,
    dirty: bool,
    last_sync: Instant,
}

/// One batch taken from [`Pending`].
struct Taken {
    buf: Vec<u8>,
    entries: Vec<(u32, Kind)>,
    group: Arc<Group>,
}

fn take(sh: &Shared, cur: &Current) -> (Option<Taken>, bool) {
    let tick = match sh.settings.sync {
        SyncPolicy::Interval(d) => d.min(Duration::from_millis(100)),
        _ => Duration::from_millis(100),
    };
    let mut p = sh.pending.lock().expect("spool lock");
    if p.buf.is_empty() && !p.closing {
        let wait = if sh.full.load(Ordering::Relaxed) || cur.dirty {
            tick
        } else {
            Duration::from_secs(1)
        };
        p = sh.wake.wait_timeout(p, wait).expect("spool lock").0;
    }
    let closing = p.closing;
    if p.buf.is_empty() {
        return (None, closing);
    }
    let taken = Taken {
        buf: std::mem::take(&mut p.buf),
        entries: std::mem::take(&mut p.entries),
        group: std::mem::replace(&mut p.group, Group::new()),
    };
    p.since = None;
    (Some(taken), closing)
}

fn sync(cur: &mut Current) {
    if cur.dirty {
        if let Err(e) = cur.file.sync_data() {
            tracing::error!("spool: fsync of segment {} failed: {e}", cur.no);
        }
        cur.dirty = false;
    }
    cur.last_sync = Instant::now();
}

fn rotate(sh: &Shared, cur: &mut Current) -> std::io::Result<()> {
    let syncing = sh.settings.sync != SyncPolicy::Never;
    if syncing {
        sync(cur);
    }
    let file = create_segment(&sh.dir, cur.no + 1, sh.settings.sync == SyncPolicy::Always)?;
    let old = cur.no;
    sh.segs
        .lock()
        .expect("segs lock")
        .insert(old + 1, Default::default());
    sh.progress(old, |s| s.sealed = Some(cur.off));
    *cur = Current {
        file,
        no: old + 1,
        off: format::SEGMENT_HEADER.len() as u64,
        dirty: false,
        last_sync: Instant::now(),
    };
    publish(sh, cur, false);
    Ok(())
}

fn publish(sh: &Shared, cur: &Current, closed: bool) {
    sh.readable.send_replace(Pos {
        seg: cur.no,
        off: cur.off,
        closed,
    });
}

/// Writes one batch; on failure gives back what cannot wait and re-queues what must be kept.
fn write(sh: &Shared, cur: &mut Current, t: Taken) {
    if cur.off >= sh.settings.segment_bytes
        && let Err(e) = rotate(sh, cur)
    {
        tracing::warn!("spool: cannot start a new segment ({e}); writing on in the current one");
    }
    match cur.file.write_all_at(&t.buf, cur.off) {
        Ok(()) => {
            cur.off += t.buf.len() as u64;
            cur.dirty = true;
            let len = t.buf.len() as u64;
            sh.progress(cur.no, |s| s.bytes += len);
            if sh.settings.sync == SyncPolicy::Always {
                sync(cur);
            }
            publish(sh, cur, false);
            t.group.done.send_replace(Some(true));
            if sh.full.swap(false, Ordering::Relaxed) {
                tracing::info!("spool: writes succeed again; taking records again");
                sh.room.poke();
            }
        }
        Err(e) => {
            // Cut the partial write off so a replay does not have to (best effort: the reader
            // only reads up to what was published anyway).
            let _ = cur.file.set_len(cur.off);
            if !sh.full.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "spool: cannot write to {} ({e}); refusing OTLP, dropping UDP and pausing TCP until it works",
                    sh.dir.display()
                );
            }
            Stats::inc(&sh.stats.spool_write_errors);
            let mut kept = Vec::new();
            let mut kept_entries = Vec::new();
            let mut at = 0usize;
            let mut freed = 0u64;
            for (len, kind) in t.entries {
                let bytes = &t.buf[at..at + len as usize];
                at += len as usize;
                match kind {
                    Kind::Keep => {
                        kept.extend_from_slice(bytes);
                        kept_entries.push((len, kind));
                    }
                    Kind::Drop => {
                        Stats::inc(&sh.stats.udp_dropped);
                        freed += len as u64;
                    }
                    Kind::Wait => freed += len as u64,
                }
            }
            sh.room.give(freed);
            t.group.done.send_replace(Some(false));
            if !kept.is_empty() {
                let mut p = sh.pending.lock().expect("spool lock");
                kept.extend_from_slice(&p.buf);
                kept_entries.append(&mut p.entries);
                p.buf = kept;
                p.entries = kept_entries;
                p.since.get_or_insert_with(Instant::now);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The thread's loop, until the spool is closed and everything pending is written.
pub(crate) fn run(sh: Arc<Shared>, file: File, no: u64) {
    let mut cur = Current {
        file,
        no,
        off: format::SEGMENT_HEADER.len() as u64,
        dirty: false,
        last_sync: Instant::now(),
    };
    let mut failures_at_close = 0;
    loop {
        let (taken, closing) = take(&sh, &cur);
        if let Some(t) = taken {
            write(&sh, &mut cur, t);
        }
        if let SyncPolicy::Interval(d) = sh.settings.sync
            && cur.last_sync.elapsed() >= d
        {
            sync(&mut cur);
        }
        if closing {
            let empty = sh.pending.lock().expect("spool lock").buf.is_empty();
            if !empty && sh.full.load(Ordering::Relaxed) {
                failures_at_close += 1;
            }
            if empty || failures_at_close > 50 {
                if !empty {
                    tracing::error!(
                        "spool: the disk stayed full at shutdown; records read from TCP since are lost"
                    );
                }
                if sh.settings.sync != SyncPolicy::Never {
                    sync(&mut cur);
                }
                publish(&sh, &cur, true);
                return;
            }
        }
    }
}
