//! The disk spool in-process: replayed records that the database has already are skipped (not
//! written or counted twice), and a shutdown with storage down is prompt and leaves the records
//! spooled for the next start.

mod common;

use common::*;
use log_panel_collector::collector::Collector;
use log_panel_collector::pipeline::spool::{SpoolSettings, SyncPolicy};
use log_panel_collector::service::activation::Activated;
use log_panel_collector::storage::AnyBackend;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spool_at(dir: &Path) -> SpoolSettings {
    SpoolSettings {
        dir: dir.to_path_buf(),
        max_bytes: 64 << 20,
        sync: SyncPolicy::Always,
        segment_bytes: 64 << 10,
    }
}

async fn start_spooled(url: &str, dir: &Path) -> Collector {
    start_with(url, spool_at(dir)).await
}

async fn start_with(url: &str, settings: SpoolSettings) -> Collector {
    let cfg = test_config(url);
    let backend = AnyBackend::from_config(&cfg.storage, cfg.batch.writers).unwrap();
    Collector::start_spooled(
        &cfg,
        Arc::new(backend),
        Activated::default(),
        Some(settings),
    )
    .await
    .expect("collector starts")
}

fn frames(tag: &str, n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..n {
        let msg = format!(
            "<14>1 2026-11-27T10:00:00Z host app{} - - - {tag} {i}",
            i % 3
        );
        data.extend(octet_frame(msg.as_bytes()));
    }
    data
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_records_sqlite_has_are_not_written_or_counted_again() {
    replay_skips_stored(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_records_postgres_has_are_not_written_or_counted_again() {
    replay_skips_stored(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_records_mariadb_has_are_not_written_or_counted_again() {
    replay_skips_stored(Engine::MySql).await;
}

/// Backend::existing_ids per dialect: segments that a crash between commit and removal would leave
/// are replayed, and every record in them is found stored and skipped.
async fn replay_skips_stored(engine: Engine) {
    const N: usize = 500;
    let db = TestDb::new(engine, "spool").await;
    let spool_dir = tempfile::tempdir().unwrap();
    let c = start_spooled(&db.url, spool_dir.path()).await;
    send_tcp(c.tcp_addrs()[0], &frames("first", N));
    let stats = c.stats();
    wait_for("the records", Duration::from_secs(20), || {
        stats.rows_written.get() == N as u64
    })
    .await;
    let store = db.store().await;
    // What a crash between the commit and the removal of the segments would leave behind.
    let saved = tempfile::tempdir().unwrap();
    for p in segments(spool_dir.path()) {
        std::fs::copy(&p, saved.path().join(p.file_name().unwrap())).unwrap();
    }
    assert!(!segments(saved.path()).is_empty());
    let s = c.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.rows_written, N as u64);
    assert!(
        segments(spool_dir.path()).is_empty(),
        "a clean stop removes committed segments"
    );
    for p in segments(saved.path()) {
        std::fs::copy(&p, spool_dir.path().join(p.file_name().unwrap())).unwrap();
    }

    let c = start_spooled(&db.url, spool_dir.path()).await;
    let stats = c.stats();
    wait_for("the replay", Duration::from_secs(20), || {
        stats.spool_skipped.get() == N as u64
    })
    .await;
    assert_eq!(stats.spool_replayed.get(), N as u64);
    assert_eq!(stats.rows_written.get(), 0);
    c.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(segments(spool_dir.path()).is_empty());
    let rows = store.rows().await;
    assert_eq!(rows.len(), N, "no record stored twice");
    assert_counters(&rows, &store.cards().await, &store.buckets().await, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_storage_down_is_prompt_and_the_next_start_delivers() {
    const N: usize = 300;
    let spool_dir = tempfile::tempdir().unwrap();
    let down = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let c = start_spooled(&down, spool_dir.path()).await;
    send_tcp(c.tcp_addrs()[0], &frames("down", N));
    let stats = c.stats();
    wait_for("the records to come in", Duration::from_secs(10), || {
        stats.received.get() == N as u64
    })
    .await;
    let t0 = Instant::now();
    let s = c
        .shutdown(Duration::from_secs(60))
        .await
        .expect("stopping with storage down is not an error");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        t0.elapsed()
    );
    assert_eq!(s.rows_written, 0);
    assert!(!segments(spool_dir.path()).is_empty());

    let db = TestDb::new(Engine::Sqlite, "spool").await;
    let c = start_spooled(&db.url, spool_dir.path()).await;
    let stats = c.stats();
    // The collector creates the database file: wait for it to write before reading.
    wait_for("the spooled records", Duration::from_secs(20), || {
        stats.rows_written.get() == N as u64
    })
    .await;
    let store = db.store().await;
    c.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(rows.len(), N);
    let mut seen: Vec<String> = rows.iter().map(|r| r.message.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), N, "every record once");
    assert!(segments(spool_dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_a_new_time_zone_and_spool_settings() {
    let db = TestDb::new(Engine::Sqlite, "tzreload").await;
    let cfg = test_config(&db.url);
    let mut c = Collector::start(&cfg).await.unwrap();
    let mut new = cfg.clone();
    new.storage.time_zone = chrono_tz::Europe::Vienna;
    new.spool.max_bytes = 2 << 20;
    let kept = c.reload(new).await.unwrap();
    assert!(
        kept.iter()
            .any(|k| k.contains("time_zone") && k.contains("keep UTC")),
        "{kept:?}"
    );
    assert!(kept.iter().any(|k| k.contains("[spool]")), "{kept:?}");
    // Reloading the same new config again still refuses it: the running zone stays UTC.
    let mut again = cfg.clone();
    again.storage.time_zone = chrono_tz::Europe::Vienna;
    let kept = c.reload(again).await.unwrap();
    assert!(kept.iter().any(|k| k.contains("keep UTC")), "{kept:?}");
    c.shutdown(Duration::from_secs(10)).await.unwrap();
}

/// UDP into a full spool, under each sync policy: storage is down, so the spool fills up; the
/// datagrams that find it full are dropped and counted, none is lost uncounted, and the next start
/// delivers exactly the ones that were spooled. Every datagram sent is accounted for: read and
/// spooled, read and dropped (`udp_dropped_records`), or dropped by the kernel before it could be
/// read (`udp_kernel_dropped_datagrams`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_into_a_full_spool_is_dropped_counted_and_the_rest_delivered() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::from_millis(100)),
        SyncPolicy::Never,
    ] {
        udp_into_a_full_spool(sync).await;
    }
}

async fn udp_into_a_full_spool(sync: SyncPolicy) {
    const SENT: u64 = 8_000;
    let spool_dir = tempfile::tempdir().unwrap();
    let settings = SpoolSettings {
        max_bytes: 1 << 20,
        sync,
        ..spool_at(spool_dir.path())
    };
    let down = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let c = start_with(&down, settings.clone()).await;
    let stats = c.stats();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..SENT {
        let msg = format!(
            "<14>1 2026-11-27T10:00:00Z host app{} - - - udp {sync:?} {i} {}",
            i % 3,
            "p".repeat(300)
        );
        udp.send_to(msg.as_bytes(), c.udp_addrs()[0]).unwrap();
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The reader reads the kernel's drop counter back once a second.
    wait_for(
        "every datagram to be accounted for",
        Duration::from_secs(20),
        || stats.received.get() + stats.udp_kernel_dropped.get() == SENT,
    )
    .await;
    let dropped = stats.udp_dropped.get();
    let spooled = stats.received.get() - dropped;
    assert!(
        dropped > 0,
        "{sync:?}: 1 MiB of spool took all {SENT} datagrams"
    );
    assert!(spooled > 1000, "{sync:?}: only {spooled} spooled");
    c.shutdown(Duration::from_secs(30))
        .await
        .expect("stopping with storage down is not an error");

    let db = TestDb::new(Engine::Sqlite, "spool_udp").await;
    let c = start_with(&db.url, settings).await;
    let stats = c.stats();
    wait_for("the spooled datagrams", Duration::from_secs(30), || {
        stats.rows_written.get() == spooled
    })
    .await;
    let store = db.store().await;
    c.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(
        rows.len() as u64,
        spooled,
        "{sync:?}: exactly the spooled datagrams"
    );
    let mut seen: Vec<String> = rows.iter().map(|r| r.message.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len() as u64, spooled, "{sync:?}: each once");
    assert!(segments(spool_dir.path()).is_empty());
}

/// A stop while the spool is full and storage is down: connections blocked on spool room used to
/// be cancelled with the listener after 5 s, losing the frames they had read (which their senders'
/// TCP stacks had been told we have). Now every frame sent before the stop is spooled, past
/// `max_bytes`, and the next start stores each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_the_spool_full_keeps_every_frame_that_was_sent() {
    const CONNS: usize = 4;
    const PER_CONN: usize = 2_000;
    const TOTAL: u64 = (CONNS * PER_CONN) as u64;
    let spool_dir = tempfile::tempdir().unwrap();
    let settings = SpoolSettings {
        max_bytes: 128 << 10,
        segment_bytes: 16 << 10,
        ..spool_at(spool_dir.path())
    };
    let down = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let c = start_with(&down, settings.clone()).await;
    let stats = c.stats();
    let addr = c.tcp_addrs()[0];
    // About 1 MB in all, eight times the spool: the connections block on spool room.
    let senders: Vec<_> = (0..CONNS)
        .map(|k| {
            let data = frames(&format!("stop{k} {}", "s".repeat(60)), PER_CONN);
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let sent = s.write_all(&data);
                s.shutdown(std::net::Shutdown::Write).ok();
                let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = s.read(&mut [0u8; 16]);
                sent.is_ok()
            })
        })
        .collect();
    wait_for("the spool to fill", Duration::from_secs(20), || {
        stats.received.get() > 500 && stats.spool_bytes.get() as u64 >= 100 << 10
    })
    .await;
    // Blocked now: nothing more is read while the spool is full.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = stats.received.get();
    assert!(before < TOTAL, "the spool took all {TOTAL} before the stop");
    c.shutdown(Duration::from_secs(30))
        .await
        .expect("stopping with storage down is not an error");
    for s in senders {
        assert!(s.join().unwrap(), "a sender could not send all its frames");
    }
    assert_eq!(
        stats.received.get(),
        TOTAL,
        "every frame sent was read at the stop (before it: {before})"
    );

    let db = TestDb::new(Engine::Sqlite, "spool_stop").await;
    let c = start_with(&db.url, settings).await;
    let stats = c.stats();
    wait_for("the spooled frames", Duration::from_secs(60), || {
        stats.rows_written.get() == TOTAL
    })
    .await;
    let store = db.store().await;
    c.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(rows.len() as u64, TOTAL, "exactly the frames sent");
    let mut seen: Vec<String> = rows.iter().map(|r| r.message.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len() as u64, TOTAL, "each once");
    assert!(segments(spool_dir.path()).is_empty());
}
