//! The SQLite write path alone: `Backend::write_batch` of one batch of 5,000 records (256-character
//! messages, 8 loggers, so 8 cards and 16 timeline buckets) into a file the collector migrated, in
//! WAL mode with the collector's own settings. No sockets, parsing or spool: what the one SQLite
//! connection costs per batch, so changes to the statements can be compared without the
//! end-to-end run's noise (docs/benchmarks.md). The file grows through the run, as a real one does.
//!
//! Run with `cargo bench --bench sqlite_write`; `cargo test --all-targets` runs it once in test mode.

use chrono::{Duration as CDuration, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use log_panel_collector::pipeline::batch::{Batch, Layout};
use log_panel_collector::record::{Level, Record};
use log_panel_collector::storage::Backend;
use log_panel_collector::storage::sqlite::SqliteBackend;
use std::time::{Duration, Instant};

/// Records per batch (the default `batch.max_records`).
const BATCH: usize = 5000;
const LOGGERS: [&str; 8] = [
    "sshd", "cron", "kernel", "nginx", "app.web", "app.db", "systemd", "postfix",
];
const LEVELS: [Level; 5] = [
    Level::Debug,
    Level::Info,
    Level::Warning,
    Level::Error,
    Level::Critical,
];

fn batch(start: usize) -> Batch {
    let now = Utc::now();
    let records = (start..start + BATCH)
        .map(|i| Record {
            timestamp: now + CDuration::milliseconds(i as i64),
            level: LEVELS[i % LEVELS.len()],
            logger_name: LOGGERS[i % LOGGERS.len()].to_string(),
            module: "host1".to_string(),
            pathname: String::new(),
            line_number: 0,
            message: format!("message {i} {}", "x".repeat(256))[..256].to_string(),
        })
        .collect();
    let layout = Layout {
        preview: 16384,
        chunk: 262144,
        time_zone: Tz::UTC,
    };
    Batch::build(records, &layout)
}

fn bench_write(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let backend = {
        let _in_runtime = rt.enter();
        SqliteBackend::open(&url).unwrap()
    };
    rt.block_on(backend.migrate()).unwrap();

    let mut g = c.benchmark_group("sqlite_write");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .throughput(Throughput::Elements(BATCH as u64));
    let mut written = 0;
    g.bench_function("batch_5000_rows_8_loggers", |b| {
        b.iter_custom(|iters| {
            // Built outside the timing: only the database work is measured.
            let batches: Vec<Batch> = (0..iters)
                .map(|k| batch(written + k as usize * BATCH))
                .collect();
            written += iters as usize * BATCH;
            rt.block_on(async {
                let t = Instant::now();
                for b in &batches {
                    backend.write_batch(b).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(backend.close());
}

criterion_group!(benches, bench_write);
criterion_main!(benches);
