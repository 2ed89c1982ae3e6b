//! MySQL and MariaDB: rows and chunks by multi-row `INSERT`s sized under `max_allowed_packet`, counters
//! by `INSERT … ON DUPLICATE KEY UPDATE` in sorted key order, one transaction per batch. Ids are stored
//! as Django stores them: MariaDB >= 10.7 has a native `uuid` column (Django 5+ uses it), MySQL
//! `char(32)` hex; datetimes are naive UTC `datetime(6)`.

use super::schema::Migration;
use super::sql::{Dialect, PerCounter, Sql, SqlBackend};
use super::{Context, StorageError};
use crate::pipeline::batch::{Batch, Row};
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::query_builder::Separated;
use sqlx::{MySql, QueryBuilder, Row as _};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// What the server is, learned on first use.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// MariaDB >= 10.7: `uuid` columns (dashed text); otherwise `char(32)` hex.
    native_uuid: bool,
    /// Upper bound for one statement, from `@@max_allowed_packet`.
    max_statement: usize,
}

/// Writes into one MySQL or MariaDB database.
pub type MySqlBackend = SqlBackend<MySqlDialect>;

/// MySQL's and MariaDB's SQL: `?` placeholders, ids as the server's column type stores them, naive
/// UTC datetimes, multi-row `INSERT`s, and a named lock around migrations (DDL is not transactional).
pub struct MySqlDialect {
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
        let dialect = MySqlDialect {
            server: OnceCell::new(),
        };
        Ok(SqlBackend::new(pool, shown, dialect))
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

/// One multi-row `INSERT`: what precedes `VALUES`, what follows the rows, the placeholders per
/// row, and the error context.
struct Insert {
    head: &'static str,
    tail: &'static str,
    params: usize,
    what: &'static str,
}

impl Insert {
    /// Inserts `items` in as few statements as the packet and placeholder limits allow; `size`
    /// estimates a row's bytes, `push` binds its values.
    async fn run<T: Sync>(
        &self,
        tx: &mut MySqlConnection,
        max_statement: usize,
        items: &[T],
        size: impl Fn(&T) -> usize,
        mut push: impl FnMut(Separated<'_, MySql, &'static str>, &T) + Send,
    ) -> Result<(), StorageError> {
        let mut rest = items.iter();
        for n in statement_sizes(items.iter().map(size), self.params, max_statement) {
            let mut q = QueryBuilder::<MySql>::new(self.head);
            q.push_values(rest.by_ref().take(n), &mut push);
            q.push(self.tail);
            q.build().execute(&mut *tx).await.context(self.what)?;
        }
        Ok(())
    }
}

const INSERT_ROWS: Insert = Insert {
    head: "INSERT INTO log_panel_log (id, `timestamp`, level, logger_name, message, module, pathname, line_number, message_chunked, message_size) ",
    tail: "",
    params: 10,
    what: "inserting log rows",
};

const INSERT_CHUNKS: Insert = Insert {
    head: "INSERT INTO log_panel_log_message_chunk (id, log_id, `index`, text) ",
    tail: "",
    params: 4,
    what: "inserting message chunks",
};

const INSERT_LOGGERS: Insert = Insert {
    head: "INSERT INTO log_panel_logger (id, name) ",
    tail: " ON DUPLICATE KEY UPDATE name = name",
    params: 2,
    what: "inserting loggers",
};

const UPSERT_CARDS: Insert = Insert {
    head: "INSERT INTO log_panel_log_card (id, logger_id, total, total_errors, total_warnings, last_seen) ",
    tail: " ON DUPLICATE KEY UPDATE total = total + VALUES(total), total_errors = total_errors + VALUES(total_errors), \
         total_warnings = total_warnings + VALUES(total_warnings), \
         last_seen = GREATEST(COALESCE(last_seen, VALUES(last_seen)), VALUES(last_seen))",
    params: 6,
    what: "upserting log cards",
};

const UPSERT_BUCKETS: Insert = Insert {
    head: "INSERT INTO log_panel_log_timeline_bucket (id, logger_id, bucket, unit, log_count, error_count, warning_count) ",
    tail: " ON DUPLICATE KEY UPDATE log_count = log_count + VALUES(log_count), \
         error_count = error_count + VALUES(error_count), warning_count = warning_count + VALUES(warning_count)",
    params: 7,
    what: "upserting timeline buckets",
};

impl Dialect for MySqlDialect {
    type DB = MySql;
    type Id = String;
    type Time = NaiveDateTime;
    type Server = Server;
    type Migrating = PoolConnection<MySql>;

    const SQL: Sql = Sql {
        migrations_done: "SELECT name FROM django_migrations WHERE app = ?",
        record_migration: "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, ?)",
        contains_row: "SELECT 1 FROM log_panel_log WHERE id = ?",
        stored_ids: "SELECT CAST(id AS CHAR) FROM log_panel_log WHERE id",
        oldest_rows: "SELECT CAST(id AS CHAR), `timestamp`, level, logger_name FROM log_panel_log WHERE `timestamp` < ? \
             ORDER BY `timestamp` LIMIT ? FOR UPDATE SKIP LOCKED",
        delete_chunks: "DELETE FROM log_panel_log_message_chunk WHERE log_id",
        delete_rows: "DELETE FROM log_panel_log WHERE id",
        count_older: "SELECT COUNT(*) FROM log_panel_log WHERE `timestamp` < ?",
        subtract: Some(PerCounter {
            card: "UPDATE log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 SET c.total = GREATEST(CAST(c.total AS SIGNED) - ?, 0), \
                 c.total_errors = GREATEST(CAST(c.total_errors AS SIGNED) - ?, 0), \
                 c.total_warnings = GREATEST(CAST(c.total_warnings AS SIGNED) - ?, 0) WHERE l.name = ?",
            empty_card: "DELETE c FROM log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 WHERE l.name = ? AND c.total = 0",
            last_seen: "UPDATE log_panel_log_card c JOIN log_panel_logger l ON l.id = c.logger_id \
                 SET c.last_seen = (SELECT MAX(g.`timestamp`) FROM log_panel_log g WHERE g.logger_name = l.name) \
                 WHERE l.name = ? AND c.last_seen <= ?",
            bucket: "UPDATE log_panel_log_timeline_bucket t JOIN log_panel_logger l ON l.id = t.logger_id \
                 SET t.log_count = GREATEST(CAST(t.log_count AS SIGNED) - ?, 0), \
                 t.error_count = GREATEST(CAST(t.error_count AS SIGNED) - ?, 0), \
                 t.warning_count = GREATEST(CAST(t.warning_count AS SIGNED) - ?, 0) \
                 WHERE l.name = ? AND t.bucket = ? AND t.unit = ?",
            empty_bucket: "DELETE t FROM log_panel_log_timeline_bucket t JOIN log_panel_logger l ON l.id = t.logger_id \
                 WHERE l.name = ? AND t.bucket = ? AND t.unit = ? AND t.log_count = 0",
        }),
        begin_context: "starting a MySQL transaction",
        ping_context: "pinging MySQL",
    };
    const LOOKUP_IDS: usize = super::ID_LOOKUP_CHUNK;
    const DELETE_IDS: usize = 1000;

    async fn server(&self, pool: &MySqlPool) -> Result<Server, StorageError> {
        self.server
            .get_or_try_init(|| async {
                let row = sqlx::query("SELECT VERSION(), @@max_allowed_packet")
                    .fetch_one(pool)
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

    fn id(server: &Server, id: Uuid) -> String {
        server.id(id)
    }

    fn uuid(id: String) -> Option<Uuid> {
        Uuid::parse_str(&id).ok()
    }

    fn time(ts: DateTime<Utc>) -> NaiveDateTime {
        naive(ts)
    }

    fn utc(ts: NaiveDateTime) -> DateTime<Utc> {
        ts.and_utc()
    }

    fn push_ids(q: &mut QueryBuilder<MySql>, ids: &[String]) {
        q.push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        q.push(")");
    }

    /// MySQL DDL is not transactional: concurrent collectors are serialised with a named lock.
    async fn begin_migration(&self, pool: &MySqlPool) -> Result<Self::Migrating, StorageError> {
        let mut conn = pool.acquire().await.context("connecting to MySQL")?;
        sqlx::query("SELECT GET_LOCK('log_panel_collector_migrate', 60)")
            .execute(&mut *conn)
            .await
            .context("taking the migration lock")?;
        let made = sqlx::raw_sql(CREATE_DJANGO_MIGRATIONS)
            .execute(&mut *conn)
            .await
            .context("creating django_migrations");
        if let Err(e) = made {
            self.end_migration(conn, false).await?;
            return Err(e);
        }
        Ok(conn)
    }

    async fn end_migration(&self, mut conn: Self::Migrating, _: bool) -> Result<(), StorageError> {
        let _ = sqlx::query("SELECT RELEASE_LOCK('log_panel_collector_migrate')")
            .execute(&mut *conn)
            .await;
        Ok(())
    }

    fn migration_sql(m: &Migration) -> &'static str {
        m.mysql
    }

    /// One statement at a time, comment lines left out, with `char(32)` ids on MySQL.
    fn statements(server: &Server, sql: &str) -> Vec<String> {
        server
            .ddl(sql)
            .split(";\n")
            .map(|stmt| {
                let body: String = stmt
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                body.trim().trim_end_matches(';').to_string()
            })
            .filter(|body| !body.is_empty())
            .collect()
    }

    fn applied_at() -> Option<NaiveDateTime> {
        Some(naive(Utc::now()))
    }

    async fn write(
        &self,
        server: Server,
        tx: &mut MySqlConnection,
        batch: &Batch,
    ) -> Result<(), StorageError> {
        let max = server.max_statement;
        let row_size = |r: &Row| {
            r.message.len() + r.logger_name.len() + r.module.len() + r.pathname.len() + 300
        };
        INSERT_ROWS
            .run(tx, max, &batch.rows, row_size, |mut b, r| {
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
            })
            .await?;
        INSERT_CHUNKS
            .run(
                tx,
                max,
                &batch.chunks,
                |c| c.text.len() + 100,
                |mut b, c| {
                    b.push_bind(server.id(c.id))
                        .push_bind(server.id(c.log_id))
                        .push_bind(c.index)
                        .push_bind(&c.text);
                },
            )
            .await?;
        if batch.loggers.is_empty() {
            return Ok(());
        }
        INSERT_LOGGERS
            .run(
                tx,
                max,
                &batch.loggers,
                |l| l.name.len() + 60,
                |mut b, l| {
                    b.push_bind(server.id(Uuid::new_v4())).push_bind(&l.name);
                },
            )
            .await?;
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
        UPSERT_CARDS
            .run(
                tx,
                max,
                &batch.loggers,
                |l| l.name.len() + 120,
                |mut b, l| {
                    b.push_bind(server.id(Uuid::new_v4()))
                        .push_bind(logger_id(&l.name))
                        .push_bind(l.total)
                        .push_bind(l.errors)
                        .push_bind(l.warnings)
                        .push_bind(naive(l.last_seen));
                },
            )
            .await?;
        UPSERT_BUCKETS
            .run(
                tx,
                max,
                &batch.buckets,
                |_| 160,
                |mut b, x| {
                    b.push_bind(server.id(Uuid::new_v4()))
                        .push_bind(logger_id(&x.logger))
                        .push_bind(naive(x.bucket))
                        .push_bind(x.unit.as_str())
                        .push_bind(x.count)
                        .push_bind(x.errors)
                        .push_bind(x.warnings);
                },
            )
            .await
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
