//! A journal of batches on their way in, so that a collector killed between a batch's inserts and its
//! counter updates leaves counters that the next run can finish. Without it the rows are found on
//! replay and skipped, and their cards and timelines stay short for good (docs/mongodb.md).
//!
//! Each batch opens an entry naming its row ids before it inserts anything and closes it after its
//! counters are applied. An entry left open belongs to a writer that died: when a spool replays one
//! of its rows (a spool is replayed only by its own next run, so no live writer still holds the
//! batch), the entry is rolled forward: the counters of the rows that did land, recomputed from the
//! stored documents, are applied once under the batch's own id (so updates that landed before the
//! kill are not applied twice), and the entry is closed. The rows that did not land are written by
//! the replay as a new batch. Entries older than [`STALE`] (a collector without a spool that died)
//! are rolled forward the same way at start.

use super::*;

/// The collector's own collection: batches whose counters may not be applied yet.
const JOURNAL: &str = "log_panel_collector_batches";

/// An entry this old belongs to a writer that is gone, even without a spool to say so.
const STALE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

impl MongoBackend {
    /// Opens (or, for a retried batch, renews) the entry of `batch` before any of its inserts.
    pub(super) async fn open_entry(
        &self,
        db: &Database,
        batch: &str,
        rows: &[String],
    ) -> Result<(), StorageError> {
        self.step()?;
        db.collection::<Document>(JOURNAL)
            .update_one(
                doc! {"_id": batch},
                doc! {"$set": {"rows": rows, "at": date(Utc::now())}},
            )
            .upsert(true)
            .await
            .map_err(mongo_err("opening a batch journal entry"))?;
        Ok(())
    }

    /// Closes the entry of `batch` once its counters are applied.
    pub(super) async fn close_entry(&self, db: &Database, batch: &str) -> Result<(), StorageError> {
        self.step()?;
        db.collection::<Document>(JOURNAL)
            .delete_one(doc! {"_id": batch})
            .await
            .map_err(mongo_err("closing a batch journal entry"))?;
        Ok(())
    }

    /// Rolls forward the open entries holding any of `ids` (32-hex row ids a replay found stored).
    pub(super) async fn settle_entries_with(
        &self,
        db: &Database,
        ids: &[String],
    ) -> Result<usize, StorageError> {
        self.settle(db, doc! {"rows": {"$in": ids}}).await
    }

    /// Rolls forward the entries older than [`STALE`].
    pub(super) async fn settle_stale_entries(&self, db: &Database) -> Result<usize, StorageError> {
        self.settle(db, doc! {"at": {"$lt": date(Utc::now() - STALE)}})
            .await
    }

    async fn settle(&self, db: &Database, filter: Document) -> Result<usize, StorageError> {
        let journal = db.collection::<Document>(JOURNAL);
        let what = "reading the batch journal";
        let cur = journal.find(filter).await.map_err(mongo_err(what))?;
        let entries = read_all(cur, what).await?;
        for entry in &entries {
            let Ok(batch) = entry.get_str("_id") else {
                continue;
            };
            let rows: Vec<&str> = entry
                .get_array("rows")
                .map(|a| a.iter().filter_map(|b| b.as_str()).collect())
                .unwrap_or_default();
            let landed = self.roll_forward(db, batch, &rows).await?;
            tracing::info!(
                "MongoDB: batch {batch} of an earlier run had {landed} of its {} row(s) stored \
                 without their counters; counters applied",
                rows.len()
            );
            self.close_entry(db, batch).await?;
        }
        Ok(entries.len())
    }

    /// Applies, once under `batch`, the counters of those of `rows` that are stored; returns how
    /// many are.
    async fn roll_forward(
        &self,
        db: &Database,
        batch: &str,
        rows: &[&str],
    ) -> Result<usize, StorageError> {
        let mut agg = Aggregator::new(self.time_zone);
        let mut landed = 0;
        for part in rows.chunks(super::super::ID_LOOKUP_CHUNK) {
            let what = "reading the rows of an unfinished batch";
            let cur = db
                .collection::<Document>("log_panel_log")
                .find(doc! {"id": {"$in": part}})
                .projection(doc! {"timestamp": 1, "level": 1, "logger_name": 1, "_id": 0})
                .await
                .map_err(mongo_err(what))?;
            for d in read_all(cur, what).await? {
                let (Ok(ts), Ok(level), Ok(logger)) = (
                    d.get_datetime("timestamp"),
                    d.get_str("level"),
                    d.get_str("logger_name"),
                ) else {
                    continue;
                };
                let ts = DateTime::<Utc>::from_timestamp_millis(ts.timestamp_millis())
                    .unwrap_or_default();
                agg.add_stored(logger, ts, level);
                landed += 1;
            }
        }
        let (loggers, buckets) = agg.finish();
        self.apply_counters(db, batch, &loggers, &buckets, 1)
            .await?;
        Ok(landed)
    }
}
