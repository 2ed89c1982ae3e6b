//! Schema interoperability with Django, both ways, on SQLite and PostgreSQL: the collector creates
//! exactly Django's schema and records it, so `migrate` is a no-op; and on a database Django migrated,
//! the collector creates nothing and writes.

mod common;
use common::*;

use log_panel_collector::storage::{AnyBackend, Backend};
use std::process::Command;
use std::time::Duration;

fn config_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!("[storage]\nurl = \"{url}\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n"),
    )
    .unwrap();
    p
}

async fn collector_first(engine: Engine) {
    let ours = TestDb::new(engine, "mig_ours").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), &ours.url);
    let out = run_ok(
        Command::new(binary())
            .arg("migrate")
            .arg("--config")
            .arg(&cfg),
    );
    assert!(out.contains("applied 0001_initial"), "{out}");
    let out = run_ok(
        Command::new(binary())
            .arg("migrate")
            .arg("--config")
            .arg(&cfg),
    );
    assert!(
        out.contains("already up to date"),
        "second run is a no-op: {out}"
    );

    let (ok, out) = check_panel(&ours, &[], &["migrate", "--expect-noop"]);
    assert!(
        ok,
        "Django's migrate after the collector must be a no-op:\n{out}"
    );

    // Django's own schema on another fresh database: identical introspection.
    let django = TestDb::new(engine, "mig_django").await;
    if engine == Engine::Sqlite {
        std::fs::File::create(&django.name).unwrap();
    }
    let (ok, out) = check_panel(&django, &[], &["migrate"]);
    assert!(ok, "{out}");
    let (ok, ours_schema) = check_panel(&ours, &[], &["schema"]);
    assert!(ok, "{ours_schema}");
    let (ok, django_schema) = check_panel(&django, &[], &["schema"]);
    assert!(ok, "{django_schema}");
    let a: serde_json::Value = serde_json::from_str(&ours_schema).unwrap();
    let b: serde_json::Value = serde_json::from_str(&django_schema).unwrap();
    assert_eq!(
        a, b,
        "schema created by the collector differs from Django's"
    );
    assert!(
        a["tables"].as_object().unwrap().len() == 5,
        "five tables: {a}"
    );
}

async fn django_first(engine: Engine) {
    let db = TestDb::new(engine, "mig_dj_first").await;
    if engine == Engine::Sqlite {
        std::fs::File::create(&db.name).unwrap();
    }
    let (ok, out) = check_panel(&db, &[], &["migrate"]);
    assert!(ok, "{out}");
    let backend = AnyBackend::open(&db.url, 1).unwrap();
    let report = backend.migrate().await.unwrap();
    assert!(
        report.applied.is_empty(),
        "nothing to create on a Django-migrated database: {report:?}"
    );
    let collector = start(&test_config(&db.url)).await;
    send_tcp(
        collector.tcp_addrs()[0],
        b"<11>1 - host django.first - - - written after Django migrated\n",
    );
    let store = db.store().await;
    assert_eq!(store.wait_rows(1, Duration::from_secs(10)).await, 1);
    collector.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(store.cards().await["django.first"].1, 1);
    let (ok, out) = check_panel(&db, &[], &["migrate", "--expect-noop"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_first_then_django_sqlite() {
    collector_first(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_first_then_django_postgres() {
    collector_first(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_first_then_collector_sqlite() {
    django_first(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_first_then_collector_postgres() {
    django_first(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_first_then_django_mysql() {
    collector_first(Engine::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_first_then_collector_mysql() {
    django_first(Engine::MySql).await;
}
