//! Fault tests of the disk spool with the real daemon binary and real PostgreSQL: kill -9 under
//! load at many moments (during commits and during replay), torn and flipped segment bytes, a full
//! disk, a long outage, and SIGTERM/SIGHUP under syslog TCP load. Each asserts exact counts:
//! every acknowledged record stored once, nothing duplicated, counters equal to the rows.

mod common;

use common::daemon::{Daemon, post_otlp, scrape};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Free loopback ports for one daemon, kept across its restarts.
struct Ports {
    tcp: u16,
    http: u16,
    metrics: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            tcp: free_port(),
            http: free_port(),
            metrics: free_port(),
        }
    }
    fn http(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }
    fn tcp(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.tcp))
    }
    fn metrics(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.metrics))
    }
}

fn config(path: &Path, url: &str, spool: &Path, ports: &Ports, extra: &str) {
    let body = format!(
        r#"[storage]
url = "{url}"
context = false
[syslog]
udp = []
tcp = ["127.0.0.1:{tcp}"]
[otlp]
grpc = ""
http = "127.0.0.1:{http}"
queue_wait = "200ms"
[batch]
max_records = 400
max_delay = "20ms"
retry_max = "300ms"
[service]
metrics = "127.0.0.1:{metrics}"
shutdown_timeout = "30s"
[spool]
dir = "{dir}"
{extra}
"#,
        tcp = ports.tcp,
        http = ports.http,
        metrics = ports.metrics,
        dir = spool.display(),
    );
    std::fs::write(path, body).unwrap();
}

/// Waits until the daemon serves OTLP/HTTP.
fn wait_http(d: &Daemon, ports: &Ports) {
    d.wait_line(
        &format!("listening on otlp http 127.0.0.1:{}", ports.http),
        Duration::from_secs(30),
    );
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every stored message with how often it is stored.
async fn stored_counts(store: &Store) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in store.rows().await {
        *m.entry(r.message).or_insert(0) += 1;
    }
    m
}

/// OTLP senders that remember which requests were answered 200 (acknowledged).
struct OtlpLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl OtlpLoad {
    fn start(addr: SocketAddr, tag: &str, senders: usize, per_request: usize) -> OtlpLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicU64::new(0));
        let threads = (0..senders)
            .map(|t| {
                let (stop, acked, refused, tag) = (
                    stop.clone(),
                    acked.clone(),
                    refused.clone(),
                    tag.to_string(),
                );
                std::thread::spawn(move || {
                    let mut r = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let msgs: Vec<String> = (0..per_request)
                            .map(|i| format!("{tag}-{t}-{r}-{i}"))
                            .collect();
                        match post_otlp(addr, &format!("app{}", r % 4), &msgs) {
                            Some(200) => acked.lock().unwrap().extend(msgs),
                            Some(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            None => std::thread::sleep(Duration::from_millis(20)),
                        }
                        r += 1;
                    }
                })
            })
            .collect();
        OtlpLoad {
            stop,
            acked,
            refused,
            threads,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.refused.load(Ordering::Relaxed))
    }
}

/// A syslog TCP sender that writes numbered frames, reconnecting when the daemon is gone.
fn tcp_load(
    addr: SocketAddr,
    tag: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            while !stop.load(Ordering::Relaxed) {
                let msg = format!("<14>1 2026-11-27T10:00:00Z host tcpapp - - - {tag}-{n}");
                if s.write_all(&octet_frame(msg.as_bytes())).is_err() {
                    break;
                }
                n += 1;
                if n % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        n
    })
}

/// Checks exactly-once for the acknowledged messages, at-most-once for every message with this
/// prefix, and the counters. Returns (stored, duplicated).
async fn assert_exactly_once(store: &Store, acked: &[String], prefixes: &[&str]) -> (usize, usize) {
    let counts = stored_counts(store).await;
    let dup: Vec<_> = counts
        .iter()
        .filter(|(m, c)| **c > 1 && prefixes.iter().any(|p| m.starts_with(p)))
        .collect();
    assert!(
        dup.is_empty(),
        "{} message(s) stored twice, e.g. {:?}",
        dup.len(),
        dup.first()
    );
    let missing: Vec<_> = acked.iter().filter(|m| !counts.contains_key(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged record(s) not stored, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let rows = store.rows().await;
    assert_counters(&rows, &store.cards().await, &store.buckets().await, false);
    (counts.len(), dup.len())
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_else(|_| Vec::new());
    v.retain(|p: &PathBuf| p.extension().is_some_and(|e| e == "seg"));
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_at_many_moments_loses_and_doubles_nothing_acknowledged() {
    let db = TestDb::new(Engine::Postgres, "kill9").await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    config(
        &conf,
        &db.url,
        &spool,
        &ports,
        "sync = \"always\"\nmax_bytes = \"64MiB\"",
    );
    let load = OtlpLoad::start(ports.http(), "k", 3, 40);
    let stop_tcp = Arc::new(AtomicBool::new(false));
    let tcp = tcp_load(ports.tcp(), "t", stop_tcp.clone());
    // Kill moments after the daemon listens: right away (replay of what the last run left is
    // running), and later, with commits of the running load in flight.
    let moments_ms = [
        0u64, 30, 80, 150, 250, 400, 600, 850, 1100, 1400, 1800, 2300,
    ];
    let mut max_rss = 0;
    let mut skipped_lines = 0;
    for (k, ms) in moments_ms.iter().enumerate() {
        let d = Daemon::start(&conf);
        wait_http(&d, &ports);
        let acked_before = load.acked();
        std::thread::sleep(Duration::from_millis(*ms));
        if k % 3 == 2 {
            // Make sure this run acknowledged something of its own before it dies.
            wait_until("an acknowledged request", Duration::from_secs(20), || {
                load.acked() > acked_before
            });
        }
        max_rss = max_rss.max(d.rss_kib());
        skipped_lines += d.lines_with("were committed before the restart").len();
        d.kill9();
    }
    // Last run: no kill. Stop the senders, wait until every acknowledged record is stored.
    let d = Daemon::start(&conf);
    wait_http(&d, &ports);
    std::thread::sleep(Duration::from_millis(500));
    let (acked, refused) = load.finish();
    stop_tcp.store(true, Ordering::Relaxed);
    let tcp_sent = tcp.join().unwrap();
    let store = db.store().await;
    let t0 = Instant::now();
    loop {
        let counts = stored_counts(&store).await;
        if acked.iter().all(|m| counts.contains_key(m)) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "acknowledged records did not all arrive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    skipped_lines += d.lines_with("were committed before the restart").len();
    let (ok, _, log) = d.term(Duration::from_secs(30));
    assert!(ok, "clean exit:\n{log}");
    let (stored, dup) = assert_exactly_once(&store, &acked, &["k-", "t-"]).await;
    assert!(
        acked.len() > 1000,
        "the load acknowledged {} records only",
        acked.len()
    );
    assert!(
        skipped_lines > 0,
        "at least one restart found records committed before the kill (crash between commit and segment removal)"
    );
    assert!(max_rss < 300 * 1024, "RSS {max_rss} KiB");
    eprintln!(
        "kill -9: {} kill points, acknowledged={} stored={stored} duplicated={dup} refused_requests={refused} tcp_frames_sent={tcp_sent} restarts_with_skips={skipped_lines} max_rss_kib={max_rss}",
        moments_ms.len(),
        acked.len()
    );
}
