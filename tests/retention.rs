//! Retention: rows on both sides of the cutoff (chunked ones included), ingestion running during the
//! pass; afterwards cards and buckets equal a fresh recomputation (ours, the panel-side
//! `rebuild-compare`, and on PostgreSQL the package's own `rebuild_log_cards` run on a copy). The dry
//! run changes nothing; the daemon runs retention on its own schedule.

mod common;
use common::*;

use chrono::{DateTime, Duration as CDuration, Utc};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

fn frame(ts: DateTime<Utc>, pri: u8, app: &str, msg: &str) -> Vec<u8> {
    octet_frame(
        format!(
            "<{pri}>1 {} host {app} - - - {msg}",
            ts.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
        .as_bytes(),
    )
}

/// 180 rows over 200 days for 4 loggers ("gone" has only old rows), a few of them chunked.
fn history(now: DateTime<Utc>) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..180i64 {
        let ts = now - CDuration::hours(i * 26 + 1);
        let app = ["keep.a", "keep.b", "mixed"][(i % 3) as usize];
        let pri = [11, 12, 14, 10, 15][(i % 5) as usize];
        let msg = if i % 40 == 0 {
            format!("big {i} {}", "z".repeat(300))
        } else {
            format!("row {i}")
        };
        wire.extend(frame(ts, pri, app, &msg));
    }
    for i in 0..5i64 {
        wire.extend(frame(
            now - CDuration::days(120 + i),
            11,
            "gone",
            "only old rows",
        ));
    }
    wire
}

fn config_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("retention.toml");
    std::fs::write(
        &p,
        format!("[storage]\nurl = \"{url}\"\npreview_length = 100\nchunk_size = 64\n[retention]\ndays = 90\nbatch = 7\n"),
    )
    .unwrap();
    p
}

async fn assert_counters_match_rows(store: &Store, db: &TestDb) {
    let rows = store.rows().await;
    assert_counters(&rows, &store.cards().await, &store.buckets().await, true);
    let (ok, out) = check_panel(db, &[], &["rebuild-compare"]);
    assert!(ok, "the panel's rebuild computation differs:\n{out}");
}

async fn retention_pass(engine: Engine) {
    let db = TestDb::new(engine, "retention").await;
    let mut cfg = test_config(&db.url);
    cfg.storage.preview_length = 100;
    cfg.storage.chunk_size = 64;
    cfg.retention.days = 0;
    let collector = start(&cfg).await;
    let tcp = collector.tcp_addrs()[0];
    let now = Utc::now();
    send_tcp(tcp, &history(now));
    let store = db.store().await;
    assert_eq!(store.wait_rows(185, Duration::from_secs(20)).await, 185);
    let chunks_before = store.count("log_panel_log_message_chunk").await;
    assert!(chunks_before > 0);

    let dir = tempfile::tempdir().unwrap();
    let conf = config_file(dir.path(), &db.url);
    let old = store
        .rows()
        .await
        .iter()
        .filter(|r| r.timestamp < now - CDuration::days(90))
        .count();
    assert!(old > 50, "rows on both sides of the cutoff ({old} old)");
    let out = run_ok(
        Command::new(binary())
            .args(["retention", "--dry-run", "--config"])
            .arg(&conf),
    );
    assert!(out.contains(&format!("would delete {old} row(s)")), "{out}");
    assert_eq!(
        store.count("log_panel_log").await,
        185,
        "the dry run changes nothing"
    );

    // Ingestion keeps running (new rows for the same loggers) while the pass deletes in batches of 7.
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(tcp).unwrap();
        for i in 0..400 {
            let app = ["keep.a", "keep.b", "mixed", "gone"][i % 4];
            s.write_all(&frame(Utc::now(), 12, app, &format!("during {i}")))
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let out = run_ok(
        Command::new(binary())
            .args(["retention", "--config"])
            .arg(&conf),
    );
    sender.join().unwrap();
    assert!(out.contains(&format!("deleted {old} row(s)")), "{out}");
    assert_eq!(
        store
            .wait_rows(185 - old as i64 + 400, Duration::from_secs(20))
            .await,
        185 - old as i64 + 400
    );
    collector.shutdown(Duration::from_secs(10)).await.unwrap();

    let rows = store.rows().await;
    assert!(
        rows.iter()
            .all(|r| r.timestamp >= now - CDuration::days(90))
    );
    let chunked_left = rows.iter().filter(|r| r.message_chunked).count();
    assert!(chunked_left > 0, "chunked rows on the kept side");
    let chunks_left = store.count("log_panel_log_message_chunk").await;
    assert!(
        chunks_left < chunks_before,
        "chunks of deleted rows are gone"
    );
    for r in rows.iter().filter(|r| r.message_chunked) {
        assert!(
            store.full_message(r).await.starts_with("big "),
            "kept rows keep their chunks"
        );
    }
    assert_counters_match_rows(&store, &db).await;

    // "gone" had only old rows until ingestion added new ones: its card counts only those.
    assert_eq!(store.cards().await["gone"].0, 100);

    if engine == Engine::Postgres {
        // The package's own rebuild_log_cards on a copy gives the same cards and buckets.
        let copy = format!("{}_copy", db.name);
        if let Store::Postgres(p) = &store {
            p.close().await;
        }
        let admin = sqlx::PgPool::connect(&format!("{}/postgres", pg_base()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {copy} TEMPLATE {}",
            db.name
        )))
        .execute(&admin)
        .await
        .unwrap();
        let mut cmd = Command::new(panel_python());
        cmd.args(["-m", "django", "rebuild_log_cards"])
            .env("PYTHONPATH", repo().join("tests/panel"))
            .env("DJANGO_SETTINGS_MODULE", "panelsite.settings")
            .env("PANEL_ENGINE", "postgres")
            .env("PANEL_DB", &copy);
        run_ok(&mut cmd);
        let ours = Store::connect(&db.url).await;
        let theirs = Store::connect(&format!("{}/{copy}", pg_base())).await;
        assert_eq!(
            ours.cards().await,
            theirs.cards().await,
            "cards equal rebuild_log_cards'"
        );
        assert_eq!(
            ours.buckets().await,
            theirs.buckets().await,
            "buckets equal rebuild_log_cards'"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_pass_sqlite() {
    retention_pass(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_pass_postgres() {
    retention_pass(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_pass_mysql() {
    retention_pass(Engine::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_runs_retention_on_its_schedule() {
    let db = TestDb::new(Engine::Postgres, "retention_sched").await;
    let mut cfg = test_config(&db.url);
    cfg.retention.days = 90;
    let collector = start(&cfg).await;
    let now = Utc::now();
    send_tcp(collector.tcp_addrs()[0], &history(now));
    let store = db.store().await;
    let t0 = std::time::Instant::now();
    let expected_left = store.wait_rows(1, Duration::from_secs(10)).await.max(0);
    assert!(expected_left > 0);
    loop {
        let rows = store.rows().await;
        if rows.len() > 60
            && rows
                .iter()
                .all(|r| r.timestamp >= now - CDuration::days(90))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "retention did not run on schedule"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_counters_match_rows(&store, &db).await;
    assert!(
        !store.cards().await.contains_key("gone"),
        "no card for a logger without rows"
    );
}
