//! The assembled daemon: listeners, queue and delivery, started from a [`Config`] and stopped
//! gracefully (stop accepting, flush what is queued). Tests and the binary drive it the same way.

use crate::config::Config;
use crate::filter::Filter;
use crate::pipeline::batch::Layout;
use crate::pipeline::intake::Intake;
use crate::pipeline::{delivery, queue};
use crate::source::otlp::{self, OtlpSettings};
use crate::source::syslog::map::SyslogMapping;
use crate::source::syslog::{SyslogSettings, tcp, udp};
use crate::stats::{Stats, StatsSnapshot};
use crate::storage::{AnyBackend, Backend, StorageError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};

/// Why the collector could not start.
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

async fn bind_tcp(
    proto: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            proto,
            addr,
            source,
        })
}

/// A running collector.
pub struct Collector {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
    storage: String,
    listeners: JoinSet<()>,
    delivery: JoinHandle<()>,
    intake: Option<Intake>,
    stats: Arc<Stats>,
}

impl Collector {
    /// Opens the configured storage and starts everything.
    pub async fn start(cfg: &Config) -> Result<Collector, StartError> {
        let backend = AnyBackend::from_config(&cfg.storage, cfg.batch.writers)?;
        Collector::start_with(cfg, Arc::new(backend)).await
    }

    /// Starts with any [`Backend`], such as one of your own.
    pub async fn start_with<B: Backend>(
        cfg: &Config,
        backend: Arc<B>,
    ) -> Result<Collector, StartError> {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = queue::bounded(cfg.batch.queue_bytes);
        let intake = Intake::new(tx, Filter::new(&cfg.filter), stats.clone());
        let settings = Arc::new(SyslogSettings {
            mapping: SyslogMapping {
                logger_name: cfg.syslog.logger_name.clone(),
                context: cfg.storage.context,
            },
            source_tz: cfg.syslog.source_time_zone,
            max_frame: cfg.syslog.max_frame,
            udp_recv_buffer: cfg.syslog.udp_recv_buffer,
        });
        let mut listeners = JoinSet::new();
        let mut udp_addrs = Vec::new();
        for &addr in &cfg.syslog.udp {
            let socket =
                udp::bind(addr, settings.udp_recv_buffer).map_err(|source| StartError::Bind {
                    proto: "syslog udp",
                    addr,
                    source,
                })?;
            udp_addrs.push(socket.local_addr().unwrap_or(addr));
            listeners.spawn(udp::serve(socket, intake.clone(), settings.clone()));
        }
        let mut tcp_addrs = Vec::new();
        for &addr in &cfg.syslog.tcp {
            let listener = bind_tcp("syslog tcp", addr).await?;
            tcp_addrs.push(listener.local_addr().unwrap_or(addr));
            listeners.spawn(tcp::serve(listener, intake.clone(), settings.clone()));
        }
        let otlp_settings = Arc::new(OtlpSettings {
            max_message_bytes: cfg.otlp.max_message_bytes,
            context: cfg.storage.context,
            queue_wait: cfg.otlp.queue_wait,
        });
        let mut grpc = None;
        if let Some(addr) = cfg.otlp.grpc {
            let listener = bind_tcp("otlp grpc", addr).await?;
            grpc = Some(listener.local_addr().unwrap_or(addr));
            let svc = otlp::grpc::LogsService::new(intake.clone(), otlp_settings.clone());
            listeners.spawn(otlp::grpc::serve(listener, svc));
        }
        let mut http = None;
        if let Some(addr) = cfg.otlp.http {
            let listener = bind_tcp("otlp http", addr).await?;
            http = Some(listener.local_addr().unwrap_or(addr));
            listeners.spawn(otlp::http::serve(
                listener,
                intake.clone(),
                otlp_settings.clone(),
            ));
        }
        let layout = Layout {
            preview: cfg.storage.preview_length,
            chunk: cfg.storage.chunk_size,
            time_zone: cfg.storage.time_zone,
        };
        let storage = backend.describe();
        listeners.spawn(crate::retention::schedule(
            backend.clone(),
            cfg.retention.clone(),
            cfg.storage.time_zone,
        ));
        let delivery = tokio::spawn(delivery::run(
            backend,
            rx,
            layout,
            cfg.batch.clone(),
            stats.clone(),
        ));
        Ok(Collector {
            udp: udp_addrs,
            tcp: tcp_addrs,
            grpc,
            http,
            storage,
            listeners,
            delivery,
            intake: Some(intake),
            stats,
        })
    }

    /// Bound UDP addresses (port 0 in the config becomes the real port here).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// Bound TCP addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// Bound OTLP/gRPC address, when on.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc
    }

    /// Bound OTLP/HTTP address, when on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// Where records go, for humans.
    pub fn storage(&self) -> &str {
        &self.storage
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops accepting, writes everything queued, and returns the final counters. Gives up after
    /// `timeout` if storage stays unreachable.
    pub async fn shutdown(mut self, timeout: Duration) -> Result<StatsSnapshot, ShutdownTimeout> {
        self.listeners.abort_all();
        while self.listeners.join_next().await.is_some() {}
        self.intake.take();
        match tokio::time::timeout(timeout, &mut self.delivery).await {
            Ok(_) => Ok(self.stats.snapshot()),
            Err(_) => {
                self.delivery.abort();
                let s = self.stats.snapshot();
                Err(ShutdownTimeout {
                    timeout,
                    pending: s
                        .received
                        .saturating_sub(s.filtered + s.udp_dropped + s.rows_written),
                })
            }
        }
    }
}
