//! SQLite, the embedded default: WAL so the Django admin can read while we write; one writer
//! connection; Django's text encodings (32-hex ids, naive-UTC `YYYY-MM-DD HH:MM:SS[.ffffff]`).

use super::schema::Engine;
use super::sql::{
    CounterUpserts, Dialect, Insert, Limits, Migrating, PerCounter, RowInserts, Sql, SqlBackend,
    parse_url,
};
use super::{Context, StorageError};
use crate::pipeline::batch::Batch;
use chrono::{DateTime, Datelike, Timelike, Utc};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::time::Duration;
use uuid::Uuid;

/// Writes into one SQLite file. Write transactions start with `BEGIN IMMEDIATE`: a deferred one that
/// reads first cannot wait for another process's write lock (SQLite answers "database is locked" at
/// once), an immediate one waits up to the busy timeout.
pub type SqliteBackend = SqlBackend<SqliteDialect>;

/// SQLite's SQL: `?` placeholders, Django's text encodings, rows, chunks and counters 1,000 to an
/// `INSERT` (retention's decrements one statement per counter).
pub struct SqliteDialect;

/// Django's SQLite datetime text: naive UTC, fraction only when not zero.
/// Written field by field: one per row on the write path, where chrono's `format` (which parses
/// its pattern on every call) showed in profiles.
pub fn django_datetime(ts: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(26);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        ts.year(),
        ts.month(),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second()
    );
    // Leap seconds (nanosecond past 1e9) stay in the fraction, as chrono prints them.
    let micros = ts.nanosecond() / 1000;
    if micros != 0 {
        let _ = write!(s, ".{micros:06}");
    }
    s
}

/// Reads Django's SQLite datetime text back (naive UTC, optional fraction).
pub fn parse_django_datetime(s: &str) -> DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|n| n.and_utc())
        .unwrap_or_default()
}

fn hex(id: Uuid) -> String {
    id.simple().to_string()
}

const CREATE_DJANGO_MIGRATIONS: &str = r#"CREATE TABLE IF NOT EXISTS "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL)"#;

/// Where SQLite keeps statement journals (and temporary tables): in memory. A multi-row `INSERT`
/// that may abort half-way (chunks, under the default `ABORT`; the rows before they were `OR FAIL`)
/// saves the pages it changes to a statement journal, which SQLite spills to a temporary file after
/// 64 KiB; with every batch that tripled the bytes written (873 MB of `write()` against 260 MB for
/// 200,000 rows) and cost a quarter of the writer's time (docs/benchmarks.md). The journal lives
/// for one statement (at most one multi-row `INSERT` or one retention `DELETE` batch), so it is small.
const TEMP_STORE: &str = "memory";

/// SQLite's page cache for the one connection, in KiB when negative: 4 MiB instead of SQLite's
/// 2 MiB, which a batch of 5,000 rows outgrows (its table and index pages). With 2 MiB, 200,000 rows
/// took 60,000-63,000 `read` and 133,000-137,000 `write` calls, with 4 MiB 34,000 and 108,000 (the
/// same bytes written; 8 MiB saved no more), and SQLite's thread used less CPU (docs/benchmarks.md).
/// It fills only as pages are touched: idle RSS is the same, after a large ingest 2 MiB more.
const CACHE_SIZE: &str = "-4096";

impl SqliteBackend {
    /// `sqlite://PATH` (relative paths are relative to the working directory); the file is created.
    pub fn open(url: &str) -> Result<Self, StorageError> {
        let opts = parse_url::<SqliteConnectOptions>(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("temp_store", TEMP_STORE)
            .pragma("cache_size", CACHE_SIZE);
        let shown = format!("sqlite {}", opts.get_filename().display());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(opts);
        Ok(SqlBackend::new(pool, shown, SqliteDialect))
    }
}

/// A logger's id, by name.
macro_rules! logger {
    () => {
        "(SELECT id FROM log_panel_logger WHERE name = ?)"
    };
}

/// The batch's loggers, all in one statement (as its counters, [`COUNTERS`]): each statement is a
/// round trip to sqlx's SQLite thread, about 0.1 ms on this machine, and a batch of 8 loggers
/// took 32 of them one by one (docs/benchmarks.md).
const INSERT_LOGGERS: Insert<Sqlite> = Insert::new(
    "INSERT INTO log_panel_logger (id, name) ",
    " ON CONFLICT (name) DO NOTHING",
    2,
    "inserting loggers",
);

/// Cards and timeline buckets by logger name: the `VALUES` rows joined to their loggers' ids (SQLite
/// names the columns `column1`...; the name is the second, where MySQL binds the id; `WHERE true`
/// tells SQLite's parser that `ON CONFLICT` is the upsert, not a join's `ON`).
const COUNTERS: CounterUpserts<Sqlite> = CounterUpserts {
    cards: Insert::new(
        "INSERT INTO log_panel_log_card (id, logger_id, total, total_errors, total_warnings, last_seen) \
         SELECT v.column1, l.id, v.column3, v.column4, v.column5, v.column6 FROM (",
        ") AS v JOIN log_panel_logger AS l ON l.name = v.column2 WHERE true \
         ON CONFLICT (logger_id) DO UPDATE SET total = total + excluded.total, \
         total_errors = total_errors + excluded.total_errors, \
         total_warnings = total_warnings + excluded.total_warnings, \
         last_seen = CASE WHEN last_seen IS NULL OR excluded.last_seen > last_seen THEN excluded.last_seen ELSE last_seen END",
        6,
        "upserting log cards",
    ),
    buckets: Insert::new(
        "INSERT INTO log_panel_log_timeline_bucket (id, logger_id, bucket, unit, log_count, error_count, warning_count) \
         SELECT v.column1, l.id, v.column3, v.column4, v.column5, v.column6, v.column7 FROM (",
        ") AS v JOIN log_panel_logger AS l ON l.name = v.column2 WHERE true \
         ON CONFLICT (logger_id, bucket, unit) DO UPDATE SET log_count = log_count + excluded.log_count, \
         error_count = error_count + excluded.error_count, warning_count = warning_count + excluded.warning_count",
        7,
        "upserting timeline buckets",
    ),
};

impl Dialect for SqliteDialect {
    type DB = Sqlite;
    type Id = String;
    type Time = String;
    type Server = ();

    const ENGINE: Engine = Engine::Sqlite;
    const SQL: Sql = Sql {
        has_django_migrations: None,
        create_django_migrations: CREATE_DJANGO_MIGRATIONS,
        stored_ids: "SELECT id FROM log_panel_log WHERE id",
        oldest_rows: r#"SELECT id, "timestamp", level, logger_name FROM log_panel_log WHERE "timestamp" < ? ORDER BY "timestamp" LIMIT ?"#,
        count_older: r#"SELECT COUNT(*) FROM log_panel_log WHERE "timestamp" < ?"#,
        inserts: Some(RowInserts {
            // `OR FAIL`: a failing row leaves the earlier ones of the statement in place instead of
            // undoing them, so SQLite keeps no statement journal for them (1 % of its thread's time);
            // any error fails the whole batch anyway, and its transaction is rolled back.
            rows: r#"INSERT OR FAIL INTO log_panel_log (id, "timestamp", level, logger_name, message, module, pathname, line_number, message_chunked, message_size) "#,
            chunks: r#"INSERT INTO log_panel_log_message_chunk (id, log_id, "index", text) "#,
        }),
        subtract: Some(PerCounter {
            card: concat!(
                "UPDATE log_panel_log_card SET total = max(total - ?, 0), total_errors = max(total_errors - ?, 0), \
                 total_warnings = max(total_warnings - ?, 0) WHERE logger_id = ",
                logger!()
            ),
            empty_card: concat!(
                "DELETE FROM log_panel_log_card WHERE total <= 0 AND logger_id = ",
                logger!()
            ),
            // ?1: the name, twice.
            last_seen: r#"UPDATE log_panel_log_card SET last_seen = (SELECT max("timestamp") FROM log_panel_log WHERE logger_name = ?1) WHERE logger_id = (SELECT id FROM log_panel_logger WHERE name = ?1) AND last_seen <= ?2"#,
            bucket: concat!(
                "UPDATE log_panel_log_timeline_bucket SET log_count = max(log_count - ?, 0), \
                 error_count = max(error_count - ?, 0), warning_count = max(warning_count - ?, 0) \
                 WHERE logger_id = ",
                logger!(),
                " AND bucket = ? AND unit = ?"
            ),
            empty_bucket: concat!(
                "DELETE FROM log_panel_log_timeline_bucket WHERE log_count <= 0 AND logger_id = ",
                logger!(),
                " AND bucket = ? AND unit = ?"
            ),
        }),
        begin_context: "starting a SQLite transaction",
        ping_context: "pinging SQLite",
    };
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const LOOKUP_IDS: usize = super::ID_LOOKUP_CHUNK;
    const DELETE_IDS: usize = 500;

    async fn server(&self, _: &SqlitePool) -> Result<(), StorageError> {
        Ok(())
    }

    fn id(_: &(), id: Uuid) -> String {
        hex(id)
    }

    fn uuid(id: String) -> Option<Uuid> {
        Uuid::parse_str(&id).ok()
    }

    fn time(ts: DateTime<Utc>) -> String {
        django_datetime(ts)
    }

    fn utc(ts: String) -> DateTime<Utc> {
        parse_django_datetime(&ts)
    }

    async fn begin_migration(&self, pool: &SqlitePool) -> Result<Migrating<Sqlite>, StorageError> {
        let tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("opening the SQLite database")?;
        Ok(Migrating::Transaction(tx))
    }

    /// Many rows per statement, as each statement is a hand-over to sqlx's SQLite thread, which
    /// costs more than the insert itself when sent row by row (docs/benchmarks.md, SQLite). 1,000 rows
    /// (10,000 bound values, below SQLite's limit of 32,766) stored more rows/s than 200 in 7 of 8
    /// alternating rounds; a batch is 5 of them, and `[batch] max_bytes` bounds what one holds.
    fn limits(_: &()) -> Limits {
        Limits {
            bytes: usize::MAX,
            params: 32_766,
            rows: Some(1000),
        }
    }

    fn applied_at() -> Option<String> {
        Some(django_datetime(Utc::now()))
    }

    async fn write(
        &self,
        _: (),
        tx: &mut SqliteConnection,
        batch: &Batch,
    ) -> Result<(), StorageError> {
        // Short statements are compiled for each batch (`Limits::rows` keeps only full ones
        // prepared): cheap beside the round trips of one statement per counter.
        let limits = Self::limits(&());
        INSERT_LOGGERS
            .run(
                tx,
                limits,
                &batch.loggers,
                |l| l.name.len() + 60,
                |mut b, l| {
                    b.push_bind(hex(Uuid::new_v4())).push_bind(l.name.as_str());
                },
            )
            .await?;
        COUNTERS
            .run(
                tx,
                limits,
                batch,
                || hex(Uuid::new_v4()),
                |name| name.to_string(),
                django_datetime,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_djangos_text_and_read_back() {
        let cases = [
            ("2026-03-04T05:06:07Z", "2026-03-04 05:06:07"),
            ("2026-03-04T05:06:07.000123Z", "2026-03-04 05:06:07.000123"),
            (
                "2026-12-31T23:59:59.999999999Z",
                "2026-12-31 23:59:59.999999",
            ),
            ("0999-01-01T00:00:00.5Z", "0999-01-01 00:00:00.500000"),
        ];
        for (rfc, text) in cases {
            let ts: DateTime<Utc> = rfc.parse().unwrap();
            assert_eq!(django_datetime(ts), text);
            let chrono_text = if ts.nanosecond() / 1000 == 0 {
                ts.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                ts.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
            };
            assert_eq!(django_datetime(ts), chrono_text, "as chrono formats it");
            assert_eq!(
                parse_django_datetime(text).timestamp_micros(),
                ts.timestamp_micros()
            );
        }
    }

    /// Counters go in multi-row statements (more loggers than one statement holds here), join each
    /// to its logger by name, and add to what earlier batches stored.
    #[tokio::test]
    async fn counters_of_many_loggers_add_up_across_batches() {
        use crate::pipeline::batch::{BucketTotals, LoggerTotals, Unit};
        use crate::storage::Backend;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
        let backend = SqliteBackend::open(&url).unwrap();
        backend.migrate().await.unwrap();
        let hour: DateTime<Utc> = "2026-12-04T19:00:00Z".parse().unwrap();
        let batch = |n: usize, seen: &str| Batch {
            loggers: (0..n)
                .map(|i| LoggerTotals {
                    name: format!("app.{i:04}"),
                    total: 3,
                    errors: 1,
                    warnings: (i % 2) as i64,
                    last_seen: seen.parse().unwrap(),
                })
                .collect(),
            buckets: (0..n)
                .map(|i| BucketTotals {
                    logger: format!("app.{i:04}"),
                    unit: Unit::Hour,
                    bucket: hour,
                    count: 3,
                    errors: 1,
                    warnings: (i % 2) as i64,
                })
                .collect(),
            ..Batch::default()
        };
        // 2,500 loggers: three statements of each kind (1,000 rows a statement); then 1,200 of them
        // with an earlier last_seen, which must not win; then 10 with a later one, which must, and
        // with day buckets, which are rows of their own beside the hour ones.
        backend
            .write_batch(&batch(2500, "2026-12-04T19:10:00Z"))
            .await
            .unwrap();
        backend
            .write_batch(&batch(1200, "2026-12-04T19:05:00Z"))
            .await
            .unwrap();
        let mut later = batch(10, "2026-12-04T19:20:00Z");
        for b in &mut later.buckets {
            b.unit = Unit::Day;
            b.bucket = "2026-12-04T00:00:00Z".parse().unwrap();
        }
        backend.write_batch(&later).await.unwrap();
        type Counted = (String, i64, i64, i64, String);
        let row = |name: &str, n: i64, e: i64, w: i64, at: &str| -> Counted {
            (name.into(), n, e, w, at.into())
        };
        let q = |sql: &'static str| sqlx::query_as::<_, Counted>(sql);
        let cards = q("SELECT l.name, c.total, c.total_errors, c.total_warnings, c.last_seen \
             FROM log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id ORDER BY l.name")
        .fetch_all(backend.pool())
        .await
        .unwrap();
        assert_eq!(cards.len(), 2500);
        assert_eq!(cards[0], row("app.0000", 9, 3, 0, "2026-12-04 19:20:00"));
        assert_eq!(cards[9], row("app.0009", 9, 3, 3, "2026-12-04 19:20:00"));
        assert_eq!(cards[10], row("app.0010", 6, 2, 0, "2026-12-04 19:10:00"));
        assert_eq!(cards[1199], row("app.1199", 6, 2, 2, "2026-12-04 19:10:00"));
        assert_eq!(cards[1200], row("app.1200", 3, 1, 0, "2026-12-04 19:10:00"));
        assert_eq!(cards[2499], row("app.2499", 3, 1, 1, "2026-12-04 19:10:00"));
        let buckets = q(
            "SELECT l.name, b.log_count, b.error_count, b.warning_count, b.bucket || ' ' || b.unit \
             FROM log_panel_log_timeline_bucket b JOIN log_panel_logger l ON l.id = b.logger_id \
             ORDER BY l.name, b.bucket",
        )
        .fetch_all(backend.pool())
        .await
        .unwrap();
        assert_eq!(buckets.len(), 2510);
        assert_eq!(
            buckets[0],
            row("app.0000", 3, 1, 0, "2026-12-04 00:00:00 day")
        );
        assert_eq!(
            buckets[1],
            row("app.0000", 6, 2, 0, "2026-12-04 19:00:00 hour")
        );
        assert_eq!(
            buckets[1209],
            row("app.1199", 6, 2, 2, "2026-12-04 19:00:00 hour")
        );
        assert_eq!(
            buckets[2509],
            row("app.2499", 3, 1, 1, "2026-12-04 19:00:00 hour")
        );
        let (loggers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM log_panel_logger")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(loggers, 2500);
    }

    /// The connection's settings that the write rate depends on: statement journals in memory
    /// (spilled to temporary files they tripled the bytes written per batch), the larger page
    /// cache, WAL.
    #[tokio::test]
    async fn the_connection_keeps_journals_in_memory_and_a_larger_cache() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
        let backend = SqliteBackend::open(&url).unwrap();
        let (store,): (i64,) = sqlx::query_as("PRAGMA temp_store")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(store, 2, "PRAGMA temp_store: 2 is MEMORY");
        let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(cache, -4096, "PRAGMA cache_size: 4 MiB");
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
