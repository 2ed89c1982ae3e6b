//! Counters shared by sources, queue and delivery (what came in, what was kept, what was written),
//! kept as Prometheus metrics so `/metrics` exposes exactly what the pipeline counts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// A monotonic counter.
pub type Count = Counter<u64, AtomicU64>;

/// Where records come from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `syslog` or `otlp`.
    pub source: &'static str,
    /// `udp`, `tcp`, `grpc` or `http`.
    pub transport: &'static str,
}

/// Which limit refused or cut something (docs/security.md lists each).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `syslog_connections`, `frame_timeout`, `pending_bytes`, `otlp_connections`,
    /// `otlp_too_large`, `otlp_too_many_records`, `otlp_request_memory`, `otlp_timeout`.
    pub limit: &'static str,
}

/// The pipeline's counters.
#[derive(Debug)]
pub struct Stats {
    /// Records received, all sources.
    pub received: Count,
    /// Records received per source and transport.
    pub received_by: Family<SourceLabels, Count>,
    pub parse_failures: Count,
    pub truncated: Count,
    pub filtered: Count,
    /// UDP messages dropped because the queue was full.
    pub udp_dropped: Count,
    /// UDP datagrams the kernel dropped because a socket's receive buffer was full (its own
    /// counter, read back from /proc/net/udp), i.e. lost before the daemon could read them.
    pub udp_kernel_dropped: Count,
    /// OTLP requests answered "unavailable, retry" (queue full).
    pub otlp_unavailable: Count,
    /// Connections, frames and requests refused or cut by a configured limit, per limit.
    pub limited: Family<LimitLabels, Count>,
    /// TLS handshakes refused (bad or missing client certificate, plain text, timeout).
    pub tls_refused: Count,
    /// OTLP requests refused for a missing or wrong bearer token.
    pub auth_refused: Count,
    /// Records committed as themselves.
    pub rows_written: Count,
    /// Records the database refused, stored as error records in their place.
    pub error_records: Count,
    pub batches_written: Count,
    /// Failed storage operations (each is retried).
    pub write_errors: Count,
    /// Batch writes attempted again after a failure.
    pub retries: Count,
    /// Seconds per batch write attempt.
    pub write_seconds: Histogram,
    /// Damaged places in spool segments skipped on replay (torn tails, flipped bytes).
    pub spool_cut_records: Count,
    /// Bytes skipped with them.
    pub spool_cut_bytes: Count,
    /// Records read back from segments a previous run left.
    pub spool_replayed: Count,
    /// Replayed records the database had already (committed before a crash): not written again.
    pub spool_skipped: Count,
    /// Failed spool writes (disk full and the like).
    pub spool_write_errors: Count,
    /// Bytes of records in the spool.
    pub spool_bytes: Gauge,
    /// Set when delivery gave up for good (a schema conflict an operator must fix); the binary
    /// stops with this message and a non-zero exit.
    pub fatal: std::sync::Mutex<Option<String>>,
    /// 1 while storage answers, 0 after a failure until the next success.
    pub storage_up: AtomicBool,
    /// Milliseconds since start when delivery last showed it is alive (idle, writing or retrying).
    heartbeat_ms: AtomicI64,
    started: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: Count::default(),
            received_by: Family::default(),
            parse_failures: Count::default(),
            truncated: Count::default(),
            filtered: Count::default(),
            udp_dropped: Count::default(),
            udp_kernel_dropped: Count::default(),
            otlp_unavailable: Count::default(),
            limited: Family::default(),
            tls_refused: Count::default(),
            auth_refused: Count::default(),
            rows_written: Count::default(),
            error_records: Count::default(),
            batches_written: Count::default(),
            write_errors: Count::default(),
            retries: Count::default(),
            write_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            spool_cut_records: Count::default(),
            spool_cut_bytes: Count::default(),
            spool_replayed: Count::default(),
            spool_skipped: Count::default(),
            spool_write_errors: Count::default(),
            spool_bytes: Gauge::default(),
            fatal: std::sync::Mutex::new(None),
            storage_up: AtomicBool::new(false),
            heartbeat_ms: AtomicI64::new(0),
            started: Instant::now(),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub received: u64,
    pub parse_failures: u64,
    pub truncated: u64,
    pub filtered: u64,
    pub udp_dropped: u64,
    pub otlp_unavailable: u64,
    pub rows_written: u64,
    pub error_records: u64,
    pub batches_written: u64,
    pub write_errors: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn inc(counter: &Count) {
        counter.inc();
    }

    /// The per-transport counter, to keep a handle instead of looking it up per record.
    pub fn received_counter(&self, source: &'static str, transport: &'static str) -> Count {
        self.received_by
            .get_or_create(&SourceLabels { source, transport })
            .clone()
    }

    /// Counts one refusal or cut by `limit`.
    pub fn limit_hit(&self, limit: &'static str) {
        self.limited.get_or_create(&LimitLabels { limit }).inc();
    }

    /// How often `limit` refused or cut something so far.
    pub fn limit_count(&self, limit: &'static str) -> u64 {
        self.limited.get_or_create(&LimitLabels { limit }).get()
    }

    /// Delivery is alive now.
    pub fn beat(&self) {
        self.heartbeat_ms
            .store(self.started.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    /// Time since delivery last showed it is alive.
    pub fn since_heartbeat(&self) -> std::time::Duration {
        let now = self.started.elapsed().as_millis() as i64;
        std::time::Duration::from_millis(
            (now - self.heartbeat_ms.load(Ordering::Relaxed)).max(0) as u64
        )
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.get(),
            parse_failures: self.parse_failures.get(),
            truncated: self.truncated.get(),
            filtered: self.filtered.get(),
            udp_dropped: self.udp_dropped.get(),
            otlp_unavailable: self.otlp_unavailable.get(),
            rows_written: self.rows_written.get(),
            error_records: self.error_records.get(),
            batches_written: self.batches_written.get(),
            write_errors: self.write_errors.get(),
        }
    }

    /// A registry with every metric, names prefixed `log_panel_collector_`.
    pub fn registry(&self, backend: &str) -> Registry {
        let mut r = Registry::with_prefix_and_labels(
            "log_panel_collector",
            [(
                std::borrow::Cow::Borrowed("backend"),
                std::borrow::Cow::Owned(backend.to_string()),
            )]
            .into_iter(),
        );
        r.register(
            "received_records",
            "Records received, per source and transport",
            self.received_by.clone(),
        );
        r.register(
            "parse_failures",
            "Syslog messages that could not be parsed and were stored as raw text",
            self.parse_failures.clone(),
        );
        r.register(
            "truncated_frames",
            "Frames longer than max_frame, cut and stored",
            self.truncated.clone(),
        );
        r.register(
            "filtered_records",
            "Records refused by the [filter] settings",
            self.filtered.clone(),
        );
        r.register(
            "udp_dropped_records",
            "UDP messages dropped because the queue was full",
            self.udp_dropped.clone(),
        );
        r.register(
            "udp_kernel_dropped_datagrams",
            "UDP datagrams the kernel dropped because the socket's receive buffer was full",
            self.udp_kernel_dropped.clone(),
        );
        r.register(
            "otlp_unavailable_requests",
            "OTLP requests answered unavailable (queue full)",
            self.otlp_unavailable.clone(),
        );
        r.register(
            "limited",
            "Connections, frames and requests refused or cut by a configured limit",
            self.limited.clone(),
        );
        r.register(
            "tls_refused_handshakes",
            "TLS handshakes refused (client certificate, protocol, timeout)",
            self.tls_refused.clone(),
        );
        r.register(
            "auth_refused_requests",
            "OTLP requests refused for a missing or wrong bearer token",
            self.auth_refused.clone(),
        );
        r.register(
            "rows_written",
            "Rows committed to storage",
            self.rows_written.clone(),
        );
        r.register(
            "error_records",
            "Records the database refused, stored as error records in their place",
            self.error_records.clone(),
        );
        r.register(
            "batches_written",
            "Batches committed to storage",
            self.batches_written.clone(),
        );
        r.register(
            "storage_errors",
            "Failed storage operations",
            self.write_errors.clone(),
        );
        r.register(
            "storage_retries",
            "Batch writes attempted again after a failure",
            self.retries.clone(),
        );
        r.register(
            "spool_cut_records",
            "Damaged places in spool segments skipped on replay (torn tails, flipped bytes)",
            self.spool_cut_records.clone(),
        );
        r.register(
            "spool_cut_bytes",
            "Bytes skipped in damaged spool segments",
            self.spool_cut_bytes.clone(),
        );
        r.register(
            "spool_replayed_records",
            "Records read back from spool segments a previous run left",
            self.spool_replayed.clone(),
        );
        r.register(
            "spool_skipped_records",
            "Replayed records the database already had (not written again)",
            self.spool_skipped.clone(),
        );
        r.register(
            "spool_write_errors",
            "Failed spool writes (disk full and the like)",
            self.spool_write_errors.clone(),
        );
        r.register(
            "spool_bytes",
            "Bytes of records in the spool",
            self.spool_bytes.clone(),
        );
        r.register(
            "write_duration_seconds",
            "Duration of one batch write attempt",
            self.write_seconds.clone(),
        );
        r
    }
}

/// Gauges filled at scrape time.
#[derive(Debug, Default, Clone)]
pub struct ScrapeGauges {
    pub queue_records: Gauge,
    pub queue_bytes: Gauge,
    pub storage_up: Gauge,
    pub udp_kernel_drops: Gauge,
}

impl ScrapeGauges {
    /// Registers the gauges.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "queue_records",
            "Records queued or being written",
            self.queue_records.clone(),
        );
        r.register(
            "queue_bytes",
            "Bytes of records queued or being written",
            self.queue_bytes.clone(),
        );
        r.register(
            "storage_up",
            "1 while storage answers",
            self.storage_up.clone(),
        );
        r.register(
            "udp_kernel_drops",
            "Datagrams the kernel dropped on our UDP sockets (receive buffer full), from /proc/net/udp",
            self.udp_kernel_drops.clone(),
        );
    }
}

/// Sum of the kernel's drop counters for UDP sockets bound to these local ports (Linux).
pub fn kernel_udp_drops(ports: &[u16]) -> u64 {
    let mut total = 0;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if port.is_some_and(|p| ports.contains(&p))
                && let Some(drops) = cols.last().and_then(|d| d.parse::<u64>().ok())
            {
                total += drops;
            }
        }
    }
    total
}
