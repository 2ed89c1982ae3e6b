//! Counters shared by sources, queue and delivery: what came in, what was kept, what was written.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters (read them with [`Stats::snapshot`]).
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub parse_failures: AtomicU64,
    pub truncated: AtomicU64,
    pub filtered: AtomicU64,
    pub udp_dropped: AtomicU64,
    /// OTLP requests answered "unavailable, retry" (queue full).
    pub otlp_unavailable: AtomicU64,
    pub rows_written: AtomicU64,
    pub batches_written: AtomicU64,
    pub write_errors: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub received: u64,
    pub parse_failures: u64,
    pub truncated: u64,
    pub filtered: u64,
    pub udp_dropped: u64,
    pub otlp_unavailable: u64,
    pub rows_written: u64,
    pub batches_written: u64,
    pub write_errors: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: g(&self.received),
            parse_failures: g(&self.parse_failures),
            truncated: g(&self.truncated),
            filtered: g(&self.filtered),
            udp_dropped: g(&self.udp_dropped),
            otlp_unavailable: g(&self.otlp_unavailable),
            rows_written: g(&self.rows_written),
            batches_written: g(&self.batches_written),
            write_errors: g(&self.write_errors),
        }
    }
}
