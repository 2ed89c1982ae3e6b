//! The listeners of a collector: which the config asks for, binding them (or taking the sockets
//! systemd handed over), starting each one's task, and stopping it so that nothing it read is lost.

use super::*;

/// Handles every listener task needs.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) intake: Intake,
    pub(super) syslog: Arc<Live<SyslogSettings>>,
    pub(super) otlp: Arc<Live<OtlpSettings>>,
    pub(super) health: Arc<Health>,
    /// Bytes of unfinished syslog frames, across every TCP listener.
    pub(super) pending: Arc<tcp::Pending>,
    /// Memory OTLP requests being decoded may take, both listeners.
    pub(super) decode: Arc<otlp::limits::DecodeBudget>,
    pub(super) stats: Arc<Stats>,
    /// The TLS material in force (when `[tls]` is set), shared by every TLS listener.
    pub(super) tls: Option<Arc<TlsHandle>>,
    /// OTLP listeners speak TLS.
    pub(super) otlp_tls: bool,
}

pub(super) struct Running {
    pub(super) bound: SocketAddr,
    pub(super) task: JoinHandle<()>,
    /// Asks a server with connections of its own (OTLP) to close them and return.
    pub(super) stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Stops the listener: OTLP servers close their connections gracefully (so none keeps the
    /// queue open), syslog TCP connections hand over the frames they read and UDP readers hand
    /// over the datagram in hand, within 5 s; the others are cancelled.
    pub(super) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
            if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
                .await
                .is_ok()
            {
                return;
            }
        }
        self.task.abort();
        let _ = self.task.await;
    }
}

pub(super) fn syslog_settings(cfg: &Config) -> SyslogSettings {
    SyslogSettings::new(&cfg.syslog, cfg.storage.context)
}

/// The spool the config asks for (`None`: off).
pub(super) fn spool_settings(cfg: &Config) -> Option<SpoolSettings> {
    let s = cfg.spool.settings(&cfg.storage.url);
    if s.is_none() {
        tracing::info!(
            "spool off: records wait in memory only until committed (set [spool] dir to keep them on disk)"
        );
    }
    s
}

pub(super) fn otlp_settings(cfg: &Config, tokens: Option<Arc<Tokens>>) -> OtlpSettings {
    OtlpSettings {
        tokens,
        ..OtlpSettings::new(&cfg.otlp, cfg.storage.context)
    }
}

/// Every listener the config asks for.
pub(super) fn wanted(cfg: &Config) -> Vec<(Role, SocketAddr)> {
    let mut v: Vec<(Role, SocketAddr)> = cfg
        .syslog
        .udp
        .iter()
        .map(|a| (Role::SyslogUdp, *a))
        .collect();
    v.extend(cfg.syslog.tcp.iter().map(|a| (Role::SyslogTcp, *a)));
    v.extend(cfg.syslog.tls.iter().map(|a| (Role::SyslogTls, *a)));
    v.extend(cfg.otlp.grpc.map(|a| (Role::OtlpGrpc, a)));
    v.extend(cfg.otlp.http.map(|a| (Role::OtlpHttp, a)));
    v.extend(cfg.service.metrics.map(|a| (Role::Metrics, a)));
    v
}

/// Binds (or takes from systemd) the socket for one listener.
pub(super) fn open(
    role: Role,
    addr: SocketAddr,
    recv_buffer: usize,
    activated: &mut Activated,
) -> Result<Opened, StartError> {
    if let Some(s) = activated.take(role, addr) {
        return Ok(s);
    }
    let bind_err = |source| StartError::Bind {
        proto: role.fd_name(),
        addr,
        source,
    };
    if role.is_udp() {
        udp::bind(addr, recv_buffer)
            .map(Opened::Udp)
            .map_err(bind_err)
    } else {
        let s = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        s.set_nonblocking(true).map_err(bind_err)?;
        Ok(Opened::Tcp(s))
    }
}

/// Starts the listener task for an opened socket.
pub(super) fn spawn(role: Role, opened: Opened, ctx: &Ctx) -> std::io::Result<Running> {
    let bound = opened.local_addr()?;
    let guard = UpGuard::new(ctx.health.clone());
    let ctx = ctx.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    let graceful = matches!(
        role,
        Role::OtlpGrpc | Role::OtlpHttp | Role::SyslogTcp | Role::SyslogTls | Role::SyslogUdp
    );
    let task = match opened {
        Opened::Udp(s) => {
            if let Ok(mut ports) = ctx.health.udp_ports.lock() {
                ports.push(bound.port());
            }
            let intake = ctx.intake.for_source("syslog", "udp");
            let reader = udp::Reader::start(s, intake, ctx.syslog)?;
            // The reader is a thread; this task only holds it until the listener stops (or the
            // task is cancelled, which drops and so stops it too).
            tokio::spawn(async move {
                let _guard = guard;
                shutdown.await;
                let _ = tokio::task::spawn_blocking(move || reader.stop()).await;
            })
        }
        Opened::Tcp(s) => {
            let listener = tokio::net::TcpListener::from_std(s)?;
            let alpn = match role {
                Role::SyslogTls => Some(Alpn::None),
                Role::OtlpGrpc if ctx.otlp_tls => Some(Alpn::H2),
                Role::OtlpHttp if ctx.otlp_tls => Some(Alpn::Http1),
                _ => None,
            };
            let tls = match alpn {
                None => None,
                Some(alpn) => {
                    let handle = ctx.tls.clone().ok_or_else(|| {
                        std::io::Error::other("a TLS listener without [tls] cert and key")
                    })?;
                    Some(Handshaker::new(handle, alpn, ctx.stats.clone()))
                }
            };
            tokio::spawn(async move {
                let _guard = guard;
                match role {
                    Role::SyslogTcp | Role::SyslogTls => {
                        let transport = if tls.is_some() { "tls" } else { "tcp" };
                        let intake = ctx.intake.for_source("syslog", transport);
                        tcp::serve(listener, intake, ctx.syslog, ctx.pending, shutdown, tls).await
                    }
                    Role::OtlpGrpc => {
                        let svc = otlp::grpc::LogsService::new(
                            ctx.intake.for_source("otlp", "grpc"),
                            ctx.otlp,
                            ctx.decode,
                        );
                        otlp::grpc::serve(listener, svc, shutdown, tls).await
                    }
                    Role::OtlpHttp => {
                        let intake = ctx.intake.for_source("otlp", "http");
                        otlp::http::serve(listener, intake, ctx.otlp, ctx.decode, shutdown, tls)
                            .await
                    }
                    Role::Metrics => metrics::serve(listener, ctx.health).await,
                    Role::SyslogUdp => unreachable!("a UDP role on a TCP socket"),
                }
            })
        }
    };
    Ok(Running {
        bound,
        task,
        stop: graceful.then_some(stop_tx),
    })
}
