//! The spool's byte budget (`max_bytes`): appenders take room, removed segments give it back.

use crate::stats::Stats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) struct Room {
    used: Mutex<u64>,
    max: u64,
    /// Set at stop: what sources hold in hand is taken past `max` rather than lost.
    stopping: AtomicBool,
    changed: Notify,
    stats: Arc<Stats>,
}

impl Room {
    pub(crate) fn new(max: u64, used: u64, stats: Arc<Stats>) -> Room {
        stats.spool_bytes.set(used as i64);
        Room {
            used: Mutex::new(used),
            max,
            stopping: AtomicBool::new(false),
            changed: Notify::new(),
            stats,
        }
    }

    /// Takes `n` bytes if they fit (a record larger than the whole budget fits an empty spool, and
    /// anything fits once the daemon is stopping).
    pub(crate) fn try_take(&self, n: u64) -> bool {
        let mut u = self.used.lock().expect("room lock");
        if *u == 0 || *u + n <= self.max || self.stopping.load(Ordering::Relaxed) {
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

    /// From now on every take succeeds, and the waiters are woken to take theirs: at stop, the
    /// frames a connection has read (which its sender's TCP stack was told we have) and the
    /// requests in hand are spooled past `max` instead of being cancelled with the listener.
    pub(crate) fn overflow_for_stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
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
