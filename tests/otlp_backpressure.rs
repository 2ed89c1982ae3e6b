//! OTLP with the database stopped and the queue full: the real exporters are told to retry
//! (gRPC UNAVAILABLE, HTTP 503 + Retry-After) and, once the database is back, everything they retried
//! is stored exactly once.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

async fn exporter_retries(protocol: &str) {
    let pg = PrivatePg::init();
    let mut cfg = test_config(&pg.url());
    cfg.batch.queue_bytes = 1 << 20;
    cfg.batch.retry_initial = Duration::from_millis(50);
    cfg.batch.retry_max = Duration::from_millis(200);
    cfg.otlp.queue_wait = Duration::from_millis(100);
    cfg.storage.context = false;
    let collector = start(&cfg).await;
    let endpoint = match protocol {
        "grpc" => format!("http://{}", collector.grpc_addr().unwrap()),
        _ => format!("http://{}/v1/logs", collector.http_addr().unwrap()),
    };
    pg.stop();

    // ~1,300 bytes a record: 3,000 records are about four times the queue.
    const N: usize = 3000;
    let script = repo().join("tests/otlp/send_logs.py");
    let mut sender = Command::new(panel_python())
        .arg(&script)
        .arg(protocol)
        .arg(&endpoint)
        .args([
            "--count",
            &N.to_string(),
            "--prefix",
            protocol,
            "--size",
            "1200",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stats = collector.stats();
    let t0 = std::time::Instant::now();
    while stats.snapshot().otlp_unavailable == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the exporter was never told to retry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.start();
    let status = tokio::task::spawn_blocking(move || sender.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exporter finished after retrying");

    let store = Store::connect(&pg.url()).await;
    let n = store.wait_rows(N as i64, Duration::from_secs(30)).await;
    let s = collector.shutdown(Duration::from_secs(20)).await.unwrap();
    let rows = store.rows().await;
    let numbers: Vec<usize> = rows
        .iter()
        .map(|r| r.message.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let unique: BTreeSet<_> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), numbers.len(), "nothing stored twice");
    assert_eq!(
        unique,
        (0..N).collect(),
        "everything stored after the retries"
    );
    assert_eq!(n, N as i64);
    assert!(s.otlp_unavailable > 0);
    assert_eq!(store.cards().await[&format!("{protocol}.load")].0, N as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_retries_through_an_outage() {
    exporter_retries("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_exporter_retries_through_an_outage() {
    exporter_retries("http").await;
}
