//! Counters without transactions: every insert and counter update of a batch names the batch, so
//! it applies once per document whatever fails around it (docs/mongodb.md), and several collectors
//! may share the database.

use super::*;

impl MongoBackend {
    /// Inserts the documents whose `id` is not stored yet (all of them on a first attempt).
    pub(super) async fn insert_missing(
        &self,
        coll: &Collection<Document>,
        docs: Vec<Document>,
        ids: Vec<String>,
        retry: bool,
    ) -> Result<(), StorageError> {
        let docs = if retry {
            let stored = stored_ids(coll, &ids).await?;
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
        let (docs, refused) = self.refused(coll.name(), docs);
        let landed = if docs.is_empty() {
            Ok(())
        } else {
            match coll.insert_many(docs).ordered(false).await {
                Ok(_) => Ok(()),
                Err(e) if is_duplicate_key(&e) => Ok(()),
                Err(e) => Err(mongo_err("inserting documents")(e)),
            }
        };
        if landed.is_ok() && refused {
            return Err(StorageError::InjectedRefusal);
        }
        landed
    }

    /// Applies `update` to the document matching `key` once for `batch`: creates it with `insert`
    /// when missing, skips it when it already lists the batch.
    pub(super) async fn apply_once(
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

    pub(super) async fn logger_ids(
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
        let what = "reading logger ids";
        let cur = loggers
            .find(doc! {"name": {"$in": names}})
            .await
            .map_err(mongo_err(what))?;
        for d in read_all(cur, what).await? {
            if let (Ok(n), Ok(i)) = (d.get_str("name"), d.get_str("id")) {
                ids.entry(n.to_string()).or_insert_with(|| i.to_string());
            }
        }
        Ok(ids)
    }

    /// Adds (or, with `sign` -1, subtracts) per-logger and per-bucket totals, once per `batch`.
    pub(super) async fn apply_counters(
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

/// Which of these `id`s (32-hex strings) have a document in `coll`: what a retried batch or a replay
/// must not insert again.
pub(super) async fn stored_ids(
    coll: &Collection<Document>,
    ids: &[String],
) -> Result<HashSet<String>, StorageError> {
    let mut stored = HashSet::new();
    let cur = coll
        .find(doc! {"id": {"$in": ids}})
        .projection(doc! {"id": 1, "_id": 0})
        .await
        .map_err(mongo_err("looking up stored documents"))?;
    for d in read_all(cur, "reading stored ids").await? {
        if let Ok(id) = d.get_str("id") {
            stored.insert(id.to_string());
        }
    }
    Ok(stored)
}
