//! Bad and odd input: every message is stored (raw if need be), oversized frames are cut and kept,
//! and nothing makes a connection's later messages disappear. A bad config names every key.

mod common;
use common::*;

use chrono::Utc;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

fn rows_with<'a>(rows: &'a [StoredRow], text: &str) -> Vec<&'a StoredRow> {
    rows.iter().filter(|r| r.message.contains(text)).collect()
}

async fn odd_input(engine: Engine) {
    let db = TestDb::new(engine, "bad").await;
    let mut cfg = test_config(&db.url);
    cfg.syslog.max_frame = 2 << 20;
    let big_collector = start(&cfg).await;
    let small_db = TestDb::new(engine, "bad_small").await;
    let mut small_cfg = test_config(&small_db.url);
    small_cfg.syslog.max_frame = 1024;
    let small_collector = start(&small_cfg).await;

    // One TCP connection carrying every odd frame, each followed by a sentinel that must survive.
    let mut wire: Vec<u8> = Vec::new();
    let mut sentinels = 0;
    let mut sentinel = |wire: &mut Vec<u8>| {
        sentinels += 1;
        wire.extend(octet_frame(
            format!("<14>1 - h sentinel - - - sentinel {sentinels}").as_bytes(),
        ));
    };
    wire.extend(octet_frame(b"<14>1 - h empty - - -"));
    sentinel(&mut wire);
    let mega: String = "0123456789abcdef".repeat(65536); // 1 MiB
    wire.extend(octet_frame(
        format!("<14>1 - h mega - - - {mega}").as_bytes(),
    ));
    sentinel(&mut wire);
    wire.extend(octet_frame(b"<14>1 - h utf8 - - - bad \xff\xfe bytes"));
    sentinel(&mut wire);
    wire.extend(b"Nov 27 11:00:00 host cron[9]: no pri here\n");
    sentinel(&mut wire);
    wire.extend(octet_frame(
        br#"<12>1 - host nil - - [x@1 a="b\]c" d="e"] nil timestamp"#,
    ));
    sentinel(&mut wire);
    wire.extend(b"\xff\xfe\x01\x02garbage that is no syslog\n");
    sentinel(&mut wire);
    let before = Utc::now();
    send_tcp(big_collector.tcp_addrs()[0], &wire);

    // NUL bytes inside a UDP datagram, and an empty datagram.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 - h nul - - - nul\0inside\0",
        big_collector.udp_addrs()[0],
    )
    .unwrap();
    udp.send_to(b"", big_collector.udp_addrs()[0]).unwrap();

    let store = db.store().await;
    let total = 6 + sentinels + 2;
    assert_eq!(store.wait_rows(total, Duration::from_secs(20)).await, total);
    let rows = store.rows().await;
    for i in 1..=sentinels {
        assert_eq!(
            rows_with(&rows, &format!("sentinel {i}\n")).len(),
            1,
            "sentinel {i}"
        );
    }
    let empty = rows.iter().find(|r| r.logger_name == "empty").unwrap();
    assert!(
        empty.message.starts_with("\nfacility=user"),
        "{:?}",
        empty.message
    );

    let mega_row = rows.iter().find(|r| r.logger_name == "mega").unwrap();
    assert!(mega_row.message_chunked);
    let full = store.full_message(mega_row).await;
    assert!(full.starts_with(&mega), "1 MiB message kept whole");
    assert_eq!(mega_row.message_size as usize, full.chars().count());
    assert_eq!(mega_row.message.chars().count(), 16384);

    let utf8 = rows.iter().find(|r| r.logger_name == "utf8").unwrap();
    assert!(
        utf8.message.starts_with("bad \u{fffd}\u{fffd} bytes"),
        "{:?}",
        utf8.message
    );

    let nopri = rows.iter().find(|r| r.logger_name == "cron").unwrap();
    assert_eq!(nopri.level, "INFO");
    assert_eq!(nopri.module, "host");
    assert!(nopri.message.starts_with("no pri here\n"));
    assert!(nopri.message.contains("pid=9"));

    let nil = rows.iter().find(|r| r.logger_name == "nil").unwrap();
    assert_eq!(nil.level, "WARNING");
    assert!(
        nil.timestamp >= before - chrono::Duration::seconds(1),
        "NILVALUE timestamp = receive time"
    );
    assert!(
        nil.message.starts_with("nil timestamp\n"),
        "{:?}",
        nil.message
    );
    assert!(
        nil.message.contains(r#"sd="[x@1 a=\"b\\]c\" d=\"e\"]""#),
        "structured data kept as received: {:?}",
        nil.message
    );

    let garbage = rows_with(&rows, "garbage that is no syslog");
    assert_eq!(garbage.len(), 1);
    assert!(garbage[0].message.contains("unparsed=true"));
    assert_eq!(garbage[0].logger_name, "syslog");

    let nul = rows.iter().find(|r| r.logger_name == "nul").unwrap();
    assert!(
        nul.message.starts_with("nulinside\n"),
        "NULs stripped: {:?}",
        nul.message
    );
    assert!(
        rows.iter()
            .any(|r| r.message.starts_with("\nunparsed=true")),
        "empty datagram stored"
    );

    let stats = big_collector
        .shutdown(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(stats.parse_failures, 2, "garbage line and empty datagram");

    // An octet-counted frame longer than max_frame, and an over-long line: cut, kept, and the
    // connection's next frames still arrive.
    let mut wire =
        octet_frame(format!("<14>1 - h longframe - - - {}", "x".repeat(5000)).as_bytes());
    wire.extend(octet_frame(b"<14>1 - h after1 - - - after the long frame"));
    wire.extend(format!("<14>1 - h longline - - - {}\n", "y".repeat(5000)).as_bytes());
    wire.extend(b"<14>1 - h after2 - - - after the long line\n");
    send_tcp(small_collector.tcp_addrs()[0], &wire);
    let small = small_db.store().await;
    assert_eq!(small.wait_rows(4, Duration::from_secs(20)).await, 4);
    let rows = small.rows().await;
    for name in ["longframe", "longline"] {
        let r = rows.iter().find(|r| r.logger_name == name).unwrap();
        let text = r.message.split('\n').next().unwrap();
        let header = format!("<14>1 - h {name} - - - ");
        assert_eq!(text.len(), 1024 - header.len(), "{name} cut at max_frame");
    }
    assert_eq!(rows_with(&rows, "after the long frame").len(), 1);
    assert_eq!(rows_with(&rows, "after the long line").len(), 1);
    let stats = small_collector
        .shutdown(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(stats.truncated, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_input_sqlite() {
    odd_input(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_input_postgres() {
    odd_input(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_input_mysql() {
    odd_input(Engine::MySql).await;
}

#[test]
fn bad_config_names_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        r#"
        [storage]
        url = 42
        preview_length = "long"
        colour = "blue"
        [syslog]
        tcp = ["not an address"]
        max_frame = true
        [batch]
        max_delay_ms = -5
        [sinks]
        x = 1
        "#,
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("validate")
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "storage.url: expected a string, found integer",
        "storage.preview_length: expected an integer, found string",
        "storage.colour: unknown key",
        "syslog.tcp: \"not an address\" is not an address",
        "syslog.max_frame: expected an integer, found boolean",
        "batch.max_delay_ms: must not be negative",
        "sinks: unknown section",
        "7 error(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[storage]\nurl = \"sqlite://./x.sqlite3\"\n").unwrap();
    let out = run_ok(
        Command::new(binary())
            .arg("validate")
            .arg("--config")
            .arg(&good),
    );
    assert!(out.contains("config OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_database_refuses_is_set_aside_not_retried_forever() {
    use log_panel_collector::storage::{AnyBackend, Backend};
    let db = TestDb::new(Engine::Postgres, "refused").await;
    AnyBackend::open(&db.url, 1)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    // A real refusal by the database, as a stand-in for any data it cannot take: a CHECK constraint.
    let Store::Postgres(pool) = db.store().await else {
        unreachable!()
    };
    sqlx::raw_sql(
        "ALTER TABLE log_panel_log ADD CONSTRAINT no_poison CHECK (logger_name <> 'poison')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut cfg = test_config(&db.url);
    cfg.batch.retry_initial = Duration::from_millis(10);
    cfg.batch.retry_max = Duration::from_millis(20);
    let collector = start(&cfg).await;
    let mut wire = Vec::new();
    for i in 0..20 {
        let app = if i == 7 { "poison" } else { "fine" };
        wire.extend(octet_frame(
            format!("<11>1 - h {app} - - - message {i}").as_bytes(),
        ));
    }
    send_tcp(collector.tcp_addrs()[0], &wire);
    let store = db.store().await;
    assert_eq!(store.wait_rows(20, Duration::from_secs(30)).await, 20);
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(
        rows.iter().filter(|r| r.logger_name == "fine").count(),
        19,
        "the rest of the batch is stored"
    );
    let stand_in = rows
        .iter()
        .find(|r| r.logger_name == "log-panel-collector")
        .expect("an error record in place of the refused one");
    assert_eq!(stand_in.level, "ERROR");
    assert!(
        stand_in
            .message
            .contains("could not store a record of logger \"poison\""),
        "{}",
        stand_in.message
    );
    assert!(
        stand_in.message.contains("no_poison"),
        "says why: {}",
        stand_in.message
    );
    assert!(
        stand_in.message.contains("message 7"),
        "keeps the text: {}",
        stand_in.message
    );
    assert_counters(&rows, &store.cards().await, &store.buckets().await, true);
}
