//! The OpenTelemetry Python SDK's LoggingHandler with its real OTLP exporters (gRPC and HTTP, gzip)
//! into the collector, on SQLite and PostgreSQL: rows carry the Python logger name, level, module,
//! pathname and line number of the call site, the traceback appended; the real admin shows them.

mod common;
use common::*;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::process::Command;
use std::time::Duration;

/// Runs tests/otlp/send_logs.py with the panel venv's Python; returns what it says it sent.
pub fn send_logs(protocol: &str, endpoint: &str, extra: &[&str]) -> Value {
    let script = repo().join("tests/otlp/send_logs.py");
    let out = Command::new(panel_python())
        .arg(&script)
        .arg(protocol)
        .arg(endpoint)
        .args(extra)
        .output()
        .expect("runs send_logs.py");
    assert!(
        out.status.success(),
        "send_logs.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("send_logs.py prints JSON")
}

async fn exporters_into(engine: Engine, protocol: &str, context: bool) {
    let db = TestDb::new(engine, "otlp").await;
    let mut cfg = test_config(&db.url);
    cfg.storage.context = context;
    let collector = start(&cfg).await;
    let endpoint = match protocol {
        "grpc" => format!("http://{}", collector.grpc_addr().unwrap()),
        _ => format!("http://{}/v1/logs", collector.http_addr().unwrap()),
    };
    let sent = send_logs(protocol, &endpoint, &[]);
    let file = sent["file"].as_str().unwrap();
    let records = sent["records"].as_array().unwrap();
    assert_eq!(records.len(), 7);

    let store = db.store().await;
    assert_eq!(store.wait_rows(7, Duration::from_secs(20)).await, 7);
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    for want in records {
        let text = want["message"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| {
                r.message.starts_with(&text[..text.len().min(200)])
                    && r.level == want["level"].as_str().unwrap()
            })
            .unwrap_or_else(|| panic!("no row for {want}"));
        assert_eq!(row.logger_name, want["logger"].as_str().unwrap());
        assert_eq!(row.pathname, file, "pathname of the call site");
        assert_eq!(row.module, "send_logs", "module = file name without .py");
        assert_eq!(
            row.line_number,
            want["line"].as_i64().unwrap(),
            "line of the call site: {want}"
        );
        let full = store.full_message(row).await;
        assert!(full.starts_with(text), "message text kept");
        if want.get("traceback").is_some() {
            let rest = &full[text.len()..];
            assert!(
                rest.starts_with("\nTraceback (most recent call last):\n"),
                "{rest}"
            );
            assert!(
                rest.contains("ZeroDivisionError: division by zero"),
                "{rest}"
            );
        }
        if context {
            assert!(
                full.contains("service.name=otlp-test-shop"),
                "resource attributes in the context line"
            );
        } else {
            let expected_len = text.chars().count()
                + if want.get("traceback").is_some() {
                    full[text.len()..].chars().count()
                } else {
                    0
                };
            assert_eq!(row.message_size as usize, expected_len);
        }
    }
    let big = records.iter().find(|r| r.get("needle").is_some()).unwrap();
    let big_text = big["message"].as_str().unwrap();
    let big_row = rows.iter().find(|r| r.logger_name == "shop.bulk").unwrap();
    assert!(big_row.message_chunked);

    if !context {
        // The real admin: cards, table, search into the chunk, the full 300,000-character message.
        let expect = json!({
            "cards": {
                "shop.checkout": {"total": 6, "errors": 3, "warnings": 1},
                "shop.bulk": {"total": 1, "errors": 0, "warnings": 1},
            },
            "table": [
                {"params": {"logger_name__exact": "shop.checkout"}, "count": 6},
                {"params": {"level__exact": "ERROR"}, "count": 2},
                {"params": {"level__exact": "CRITICAL"}, "count": 1},
            ],
            "search": [
                {"q": big["needle"].as_str().unwrap(), "count": 1},
                {"q": "ZeroDivisionError", "count": 1},
            ],
            "full_message": [
                {"id": big_row.id, "length": 300_000, "sha256": format!("{:x}", Sha256::digest(big_text.as_bytes()))},
            ],
        });
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("expect.json");
        std::fs::write(&f, serde_json::to_vec(&expect).unwrap()).unwrap();
        let (ok, out) = check_panel(&db, &[], &["admin", f.to_str().unwrap()]);
        assert!(ok, "admin check failed:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter_into_postgres_and_admin() {
    exporters_into(Engine::Postgres, "grpc", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_exporter_into_sqlite_and_admin() {
    exporters_into(Engine::Sqlite, "http", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_exporter_into_postgres_with_context() {
    exporters_into(Engine::Postgres, "http", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter_into_sqlite_with_context() {
    exporters_into(Engine::Sqlite, "grpc", true).await;
}
