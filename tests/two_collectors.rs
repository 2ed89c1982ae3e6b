//! Two collector processes writing one PostgreSQL database at once: card totals and bucket counts
//! equal the row counts exactly. Both are stopped with SIGTERM while records are still queued
//! (long batch delay): they flush and exit 0.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts the binary and reads the TCP address it reports on stderr.
fn spawn_collector(config: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(binary())
        .arg("run")
        .arg("--config")
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("collector printed its address")
            .unwrap();
        if let Some(a) = line.strip_prefix("listening on syslog tcp ") {
            break a.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn sigterm(child: &Child) {
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_one_database_exact_counters() {
    let (url, _) = fresh_pg("two").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"{url}\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n\
             [otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n[batch]\nmax_records = 300\nmax_delay_ms = 3000\n"
        ),
    )
    .unwrap();
    let (mut a, addr_a) = spawn_collector(&config);
    let (mut b, addr_b) = spawn_collector(&config);

    const PER_SENDER: usize = 5000;
    let loggers = ["api", "db", "cache", "auth.login", "auth.logout"];
    let pris = [11, 12, 14, 15, 10, 14, 14];
    let mut senders = Vec::new();
    for (k, addr) in [addr_a, addr_b, addr_a, addr_b].into_iter().enumerate() {
        senders.push(std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut buf = Vec::new();
            for i in 0..PER_SENDER {
                let hour = (i + k) % 5;
                writeln!(
                    buf,
                    "<{}>1 2026-11-2{}T{:02}:{:02}:00Z host {} - - - sender {k} message {i}",
                    pris[i % pris.len()],
                    6 + i % 2,
                    19 + hour,
                    i % 60,
                    loggers[(i * 7 + k) % loggers.len()]
                )
                .unwrap();
            }
            s.write_all(&buf).unwrap();
        }));
    }
    for s in senders {
        s.join().unwrap();
    }
    // Records sit in the queue (3 s batch delay): SIGTERM must flush them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&a);
    sigterm(&b);
    assert!(
        a.wait().unwrap().success(),
        "collector A exits 0 on SIGTERM"
    );
    assert!(
        b.wait().unwrap().success(),
        "collector B exits 0 on SIGTERM"
    );

    let store = Store::connect(&url).await;
    let total = (4 * PER_SENDER) as i64;
    assert_eq!(
        store.count("log_panel_log").await,
        total,
        "every message flushed"
    );
    let rows = store.rows().await;
    assert_counters(&rows, &store.cards().await, &store.buckets().await, true);
    assert_eq!(store.count("log_panel_logger").await, loggers.len() as i64);
}
