//! A full queue with storage unreachable: TCP senders are held back (the connection stops being read),
//! UDP datagrams are dropped and counted, and a shutdown that cannot flush says how much was not written.

mod common;
use common::*;

use std::io::Write;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_holds_tcp_and_counts_udp_drops() {
    // Nothing listens on port 1: every write fails and is retried, so nothing leaves the queue.
    let mut cfg = test_config("postgres://postgres@127.0.0.1:1/nowhere");
    cfg.batch.queue_bytes = 1 << 20;
    let collector = start(&cfg).await;
    let stats = collector.stats();

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let line = format!("<14>1 - host flood - - - {}", "u".repeat(300));
    for _ in 0..10_000 {
        udp.send_to(line.as_bytes(), collector.udp_addrs()[0])
            .unwrap();
    }
    let tcp = collector.tcp_addrs()[0];
    let writer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(tcp).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let chunk = format!("<14>1 - host flood - - - {}\n", "t".repeat(300)).repeat(1000);
        let mut written = 0usize;
        while written < 256 << 20 {
            match s.write(chunk.as_bytes()) {
                Ok(n) => written += n,
                Err(_) => return (written, true),
            }
        }
        (written, false)
    });
    let (written, blocked) = writer.join().unwrap();
    assert!(
        blocked,
        "the TCP sender must be held back, but it wrote {written} bytes"
    );
    let t0 = std::time::Instant::now();
    while stats.snapshot().write_errors == 0 && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = stats.snapshot();
    assert!(s.udp_dropped > 0, "UDP drops are counted: {s:?}");
    assert!(s.write_errors > 0, "storage failures are counted: {s:?}");
    assert_eq!(s.rows_written, 0);
    // What was queued is bounded by the cap (each record holds ~420 bytes).
    let queued = s.received - s.udp_dropped;
    assert!(
        queued < 3000,
        "queue holds about 1 MiB of records, not {queued}"
    );

    let err = collector
        .shutdown(Duration::from_millis(500))
        .await
        .expect_err("storage is down: the shutdown cannot flush");
    assert_eq!(err.pending, queued);
}
