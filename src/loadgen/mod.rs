//! The collector's own load generator (`log-panel-collector bench`): sends OTLP/gRPC batches or syslog
//! messages (TCP with LF or octet-counted framing, or UDP; RFC 3164 or RFC 5424) at a fixed rate or
//! as fast as they are taken, and reports both the rate the collector accepted them and the rate it
//! committed them to the database, read from the daemon's own `/metrics` before and after. Users
//! benchmark ingest with it, so what it reports is what reached the database, with UDP loss.

pub mod metrics;
pub mod otlp;
pub mod progress;
pub mod syslog;

pub use otlp::request;

use metrics::{MetricsError, MetricsUrl, Scrape};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How records travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP log export over gRPC.
    #[value(name = "otlp-grpc")]
    OtlpGrpc,
    /// Syslog over TCP (RFC 6587 framing).
    Tcp,
    /// Syslog over UDP, one message per datagram.
    Udp,
}

impl Protocol {
    /// The name in the summary line and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp-grpc",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// The syslog message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// BSD syslog: `<PRI>Mmm dd hh:mm:ss HOST APP[PID]: MSG`.
    #[value(alias = "3164")]
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOST APP PID MSGID [SD] MSG`.
    #[value(alias = "5424")]
    Rfc5424,
}

impl Format {
    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rfc3164 => "rfc3164",
            Format::Rfc5424 => "rfc5424",
        }
    }
}

/// How syslog messages are delimited on a TCP stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Framing {
    /// Each message ends with a line feed.
    Lf,
    /// Each message is preceded by its length in bytes and a space.
    #[value(name = "octet-counting", alias = "octet")]
    OctetCounting,
}

impl Framing {
    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Lf => "lf",
            Framing::OctetCounting => "octet-counting",
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub protocol: Protocol,
    /// `http://HOST:PORT` of an OTLP/gRPC receiver, or `HOST:PORT` of a syslog listener.
    pub endpoint: String,
    /// Records in all.
    pub records: usize,
    /// Records per Export request (OTLP) or messages per write (TCP).
    pub batch: usize,
    /// Characters of each record's body.
    pub size: usize,
    /// Parallel connections (OTLP, TCP) or sockets (UDP).
    pub concurrency: usize,
    /// Records per second over all connections; `None` sends as fast as the receiver takes them.
    pub rate: Option<u64>,
    /// Distinct logger names: OTLP scope names, syslog app names.
    pub loggers: usize,
    /// Syslog message format.
    pub format: Format,
    /// Syslog TCP framing.
    pub framing: Framing,
}

/// What was sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadReport {
    pub records: usize,
    /// OTLP Export requests, TCP writes or UDP datagrams.
    pub requests: usize,
    /// Requests answered UNAVAILABLE and sent again (OTLP).
    pub retries: usize,
    /// From the first send until the last record was accepted.
    pub elapsed: Duration,
}

/// Why the load run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("export failed: {0}")]
    Export(#[from] tonic::Status),
    #[error("cannot connect to syslog {transport} {endpoint}: {source}")]
    SyslogConnect {
        transport: &'static str,
        endpoint: String,
        source: std::io::Error,
    },
    #[error("sending syslog over {transport} to {endpoint}: {source}")]
    SyslogSend {
        transport: &'static str,
        endpoint: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Spec(String),
    #[error("a load worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// How to find out what reached the database.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The daemon's `/metrics`; `None` measures only the accepted rate.
    pub metrics: Option<MetricsUrl>,
    /// Longest wait, after the last record was sent, for the stored count to reach what was sent.
    pub wait: Duration,
    /// Show a progress line on stderr about once a second.
    pub progress: bool,
}

/// What reached the database, from the daemon's counters (differences to the first scrape).
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredReport {
    /// Records committed (rows written, plus error records stored in place of refused ones).
    pub records: u64,
    /// From the first send until the count was first seen at its final value.
    pub elapsed: Duration,
    /// The count reached what was sent (otherwise it stopped growing, or the wait timed out).
    pub complete: bool,
    /// Gave up after [`Watch::wait`] with records still on their way.
    pub timed_out: bool,
    /// UDP messages the daemon dropped because its queue was full.
    pub udp_dropped: u64,
    /// Datagrams the kernel dropped on the daemon's UDP sockets.
    pub kernel_drops: u64,
}

/// A bench run: what was sent and what was stored.
#[derive(Debug)]
pub struct BenchReport {
    pub spec: LoadSpec,
    pub sent: LoadReport,
    /// `Err` when the daemon's metrics could not be read (or were not asked for).
    pub stored: Result<StoredReport, MetricsError>,
}

/// Records per second, 0 for an empty interval.
fn per_s(n: f64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n / d.as_secs_f64()
    }
}

impl BenchReport {
    /// The one machine-readable line: `bench PROTOCOL sent=... records_per_s=... stored=...
    /// stored_per_s=... lost=... lost_pct=...` (`unknown` where metrics could not be read).
    pub fn summary(&self) -> String {
        let s = &self.sent;
        let mut line = format!("bench {} sent={}", self.spec.protocol.name(), s.records);
        match self.spec.protocol {
            Protocol::OtlpGrpc => {
                line += &format!(" requests={} retries={}", s.requests, s.retries);
            }
            Protocol::Tcp => {
                line += &format!(
                    " format={} framing={} connections={} writes={}",
                    self.spec.format.name(),
                    self.spec.framing.name(),
                    self.spec.concurrency.max(1),
                    s.requests
                );
            }
            Protocol::Udp => {
                line += &format!(
                    " format={} sockets={}",
                    self.spec.format.name(),
                    self.spec.concurrency.max(1)
                );
            }
        }
        line += &format!(
            " seconds={:.2} records_per_s={:.0}",
            s.elapsed.as_secs_f64(),
            per_s(s.records as f64, s.elapsed)
        );
        match &self.stored {
            Ok(st) => {
                let lost = (s.records as u64).saturating_sub(st.records);
                let pct = if s.records == 0 {
                    0.0
                } else {
                    100.0 * lost as f64 / s.records as f64
                };
                line += &format!(
                    " stored={} stored_seconds={:.2} stored_per_s={:.0} lost={lost} lost_pct={pct:.2}",
                    st.records,
                    st.elapsed.as_secs_f64(),
                    per_s(st.records as f64, st.elapsed)
                );
                if self.spec.protocol == Protocol::Udp {
                    line += &format!(
                        " udp_dropped={} kernel_drops={}",
                        st.udp_dropped, st.kernel_drops
                    );
                }
            }
            Err(_) => {
                line += " stored=unknown stored_seconds=unknown stored_per_s=unknown lost=unknown lost_pct=unknown"
            }
        }
        line
    }
}

impl BenchReport {
    /// What a reader must know beside the summary line: stored figures unknown, the wait given up,
    /// records that never reached the database.
    pub fn notes(&self, wait: Duration) -> Vec<String> {
        let sent = self.sent.records as u64;
        match &self.stored {
            Err(MetricsError::Off) => vec![
                "bench: stored figures not measured (--metrics off); records_per_s is the rate the collector accepted records into memory, not the rate it stored them".into(),
            ],
            Err(e) => vec![format!(
                "bench: cannot read the collector's metrics: {e}\nbench: the stored figures are unknown; records_per_s is the rate the collector accepted records into memory, not the rate it stored them (set --metrics to the daemon's [service] metrics address)"
            )],
            Ok(st) if st.timed_out => vec![format!(
                "bench: gave up waiting after {}: {} of {sent} records stored so far (raise --wait, or look at the daemon's log)",
                humantime::format_duration(wait),
                st.records
            )],
            Ok(st) if !st.complete => {
                let mut v = vec![format!(
                    "bench: {} of {sent} records did not reach the database (the stored count stopped growing with the queue empty)",
                    sent.saturating_sub(st.records)
                )];
                if self.spec.protocol == Protocol::Udp {
                    v.push(format!(
                        "bench: the daemon dropped {} (queue full), the kernel {} (receive buffer full)",
                        st.udp_dropped, st.kernel_drops
                    ));
                }
                v
            }
            Ok(_) => Vec::new(),
        }
    }
}

/// `addr`, with loopback in place of an unspecified address (a listener on all addresses).
fn reachable(a: SocketAddr) -> SocketAddr {
    if !a.ip().is_unspecified() {
        return a;
    }
    let ip: IpAddr = if a.is_ipv4() {
        Ipv4Addr::LOCALHOST.into()
    } else {
        Ipv6Addr::LOCALHOST.into()
    };
    SocketAddr::new(ip, a.port())
}

/// Where to send by default: the config's first listener of that protocol, as the daemon started
/// with the same `--config` listens.
pub fn default_endpoint(protocol: Protocol, cfg: &crate::config::Config) -> String {
    let syslog = SocketAddr::from(([127, 0, 0, 1], 5514));
    match protocol {
        Protocol::OtlpGrpc => format!(
            "http://{}",
            reachable(
                cfg.otlp
                    .grpc
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4317)))
            )
        ),
        Protocol::Tcp => reachable(cfg.syslog.tcp.first().copied().unwrap_or(syslog)).to_string(),
        Protocol::Udp => reachable(cfg.syslog.udp.first().copied().unwrap_or(syslog)).to_string(),
    }
}

/// The metrics to read by default: the config's `[service] metrics`, `None` when it is off.
pub fn default_metrics(cfg: &crate::config::Config) -> Option<MetricsUrl> {
    cfg.service.metrics.map(|a| MetricsUrl {
        authority: reachable(a).to_string(),
        path: "/metrics".into(),
    })
}

/// Each of `workers`' share of a total rate.
pub(crate) fn share(rate: Option<u64>, workers: usize) -> Option<f64> {
    rate.map(|r| (r as f64 / workers.max(1) as f64).max(1e-3))
}

/// Sleeps until `done` records are due at `rate` per second since `started` (no sleep when behind
/// or when there is no rate).
pub(crate) async fn pace(started: Instant, done: usize, rate: Option<f64>) {
    if let Some(r) = rate {
        let due = started + Duration::from_secs_f64(done as f64 / r);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// The stored count stops being waited for once it did not grow for this long with nothing on its
/// way (the queue empty, everything received stored, filtered or dropped): records were lost before
/// the daemon received them (UDP), nothing more is coming.
const SETTLED: Duration = Duration::from_secs(3);

/// Sends the load, then waits until the daemon's stored count reached what was sent.
pub async fn bench(spec: &LoadSpec, watch: &Watch) -> Result<BenchReport, LoadError> {
    let baseline = match &watch.metrics {
        Some(url) => metrics::scrape(url).await,
        None => Err(MetricsError::Off),
    };
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let shown = watch.progress.then(|| {
        progress::spawn(
            started,
            spec.records as u64,
            sent.clone(),
            baseline
                .as_ref()
                .ok()
                .map(|b| (watch.metrics.clone().expect("scraped"), *b)),
        )
    });
    let result = match spec.protocol {
        Protocol::OtlpGrpc => otlp::run(spec, started, &sent).await,
        Protocol::Tcp => syslog::run_tcp(spec, started, &sent).await,
        Protocol::Udp => syslog::run_udp(spec, started, &sent).await,
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(p) = shown {
                p.finish().await;
            }
            return Err(e);
        }
    };
    let stored = match baseline {
        Ok(base) => {
            let url = watch.metrics.as_ref().expect("scraped");
            wait_stored(url, &base, report.records as u64, started, watch.wait).await
        }
        Err(e) => Err(e),
    };
    if let Some(p) = shown {
        p.finish().await;
    }
    Ok(BenchReport {
        spec: spec.clone(),
        sent: report,
        stored,
    })
}

/// Polls the daemon's counters until `sent` more records are stored than at `base`, the count
/// settled short of it, or `wait` passed since the sending ended.
async fn wait_stored(
    url: &MetricsUrl,
    base: &Scrape,
    sent: u64,
    started: Instant,
    wait: Duration,
) -> Result<StoredReport, MetricsError> {
    let sending_ended = Instant::now();
    let mut last: Option<(Scrape, Instant)> = None;
    loop {
        let now_scrape = metrics::scrape(url).await;
        let now = Instant::now();
        match now_scrape {
            Ok(s) => {
                let grew = last.as_ref().is_none_or(|(l, _)| s.stored != l.stored);
                if grew {
                    last = Some((s, now));
                }
                let (l, at) = last.as_ref().expect("set above");
                let stored = l.stored.saturating_sub(base.stored);
                let complete = stored >= sent;
                let idle = s.queue_records == 0 && s.pending_since(base) == 0;
                let settled = !complete && idle && now - *at >= SETTLED;
                let timed_out = !complete && !settled && now - sending_ended >= wait;
                if complete || settled || timed_out {
                    return Ok(StoredReport {
                        records: stored,
                        elapsed: at.duration_since(started),
                        complete,
                        timed_out,
                        udp_dropped: s.udp_dropped.saturating_sub(base.udp_dropped),
                        kernel_drops: s.kernel_drops.saturating_sub(base.kernel_drops),
                    });
                }
            }
            Err(e) if now - sending_ended >= wait => return Err(e),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(protocol: Protocol, stored: Result<StoredReport, MetricsError>) -> BenchReport {
        BenchReport {
            spec: LoadSpec {
                protocol,
                endpoint: String::new(),
                records: 1000,
                batch: 100,
                size: 64,
                concurrency: 2,
                rate: None,
                loggers: 4,
                format: Format::Rfc5424,
                framing: Framing::OctetCounting,
            },
            sent: LoadReport {
                records: 1000,
                requests: 10,
                retries: 0,
                elapsed: Duration::from_secs(2),
            },
            stored,
        }
    }

    #[test]
    fn defaults_follow_the_config_with_loopback_for_any_address() {
        let mut cfg = crate::config::Config::default();
        assert_eq!(
            default_endpoint(Protocol::OtlpGrpc, &cfg),
            "http://127.0.0.1:4317"
        );
        assert_eq!(default_endpoint(Protocol::Udp, &cfg), "127.0.0.1:5514");
        assert_eq!(
            default_metrics(&cfg).map(|m| m.to_string()),
            Some("http://127.0.0.1:9598/metrics".into())
        );
        cfg.syslog.tcp = vec!["[::]:6514".parse().unwrap()];
        cfg.service.metrics = None;
        assert_eq!(default_endpoint(Protocol::Tcp, &cfg), "[::1]:6514");
        assert_eq!(default_metrics(&cfg), None);
    }

    #[test]
    fn the_summary_names_accepted_and_stored_rates_and_the_loss() {
        let st = StoredReport {
            records: 950,
            elapsed: Duration::from_secs(4),
            complete: false,
            timed_out: false,
            udp_dropped: 20,
            kernel_drops: 30,
        };
        let line = report(Protocol::Udp, Ok(st)).summary();
        assert_eq!(
            line,
            "bench udp sent=1000 format=rfc5424 sockets=2 seconds=2.00 records_per_s=500 \
             stored=950 stored_seconds=4.00 stored_per_s=238 lost=50 lost_pct=5.00 \
             udp_dropped=20 kernel_drops=30"
        );
        let line = report(Protocol::OtlpGrpc, Err(MetricsError::Off)).summary();
        assert!(
            line.starts_with("bench otlp-grpc sent=1000 requests=10 retries=0 seconds=2.00 records_per_s=500 stored=unknown"),
            "{line}"
        );
        let line = report(Protocol::Tcp, Ok(StoredReport::default())).summary();
        assert!(
            line.contains(" format=rfc5424 framing=octet-counting connections=2 writes=10 "),
            "{line}"
        );
    }
}
