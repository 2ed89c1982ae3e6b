//! The SQL backends, written once. [`SqlBackend`] holds the algorithms every SQL database shares
//! (migrating as Django does, the id lookups, a retention batch, the counts) and a [`Dialect`] holds
//! what differs: the SQL text with its quoting and placeholders, how ids and datetimes are bound, how a
//! migration is serialised, and how a batch is written (COPY, multi-row `INSERT`s or row by row).
//! Adding a SQL database means one file that implements [`Dialect`].

use super::schema::{APP, Engine, has_statements, pending};
use super::{Backend, Context, MigrationReport, Result, StorageError};
use crate::pipeline::batch::{Aggregator, Batch, BucketTotals, Chunk, LoggerTotals, Row};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::database::HasStatementCache;
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool,
    QueryBuilder, Row as _, Transaction, Type, query::Query,
};
use std::collections::HashSet;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

mod insert;
pub use insert::{CounterUpserts, Insert, Limits};

/// A connection of the dialect's database (what a transaction dereferences to).
pub type Conn<D> = <<D as Dialect>::DB as Database>::Connection;

/// The SQL the shared algorithms send, in one dialect's quoting and placeholder style.
pub struct Sql {
    /// Where given: tells whether `django_migrations` exists, so that it is created only when not.
    pub has_django_migrations: Option<&'static str>,
    /// Creates `django_migrations` as Django does.
    pub create_django_migrations: &'static str,
    /// Returns the ids of `log_panel_log` rows (`WHERE id` is completed by [`Dialect::push_ids`]).
    pub stored_ids: &'static str,
    /// Binds cutoff and limit; returns id, timestamp, level and logger name of the oldest rows.
    pub oldest_rows: &'static str,
    /// Binds the cutoff; counts the rows older than it.
    pub count_older: &'static str,
    /// Rows and chunks by multi-row `INSERT`s (see [`Dialect::limits`]); `None`: [`Dialect::write`]
    /// writes them.
    pub inserts: Option<RowInserts>,
    /// Retention's statements per counter; `None`: [`Dialect::subtract_in_bulk`] does it.
    pub subtract: Option<PerCounter>,
    /// Context of a failed `BEGIN`.
    pub begin_context: &'static str,
    /// Context of a failed ping.
    pub ping_context: &'static str,
}

/// The heads (all that precedes `VALUES`) of the `INSERT`s of rows and chunks, columns in the order
/// of [`crate::pipeline::batch::Row`] and [`crate::pipeline::batch::Chunk`].
pub struct RowInserts {
    pub rows: &'static str,
    pub chunks: &'static str,
}

/// Retention's subtraction, one statement per card and per bucket, in the order the counters
/// were sorted in (the order every writer locks them in).
pub struct PerCounter {
    /// Binds total, errors, warnings, logger name; subtracts from a card, not below zero.
    pub card: &'static str,
    /// Binds the logger name; deletes its card when its total reached zero.
    pub empty_card: &'static str,
    /// Binds logger name and the latest deleted timestamp; recomputes `last_seen` when the latest row
    /// may have been deleted.
    pub last_seen: &'static str,
    /// Binds count, errors, warnings, logger name, bucket start, unit; subtracts from a bucket.
    pub bucket: &'static str,
    /// Binds logger name, bucket start, unit; deletes the bucket when its count reached zero.
    pub empty_bucket: &'static str,
}

/// What one SQL database does its own way. The shared algorithms are in [`SqlBackend`].
pub trait Dialect: Send + Sync + 'static {
    /// The sqlx driver.
    type DB: Database + HasStatementCache;
    /// An id as bound and read back: a `uuid` where the column is one, else Django's text form.
    type Id: for<'q> Encode<'q, Self::DB>
        + for<'r> Decode<'r, Self::DB>
        + Type<Self::DB>
        + Clone
        + Send
        + Sync
        + 'static;
    /// A datetime as bound and read back (Django stores naive UTC where the type has no zone).
    type Time: for<'q> Encode<'q, Self::DB> + for<'r> Decode<'r, Self::DB> + Type<Self::DB> + Send;
    /// What the server is, learned once (MySQL: its id column type and statement size).
    type Server: Copy + Send + Sync;

    /// The shared algorithms' SQL text.
    const SQL: Sql;
    /// Which of Django's migration texts this database runs.
    const ENGINE: Engine;
    /// `None`: `BEGIN`; else the statement that starts a write transaction.
    const BEGIN: Option<&'static str> = None;
    /// Ids per lookup statement.
    const LOOKUP_IDS: usize;
    /// Ids per retention delete.
    const DELETE_IDS: usize;

    /// Learns (on first use) what the server is.
    fn server(
        &self,
        pool: &Pool<Self::DB>,
    ) -> impl Future<Output = Result<Self::Server, StorageError>> + Send;
    /// The id as this database stores it.
    fn id(server: &Self::Server, id: Uuid) -> Self::Id;
    /// An id read back, when it parses.
    fn uuid(id: Self::Id) -> Option<Uuid>;
    /// The datetime as this database stores it.
    fn time(ts: DateTime<Utc>) -> Self::Time;
    /// A datetime read back.
    fn utc(ts: Self::Time) -> DateTime<Utc>;
    /// Completes `q` with the condition "in these ids": ` IN (…)`, or an array where the database has them.
    fn push_ids(q: &mut QueryBuilder<Self::DB>, ids: &[Self::Id]) {
        q.push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        q.push(")");
    }

    /// Connects for a migration, serialised against other collectors' migrations.
    fn begin_migration(
        &self,
        pool: &Pool<Self::DB>,
    ) -> impl Future<Output = Result<Migrating<Self::DB>, StorageError>> + Send;
    /// The DDL cut into what one `execute` may send.
    fn statements(server: &Self::Server, sql: &str) -> Vec<String> {
        let _ = server;
        vec![sql.to_string()]
    }
    /// How large one multi-row `INSERT` of [`Sql::inserts`] may be; by default, limited only by
    /// the placeholders of PostgreSQL's and MySQL's protocols.
    fn limits(server: &Self::Server) -> Limits {
        let _ = server;
        Limits {
            bytes: usize::MAX,
            params: 65_535,
            rows: None,
        }
    }
    /// The `applied` time to bind when recording a migration (`None`: the server's `now()`).
    fn applied_at() -> Option<Self::Time>;

    /// Writes what the shared `INSERT`s of [`Sql::inserts`] did not of a batch (the counter
    /// increments, or everything), inside the open transaction.
    fn write(
        &self,
        server: Self::Server,
        tx: &mut Conn<Self>,
        batch: &Batch,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Retention's subtraction for a dialect without [`Sql::subtract`].
    fn subtract_in_bulk(
        &self,
        tx: &mut Conn<Self>,
        loggers: &[LoggerTotals],
        buckets: &[BucketTotals],
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        let _ = (tx, loggers, buckets);
        async { Ok(()) }
    }
}

/// The connect options in a storage URL.
pub(crate) fn parse_url<O: FromStr<Err = sqlx::Error>>(url: &str) -> Result<O> {
    O::from_str(url).map_err(|e| StorageError::Url {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// A network database's pool: `writers` connections plus one for health checks, each waited for
/// at most 3 s.
pub(crate) fn writers_pool<DB: Database>(writers: usize) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(writers as u32 + 1)
        .acquire_timeout(Duration::from_secs(3))
}

/// What logs say of a network database: engine and address, without the password.
pub(crate) fn address(engine: &str, host: &str, port: u16, database: Option<&str>) -> String {
    format!("{engine} {host}:{port}/{}", database.unwrap_or(""))
}

/// Runs `q` on `conn`; `what` says what failed.
async fn execute<'q, DB: Database>(
    conn: &mut DB::Connection,
    q: Query<'q, DB, DB::Arguments>,
    what: &'static str,
) -> Result<(), StorageError>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    q.execute(conn).await.context(what)?;
    Ok(())
}

/// The connection a migration runs on.
pub enum Migrating<DB: Database> {
    /// A transaction, committed when the migration succeeded (DDL is transactional).
    Transaction(Transaction<'static, DB>),
    /// A session holding a named lock, released by this statement at the end (DDL commits).
    Locked(PoolConnection<DB>, &'static str),
}

impl<DB: Database> Deref for Migrating<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Migrating::Transaction(tx) => tx,
            Migrating::Locked(conn, _) => conn,
        }
    }
}

impl<DB: Database> DerefMut for Migrating<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Migrating::Transaction(tx) => tx,
            Migrating::Locked(conn, _) => conn,
        }
    }
}

/// Writes into one SQL database, in its [`Dialect`].
pub struct SqlBackend<D: Dialect> {
    pool: Pool<D::DB>,
    shown: String,
    dialect: D,
}

impl<D: Dialect> SqlBackend<D> {
    /// A backend on `pool`; `shown` is what logs say (engine and address, no password).
    pub(crate) fn new(pool: Pool<D::DB>, shown: String, dialect: D) -> Self {
        SqlBackend {
            pool,
            shown,
            dialect,
        }
    }

    /// The pool, for tests that check a connection's settings.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &Pool<D::DB> {
        &self.pool
    }

    /// Starts a write transaction the dialect's way.
    async fn begin(&self) -> Result<Transaction<'static, D::DB>, StorageError> {
        match D::BEGIN {
            None => self.pool.begin().await,
            Some(begin) => self.pool.begin_with(begin).await,
        }
        .context(D::SQL.begin_context)
    }
}

impl<D: Dialect> Backend for SqlBackend<D>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    <D::DB as Database>::Arguments: IntoArguments<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'r> String: Decode<'r, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Decode<'q, D::DB> + Type<D::DB>,
    for<'q> i32: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Decode<'q, D::DB> + Type<D::DB>,
{
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let mut session = self.dialect.begin_migration(&self.pool).await?;
        let conn: &mut Conn<D> = &mut session;
        let result = async {
            let exists = match D::SQL.has_django_migrations {
                Some(sql) => sqlx::query_scalar(sql)
                    .fetch_one(&mut *conn)
                    .await
                    .context("looking for django_migrations")?,
                None => false,
            };
            if !exists {
                sqlx::raw_sql(D::SQL.create_django_migrations)
                    .execute(&mut *conn)
                    .await
                    .context("creating django_migrations")?;
            }
            let mut q = QueryBuilder::new("SELECT name FROM django_migrations WHERE app = ");
            q.push_bind(APP);
            let done: Vec<String> = q
                .build()
                .fetch_all(&mut *conn)
                .await
                .context("reading django_migrations")?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut applied = Vec::new();
            for m in pending(&done) {
                let sql = m.sql(D::ENGINE);
                if has_statements(sql) {
                    for stmt in D::statements(&server, sql) {
                        sqlx::raw_sql(AssertSqlSafe(stmt))
                            .execute(&mut *conn)
                            .await
                            .context("applying a log_panel migration")?;
                    }
                }
                let mut q = QueryBuilder::new(
                    "INSERT INTO django_migrations (app, name, applied) VALUES (",
                );
                q.push_bind(APP).push(", ").push_bind(m.name).push(", ");
                match D::applied_at() {
                    Some(at) => q.push_bind(at),
                    None => q.push("now()"),
                };
                q.push(")")
                    .build()
                    .execute(&mut *conn)
                    .await
                    .context("recording a migration in django_migrations")?;
                applied.push(m.name);
            }
            Ok(MigrationReport { applied })
        }
        .await;
        match session {
            Migrating::Transaction(tx) if result.is_ok() => {
                tx.commit().await.context("committing migrations")?
            }
            Migrating::Transaction(_) => {}
            Migrating::Locked(mut conn, unlock) => {
                let _ = sqlx::query(unlock).execute(&mut *conn).await;
            }
        }
        result
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        // Bound before the transaction, so the connection is busy only with executing them.
        let inserts = D::SQL.inserts.as_ref().map(|inserts| {
            let limits = D::limits(&server);
            let row_size = |r: &Row| {
                r.message.len() + r.logger_name.len() + r.module.len() + r.pathname.len() + 300
            };
            let rows = Insert::<D::DB>::new(inserts.rows, "", 10, "inserting log rows").build(
                limits,
                &batch.rows,
                row_size,
                |mut b, r| {
                    b.push_bind(D::id(&server, r.id))
                        .push_bind(D::time(r.timestamp))
                        .push_bind(r.level.as_str())
                        .push_bind(r.logger_name.as_str())
                        .push_bind(r.message.as_str())
                        .push_bind(r.module.as_str())
                        .push_bind(r.pathname.as_str())
                        .push_bind(r.line_number)
                        .push_bind(r.message_chunked)
                        .push_bind(r.message_size);
                },
            );
            let chunk_size = |c: &Chunk| c.text.len() + 100;
            let chunks = Insert::<D::DB>::new(inserts.chunks, "", 4, "inserting message chunks")
                .build(limits, &batch.chunks, chunk_size, |mut b, c| {
                    b.push_bind(D::id(&server, c.id))
                        .push_bind(D::id(&server, c.log_id))
                        .push_bind(c.index)
                        .push_bind(c.text.as_str());
                });
            (rows, chunks)
        });
        let mut tx = self.begin().await?;
        if let Some((rows, chunks)) = inserts {
            rows.execute(&mut tx).await?;
            chunks.execute(&mut tx).await?;
        }
        self.dialect.write(server, &mut tx, batch).await?;
        tx.commit().await.context("committing a batch")?;
        // The pool takes the connection back in a task spawned here, which tokio puts in this
        // worker's LIFO slot, where no other worker can steal it. Without a yield it waited until
        // this task had built and bound its next batch (8-9 ms per batch on SQLite, where the other
        // writer waits for the one connection: 13 % of the write time, docs/benchmarks.md).
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn contains_row(&self, id: Uuid) -> Result<bool, StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let mut q = QueryBuilder::new("SELECT 1 FROM log_panel_log WHERE id = ");
        q.push_bind(D::id(&server, id));
        let found = q
            .build()
            .fetch_optional(&self.pool)
            .await
            .context("looking up a row")?;
        Ok(found.is_some())
    }

    async fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let ids: Vec<D::Id> = ids.iter().map(|id| D::id(&server, *id)).collect();
        let mut found = HashSet::new();
        for part in ids.chunks(D::LOOKUP_IDS) {
            let mut q = QueryBuilder::new(D::SQL.stored_ids);
            D::push_ids(&mut q, part);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .context("looking up stored rows")?;
            found.extend(rows.iter().filter_map(|r| D::uuid(r.get(0))));
        }
        Ok(found)
    }

    async fn delete_batch(&self, cutoff: DateTime<Utc>, limit: usize, tz: Tz) -> Result<usize> {
        let mut tx = self.begin().await?;
        let found = sqlx::query(D::SQL.oldest_rows)
            .bind(D::time(cutoff))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await
            .context("selecting the oldest rows")?;
        let mut agg = Aggregator::new(tz);
        let mut ids: Vec<D::Id> = Vec::with_capacity(found.len());
        for r in &found {
            let level: String = r.get(2);
            let logger: String = r.get(3);
            agg.add_stored(&logger, D::utc(r.get(1)), &level);
            ids.push(r.get(0));
        }
        for part in ids.chunks(D::DELETE_IDS) {
            for (head, what) in [
                (
                    "DELETE FROM log_panel_log_message_chunk WHERE log_id",
                    "deleting old message chunks",
                ),
                ("DELETE FROM log_panel_log WHERE id", "deleting old rows"),
            ] {
                let mut q = QueryBuilder::new(head);
                D::push_ids(&mut q, part);
                q.build().execute(&mut *tx).await.context(what)?;
            }
        }
        let (loggers, buckets) = agg.finish();
        if let Some(s) = &D::SQL.subtract {
            for l in &loggers {
                let name = l.name.as_str();
                let card = sqlx::query(s.card)
                    .bind(l.total)
                    .bind(l.errors)
                    .bind(l.warnings);
                execute(&mut tx, card.bind(name), "subtracting from log cards").await?;
                let empty = sqlx::query(s.empty_card).bind(name);
                execute(&mut tx, empty, "removing empty log cards").await?;
                let seen = sqlx::query(s.last_seen)
                    .bind(name)
                    .bind(D::time(l.last_seen));
                execute(&mut tx, seen, "updating last_seen").await?;
            }
            for b in &buckets {
                let (name, at, unit) = (b.logger.as_str(), D::time(b.bucket), b.unit.as_str());
                let counts = sqlx::query(s.bucket)
                    .bind(b.count)
                    .bind(b.errors)
                    .bind(b.warnings);
                let bucket = counts.bind(name).bind(at).bind(unit);
                execute(&mut tx, bucket, "subtracting from timeline buckets").await?;
                let empty = sqlx::query(s.empty_bucket)
                    .bind(name)
                    .bind(D::time(b.bucket))
                    .bind(unit);
                execute(&mut tx, empty, "removing empty timeline buckets").await?;
            }
        } else {
            self.dialect
                .subtract_in_bulk(&mut tx, &loggers, &buckets)
                .await?;
        }
        tx.commit().await.context("committing a retention batch")?;
        Ok(ids.len())
    }

    async fn count_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar(D::SQL.count_older)
            .bind(D::time(cutoff))
            .fetch_one(&self.pool)
            .await
            .context("counting old rows")?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context(D::SQL.ping_context)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
