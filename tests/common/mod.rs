//! Shared helpers for the integration tests: fresh real databases, a collector on free ports, real
//! senders, and a uniform way to read back what was stored.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDateTime, Utc};
use log_panel_collector::collector::Collector;
use log_panel_collector::config::Config;
use sqlx::{AssertSqlSafe, Row as _};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod daemon;
pub mod pki;

/// The machine's PostgreSQL (override with LPC_TEST_PG, a URL without database name).
pub fn pg_base() -> String {
    std::env::var("LPC_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for a test database.
pub fn unique(prefix: &str) -> String {
    format!(
        "lpc_{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates an empty PostgreSQL database and returns its URL and name.
pub async fn fresh_pg(prefix: &str) -> (String, String) {
    let name = unique(prefix);
    let admin = format!("{}/postgres", pg_base());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must run at {admin} for this test: {e}"));
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    (format!("{}/{name}", pg_base()), name)
}

/// A new SQLite file URL inside a temp dir (kept alive by the returned guard).
pub fn fresh_sqlite() -> (tempfile::TempDir, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panel.sqlite3");
    let url = format!("sqlite://{}", path.display());
    (dir, url, path)
}

/// The machine's MariaDB/MySQL (override with LPC_TEST_MYSQL, a URL without database name).
pub fn mysql_base() -> String {
    std::env::var("LPC_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Creates an empty MySQL/MariaDB database (utf8mb4) and returns its URL and name.
pub async fn fresh_mysql(prefix: &str) -> (String, String) {
    let name = unique(prefix);
    let admin = format!("{}/mysql", mysql_base());
    let pool = sqlx::MySqlPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("MariaDB/MySQL must run at {admin} for this test: {e}"));
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    (format!("{}/{name}", mysql_base()), name)
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    MySql,
}

/// A fresh database of that engine; the guard keeps SQLite's temp dir.
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    /// PostgreSQL database name, or SQLite file path.
    pub name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(engine: Engine, prefix: &str) -> TestDb {
        match engine {
            Engine::Sqlite => {
                let (dir, url, path) = fresh_sqlite();
                TestDb {
                    engine,
                    url,
                    name: path.display().to_string(),
                    _dir: Some(dir),
                }
            }
            Engine::Postgres | Engine::MySql => {
                let (url, name) = if engine == Engine::Postgres {
                    fresh_pg(prefix).await
                } else {
                    fresh_mysql(prefix).await
                };
                TestDb {
                    engine,
                    url,
                    name,
                    _dir: None,
                }
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await
    }

    /// The store once the daemon has created the schema (a SQLite file does not exist before).
    pub async fn wait_schema(&self, timeout: Duration) -> Store {
        let t0 = Instant::now();
        loop {
            let err = match Store::try_connect(&self.url).await {
                Ok(store) => match store.try_count("log_panel_log").await {
                    Ok(_) => return store,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            assert!(
                t0.elapsed() < timeout,
                "no panel schema in {} after {timeout:?}: {err}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Environment for tests/panel/check_panel.py.
    pub fn panel_env(&self) -> Vec<(&'static str, String)> {
        let engine = match self.engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
        };
        vec![
            ("PANEL_ENGINE", engine.into()),
            ("PANEL_DB", self.name.clone()),
        ]
    }
}

/// A config on free loopback ports, writing to `url`, with short batch delays.
pub fn test_config(url: &str) -> Config {
    let mut c = Config::default();
    c.storage.url = url.to_string();
    c.syslog.udp = vec!["127.0.0.1:0".parse().unwrap()];
    c.syslog.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    c.otlp.grpc = Some("127.0.0.1:0".parse().unwrap());
    c.otlp.http = Some("127.0.0.1:0".parse().unwrap());
    c.service.metrics = Some("127.0.0.1:0".parse().unwrap());
    c.batch.max_delay = Duration::from_millis(20);
    c.batch.retry_max = Duration::from_millis(500);
    c
}

pub async fn start(cfg: &Config) -> Collector {
    Collector::start(cfg).await.expect("collector starts")
}

/// One stored `log_panel_log` row, read back the same way from any engine.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub level: String,
    pub logger_name: String,
    pub message: String,
    pub module: String,
    pub pathname: String,
    pub line_number: i64,
    pub message_chunked: bool,
    pub message_size: i64,
}

/// Counter totals by logger: total, errors, warnings.
pub type CardMap = BTreeMap<String, (i64, i64, i64)>;
/// Bucket counts by (logger, unit, bucket start): count, errors, warnings.
pub type BucketMap = BTreeMap<(String, String, DateTime<Utc>), (i64, i64, i64)>;

/// Card values: total, errors, warnings, last_seen.
pub type Card = (i64, i64, i64, Option<DateTime<Utc>>);

/// Reads the panel tables of either engine.
pub enum Store {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

fn sqlite_ts(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("bad SQLite datetime {s:?}: {e}"));
    naive.and_utc()
}

impl Store {
    /// Connects, waiting up to 30 s for the database to appear (a collector creates the SQLite
    /// file when it migrates, which may come just after it started).
    pub async fn connect(url: &str) -> Store {
        let t0 = Instant::now();
        loop {
            match Store::try_connect(url).await {
                Ok(s) => return s,
                Err(e) if t0.elapsed() > Duration::from_secs(30) => {
                    panic!("cannot connect to {url}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn try_connect(url: &str) -> Result<Store, sqlx::Error> {
        Ok(if url.starts_with("sqlite:") {
            Store::Sqlite(sqlx::SqlitePool::connect(url).await?)
        } else if url.starts_with("mysql:") {
            Store::MySql(sqlx::MySqlPool::connect(url).await?)
        } else {
            Store::Postgres(sqlx::PgPool::connect(url).await?)
        })
    }

    /// Rows in `table`; a failed query fails the test (it must not pass as 0 rows).
    pub async fn count(&self, table: &str) -> i64 {
        self.try_count(table)
            .await
            .unwrap_or_else(|e| panic!("SELECT COUNT(*) FROM {table} failed: {e}"))
    }

    async fn try_count(&self, table: &str) -> Result<i64, sqlx::Error> {
        let q = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self {
            Store::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await,
            Store::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await,
            Store::MySql(p) => sqlx::query_scalar(q).fetch_one(p).await,
        }
    }

    /// Waits until `log_panel_log` holds at least `n` rows; returns the count. A query may fail
    /// while the daemon is still creating the schema; one still failing at the timeout fails the test.
    pub async fn wait_rows(&self, n: i64, timeout: Duration) -> i64 {
        let t0 = Instant::now();
        loop {
            match self.try_count("log_panel_log").await {
                Ok(c) if c >= n || t0.elapsed() > timeout => return c,
                Err(e) if t0.elapsed() > timeout => {
                    panic!("counting log_panel_log still fails after {timeout:?}: {e}")
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn rows(&self) -> Vec<StoredRow> {
        const COLS: &str = r#"id, "timestamp", level, logger_name, message, module, pathname, line_number, message_chunked, message_size"#;
        match self {
            Store::Sqlite(p) => sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM log_panel_log ORDER BY \"timestamp\"")))
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| StoredRow {
                    id: r.get(0),
                    timestamp: sqlite_ts(r.get(1)),
                    level: r.get(2),
                    logger_name: r.get(3),
                    message: r.get(4),
                    module: r.get(5),
                    pathname: r.get(6),
                    line_number: r.get(7),
                    message_chunked: r.get(8),
                    message_size: r.get(9),
                })
                .collect(),
            Store::Postgres(p) => sqlx::query(
                "SELECT id::text, \"timestamp\", level, logger_name, message, module, pathname, line_number::int8, message_chunked, message_size::int8 FROM log_panel_log ORDER BY \"timestamp\"",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| StoredRow {
                id: r.get(0),
                timestamp: r.get(1),
                level: r.get(2),
                logger_name: r.get(3),
                message: r.get(4),
                module: r.get(5),
                pathname: r.get(6),
                line_number: r.get(7),
                message_chunked: r.get(8),
                message_size: r.get(9),
            })
            .collect(),
            Store::MySql(p) => sqlx::query(
                "SELECT CAST(id AS CHAR), `timestamp`, level, logger_name, message, module, pathname, CAST(line_number AS SIGNED), message_chunked, CAST(message_size AS SIGNED) FROM log_panel_log ORDER BY `timestamp`",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| StoredRow {
                id: r.get(0),
                timestamp: r.get::<NaiveDateTime, _>(1).and_utc(),
                level: r.get(2),
                logger_name: r.get(3),
                message: r.get(4),
                module: r.get(5),
                pathname: r.get(6),
                line_number: r.get(7),
                message_chunked: r.get(8),
                message_size: r.get(9),
            })
            .collect(),
        }
    }

    /// The complete message of a row: its chunks concatenated, or the message when not chunked.
    pub async fn full_message(&self, row: &StoredRow) -> String {
        if !row.message_chunked {
            return row.message.clone();
        }
        let texts: Vec<String> = match self {
            Store::Sqlite(p) => sqlx::query_scalar(
                r#"SELECT text FROM log_panel_log_message_chunk WHERE log_id = ? ORDER BY "index""#,
            )
            .bind(&row.id)
            .fetch_all(p)
            .await
            .unwrap(),
            Store::Postgres(p) => sqlx::query_scalar(
                r#"SELECT text FROM log_panel_log_message_chunk WHERE log_id = $1::uuid ORDER BY "index""#,
            )
            .bind(&row.id)
            .fetch_all(p)
            .await
            .unwrap(),
            Store::MySql(p) => sqlx::query_scalar(
                "SELECT text FROM log_panel_log_message_chunk WHERE log_id = ? ORDER BY `index`",
            )
            .bind(&row.id)
            .fetch_all(p)
            .await
            .unwrap(),
        };
        texts.concat()
    }

    /// Cards by logger name.
    pub async fn cards(&self) -> BTreeMap<String, Card> {
        let q = "SELECT l.name, c.total, c.total_errors, c.total_warnings, c.last_seen FROM log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id";
        match self {
            Store::Sqlite(p) => sqlx::query(q)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let seen: Option<String> = r.get(4);
                    (
                        r.get(0),
                        (r.get(1), r.get(2), r.get(3), seen.as_deref().map(sqlite_ts)),
                    )
                })
                .collect(),
            Store::Postgres(p) => sqlx::query(q)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
                .collect(),
            Store::MySql(p) => sqlx::query(
                "SELECT l.name, CAST(c.total AS SIGNED), CAST(c.total_errors AS SIGNED), CAST(c.total_warnings AS SIGNED), c.last_seen FROM log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let seen: Option<NaiveDateTime> = r.get(4);
                (r.get(0), (r.get(1), r.get(2), r.get(3), seen.map(|s| s.and_utc())))
            })
            .collect(),
        }
    }

    /// Buckets keyed by (logger, unit, bucket start) -> (count, errors, warnings).
    pub async fn buckets(&self) -> BucketMap {
        let q = "SELECT l.name, b.unit, b.bucket, b.log_count, b.error_count, b.warning_count FROM log_panel_log_timeline_bucket b JOIN log_panel_logger l ON l.id = b.logger_id";
        match self {
            Store::Sqlite(p) => sqlx::query(q)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let b: String = r.get(2);
                    assert!(!b.contains('.') && !b.contains('T'), "bucket text must be YYYY-MM-DD HH:MM:SS, got {b}");
                    ((r.get(0), r.get(1), sqlite_ts(&b)), (r.get(3), r.get(4), r.get(5)))
                })
                .collect(),
            Store::Postgres(p) => sqlx::query(
                "SELECT l.name, b.unit, b.bucket, b.log_count::int8, b.error_count::int8, b.warning_count::int8 FROM log_panel_log_timeline_bucket b JOIN log_panel_logger l ON l.id = b.logger_id",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| ((r.get(0), r.get(1), r.get(2)), (r.get(3), r.get(4), r.get(5))))
            .collect(),
            Store::MySql(p) => sqlx::query(
                "SELECT l.name, b.unit, b.bucket, CAST(b.log_count AS SIGNED), CAST(b.error_count AS SIGNED), CAST(b.warning_count AS SIGNED) FROM log_panel_log_timeline_bucket b JOIN log_panel_logger l ON l.id = b.logger_id",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let b: NaiveDateTime = r.get(2);
                ((r.get(0), r.get(1), b.and_utc()), (r.get(3), r.get(4), r.get(5)))
            })
            .collect(),
        }
    }
}

/// Cards and buckets recomputed from the rows (what the package's `rebuild_log_cards` would produce),
/// to compare with the stored counters.
pub fn recompute(rows: &[StoredRow], tz: chrono_tz::Tz) -> (CardMap, BucketMap) {
    use log_panel_collector::pipeline::batch::{day_start, hour_start};
    let mut cards = CardMap::new();
    let mut buckets = BTreeMap::new();
    for r in rows {
        let e = matches!(r.level.as_str(), "ERROR" | "CRITICAL") as i64;
        let w = (r.level == "WARNING") as i64;
        let c = cards.entry(r.logger_name.clone()).or_default();
        *c = (c.0 + 1, c.1 + e, c.2 + w);
        for (unit, start) in [
            ("hour", hour_start(r.timestamp, tz)),
            ("day", day_start(r.timestamp, tz)),
        ] {
            let b: &mut (i64, i64, i64) = buckets
                .entry((r.logger_name.clone(), unit.to_string(), start))
                .or_default();
            *b = (b.0 + 1, b.1 + e, b.2 + w);
        }
    }
    (cards, buckets)
}

/// Asserts that cards (totals and, when asked, `last_seen`) and buckets equal a recomputation from the
/// rows, as the package's `rebuild_log_cards` would make them.
pub fn assert_counters(
    rows: &[StoredRow],
    cards: &BTreeMap<String, Card>,
    buckets: &BucketMap,
    check_last_seen: bool,
) {
    let (want_cards, want_buckets) = recompute(rows, chrono_tz::Tz::UTC);
    let got: CardMap = cards
        .iter()
        .map(|(k, v)| (k.clone(), (v.0, v.1, v.2)))
        .collect();
    assert_eq!(got, want_cards, "cards equal a recomputation from the rows");
    if check_last_seen {
        for (name, c) in cards {
            let latest = rows
                .iter()
                .filter(|r| &r.logger_name == name)
                .map(|r| r.timestamp)
                .max();
            assert_eq!(c.3, latest, "last_seen of {name}");
        }
    }
    assert_eq!(
        buckets, &want_buckets,
        "buckets equal a recomputation from the rows"
    );
}

/// Runs a command and panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Runs a command, panics with its output when it fails, and returns its standard output only.
pub fn run_stdout(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// util-linux `logger` sending to `addr`.
pub fn logger(addr: SocketAddr, args: &[&str]) {
    let mut cmd = Command::new("logger");
    cmd.arg("--server")
        .arg(addr.ip().to_string())
        .arg("--port")
        .arg(addr.port().to_string())
        .args(args);
    run_ok(&mut cmd);
}

/// Python 3 (any version) for `logging.handlers.SysLogHandler`.
pub fn python3(script: &str, args: &[String]) -> String {
    run_ok(Command::new("python3").arg("-c").arg(script).args(args))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The panel venv's Python (django-log-panel installed): LPC_PANEL_PYTHON, or .venv-panel made by
/// scripts/test.sh.
pub fn panel_python() -> PathBuf {
    let p = std::env::var_os("LPC_PANEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-panel/bin/python"));
    assert!(
        p.exists(),
        "the panel venv is missing ({}): run scripts/test.sh, which creates it, or set LPC_PANEL_PYTHON",
        p.display()
    );
    p
}

/// Runs tests/panel/check_panel.py with the database's environment; returns (success, output).
pub fn check_panel(db: &TestDb, extra_env: &[(&str, String)], args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(panel_python());
    cmd.arg(repo().join("tests/panel/check_panel.py"))
        .args(args);
    for (k, v) in db.panel_env() {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs check_panel.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes raw bytes to a TCP address and closes the connection.
pub fn send_tcp(addr: SocketAddr, data: &[u8]) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(std::net::Shutdown::Write).ok();
    // Let the collector read to EOF before we drop the socket.
    let mut sink = [0u8; 16];
    use std::io::Read;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.read(&mut sink);
}

/// Waits until `cond` holds, polling every 20 ms; fails the test with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_until`] for async tests.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !cond().await {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port free right now (for services that must be told their port in advance).
/// A port no one listens on, for a daemon started later: taken below the kernel's ephemeral range
/// (`ip_local_port_range`), so that the client sockets of other tests cannot take it in between, and
/// never handed out twice in one test process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral.saturating_sub(1).max(10_001));
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    let span = (high - low) as u64;
    let mut given = GIVEN.lock().unwrap();
    for i in 0..span {
        let port = low + ((seed + i * 104_729) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {low} and {high}")
}

/// An RFC 6587 octet-counted frame.
pub fn octet_frame(msg: &[u8]) -> Vec<u8> {
    let mut v = format!("{} ", msg.len()).into_bytes();
    v.extend_from_slice(msg);
    v
}

/// The path of the built binary.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_log-panel-collector"))
}

/// A PostgreSQL server binary of the newest installed version.
pub fn pg_bin(tool: &str) -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(base)
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL server binaries are needed under {}: {e}",
                base.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    let p = versions
        .last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(tool);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
pub fn as_pg(tool: &str) -> Command {
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if is_root.unwrap_or(false) {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    }
}

/// A private PostgreSQL server (initdb in a temp dir, its own port) that a test may stop and start.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    port: u16,
    /// Extra server options (`-c name=value ...`).
    opts: String,
}

impl PrivatePg {
    pub fn init() -> PrivatePg {
        PrivatePg::init_with(|_| String::new())
    }

    /// Like [`PrivatePg::init`], with server options made from the (postgres-owned) temp dir, e.g.
    /// `-c ssl=on -c ssl_cert_file=DIR/server.crt ...` after copying the files there.
    pub fn init_with(opts: impl FnOnce(&Path) -> String) -> PrivatePg {
        let dir = tempfile::Builder::new().prefix("lpc-pg").tempdir().unwrap();
        run_ok(Command::new("chown").arg("postgres").arg(dir.path()));
        let port = free_port();
        run_ok(
            as_pg("initdb")
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(dir.path().join("data")),
        );
        let opts = opts(dir.path());
        let pg = PrivatePg { dir, port, opts };
        pg.start();
        pg
    }

    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.path().display(),
            self.opts
        );
        run_ok(
            as_pg("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-o", &opts, "-l"])
                .arg(self.dir.path().join("log"))
                .args(["-w", "start"]),
        );
    }

    pub fn stop(&self) {
        run_ok(
            as_pg("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "fast", "-w", "stop"]),
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = as_pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
