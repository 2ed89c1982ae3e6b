//! systemd notifications (`Type=notify`): READY, RELOADING, STOPPING and a watchdog that pings only
//! while the pipeline is actually moving. Without `NOTIFY_SOCKET` every call is a no-op.

use crate::service::metrics::Health;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;

/// Startup finished: listeners bound, storage migrated and reachable.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts (systemd >= 253 wants the monotonic time with it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(t) => send(&[NotifyState::Reloading, t]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown starts.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: writing what is queued"),
    ]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

/// With `WatchdogSec=` set, pings at half the interval while delivery shows it is alive (a writer
/// loop took a turn, idle or busy or retrying, within the interval). A stuck pipeline stops the pings,
/// and systemd restarts the service.
pub fn spawn_watchdog(health: Arc<Health>) -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period / 2);
        let mut stalled = false;
        loop {
            tick.tick().await;
            let since = health.stats.since_heartbeat();
            if since < period.max(Duration::from_secs(1)) {
                send(&[NotifyState::Watchdog]);
                stalled = false;
            } else if !stalled {
                stalled = true;
                tracing::error!(
                    "delivery has not moved for {since:?}: withholding the watchdog ping"
                );
            }
        }
    }))
}
