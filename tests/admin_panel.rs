//! The real django-log-panel admin reads what the collector wrote: dashboard cards, 24h and 30d
//! timelines (TIME_ZONE UTC and Europe/Vienna), table filters, search inside chunks, full message.

mod common;
use common::*;

use chrono::{DateTime, Duration as CDuration, SubsecRound, Utc};
use chrono_tz::Tz;
use log_panel_collector::pipeline::batch::day_start;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

fn frame(ts: DateTime<Utc>, pri: u8, app: &str, msg: &str) -> Vec<u8> {
    octet_frame(
        format!(
            "<{pri}>1 {} host1 {app} - - - {msg}",
            ts.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
        .as_bytes(),
    )
}

async fn admin_reads(engine: Engine, tz: Tz) {
    let db = TestDb::new(engine, "admin").await;
    let mut cfg = test_config(&db.url);
    cfg.storage.time_zone = tz;
    cfg.storage.context = false;
    cfg.syslog.max_frame = 4 << 20;
    let collector = start(&cfg).await;
    let tcp = collector.tcp_addrs()[0];

    let now = Utc::now().trunc_subsecs(0);
    // 300,000 characters, multi-byte, with a needle only past the preview (inside chunk 0).
    let needle = "NEEDLE-beyond-the-preview-7f3a";
    let mut big: String = "ab€🎉".chars().cycle().take(300_000).collect();
    big.replace_range(
        big.char_indices().nth(200_000).unwrap().0
            ..big.char_indices().nth(200_000 + needle.len()).unwrap().0,
        needle,
    );
    assert_eq!(big.chars().count(), 300_000);
    let vienna_night =
        day_start(now - CDuration::days(1), chrono_tz::Europe::Vienna) + CDuration::minutes(30);

    let mut wire = Vec::new();
    for i in 0..3 {
        wire.extend(frame(
            now - CDuration::minutes(1),
            14,
            "app.web",
            &format!("hello {i}"),
        ));
    }
    wire.extend(frame(now - CDuration::hours(2), 11, "app.web", "it broke"));
    wire.extend(frame(now - CDuration::days(3), 12, "app.web", "careful"));
    wire.extend(frame(
        now - CDuration::hours(26),
        10,
        "app.db",
        "disk on fire",
    ));
    wire.extend(frame(now - CDuration::minutes(5), 14, "app.big", &big));
    wire.extend(frame(
        vienna_night,
        11,
        "app.tz",
        "just after midnight in Vienna",
    ));
    send_tcp(tcp, &wire);

    let store = db.store().await;
    assert_eq!(store.wait_rows(8, Duration::from_secs(20)).await, 8);
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    let big_row = rows.iter().find(|r| r.logger_name == "app.big").unwrap();
    assert!(big_row.message_chunked);
    assert_eq!(big_row.message_size, 300_000);
    assert!(
        !big_row.message.contains(needle),
        "the needle must lie beyond the preview"
    );
    assert_eq!(store.full_message(big_row).await, big);

    let at = |t: DateTime<Utc>| t.to_rfc3339();
    let expect = json!({
        "cards": {
            "app.web": {"total": 5, "errors": 1, "warnings": 1},
            "app.db": {"total": 1, "errors": 1, "warnings": 0},
            "app.big": {"total": 1, "errors": 0, "warnings": 0},
            "app.tz": {"total": 1, "errors": 1, "warnings": 0},
        },
        "timeline_slots": {"24h": 24, "30d": 30},
        "timeline": [
            {"logger": "app.web", "range": "24h", "at": at(now - CDuration::minutes(1)), "status": "ok"},
            {"logger": "app.web", "range": "24h", "at": at(now - CDuration::hours(2)), "status": "error"},
            {"logger": "app.web", "range": "24h", "at": at(now - CDuration::hours(5)), "status": "empty"},
            {"logger": "app.web", "range": "30d", "at": at(now - CDuration::days(3)), "status": "warning"},
            {"logger": "app.web", "range": "30d", "at": at(now - CDuration::days(5)), "status": "empty"},
            {"logger": "app.db", "range": "30d", "at": at(now - CDuration::hours(26)), "status": "error"},
            {"logger": "app.tz", "range": "30d", "at": at(vienna_night), "status": "error"},
            {"logger": "app.tz", "range": "30d", "at": at(vienna_night - CDuration::days(1)), "status": "empty"},
        ],
        "table": [
            {"params": {"level__exact": "ERROR"}, "count": 2},
            {"params": {"level__exact": "CRITICAL"}, "count": 1},
            {"params": {"logger_name__exact": "app.web"}, "count": 5},
            {"params": {"logger_name__exact": "app.web", "level__exact": "WARNING"}, "count": 1},
        ],
        "search": [
            {"q": needle, "count": 1},
            {"q": "disk on fire", "count": 1},
        ],
        "full_message": [
            {"id": big_row.id, "length": 300_000, "sha256": format!("{:x}", Sha256::digest(big.as_bytes()))},
        ],
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expect.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&expect).unwrap()).unwrap();
    let (ok, out) = check_panel(
        &db,
        &[("PANEL_TZ", tz.name().to_string())],
        &["admin", file.to_str().unwrap()],
    );
    println!("{out}");
    assert!(
        ok,
        "the admin does not show what was sent ({engine:?}, {tz}):\n{out}"
    );
    assert!(out.contains(" 0 failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_sqlite_utc() {
    admin_reads(Engine::Sqlite, Tz::UTC).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_postgres_utc() {
    admin_reads(Engine::Postgres, Tz::UTC).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_sqlite_vienna() {
    admin_reads(Engine::Sqlite, chrono_tz::Europe::Vienna).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_postgres_vienna() {
    admin_reads(Engine::Postgres, chrono_tz::Europe::Vienna).await;
}

/// MariaDB here has no time zone tables, which Django needs to draw timelines in another zone: UTC only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_mysql_utc() {
    admin_reads(Engine::MySql, Tz::UTC).await;
}
