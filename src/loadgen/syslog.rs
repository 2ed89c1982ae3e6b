//! Syslog modes of `log-panel-collector bench`: realistic RFC 3164 or RFC 5424 messages (priority,
//! timestamp, hostname, app name, pid) sent over TCP with LF or octet-counted framing (RFC 6587) on
//! several connections, or over UDP one datagram each, at a fixed rate or as fast as possible, so
//! nobody needs an external syslog load generator to benchmark the collector.

use super::{Format, Framing, LoadError, LoadReport, LoadSpec, pace, share};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// Builds message number `i` of a run.
pub struct Messages {
    format: Format,
    host: String,
    size: usize,
    loggers: usize,
    /// The timestamp text of the current second, and that second.
    stamp: (i64, String),
    body: String,
}

/// Severities in turn (debug, info x3, warning, error), like the OTLP mode's.
const SEVERITIES: [u8; 6] = [7, 6, 6, 6, 4, 3];
/// Facilities of the apps in turn: user, daemon, local0..local3.
const FACILITIES: [u8; 6] = [1, 3, 16, 17, 18, 19];

/// This machine's host name (for the HOSTNAME field), `localhost` when unknown.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(' '))
        .unwrap_or_else(|| "localhost".into())
}

impl Messages {
    /// Messages of `format` with bodies of `size` characters from `loggers` distinct apps.
    pub fn new(format: Format, size: usize, loggers: usize) -> Self {
        Messages {
            format,
            host: host_name(),
            size,
            loggers: loggers.max(1),
            stamp: (i64::MIN, String::new()),
            body: String::new(),
        }
    }

    /// The app (logger) name of message `i`.
    pub fn app(&self, i: usize) -> String {
        format!("bench-app{}", i % self.loggers)
    }

    fn refresh_stamp(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let sec = now.timestamp();
        if self.stamp.0 != sec {
            let text = match self.format {
                // BSD syslog has no zone: local time, as a real sender writes it.
                Format::Rfc3164 => now
                    .with_timezone(&chrono::Local)
                    .format("%b %e %H:%M:%S")
                    .to_string(),
                Format::Rfc5424 => now.format("%Y-%m-%dT%H:%M:%S").to_string(),
            };
            self.stamp = (sec, text);
        }
    }

    /// Appends message `i`, unframed, to `out`.
    pub fn write(&mut self, i: usize, out: &mut Vec<u8>) {
        let now = chrono::Utc::now();
        self.refresh_stamp(now);
        let app_no = i % self.loggers;
        let severity = SEVERITIES[i % SEVERITIES.len()];
        let pri = FACILITIES[app_no % FACILITIES.len()] as u32 * 8 + severity as u32;
        let pid = 1000 + app_no;
        let status = match severity {
            3 => 500,
            4 => 404,
            _ => 200,
        };
        self.body.clear();
        let _ = write!(
            self.body,
            "record {i} GET /api/v1/items/{} status={status} duration_ms={} ",
            i % 997,
            (i * 7) % 900
        );
        let keep = "record ".len() + digits(i) + 1;
        while self.body.len() < self.size {
            self.body.push('x');
        }
        self.body.truncate(self.size.max(keep));
        let head = match self.format {
            Format::Rfc3164 => format!(
                "<{pri}>{} {} bench-app{app_no}[{pid}]: ",
                self.stamp.1, self.host
            ),
            Format::Rfc5424 => format!(
                "<{pri}>1 {}.{:06}Z {} bench-app{app_no} {pid} req [bench@32473 seq=\"{i}\"] ",
                self.stamp.1,
                now.timestamp_subsec_micros(),
                self.host
            ),
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(self.body.as_bytes());
    }
}

fn digits(i: usize) -> usize {
    i.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends `msg` to `out` in `framing`.
pub fn frame(framing: Framing, msg: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::Lf => {
            out.extend_from_slice(msg);
            out.push(b'\n');
        }
        Framing::OctetCounting => {
            out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            out.extend_from_slice(msg);
        }
    }
}

/// `HOST:PORT` of a syslog endpoint (a `tcp://` or `udp://` scheme is allowed and dropped).
fn authority(endpoint: &str) -> &str {
    endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/')
}

/// The records of worker `w` of `workers`: a contiguous share of `0..records`.
fn range(records: usize, workers: usize, w: usize) -> std::ops::Range<usize> {
    records * w / workers..records * (w + 1) / workers
}

/// Sends `spec.records` messages over `spec.concurrency` TCP connections.
pub async fn run_tcp(
    spec: &LoadSpec,
    started: Instant,
    sent: &Arc<AtomicU64>,
) -> Result<LoadReport, LoadError> {
    let endpoint = authority(&spec.endpoint).to_string();
    let workers = spec.concurrency.max(1);
    let mut streams = Vec::with_capacity(workers);
    for _ in 0..workers {
        let s = tokio::net::TcpStream::connect(&endpoint)
            .await
            .map_err(|source| LoadError::SyslogConnect {
                transport: "tcp",
                endpoint: endpoint.clone(),
                source,
            })?;
        let _ = s.set_nodelay(true);
        streams.push(s);
    }
    let rate = share(spec.rate, workers);
    // At a fixed rate, about 100 writes a second per connection; otherwise `batch` per write.
    let chunk = match rate {
        None => spec.batch.max(1),
        Some(r) => ((r / 100.0) as usize).clamp(1, spec.batch.max(1)),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (w, mut stream) in streams.into_iter().enumerate() {
        let (spec, sent, endpoint) = (spec.clone(), sent.clone(), endpoint.clone());
        tasks.spawn(async move {
            let failed = |source| LoadError::SyslogSend {
                transport: "tcp",
                endpoint: endpoint.clone(),
                source,
            };
            let mut msgs = Messages::new(spec.format, spec.size, spec.loggers);
            let (mut buf, mut msg) = (Vec::new(), Vec::new());
            let (mut done, mut writes) = (0usize, 0usize);
            let mut next = range(spec.records, workers, w);
            while !next.is_empty() {
                let n = chunk.min(next.len());
                buf.clear();
                for i in next.start..next.start + n {
                    msg.clear();
                    msgs.write(i, &mut msg);
                    frame(spec.framing, &msg, &mut buf);
                }
                stream.write_all(&buf).await.map_err(failed)?;
                next.start += n;
                done += n;
                writes += 1;
                sent.fetch_add(n as u64, Ordering::Relaxed);
                pace(started, done, rate).await;
            }
            stream.shutdown().await.map_err(failed)?;
            Ok::<_, LoadError>((done, writes))
        });
    }
    let mut report = LoadReport::default();
    while let Some(r) = tasks.join_next().await {
        let (done, writes) = r??;
        report.records += done;
        report.requests += writes;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Sends `spec.records` messages as UDP datagrams from `spec.concurrency` sockets.
pub async fn run_udp(
    spec: &LoadSpec,
    started: Instant,
    sent: &Arc<AtomicU64>,
) -> Result<LoadReport, LoadError> {
    let endpoint = authority(&spec.endpoint).to_string();
    let connect_err = |source| LoadError::SyslogConnect {
        transport: "udp",
        endpoint: endpoint.clone(),
        source,
    };
    let target: SocketAddr = tokio::net::lookup_host(&endpoint)
        .await
        .map_err(connect_err)?
        .next()
        .ok_or_else(|| connect_err(std::io::Error::other("no address")))?;
    let mut longest = Vec::new();
    Messages::new(spec.format, spec.size, spec.loggers).write(spec.records, &mut longest);
    if longest.len() > MAX_DATAGRAM {
        return Err(LoadError::Spec(format!(
            "a {}-byte message does not fit in a UDP datagram (at most {MAX_DATAGRAM} bytes): lower --size",
            longest.len()
        )));
    }
    let workers = spec.concurrency.max(1);
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers {
        let s = tokio::net::UdpSocket::bind(local)
            .await
            .map_err(connect_err)?;
        s.connect(target).await.map_err(connect_err)?;
        sockets.push(s);
    }
    let rate = share(spec.rate, workers);
    let mut tasks = tokio::task::JoinSet::new();
    for (w, socket) in sockets.into_iter().enumerate() {
        let (spec, sent, endpoint) = (spec.clone(), sent.clone(), endpoint.clone());
        tasks.spawn(async move {
            let mut msgs = Messages::new(spec.format, spec.size, spec.loggers);
            let mut msg = Vec::new();
            let mut done = 0usize;
            for i in range(spec.records, workers, w) {
                msg.clear();
                msgs.write(i, &mut msg);
                socket
                    .send(&msg)
                    .await
                    .map_err(|source| LoadError::SyslogSend {
                        transport: "udp",
                        endpoint: endpoint.clone(),
                        source,
                    })?;
                done += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                pace(started, done, rate).await;
            }
            Ok::<_, LoadError>(done)
        });
    }
    let mut report = LoadReport::default();
    while let Some(r) = tasks.join_next().await {
        let done = r??;
        report.records += done;
        report.requests += done;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::syslog::{SyslogSettings, config::SyslogConfig, decode};
    use crate::stats::Stats;

    fn decoded(format: Format, i: usize, size: usize) -> (String, crate::record::Record, u64) {
        let mut msgs = Messages::new(format, size, 3);
        let mut msg = Vec::new();
        msgs.write(i, &mut msg);
        let stats = Stats::default();
        let settings = SyslogSettings::new(&SyslogConfig::default(), false);
        let rec = decode(&msg, [127, 0, 0, 1].into(), &settings, &stats);
        (
            String::from_utf8(msg).unwrap(),
            rec,
            stats.parse_failures.get(),
        )
    }

    #[test]
    fn messages_parse_as_real_syslog_with_app_level_and_body() {
        for format in [Format::Rfc3164, Format::Rfc5424] {
            for (i, level) in [(0, "DEBUG"), (1, "INFO"), (4, "WARNING"), (5, "ERROR")] {
                let (line, rec, failures) = decoded(format, i + 6, 120);
                assert_eq!(failures, 0, "{line}");
                assert_eq!(
                    rec.logger_name,
                    format!("bench-app{}", (i + 6) % 3),
                    "{line}"
                );
                assert_eq!(rec.level.to_string(), level, "{line}");
                assert!(
                    rec.message.starts_with(&format!("record {} GET", i + 6)),
                    "{line} -> {:?}",
                    rec.message
                );
                assert!(rec.message.len() >= 120, "{line}");
            }
        }
        let (line, _, _) = decoded(Format::Rfc5424, 7, 10);
        assert!(line.starts_with("<30>1 "), "daemon.info: {line}");
        assert!(
            line.contains(" bench-app1 1001 req [bench@32473 seq=\"7\"] record 7 "),
            "{line}"
        );
    }

    #[test]
    fn bodies_have_the_asked_size_but_keep_their_number() {
        let mut msgs = Messages::new(Format::Rfc3164, 300, 1);
        let mut msg = Vec::new();
        msgs.write(123, &mut msg);
        let text = String::from_utf8(msg).unwrap();
        let body = text.split_once("]: ").unwrap().1;
        assert_eq!(body.len(), 300);
        let mut msgs = Messages::new(Format::Rfc3164, 0, 1);
        let mut msg = Vec::new();
        msgs.write(123, &mut msg);
        assert!(String::from_utf8(msg).unwrap().ends_with("]: record 123 "));
    }

    #[test]
    fn framing_is_lf_or_octet_counting() {
        let mut out = Vec::new();
        frame(Framing::Lf, b"<13>a", &mut out);
        frame(Framing::OctetCounting, b"<13>bc", &mut out);
        assert_eq!(out, b"<13>a\n6 <13>bc");
    }

    #[test]
    fn workers_share_every_record_once() {
        let all: Vec<usize> = (0..3).flat_map(|w| range(10, 3, w)).collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(authority("tcp://127.0.0.1:5514/"), "127.0.0.1:5514");
        assert_eq!(authority("[::1]:514"), "[::1]:514");
    }
}
