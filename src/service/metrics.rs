//! `/metrics` (Prometheus text format), `/health` (alive) and `/ready` (storage reachable and every
//! listener up), served on `[service] metrics`.

use crate::pipeline::queue::QueueDepth;
use crate::stats::{ScrapeGauges, Stats, kernel_udp_drops};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the endpoints report on.
pub struct Health {
    pub stats: Arc<Stats>,
    pub queue: QueueDepth,
    /// Listener tasks running.
    pub up: AtomicUsize,
    /// Listener tasks that should be running.
    pub expected: AtomicUsize,
    /// Local ports of our UDP sockets, for the kernel's drop counters.
    pub udp_ports: Mutex<Vec<u16>>,
    registry: Registry,
    gauges: ScrapeGauges,
}

impl Health {
    /// Health over these counters, with a registry labelled by backend.
    pub fn new(stats: Arc<Stats>, queue: QueueDepth, backend: &str) -> Self {
        let mut registry = stats.registry(backend);
        let gauges = ScrapeGauges::default();
        gauges.register(&mut registry);
        Health {
            stats,
            queue,
            up: AtomicUsize::new(0),
            expected: AtomicUsize::new(0),
            udp_ports: Mutex::new(Vec::new()),
            registry,
            gauges,
        }
    }

    /// Storage answers and every listener runs.
    pub fn ready(&self) -> bool {
        self.stats.storage_up.load(Ordering::Relaxed)
            && self.up.load(Ordering::Relaxed) >= self.expected.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let (records, bytes) = self.queue.depth();
        self.gauges.queue_records.set(records as i64);
        self.gauges.queue_bytes.set(bytes as i64);
        self.gauges
            .storage_up
            .set(self.stats.storage_up.load(Ordering::Relaxed) as i64);
        let ports = self.udp_ports.lock().map(|p| p.clone()).unwrap_or_default();
        self.gauges
            .udp_kernel_drops
            .set(kernel_udp_drops(&ports) as i64);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("cannot encode metrics: {e}");
        }
        out
    }
}

/// Marks a listener up while alive.
pub struct UpGuard(Arc<Health>);

impl UpGuard {
    /// Counts one listener up until dropped.
    pub fn new(h: Arc<Health>) -> Self {
        h.up.fetch_add(1, Ordering::Relaxed);
        UpGuard(h)
    }
}

impl Drop for UpGuard {
    fn drop(&mut self) {
        self.0.up.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves the endpoints until the task is cancelled.
pub async fn serve(listener: tokio::net::TcpListener, health: Arc<Health>) {
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|State(h): State<Arc<Health>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    h.render(),
                )
            }),
        )
        .route("/health", get(|| async { "alive\n" }))
        .route(
            "/ready",
            get(|State(h): State<Arc<Health>>| async move {
                if h.ready() {
                    (StatusCode::OK, "ready\n").into_response()
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: storage unreachable or a listener down\n",
                    )
                        .into_response()
                }
            }),
        )
        .with_state(health);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("metrics server stopped: {e}");
    }
}
