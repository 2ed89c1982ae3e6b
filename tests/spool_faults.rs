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
    grpc: u16,
    metrics: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            tcp: free_port(),
            http: free_port(),
            grpc: free_port(),
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
grpc = "127.0.0.1:{grpc}"
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
        grpc = ports.grpc,
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
        OtlpLoad::paced(addr, tag, senders, per_request, Duration::ZERO)
    }

    /// Like `start`, each sender pausing `pause` after every request.
    fn paced(
        addr: SocketAddr,
        tag: &str,
        senders: usize,
        per_request: usize,
        pause: Duration,
    ) -> OtlpLoad {
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
                            Some(200) => {
                                acked.lock().unwrap().extend(msgs);
                                std::thread::sleep(pause);
                            }
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

/// An OTLP/gRPC sender (tonic client, the load generator's requests with bodies of our own) that
/// adds to `acked` the records of every request answered OK; reconnects while the daemon is gone.
fn grpc_load(
    port: u16,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut r = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut client) =
                    LogsServiceClient::connect(format!("http://127.0.0.1:{port}")).await
                else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                while !stop.load(Ordering::Relaxed) {
                    let mut req = log_panel_collector::loadgen::request(0, 40, 64, 4);
                    let mut msgs = Vec::new();
                    for (i, lr) in req.resource_logs[0]
                        .scope_logs
                        .iter_mut()
                        .flat_map(|s| s.log_records.iter_mut())
                        .enumerate()
                    {
                        let m = format!("{tag}-{r}-{i}");
                        lr.body = Some(AnyValue {
                            value: Some(Value::StringValue(m.clone())),
                        });
                        lr.attributes.clear();
                        msgs.push(m);
                    }
                    r += 1;
                    match client.export(req).await {
                        Ok(_) => acked.lock().unwrap().extend(msgs),
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        })
    })
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
                if n.is_multiple_of(200) {
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
    let grpc_acked = Arc::new(Mutex::new(Vec::new()));
    let grpc = grpc_load(ports.grpc, "g", stop_tcp.clone(), grpc_acked.clone());
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
    let (mut acked, refused) = load.finish();
    stop_tcp.store(true, Ordering::Relaxed);
    let tcp_sent = tcp.join().unwrap();
    grpc.join().unwrap();
    let grpc_acked: Vec<String> = grpc_acked.lock().unwrap().clone();
    let grpc_n = grpc_acked.len();
    acked.extend(grpc_acked);
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
        "kill -9: {} kill points, acknowledged={} (gRPC {grpc_n}) stored={stored} duplicated={dup} refused_requests={refused} tcp_frames_sent={tcp_sent} restarts_with_skips={skipped_lines} max_rss_kib={max_rss}",
        moments_ms.len(),
        acked.len()
    );
}

/// What [`records_of`] gives as the message of a record that no longer decodes.
const DAMAGED: &str = "<damaged>";

/// The records of a segment file as the format frames them: (offset, framed length, message).
fn records_of(path: &Path) -> Vec<(usize, usize, String)> {
    use log_panel_collector::pipeline::spool::format::{self, FRAME_HEADER, SEGMENT_HEADER};
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..SEGMENT_HEADER.len()], &SEGMENT_HEADER[..]);
    let mut at = SEGMENT_HEADER.len();
    let mut out = Vec::new();
    while at + FRAME_HEADER <= data.len() {
        let (len, _) = format::frame_header(data[at..at + FRAME_HEADER].try_into().unwrap())
            .expect("an intact frame");
        // A record flipped by an earlier pass no longer decodes: marked, so it is not damaged twice.
        let message = match format::decode(&data[at + FRAME_HEADER..at + FRAME_HEADER + len]) {
            Ok((_, r)) => r.message,
            Err(_) => format!("{DAMAGED} at {at}"),
        };
        out.push((at, FRAME_HEADER + len, message));
        at += FRAME_HEADER + len;
    }
    assert_eq!(at, data.len(), "{} ends on a record", path.display());
    out
}

/// A small deterministic generator, seeded from the clock and printed, for damage offsets.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_flipped_segments_deliver_every_intact_record_and_count_the_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    // Storage down: everything acknowledged stays in the spool; SIGTERM is prompt and exits 0.
    let down = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    config(
        &conf,
        &down,
        &spool,
        &ports,
        "sync = \"always\"\nmax_bytes = \"8MiB\"",
    );
    let d = Daemon::start(&conf);
    wait_http(&d, &ports);
    let pad = "p".repeat(300);
    let mut acked = Vec::new();
    for r in 0..60 {
        let msgs: Vec<String> = (0..100).map(|i| format!("torn-{r}-{i} {pad}")).collect();
        assert_eq!(
            post_otlp(ports.http(), "torn", &msgs),
            Some(200),
            "request {r}"
        );
        acked.extend(msgs);
    }
    let (ok, took, log) = d.term(Duration::from_secs(30));
    assert!(ok, "SIGTERM with storage down exits 0:\n{log}");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert!(log.contains("stay in the spool"), "{log}");

    let segs = segments(&spool);
    assert!(segs.len() >= 2, "several segments: {segs:?}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("damage seed {seed}");
    let mut rng = Lcg(seed);
    let mut lost: BTreeSet<String> = BTreeSet::new();
    let mut cuts = 0;
    // Flip a byte inside three records of the older segments.
    for k in 0..3 {
        let path = &segs[k % (segs.len() - 1)];
        let recs = records_of(path);
        let (at, len, msg) = recs[rng.next(recs.len())].clone();
        if lost.contains(&msg) || msg.starts_with(DAMAGED) {
            continue;
        }
        let mut data = std::fs::read(path).unwrap();
        data[at + 12 + rng.next(len - 12)] ^= 0x5a;
        std::fs::write(path, data).unwrap();
        lost.insert(msg);
        cuts += 1;
    }
    // Truncate the newest segment with records at a random offset.
    let newest = segs
        .iter()
        .rev()
        .find(|p| !records_of(p).is_empty())
        .unwrap()
        .clone();
    let recs = records_of(&newest);
    let size = std::fs::metadata(&newest).unwrap().len() as usize;
    let cut_at = 8 + rng.next(size - 8);
    for (at, len, msg) in &recs {
        if at + len > cut_at {
            lost.insert(msg.clone());
        }
    }
    if recs
        .iter()
        .any(|(at, len, _)| *at < cut_at && at + len > cut_at)
    {
        cuts += 1; // a record cut in the middle; a cut on a boundary leaves no damage
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(cut_at as u64)
        .unwrap();

    let db = TestDb::new(Engine::Postgres, "torn").await;
    config(
        &conf,
        &db.url,
        &spool,
        &ports,
        "sync = \"always\"\nmax_bytes = \"8MiB\"",
    );
    let d = Daemon::start(&conf);
    wait_http(&d, &ports);
    let want: Vec<String> = acked
        .iter()
        .filter(|m| !lost.contains(*m))
        .cloned()
        .collect();
    let store = db.store().await;
    store
        .wait_rows(want.len() as i64, Duration::from_secs(60))
        .await;
    wait_until("the cut metric", Duration::from_secs(10), || {
        scrape(
            ports.metrics(),
            "log_panel_collector_spool_cut_records_total",
        ) == Some(cuts as f64)
    });
    assert!(d.text().contains("is damaged at byte"), "the cut is logged");
    let (ok, _, log) = d.term(Duration::from_secs(30));
    assert!(ok, "{log}");
    let counts = stored_counts(&store).await;
    let stored: BTreeSet<&String> = counts.keys().collect();
    let wanted: BTreeSet<&String> = want.iter().collect();
    assert_eq!(stored, wanted, "exactly the intact records");
    assert!(counts.values().all(|c| *c == 1), "none twice");
    assert_counters(
        &store.rows().await,
        &store.cards().await,
        &store.buckets().await,
        false,
    );
    eprintln!(
        "torn: acknowledged={} damaged={} cut_places={cuts} stored={} duplicated=0 seed={seed}",
        acked.len(),
        lost.len(),
        counts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_backpressure_and_writing_resumes_when_space_returns() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    assert!(
        is_root,
        "this test mounts a tmpfs: run it as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    run_ok(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mnt),
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let pg = PrivatePg::init();
    let spool = mnt.join("spool");
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    config(
        &conf,
        &pg.url(),
        &spool,
        &ports,
        "sync = \"always\"\nmax_bytes = \"64MiB\"",
    );
    let d = Daemon::start(&conf);
    wait_http(&d, &ports);
    d.wait_line("schema", Duration::from_secs(30));
    pg.stop();
    let load = OtlpLoad::start(ports.http(), "full", 2, 50);
    let stop_tcp = Arc::new(AtomicBool::new(false));
    let tcp = tcp_load(ports.tcp(), "ft", stop_tcp.clone());
    wait_until(
        "the spool to hit the full disk",
        Duration::from_secs(60),
        || {
            scrape(
                ports.metrics(),
                "log_panel_collector_spool_write_errors_total",
            )
            .unwrap_or(0.0)
                > 0.0
        },
    );
    let refused_at_full = load.refused.load(Ordering::Relaxed);
    wait_until(
        "requests refused while the disk is full",
        Duration::from_secs(30),
        || load.refused.load(Ordering::Relaxed) > refused_at_full + 5,
    );
    assert!(d.lines_with("panicked").is_empty());
    assert!(
        scrape(ports.metrics(), "log_panel_collector_spool_bytes").is_some(),
        "the daemon still answers"
    );
    // Space returns: the same requests are acknowledged again.
    run_ok(
        std::process::Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(&mnt),
    );
    let acked_then = load.acked();
    wait_until(
        "acknowledgements after space returned",
        Duration::from_secs(30),
        || load.acked() > acked_then + 500,
    );
    pg.start();
    std::thread::sleep(Duration::from_millis(300));
    let (acked, refused) = load.finish();
    stop_tcp.store(true, Ordering::Relaxed);
    let tcp_sent = tcp.join().unwrap();
    let store = Store::connect(&pg.url()).await;
    let t0 = Instant::now();
    loop {
        let counts = stored_counts(&store).await;
        if acked.iter().all(|m| counts.contains_key(m)) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "acknowledged records did not all arrive"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (ok, _, log) = d.term(Duration::from_secs(30));
    assert!(ok, "{log}");
    let (stored, dup) = assert_exactly_once(&store, &acked, &["full-", "ft-"]).await;
    eprintln!(
        "disk full: acknowledged={} stored={stored} duplicated={dup} refused_requests={refused} tcp_frames_sent={tcp_sent}",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_larger_than_the_queue_loses_nothing() {
    let outage = Duration::from_secs(
        std::env::var("LPC_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let pg = PrivatePg::init();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    config(
        &conf,
        &pg.url(),
        &spool,
        &ports,
        "sync = \"always\"\nmax_bytes = \"256MiB\"",
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("[batch]\n", "[batch]\nqueue_bytes = \"1MiB\"\n"),
    )
    .unwrap();
    let d = Daemon::start(&conf);
    wait_http(&d, &ports);
    d.wait_line("schema", Duration::from_secs(30));
    pg.stop();
    // About 4000 records/s: far more than queue_bytes over the outage, well inside the spool.
    let load = OtlpLoad::paced(ports.http(), "out", 2, 100, Duration::from_millis(50));
    let t0 = Instant::now();
    let mut max_rss = 0;
    while t0.elapsed() < outage {
        max_rss = max_rss.max(d.rss_kib());
        std::thread::sleep(Duration::from_millis(250));
    }
    let during = load.acked();
    pg.start();
    let (acked, refused) = load.finish();
    // Each record is ~80 characters plus its row: the outage held several times queue_bytes.
    assert!(
        during * 80 > 4 << 20,
        "only {during} records acknowledged during the outage"
    );
    let store = Store::connect(&pg.url()).await;
    let n = store
        .wait_rows(acked.len() as i64, Duration::from_secs(180))
        .await;
    assert!(
        n >= acked.len() as i64,
        "{n} rows for {} acknowledged records; log:\n{}",
        acked.len(),
        d.text()
    );
    let (ok, _, log) = d.term(Duration::from_secs(30));
    assert!(ok, "{log}");
    let (stored, dup) = assert_exactly_once(&store, &acked, &["out-"]).await;
    assert!(max_rss < 200 * 1024, "RSS {max_rss} KiB during the outage");
    eprintln!(
        "long outage ({outage:?}): acknowledged={} (during the outage {during}) stored={stored} duplicated={dup} refused_requests={refused} max_rss_kib={max_rss}",
        acked.len()
    );
}

/// Senders that each write `n` frames as fast as they can, then close; returns every message.
fn tcp_burst(addr: SocketAddr, tag: &str, senders: usize, n: usize) -> Vec<String> {
    let threads: Vec<_> = (0..senders)
        .map(|t| {
            let tag = tag.to_string();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let mut buf = Vec::new();
                let mut msgs = Vec::new();
                for i in 0..n {
                    let m = format!("{tag}-{t}-{i}");
                    let line = format!("<14>1 2026-11-27T10:00:00Z host burst - - - {m}");
                    buf.extend(octet_frame(line.as_bytes()));
                    msgs.push(m);
                }
                s.write_all(&buf).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                msgs
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_under_tcp_load_store_every_frame_written_before_close() {
    let db = TestDb::new(Engine::Postgres, "tcpstop").await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    let second = free_port();
    config(&conf, &db.url, &spool, &ports, "");
    let both = std::fs::read_to_string(&conf).unwrap().replace(
        &format!("tcp = [\"127.0.0.1:{}\"]", ports.tcp),
        &format!(
            "tcp = [\"127.0.0.1:{}\", \"127.0.0.1:{second}\"]",
            ports.tcp
        ),
    );
    std::fs::write(&conf, &both).unwrap();
    let d = Daemon::start(&conf);
    d.wait_line(
        &format!("listening on syslog tcp 127.0.0.1:{second}"),
        Duration::from_secs(30),
    );
    d.wait_line("schema", Duration::from_secs(30));
    // SIGHUP that removes the listener the senders use, right after they closed.
    let mut written = tcp_burst(ports.tcp(), "hup", 4, 25_000);
    let only_second = both.replace(&format!("\"127.0.0.1:{}\", ", ports.tcp), "");
    std::fs::write(&conf, &only_second).unwrap();
    d.signal("HUP");
    d.wait_line(
        &format!("stopped listening on syslog-tcp 127.0.0.1:{}", ports.tcp),
        Duration::from_secs(30),
    );
    // SIGTERM right after the senders on the other listener closed.
    let second_addr = SocketAddr::from(([127, 0, 0, 1], second));
    written.extend(tcp_burst(second_addr, "term", 4, 25_000));
    let (ok, _, log) = d.term(Duration::from_secs(60));
    assert!(ok, "{log}");
    // Whatever the stop left in the spool is delivered by the next start.
    let d = Daemon::start(&conf);
    let store = db.store().await;
    store
        .wait_rows(written.len() as i64, Duration::from_secs(60))
        .await;
    let (ok, _, log) = d.term(Duration::from_secs(60));
    assert!(ok, "{log}");
    let (stored, dup) = assert_exactly_once(&store, &written, &["hup-", "term-"]).await;
    assert_eq!(stored, written.len());
    eprintln!(
        "sigterm/sighup tcp: written={} stored={stored} duplicated={dup}",
        written.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_conflict_stops_start_up_with_what_to_do() {
    let db = TestDb::new(Engine::Postgres, "conflict").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // Panel tables without their rows in django_migrations.
    sqlx::raw_sql("CREATE TABLE log_panel_log (id uuid PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    let ports = Ports::new();
    config(&conf, &db.url, &dir.path().join("spool"), &ports, "");
    let d = Daemon::start(&conf);
    let (code, log) = d.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("django_migrations does not record"), "{log}");
    assert!(log.contains("migrate log_panel --fake"), "{log}");
}
