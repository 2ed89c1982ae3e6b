//! MongoDB, in the document shape django-mongodb-backend gives the panel's models: collections named
//! like the SQL tables, 32-hex string ids in field `id`, Int64 integers, UTC Dates, and its indexes.
//!
//! A standalone server has no multi-document transactions, so a batch is made idempotent instead of
//! atomic (docs/mongodb.md):
//! - rows and chunks carry ids fixed when the batch is built; a retried batch first looks up which of
//!   its ids are stored and inserts only the others;
//! - every counter update names the batch: `update_one({…, applied: {$nin: [batch]}}, {$inc …,
//!   $push: {applied: {$each: [batch], $slice: -128}}})` applies once per document, whatever fails
//!   around it, and several collectors may share the database (each document remembers the last 128
//!   batches that touched it).

mod counters;
mod documents;
mod faults;
mod indexes;
mod journal;
mod retention;
mod uri;

pub use documents::{chunk_doc, row_doc};
use documents::{date, hex};
pub use uri::{MongoSettings, effective_uri};

use super::{Backend, MigrationReport, Result, StorageError};
use crate::pipeline::batch::{Aggregator, Batch, BucketTotals, LoggerTotals};
#[cfg(test)]
use crate::pipeline::batch::{Chunk, Row};

use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How many recent batch ids a counter document keeps, to recognise a retried batch.
const APPLIED_KEEP: i32 = 128;

/// Writes into one MongoDB database.
pub struct MongoBackend {
    uri: String,
    database: String,
    shown: String,
    client: OnceCell<Client>,
    /// Row ids of batches that failed, and of replayed records: a batch holding any of them looks
    /// up what is stored first.
    retried: Mutex<HashSet<Uuid>>,
    /// The zone of the timeline buckets (`[storage] time_zone`), for counters recomputed from
    /// stored rows (the batch journal's roll-forward).
    time_zone: Tz,
    /// Fault injection for tests: fail the write operation after this many more (-1: never).
    #[cfg(feature = "fault-injection")]
    fail_after: std::sync::atomic::AtomicI64,
    /// Fault injection for tests: rows with exactly this message are refused as data.
    #[cfg(feature = "fault-injection")]
    refuse: Mutex<Option<String>>,
}

fn mongo_err(context: &'static str) -> impl FnOnce(mongodb::error::Error) -> StorageError {
    move |e| StorageError::Mongo {
        context,
        source: Box::new(e),
    }
}

/// Every document left in `cur`, read to the end (`what`: the context of a failed read).
async fn read_all(mut cur: mongodb::Cursor<Document>, what: &'static str) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    while cur.advance().await.map_err(mongo_err(what))? {
        docs.push(cur.deserialize_current().map_err(mongo_err(what))?);
    }
    Ok(docs)
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|v| !v.is_empty() && v.iter().all(|w| w.code == 11000)),
        _ => false,
    }
}

impl MongoBackend {
    /// A backend for `url` with the settings applied (no connection until first use).
    pub fn open(url: &str, settings: &MongoSettings) -> Result<Self, StorageError> {
        let (uri, database) = effective_uri(url, settings).map_err(|reason| StorageError::Url {
            url: url.to_string(),
            reason,
        })?;
        let hosts = url.split("://").nth(1).unwrap_or("");
        let hosts = hosts.rsplit_once('@').map(|(_, h)| h).unwrap_or(hosts);
        let hosts = hosts.split(['/', '?']).next().unwrap_or("");
        Ok(MongoBackend {
            shown: format!("mongodb {hosts}/{database}"),
            uri,
            database,
            client: OnceCell::new(),
            retried: Mutex::new(HashSet::new()),
            time_zone: Tz::UTC,
            #[cfg(feature = "fault-injection")]
            fail_after: std::sync::atomic::AtomicI64::new(-1),
            #[cfg(feature = "fault-injection")]
            refuse: Mutex::new(None),
        })
    }

    /// Buckets counters recomputed from stored rows in `tz` (the zone batches are built in).
    pub fn with_time_zone(mut self, tz: Tz) -> Self {
        self.time_zone = tz;
        self
    }

    async fn db(&self) -> Result<Database, StorageError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let mut opts = ClientOptions::parse(&self.uri)
                    .await
                    .map_err(mongo_err("parsing the MongoDB URI"))?;
                if opts.app_name.is_none() {
                    opts.app_name = Some("log-panel-collector".into());
                }
                if opts.server_selection_timeout.is_none() {
                    opts.server_selection_timeout = Some(std::time::Duration::from_secs(3));
                }
                Client::with_options(opts).map_err(mongo_err("creating the MongoDB client"))
            })
            .await?;
        Ok(client.database(&self.database))
    }
}

impl Backend for MongoBackend {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let db = self.db().await?;
        let migrations = db.collection::<Document>("django_migrations");
        let what = "reading django_migrations";
        let cur = migrations
            .find(doc! {"app": super::schema::APP})
            .await
            .map_err(mongo_err(what))?;
        let mut done = HashSet::new();
        for d in read_all(cur, what).await? {
            if let Ok(n) = d.get_str("name") {
                done.insert(n.to_string());
            }
        }
        let done: Vec<String> = done.into_iter().collect();
        let missing: Vec<&'static str> = super::schema::pending(&done).map(|m| m.name).collect();
        // Batches a collector without a spool left unfinished long ago: count what landed.
        self.settle_stale_entries(&db).await?;
        if missing.is_empty() {
            return Ok(MigrationReport { applied: vec![] });
        }
        for (coll, model) in indexes::indexes() {
            db.collection::<Document>(coll)
                .create_index(model)
                .await
                .map_err(mongo_err("creating an index"))?;
        }
        for name in &missing {
            migrations
                .insert_one(
                    doc! {"app": super::schema::APP, "name": *name, "applied": date(Utc::now())},
                )
                .await
                .map_err(mongo_err("recording a migration in django_migrations"))?;
        }
        Ok(MigrationReport { applied: missing })
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        let Some(first) = batch.rows.first() else {
            return Ok(());
        };
        let batch_id = hex(first.id);
        // A part of a refused batch (delivery writes it in halves with the same ids) or a replayed
        // record counts as retried too: what landed before must be looked up, not inserted again.
        let retry = {
            let retried = self.retried.lock().expect("lock");
            batch.rows.iter().any(|r| retried.contains(&r.id))
        };
        // Order: the journal entry naming the rows, then chunks (so a stored row has all its
        // chunks), rows, counters, and the entry closed; a writer killed in between leaves an
        // entry the next run rolls forward (journal.rs).
        let result = async {
            let db = self.db().await?;
            let row_ids: Vec<String> = batch.rows.iter().map(|r| hex(r.id)).collect();
            self.open_entry(&db, &batch_id, &row_ids).await?;
            if !batch.chunks.is_empty() {
                let chunks = batch.chunks.iter().map(chunk_doc).collect();
                let chunk_ids = batch.chunks.iter().map(|c| hex(c.id)).collect();
                self.insert_missing(
                    &db.collection("log_panel_log_message_chunk"),
                    chunks,
                    chunk_ids,
                    retry,
                )
                .await?;
            }
            let rows = batch.rows.iter().map(row_doc).collect();
            self.insert_missing(&db.collection("log_panel_log"), rows, row_ids, retry)
                .await?;
            self.apply_counters(&db, &batch_id, &batch.loggers, &batch.buckets, 1)
                .await?;
            self.close_entry(&db, &batch_id).await
        }
        .await;
        let mut retried = self.retried.lock().expect("lock");
        match &result {
            Ok(()) => {
                for r in &batch.rows {
                    retried.remove(&r.id);
                }
            }
            Err(_) => {
                retried.extend(batch.rows.iter().map(|r| r.id));
            }
        }
        result
    }

    async fn contains_row(&self, _id: Uuid) -> Result<bool, StorageError> {
        // A batch is never half-committed as a unit here: write_batch itself completes a retried batch.
        Ok(false)
    }

    async fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StorageError> {
        let db = self.db().await?;
        let coll = db.collection::<Document>("log_panel_log");
        let mut found = HashSet::new();
        for part in ids.chunks(super::ID_LOOKUP_CHUNK) {
            let hexes: Vec<String> = part.iter().map(|id| hex(*id)).collect();
            let stored = counters::stored_ids(&coll, &hexes).await?;
            // Rows stored by a writer that died before their counters: count them now.
            let stored_hexes: Vec<String> = stored.iter().cloned().collect();
            if !stored_hexes.is_empty() {
                self.settle_entries_with(&db, &stored_hexes).await?;
            }
            found.extend(stored.iter().filter_map(|id| Uuid::parse_str(id).ok()));
        }
        // These are replayed: what a dead writer inserted of them (orphan chunks) is looked up
        // before inserting, not inserted again.
        self.retried
            .lock()
            .expect("lock")
            .extend(ids.iter().filter(|id| !found.contains(id)));
        Ok(found)
    }
    async fn delete_batch(&self, cutoff: DateTime<Utc>, limit: usize, tz: Tz) -> Result<usize> {
        self.retention_batch(cutoff, limit, tz).await
    }

    async fn count_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let db = self.db().await?;
        db.collection::<Document>("log_panel_log")
            .count_documents(doc! {"timestamp": {"$lt": date(cutoff)}})
            .await
            .map_err(mongo_err("counting old rows"))
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.db()
            .await?
            .run_command(doc! {"ping": 1})
            .await
            .map_err(mongo_err("pinging MongoDB"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Level;

    #[test]
    fn every_integer_is_int64_and_times_are_dates() {
        let r = Row {
            id: Uuid::new_v4(),
            timestamp: Utc::now(),
            level: Level::Error,
            logger_name: "x".into(),
            message: "m".into(),
            module: String::new(),
            pathname: String::new(),
            line_number: 7,
            message_chunked: false,
            message_size: 1,
        };
        let d = row_doc(&r);
        assert!(matches!(d.get("line_number"), Some(Bson::Int64(7))));
        assert!(matches!(d.get("message_size"), Some(Bson::Int64(1))));
        assert!(matches!(d.get("timestamp"), Some(Bson::DateTime(_))));
        assert_eq!(d.get_str("id").unwrap().len(), 32);
        let c = chunk_doc(&Chunk {
            id: Uuid::new_v4(),
            log_id: r.id,
            index: 2,
            text: "t".into(),
        });
        assert!(matches!(c.get("index"), Some(Bson::Int64(2))));
        assert_eq!(c.get_str("log_id").unwrap(), hex(r.id));
    }

    #[test]
    fn indexes_are_django_mongodb_backends() {
        let all = indexes::indexes();
        assert_eq!(all.len(), 18);
        let find = |name: &str| {
            all.iter()
                .find(|(_, m)| m.options.as_ref().and_then(|o| o.name.as_deref()) == Some(name))
                .unwrap_or_else(|| panic!("{name}"))
        };
        let (coll, m) = find("unique_timeline_bucket");
        assert_eq!(*coll, "log_panel_log_timeline_bucket");
        assert_eq!(m.keys, doc! {"logger_id": 1, "bucket": 1, "unit": 1});
        let o = m.options.as_ref().unwrap();
        assert_eq!(o.unique, Some(true));
        assert_eq!(
            o.partial_filter_expression,
            Some(
                doc! {"logger_id": {"$type": "string"}, "bucket": {"$type": "date"}, "unit": {"$type": "string"}}
            )
        );
        let (_, m) = find("logger_name_timestamp");
        assert_eq!(m.keys, doc! {"logger_name": 1, "timestamp": -1});
        let (_, m) = find("unique_log_message_chunk");
        assert_eq!(
            m.options.as_ref().unwrap().partial_filter_expression,
            Some(doc! {"log_id": {"$type": "string"}, "index": {"$type": "long"}})
        );
        for (_, m) in &all {
            let o = m.options.as_ref().unwrap();
            if o.name.as_deref().unwrap().ends_with("_uniq") {
                assert_eq!(o.unique, Some(true), "{:?}", o.name);
                assert!(o.partial_filter_expression.is_some(), "{:?}", o.name);
            }
        }
    }

    #[test]
    fn settings_take_precedence_over_the_uri() {
        let s = MongoSettings {
            database: Some("logs".into()),
            user: Some("ann".into()),
            password: Some("p@ss:w/rd".into()),
            port: Some(27018),
            options: [
                ("replicaSet".to_string(), "rs0".to_string()),
                ("retryWrites".into(), "false".into()),
            ]
            .into_iter()
            .collect(),
        };
        let (uri, db) = effective_uri(
            "mongodb://bob:old@h1:27017,h2/other?retryWrites=true&w=majority",
            &s,
        )
        .unwrap();
        assert_eq!(db, "logs");
        assert_eq!(
            uri,
            "mongodb://ann:p%40ss%3Aw%2Frd@h1:27018,h2:27018/logs?w=majority&replicaSet=rs0&retryWrites=false"
        );
        let (uri, db) =
            effective_uri("mongodb+srv://c.example.net/app", &MongoSettings::default()).unwrap();
        assert_eq!(
            (uri.as_str(), db.as_str()),
            ("mongodb+srv://c.example.net/app", "app")
        );
        assert!(
            effective_uri(
                "mongodb+srv://c.example.net/app",
                &MongoSettings {
                    port: Some(1),
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert!(
            effective_uri("mongodb://h1", &MongoSettings::default()).is_err(),
            "no database named"
        );
    }
}
