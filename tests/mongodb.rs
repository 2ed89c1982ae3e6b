//! MongoDB, against the wire-compatible stand-in that scripts/mongo-test-server.sh starts (no genuine
//! mongod can be installed here). Real senders in; the stored documents, their types and the indexes
//! checked with pymongo; a batch failed half way at every possible step, then retried, is exact;
//! retention; the package's connection settings over the URI.
//!
//! Where the stand-in deviates from MongoDB the assertions keep MongoDB's semantics and say so:
//! it reads small Int64 values back as Int32 (so pymongo shows `int` either way; that every integer is
//! sent as Int64 is asserted in the unit tests of src/storage/mongo.rs), and it does not enforce unique
//! partial indexes (so exactness here comes from the backend's own idempotency, not from E11000); and
//! its `$max` and `$set` on Dates are wrong (`$max` keeps the old Date, `$set` stores a string), so
//! `last_seen` is checked only against a genuine MongoDB (LPC_MONGO_STANDIN unset or 0; 1 = the stand-in).

mod common;
use common::*;

use bson::{Document, doc};
use chrono::{DateTime, Duration as CDuration, Utc};
use log_panel_collector::pipeline::batch::{Batch, Layout};
use log_panel_collector::record::{Level, Record};
use log_panel_collector::storage::{Backend, MongoBackend, MongoSettings};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn mongo_base() -> String {
    std::env::var("LPC_TEST_MONGO").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
}

/// Which server the tests run against, said explicitly by LPC_MONGO_STANDIN: `1` is the nx-27017
/// stand-in (scripts/test.sh sets it), `0` or unset a genuine MongoDB, where every strict branch
/// runs. Anything else is an error, so a typo cannot silently pick the lenient mode.
fn standin() -> bool {
    match std::env::var("LPC_MONGO_STANDIN").as_deref() {
        Ok("1") => true,
        Ok("0") | Err(std::env::VarError::NotPresent) => false,
        Ok(other) => panic!(
            "LPC_MONGO_STANDIN={other:?}: use 1 (the stand-in) or 0 / unset (a genuine MongoDB)"
        ),
        Err(e) => panic!("LPC_MONGO_STANDIN: {e}"),
    }
}

/// Says which mode a test ran in (shown with `--nocapture` and on failure).
fn print_mode() {
    if standin() {
        println!(
            "MongoDB mode: stand-in (LPC_MONGO_STANDIN=1) at {}: assertions on the stand-in's known deviations are relaxed",
            mongo_base()
        );
    } else {
        println!(
            "MongoDB mode: genuine MongoDB (LPC_MONGO_STANDIN unset or 0) at {}: every assertion strict",
            mongo_base()
        );
    }
}

fn mongo_python() -> std::path::PathBuf {
    let p = std::env::var_os("LPC_MONGO_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from("/tmp/lpc-mongo-test/venv/bin/python"));
    assert!(
        p.exists(),
        "pymongo's Python is missing ({}): run scripts/test.sh, which starts the MongoDB stand-in",
        p.display()
    );
    p
}

async fn client() -> mongodb::Client {
    let c = mongodb::Client::with_uri_str(mongo_base()).await.unwrap();
    c.database("admin")
        .run_command(doc! {"ping": 1})
        .await
        .unwrap_or_else(|e| panic!("a MongoDB-compatible server must run at {} (scripts/mongo-test-server.sh start): {e}", mongo_base()));
    c
}

/// Reads the panel collections back into the shapes the other tests use.
struct MongoStore {
    db: mongodb::Database,
}

fn int(d: &Document, k: &str) -> i64 {
    d.get_i64(k)
        .or_else(|_| d.get_i32(k).map(i64::from))
        .unwrap_or_else(|_| panic!("{k} in {d}"))
}

fn time(d: &Document, k: &str) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(
        d.get_datetime(k)
            .unwrap_or_else(|_| panic!("{k} in {d}"))
            .timestamp_millis(),
    )
    .unwrap()
}

impl MongoStore {
    async fn docs(&self, coll: &str, filter: Document) -> Vec<Document> {
        let mut cur = self
            .db
            .collection::<Document>(coll)
            .find(filter)
            .await
            .unwrap();
        let mut out = Vec::new();
        while cur.advance().await.unwrap() {
            out.push(cur.deserialize_current().unwrap());
        }
        out
    }

    async fn count(&self, coll: &str) -> i64 {
        self.db
            .collection::<Document>(coll)
            .count_documents(doc! {})
            .await
            .unwrap() as i64
    }

    async fn wait_rows(&self, n: i64, timeout: Duration) -> i64 {
        let t0 = std::time::Instant::now();
        loop {
            let c = self.count("log_panel_log").await;
            if c >= n || t0.elapsed() > timeout {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn rows(&self) -> Vec<StoredRow> {
        self.docs("log_panel_log", doc! {})
            .await
            .iter()
            .map(|d| StoredRow {
                id: d.get_str("id").unwrap().to_string(),
                timestamp: time(d, "timestamp"),
                level: d.get_str("level").unwrap().to_string(),
                logger_name: d.get_str("logger_name").unwrap().to_string(),
                message: d.get_str("message").unwrap().to_string(),
                module: d.get_str("module").unwrap().to_string(),
                pathname: d.get_str("pathname").unwrap().to_string(),
                line_number: int(d, "line_number"),
                message_chunked: d.get_bool("message_chunked").unwrap(),
                message_size: int(d, "message_size"),
            })
            .collect()
    }

    async fn full_message(&self, row: &StoredRow) -> String {
        if !row.message_chunked {
            return row.message.clone();
        }
        let mut chunks = self
            .docs("log_panel_log_message_chunk", doc! {"log_id": &row.id})
            .await;
        chunks.sort_by_key(|c| int(c, "index"));
        chunks
            .iter()
            .map(|c| c.get_str("text").unwrap().to_string())
            .collect()
    }

    async fn logger_names(&self) -> std::collections::HashMap<String, String> {
        self.docs("log_panel_logger", doc! {})
            .await
            .iter()
            .map(|d| {
                (
                    d.get_str("id").unwrap().to_string(),
                    d.get_str("name").unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn cards(&self) -> std::collections::BTreeMap<String, Card> {
        let names = self.logger_names().await;
        let mut out = std::collections::BTreeMap::new();
        for d in self.docs("log_panel_log_card", doc! {}).await {
            let name = names[d.get_str("logger_id").unwrap()].clone();
            // The stand-in may hold last_seen as a string (see the module doc).
            let seen = d
                .get_datetime("last_seen")
                .ok()
                .map(|_| time(&d, "last_seen"));
            assert!(seen.is_some() || standin(), "last_seen is a Date: {d}");
            let prev = out.insert(
                name.clone(),
                (
                    int(&d, "total"),
                    int(&d, "total_errors"),
                    int(&d, "total_warnings"),
                    seen,
                ),
            );
            assert!(prev.is_none(), "two cards for {name}");
        }
        out
    }

    async fn buckets(&self) -> BucketMap {
        let names = self.logger_names().await;
        let mut out = BucketMap::new();
        for d in self.docs("log_panel_log_timeline_bucket", doc! {}).await {
            let key = (
                names[d.get_str("logger_id").unwrap()].clone(),
                d.get_str("unit").unwrap().to_string(),
                time(&d, "bucket"),
            );
            let prev = out.insert(
                key.clone(),
                (
                    int(&d, "log_count"),
                    int(&d, "error_count"),
                    int(&d, "warning_count"),
                ),
            );
            assert!(prev.is_none(), "two buckets for {key:?}");
        }
        out
    }

    /// Counters equal a recomputation from the rows (Dates are milliseconds: compare at that precision).
    async fn assert_counters_exact(&self) {
        let rows = self.rows().await;
        assert_counters(
            &rows,
            &self.cards().await,
            &self.buckets().await,
            !standin(),
        );
    }
}

async fn fresh(prefix: &str) -> (String, MongoStore) {
    let name = unique(prefix);
    let c = client().await;
    c.database(&name).drop().await.unwrap();
    (
        format!("{}/{name}", mongo_base()),
        MongoStore {
            db: c.database(&name),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_into_mongodb_documents_and_indexes() {
    print_mode();
    let (url, store) = fresh("mongo_senders").await;
    let mut cfg = test_config(&url);
    cfg.storage.context = false;
    let collector = start(&cfg).await;
    logger(
        collector.udp_addrs()[0],
        &[
            "--udp",
            "--rfc3164",
            "-t",
            "m3164",
            "-p",
            "user.err",
            "mongo udp",
        ],
    );
    logger(
        collector.tcp_addrs()[0],
        &[
            "--tcp",
            "--rfc5424",
            "--octet-count",
            "-t",
            "m5424",
            "-p",
            "local1.warning",
            "mongo tcp",
        ],
    );
    let endpoint = format!("http://{}/v1/logs", collector.http_addr().unwrap());
    let out = run_stdout(
        Command::new(panel_python())
            .arg(repo().join("tests/otlp/send_logs.py"))
            .args(["http", &endpoint]),
    );
    let sent: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(store.wait_rows(9, Duration::from_secs(60)).await, 9);
    collector.shutdown(Duration::from_secs(30)).await.unwrap();

    let rows = store.rows().await;
    let udp = rows.iter().find(|r| r.logger_name == "m3164").unwrap();
    assert_eq!(
        (udp.level.as_str(), udp.message.as_str()),
        ("ERROR", "mongo udp")
    );
    let tcp = rows.iter().find(|r| r.logger_name == "m5424").unwrap();
    assert_eq!(tcp.level, "WARNING");
    let big = rows.iter().find(|r| r.logger_name == "shop.bulk").unwrap();
    let big_text = sent["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.get("needle").is_some())
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(big.message_chunked);
    assert_eq!(
        store.full_message(big).await,
        big_text,
        "chunks rebuild the 300,000-character message"
    );
    let exc = rows
        .iter()
        .find(|r| r.message.starts_with("payment failed"))
        .unwrap();
    assert!(exc.message.contains("ZeroDivisionError"));
    assert_eq!(exc.module, "send_logs");
    store.assert_counters_exact().await;

    // pymongo's view: field types, indexes with django-mongodb-backend's names, django_migrations.
    let db_name = store.db.name().to_string();
    let out = Command::new(mongo_python())
        .arg(repo().join("tests/mongo/check_docs.py"))
        .arg(mongo_base())
        .arg(&db_name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let types = |coll: &str, field: &str| v["collections"][coll]["types"][field].clone();
    for (coll, field, ty) in [
        ("log_panel_log", "id", "str"),
        ("log_panel_log", "timestamp", "datetime"),
        ("log_panel_log", "level", "str"),
        ("log_panel_log", "line_number", "int"),
        ("log_panel_log", "message_chunked", "bool"),
        ("log_panel_log", "message_size", "int"),
        ("log_panel_log_message_chunk", "index", "int"),
        ("log_panel_log_message_chunk", "log_id", "str"),
        ("log_panel_log_card", "total", "int"),
        ("log_panel_log_timeline_bucket", "bucket", "datetime"),
        ("log_panel_log_timeline_bucket", "unit", "str"),
        ("log_panel_logger", "name", "str"),
    ] {
        assert_eq!(
            types(coll, field),
            serde_json::json!([ty]),
            "{coll}.{field}: {v}"
        );
    }
    let seen = v["collections"]["log_panel_log_card"]["types"]["last_seen"].clone();
    assert!(
        seen == serde_json::json!(["datetime"]) || standin(),
        "last_seen is a Date: {seen}"
    );
    let ids = v["collections"]["log_panel_log"]["types"]["id"].clone();
    assert_eq!(ids, serde_json::json!(["str"]));
    assert!(
        rows.iter()
            .all(|r| r.id.len() == 32 && r.id.chars().all(|c| c.is_ascii_hexdigit())),
        "32-hex ids"
    );
    // Indexes: on MongoDB by django-mongodb-backend's names and options. The stand-in renames them,
    // drops partial filters (and with them the partial unique `id` indexes) and key directions, so
    // there only the key patterns and the unique flags it keeps are checked.
    let listed = |coll: &str| {
        v["collections"][coll]["indexes"]
            .as_array()
            .unwrap()
            .clone()
    };
    let keys_of = |ix: &Value| -> Vec<String> {
        ix["key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k[0].as_str().unwrap().to_string())
            .collect()
    };
    for (coll, name, keys, unique) in [
        (
            "log_panel_log",
            "timestamp_logger_level",
            vec!["timestamp", "logger_name", "level"],
            false,
        ),
        (
            "log_panel_log",
            "logger_name_timestamp",
            vec!["logger_name", "timestamp"],
            false,
        ),
        (
            "log_panel_log",
            "log_panel_log_message_chunked_be7ebdf6",
            vec!["message_chunked"],
            false,
        ),
        (
            "log_panel_log_message_chunk",
            "unique_log_message_chunk",
            vec!["log_id", "index"],
            true,
        ),
        (
            "log_panel_logger",
            "log_panel_logger_name_eed063d9_uniq",
            vec!["name"],
            true,
        ),
        (
            "log_panel_log_card",
            "log_panel_log_card_logger_id_6ea7e6a8_uniq",
            vec!["logger_id"],
            true,
        ),
        (
            "log_panel_log_timeline_bucket",
            "unique_timeline_bucket",
            vec!["logger_id", "bucket", "unit"],
            true,
        ),
        (
            "log_panel_log_timeline_bucket",
            "timeline_logger_unit_bucket",
            vec!["logger_id", "unit", "bucket"],
            false,
        ),
    ] {
        let all = listed(coll);
        let found = all.iter().find(|ix| {
            if standin() {
                keys_of(ix) == keys
            } else {
                ix["name"] == name
            }
        });
        let ix = found.unwrap_or_else(|| panic!("index {name} {keys:?} on {coll}: {all:?}"));
        assert_eq!(keys_of(ix), keys, "{name}");
        assert_eq!(ix["unique"], unique, "{name} unique");
        if !standin() && unique {
            assert!(
                ix["partial"].is_object(),
                "{name} is partial on the field types"
            );
        }
    }
    assert_eq!(
        v["migrations"],
        serde_json::json!([
            "0001_initial",
            "0002_log_message_chunked_log_message_size_logmessagechunk",
            "0003_logger_logcard_logtimelinebucket",
            "0004_alter_logtimelinebucket_unit"
        ])
    );
}

fn records(n: usize, now: DateTime<Utc>) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            timestamp: now - CDuration::minutes(37 * i as i64),
            level: [
                Level::Info,
                Level::Error,
                Level::Warning,
                Level::Critical,
                Level::Debug,
            ][i % 5],
            logger_name: ["alpha", "beta", "gamma"][i % 3].to_string(),
            module: "m".into(),
            pathname: "/p.py".into(),
            line_number: i as i32,
            message: if i == 4 {
                "big ".repeat(100)
            } else {
                format!("record {i}")
            },
        })
        .collect()
}

/// The layout of the cut and kill tests: small chunks, so record 4 is chunked.
fn cut_layout() -> Layout {
    Layout {
        preview: 50,
        chunk: 100,
        time_zone: chrono_tz::Tz::UTC,
    }
}

/// A fresh database with a first, complete batch, so the batch under test meets existing cards and
/// buckets.
async fn with_first_batch(prefix: &str, now: DateTime<Utc>) -> (String, MongoStore, MongoBackend) {
    let (url, store) = fresh(prefix).await;
    let backend = MongoBackend::open(&url, &MongoSettings::default()).unwrap();
    backend.migrate().await.unwrap();
    backend
        .write_batch(&Batch::build(
            records(6, now - CDuration::hours(1)),
            &cut_layout(),
        ))
        .await
        .unwrap();
    (url, store, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failed_half_way_is_exact_after_its_retry() {
    print_mode();
    let layout = cut_layout();
    let now = Utc::now();
    let mut cut = 0;
    loop {
        let (_, store, backend) = with_first_batch("mongo_cut", now).await;
        let batch = Batch::build(records(12, now), &layout);
        backend.fail_after_writes(cut);
        let first = backend.write_batch(&batch).await;
        backend.fail_after_writes(-1);
        if first.is_ok() {
            assert!(cut > 10, "a batch takes several writes; stopped at {cut}");
            break;
        }
        backend
            .write_batch(&batch)
            .await
            .unwrap_or_else(|e| panic!("retry after a failure at write {cut}: {e}"));
        assert_eq!(
            store.count("log_panel_log").await,
            18,
            "no row lost or doubled (cut at write {cut})"
        );
        assert_eq!(
            store.count("log_panel_log_message_chunk").await,
            8,
            "chunks exact (cut at write {cut})"
        );
        store.assert_counters_exact().await;
        cut += 1;
        assert!(cut < 100, "the batch never completed");
    }
}

/// A collector killed between a batch's inserts and its counter updates (at each write of the batch
/// in turn): only what reached the database survives. The next run replays the same records with
/// their ids, as the spool gives them back, the way delivery does (skip what is stored, write the
/// rest): every row once, and the counters of the rows that landed before the kill are applied once
/// (the batch journal's roll-forward), not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_half_way_is_exact_after_the_replay() {
    print_mode();
    let layout = cut_layout();
    let now = Utc::now();
    let mut cut = 0;
    loop {
        let (url, store, first_run) = with_first_batch("mongo_kill", now).await;
        let spooled: Vec<(uuid::Uuid, Record)> = records(12, now)
            .into_iter()
            .map(|r| (uuid::Uuid::now_v7(), r))
            .collect();
        first_run.fail_after_writes(cut);
        let died = first_run
            .write_batch(&Batch::build_with_ids(spooled.clone(), &layout))
            .await;
        drop(first_run); // the process is gone, and what it knew with it
        if died.is_ok() {
            assert!(cut > 10, "a batch takes several writes; stopped at {cut}");
            break;
        }
        let next_run = MongoBackend::open(&url, &MongoSettings::default()).unwrap();
        next_run.migrate().await.unwrap();
        let ids: Vec<uuid::Uuid> = spooled.iter().map(|(id, _)| *id).collect();
        let found = next_run.existing_ids(&ids).await.unwrap();
        let rest: Vec<_> = spooled
            .into_iter()
            .filter(|(id, _)| !found.contains(id))
            .collect();
        if !rest.is_empty() {
            next_run
                .write_batch(&Batch::build_with_ids(rest, &layout))
                .await
                .unwrap_or_else(|e| panic!("replay after a kill at write {cut}: {e}"));
        }
        assert_eq!(
            store.count("log_panel_log").await,
            18,
            "no row lost or doubled (killed at write {cut})"
        );
        assert_eq!(
            store.count("log_panel_log_message_chunk").await,
            8,
            "chunks exact (killed at write {cut})"
        );
        store.assert_counters_exact().await;
        assert_eq!(
            store.count("log_panel_collector_batches").await,
            0,
            "every journal entry closed (killed at write {cut})"
        );
        cut += 1;
        assert!(cut < 100, "the batch never completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_mongodb_is_exact_even_when_interrupted() {
    print_mode();
    let layout = Layout {
        preview: 50,
        chunk: 100,
        time_zone: chrono_tz::Tz::UTC,
    };
    let now = Utc::now();
    let cutoff = now - CDuration::days(90);
    // Interrupt the first retention batch after 0, 1, 2, ... writes (before, during and after the
    // subtraction), then run the pass again: the result is exact every time.
    let mut cut = 0;
    loop {
        let (url, store) = fresh("mongo_retention").await;
        let backend = MongoBackend::open(&url, &MongoSettings::default()).unwrap();
        backend.migrate().await.unwrap();
        backend
            .write_batch(&Batch::build(
                records(12, now - CDuration::days(100)),
                &layout,
            ))
            .await
            .unwrap();
        backend
            .write_batch(&Batch::build(records(12, now), &layout))
            .await
            .unwrap();
        assert_eq!(
            backend.count_older_than(cutoff).await.unwrap(),
            12,
            "the dry-run count"
        );
        backend.fail_after_writes(cut);
        let first = backend.delete_batch(cutoff, 8, chrono_tz::Tz::UTC).await;
        backend.fail_after_writes(-1);
        let deleted =
            log_panel_collector::retention::run_pass(&backend, cutoff, 8, chrono_tz::Tz::UTC)
                .await
                .unwrap();
        // A failed call may have deleted rows before it failed: what counts is what is left.
        assert!(deleted <= 12);
        assert_eq!(
            store.count("log_panel_log").await,
            12,
            "only the old rows are gone (cut at write {cut})"
        );
        assert_eq!(backend.count_older_than(cutoff).await.unwrap(), 0);
        assert!(store.rows().await.iter().all(|r| r.timestamp >= cutoff));
        store.assert_counters_exact().await;
        if first.is_ok() {
            break;
        }
        cut += 1;
        assert!(cut < 200, "the retention batch never completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_settings_take_precedence_over_the_uri() {
    print_mode();
    let (_, store) = fresh("mongo_settings").await;
    let base = mongo_base();
    let port = base
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        format!(
            "[storage]\nurl = \"mongodb://127.0.0.1:1/not_this_one?appName=x\"\ndatabase = \"{}\"\nport = {port}\n\
             [storage.options]\nserverSelectionTimeoutMS = 5000\ndirectConnection = true\n",
            store.db.name()
        ),
    )
    .unwrap();
    let out = run_ok(
        Command::new(binary())
            .arg("migrate")
            .arg("--config")
            .arg(&conf),
    );
    assert!(out.contains("applied 0001_initial"), "{out}");
    assert!(
        store.count("django_migrations").await >= 4,
        "the database named by the settings was migrated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_set_aside_without_doubling_what_landed() {
    print_mode();
    use log_panel_collector::collector::Collector;
    use log_panel_collector::service::activation::Activated;
    let (url, store) = fresh("mongo_refused").await;
    let mut cfg = test_config(&url);
    cfg.storage.context = false;
    cfg.batch.max_delay = Duration::from_millis(300);
    let backend = std::sync::Arc::new(MongoBackend::open(&url, &MongoSettings::default()).unwrap());
    backend.refuse_messages_with(Some("POISON pill"));
    let spool = tempfile::tempdir().unwrap();
    let settings = log_panel_collector::pipeline::spool::SpoolSettings {
        dir: spool.path().to_path_buf(),
        max_bytes: 64 << 20,
        sync: log_panel_collector::pipeline::spool::SyncPolicy::Always,
        segment_bytes: 1 << 20,
    };
    let c = Collector::start_spooled(&cfg, backend.clone(), Activated::default(), Some(settings))
        .await
        .unwrap();
    // One batch of 40 records, the 23rd of them refused: unordered insert_many lands the others.
    let mut data = Vec::new();
    for i in 0..40 {
        let text = if i == 22 {
            "POISON pill".to_string()
        } else {
            format!("fine {i}")
        };
        let line = format!("<14>1 2026-11-27T10:00:00Z host app{} - - - {text}", i % 3);
        data.extend(octet_frame(line.as_bytes()));
    }
    send_tcp(c.tcp_addrs()[0], &data);
    assert_eq!(store.wait_rows(40, Duration::from_secs(30)).await, 40);
    let stats = c.stats();
    let t0 = std::time::Instant::now();
    while stats.rows_written.get() + stats.error_records.get() < 40 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "delivery did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = c.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(
        rows.len(),
        40,
        "39 records and one error record, none twice"
    );
    let mut messages: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 40, "no document doubled");
    let stand_in: Vec<_> = rows
        .iter()
        .filter(|r| r.logger_name == "log-panel-collector")
        .collect();
    assert_eq!(stand_in.len(), 1);
    assert!(
        stand_in[0].message.contains("POISON pill"),
        "{}",
        stand_in[0].message
    );
    assert!(!rows.iter().any(|r| r.message == "POISON pill"));
    assert_eq!((s.rows_written, s.error_records), (39, 1));
    store.assert_counters_exact().await;
    eprintln!("mongodb refused batch: records=40 stored=39+1 error record duplicated=0");
}
