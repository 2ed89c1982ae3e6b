//! Reads records back from the spool for delivery, oldest segment first, streaming (one buffer of
//! at most `READ_AHEAD` plus one record), up to what the writer has published. In segments a
//! previous run left, damage (a torn tail, flipped bytes) is skipped to the next intact record,
//! logged and counted, never fatal.

use super::format::{self, FRAME_HEADER, SEGMENT_HEADER};
use super::{Pos, Shared, seg_path};
use crate::pipeline::config::BatchCap;
use crate::record::Record;
use crate::stats::Stats;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

const READ_AHEAD: usize = 256 * 1024;

/// Records taken for one batch, and which segments they came from.
#[derive(Debug, Default)]
pub struct Taken {
    pub records: Vec<(Uuid, Record)>,
    /// (segment, records, bytes) to hand to [`super::Spool::committed`] after the commit.
    pub marks: Vec<(u64, u64, u64)>,
    /// Some records come from a previous run: the database may have them already.
    pub replayed: bool,
    /// The records' weight ([`Record::weight`]), for the batch's byte cap.
    pub weight: usize,
}

/// What [`SpoolReader::next`] found.
pub enum Next {
    Batch(Taken),
    Idle,
    Closed,
}

struct Cursor {
    no: u64,
    file: File,
    pos: u64,
    buf: Vec<u8>,
    buf_at: u64,
    read: u64,
    replay: bool,
}

impl Cursor {
    /// `n` bytes at `at`, which the caller has checked lie before the readable end `end`.
    fn bytes(&mut self, at: u64, n: usize, end: u64) -> std::io::Result<&[u8]> {
        let have = at >= self.buf_at && at + n as u64 <= self.buf_at + self.buf.len() as u64;
        if !have {
            let want = (n.max(READ_AHEAD) as u64).min(end - at) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.buf_at = at;
            if self.buf.capacity() > 4 * READ_AHEAD && want <= READ_AHEAD {
                self.buf.shrink_to(READ_AHEAD);
            }
        }
        let s = (at - self.buf_at) as usize;
        Ok(&self.buf[s..s + n])
    }

    /// The record at `at`, when an intact one starts there: (id, record, its framed length).
    fn record_at(&mut self, at: u64, end: u64) -> std::io::Result<Option<(Uuid, Record, u64)>> {
        if end.saturating_sub(at) < FRAME_HEADER as u64 {
            return Ok(None);
        }
        let head: [u8; FRAME_HEADER] = self.bytes(at, FRAME_HEADER, end)?.try_into().expect("12");
        let Some((len, crc)) = format::frame_header(&head) else {
            return Ok(None);
        };
        if (len as u64) > end - at - FRAME_HEADER as u64 {
            return Ok(None);
        }
        let payload = self.bytes(at + FRAME_HEADER as u64, len, end)?;
        if format::checksum(len as u32, payload) != crc {
            return Ok(None);
        }
        match format::decode(payload) {
            Ok((id, r)) => Ok(Some((id, r, (FRAME_HEADER + len) as u64))),
            Err(e) => {
                tracing::warn!("spool: {e}");
                Ok(None)
            }
        }
    }

    /// The next offset after `from` where an intact record starts, or `end`.
    fn resync(&mut self, from: u64, end: u64) -> std::io::Result<u64> {
        let magic = format::RECORD_MAGIC.to_le_bytes();
        let mut at = from + 1;
        while at + FRAME_HEADER as u64 <= end {
            let n = ((end - at) as usize).min(READ_AHEAD);
            let window = self.bytes(at, n, end)?;
            let hit = window.windows(4).position(|w| w == magic);
            match hit {
                Some(i) => {
                    let cand = at + i as u64;
                    if self.record_at(cand, end)?.is_some() {
                        return Ok(cand);
                    }
                    at = cand + 1;
                }
                None => at += (n.saturating_sub(3)).max(1) as u64,
            }
        }
        Ok(end)
    }
}

/// Delivery's reader of the spool.
pub struct SpoolReader {
    sh: Arc<Shared>,
    rx: watch::Receiver<Pos>,
    cur: Option<Cursor>,
    /// The next segment number to look for.
    next_seg: u64,
}

impl SpoolReader {
    pub(crate) fn new(sh: Arc<Shared>) -> SpoolReader {
        let rx = sh.readable.subscribe();
        SpoolReader {
            sh,
            rx,
            cur: None,
            next_seg: 0,
        }
    }

    fn open(&mut self, pos: Pos) -> std::io::Result<bool> {
        let found = {
            let segs = self.sh.segs.lock().expect("segs lock");
            segs.range(self.next_seg..)
                .next()
                .map(|(no, s)| (*no, s.replay))
        };
        let Some((no, replay)) = found else {
            return Ok(false);
        };
        if no > pos.seg {
            return Ok(false);
        }
        let path = seg_path(&self.sh.dir, no);
        let file = File::open(&path)?;
        let mut c = Cursor {
            no,
            file,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
            read: 0,
            replay,
        };
        let end = self.end_of(&c, pos);
        let n = SEGMENT_HEADER.len();
        let header_ok = end >= n as u64 && c.bytes(0, n, end)? == &SEGMENT_HEADER[..];
        if header_ok {
            c.pos = SEGMENT_HEADER.len() as u64;
        } else {
            let next = c.resync(0, end)?;
            self.cut(&c, 0, next, "its header is damaged");
            c.pos = next;
        }
        self.cur = Some(c);
        Ok(true)
    }

    /// Where the readable part of the cursor's segment ends now.
    fn end_of(&self, c: &Cursor, pos: Pos) -> u64 {
        if c.no == pos.seg {
            return pos.off;
        }
        let segs = self.sh.segs.lock().expect("segs lock");
        segs.get(&c.no).and_then(|s| s.sealed).unwrap_or(0)
    }

    fn cut(&self, c: &Cursor, from: u64, to: u64, why: &str) {
        let path = seg_path(&self.sh.dir, c.no);
        tracing::warn!(
            "spool: {} is damaged at byte {from} ({why}): skipping {} byte(s) to the next intact record",
            path.display(),
            to - from
        );
        Stats::inc(&self.sh.stats.spool_cut_records);
        self.sh.stats.spool_cut_bytes.inc_by(to - from);
    }

    /// Reads what is readable now into `out`, up to `cap`. True when caught up.
    fn read_some(&mut self, out: &mut Taken, cap: BatchCap) -> std::io::Result<bool> {
        let pos = *self.rx.borrow_and_update();
        while !cap.full(out.records.len(), out.weight) {
            if self.cur.is_none() && !self.open(pos)? {
                return Ok(true);
            }
            let mut c = self.cur.take().expect("a cursor");
            let end = self.end_of(&c, pos);
            if c.pos >= end {
                let finished = c.no < pos.seg || pos.closed;
                if finished {
                    let read = c.read;
                    self.sh.progress(c.no, |s| {
                        s.read_done = true;
                        s.read = read;
                        s.sealed.get_or_insert(end);
                    });
                    self.next_seg = c.no + 1;
                    continue;
                }
                self.cur = Some(c);
                return Ok(true);
            }
            match c.record_at(c.pos, end)? {
                Some((id, record, len)) => {
                    c.pos += len;
                    c.read += 1;
                    match out.marks.last_mut() {
                        Some((seg, n, b)) if *seg == c.no => {
                            *n += 1;
                            *b += len;
                        }
                        _ => out.marks.push((c.no, 1, len)),
                    }
                    out.replayed |= c.replay;
                    if c.replay {
                        Stats::inc(&self.sh.stats.spool_replayed);
                    }
                    out.weight += record.weight();
                    out.records.push((id, record));
                }
                None => {
                    let next = c.resync(c.pos, end)?;
                    let why = if next == end {
                        "a torn or damaged tail"
                    } else {
                        "a damaged record"
                    };
                    self.cut(&c, c.pos, next, why);
                    c.pos = next;
                }
            }
            self.cur = Some(c);
        }
        Ok(false)
    }

    /// Up to `cap` (at least one record): waits for the first, then collects until the cap or
    /// `max_delay` after it. `Idle` when nothing came within `idle`; `Closed` once the spool is
    /// closed and read.
    pub async fn next(&mut self, cap: BatchCap, max_delay: Duration, idle: Duration) -> Next {
        let mut out = Taken::default();
        let idle_until = Instant::now() + idle;
        let mut deadline: Option<Instant> = None;
        loop {
            let caught_up = match self.read_some(&mut out, cap) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("spool: reading a segment failed: {e}; trying again");
                    self.cur = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if out.records.is_empty() {
                        return Next::Idle;
                    }
                    true
                }
            };
            if cap.full(out.records.len(), out.weight) {
                return Next::Batch(out);
            }
            if !out.records.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + max_delay);
            }
            if caught_up && self.rx.borrow().closed && self.cur.is_none() {
                return if out.records.is_empty() {
                    Next::Closed
                } else {
                    Next::Batch(out)
                };
            }
            if !caught_up {
                continue;
            }
            let until = deadline.unwrap_or(idle_until);
            if Instant::now() >= until {
                return if out.records.is_empty() {
                    Next::Idle
                } else {
                    Next::Batch(out)
                };
            }
            let _ = tokio::time::timeout_at(until, self.rx.changed()).await;
        }
    }
}
