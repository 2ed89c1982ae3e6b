//! `log-panel-collector bench` against the real daemon binary on a real database: for each protocol
//! (OTLP/gRPC, syslog TCP with LF and with octet counting, UDP at a modest fixed rate) the summary's
//! stored count equals what was sent and the rows the database gained; without readable metrics the
//! bench still reports what it sent and says the stored figures are unknown.

mod common;

use common::daemon::{Daemon, http};
use common::{Engine, TestDb, binary, free_port, wait_until};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The daemon with every listener on a free loopback port.
struct Running {
    d: Daemon,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(db: &TestDb) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("c.toml");
        std::fs::write(
            &conf,
            format!(
                "[storage]\nurl = \"{}\"\n[syslog]\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\n\
                 [otlp]\ngrpc = \"127.0.0.1:0\"\nhttp = \"\"\n[service]\nmetrics = \"127.0.0.1:0\"\n\
                 [batch]\nmax_delay = \"20ms\"\n[retention]\ndays = 0\n",
                db.url
            ),
        )
        .unwrap();
        let r = Running {
            d: Daemon::start(&conf),
            _dir: dir,
        };
        let metrics = r.addr("listening on metrics http ");
        wait_until("the daemon is ready", Duration::from_secs(60), || {
            http(metrics, "GET", "/ready", b"").is_some_and(|(c, _)| c == 200)
        });
        r
    }

    fn addr(&self, prefix: &str) -> SocketAddr {
        self.d.addr(prefix)
    }

    fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr("listening on metrics http "))
    }
}

/// Runs `bench` with these arguments: (summary fields, stderr).
fn bench(args: &[&str]) -> (HashMap<String, String>, String) {
    let out = Command::new(binary())
        .arg("bench")
        .args(args)
        .output()
        .expect("runs the bench");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "bench {args:?} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("bench "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}\n{stderr}"));
    let mut fields: HashMap<String, String> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let protocol = line.split_whitespace().nth(1).unwrap_or("").to_string();
    fields.insert("protocol".into(), protocol);
    (fields, stderr)
}

fn num(fields: &HashMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key}= in {fields:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}= is not a number in {fields:?}: {e}"))
}

async fn every_protocol_stores_what_it_sent(engine: Engine) {
    let db = TestDb::new(engine, "bench").await;
    let r = Running::start(&db);
    let store = db.wait_schema(Duration::from_secs(30)).await;
    let metrics = r.metrics_url();
    let grpc = format!("http://{}", r.addr("listening on otlp grpc "));
    let tcp = r.addr("listening on syslog tcp ").to_string();
    let udp = r.addr("listening on syslog udp ").to_string();
    const N: i64 = 3000;
    let n = N.to_string();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "otlp-grpc",
            vec!["--endpoint", &grpc, "--batch", "250", "--loggers", "3"],
        ),
        (
            "tcp",
            vec![
                "--protocol",
                "tcp",
                "--endpoint",
                &tcp,
                "--framing",
                "lf",
                "--format",
                "rfc3164",
                "--concurrency",
                "3",
                "--batch",
                "100",
                "--loggers",
                "4",
            ],
        ),
        (
            "tcp",
            vec![
                "--protocol",
                "tcp",
                "--endpoint",
                &tcp,
                "--framing",
                "octet-counting",
                "--format",
                "rfc5424",
                "--size",
                "1000",
                "--loggers",
                "4",
            ],
        ),
        (
            "udp",
            vec![
                "--protocol",
                "udp",
                "--endpoint",
                &udp,
                "--rate",
                "2000",
                "--concurrency",
                "1",
                "--format",
                "rfc3164",
                "--size",
                "200",
                "--loggers",
                "4",
            ],
        ),
    ];
    for (protocol, extra) in runs {
        let before = store.count("log_panel_log").await;
        let mut args = vec!["--records", &n, "--metrics", &metrics, "--wait", "120s"];
        args.extend(extra.iter().copied());
        let (f, stderr) = bench(&args);
        let rows = store.count("log_panel_log").await - before;
        let what = format!("bench {args:?}: {f:?}\n{stderr}");
        assert_eq!(f["protocol"], protocol, "{what}");
        assert_eq!(num(&f, "sent"), N as f64, "{what}");
        assert_eq!(
            num(&f, "stored"),
            rows as f64,
            "stored= is the rows added: {what}"
        );
        assert_eq!(rows, N, "every record sent is a row: {what}");
        assert_eq!(num(&f, "lost"), 0.0, "{what}");
        assert_eq!(f["lost_pct"], "0.00", "{what}");
        assert!(num(&f, "records_per_s") > 0.0, "{what}");
        assert!(num(&f, "stored_per_s") > 0.0, "{what}");
        if protocol == "udp" {
            assert_eq!(num(&f, "udp_dropped"), 0.0, "{what}");
        }
        assert!(
            !stderr.contains('\r'),
            "no progress line when stderr is not a terminal: {stderr:?}"
        );
    }
    // Each mode sent from distinct logger (scope or app) names.
    let names: std::collections::BTreeSet<String> = store
        .rows()
        .await
        .into_iter()
        .map(|r| r.logger_name)
        .collect();
    for want in ["bench.logger0", "bench.logger2", "bench-app0", "bench-app3"] {
        assert!(names.contains(want), "no logger {want} in {names:?}");
    }
    assert_eq!(store.count("log_panel_log").await, 4 * N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_stored_records_on_sqlite() {
    every_protocol_stores_what_it_sent(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_stored_records_on_postgres() {
    every_protocol_stores_what_it_sent(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_the_bench_says_the_stored_figures_are_unknown() {
    let db = TestDb::new(Engine::Sqlite, "bench_nometrics").await;
    let r = Running::start(&db);
    let store = db.wait_schema(Duration::from_secs(30)).await;
    let tcp = r.addr("listening on syslog tcp ").to_string();
    let nobody = format!("http://127.0.0.1:{}/metrics", free_port());
    let (f, stderr) = bench(&[
        "--protocol",
        "tcp",
        "--endpoint",
        &tcp,
        "--records",
        "200",
        "--metrics",
        &nobody,
    ]);
    assert_eq!(num(&f, "sent"), 200.0, "{f:?}");
    assert!(num(&f, "records_per_s") > 0.0, "{f:?}");
    assert_eq!(f["stored"], "unknown", "{f:?}");
    assert_eq!(f["lost"], "unknown", "{f:?}");
    assert!(
        stderr.contains("cannot read the collector's metrics") && stderr.contains(&nobody),
        "{stderr}"
    );
    // The records still arrive; only the bench could not see them stored.
    assert_eq!(store.wait_rows(200, Duration::from_secs(60)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_progress_line_and_the_summary_after_it() {
    let db = TestDb::new(Engine::Sqlite, "bench_tty").await;
    let r = Running::start(&db);
    let store = db.wait_schema(Duration::from_secs(30)).await;
    let tcp = r.addr("listening on syslog tcp ").to_string();
    // 2,500 records at 1,000/s take at least 2.5 s: the line is drawn at least twice.
    let cmd = format!(
        "{} bench --protocol tcp --endpoint {tcp} --records 2500 --rate 1000 --metrics {}",
        binary().display(),
        r.metrics_url()
    );
    // util-linux `script` runs the bench on a pseudo-terminal (stdout and stderr both on it).
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("runs script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let drawn: Vec<&str> = text
        .split('\r')
        .filter(|l| l.starts_with("bench: sent "))
        .collect();
    assert!(drawn.len() >= 2, "progress lines in {text:?}");
    assert!(
        drawn
            .iter()
            .all(|l| l.contains("/2500 (") && l.contains(" stored ")),
        "{drawn:?}"
    );
    let summary = text
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches("\x1b[K"))
        .find(|l| l.starts_with("bench tcp sent=2500 "))
        .unwrap_or_else(|| panic!("no summary in {text:?}"));
    assert!(
        summary.contains(" stored=2500 ") && summary.contains(" lost=0 "),
        "{summary}"
    );
    assert_eq!(store.count("log_panel_log").await, 2500);
}
