//! Running as a service: the sd_notify protocol end to end (READY, WATCHDOG, RELOADING/READY around
//! SIGHUP, STOPPING), socket activation through systemd-socket-activate, SIGHUP with a valid and an
//! invalid config under load, and the metrics and health endpoints against what was sent and stored.

mod common;
use common::daemon::{Daemon, scrape};
use common::*;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

fn write_config(path: &std::path::Path, body: &str) {
    std::fs::write(path, body).unwrap();
}

/// Receives notifications until one has the line `want`; returns it (every message is kept in `seen`).
fn recv_until(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want} (got {seen:?}): {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        seen.push(msg.clone());
        if msg.lines().any(|l| l == want) {
            return msg;
        }
    }
}

#[test]
fn sd_notify_protocol_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let conf = dir.path().join("c.toml");
    let body = format!(
        "[storage]\nurl = \"sqlite://{}/n.sqlite3\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n",
        dir.path().display()
    );
    write_config(&conf, &body);
    let mut cmd = Command::new(binary());
    cmd.args(["run", "--config"])
        .arg(&conf)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000");
    let daemon = Daemon::spawn(cmd);
    let mut seen: Vec<String> = Vec::new();
    let ready = recv_until(&sock, "READY=1", &mut seen);
    assert!(ready.contains("STATUS=writing to sqlite"), "{ready}");
    // Listeners are bound and the schema exists before READY.
    let tcp = daemon.addr("listening on syslog tcp ");
    assert!(dir.path().join("n.sqlite3").exists());
    recv_until(&sock, "WATCHDOG=1", &mut seen);
    recv_until(&sock, "WATCHDOG=1", &mut seen);
    send_tcp(tcp, b"<14>1 - h notify - - - during the watchdog\n");

    daemon.signal("HUP");
    let reloading = recv_until(&sock, "RELOADING=1", &mut seen);
    assert!(
        reloading.contains("MONOTONIC_USEC="),
        "systemd >= 253 needs the time with RELOADING: {reloading}"
    );
    let again = recv_until(&sock, "READY=1", &mut seen);
    assert!(again.contains("reloaded"), "{again}");
    daemon.signal("TERM");
    recv_until(&sock, "STOPPING=1", &mut seen);
    let mut daemon = daemon;
    assert!(
        daemon.child.wait().unwrap().success(),
        "exit 0 after SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_pipeline_gets_no_watchdog_pings() {
    // A database that stops answering (a table lock held by another session: the daemon's writes
    // wait on it, no error, no retry) stalls every writer. Storage that refuses is not a stall:
    // retrying is progress, and the pings go on (see the metrics test's unreachable storage).
    let db = TestDb::new(Engine::Postgres, "watchdog").await;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let conf = dir.path().join("c.toml");
    write_config(
        &conf,
        &format!(
            "[storage]\nurl = \"{}\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n\
             [service]\nmetrics = \"\"\n[batch]\nmax_records = 1\nwriters = 2\n",
            db.url
        ),
    );
    let mut cmd = Command::new(binary());
    cmd.args(["run", "--config"])
        .arg(&conf)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000");
    let daemon = Daemon::spawn(cmd);
    let mut seen = Vec::new();
    tokio::task::block_in_place(|| {
        recv_until(&sock, "READY=1", &mut seen);
        recv_until(&sock, "WATCHDOG=1", &mut seen);
        recv_until(&sock, "WATCHDOG=1", &mut seen);
    });
    let tcp = daemon.addr("listening on syslog tcp ");

    // Hold an exclusive lock on the log table, then give both writers a batch.
    let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE log_panel_log IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut wire = Vec::new();
    for i in 0..5 {
        wire.extend(format!("<14>1 - h stuck - - - waits for the lock {i}\n").as_bytes());
    }
    send_tcp(tcp, &wire);
    // Pings (every 200 ms while alive) must stop within the watchdog interval: wait for a silence
    // of 3 s, which the socket's read timeout reports.
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let stalled_at = Instant::now();
    let silence = tokio::task::block_in_place(|| {
        let mut buf = [0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    assert!(
                        stalled_at.elapsed() < Duration::from_secs(15),
                        "WATCHDOG=1 still arrives with every writer stuck: {seen:?}"
                    );
                }
                Err(e) => break e,
            }
        }
    });
    assert!(
        matches!(
            silence.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{silence}"
    );
    daemon.wait_line("withholding the watchdog ping", Duration::from_secs(10));
    // (Counting the rows now would wait on the lock as well.)

    // The database answers again: the writes finish and the pings come back.
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    tokio::task::block_in_place(|| recv_until(&sock, "WATCHDOG=1", &mut seen));
    let store = db.store().await;
    assert_eq!(store.wait_rows(5, Duration::from_secs(20)).await, 5);
    let (ok, log) = daemon.stop();
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_with_systemd_socket_activate() {
    let activate = [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-activate (Debian's systemd package) is needed");
    let db = TestDb::new(Engine::Sqlite, "activate").await;
    let dir = tempfile::tempdir().unwrap();
    let (tcp_port, udp_port) = (free_port(), free_port());
    let conf = dir.path().join("c.toml");
    // TCP: the configured address is the handed one. UDP: not configured at all, handed by name.
    write_config(
        &conf,
        &format!(
            "[storage]\nurl = \"{}\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:{tcp_port}\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n",
            db.url
        ),
    );
    let mut tcp_cmd = Command::new(activate);
    tcp_cmd
        .arg("-l")
        .arg(format!("127.0.0.1:{tcp_port}"))
        .arg("--fdname=syslog-tcp")
        .arg(binary())
        .args(["run", "--config"])
        .arg(&conf);
    let tcp_daemon = Daemon::spawn(tcp_cmd);
    // systemd-socket-activate starts the daemon on the first connection; our message waits in the backlog.
    let t0 = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", tcp_port)).is_ok() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    send_tcp(
        format!("127.0.0.1:{tcp_port}").parse().unwrap(),
        b"<11>1 - h activated.tcp - - - via a handed TCP socket\n",
    );
    tcp_daemon.wait_line(
        "socket activation: 1 socket(s) handed over",
        Duration::from_secs(20),
    );
    // The handover is logged before the daemon creates the SQLite file: wait for the schema.
    let store = db.wait_schema(Duration::from_secs(20)).await;
    assert_eq!(store.wait_rows(1, Duration::from_secs(20)).await, 1);

    // A second daemon handed a named UDP socket it was not configured for.
    let conf2 = dir.path().join("c2.toml");
    write_config(
        &conf2,
        &format!(
            // A spool of its own: two collectors cannot share one (the default sits beside the
            // SQLite file the first one uses).
            "[storage]\nurl = \"{}\"\n[syslog]\nudp = []\ntcp = []\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n[spool]\ndir = \"{}\"\n",
            db.url,
            dir.path().join("spool2").display()
        ),
    );
    let mut udp_cmd = Command::new(activate);
    udp_cmd
        .arg("--datagram")
        .arg("-l")
        .arg(format!("127.0.0.1:{udp_port}"))
        .arg("--fdname=syslog-udp")
        .arg(binary())
        .args(["run", "--config"])
        .arg(&conf2);
    let udp_daemon = Daemon::spawn(udp_cmd);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // The first datagram starts the daemon (sent until systemd-socket-activate listens); it is then
    // read from the handed socket.
    let t0 = Instant::now();
    while !udp_daemon
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("socket activation"))
    {
        udp.send_to(
            b"<12>1 - h activated.start - - - starts the daemon",
            ("127.0.0.1", udp_port),
        )
        .unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the UDP daemon was not started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = udp_daemon.wait_line("listening on syslog udp", Duration::from_secs(20));
    udp.send_to(
        b"<12>1 - h activated.udp - - - via a handed UDP socket",
        ("127.0.0.1", udp_port),
    )
    .unwrap();
    assert!(line.contains(&udp_port.to_string()), "{line}");
    let t0 = Instant::now();
    while !store
        .rows()
        .await
        .iter()
        .any(|r| r.logger_name == "activated.udp")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the UDP message did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = store.rows().await;
    let names: Vec<_> = rows.iter().map(|r| r.logger_name.as_str()).collect();
    assert!(
        names.contains(&"activated.tcp") && names.contains(&"activated.udp"),
        "{names:?}"
    );
    let (ok, log) = tcp_daemon.stop();
    assert!(ok, "{log}");
    let (ok, log) = udp_daemon.stop();
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_valid_and_invalid_config_under_load() {
    let db = TestDb::new(Engine::Postgres, "reload").await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    let base = format!(
        "[storage]\nurl = \"{}\"\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n",
        db.url
    );
    let udp_port = free_port();
    write_config(
        &conf,
        &format!("{base}[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n[batch]\nmax_records = 50\n"),
    );
    let mut cmd = Command::new(binary());
    cmd.args(["run", "--config"]).arg(&conf);
    let daemon = Daemon::spawn(cmd);
    let tcp = daemon.addr("listening on syslog tcp ");

    const N: usize = 4000;
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(tcp).unwrap();
        for i in 0..N {
            writeln!(s, "<14>1 - h reload.load - - - load {i}").unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    // The reloads happen under load: once the first messages are stored.
    let store = db.wait_schema(Duration::from_secs(20)).await;
    assert!(store.wait_rows(100, Duration::from_secs(20)).await >= 100);
    // Valid: add a UDP listener, change the batch size and the logger name template.
    write_config(
        &conf,
        &format!(
            "{base}[syslog]\nudp = [\"127.0.0.1:{udp_port}\"]\ntcp = [\"127.0.0.1:0\"]\nlogger_name = \"x.{{app}}\"\n[batch]\nmax_records = 500\n"
        ),
    );
    daemon.signal("HUP");
    daemon.wait_line("SIGHUP: configuration reloaded", Duration::from_secs(10));
    daemon.wait_line(
        &format!("listening on syslog udp 127.0.0.1:{udp_port}"),
        Duration::from_secs(10),
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 - h reload.udp - - - on the listener added by SIGHUP",
        ("127.0.0.1", udp_port),
    )
    .unwrap();
    // Invalid: kept running on the old config, saying why.
    write_config(
        &conf,
        &format!("{base}[syslog]\nudp = 5\n[batch]\nmax_records = \"many\"\n"),
    );
    daemon.signal("HUP");
    let why = daemon.wait_line(
        "the new config is invalid; keeping the old one",
        Duration::from_secs(10),
    );
    assert!(why.contains("SIGHUP"), "{why}");
    daemon.wait_line(
        "syslog.udp: expected an array of strings",
        Duration::from_secs(10),
    );
    daemon.wait_line(
        "batch.max_records: expected an integer",
        Duration::from_secs(10),
    );
    sender.join().unwrap();
    udp.send_to(
        b"<14>1 - h reload.udp2 - - - still served after the bad reload",
        ("127.0.0.1", udp_port),
    )
    .unwrap();

    let want = N as i64 + 2;
    assert_eq!(
        store.wait_rows(want, Duration::from_secs(30)).await,
        want,
        "nothing lost across reloads"
    );
    let (ok, log) = daemon.stop();
    assert!(ok, "{log}");
    let rows = store.rows().await;
    let load: std::collections::BTreeSet<usize> = rows
        .iter()
        .filter(|r| r.message.starts_with("load "))
        .map(|r| {
            r.message
                .split(['\n', ' '])
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(load.len(), N, "every load message once");
    assert!(
        rows.iter().any(|r| r.logger_name == "x.reload.udp"),
        "the new logger_name template applies"
    );
    assert!(rows.iter().any(|r| r.logger_name == "x.reload.udp2"));
}

/// GET over plain HTTP with curl: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let out = run_stdout(
        Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("http://{addr}{path}")),
    );
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    metric_opt(text, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{text}"))
}

fn metric_opt(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(labels) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Received, written and queued records in one scrape (a labelled series absent yet counts 0).
fn counts(text: &str) -> (f64, f64, f64) {
    (
        metric_opt(
            text,
            "log_panel_collector_received_records_total",
            "transport=\"tcp\"",
        )
        .unwrap_or(0.0),
        metric_opt(
            text,
            "log_panel_collector_rows_written_total",
            "backend=\"postgres\"",
        )
        .unwrap_or(0.0),
        metric(text, "log_panel_collector_queue_records", ""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_match_what_was_sent_and_stored() {
    let db = TestDb::new(Engine::Postgres, "metrics").await;
    let mut cfg = test_config(&db.url);
    cfg.filter.ignore_messages = vec!["ignore me".into()];
    let collector = start(&cfg).await;
    let m = collector.metrics_addr().unwrap();
    assert_eq!(get(m, "/health"), (200, "alive\n".to_string()));
    let t0 = Instant::now();
    while get(m, "/ready").0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tcp = collector.tcp_addrs()[0];
    let udp_addr = collector.udp_addrs()[0];
    let mut wire = Vec::new();
    for i in 0..3000 {
        wire.extend(format!("<14>1 - h metrics.tcp - - - tcp {i}\n").as_bytes());
    }
    wire.extend(b"<14>1 - h metrics.tcp - - - please ignore me\n");
    wire.extend(b"\x01\x02 not syslog at all\n");
    // During the load: the endpoint answers and counts grow, never past what was sent.
    let (code, before) = get(m, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(counts(&before), (0.0, 0.0, 0.0), "nothing sent yet");
    let sender = std::thread::spawn(move || send_tcp(tcp, &wire));
    let mut scrapes = Vec::new();
    wait_for(
        "received records counted during the load",
        Duration::from_secs(20),
        async || {
            let (code, text) = get(m, "/metrics");
            assert_eq!(code, 200);
            scrapes.push(counts(&text));
            scrapes.last().unwrap().0 > 0.0
        },
    )
    .await;
    sender.join().unwrap();
    for w in scrapes.windows(2) {
        assert!(
            w[1].0 >= w[0].0 && w[1].1 >= w[0].1,
            "counts only grow: {scrapes:?}"
        );
    }
    for (received, written, _) in &scrapes {
        assert!(*received <= 3002.0 && written <= received, "{scrapes:?}");
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200 {
        udp.send_to(
            format!("<11>1 - h metrics.udp - - - udp {i}").as_bytes(),
            udp_addr,
        )
        .unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let store = db.store().await;
    let stored = store.wait_rows(3201, Duration::from_secs(20)).await;
    // The counters follow the commit: wait until they show every stored row and an empty queue.
    let mut text = String::new();
    wait_for(
        "the metrics to show every stored row",
        Duration::from_secs(10),
        async || {
            let (code, t) = get(m, "/metrics");
            assert_eq!(code, 200);
            text = t;
            let (_, written, queued) = counts(&text);
            written as i64 == stored && queued == 0.0
        },
    )
    .await;
    let dropped = metric(&text, "log_panel_collector_udp_dropped_records_total", "") as i64;
    assert_eq!(dropped, 0);
    assert_eq!(
        metric(
            &text,
            "log_panel_collector_received_records_total",
            "transport=\"tcp\""
        ),
        3002.0
    );
    assert_eq!(
        metric(
            &text,
            "log_panel_collector_received_records_total",
            "transport=\"udp\""
        ),
        200.0
    );
    assert_eq!(
        metric(&text, "log_panel_collector_filtered_records_total", ""),
        1.0
    );
    assert_eq!(
        metric(&text, "log_panel_collector_parse_failures_total", ""),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "log_panel_collector_rows_written_total",
            "backend=\"postgres\""
        ) as i64,
        stored
    );
    assert_eq!(stored, 3201, "3000 tcp + 1 garbage (stored raw) + 200 udp");
    assert!(metric(&text, "log_panel_collector_batches_written_total", "") >= 1.0);
    assert_eq!(
        metric(&text, "log_panel_collector_queue_records", ""),
        0.0,
        "all written"
    );
    assert_eq!(metric(&text, "log_panel_collector_storage_up", ""), 1.0);
    assert!(
        metric(
            &text,
            "log_panel_collector_write_duration_seconds_count",
            ""
        ) >= 1.0
    );
    assert!(
        text.contains("log_panel_collector_udp_kernel_drops"),
        "{text}"
    );
    collector.shutdown(Duration::from_secs(10)).await.unwrap();

    // Not ready while storage is unreachable.
    let mut down = test_config("postgres://postgres@127.0.0.1:1/nowhere");
    down.batch.retry_max = Duration::from_millis(200);
    let collector = start(&down).await;
    let m = collector.metrics_addr().unwrap();
    let (code, body) = get(m, "/ready");
    assert_eq!(code, 503, "{body}");
    assert_eq!(get(m, "/health").0, 200, "alive all the same");
    let t0 = Instant::now();
    loop {
        let (_, text) = get(m, "/metrics");
        if metric(&text, "log_panel_collector_storage_errors_total", "") >= 1.0 {
            assert_eq!(metric(&text, "log_panel_collector_storage_up", ""), 0.0);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "storage errors are counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = collector.shutdown(Duration::from_millis(100)).await;
}

#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    // verify wants ExecStart's binary to exist: point the units at the one just built.
    let service = std::fs::read_to_string(repo().join("systemd/log-panel-collector.service"))
        .unwrap()
        .replace("/usr/bin/log-panel-collector", binary().to_str().unwrap());
    std::fs::write(dir.path().join("log-panel-collector.service"), service).unwrap();
    for unit in [
        "log-panel-collector.socket",
        "log-panel-collector-tls.socket",
    ] {
        std::fs::copy(repo().join("systemd").join(unit), dir.path().join(unit)).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("log-panel-collector.service"))
        .arg(dir.path().join("log-panel-collector.socket"))
        .arg(dir.path().join("log-panel-collector-tls.socket"))
        .output()
        .expect("systemd-analyze (Debian's systemd package) is needed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{text}"
    );
    assert!(
        !text.contains("log-panel-collector.s"),
        "no warnings about our units:\n{text}"
    );
}

/// A stop closes the SQLite connection, so SQLite's closing checkpoint moves the WAL into the
/// database file and removes `-wal` and `-shm`: a stopped daemon leaves one file to copy or back
/// up. With and without the spool (their stops take different paths).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_leaves_no_sqlite_wal_behind() {
    for spool in ["", "s.spool"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite3");
        let spool_dir = if spool.is_empty() {
            String::new()
        } else {
            dir.path().join(spool).display().to_string()
        };
        let conf = dir.path().join("c.toml");
        write_config(
            &conf,
            &format!(
                "[storage]\nurl = \"sqlite://{}\"\n[spool]\ndir = \"{spool_dir}\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"127.0.0.1:0\"\n",
                db.display()
            ),
        );
        let daemon = Daemon::start(&conf);
        let tcp = daemon.addr("listening on syslog tcp ");
        let metrics = daemon.addr("listening on metrics http ");
        const N: usize = 20_000;
        let mut wire = Vec::new();
        for i in 0..N {
            wire.extend(
                format!("<14>1 - h wal.test - - - record {i} {}\n", "x".repeat(200)).as_bytes(),
            );
        }
        send_tcp(tcp, &wire);
        // Counted from /metrics: a reader of our own would hold the file open and keep the WAL.
        wait_until("every record committed", Duration::from_secs(60), || {
            scrape(metrics, "log_panel_collector_rows_written_total") == Some(N as f64)
        });
        let wal = dir.path().join("w.sqlite3-wal");
        assert!(wal.exists(), "a running daemon writes through the WAL");
        let (ok, log) = daemon.stop();
        assert!(ok, "exit 0 after SIGTERM:\n{log}");
        for leftover in ["w.sqlite3-wal", "w.sqlite3-shm"] {
            let path = dir.path().join(leftover);
            assert!(
                !path.exists(),
                "spool {spool:?}: {leftover} left after the stop ({} bytes)",
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            );
        }
        let stored = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .count("log_panel_log")
            .await;
        assert_eq!(
            stored, N as i64,
            "spool {spool:?}: rows in the database file"
        );
    }
}
