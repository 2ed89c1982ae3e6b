//! SQLite, the embedded default: WAL so the Django admin can read while we write; one writer
//! connection; Django's text encodings (32-hex ids, naive-UTC `YYYY-MM-DD HH:MM:SS[.ffffff]`).

use super::schema::{APP, has_statements, pending};
use super::{Backend, Context, MigrationReport, StorageError};
use crate::pipeline::batch::{Aggregator, Batch};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite};
use sqlx::{Executor, Row as _};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// Writes into one SQLite file. Write transactions start with `BEGIN IMMEDIATE`: a deferred one that
/// reads first cannot wait for another process's write lock (SQLite answers "database is locked" at
/// once), an immediate one waits up to the busy timeout.
pub struct SqliteBackend {
    pool: SqlitePool,
    path: String,
}

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

/// Rows (or chunks) per INSERT statement: 2,000 bound values, far below SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 200;

const CREATE_DJANGO_MIGRATIONS: &str = r#"CREATE TABLE IF NOT EXISTS "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL)"#;

impl SqliteBackend {
    /// `sqlite://PATH` (relative paths are relative to the working directory); the file is created.
    pub fn open(url: &str) -> Result<Self, StorageError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StorageError::Url {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let path = opts.get_filename().display().to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(opts);
        Ok(SqliteBackend { pool, path })
    }
}

impl Backend for SqliteBackend {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path)
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("opening the SQLite database")?;
        tx.execute(CREATE_DJANGO_MIGRATIONS)
            .await
            .context("creating django_migrations")?;
        let done: Vec<String> = sqlx::query("SELECT name FROM django_migrations WHERE app = ?")
            .bind(APP)
            .fetch_all(&mut *tx)
            .await
            .context("reading django_migrations")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut applied = Vec::new();
        for m in pending(&done) {
            if has_statements(m.sqlite) {
                sqlx::raw_sql(m.sqlite)
                    .execute(&mut *tx)
                    .await
                    .context("applying a log_panel migration")?;
            }
            sqlx::query("INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, ?)")
                .bind(APP)
                .bind(m.name)
                .bind(django_datetime(Utc::now()))
                .execute(&mut *tx)
                .await
                .context("recording a migration in django_migrations")?;
            applied.push(m.name);
        }
        tx.commit().await.context("committing migrations")?;
        Ok(MigrationReport { applied })
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("starting a SQLite transaction")?;
        // Many rows per statement: each statement is a hand-over to sqlx's SQLite thread, which
        // cost more than the insert itself when sent row by row (docs/benchmarks.md, SQLite).
        for rows in batch.rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                r#"INSERT INTO log_panel_log (id, "timestamp", level, logger_name, message, module, pathname, line_number, message_chunked, message_size) "#,
            );
            q.push_values(rows, |mut b, r| {
                b.push_bind(hex(r.id))
                    .push_bind(django_datetime(r.timestamp))
                    .push_bind(r.level.as_str())
                    .push_bind(&r.logger_name)
                    .push_bind(&r.message)
                    .push_bind(&r.module)
                    .push_bind(&r.pathname)
                    .push_bind(r.line_number)
                    .push_bind(r.message_chunked)
                    .push_bind(r.message_size);
            });
            q.build()
                .persistent(rows.len() == ROWS_PER_INSERT)
                .execute(&mut *tx)
                .await
                .context("inserting log rows")?;
        }
        for chunks in batch.chunks.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                r#"INSERT INTO log_panel_log_message_chunk (id, log_id, "index", text) "#,
            );
            q.push_values(chunks, |mut b, c| {
                b.push_bind(hex(c.id))
                    .push_bind(hex(c.log_id))
                    .push_bind(c.index)
                    .push_bind(&c.text);
            });
            q.build()
                .persistent(chunks.len() == ROWS_PER_INSERT)
                .execute(&mut *tx)
                .await
                .context("inserting message chunks")?;
        }
        for l in &batch.loggers {
            sqlx::query("INSERT INTO log_panel_logger (id, name) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .bind(hex(Uuid::new_v4()))
                .bind(&l.name)
                .execute(&mut *tx)
                .await
                .context("inserting loggers")?;
            sqlx::query(
                "INSERT INTO log_panel_log_card (id, logger_id, total, total_errors, total_warnings, last_seen) \
                 SELECT ?, id, ?, ?, ?, ? FROM log_panel_logger WHERE name = ? \
                 ON CONFLICT (logger_id) DO UPDATE SET total = total + excluded.total, \
                 total_errors = total_errors + excluded.total_errors, \
                 total_warnings = total_warnings + excluded.total_warnings, \
                 last_seen = CASE WHEN last_seen IS NULL OR excluded.last_seen > last_seen THEN excluded.last_seen ELSE last_seen END",
            )
            .bind(hex(Uuid::new_v4()))
            .bind(l.total)
            .bind(l.errors)
            .bind(l.warnings)
            .bind(django_datetime(l.last_seen))
            .bind(&l.name)
            .execute(&mut *tx)
            .await
            .context("upserting log cards")?;
        }
        for b in &batch.buckets {
            sqlx::query(
                "INSERT INTO log_panel_log_timeline_bucket (id, logger_id, bucket, unit, log_count, error_count, warning_count) \
                 SELECT ?, id, ?, ?, ?, ?, ? FROM log_panel_logger WHERE name = ? \
                 ON CONFLICT (logger_id, bucket, unit) DO UPDATE SET log_count = log_count + excluded.log_count, \
                 error_count = error_count + excluded.error_count, warning_count = warning_count + excluded.warning_count",
            )
            .bind(hex(Uuid::new_v4()))
            .bind(b.bucket.format("%Y-%m-%d %H:%M:%S").to_string())
            .bind(b.unit.as_str())
            .bind(b.count)
            .bind(b.errors)
            .bind(b.warnings)
            .bind(&b.logger)
            .execute(&mut *tx)
            .await
            .context("upserting timeline buckets")?;
        }
        tx.commit().await.context("committing a batch")?;
        Ok(())
    }

    async fn contains_row(&self, id: Uuid) -> Result<bool, StorageError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM log_panel_log WHERE id = ?")
            .bind(hex(id))
            .fetch_optional(&self.pool)
            .await
            .context("looking up a row")?;
        Ok(found.is_some())
    }

    async fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StorageError> {
        let mut found = HashSet::new();
        for part in ids.chunks(super::ID_LOOKUP_CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT id FROM log_panel_log WHERE id IN (",
            );
            let mut list = q.separated(", ");
            for id in part {
                list.push_bind(hex(*id));
            }
            q.push(")");
            let rows: Vec<String> = q
                .build_query_scalar()
                .fetch_all(&self.pool)
                .await
                .context("looking up stored rows")?;
            found.extend(super::parse_ids(rows));
        }
        Ok(found)
    }

    async fn delete_batch(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
        tz: Tz,
    ) -> Result<usize, StorageError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("starting a SQLite transaction")?;
        let found = sqlx::query(
            r#"SELECT id, "timestamp", level, logger_name FROM log_panel_log WHERE "timestamp" < ? ORDER BY "timestamp" LIMIT ?"#,
        )
        .bind(django_datetime(cutoff))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .context("selecting the oldest rows")?;
        let mut agg = Aggregator::new(tz);
        let mut ids = Vec::with_capacity(found.len());
        for r in &found {
            let ts: String = r.get(1);
            let level: String = r.get(2);
            let logger: String = r.get(3);
            agg.add_stored(&logger, parse_django_datetime(&ts), &level);
            ids.push(r.get::<String, _>(0));
        }
        for part in ids.chunks(500) {
            for table_key in [
                r#"DELETE FROM log_panel_log_message_chunk WHERE log_id IN ("#,
                r#"DELETE FROM log_panel_log WHERE id IN ("#,
            ] {
                let mut q = QueryBuilder::<Sqlite>::new(table_key);
                let mut sep = q.separated(", ");
                for id in part {
                    sep.push_bind(id);
                }
                q.push(")");
                q.build()
                    .execute(&mut *tx)
                    .await
                    .context("deleting old rows")?;
            }
        }
        let (loggers, buckets) = agg.finish();
        const LOGGER: &str = "(SELECT id FROM log_panel_logger WHERE name = ?)";
        for l in &loggers {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE log_panel_log_card SET total = max(total - ?, 0), total_errors = max(total_errors - ?, 0), \
                 total_warnings = max(total_warnings - ?, 0) WHERE logger_id = {LOGGER}"
            )))
            .bind(l.total)
            .bind(l.errors)
            .bind(l.warnings)
            .bind(&l.name)
            .execute(&mut *tx)
            .await
            .context("subtracting from log cards")?;
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM log_panel_log_card WHERE total <= 0 AND logger_id = {LOGGER}"
            )))
            .bind(&l.name)
            .execute(&mut *tx)
            .await
            .context("removing empty log cards")?;
            sqlx::query(AssertSqlSafe(format!(
                r#"UPDATE log_panel_log_card SET last_seen = (SELECT max("timestamp") FROM log_panel_log WHERE logger_name = ?) WHERE logger_id = {LOGGER} AND last_seen <= ?"#
            )))
            .bind(&l.name)
            .bind(&l.name)
            .bind(django_datetime(l.last_seen))
            .execute(&mut *tx)
            .await
            .context("updating last_seen")?;
        }
        for b in &buckets {
            let bucket = b.bucket.format("%Y-%m-%d %H:%M:%S").to_string();
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE log_panel_log_timeline_bucket SET log_count = max(log_count - ?, 0), \
                 error_count = max(error_count - ?, 0), warning_count = max(warning_count - ?, 0) \
                 WHERE logger_id = {LOGGER} AND bucket = ? AND unit = ?"
            )))
            .bind(b.count)
            .bind(b.errors)
            .bind(b.warnings)
            .bind(&b.logger)
            .bind(&bucket)
            .bind(b.unit.as_str())
            .execute(&mut *tx)
            .await
            .context("subtracting from timeline buckets")?;
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM log_panel_log_timeline_bucket WHERE log_count <= 0 AND logger_id = {LOGGER} AND bucket = ? AND unit = ?"
            )))
            .bind(&b.logger)
            .bind(&bucket)
            .bind(b.unit.as_str())
            .execute(&mut *tx)
            .await
            .context("removing empty timeline buckets")?;
        }
        tx.commit().await.context("committing a retention batch")?;
        Ok(ids.len())
    }

    async fn count_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let n: i64 =
            sqlx::query_scalar(r#"SELECT COUNT(*) FROM log_panel_log WHERE "timestamp" < ?"#)
                .bind(django_datetime(cutoff))
                .fetch_one(&self.pool)
                .await
                .context("counting old rows")?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging SQLite")?;
        Ok(())
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
}
