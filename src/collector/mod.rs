//! The assembled daemon: listeners, queue, delivery, retention and the metrics endpoints, started
//! from a [`Config`], reconfigured in place by [`Collector::reload`], and stopped gracefully (stop
//! accepting, flush what is queued). Tests and the binary drive it the same way.

use crate::config::{BatchConfig, Config};
use crate::filter::Filter;
use crate::live::Live;
use crate::pipeline::batch::Layout;
use crate::pipeline::delivery::Feed;
use crate::pipeline::intake::Intake;
use crate::pipeline::spool::{Spool, SpoolError, SpoolSettings};
use crate::pipeline::{delivery, queue};
use crate::retention::RetentionConfig;
use crate::security::MaterialError;
use crate::service::activation::{Activated, Opened, Role};
use crate::service::metrics::{self, Health, UpGuard};
use crate::source::otlp::auth::Tokens;
use crate::source::otlp::{self, OtlpSettings};
use crate::source::syslog::{SyslogSettings, tcp, udp};
use crate::stats::{Stats, StatsSnapshot};
use crate::storage::{AnyBackend, Backend, StorageError};
use crate::tls::reload::Alpn;
use crate::tls::{Handshaker, TlsHandle};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

mod listeners;
use listeners::{
    Ctx, Running, open, otlp_settings, spawn, spool_settings, syslog_settings, wanted,
};

/// Why the collector could not start (or a reload could not be applied).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A certificate, key, client CA or token file that cannot be used (its key named).
    #[error(transparent)]
    Material(#[from] MaterialError),
}

/// Records still queued when the shutdown timeout ran out (the database never came back).
#[derive(Debug, thiserror::Error)]
#[error(
    "storage did not accept the last records within {timeout:?}: {pending} record(s) not written"
)]
pub struct ShutdownTimeout {
    pub timeout: Duration,
    pub pending: u64,
}

type RetentionSpawner = Box<dyn Fn(RetentionConfig, Tz) -> JoinHandle<()> + Send + Sync>;

/// [`Backend::close`] on the collector's backend, whose type the collector does not carry.
type StorageCloser = Box<
    dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// How long a stop waits for the storage connections to close (SQLite's closing checkpoint).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running collector.
pub struct Collector {
    cfg: Config,
    ctx: Option<Ctx>,
    listeners: BTreeMap<(Role, SocketAddr), Running>,
    batch: Arc<Live<BatchConfig>>,
    filter: Arc<Live<Filter>>,
    retention: JoinHandle<()>,
    spawn_retention: RetentionSpawner,
    delivery: JoinHandle<()>,
    close_storage: Option<StorageCloser>,
    spool: Option<Spool>,
    storage: String,
    stats: Arc<Stats>,
    health: Arc<Health>,
    /// Listeners on sockets systemd handed over beyond the config: a reload keeps them.
    pinned: std::collections::BTreeSet<(Role, SocketAddr)>,
}

impl Collector {
    /// Opens the configured storage and starts everything.
    pub async fn start(cfg: &Config) -> Result<Collector, StartError> {
        Collector::start_activated(cfg, Activated::default()).await
    }

    /// Like [`Collector::start`], serving the sockets systemd handed over where they fit.
    pub async fn start_activated(
        cfg: &Config,
        activated: Activated,
    ) -> Result<Collector, StartError> {
        let backend = AnyBackend::from_config(&cfg.storage, cfg.batch.writers)?;
        Collector::start_with(cfg, Arc::new(backend), activated).await
    }

    /// Starts with any [`Backend`], such as one of your own. [`Collector::shutdown`] closes it
    /// ([`Backend::close`]).
    pub async fn start_with<B: Backend>(
        cfg: &Config,
        backend: Arc<B>,
        activated: Activated,
    ) -> Result<Collector, StartError> {
        Collector::start_spooled(cfg, backend, activated, spool_settings(cfg)).await
    }

    /// Like [`Collector::start_with`], with the spool settings given (`None`: spool off, records
    /// wait in memory only).
    pub async fn start_spooled<B: Backend>(
        cfg: &Config,
        backend: Arc<B>,
        mut activated: Activated,
        spool: Option<SpoolSettings>,
    ) -> Result<Collector, StartError> {
        // Files first: a bad certificate, key or token file starts nothing.
        let material = crate::security::load(cfg)?;
        let stats = Arc::new(Stats::default());
        let spool = match spool {
            Some(s) => Some(Spool::open(s, stats.clone())?),
            None => None,
        };
        let (tx, rx) = queue::bounded(cfg.batch.queue_bytes);
        let storage = backend.describe();
        let kind = storage.split(' ').next().unwrap_or("storage").to_string();
        let health = Arc::new(Health::new(stats.clone(), tx.depth_gauge(), &kind));
        let filter = Live::new(Filter::new(&cfg.filter));
        let mut intake = Intake::new(tx, filter.clone(), stats.clone());
        if let Some(s) = &spool {
            intake = intake.with_spool(s.clone());
        }
        let ctx = Ctx {
            intake,
            syslog: Live::new(syslog_settings(cfg)),
            otlp: Live::new(otlp_settings(cfg, material.tokens)),
            health: health.clone(),
            pending: tcp::Pending::new(cfg.syslog.max_pending_bytes),
            decode: otlp::limits::DecodeBudget::new(cfg.otlp.decode_budget),
            stats: stats.clone(),
            tls: material.tls,
            otlp_tls: cfg.otlp.tls,
        };
        // Open every socket before starting anything, so a bind error leaves nothing half started.
        let mut opened = Vec::new();
        for (role, addr) in wanted(cfg) {
            opened.push((
                role,
                addr,
                open(role, addr, cfg.syslog.udp_recv_buffer, &mut activated)?,
            ));
        }
        let extra = activated.leftovers();
        let pinned = extra.iter().map(|(r, a, _)| (*r, *a)).collect();
        opened.extend(extra);
        let mut listeners = BTreeMap::new();
        for (role, addr, socket) in opened {
            let running = spawn(role, socket, &ctx).map_err(|source| StartError::Bind {
                proto: role.fd_name(),
                addr,
                source,
            })?;
            if let Some(old) = listeners.insert((role, addr), running) {
                old.task.abort();
            }
        }
        health
            .expected
            .store(listeners.len(), std::sync::atomic::Ordering::Relaxed);
        let retention_backend = backend.clone();
        let spawn_retention: RetentionSpawner = Box::new(move |rc, tz| {
            tokio::spawn(crate::retention::schedule(
                retention_backend.clone(),
                rc,
                tz,
            ))
        });
        let retention = spawn_retention(cfg.retention.clone(), cfg.storage.time_zone);
        let layout = Layout {
            preview: cfg.storage.preview_length,
            chunk: cfg.storage.chunk_size,
            time_zone: cfg.storage.time_zone,
        };
        let batch = Live::new(cfg.batch.clone());
        let feed = match &spool {
            Some(s) => Feed::Spool(s.clone()),
            None => Feed::Queue(rx),
        };
        let closing = backend.clone();
        let close_storage: StorageCloser =
            Box::new(move || Box::pin(async move { closing.close().await }));
        let delivery = tokio::spawn(delivery::run(
            backend,
            feed,
            layout,
            batch.clone(),
            cfg.batch.writers,
            stats.clone(),
        ));
        Ok(Collector {
            cfg: cfg.clone(),
            ctx: Some(ctx),
            listeners,
            batch,
            filter,
            retention,
            spawn_retention,
            delivery,
            close_storage: Some(close_storage),
            spool,
            storage,
            stats,
            health,
            pinned,
        })
    }

    fn bound(&self, role: Role) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|((r, _), _)| *r == role)
            .map(|(_, run)| run.bound)
            .collect()
    }

    /// Bound UDP addresses (port 0 in the config becomes the real port here).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.bound(Role::SyslogUdp)
    }

    /// Bound TCP addresses.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.bound(Role::SyslogTcp)
    }

    /// Bound OTLP/gRPC address, when on.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.bound(Role::OtlpGrpc).first().copied()
    }

    /// Bound OTLP/HTTP address, when on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.bound(Role::OtlpHttp).first().copied()
    }

    /// Bound metrics/health address, when on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.bound(Role::Metrics).first().copied()
    }

    /// Bound syslog-over-TLS addresses.
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.bound(Role::SyslogTls)
    }

    /// Whether the OTLP listeners speak TLS.
    pub fn otlp_tls(&self) -> bool {
        self.ctx.as_ref().is_some_and(|c| c.otlp_tls)
    }

    /// SHA-256 fingerprint of the server certificate in force, when TLS is configured.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.ctx.as_ref()?.tls.as_ref().map(|t| t.fingerprint())
    }

    /// Where records go, for humans.
    pub fn storage(&self) -> &str {
        &self.storage
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Why delivery stopped for good, when it did (a schema conflict an operator must fix).
    pub fn fatal(&self) -> Option<String> {
        self.stats.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// Readiness and metrics.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Applies a new configuration without a restart: listeners added, removed or moved, filters,
    /// syslog/OTLP settings, batch size and delay, retry and retention. Queued records are kept.
    /// New sockets are bound first: if one cannot be, nothing changes and the error is returned.
    /// Returns what could not be applied without a restart.
    pub async fn reload(&mut self, new: Config) -> Result<Vec<String>, StartError> {
        let Some(mut ctx) = self.ctx.clone() else {
            return Ok(vec!["shutting down: reload ignored".into()]);
        };
        // Certificates, keys, CA and tokens are read again on every reload; a bad file changes nothing.
        let fresh = crate::security::load(&new)?;
        if ctx.otlp_tls && fresh.tls.is_none() {
            // The running OTLP listeners speak TLS until a restart: they need the material.
            return Err(MaterialError::StillInUse.into());
        }
        let wanted_now: Vec<(Role, SocketAddr)> = wanted(&new);
        let mut opened = Vec::new();
        let mut none = Activated::default();
        for key in &wanted_now {
            if !self.listeners.contains_key(key) {
                opened.push((
                    *key,
                    open(key.0, key.1, new.syslog.udp_recv_buffer, &mut none)?,
                ));
            }
        }
        let mut kept = Vec::new();
        let old = &self.cfg;
        if new.storage.time_zone != old.storage.time_zone {
            kept.push(format!(
                "[storage] time_zone changes need a restart; ingestion and retention keep {}",
                old.storage.time_zone
            ));
        }
        if new.storage != old.storage {
            kept.push(
                "[storage] changes need a restart; still writing to the old storage".to_string(),
            );
        }
        if new.batch.writers != old.batch.writers || new.batch.queue_bytes != old.batch.queue_bytes
        {
            kept.push("batch.writers and batch.queue_bytes changes need a restart".to_string());
        }
        if new.otlp.max_concurrent_requests != old.otlp.max_concurrent_requests
            || new.otlp.decode_budget != old.otlp.decode_budget
            || new.syslog.max_pending_bytes != old.syslog.max_pending_bytes
        {
            kept.push(
                "otlp.max_concurrent_requests, otlp.decode_budget and syslog.max_pending_bytes changes apply to listeners started after them (restart, or move the listener)".to_string(),
            );
        }
        if new.spool != old.spool {
            kept.push("[spool] changes need a restart".to_string());
        }
        if new.service.log_level != old.service.log_level {
            kept.push("service.log_level changes need a restart".to_string());
        }
        // The sockets are bound: put the new material in force for new handshakes.
        ctx.tls = match (ctx.tls.take(), fresh.tls) {
            (Some(current), Some(fresh)) => {
                current.adopt(&fresh);
                Some(current)
            }
            (_, fresh) => fresh,
        };
        if new.otlp.tls != ctx.otlp_tls {
            kept.push("otlp.tls changes need a restart".to_string());
        }
        self.ctx = Some(ctx.clone());
        self.filter.set(Filter::new(&new.filter));
        ctx.syslog.set(syslog_settings(&new));
        ctx.otlp.set(otlp_settings(&new, fresh.tokens));
        self.batch.set(BatchConfig {
            writers: old.batch.writers,
            queue_bytes: old.batch.queue_bytes,
            ..new.batch.clone()
        });
        // Sockets systemd handed over beyond the config stay: systemd keeps holding them.
        let stale: Vec<(Role, SocketAddr)> = self
            .listeners
            .keys()
            .filter(|k| !wanted_now.contains(k) && !self.pinned.contains(k))
            .copied()
            .collect();
        for key in stale {
            if let Some(run) = self.listeners.remove(&key) {
                let bound = run.bound;
                run.stop().await;
                if key.0.is_udp()
                    && let Ok(mut ports) = self.health.udp_ports.lock()
                {
                    ports.retain(|p| *p != bound.port());
                }
                tracing::info!("stopped listening on {} {}", key.0.fd_name(), bound);
            }
        }
        for (key, socket) in opened {
            let run = spawn(key.0, socket, &ctx).map_err(|source| StartError::Bind {
                proto: key.0.fd_name(),
                addr: key.1,
                source,
            })?;
            tracing::info!("listening on {} {}", key.0.fd_name(), run.bound);
            self.listeners.insert(key, run);
        }
        self.health
            .expected
            .store(self.listeners.len(), std::sync::atomic::Ordering::Relaxed);
        // Ingestion buckets in the zone it started with ([storage] is kept): retention must
        // subtract in that same zone, so a new time_zone is refused with the rest of [storage].
        if new.retention != old.retention {
            self.retention.abort();
            self.retention = (self.spawn_retention)(new.retention.clone(), old.storage.time_zone);
        }
        let storage = old.storage.clone();
        let batch = old.batch.clone();
        let spool = old.spool.clone();
        self.cfg = Config {
            storage,
            spool,
            batch: BatchConfig {
                max_records: new.batch.max_records,
                max_bytes: new.batch.max_bytes,
                max_delay: new.batch.max_delay,
                retry_initial: new.batch.retry_initial,
                retry_max: new.batch.retry_max,
                ..batch
            },
            ..new
        };
        Ok(kept)
    }

    /// Stops accepting (TCP connections hand over what they read), then: with the spool on, syncs
    /// the spool and writes what it can while storage answers, leaving the rest spooled for the
    /// next start (prompt, and not an error); without it, writes everything queued, giving up
    /// after `timeout` if storage stays unreachable. Last, closes the backend (at most 10 s more).
    pub async fn shutdown(mut self, timeout: Duration) -> Result<StatsSnapshot, ShutdownTimeout> {
        let close = self.close_storage.take();
        let stopped = self.stop_delivery(timeout).await;
        if let Some(close) = close
            && tokio::time::timeout(CLOSE_TIMEOUT, close()).await.is_err()
        {
            tracing::warn!(
                "the connections to {} did not close within {CLOSE_TIMEOUT:?}",
                self.storage
            );
        }
        stopped
    }

    async fn stop_delivery(&mut self, timeout: Duration) -> Result<StatsSnapshot, ShutdownTimeout> {
        self.retention.abort();
        if let Some(spool) = &self.spool {
            spool.overflow_for_stop();
        }
        for (_, run) in std::mem::take(&mut self.listeners) {
            run.stop().await;
        }
        self.ctx.take();
        let Some(spool) = self.spool.take() else {
            return self.drain_queue(timeout).await;
        };
        spool.close().await;
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if self.delivery.is_finished() {
                break;
            }
            let up = self
                .stats
                .storage_up
                .load(std::sync::atomic::Ordering::Relaxed);
            if !up || tokio::time::Instant::now() >= until {
                self.delivery.abort();
                let _ = (&mut self.delivery).await;
                tracing::warn!(
                    "storage is {}: {} byte(s) of records stay in the spool and are written after the next start",
                    if up { "slow" } else { "unreachable" },
                    spool.used_bytes()
                );
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), &mut self.delivery).await;
        }
        Ok(self.stats.snapshot())
    }

    async fn drain_queue(&mut self, timeout: Duration) -> Result<StatsSnapshot, ShutdownTimeout> {
        match tokio::time::timeout(timeout, &mut self.delivery).await {
            Ok(_) => Ok(self.stats.snapshot()),
            Err(_) => {
                self.delivery.abort();
                let s = self.stats.snapshot();
                Err(ShutdownTimeout {
                    timeout,
                    pending: s.received.saturating_sub(
                        s.filtered + s.udp_dropped + s.rows_written + s.error_records,
                    ),
                })
            }
        }
    }
}
