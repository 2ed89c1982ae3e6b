//! Hostile input against the real daemon (the binary, over real sockets): OTLP amplification, a gzip
//! bomb, deep nesting, floods of idle and half-sent connections, slowloris on syslog TCP and OTLP
//! HTTP. Each attack asserts the answer it gets (a close, 400, 408, 413 or 503), the metric that
//! counted it, the daemon's peak RSS (VmHWM from /proc) against `queue_bytes` + the fixed overhead
//! documented in docs/security.md, and that a well-behaved sender gets through afterwards.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The queue the attacked daemons run with, and the overhead docs/security.md promises on top.
const QUEUE_BYTES: u64 = 16 << 20;
const OVERHEAD: u64 = 64 << 20;

/// An attacked daemon on SQLite: the process (its helpers in `common::daemon`), its directory and
/// its database URL.
struct Daemon {
    process: daemon::Daemon,
    _dir: tempfile::TempDir,
    db: String,
}

impl std::ops::Deref for Daemon {
    type Target = daemon::Daemon;

    fn deref(&self) -> &daemon::Daemon {
        &self.process
    }
}

impl Daemon {
    /// Starts the daemon on SQLite with `extra` TOML added to a config on free ports.
    fn start(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("panel.sqlite3");
        let cfg = dir.path().join("config.toml");
        let mut text = format!(
            "[storage]\nurl = \"sqlite://{}\"\n[batch]\nqueue_bytes = {QUEUE_BYTES}\nmax_delay = \"20ms\"\n",
            db.display()
        );
        // Sections named in `extra` are merged by writing them after the defaults above.
        let (mut syslog, mut otlp) = (String::new(), String::new());
        let mut current = None;
        for line in extra.lines() {
            match line.trim() {
                "[syslog]" => current = Some(&mut syslog),
                "[otlp]" => current = Some(&mut otlp),
                l if !l.is_empty() => {
                    let target = current.as_mut().expect("extra keys need a section");
                    target.push_str(l);
                    target.push('\n');
                }
                _ => {}
            }
        }
        text.push_str(&format!(
            "[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n{syslog}[otlp]\ngrpc = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n{otlp}[service]\nmetrics = \"127.0.0.1:0\"\n"
        ));
        std::fs::write(&cfg, text).unwrap();
        // Room for the descriptor floods.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("ulimit -n 65536 2>/dev/null || ulimit -n 16384; exec \"$0\" run --config \"$1\"")
            .arg(binary())
            .arg(&cfg);
        let d = Daemon {
            process: daemon::Daemon::spawn(cmd),
            _dir: dir,
            db: format!("sqlite://{}", db.display()),
        };
        d.wait_any(
            &["schema is up to date", "created the panel schema"],
            Duration::from_secs(30),
        );
        d
    }

    fn tcp(&self) -> SocketAddr {
        self.addr("listening on syslog tcp ")
    }

    fn http(&self) -> SocketAddr {
        self.addr("listening on otlp http ")
    }

    fn grpc(&self) -> SocketAddr {
        self.addr("listening on otlp grpc ")
    }

    /// A `/proc/PID/status` value in bytes (VmRSS now, VmHWM the peak).
    fn status_kib(&self, key: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc status"))
            * 1024
    }

    fn rss(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn peak(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// A counter of `/metrics`, 0 when it was never touched.
    fn metric(&self, name: &str, labels: &str) -> f64 {
        let out = run_stdout(Command::new("curl").arg("-s").arg(format!(
            "http://{}/metrics",
            self.addr("listening on metrics http ")
        )));
        out.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name) && l.contains(labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn limited(&self, limit: &str) -> f64 {
        self.metric(
            "log_panel_collector_limited_total",
            &format!("limit=\"{limit}\""),
        )
    }

    /// Asserts the peak RSS so far is within the documented bound.
    fn assert_bounded(&self, what: &str) {
        let peak = self.peak();
        eprintln!(
            "{what}: peak RSS {:.1} MiB (bound {:.1} MiB)",
            peak as f64 / 1048576.0,
            (QUEUE_BYTES + OVERHEAD) as f64 / 1048576.0
        );
        assert!(
            peak < QUEUE_BYTES + OVERHEAD,
            "{what}: peak RSS {peak} is over queue_bytes + overhead"
        );
    }
}

/// Runs tests/hostile/attack.py with the panel venv's Python (it has the OTLP protobuf types).
fn attack(args: &[&str]) -> serde_json::Value {
    let out = Command::new(panel_python())
        .arg(repo().join("tests/hostile/attack.py"))
        .args(args)
        .output()
        .expect("runs attack.py");
    assert!(
        out.status.success(),
        "attack.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("attack.py prints JSON")
}

/// POSTs a file to /v1/logs with curl; returns the HTTP status.
fn post(addr: SocketAddr, file: &std::path::Path, headers: &[&str]) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "60",
    ])
    .args(["-H", "Content-Type: application/x-protobuf"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("http://{addr}/v1/logs"));
    run_stdout(&mut cmd).trim().parse().unwrap()
}

/// A well-behaved syslog sender gets through: util-linux logger over TCP, stored.
async fn logger_gets_through(d: &Daemon, tag: &str) {
    let store = Store::connect(&d.db).await;
    let before = store.count("log_panel_log").await;
    logger(
        d.tcp(),
        &["--tcp", "--octet-count", "-t", tag, "well-behaved sender"],
    );
    let n = store.wait_rows(before + 1, Duration::from_secs(20)).await;
    assert_eq!(
        n,
        before + 1,
        "logger's message after the attack was stored"
    );
    assert!(
        store
            .rows()
            .await
            .iter()
            .any(|r| r.logger_name == tag && r.message.starts_with("well-behaved sender"))
    );
}

/// A well-behaved OTLP sender gets through: the OpenTelemetry Python SDK's HTTP exporter.
async fn exporter_gets_through(d: &Daemon) {
    let store = Store::connect(&d.db).await;
    let before = store.count("log_panel_log").await;
    let out = Command::new(panel_python())
        .arg(repo().join("tests/otlp/send_logs.py"))
        .args(["http", &format!("http://{}/v1/logs", d.http())])
        .args(["--count", "5", "--prefix", "after-attack"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = store.wait_rows(before + 5, Duration::from_secs(20)).await;
    assert_eq!(
        n,
        before + 5,
        "the exporter's records after the attack were stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_amplification_is_cut_or_refused_before_it_expands() {
    let d = Daemon::start("");
    let dir = tempfile::tempdir().unwrap();
    let http = d.http();

    // 1 MB resource attribute x 1,000 empty records: accepted, each copy cut to the limits.
    let body = dir.path().join("amp1000.pb");
    attack(&[
        "otlp-body",
        "--attr-bytes",
        "1000000",
        "--records",
        "1000",
        "--out",
        body.to_str().unwrap(),
    ]);
    assert_eq!(post(http, &body, &[]), 200);
    let store = Store::connect(&d.db).await;
    assert_eq!(store.wait_rows(1000, Duration::from_secs(30)).await, 1000);
    let rows = store.rows().await;
    assert!(
        rows.iter()
            .all(|r| r.message.contains("huge=AAAA") && r.message.contains("…cut"))
    );
    let longest = rows.iter().map(|r| r.message_size).max().unwrap();
    assert!(
        longest <= 16384 + 64,
        "context line cut to max_context_bytes: {longest}"
    );
    d.assert_bounded("1 MB attribute x 1,000 records");

    // ... x 500,000 records: refused before decoding (413), counted.
    let body = dir.path().join("amp500k.pb");
    attack(&[
        "otlp-body",
        "--attr-bytes",
        "1000000",
        "--records",
        "500000",
        "--out",
        body.to_str().unwrap(),
    ]);
    assert_eq!(post(http, &body, &[]), 413);
    assert_eq!(d.limited("otlp_decode_budget"), 1.0);
    // The same over gRPC: RESOURCE_EXHAUSTED (grpcurl is not here; the Python gRPC channel is).
    let code = grpc_export(d.grpc(), &body);
    assert_eq!(code, "RESOURCE_EXHAUSTED");
    assert_eq!(d.limited("otlp_decode_budget"), 2.0);
    d.assert_bounded("1 MB attribute x 500,000 records");
    assert_eq!(
        store.count("log_panel_log").await,
        1000,
        "nothing of the refused requests"
    );

    // A gzip bomb: 1 MB on the wire, 200 MB inflated, stopped at max_message_bytes.
    let bomb = dir.path().join("bomb.gz");
    attack(&[
        "gzip-bomb",
        "--inflate",
        "209715200",
        "--out",
        bomb.to_str().unwrap(),
    ]);
    assert_eq!(post(http, &bomb, &["Content-Encoding: gzip"]), 413);
    assert_eq!(d.limited("otlp_too_large"), 1.0);
    d.assert_bounded("gzip bomb");

    // Nesting past protobuf's recursion limit: 400; deep but legal nesting is stored.
    let deep = dir.path().join("deep.pb");
    attack(&[
        "otlp-body",
        "--nest",
        "300",
        "--out",
        deep.to_str().unwrap(),
    ]);
    assert_eq!(post(http, &deep, &[]), 400);
    let legal = dir.path().join("legal.pb");
    attack(&[
        "otlp-body",
        "--nest",
        "20",
        "--kvlist",
        "--out",
        legal.to_str().unwrap(),
    ]);
    assert_eq!(post(http, &legal, &[]), 200);
    assert_eq!(store.wait_rows(1001, Duration::from_secs(20)).await, 1001);
    d.assert_bounded("nested AnyValue");

    exporter_gets_through(&d).await;
}

/// One Export call over gRPC with the body of `file`; returns the status code's name.
fn grpc_export(addr: SocketAddr, file: &std::path::Path) -> String {
    let script = r#"
import sys, grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as pb, logs_service_pb2_grpc as svc
ch = grpc.insecure_channel(sys.argv[1], options=[("grpc.max_send_message_length", 64 << 20)])
req = pb.ExportLogsServiceRequest.FromString(open(sys.argv[2], "rb").read())
try:
    svc.LogsServiceStub(ch).Export(req, timeout=60)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name)
"#;
    let out = Command::new(panel_python())
        .arg("-c")
        .arg(script)
        .arg(addr.to_string())
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_cost_little_and_the_table_is_capped() {
    let d = Daemon::start("[syslog]\nmax_connections = 20000\n");
    let tcp = d.tcp();
    let base = d.rss();
    let mut flood = Command::new(panel_python())
        .arg(repo().join("tests/hostile/attack.py"))
        .args([
            "idle",
            "127.0.0.1",
            &tcp.port().to_string(),
            "--conns",
            "10000",
            "--hold",
            "120",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut report = String::new();
    BufReader::new(flood.stdout.take().unwrap())
        .read_line(&mut report)
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["opened"], 10000, "{report}");
    assert_eq!(
        report["closed"], 0,
        "idle connections are not closed: {report}"
    );
    let t0 = Instant::now();
    while d.open_fds() < 10000 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.open_fds() >= 10000, "the daemon holds the connections");
    let per_conn = d.rss().saturating_sub(base) / 10000;
    eprintln!(
        "10,000 idle connections: {per_conn} bytes each (RSS {} -> {})",
        base,
        d.rss()
    );
    assert!(per_conn <= 8192, "{per_conn} bytes per idle connection");
    d.assert_bounded("10,000 idle connections");
    // A sender still gets through while they are open (the table has room).
    logger_gets_through(&d, "during-flood").await;
    flood.stdin.take().unwrap().write_all(b"done\n").unwrap();
    flood.wait().unwrap();

    // With the table full, newcomers are closed at once and counted.
    let small = Daemon::start("[syslog]\nmax_connections = 100\n");
    let r = attack(&[
        "idle",
        "127.0.0.1",
        &small.tcp().port().to_string(),
        "--conns",
        "150",
        "--hold",
        "0",
    ]);
    assert_eq!(r["closed"], 50, "{r}");
    assert_eq!(small.limited("syslog_connections"), 50.0);
    logger_gets_through(&small, "after-flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_syslog_tcp_is_cut_and_idle_connections_stay() {
    let d = Daemon::start("[syslog]\nframe_timeout = \"1s\"\n");
    let tcp = d.tcp().port().to_string();
    let store = Store::connect(&d.db).await;

    // A frame that never ends, one byte every 100 ms: cut after ~1 s, stored, connection closed.
    let r = attack(&[
        "slow",
        "127.0.0.1",
        &tcp,
        "--data",
        "<13>Dec  2 10:00:00 host app: slowloris never ends",
        "--delay",
        "0.1",
        "--limit",
        "10",
    ]);
    let closed = r["closed_after"]
        .as_f64()
        .expect("the daemon closed the connection");
    assert!((0.9..5.0).contains(&closed), "{r}");
    assert!(r["sent"].as_u64().unwrap() < 40, "{r}");
    assert_eq!(store.wait_rows(1, Duration::from_secs(10)).await, 1);
    assert_eq!(d.limited("frame_timeout"), 1.0);
    assert_eq!(
        d.metric("log_panel_collector_truncated_frames_total", ""),
        1.0
    );

    // An idle connection (no frame begun) is not limited.
    let r = attack(&[
        "slow",
        "127.0.0.1",
        &tcp,
        "--data",
        "",
        "--delay",
        "0.2",
        "--limit",
        "3",
    ]);
    assert!(r["closed_after"].is_null(), "idle connection kept: {r}");
    d.assert_bounded("slowloris");
    logger_gets_through(&d, "after-slowloris").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_one_byte_over_max_frame_sent_byte_by_byte_is_cut_and_kept() {
    let d = Daemon::start("[syslog]\nmax_frame = 1024\nframe_timeout = \"60s\"\n");
    let tcp = d.tcp().port().to_string();
    let store = Store::connect(&d.db).await;
    let mut data = "<13>".to_string();
    while data.len() < 1025 {
        data.push_str("word ");
    }
    data.truncate(1025);
    data.push_str("\n<13>next frame\n");
    let r = attack(&[
        "slow",
        "127.0.0.1",
        &tcp,
        "--data",
        &data,
        "--delay",
        "0.0002",
        "--limit",
        "60",
    ]);
    assert_eq!(r["sent"], data.len(), "{r}");
    assert_eq!(store.wait_rows(2, Duration::from_secs(10)).await, 2);
    let rows = store.rows().await;
    assert!(
        rows.iter()
            .any(|r| r.message.starts_with("word word") && r.message_size >= 1000),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.message.starts_with("next frame")),
        "{rows:?}"
    );
    assert_eq!(
        d.metric("log_panel_collector_truncated_frames_total", ""),
        1.0
    );
    d.assert_bounded("max_frame + 1 byte by byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_frames_across_connections_stay_under_the_pending_budget() {
    let d = Daemon::start(
        "[syslog]\nmax_frame = \"64KiB\"\nmax_pending_bytes = \"8MiB\"\nframe_timeout = \"2s\"\n",
    );
    let store = Store::connect(&d.db).await;
    let port = d.tcp().port().to_string();
    let r = attack(&[
        "idle",
        "127.0.0.1",
        &port,
        "--conns",
        "1000",
        "--partial",
        "60000",
        "--hold",
        "0",
        "--settle",
        "8",
    ]);
    assert_eq!(r["opened"], 1000, "{r}");
    // 8 MiB holds about 120 of them at once: the others waited to be read (their bytes stayed in
    // the kernel) while the held ones ran into frame_timeout, were cut, stored and closed.
    let waited = d.limited("pending_bytes");
    let timed_out = d.limited("frame_timeout");
    eprintln!(
        "1,000 unfinished frames of 60 kB: {waited} waits for the budget, {timed_out} cut, {r}"
    );
    assert!(waited >= 500.0, "{waited}");
    assert!(timed_out >= 100.0, "{timed_out}");
    // Every frame is stored once: the cut ones, and the rest when their senders closed.
    assert_eq!(store.wait_rows(1000, Duration::from_secs(90)).await, 1000);
    d.assert_bounded("1,000 unfinished frames");
    logger_gets_through(&d, "after-pending").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_otlp_http_gets_timeouts() {
    let d = Daemon::start("[otlp]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\n");
    let port = d.http().port().to_string();
    // Headers that never end: closed after header_timeout.
    let r = attack(&[
        "slow",
        "127.0.0.1",
        &port,
        "--data",
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "--delay",
        "0.1",
        "--limit",
        "10",
    ]);
    let closed = r["closed_after"].as_f64().expect("closed");
    assert!((0.9..5.0).contains(&closed), "{r}");
    // A body that never ends (the headers sent at once): 408 after body_timeout.
    let head = "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n";
    let data = format!("{head}abcdefghijklmnopqrstuvwxyz");
    let fast = head.len().to_string();
    let r = attack(&[
        "slow",
        "127.0.0.1",
        &port,
        "--data",
        &data,
        "--fast",
        &fast,
        "--delay",
        "0.1",
        "--limit",
        "10",
    ]);
    assert!(
        r["answer"].as_str().unwrap().starts_with("HTTP/1.1 408"),
        "{r}"
    );
    assert_eq!(d.limited("otlp_body_timeout"), 1.0);
    d.assert_bounded("OTLP slowloris");
    exporter_gets_through(&d).await;
}
