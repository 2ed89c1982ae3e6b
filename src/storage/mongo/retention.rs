//! Retention without transactions: a journal of passes, so that one which subtracted its counters
//! but did not get to delete its rows (the server went away) is finished by the next pass without
//! subtracting again.

use super::*;

/// The collector's own collection: retention passes that subtracted their counters and still have
/// rows to delete.
const JOURNAL: &str = "log_panel_collector_retention";

impl MongoBackend {
    /// Deletes rows and their chunks (chunks first).
    pub(super) async fn delete_rows(
        &self,
        db: &Database,
        ids: &[&str],
    ) -> Result<(), StorageError> {
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

    pub(super) async fn retention_batch(
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
        let what = "reading the retention journal";
        let cur = journal
            .find(doc! {"subtracted": true})
            .await
            .map_err(mongo_err(what))?;
        let leftovers = read_all(cur, what).await?;
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
}
