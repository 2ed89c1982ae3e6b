//! MySQL and MariaDB: rows and chunks by multi-row `INSERT`s sized under `max_allowed_packet`, counters
//! by `INSERT … ON DUPLICATE KEY UPDATE` in sorted key order, one transaction per batch. Ids are stored
//! as Django stores them: MariaDB >= 10.7 has a native `uuid` column (Django 5+ uses it), MySQL
//! `char(32)` hex; datetimes are naive UTC `datetime(6)`.

use super::schema::{APP, has_statements, pending};
use super::{Backend, Context, MigrationReport, StorageError};
use crate::pipeline::batch::{Aggregator, Batch};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, MySql, QueryBuilder, Row as _};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// What the server is, learned on first use.
#[derive(Debug, Clone, Copy)]
struct Server {
    /// MariaDB >= 10.7: `uuid` columns (dashed text); otherwise `char(32)` hex.
    native_uuid: bool,
    /// Upper bound for one statement, from `@@max_allowed_packet`.
    max_statement: usize,
}

/// Writes into one MySQL or MariaDB database.
pub struct MySqlBackend {
    pool: MySqlPool,
    shown: String,
    server: OnceCell<Server>,
}

/// MySQL's limit on placeholders in one prepared statement.
const MAX_PARAMS: usize = 65_535;

const CREATE_DJANGO_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)";

fn naive(ts: DateTime<Utc>) -> NaiveDateTime {
    ts.naive_utc()
}

impl MySqlBackend {
    /// `mysql://user:pass@host:3306/db` (also `mariadb://`).
    pub fn open(url: &str, writers: usize) -> Result<Self, StorageError> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let opts = MySqlConnectOptions::from_str(&url).map_err(|e| StorageError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let shown = format!(
            "mysql {}:{}/{}",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("")
        );
        let pool = MySqlPoolOptions::new()
            .max_connections(writers as u32 + 1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(opts.charset("utf8mb4").timezone(Some("+00:00".into())));
        Ok(MySqlBackend {
            pool,
            shown,
            server: OnceCell::new(),
        })
    }

    async fn server(&self) -> Result<Server, StorageError> {
        self.server
            .get_or_try_init(|| async {
                let row = sqlx::query("SELECT VERSION(), @@max_allowed_packet")
                    .fetch_one(&self.pool)
                    .await
                    .context("asking the server's version")?;
                let version: String = row.get(0);
                let packet: u64 = row
                    .try_get::<u64, _>(1)
                    .or_else(|_| row.try_get::<i64, _>(1).map(|v| v as u64))
                    .unwrap_or(4 << 20);
                Ok(Server {
                    native_uuid: mariadb_has_uuid(&version),
                    max_statement: (packet as usize / 2).clamp(64 << 10, 32 << 20),
                })
            })
            .await
            .copied()
    }
}

/// MariaDB from 10.7 has the `uuid` type that Django 5+ uses for UUIDField.
fn mariadb_has_uuid(version: &str) -> bool {
    if !version.to_ascii_lowercase().contains("mariadb") {
        return false;
    }
    let mut parts = version
        .split(['.', '-'])
        .filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (10, 7)
}

impl Server {
    fn id(&self, id: Uuid) -> String {
        if self.native_uuid {
            id.hyphenated().to_string()
        } else {
            id.simple().to_string()
        }
    }

    /// Django's DDL for this server: the MariaDB text, with `char(32)` ids on MySQL.
    fn ddl(&self, sql: &str) -> String {
        if self.native_uuid {
            sql.to_string()
        } else {
            sql.replace("` uuid NOT NULL", "` char(32) NOT NULL")
        }
    }
}

/// Cuts rows into multi-row statements under both the packet and the placeholder limit.
fn statement_sizes(
    sizes: impl Iterator<Item = usize>,
    params_per_row: usize,
    max_bytes: usize,
) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for s in sizes {
        if n > 0 && (bytes + s > max_bytes || (n + 1) * params_per_row > MAX_PARAMS) {
            out.push(n);
            n = 0;
            bytes = 0;
        }
        n += 1;
        bytes += s;
    }
    if n > 0 {
        out.push(n);
    }
    out
}

impl Backend for MySqlBackend {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let server = self.server().await?;
        let mut conn = self.pool.acquire().await.context("connecting to MySQL")?;
        // MySQL DDL is not transactional: serialize concurrent collectors with a named lock.
        sqlx::query("SELECT GET_LOCK('log_panel_collector_migrate', 60)")
            .execute(&mut *conn)
            .await
            .context("taking the migration lock")?;
        let result = async {
            sqlx::raw_sql(CREATE_DJANGO_MIGRATIONS)
                .execute(&mut *conn)
                .await
                .context("creating django_migrations")?;
            let done: Vec<String> = sqlx::query("SELECT name FROM django_migrations WHERE app = ?")
                .bind(APP)
                .fetch_all(&mut *conn)
                .await
                .context("reading django_migrations")?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut applied = Vec::new();
            for m in pending(&done) {
                if has_statements(m.mysql) {
                    for stmt in server.ddl(m.mysql).split(";\n") {
                        let body: String = stmt
                            .lines()
                            .filter(|l| !l.trim_start().starts_with("--"))
                            .collect::<Vec<_>>()
                            .join("\n");
                        let body = body.trim().trim_end_matches(';');
                        if body.is_empty() {
                            continue;
                        }
                        sqlx::raw_sql(AssertSqlSafe(body.to_string()))
                            .execute(&mut *conn)
                            .await
                            .context("applying a log_panel migration")?;
                    }
                }
                sqlx::query("INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, ?)")
                    .bind(APP)
                    .bind(m.name)
                    .bind(naive(Utc::now()))
                    .execute(&mut *conn)
                    .await
                    .context("recording a migration in django_migrations")?;
                applied.push(m.name);
            }
            Ok(MigrationReport { applied })
        }
        .await;
        let _ = sqlx::query("SELECT RELEASE_LOCK('log_panel_collector_migrate')")
            .execute(&mut *conn)
            .await;
        result
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        let server = self.server().await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .context("starting a MySQL transaction")?;
        let mut rows = batch.rows.iter();
        for n in statement_sizes(
            batch.rows.iter().map(|r| {
                r.message.len() + r.logger_name.len() + r.module.len() + r.pathname.len() + 300
            }),
            10,
            server.max_statement,
        ) {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO log_panel_log (id, `timestamp`, level, logger_name, message, module, pathname, line_number, message_chunked, message_size) ",
            );
            q.push_values(rows.by_ref().take(n), |mut b, r| {
                b.push_bind(server.id(r.id))
                    .push_bind(naive(r.timestamp))
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
                .execute(&mut *tx)
                .await
                .context("inserting log rows")?;
        }
        let mut chunks = batch.chunks.iter();
        for n in statement_sizes(
            batch.chunks.iter().map(|c| c.text.len() + 100),
            4,
            server.max_statement,
        ) {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO log_panel_log_message_chunk (id, log_id, `index`, text) ",
            );
            q.push_values(chunks.by_ref().take(n), |mut b, c| {
                b.push_bind(server.id(c.id))
                    .push_bind(server.id(c.log_id))
                    .push_bind(c.index)
                    .push_bind(&c.text);
            });
            q.build()
                .execute(&mut *tx)
                .await
                .context("inserting message chunks")?;
        }
        if batch.loggers.is_empty() {
            tx.commit().await.context("committing a batch")?;
            return Ok(());
        }
        let mut loggers = batch.loggers.iter();
        for n in statement_sizes(
            batch.loggers.iter().map(|l| l.name.len() + 60),
            2,
            server.max_statement,
        ) {
            let mut q = QueryBuilder::<MySql>::new("INSERT INTO log_panel_logger (id, name) ");
            q.push_values(loggers.by_ref().take(n), |mut b, l| {
                b.push_bind(server.id(Uuid::new_v4())).push_bind(&l.name);
            });
            q.push(" ON DUPLICATE KEY UPDATE name = name");
            q.build()
                .execute(&mut *tx)
                .await
                .context("inserting loggers")?;
        }
        // Ask per name: the server compares names by its collation (often case-insensitive), so
        // "cron" finds the row "CRON" an earlier batch created, as the unique index sees it.
        let mut ids: HashMap<&str, String> = HashMap::new();
        for l in &batch.loggers {
            let id: String =
                sqlx::query_scalar("SELECT CAST(id AS CHAR) FROM log_panel_logger WHERE name = ?")
                    .bind(&l.name)
                    .fetch_one(&mut *tx)
                    .await
                    .context("reading logger ids")?;
            ids.insert(l.name.as_str(), id);
        }
        let logger_id = |name: &str| ids[name].clone();
        let mut loggers = batch.loggers.iter();
        for n in statement_sizes(
            batch.loggers.iter().map(|l| l.name.len() + 120),
            6,
            server.max_statement,
        ) {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO log_panel_log_card (id, logger_id, total, total_errors, total_warnings, last_seen) ",
            );
            q.push_values(loggers.by_ref().take(n), |mut b, l| {
                b.push_bind(server.id(Uuid::new_v4()))
                    .push_bind(logger_id(&l.name))
                    .push_bind(l.total)
                    .push_bind(l.errors)
                    .push_bind(l.warnings)
                    .push_bind(naive(l.last_seen));
            });
            q.push(
                " ON DUPLICATE KEY UPDATE total = total + VALUES(total), total_errors = total_errors + VALUES(total_errors), \
                 total_warnings = total_warnings + VALUES(total_warnings), \
                 last_seen = GREATEST(COALESCE(last_seen, VALUES(last_seen)), VALUES(last_seen))",
            );
            q.build()
                .execute(&mut *tx)
                .await
                .context("upserting log cards")?;
        }
        let mut buckets = batch.buckets.iter();
        for n in statement_sizes(batch.buckets.iter().map(|_| 160), 7, server.max_statement) {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO log_panel_log_timeline_bucket (id, logger_id, bucket, unit, log_count, error_count, warning_count) ",
            );
            q.push_values(buckets.by_ref().take(n), |mut b, x| {
                b.push_bind(server.id(Uuid::new_v4()))
                    .push_bind(logger_id(&x.logger))
                    .push_bind(naive(x.bucket))
                    .push_bind(x.unit.as_str())
                    .push_bind(x.count)
                    .push_bind(x.errors)
                    .push_bind(x.warnings);
            });
            q.push(
                " ON DUPLICATE KEY UPDATE log_count = log_count + VALUES(log_count), \
                 error_count = error_count + VALUES(error_count), warning_count = warning_count + VALUES(warning_count)",
            );
            q.build()
                .execute(&mut *tx)
                .await
                .context("upserting timeline buckets")?;
        }
        tx.commit().await.context("committing a batch")?;
        Ok(())
    }

    async fn contains_row(&self, id: Uuid) -> Result<bool, StorageError> {
        let server = self.server().await?;
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM log_panel_log WHERE id = ?")
            .bind(server.id(id))
            .fetch_optional(&self.pool)
            .await
            .context("looking up a row")?;
        Ok(found.is_some())
    }

    async fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StorageError> {
        let server = self.server().await?;
        let mut found = HashSet::new();
        for part in ids.chunks(super::ID_LOOKUP_CHUNK) {
            let mut q = QueryBuilder::<MySql>::new(
                "SELECT CAST(id AS CHAR) FROM log_panel_log WHERE id IN (",
            );
            let mut list = q.separated(", ");
            for id in part {
                list.push_bind(server.id(*id));
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
            .begin()
            .await
            .context("starting a MySQL transaction")?;
        let found = sqlx::query(
            "SELECT CAST(id AS CHAR), `timestamp`, level, logger_name FROM log_panel_log WHERE `timestamp` < ? \
             ORDER BY `timestamp` LIMIT ? FOR UPDATE SKIP LOCKED",
        )
        .bind(naive(cutoff))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .context("selecting the oldest rows")?;
        let mut agg = Aggregator::new(tz);
        let mut ids = Vec::with_capacity(found.len());
        for r in &found {
            let ts: NaiveDateTime = r.get(1);
            let level: String = r.get(2);
            let logger: String = r.get(3);
            agg.add_stored(&logger, ts.and_utc(), &level);
            ids.push(r.get::<String, _>(0));
        }
        for part in ids.chunks(1000) {
            for head in [
                "DELETE FROM log_panel_log_message_chunk WHERE log_id IN (",
                "DELETE FROM log_panel_log WHERE id IN (",
            ] {
                let mut q = QueryBuilder::<MySql>::new(head);
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
        for l in &loggers {
            sqlx::query(
                "UPDATE log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 SET c.total = GREATEST(CAST(c.total AS SIGNED) - ?, 0), \
                 c.total_errors = GREATEST(CAST(c.total_errors AS SIGNED) - ?, 0), \
                 c.total_warnings = GREATEST(CAST(c.total_warnings AS SIGNED) - ?, 0) WHERE l.name = ?",
            )
            .bind(l.total)
            .bind(l.errors)
            .bind(l.warnings)
            .bind(&l.name)
            .execute(&mut *tx)
            .await
            .context("subtracting from log cards")?;
            sqlx::query(
                "DELETE c FROM log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 WHERE l.name = ? AND c.total = 0",
            )
            .bind(&l.name)
            .execute(&mut *tx)
            .await
            .context("removing empty log cards")?;
            sqlx::query(
                "UPDATE log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 SET c.last_seen = (SELECT MAX(g.`timestamp`) FROM log_panel_log g WHERE g.logger_name = l.name) \
                 WHERE l.name = ? AND c.last_seen <= ?",
            )
            .bind(&l.name)
            .bind(naive(l.last_seen))
            .execute(&mut *tx)
            .await
            .context("updating last_seen")?;
        }
        for b in &buckets {
            sqlx::query(
                "UPDATE log_panel_log_timeline_bucket t JOIN log_panel_logger l ON l.id = t.logger_id \
                 SET t.log_count = GREATEST(CAST(t.log_count AS SIGNED) - ?, 0), \
                 t.error_count = GREATEST(CAST(t.error_count AS SIGNED) - ?, 0), \
                 t.warning_count = GREATEST(CAST(t.warning_count AS SIGNED) - ?, 0) \
                 WHERE l.name = ? AND t.bucket = ? AND t.unit = ?",
            )
            .bind(b.count)
            .bind(b.errors)
            .bind(b.warnings)
            .bind(&b.logger)
            .bind(naive(b.bucket))
            .bind(b.unit.as_str())
            .execute(&mut *tx)
            .await
            .context("subtracting from timeline buckets")?;
            sqlx::query(
                "DELETE t FROM log_panel_log_timeline_bucket t JOIN log_panel_logger l ON l.id = t.logger_id \
                 WHERE l.name = ? AND t.bucket = ? AND t.unit = ? AND t.log_count = 0",
            )
            .bind(&b.logger)
            .bind(naive(b.bucket))
            .bind(b.unit.as_str())
            .execute(&mut *tx)
            .await
            .context("removing empty timeline buckets")?;
        }
        tx.commit().await.context("committing a retention batch")?;
        Ok(ids.len())
    }

    async fn count_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_panel_log WHERE `timestamp` < ?")
            .bind(naive(cutoff))
            .fetch_one(&self.pool)
            .await
            .context("counting old rows")?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging MySQL")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_respect_bytes_and_placeholders() {
        assert_eq!(
            statement_sizes([10, 10, 10, 10].into_iter(), 10, 25),
            vec![2, 2]
        );
        assert_eq!(
            statement_sizes([100].into_iter(), 10, 25),
            vec![1],
            "one oversized row still goes"
        );
        let many = statement_sizes(std::iter::repeat_n(1, 10_000), 10, usize::MAX);
        assert_eq!(many, vec![6553, 3447]);
    }

    #[test]
    fn mariadb_uuid_detection() {
        assert!(mariadb_has_uuid("10.11.19-MariaDB-0+deb12u1"));
        assert!(!mariadb_has_uuid("10.6.12-MariaDB"));
        assert!(!mariadb_has_uuid("8.0.36"));
    }
}
