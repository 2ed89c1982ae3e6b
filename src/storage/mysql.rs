//! MySQL and MariaDB: rows and chunks by multi-row `INSERT`s sized under `max_allowed_packet`, counters
//! by `INSERT … ON DUPLICATE KEY UPDATE` in sorted key order, one transaction per batch. Ids are stored
//! as Django stores them: MariaDB >= 10.7 has a native `uuid` column (Django 5+ uses it), MySQL
//! `char(32)` hex; datetimes are naive UTC `datetime(6)`.

use super::schema::Engine;
use super::sql::{
    CounterUpserts, Dialect, Insert, Limits, Migrating, PerCounter, RowInserts, Sql, SqlBackend,
    address, parse_url, writers_pool,
};
use super::{Context, StorageError};
use crate::pipeline::batch::Batch;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::{MySql, Row as _};
use std::collections::HashMap;
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

const CREATE_DJANGO_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)";

fn naive(ts: DateTime<Utc>) -> NaiveDateTime {
    ts.naive_utc()
}

impl MySqlBackend {
    /// `mysql://user:pass@host:3306/db` (also `mariadb://`).
    pub fn open(url: &str, writers: usize) -> Result<Self, StorageError> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let opts: MySqlConnectOptions = parse_url(&url)?;
        let shown = address(
            "mysql",
            opts.get_host(),
            opts.get_port(),
            opts.get_database(),
        );
        let pool = writers_pool(writers)
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

const INSERT_LOGGERS: Insert<MySql> = Insert::new(
    "INSERT INTO log_panel_logger (id, name) ",
    " ON DUPLICATE KEY UPDATE name = name",
    2,
    "inserting loggers",
);

const COUNTERS: CounterUpserts<MySql> = CounterUpserts {
    cards: Insert::new(
        "INSERT INTO log_panel_log_card (id, logger_id, total, total_errors, total_warnings, last_seen) ",
        " ON DUPLICATE KEY UPDATE total = total + VALUES(total), total_errors = total_errors + VALUES(total_errors), \
             total_warnings = total_warnings + VALUES(total_warnings), \
             last_seen = GREATEST(COALESCE(last_seen, VALUES(last_seen)), VALUES(last_seen))",
        6,
        "upserting log cards",
    ),
    buckets: Insert::new(
        "INSERT INTO log_panel_log_timeline_bucket (id, logger_id, bucket, unit, log_count, error_count, warning_count) ",
        " ON DUPLICATE KEY UPDATE log_count = log_count + VALUES(log_count), \
             error_count = error_count + VALUES(error_count), warning_count = warning_count + VALUES(warning_count)",
        7,
        "upserting timeline buckets",
    ),
};

impl Dialect for MySqlDialect {
    type DB = MySql;
    type Id = String;
    type Time = NaiveDateTime;
    type Server = Server;

    const ENGINE: Engine = Engine::MySql;
    const SQL: Sql = Sql {
        has_django_migrations: None,
        create_django_migrations: CREATE_DJANGO_MIGRATIONS,
        stored_ids: "SELECT CAST(id AS CHAR) FROM log_panel_log WHERE id",
        oldest_rows: "SELECT CAST(id AS CHAR), `timestamp`, level, logger_name FROM log_panel_log WHERE `timestamp` < ? \
             ORDER BY `timestamp` LIMIT ? FOR UPDATE SKIP LOCKED",
        count_older: "SELECT COUNT(*) FROM log_panel_log WHERE `timestamp` < ?",
        inserts: Some(RowInserts {
            rows: "INSERT INTO log_panel_log (id, `timestamp`, level, logger_name, message, module, pathname, line_number, message_chunked, message_size) ",
            chunks: "INSERT INTO log_panel_log_message_chunk (id, log_id, `index`, text) ",
        }),
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

    /// DDL is not transactional: concurrent collectors are serialised with a named lock.
    async fn begin_migration(&self, pool: &MySqlPool) -> Result<Migrating<MySql>, StorageError> {
        let mut conn = pool.acquire().await.context("connecting to MySQL")?;
        sqlx::query("SELECT GET_LOCK('log_panel_collector_migrate', 60)")
            .execute(&mut *conn)
            .await
            .context("taking the migration lock")?;
        Ok(Migrating::Locked(
            conn,
            "SELECT RELEASE_LOCK('log_panel_collector_migrate')",
        ))
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

    fn limits(server: &Server) -> Limits {
        Limits {
            bytes: server.max_statement,
            params: 65_535,
            rows: None,
        }
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
        let limits = Self::limits(&server);
        if batch.loggers.is_empty() {
            return Ok(());
        }
        INSERT_LOGGERS
            .run(
                tx,
                limits,
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
        COUNTERS
            .run(
                tx,
                limits,
                batch,
                || server.id(Uuid::new_v4()),
                |name| ids[name].clone(),
                naive,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_uuid_detection() {
        assert!(mariadb_has_uuid("10.11.19-MariaDB-0+deb12u1"));
        assert!(!mariadb_has_uuid("10.6.12-MariaDB"));
        assert!(!mariadb_has_uuid("8.0.36"));
    }
}
