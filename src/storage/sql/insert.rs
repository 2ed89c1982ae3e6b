//! Multi-row `INSERT`s cut to a database's statement limits: the rows and chunks of MySQL and
//! SQLite go through [`Insert`], and their counters through [`CounterUpserts`].

use crate::pipeline::batch::Batch;
use crate::storage::{Context, StorageError};
use chrono::{DateTime, Utc};
use sqlx::database::HasStatementCache;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};
use std::marker::PhantomData;

/// How large one statement may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes (a row that is larger alone still goes, alone).
    pub bytes: usize,
    /// Placeholders.
    pub params: usize,
    /// Rows, where the database wants few; then only statements of exactly this many rows are kept
    /// prepared (the shorter last one of a batch would fill the statement cache with one-off shapes).
    /// `None`: as many as the other limits allow, every statement kept prepared.
    pub rows: Option<usize>,
}

/// Cuts rows of these sizes into multi-row statements under both limits.
fn statement_sizes(
    sizes: impl Iterator<Item = usize>,
    params_per_row: usize,
    limits: Limits,
) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for s in sizes {
        let full = limits.rows.is_some_and(|rows| n >= rows);
        if n > 0 && (full || bytes + s > limits.bytes || (n + 1) * params_per_row > limits.params) {
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
pub struct Insert<DB> {
    head: &'static str,
    tail: &'static str,
    params: usize,
    what: &'static str,
    db: PhantomData<fn() -> DB>,
}

impl<DB: Database + HasStatementCache> Insert<DB> {
    /// An `INSERT` of `params` values per row.
    pub const fn new(
        head: &'static str,
        tail: &'static str,
        params: usize,
        what: &'static str,
    ) -> Self {
        Insert {
            head,
            tail,
            params,
            what,
            db: PhantomData,
        }
    }

    /// Inserts `items` on `tx` now ([`Insert::build`], then [`Statements::execute`]); for the few
    /// rows of counters, where binding them first would gain nothing.
    pub async fn run<T: Sync>(
        &self,
        tx: &mut DB::Connection,
        limits: Limits,
        items: &[T],
        size: impl Fn(&T) -> usize,
        push: impl FnMut(Separated<'_, DB, &'static str>, &T),
    ) -> Result<(), StorageError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
    {
        self.build(limits, items, size, push).execute(tx).await
    }

    /// The statements that insert `items` in as few statements as `limits` allow; `size`
    /// estimates a row's bytes, `push` binds its values. Built before the transaction begins: the
    /// binding is CPU work on the runtime's threads, and done inside the transaction it would hold
    /// the connection (SQLite's only one) idle while the next statement is bound (docs/benchmarks.md,
    /// SQLite).
    pub fn build<T>(
        &self,
        limits: Limits,
        items: &[T],
        size: impl Fn(&T) -> usize,
        mut push: impl FnMut(Separated<'_, DB, &'static str>, &T),
    ) -> Statements<DB> {
        let mut rest = items.iter();
        let mut out = Vec::new();
        for n in statement_sizes(items.iter().map(size), self.params, limits) {
            let mut q = QueryBuilder::<DB>::new(self.head);
            q.push_values(rest.by_ref().take(n), &mut push);
            q.push(self.tail);
            out.push((q, limits.rows.is_none_or(|rows| n == rows)));
        }
        Statements {
            statements: out,
            what: self.what,
        }
    }
}

/// A batch's card and timeline-bucket increments, as the dialects that write counters by multi-row
/// `INSERT` (MySQL, SQLite) bind them alike: a new id, the logger, then the counts, with datetimes
/// in the dialect's encoding. The logger is what the dialect's SQL finds it by: MySQL its id (looked
/// up, so the server's collation decides), SQLite its name (joined to the id in the statement).
pub struct CounterUpserts<DB> {
    /// Values: id, logger, total, errors, warnings, last seen.
    pub cards: Insert<DB>,
    /// Values: id, logger, bucket start, unit, count, errors, warnings.
    pub buckets: Insert<DB>,
}

impl<DB: Database + HasStatementCache> CounterUpserts<DB> {
    /// Upserts the batch's cards, then its buckets, on `tx`.
    pub async fn run<K, T>(
        &self,
        tx: &mut DB::Connection,
        limits: Limits,
        batch: &Batch,
        id: impl Fn() -> String + Sync,
        logger: impl Fn(&str) -> K + Sync,
        time: impl Fn(DateTime<Utc>) -> T + Sync,
    ) -> Result<(), StorageError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        K: for<'t> Encode<'t, DB> + Type<DB>,
        T: for<'t> Encode<'t, DB> + Type<DB>,
        String: for<'t> Encode<'t, DB> + Type<DB>,
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'static str: Encode<'static, DB> + Type<DB>,
    {
        self.cards
            .run(
                tx,
                limits,
                &batch.loggers,
                |l| l.name.len() + 120,
                |mut b, l| {
                    b.push_bind(id())
                        .push_bind(logger(&l.name))
                        .push_bind(l.total)
                        .push_bind(l.errors)
                        .push_bind(l.warnings)
                        .push_bind(time(l.last_seen));
                },
            )
            .await?;
        self.buckets
            .run(
                tx,
                limits,
                &batch.buckets,
                |x| x.logger.len() + 160,
                |mut b, x| {
                    b.push_bind(id())
                        .push_bind(logger(&x.logger))
                        .push_bind(time(x.bucket))
                        .push_bind(x.unit.as_str())
                        .push_bind(x.count)
                        .push_bind(x.errors)
                        .push_bind(x.warnings);
                },
            )
            .await
    }
}

/// Bound multi-row `INSERT`s, ready to run in a transaction.
pub struct Statements<DB: Database> {
    /// Each with whether to keep it prepared.
    statements: Vec<(QueryBuilder<DB>, bool)>,
    what: &'static str,
}

impl<DB: Database + HasStatementCache> Statements<DB> {
    /// Runs them in order on `tx`.
    pub async fn execute(self, tx: &mut DB::Connection) -> Result<(), StorageError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
    {
        for (mut q, prepared) in self.statements {
            q.build()
                .persistent(prepared)
                .execute(&mut *tx)
                .await
                .context(self.what)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        bytes: 25,
        params: 65_535,
        rows: None,
    };

    #[test]
    fn statements_respect_bytes_and_placeholders() {
        assert_eq!(
            statement_sizes([10, 10, 10, 10].into_iter(), 10, LIMITS),
            vec![2, 2]
        );
        assert_eq!(
            statement_sizes([100].into_iter(), 10, LIMITS),
            vec![1],
            "one oversized row still goes"
        );
        let unlimited = Limits {
            bytes: usize::MAX,
            ..LIMITS
        };
        let many = statement_sizes(std::iter::repeat_n(1, 10_000), 10, unlimited);
        assert_eq!(many, vec![6553, 3447]);
        let rows = Limits {
            rows: Some(200),
            ..unlimited
        };
        let few = statement_sizes(std::iter::repeat_n(1, 450), 10, rows);
        assert_eq!(few, vec![200, 200, 50], "at most `rows` rows a statement");
    }
}
