//! The bench's progress line on a terminal: records sent and stored so far and their rates over the
//! last second, rewritten in place about once a second on stderr, so a long run shows it is moving
//! and where the database falls behind. Only shown when stderr is a terminal.

use super::metrics::{self, MetricsUrl, Scrape};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A running progress line; [`Progress::finish`] stops and clears it.
pub struct Progress {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Stops the line and clears it, so the summary that follows starts on a clean line.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// One progress line: `sent N/TOTAL (R/s)  stored N (R/s)  T s`.
pub fn line(
    elapsed: Duration,
    sent: u64,
    total: u64,
    sent_rate: f64,
    stored: Option<(u64, f64)>,
) -> String {
    let stored = match stored {
        Some((n, r)) => format!("stored {n} ({r:.0}/s)"),
        None => "stored ?".into(),
    };
    format!(
        "bench: sent {sent}/{total} ({sent_rate:.0}/s)  {stored}  {:.0} s",
        elapsed.as_secs_f64()
    )
}

/// Starts the line: `sent` counts records sent, `metrics` (with the first scrape) gives what is
/// stored since.
pub fn spawn(
    started: Instant,
    total: u64,
    sent: Arc<AtomicU64>,
    metrics: Option<(MetricsUrl, Scrape)>,
) -> Progress {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut last_at, mut last_sent, mut last_stored) = (started, 0u64, 0u64);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stopped => return,
            }
            let now = Instant::now();
            let dt = (now - last_at).as_secs_f64().max(1e-3);
            let s = sent.load(Ordering::Relaxed);
            let stored = match &metrics {
                Some((url, base)) => metrics::scrape(url)
                    .await
                    .ok()
                    .map(|m| m.stored.saturating_sub(base.stored)),
                None => None,
            };
            let shown = stored.map(|n| (n, n.saturating_sub(last_stored) as f64 / dt));
            let text = line(
                now - started,
                s,
                total,
                s.saturating_sub(last_sent) as f64 / dt,
                shown,
            );
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{text}\x1b[K");
            let _ = err.flush();
            (last_at, last_sent) = (now, s);
            if let Some(n) = stored {
                last_stored = n;
            }
        }
    });
    Progress { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_sent_stored_and_rates() {
        assert_eq!(
            line(Duration::from_secs(3), 150, 1000, 50.0, Some((120, 40.4))),
            "bench: sent 150/1000 (50/s)  stored 120 (40/s)  3 s"
        );
        assert_eq!(
            line(Duration::from_secs(1), 5, 10, 5.0, None),
            "bench: sent 5/10 (5/s)  stored ?  1 s"
        );
    }
}
