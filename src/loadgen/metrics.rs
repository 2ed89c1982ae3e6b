//! Reads the daemon's own `/metrics` (Prometheus/OpenMetrics text over plain HTTP/1.1) for the bench:
//! how many records it committed to the database, what is still queued, and what UDP lost. A tiny
//! client on a TCP stream, because the bench needs one GET and nothing of a full HTTP stack.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The metric prefix the daemon registers its counters under.
const PREFIX: &str = "log_panel_collector_";
/// Longest time one scrape may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Where the daemon's metrics are: `http://HOST:PORT/PATH` (or `HOST:PORT`, path `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    /// `HOST:PORT` to connect to.
    pub authority: String,
    /// The request path.
    pub path: String,
}

impl Scrape {
    /// Records received since `base` and neither stored, filtered nor dropped yet: still on their way
    /// to the database (in the queue, the spool or a write).
    pub fn pending_since(&self, base: &Scrape) -> u64 {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        d(self.received, base.received).saturating_sub(
            d(self.stored, base.stored)
                + d(self.filtered, base.filtered)
                + d(self.udp_dropped, base.udp_dropped),
        )
    }
}

impl std::fmt::Display for MetricsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

impl std::str::FromStr for MetricsUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("https://") {
            return Err(format!(
                "{s:?}: the daemon serves its metrics over plain http"
            ));
        }
        let rest = s.strip_prefix("http://").unwrap_or(s);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(format!(
                "{s:?} is not a metrics address of the form http://HOST:PORT/metrics"
            ));
        }
        Ok(MetricsUrl {
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// The counters the bench reads, summed over their label sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrape {
    /// Records committed to the database: rows written plus error records stored in place of
    /// records the database refused.
    pub stored: u64,
    /// Records received, all sources.
    pub received: u64,
    /// Records refused by the daemon's `[filter]` settings.
    pub filtered: u64,
    /// Records queued or being written.
    pub queue_records: u64,
    /// UDP messages dropped because the queue was full.
    pub udp_dropped: u64,
    /// Datagrams the kernel dropped on the daemon's UDP sockets.
    pub kernel_drops: u64,
}

/// Why the stored figures are unknown.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("not measured (--metrics off)")]
    Off,
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("reading {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url} did not answer within 3 s")]
    Timeout { url: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: String },
    #[error(
        "{url} has no log_panel_collector_rows_written counter: not a log-panel-collector's metrics"
    )]
    NotCollector { url: String },
}

/// One GET of the metrics, parsed.
pub async fn scrape(url: &MetricsUrl) -> Result<Scrape, MetricsError> {
    let text = tokio::time::timeout(TIMEOUT, get(url))
        .await
        .map_err(|_| MetricsError::Timeout {
            url: url.to_string(),
        })??;
    parse(&text).ok_or_else(|| MetricsError::NotCollector {
        url: url.to_string(),
    })
}

async fn get(url: &MetricsUrl) -> Result<String, MetricsError> {
    let mut s = tokio::net::TcpStream::connect(&url.authority)
        .await
        .map_err(|source| MetricsError::Connect {
            url: url.to_string(),
            source,
        })?;
    let io = |source| MetricsError::Io {
        url: url.to_string(),
        source,
    };
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    s.write_all(head.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").trim();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(MetricsError::Status {
            url: url.to_string(),
            status: if status.is_empty() {
                "nothing".into()
            } else {
                status.to_string()
            },
        });
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok(if chunked {
        dechunk(body)
    } else {
        body.to_string()
    })
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Sums the bench's counters out of the exposition text; `None` without a rows-written counter.
pub fn parse(text: &str) -> Option<Scrape> {
    let mut s = Scrape::default();
    let mut found = false;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(PREFIX) else {
            continue;
        };
        let name_end = rest.find(['{', ' ']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = &rest[name_end..];
        // Label values may hold spaces (the backend's description): the value follows the last '}'.
        let value_part = match after.strip_prefix('{') {
            Some(_) => after.rfind('}').map_or("", |i| &after[i + 1..]),
            None => after,
        };
        let Some(value) = value_part
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let v = value.max(0.0) as u64;
        match name {
            "rows_written_total" => {
                found = true;
                s.stored += v;
            }
            "error_records_total" => s.stored += v,
            "received_records_total" => s.received += v,
            "filtered_records_total" => s.filtered += v,
            "queue_records" => s.queue_records += v,
            "udp_dropped_records_total" => s.udp_dropped += v,
            "udp_kernel_dropped_datagrams_total" => s.kernel_drops += v,
            _ => {}
        }
    }
    found.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_a_scheme_a_path_or_neither() {
        let u: MetricsUrl = "http://127.0.0.1:9598/metrics".parse().unwrap();
        assert_eq!(u.authority, "127.0.0.1:9598");
        assert_eq!(u.path, "/metrics");
        let u: MetricsUrl = "[::1]:9000".parse().unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("[::1]:9000", "/metrics")
        );
        assert!("localhost".parse::<MetricsUrl>().is_err());
        assert!("http://:9598".parse::<MetricsUrl>().is_err());
        assert!("https://host:9598/metrics".parse::<MetricsUrl>().is_err());
    }

    #[test]
    fn counters_are_summed_over_labels_and_other_metrics_ignored() {
        let text = "# HELP log_panel_collector_rows_written Rows committed to storage.\n\
            # TYPE log_panel_collector_rows_written counter\n\
            log_panel_collector_rows_written_total{backend=\"postgres 127.0.0.1 {x}\"} 1200\n\
            log_panel_collector_rows_written_created{backend=\"a\"} 1700000000.0\n\
            log_panel_collector_error_records_total{backend=\"a\"} 3\n\
            log_panel_collector_queue_records{backend=\"a\"} 17\n\
            log_panel_collector_udp_dropped_records_total{backend=\"a\"} 5\n\
            log_panel_collector_udp_kernel_dropped_datagrams_total{backend=\"a\"} 9\n\
            log_panel_collector_received_records_total{backend=\"a\",source=\"syslog\",transport=\"udp\"} 9999\n\
            log_panel_collector_received_records_total{backend=\"a\",source=\"otlp\",transport=\"grpc\"} 1\n\
            log_panel_collector_filtered_records_total{backend=\"a\"} 2\n\
            # EOF\n";
        assert_eq!(
            parse(text),
            Some(Scrape {
                stored: 1203,
                received: 10000,
                filtered: 2,
                queue_records: 17,
                udp_dropped: 5,
                kernel_drops: 9,
            })
        );
        assert_eq!(parse("some_other_exporter_total 5\n"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
