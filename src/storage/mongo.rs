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

use super::{Backend, MigrationReport, StorageError};
use crate::pipeline::batch::{Aggregator, Batch, BucketTotals, Chunk, LoggerTotals, Row};

use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The collector's own collection: retention passes that subtracted their counters and still have
/// rows to delete.
const JOURNAL: &str = "log_panel_collector_retention";

/// How many recent batch ids a counter document keeps, to recognise a retried batch.
const APPLIED_KEEP: i32 = 128;

/// The package's connection settings that take precedence over the URI (`[storage]` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MongoSettings {
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub port: Option<u16>,
    /// Driver options, as URI options (`retryWrites`, `replicaSet`, `authSource`, `tls`, …).
    pub options: BTreeMap<String, String>,
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Applies the settings to a MongoDB connection string: user/password replace the URI's credentials,
/// `port` every host's port, `database` the path, `options` the same-named URI options.
/// Returns the URI and the database name.
pub fn effective_uri(url: &str, s: &MongoSettings) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a MongoDB connection string"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, p),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("the connection string names no host".into());
    }
    let userinfo = match (&s.user, &s.password, userinfo) {
        (Some(u), Some(p), _) => Some(format!("{}:{}", percent(u), percent(p))),
        (Some(u), None, _) => Some(percent(u)),
        (None, Some(p), Some(ui)) => Some(format!(
            "{}:{}",
            ui.split(':').next().unwrap_or(""),
            percent(p)
        )),
        (None, Some(_), None) => return Err("a password is set but no user".into()),
        (None, None, ui) => ui.map(str::to_string),
    };
    let hosts = match s.port {
        None => hosts.to_string(),
        Some(_) if scheme == "mongodb+srv" => {
            return Err(
                "port cannot be set with mongodb+srv:// (SRV records name the ports)".into(),
            );
        }
        Some(port) => hosts
            .split(',')
            .map(|h| format!("{}:{port}", strip_port(h)))
            .collect::<Vec<_>>()
            .join(","),
    };
    let database = s
        .database
        .clone()
        .or_else(|| (!path.is_empty()).then(|| path.to_string()))
        .ok_or_else(|| {
            "no database: put it in the URL (mongodb://host/DB) or set database".to_string()
        })?;
    let mut opts: Vec<(String, String)> = query
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in &s.options {
        opts.retain(|(ok, _)| !ok.eq_ignore_ascii_case(k));
        opts.push((k.clone(), percent(v)));
    }
    let mut uri = format!("{scheme}://");
    if let Some(u) = userinfo {
        uri.push_str(&u);
        uri.push('@');
    }
    uri.push_str(&hosts);
    uri.push('/');
    uri.push_str(&percent(&database));
    if !opts.is_empty() {
        uri.push('?');
        uri.push_str(
            &opts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    Ok((uri, database))
}

/// `host`, `host:27017`, `[::1]:27017` -> the host part.
fn strip_port(h: &str) -> &str {
    if let Some(end) = h.find(']') {
        return &h[..=end];
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => h,
    }
}

/// Writes into one MongoDB database.
pub struct MongoBackend {
    uri: String,
    database: String,
    shown: String,
    client: OnceCell<Client>,
    /// Row ids of batches that failed: a batch holding any of them looks up what is stored first.
    retried: Mutex<HashSet<Uuid>>,
    /// Fault injection for tests: fail the write operation after this many more (-1: never).
    fail_after: AtomicI64,
}

/// One row as django-mongodb-backend stores it (every integer an Int64).
pub fn row_doc(r: &Row) -> Document {
    doc! {
        "id": hex(r.id), "timestamp": date(r.timestamp), "level": r.level.as_str(),
        "logger_name": &r.logger_name, "message": &r.message, "module": &r.module,
        "pathname": &r.pathname, "line_number": r.line_number as i64,
        "message_chunked": r.message_chunked, "message_size": r.message_size as i64,
    }
}

/// One chunk as django-mongodb-backend stores it.
pub fn chunk_doc(c: &Chunk) -> Document {
    doc! {"id": hex(c.id), "log_id": hex(c.log_id), "index": c.index as i64, "text": &c.text}
}

fn mongo_err(context: &'static str) -> impl FnOnce(mongodb::error::Error) -> StorageError {
    move |e| StorageError::Mongo {
        context,
        source: Box::new(e),
    }
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

fn date(ts: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(ts.timestamp_millis())
}

fn hex(id: Uuid) -> String {
    id.simple().to_string()
}

/// The indexes django-mongodb-backend's migrations create (panel-schema.md, MongoDB section).
fn indexes() -> Vec<(&'static str, IndexModel)> {
    let idx = |name: &str, keys: Document, unique: bool, partial: Option<Document>| {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_string())
                    .unique(unique.then_some(true))
                    .partial_filter_expression(partial)
                    .build(),
            )
            .build()
    };
    let string_id = || Some(doc! {"id": {"$type": "string"}});
    vec![
        (
            "log_panel_log",
            idx(
                "log_panel_log_id_4e67d3d7_uniq",
                doc! {"id": 1},
                true,
                string_id(),
            ),
        ),
        (
            "log_panel_log",
            idx(
                "log_panel_log_timestamp_16bc740c",
                doc! {"timestamp": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log",
            idx(
                "log_panel_log_logger_name_2f491f10",
                doc! {"logger_name": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log",
            idx(
                "timestamp_logger_level",
                doc! {"timestamp": 1, "logger_name": 1, "level": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log",
            idx(
                "logger_name_timestamp",
                doc! {"logger_name": 1, "timestamp": -1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log",
            idx(
                "log_panel_log_message_chunked_be7ebdf6",
                doc! {"message_chunked": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log_message_chunk",
            idx(
                "log_panel_log_message_chunk_id_88594bdf_uniq",
                doc! {"id": 1},
                true,
                string_id(),
            ),
        ),
        (
            "log_panel_log_message_chunk",
            idx(
                "log_panel_log_message_chunk_log_id_546a6a65",
                doc! {"log_id": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log_message_chunk",
            idx(
                "unique_log_message_chunk",
                doc! {"log_id": 1, "index": 1},
                true,
                Some(doc! {"log_id": {"$type": "string"}, "index": {"$type": "long"}}),
            ),
        ),
        (
            "log_panel_log_message_chunk",
            idx(
                "log_message_chunk_order",
                doc! {"log_id": 1, "index": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_logger",
            idx(
                "log_panel_logger_id_a7af854a_uniq",
                doc! {"id": 1},
                true,
                string_id(),
            ),
        ),
        (
            "log_panel_logger",
            idx(
                "log_panel_logger_name_eed063d9_uniq",
                doc! {"name": 1},
                true,
                Some(doc! {"name": {"$type": "string"}}),
            ),
        ),
        (
            "log_panel_log_card",
            idx(
                "log_panel_log_card_id_bfe83192_uniq",
                doc! {"id": 1},
                true,
                string_id(),
            ),
        ),
        (
            "log_panel_log_card",
            idx(
                "log_panel_log_card_logger_id_6ea7e6a8_uniq",
                doc! {"logger_id": 1},
                true,
                Some(doc! {"logger_id": {"$type": "string"}}),
            ),
        ),
        (
            "log_panel_log_timeline_bucket",
            idx(
                "log_panel_log_timeline_bucket_id_2f130f00_uniq",
                doc! {"id": 1},
                true,
                string_id(),
            ),
        ),
        (
            "log_panel_log_timeline_bucket",
            idx(
                "log_panel_log_timeline_bucket_logger_id_96c38f85",
                doc! {"logger_id": 1},
                false,
                None,
            ),
        ),
        (
            "log_panel_log_timeline_bucket",
            idx(
                "unique_timeline_bucket",
                doc! {"logger_id": 1, "bucket": 1, "unit": 1},
                true,
                Some(
                    doc! {"logger_id": {"$type": "string"}, "bucket": {"$type": "date"}, "unit": {"$type": "string"}},
                ),
            ),
        ),
        (
            "log_panel_log_timeline_bucket",
            idx(
                "timeline_logger_unit_bucket",
                doc! {"logger_id": 1, "unit": 1, "bucket": 1},
                false,
                None,
            ),
        ),
    ]
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
            fail_after: AtomicI64::new(-1),
        })
    }

    /// Test hook: the next `n` write operations succeed, the one after fails (as a dropped connection
    /// would), leaving a batch half written. Used to prove that a retried batch is exact.
    pub fn fail_after_writes(&self, n: i64) {
        self.fail_after.store(n, Ordering::SeqCst);
    }

    fn step(&self) -> Result<(), StorageError> {
        let left = self.fail_after.load(Ordering::SeqCst);
        if left < 0 {
            return Ok(());
        }
        self.fail_after.store(left - 1, Ordering::SeqCst);
        if left == 0 {
            return Err(StorageError::Injected);
        }
        Ok(())
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

    /// Inserts the documents whose `id` is not stored yet (all of them on a first attempt).
    async fn insert_missing(
        &self,
        coll: &Collection<Document>,
        docs: Vec<Document>,
        ids: Vec<String>,
        retry: bool,
    ) -> Result<(), StorageError> {
        let docs = if retry {
            let mut stored = HashSet::new();
            let mut cur = coll
                .find(doc! {"id": {"$in": &ids}})
                .projection(doc! {"id": 1, "_id": 0})
                .await
                .map_err(mongo_err("looking up stored documents"))?;
            while cur
                .advance()
                .await
                .map_err(mongo_err("reading stored ids"))?
            {
                if let Ok(id) = cur.current().get_str("id") {
                    stored.insert(id.to_string());
                }
            }
            docs.into_iter()
                .zip(ids)
                .filter(|(_, id)| !stored.contains(id))
                .map(|(d, _)| d)
                .collect()
        } else {
            docs
        };
        if docs.is_empty() {
            return Ok(());
        }
        self.step()?;
        match coll.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(mongo_err("inserting documents")(e)),
        }
    }

    /// Applies `update` to the document matching `key` once for `batch`: creates it with `insert`
    /// when missing, skips it when it already lists the batch.
    async fn apply_once(
        &self,
        coll: &Collection<Document>,
        key: Document,
        batch: &str,
        update: Document,
        insert: Option<Document>,
    ) -> Result<(), StorageError> {
        for _ in 0..3 {
            let mut filter = key.clone();
            filter.insert("applied", doc! {"$nin": [batch]});
            let mut upd = update.clone();
            upd.insert(
                "$push",
                doc! {"applied": {"$each": [batch], "$slice": -APPLIED_KEEP}},
            );
            self.step()?;
            let r = coll
                .update_one(filter, upd)
                .await
                .map_err(mongo_err("updating a counter"))?;
            if r.matched_count > 0 {
                return Ok(());
            }
            let existing = coll
                .find_one(key.clone())
                .await
                .map_err(mongo_err("reading a counter"))?;
            if let Some(doc) = existing {
                let applied = doc
                    .get_array("applied")
                    .map(|a| a.iter().any(|b| b.as_str() == Some(batch)))
                    .unwrap_or(false);
                if applied {
                    return Ok(()); // this batch was applied before
                }
                continue; // created by another writer in between: update it now
            }
            // Nothing to subtract from; nothing to create.
            let Some(insert) = &insert else { return Ok(()) };
            let mut d = key.clone();
            d.extend(insert.clone());
            d.insert("applied", vec![Bson::String(batch.to_string())]);
            self.step()?;
            match coll.insert_one(d).await {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) => continue, // created concurrently: update it
                Err(e) => return Err(mongo_err("creating a counter")(e)),
            }
        }
        // Every round lost a race with another writer: let delivery retry the batch.
        Err(StorageError::Contention)
    }

    /// Deletes rows and their chunks (chunks first).
    async fn delete_rows(&self, db: &Database, ids: &[&str]) -> Result<(), StorageError> {
        db.collection::<Document>("log_panel_log_message_chunk")
            .delete_many(doc! {"log_id": {"$in": ids}})
            .await
            .map_err(mongo_err("deleting old message chunks"))?;
        db.collection::<Document>("log_panel_log")
            .delete_many(doc! {"id": {"$in": ids}})
            .await
            .map_err(mongo_err("deleting old rows"))?;
        Ok(())
    }

    async fn logger_ids(
        &self,
        db: &Database,
        names: &[&str],
    ) -> Result<HashMap<String, String>, StorageError> {
        let loggers = db.collection::<Document>("log_panel_logger");
        for name in names {
            self.step()?;
            let r = loggers
                .update_one(
                    doc! {"name": *name},
                    doc! {"$setOnInsert": {"id": hex(Uuid::new_v4()), "name": *name}},
                )
                .upsert(true)
                .await;
            if let Err(e) = r
                && !is_duplicate_key(&e)
            {
                return Err(mongo_err("inserting loggers")(e));
            }
        }
        let mut ids = HashMap::new();
        let mut cur = loggers
            .find(doc! {"name": {"$in": names}})
            .await
            .map_err(mongo_err("reading logger ids"))?;
        while cur
            .advance()
            .await
            .map_err(mongo_err("reading logger ids"))?
        {
            let d = cur.current();
            if let (Ok(n), Ok(i)) = (d.get_str("name"), d.get_str("id")) {
                ids.entry(n.to_string()).or_insert_with(|| i.to_string());
            }
        }
        Ok(ids)
    }

    /// Adds (or, with `sign` -1, subtracts) per-logger and per-bucket totals, once per `batch`.
    async fn apply_counters(
        &self,
        db: &Database,
        batch: &str,
        loggers: &[LoggerTotals],
        buckets: &[BucketTotals],
        sign: i64,
    ) -> Result<(), StorageError> {
        let names: Vec<&str> = loggers.iter().map(|l| l.name.as_str()).collect();
        let ids = self.logger_ids(db, &names).await?;
        let cards = db.collection::<Document>("log_panel_log_card");
        for l in loggers {
            let Some(logger_id) = ids.get(&l.name) else {
                continue;
            };
            let mut update = doc! {"$inc": {
                "total": sign * l.total, "total_errors": sign * l.errors, "total_warnings": sign * l.warnings,
            }};
            if sign > 0 {
                update.insert("$max", doc! {"last_seen": date(l.last_seen)});
            }
            self.apply_once(
                &cards,
                doc! {"logger_id": logger_id},
                batch,
                update,
                (sign > 0).then(|| {
                    doc! {"id": hex(Uuid::new_v4()), "total": l.total, "total_errors": l.errors,
                    "total_warnings": l.warnings, "last_seen": date(l.last_seen)}
                }),
            )
            .await?;
        }
        let coll = db.collection::<Document>("log_panel_log_timeline_bucket");
        for b in buckets {
            let Some(logger_id) = ids.get(&b.logger) else {
                continue;
            };
            self.apply_once(
                &coll,
                doc! {"logger_id": logger_id, "bucket": date(b.bucket), "unit": b.unit.as_str()},
                batch,
                doc! {"$inc": {"log_count": sign * b.count, "error_count": sign * b.errors, "warning_count": sign * b.warnings}},
                (sign > 0).then(|| {
                    doc! {"id": hex(Uuid::new_v4()), "log_count": b.count, "error_count": b.errors, "warning_count": b.warnings}
                }),
            )
            .await?;
        }
        Ok(())
    }
}

impl Backend for MongoBackend {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn migrate(&self) -> Result<MigrationReport, StorageError> {
        let db = self.db().await?;
        let migrations = db.collection::<Document>("django_migrations");
        let mut done = HashSet::new();
        let mut cur = migrations
            .find(doc! {"app": super::schema::APP})
            .await
            .map_err(mongo_err("reading django_migrations"))?;
        while cur
            .advance()
            .await
            .map_err(mongo_err("reading django_migrations"))?
        {
            if let Ok(n) = cur.current().get_str("name") {
                done.insert(n.to_string());
            }
        }
        let done: Vec<String> = done.into_iter().collect();
        let missing: Vec<&'static str> = super::schema::pending(&done).map(|m| m.name).collect();
        if missing.is_empty() {
            return Ok(MigrationReport { applied: vec![] });
        }
        for (coll, model) in indexes() {
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
        let result = async {
            let db = self.db().await?;
            let rows = batch.rows.iter().map(row_doc).collect();
            let row_ids = batch.rows.iter().map(|r| hex(r.id)).collect();
            self.insert_missing(&db.collection("log_panel_log"), rows, row_ids, retry)
                .await?;
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
            self.apply_counters(&db, &batch_id, &batch.loggers, &batch.buckets, 1)
                .await
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
            let mut cur = coll
                .find(doc! {"id": {"$in": &hexes}})
                .projection(doc! {"id": 1, "_id": 0})
                .await
                .map_err(mongo_err("looking up stored documents"))?;
            while cur
                .advance()
                .await
                .map_err(mongo_err("reading stored ids"))?
            {
                if let Ok(id) = cur.current().get_str("id")
                    && let Ok(id) = Uuid::parse_str(id)
                {
                    found.insert(id);
                }
            }
        }
        Ok(found)
    }

    async fn delete_batch(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
        tz: Tz,
    ) -> Result<usize, StorageError> {
        let db = self.db().await?;
        let logs = db.collection::<Document>("log_panel_log");
        // A journal of passes: one that subtracted its counters but did not get to delete its rows
        // (the server went away) is finished first, without subtracting again.
        let journal = db.collection::<Document>(JOURNAL);
        let mut leftovers = Vec::new();
        let mut cur = journal
            .find(doc! {"subtracted": true})
            .await
            .map_err(mongo_err("reading the retention journal"))?;
        while cur
            .advance()
            .await
            .map_err(mongo_err("reading the retention journal"))?
        {
            let d = cur
                .deserialize_current()
                .map_err(mongo_err("reading the retention journal"))?;
            leftovers.push(d);
        }
        let mut finished = 0;
        for d in leftovers {
            let ids: Vec<&str> = d
                .get_array("ids")
                .map(|a| a.iter().filter_map(|b| b.as_str()).collect())
                .unwrap_or_default();
            self.delete_rows(&db, &ids).await?;
            finished += ids.len();
            journal
                .delete_one(doc! {"_id": d.get("_id").cloned().unwrap_or(Bson::Null)})
                .await
                .map_err(mongo_err("closing a retention journal entry"))?;
        }
        let mut cur = logs
            .find(doc! {"timestamp": {"$lt": date(cutoff)}})
            .sort(doc! {"timestamp": 1})
            .limit(limit as i64)
            .projection(doc! {"id": 1, "timestamp": 1, "level": 1, "logger_name": 1, "_id": 0})
            .await
            .map_err(mongo_err("selecting the oldest rows"))?;
        let mut agg = Aggregator::new(tz);
        let mut ids = Vec::new();
        while cur.advance().await.map_err(mongo_err("reading old rows"))? {
            let d = cur.current();
            let (Ok(id), Ok(ts), Ok(level), Ok(logger)) = (
                d.get_str("id"),
                d.get_datetime("timestamp"),
                d.get_str("level"),
                d.get_str("logger_name"),
            ) else {
                continue;
            };
            let ts =
                DateTime::<Utc>::from_timestamp_millis(ts.timestamp_millis()).unwrap_or_default();
            agg.add_stored(logger, ts, level);
            ids.push(id.to_string());
        }
        if ids.is_empty() {
            return Ok(finished);
        }
        // Subtract first, under an id derived from the rows, then delete: a pass interrupted in
        // between finds the same rows next time and does not subtract twice.
        let mut sorted = ids.clone();
        sorted.sort();
        let pass_id = format!(
            "retention-{}",
            Uuid::new_v5(&Uuid::NAMESPACE_OID, sorted.concat().as_bytes()).simple()
        );
        let (loggers, buckets) = agg.finish();
        match journal
            .insert_one(doc! {"_id": &pass_id, "ids": &ids, "subtracted": false})
            .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(mongo_err("opening a retention journal entry")(e)),
        }
        self.apply_counters(&db, &pass_id, &loggers, &buckets, -1)
            .await?;
        journal
            .update_one(doc! {"_id": &pass_id}, doc! {"$set": {"subtracted": true}})
            .await
            .map_err(mongo_err("updating the retention journal"))?;
        self.step()?;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.delete_rows(&db, &id_refs).await?;
        journal
            .delete_one(doc! {"_id": &pass_id})
            .await
            .map_err(mongo_err("closing a retention journal entry"))?;
        let names: Vec<&str> = loggers.iter().map(|l| l.name.as_str()).collect();
        let logger_ids: Vec<String> = self.logger_ids(&db, &names).await?.into_values().collect();
        db.collection::<Document>("log_panel_log_card")
            .delete_many(doc! {"logger_id": {"$in": &logger_ids}, "total": {"$lte": 0_i64}})
            .await
            .map_err(mongo_err("removing empty log cards"))?;
        db.collection::<Document>("log_panel_log_timeline_bucket")
            .delete_many(doc! {"logger_id": {"$in": &logger_ids}, "log_count": {"$lte": 0_i64}})
            .await
            .map_err(mongo_err("removing empty timeline buckets"))?;
        // last_seen: the latest remaining row of each logger whose latest row may be gone.
        let cards = db.collection::<Document>("log_panel_log_card");
        let ids_by_name = self.logger_ids(&db, &names).await?;
        for l in &loggers {
            let Some(logger_id) = ids_by_name.get(&l.name) else {
                continue;
            };
            let latest = logs
                .find_one(doc! {"logger_name": &l.name})
                .sort(doc! {"timestamp": -1})
                .await
                .map_err(mongo_err("finding the latest row"))?
                .and_then(|d| d.get_datetime("timestamp").ok().copied());
            if let Some(latest) = latest {
                cards
                    .update_one(
                        doc! {"logger_id": logger_id, "last_seen": {"$lte": date(l.last_seen)}},
                        doc! {"$set": {"last_seen": latest}},
                    )
                    .await
                    .map_err(mongo_err("updating last_seen"))?;
            }
        }
        Ok(finished + ids.len())
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
        let all = indexes();
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
