//! The SQL backends, written once. [`SqlBackend`] holds the algorithms every SQL database shares
//! (migrating as Django does, the id lookups, a retention batch, the counts) and a [`Dialect`] holds
//! what differs: the SQL text with its quoting and placeholders, how ids and datetimes are bound, how a
//! migration is serialised, and how a batch is written (COPY, multi-row `INSERT`s or row by row).
//! Adding a SQL database means one file that implements [`Dialect`].

use super::schema::{APP, Migration, has_statements, pending};
use super::{Backend, Context, MigrationReport, StorageError};
use crate::pipeline::batch::{Aggregator, Batch, BucketTotals, LoggerTotals};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool,
    QueryBuilder, Row as _, Type,
};
use std::collections::HashSet;
use std::future::Future;
use std::ops::DerefMut;
use uuid::Uuid;

/// A connection of the dialect's database (what a transaction dereferences to).
pub type Conn<D> = <<D as Dialect>::DB as Database>::Connection;

/// The SQL the shared algorithms send, in one dialect's quoting and placeholder style.
pub struct Sql {
    /// Binds the app label; returns the names of the applied migrations.
    pub migrations_done: &'static str,
    /// Binds app and name, and the time where [`Dialect::applied_at`] gives one.
    pub record_migration: &'static str,
    /// Binds an id; returns a row when `log_panel_log` has it.
    pub contains_row: &'static str,
    /// Returns the ids of `log_panel_log` rows; completed by [`Dialect::push_ids`].
    pub stored_ids: &'static str,
    /// Binds cutoff and limit; returns id, timestamp, level and logger name of the oldest rows.
    pub oldest_rows: &'static str,
    /// Deletes message chunks by `log_id`; completed by [`Dialect::push_ids`].
    pub delete_chunks: &'static str,
    /// Deletes rows by `id`; completed by [`Dialect::push_ids`].
    pub delete_rows: &'static str,
    /// Binds the cutoff; counts the rows older than it.
    pub count_older: &'static str,
    /// Retention's statements per counter; `None`: [`Dialect::subtract_in_bulk`] does it.
    pub subtract: Option<PerCounter>,
    /// Context of a failed `BEGIN`.
    pub begin_context: &'static str,
    /// Context of a failed ping.
    pub ping_context: &'static str,
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
    type DB: Database;
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
    /// The connection a migration runs on: a transaction, or a session holding a lock.
    type Migrating: DerefMut<Target = Conn<Self>> + Send;

    /// The shared algorithms' SQL text.
    const SQL: Sql;
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
    /// Completes `q` with the condition "in these ids" (a list, or an array where the database has them).
    fn push_ids(q: &mut QueryBuilder<Self::DB>, ids: &[Self::Id]);

    /// Connects for a migration, serialised against other collectors, with `django_migrations` made.
    fn begin_migration(
        &self,
        pool: &Pool<Self::DB>,
    ) -> impl Future<Output = Result<Self::Migrating, StorageError>> + Send;
    /// Ends a migration: commits (when `ok`) or releases the lock.
    fn end_migration(
        &self,
        session: Self::Migrating,
        ok: bool,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// This database's DDL of a migration.
    fn migration_sql(m: &Migration) -> &'static str;
    /// The DDL cut into what one `execute` may send.
    fn statements(server: &Self::Server, sql: &str) -> Vec<String> {
        let _ = server;
        vec![sql.to_string()]
    }
    /// The `applied` time to bind when recording a migration (`None`: the SQL says `now()`).
    fn applied_at() -> Option<Self::Time>;

    /// Writes the rows, chunks and counter increments of a batch inside the open transaction.
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

    /// Starts a write transaction the dialect's way.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, D::DB>, StorageError> {
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
{
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let mut session = self.dialect.begin_migration(&self.pool).await?;
        let conn: &mut Conn<D> = &mut session;
        let result = async {
            let done: Vec<String> = sqlx::query(D::SQL.migrations_done)
                .bind(APP)
                .fetch_all(&mut *conn)
                .await
                .context("reading django_migrations")?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut applied = Vec::new();
            for m in pending(&done) {
                let sql = D::migration_sql(m);
                if has_statements(sql) {
                    for stmt in D::statements(&server, sql) {
                        sqlx::raw_sql(AssertSqlSafe(stmt))
                            .execute(&mut *conn)
                            .await
                            .context("applying a log_panel migration")?;
                    }
                }
                let mut record = sqlx::query(D::SQL.record_migration).bind(APP).bind(m.name);
                if let Some(at) = D::applied_at() {
                    record = record.bind(at);
                }
                record
                    .execute(&mut *conn)
                    .await
                    .context("recording a migration in django_migrations")?;
                applied.push(m.name);
            }
            Ok(MigrationReport { applied })
        }
        .await;
        self.dialect.end_migration(session, result.is_ok()).await?;
        result
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let mut tx = self.begin().await?;
        self.dialect.write(server, &mut tx, batch).await?;
        tx.commit().await.context("committing a batch")
    }

    async fn contains_row(&self, id: Uuid) -> Result<bool, StorageError> {
        let server = self.dialect.server(&self.pool).await?;
        let found = sqlx::query(D::SQL.contains_row)
            .bind(D::id(&server, id))
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

    async fn delete_batch(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
        tz: Tz,
    ) -> Result<usize, StorageError> {
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
                (D::SQL.delete_chunks, "deleting old message chunks"),
                (D::SQL.delete_rows, "deleting old rows"),
            ] {
                let mut q = QueryBuilder::new(head);
                D::push_ids(&mut q, part);
                q.build().execute(&mut *tx).await.context(what)?;
            }
        }
        let (loggers, buckets) = agg.finish();
        if let Some(s) = &D::SQL.subtract {
            for l in &loggers {
                sqlx::query(s.card)
                    .bind(l.total)
                    .bind(l.errors)
                    .bind(l.warnings)
                    .bind(l.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .context("subtracting from log cards")?;
                sqlx::query(s.empty_card)
                    .bind(l.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .context("removing empty log cards")?;
                sqlx::query(s.last_seen)
                    .bind(l.name.as_str())
                    .bind(D::time(l.last_seen))
                    .execute(&mut *tx)
                    .await
                    .context("updating last_seen")?;
            }
            for b in &buckets {
                sqlx::query(s.bucket)
                    .bind(b.count)
                    .bind(b.errors)
                    .bind(b.warnings)
                    .bind(b.logger.as_str())
                    .bind(D::time(b.bucket))
                    .bind(b.unit.as_str())
                    .execute(&mut *tx)
                    .await
                    .context("subtracting from timeline buckets")?;
                sqlx::query(s.empty_bucket)
                    .bind(b.logger.as_str())
                    .bind(D::time(b.bucket))
                    .bind(b.unit.as_str())
                    .execute(&mut *tx)
                    .await
                    .context("removing empty timeline buckets")?;
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
}
