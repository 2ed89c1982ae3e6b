//! Database outage: a private PostgreSQL instance (initdb in a temp dir, its own port) is stopped
//! while TCP messages keep coming, then started again: every message is stored exactly once.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_loses_nothing_and_duplicates_nothing() {
    let pg = PrivatePg::init();
    let mut cfg = test_config(&pg.url());
    cfg.batch.max_records = 50;
    cfg.batch.retry_initial = Duration::from_millis(50);
    cfg.batch.retry_max = Duration::from_millis(300);
    let collector = start(&cfg).await;
    let tcp = collector.tcp_addrs()[0];
    let store = Store::connect(&pg.url()).await;

    const N: usize = 3000;
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(tcp).unwrap();
        for i in 0..N {
            writeln!(s, "<14>1 - host outage - - - message {i}").unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        s.flush().unwrap();
    });

    // Let some arrive, then pull the database away while the sender keeps going.
    assert!(store.wait_rows(200, Duration::from_secs(20)).await >= 200);
    if let Store::Postgres(p) = &store {
        p.close().await;
    }
    let received_before = collector.stats().snapshot().received;
    pg.stop();
    // The outage lasts until delivery has noticed it and more messages came in meanwhile.
    wait_for(
        "write errors and more messages during the outage",
        Duration::from_secs(30),
        async || {
            let s = collector.stats().snapshot();
            s.write_errors > 0 && s.received >= (received_before + 200).min(N as u64)
        },
    )
    .await;
    let stats_down = collector.stats().snapshot();
    pg.start();
    sender.join().unwrap();

    let store = Store::connect(&pg.url()).await;
    let n = store.wait_rows(N as i64, Duration::from_secs(60)).await;
    let stats = collector.shutdown(Duration::from_secs(30)).await.unwrap();
    assert!(
        stats_down.write_errors > 0,
        "the outage was noticed: {stats_down:?}"
    );
    let rows = store.rows().await;
    let numbers: Vec<usize> = rows
        .iter()
        .map(|r| {
            r.message
                .split('\n')
                .next()
                .unwrap()
                .trim_start_matches("message ")
                .parse()
                .unwrap()
        })
        .collect();
    let unique: BTreeSet<_> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), numbers.len(), "no message stored twice");
    assert_eq!(unique, (0..N).collect(), "every message stored");
    assert_eq!(n, N as i64);
    assert_eq!(
        store.cards().await["outage"].0,
        N as i64,
        "counters counted once"
    );
    assert_eq!(stats.rows_written, N as u64);
}
