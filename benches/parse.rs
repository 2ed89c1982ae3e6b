//! CPU cost of the collector's own work, without sockets or a database:
//!
//! * `decode`: parse + map of one syslog message to a `Record` (the public
//!   `source::syslog::decode`), for realistic RFC 3164 and RFC 5424 lines (with structured data).
//! * `batch_build`: `pipeline::batch::Batch::build` on 5000 decoded records (ids, message split,
//!   card and timeline aggregates), in UTC (hour-bucket cache on) and in Europe/Vienna (cache off).
//!
//! Throughput is reported in records (elements) per second. Run with `cargo bench --bench parse`;
//! `cargo test --all-targets` runs each benchmark once in test mode. See docs/benchmarks.md.

use chrono_tz::Tz;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use log_panel_collector::config::{LoggerTemplate, SyslogConfig};
use log_panel_collector::pipeline::batch::{Batch, Layout};
use log_panel_collector::record::Record;
use log_panel_collector::source::syslog::{SyslogSettings, decode};
use log_panel_collector::stats::Stats;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

/// Distinct lines per format; each benchmark iteration decodes all of them.
const LINES: usize = 500;
/// Records per `Batch::build` (the default `batch.max_records`).
const BATCH: usize = 5000;

const HOSTS: [&str; 4] = ["web01", "web02.example.com", "db1", "edge-7"];

/// RFC 3164 lines as sshd, cron, the kernel, nginx, postfix and friends write them.
fn rfc3164_lines() -> Vec<String> {
    (0..LINES)
        .map(|i| {
            let host = HOSTS[i % HOSTS.len()];
            let (min, sec) = ((i / 60) % 60, i % 60);
            let pid = 1000 + i * 7 % 30000;
            match i % 8 {
                0 => format!(
                    "<38>Nov 27 12:{min:02}:{sec:02} {host} sshd[{pid}]: Accepted publickey for root from 10.0.{}.{} port {} ssh2: RSA SHA256:Yx3kZkq0m1e9Vb8Q2x7f0p4s",
                    i % 250,
                    i % 200 + 1,
                    40000 + i
                ),
                1 => format!(
                    "<78>Nov 27 12:{min:02}:{sec:02} {host} CRON[{pid}]: (root) CMD (/usr/local/bin/backup.sh --incremental >/dev/null 2>&1)"
                ),
                2 => format!(
                    "<4>Nov 27 12:{min:02}:{sec:02} {host} kernel: [1234567.{i:06}] TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies."
                ),
                3 => format!(
                    "<187>Nov 27 12:{min:02}:{sec:02} {host} nginx[{pid}]: 2026/11/27 12:{min:02}:{sec:02} [error] 31#31: *{i} upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.1.2.{}, server: api.example.com, request: \"GET /api/v1/items?page={i} HTTP/1.1\"",
                    i % 250
                ),
                4 => format!(
                    "<22>Nov 27 12:{min:02}:{sec:02} {host} postfix/smtpd[{pid}]: connect from mail-{i}.example.net[192.0.2.{}]",
                    i % 250
                ),
                5 => format!(
                    "<30>Nov 27 12:{min:02}:{sec:02} {host} systemd[1]: Started Session {i} of User deploy."
                ),
                6 => format!(
                    "<85>Nov 27 12:{min:02}:{sec:02} {host} sudo[{pid}]:   deploy : TTY=pts/0 ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/systemctl restart app-{}.service",
                    i % 5
                ),
                _ => format!(
                    "<134>Nov 27 12:{min:02}:{sec:02} {host} app.web[{pid}]: request_id={i:08x} GET /orders/{i} 200 {}ms user=u{}",
                    i % 97,
                    i % 13
                ),
            }
        })
        .collect()
}

/// RFC 5424 lines with fractional, zoned timestamps, MSGIDs and one or two SD elements.
fn rfc5424_lines() -> Vec<String> {
    (0..LINES)
        .map(|i| {
            let host = HOSTS[i % HOSTS.len()];
            let (min, sec) = ((i / 60) % 60, i % 60);
            let pid = 1000 + i * 7 % 30000;
            match i % 4 {
                0 => format!(
                    r#"<165>1 2026-11-27T12:{min:02}:{sec:02}.{i:03}+01:00 {host} nginx {pid} REQ [req@32473 method="GET" path="/api/v1/items/{i}" status="200" bytes="1532"][origin ip="10.0.0.{}"] GET /api/v1/items/{i} 200 1532 {}ms"#,
                    i % 250,
                    i % 97
                ),
                1 => format!(
                    r#"<11>1 2026-11-27T11:{min:02}:{sec:02}.{i:06}Z {host} app.worker {pid} JOB [job@32473 id="{i}" queue="default" attempt="{}"] job failed: ValueError("quantity must be positive, got -{i}")"#,
                    i % 3 + 1
                ),
                2 => format!(
                    r#"<134>1 2026-11-27T12:{min:02}:{sec:02}+00:00 {host} app.web - AUDIT [audit@32473 user="u{}" action="login" result="ok"][meta sequenceId="{i}"] user u{} logged in from 203.0.113.{}"#,
                    i % 13,
                    i % 13,
                    i % 250
                ),
                _ => format!(
                    "<14>1 2026-11-27T12:{min:02}:{sec:02}.{i:03}Z {host} billing {pid} - - \u{feff}invoice {i} sent to customer c{} (EUR {}.{:02})",
                    i % 1000,
                    i % 500,
                    i % 100
                ),
            }
        })
        .collect()
}

fn settings() -> SyslogSettings {
    let config = SyslogConfig {
        logger_name: LoggerTemplate::parse("{app}").expect("template"),
        ..SyslogConfig::default()
    };
    SyslogSettings::new(&config, true)
}

fn peer() -> IpAddr {
    IpAddr::from([10, 0, 0, 1])
}

fn bench_decode(c: &mut Criterion) {
    let settings = settings();
    let stats = Stats::default();
    let mut g = c.benchmark_group("decode");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .throughput(Throughput::Elements(LINES as u64));
    for (name, lines) in [("rfc3164", rfc3164_lines()), ("rfc5424", rfc5424_lines())] {
        // Every line must go through its own grammar, or the figure measures the fallback.
        for l in &lines {
            let r = decode(l.as_bytes(), peer(), &settings, &stats);
            assert!(!r.message.contains("unparsed=true"), "{name}: {l}");
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(decode(black_box(l.as_bytes()), peer(), &settings, &stats));
                }
            })
        });
    }
    g.finish();
}

/// 5000 records as the TCP source hands them to delivery: half RFC 3164, half RFC 5424.
fn records() -> Vec<Record> {
    let settings = settings();
    let stats = Stats::default();
    let (a, b) = (rfc3164_lines(), rfc5424_lines());
    a.iter()
        .zip(&b)
        .flat_map(|(x, y)| [x, y])
        .cycle()
        .take(BATCH)
        .map(|l| {
            let mut r = decode(l.as_bytes(), peer(), &settings, &stats);
            r.sanitize();
            r
        })
        .collect()
}

fn bench_batch(c: &mut Criterion) {
    let records = records();
    let mut g = c.benchmark_group("batch_build");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .throughput(Throughput::Elements(BATCH as u64));
    for (name, time_zone) in [
        ("utc", Tz::UTC),
        ("europe_vienna", chrono_tz::Europe::Vienna),
    ] {
        let layout = Layout {
            preview: 16384,
            chunk: 262144,
            time_zone,
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || records.clone(),
                |rs| black_box(Batch::build(rs, &layout)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_batch);
criterion_main!(benches);
