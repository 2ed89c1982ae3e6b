//! The spool's byte budget (`max_bytes`): appenders take room, removed segments give it back.

use crate::stats::Stats;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) struct Room {
    used: Mutex<u64>,
    max: u64,
    changed: Notify,
    stats: Arc<Stats>,
}

impl Room {
    pub(crate) fn new(max: u64, used: u64, stats: Arc<Stats>) -> Room {
        stats.spool_bytes.set(used as i64);
        Room {
            used: Mutex::new(used),
            max,
            changed: Notify::new(),
            stats,
        }
    }

    /// Takes `n` bytes if they fit (a record larger than the whole budget fits an empty spool).
    pub(crate) fn try_take(&self, n: u64) -> bool {
        let mut u = self.used.lock().expect("room lock");
        if *u == 0 || *u + n <= self.max {
            *u += n;
            self.stats.spool_bytes.set(*u as i64);
            true
        } else {
            false
        }
    }

    /// Waits until `n` bytes fit, then takes them.
    pub(crate) async fn take(&self, n: u64) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.try_take(n) {
                return;
            }
            changed.await;
        }
    }

    /// Waits for room to be given back (or for the disk to recover), at most `max`.
    pub(crate) async fn wait_change(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.changed.notified()).await;
    }

    /// Gives bytes back and wakes the waiters.
    pub(crate) fn give(&self, n: u64) {
        let mut u = self.used.lock().expect("room lock");
        *u = u.saturating_sub(n);
        self.stats.spool_bytes.set(*u as i64);
        drop(u);
        self.changed.notify_waiters();
    }

    /// Wakes waiters without giving bytes (the disk has room again).
    pub(crate) fn poke(&self) {
        self.changed.notify_waiters();
    }

    pub(crate) fn used(&self) -> u64 {
        *self.used.lock().expect("room lock")
    }
}
