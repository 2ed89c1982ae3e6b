//! Storage backends. One trait, [`Backend`]; each database implements only its dialect (how to send
//! rows, chunks and counter upserts). Chunking, aggregation, retries and batching live elsewhere
//! (`pipeline`), written once for all of them.

pub mod config;
pub mod mongo;
pub mod mysql;
pub mod pg_copy;
pub mod postgres;
pub mod schema;
pub mod sql;
pub mod sqlite;

use crate::pipeline::batch::Batch;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashSet;
use std::future::Future;
use uuid::Uuid;

pub use mongo::{MongoBackend, MongoSettings};
pub use mysql::MySqlBackend;
pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;

/// What storage calls return.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Why storage failed; delivery retries every one of them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// MongoDB: a counter kept changing under concurrent writers; the batch is retried.
    #[error("a counter document kept changing under concurrent writers")]
    Contention,
    /// A test asked for this failure (see `MongoBackend::fail_after_writes`).
    #[cfg(feature = "fault-injection")]
    #[error("injected failure (test)")]
    Injected,
    /// A test asked for this refusal of data (see `MongoBackend::refuse_messages_with`).
    #[error("document refused (test)")]
    InjectedRefusal,
    #[error("{context}: {source}")]
    Mongo {
        context: &'static str,
        #[source]
        source: Box<mongodb::error::Error>,
    },
    #[error("{context}: {source}")]
    Sql {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl StorageError {
    /// True when a migration failed because the objects it creates exist already: the panel's
    /// tables are there but `django_migrations` does not record them. Retrying cannot fix this; an
    /// operator must (see [`SCHEMA_CONFLICT_HELP`]).
    pub fn is_schema_conflict(&self) -> bool {
        let StorageError::Sql {
            source: sqlx::Error::Database(db),
            ..
        } = self
        else {
            return false;
        };
        if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            // table exists, duplicate column, duplicate key name
            return [1050, 1060, 1061].contains(&my.number());
        }
        let code = db.code().map(|c| c.to_string()).unwrap_or_default();
        // PostgreSQL duplicate_table, duplicate_column, duplicate_object; SQLite says it in words.
        ["42P07", "42701", "42710"].contains(&code.as_str())
            || db.message().contains("already exists")
    }

    /// True for errors that retrying the same data cannot fix: the database refused the data itself
    /// (data exceptions, constraint or size violations), not the connection. Delivery then splits the
    /// batch to set the offending record aside instead of retrying forever.
    pub fn is_permanent(&self) -> bool {
        match self {
            StorageError::Sql {
                source: sqlx::Error::Database(db),
                ..
            } => {
                if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    // data too long, bad value, packet too large, too many placeholders, FK, dup key
                    if [1406, 1366, 1292, 1153, 1301, 1390, 1452, 1062, 1264, 3140]
                        .contains(&my.number())
                    {
                        return true;
                    }
                }
                if !matches!(db.kind(), sqlx::error::ErrorKind::Other) {
                    return true; // unique, foreign key, not null or check violation
                }
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                code.starts_with("22") || code.starts_with("23") || code.starts_with("54")
            }
            StorageError::Mongo { source, .. } => match &*source.kind {
                mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
                    w.code != 11000
                }
                mongodb::error::ErrorKind::InsertMany(m) => m
                    .write_errors
                    .as_ref()
                    .is_some_and(|v| v.iter().any(|w| w.code != 11000)),
                mongodb::error::ErrorKind::BsonSerialization(_) => true,
                _ => false,
            },
            StorageError::InjectedRefusal => true,
            _ => false,
        }
    }
}

/// What an operator is told when the schema conflicts with `django_migrations`.
pub const SCHEMA_CONFLICT_HELP: &str = "the log_panel tables exist but django_migrations does not \
record the log_panel migrations, so the schema cannot be created or checked. If Django created \
these tables, record them with `python manage.py migrate log_panel --fake` (or insert the rows into \
django_migrations); if they are left from something else, drop the log_panel_* tables. Then start \
the collector again.";

/// Adds what was being done to a driver error.
pub(crate) trait Context<T> {
    fn context(self, what: &'static str) -> Result<T, StorageError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, what: &'static str) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Sql {
            context: what,
            source,
        })
    }
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migration names applied now (empty when Django or an earlier run had applied them all).
    pub applied: Vec<&'static str>,
}

/// A database the panel can read. Implement this to add one (see docs/custom-backend.md).
pub trait Backend: Send + Sync + 'static {
    /// For logs: engine and address, without the password.
    fn describe(&self) -> String;

    /// Creates the panel schema and records it in `django_migrations`, as Django's `migrate` would;
    /// does nothing on a database Django has already migrated.
    fn migrate(&self) -> impl Future<Output = Result<MigrationReport, StorageError>> + Send;

    /// Writes rows, chunks and counter increments of one batch, all or nothing.
    fn write_batch(&self, batch: &Batch) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// True when a row with this id is stored. Delivery asks before retrying a batch, so a commit
    /// whose acknowledgement was lost (connection cut at the wrong moment) is not written twice.
    fn contains_row(&self, id: Uuid) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// Which of these row ids are stored. Delivery asks for records replayed from the spool, so a
    /// record committed just before a crash is neither written nor counted again. The default asks
    /// row by row; the shipped backends ask in one query per chunk of ids.
    fn existing_ids(
        &self,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<HashSet<Uuid>, StorageError>> + Send {
        async move {
            let mut found = HashSet::new();
            for id in ids {
                if self.contains_row(*id).await? {
                    found.insert(*id);
                }
            }
            Ok(found)
        }
    }

    /// Retention: in one transaction (where the database has them), deletes up to `limit` of the
    /// oldest rows with `timestamp < cutoff`, their chunks first, and subtracts exactly what it deleted
    /// from the cards and buckets (computed with [`crate::pipeline::batch::Aggregator`] in `tz`),
    /// removing counters that reach zero. Returns the number of rows deleted.
    fn delete_batch(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
        tz: Tz,
    ) -> impl Future<Output = Result<usize, StorageError>> + Send;

    /// Rows with `timestamp < cutoff` (what a retention pass would delete).
    fn count_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Cheap round trip, for readiness.
    fn ping(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Called once at stop, after delivery has ended or been aborted (writes being cancelled may
    /// still be in flight), and by the one-shot `migrate` and `retention` commands: closes
    /// connections cleanly, so that SQLite's closing checkpoint runs and removes the `-wal` file
    /// instead of racing the process exit. The backend is not used after it. The default does nothing.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The backends this build ships, chosen by URL scheme.
pub enum AnyBackend {
    Sqlite(SqliteBackend),
    Postgres(PostgresBackend),
    MySql(MySqlBackend),
    Mongo(MongoBackend),
}

impl AnyBackend {
    /// Opens (lazily: no connection is made until first use) the backend for `url`.
    pub fn open(url: &str, writers: usize) -> Result<AnyBackend, StorageError> {
        Self::open_with(url, writers, &MongoSettings::default(), Tz::UTC)
    }

    /// Opens the backend for the storage config (MongoDB also takes its connection settings).
    pub fn from_config(
        cfg: &config::StorageConfig,
        writers: usize,
    ) -> Result<AnyBackend, StorageError> {
        Self::open_with(&cfg.url, writers, &cfg.mongo(), cfg.time_zone)
    }

    fn open_with(
        url: &str,
        writers: usize,
        mongo: &MongoSettings,
        time_zone: Tz,
    ) -> Result<AnyBackend, StorageError> {
        let scheme = url.split("://").next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(AnyBackend::Sqlite(SqliteBackend::open(url)?)),
            "postgres" | "postgresql" => {
                Ok(AnyBackend::Postgres(PostgresBackend::open(url, writers)?))
            }
            "mysql" | "mariadb" => Ok(AnyBackend::MySql(MySqlBackend::open(url, writers)?)),
            "mongodb" | "mongodb+srv" => Ok(AnyBackend::Mongo(
                MongoBackend::open(url, mongo)?.with_time_zone(time_zone),
            )),
            _ => Err(StorageError::Url {
                url: url.to_string(),
                reason: "unsupported scheme (use sqlite://, postgres://, mysql:// or mongodb://)"
                    .into(),
            }),
        }
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            AnyBackend::Sqlite($b) => $call,
            AnyBackend::Postgres($b) => $call,
            AnyBackend::MySql($b) => $call,
            AnyBackend::Mongo($b) => $call,
        }
    };
}

impl Backend for AnyBackend {
    fn describe(&self) -> String {
        each!(self, b => b.describe())
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        each!(self, b => b.migrate().await)
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        each!(self, b => b.write_batch(batch).await)
    }

    async fn contains_row(&self, id: Uuid) -> Result<bool, StorageError> {
        each!(self, b => b.contains_row(id).await)
    }

    async fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StorageError> {
        each!(self, b => b.existing_ids(ids).await)
    }

    async fn delete_batch(&self, cutoff: DateTime<Utc>, limit: usize, tz: Tz) -> Result<usize> {
        each!(self, b => b.delete_batch(cutoff, limit, tz).await)
    }

    async fn count_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        each!(self, b => b.count_older_than(cutoff).await)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        each!(self, b => b.ping().await)
    }

    async fn close(&self) {
        each!(self, b => b.close().await)
    }
}

/// Ids per `IN (...)` lookup: far below every dialect's placeholder limit.
pub(crate) const ID_LOOKUP_CHUNK: usize = 500;
