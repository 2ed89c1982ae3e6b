//! A batch as storage receives it: rows with their preview, chunk rows, and the per-batch counter
//! aggregates (cards per logger, timeline buckets per logger x hour/day), computed once here for every
//! backend. Keys are sorted so concurrent writers lock counter rows in the same order.

use crate::record::{Level, Record, split_message};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The Django-side settings that shape what is stored.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// `MESSAGE_PREVIEW_LENGTH`.
    pub preview: usize,
    /// `MESSAGE_CHUNK_SIZE`.
    pub chunk: usize,
    /// Django's `TIME_ZONE`, where timeline buckets start.
    pub time_zone: Tz,
}

/// One `log_panel_log` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub level: Level,
    pub logger_name: String,
    /// The preview (the complete text when not chunked).
    pub message: String,
    pub module: String,
    pub pathname: String,
    pub line_number: i32,
    pub message_chunked: bool,
    pub message_size: i32,
}

/// One `log_panel_log_message_chunk` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub id: Uuid,
    pub log_id: Uuid,
    pub index: i32,
    pub text: String,
}

/// Card increments for one logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerTotals {
    pub name: String,
    pub total: i64,
    pub errors: i64,
    pub warnings: i64,
    pub last_seen: DateTime<Utc>,
}

/// `unit` of a timeline bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Day,
    Hour,
}

impl Unit {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }
}

/// Bucket increments for one logger, unit and bucket start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketTotals {
    pub logger: String,
    pub unit: Unit,
    pub bucket: DateTime<Utc>,
    pub count: i64,
    pub errors: i64,
    pub warnings: i64,
}

/// Everything one transaction writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub chunks: Vec<Chunk>,
    /// Sorted by name.
    pub loggers: Vec<LoggerTotals>,
    /// Sorted by (logger, unit, bucket).
    pub buckets: Vec<BucketTotals>,
}

#[derive(Default)]
struct Counts {
    total: i64,
    errors: i64,
    warnings: i64,
}

impl Counts {
    fn add(&mut self, level: Level) {
        self.total += 1;
        self.errors += level.is_error() as i64;
        self.warnings += level.is_warning() as i64;
    }
}

/// Counter changes computed from records: per logger (cards) and per logger x unit x bucket start
/// (timeline buckets) in the Django time zone. Used for the increments of a batch and for the
/// decrements of a retention pass, so both agree with what `rebuild_log_cards` computes.
pub struct Aggregator {
    tz: Tz,
    cards: BTreeMap<String, (Counts, DateTime<Utc>)>,
    buckets: BTreeMap<(String, Unit, DateTime<Utc>), Counts>,
    /// Bucket starts of the last UTC hour seen: records of a batch mostly share one.
    last_hour: Option<(DateTime<Utc>, [DateTime<Utc>; 2])>,
}

impl Aggregator {
    /// Buckets start at hours and midnights of `tz`.
    pub fn new(tz: Tz) -> Self {
        Aggregator {
            tz,
            cards: BTreeMap::new(),
            buckets: BTreeMap::new(),
            last_hour: None,
        }
    }

    /// Counts one record.
    pub fn add(&mut self, logger: &str, timestamp: DateTime<Utc>, level: Level) {
        let starts = match self.last_hour {
            Some((h, s)) if timestamp >= h && timestamp < h + chrono::Duration::hours(1) => s,
            _ => {
                let s = [
                    hour_start(timestamp, self.tz),
                    day_start(timestamp, self.tz),
                ];
                if self.tz == Tz::UTC {
                    self.last_hour = Some((s[0], s));
                }
                s
            }
        };
        match self.cards.get_mut(logger) {
            Some((c, seen)) => {
                c.add(level);
                *seen = (*seen).max(timestamp);
            }
            None => {
                let mut c = Counts::default();
                c.add(level);
                self.cards.insert(logger.to_string(), (c, timestamp));
            }
        }
        for (unit, start) in [(Unit::Hour, starts[0]), (Unit::Day, starts[1])] {
            self.buckets
                .entry((logger.to_string(), unit, start))
                .or_default()
                .add(level);
        }
    }

    /// Counts a row read back from storage, whose level is the stored text.
    pub fn add_stored(&mut self, logger: &str, timestamp: DateTime<Utc>, level: &str) {
        self.add(logger, timestamp, level.parse().unwrap_or(Level::Info));
    }

    /// Per-logger totals sorted by name (`last_seen` is the latest timestamp counted), and bucket
    /// totals sorted by (logger, unit, bucket): the order every writer locks counter rows in.
    pub fn finish(self) -> (Vec<LoggerTotals>, Vec<BucketTotals>) {
        (
            self.cards
                .into_iter()
                .map(|(name, (c, last_seen))| LoggerTotals {
                    name,
                    total: c.total,
                    errors: c.errors,
                    warnings: c.warnings,
                    last_seen,
                })
                .collect(),
            self.buckets
                .into_iter()
                .map(|((logger, unit, bucket), c)| BucketTotals {
                    logger,
                    unit,
                    bucket,
                    count: c.total,
                    errors: c.errors,
                    warnings: c.warnings,
                })
                .collect(),
        )
    }
}

impl Batch {
    /// Splits messages, assigns ids and aggregates counters.
    pub fn build(records: Vec<Record>, layout: &Layout) -> Batch {
        // Time-ordered ids (v7) keep the primary-key B-tree appending instead of splitting pages
        // (raw COPY was 33% faster with them in docs/benchmarks.md).
        let with_ids = records.into_iter().map(|r| (Uuid::now_v7(), r)).collect();
        Batch::build_with_ids(with_ids, layout)
    }

    /// Like [`Batch::build`] for records whose ids were given before (spooled records keep theirs,
    /// so a replay or a rebuilt part of a batch can never store a second copy). Chunk ids derive from
    /// the row id and the index, so they are the same in every rebuild too.
    pub fn build_with_ids(records: Vec<(Uuid, Record)>, layout: &Layout) -> Batch {
        let mut rows = Vec::with_capacity(records.len());
        let mut chunks = Vec::new();
        let mut agg = Aggregator::new(layout.time_zone);
        for (id, r) in records {
            agg.add(&r.logger_name, r.timestamp, r.level);
            let split = split_message(&r.message, layout.preview, layout.chunk);
            let size = split.size.min(i32::MAX as usize) as i32;
            let (message, chunked) = if split.chunked() {
                for (i, text) in split.chunks.iter().enumerate() {
                    chunks.push(Chunk {
                        id: chunk_id(id, i),
                        log_id: id,
                        index: i as i32,
                        text: (*text).to_string(),
                    });
                }
                (split.preview.to_string(), true)
            } else {
                drop(split);
                (r.message, false)
            };
            rows.push(Row {
                id,
                timestamp: r.timestamp,
                level: r.level,
                logger_name: r.logger_name,
                message,
                module: r.module,
                pathname: r.pathname,
                line_number: r.line_number,
                message_chunked: chunked,
                message_size: size,
            });
        }
        let (loggers, buckets) = agg.finish();
        Batch {
            rows,
            chunks,
            loggers,
            buckets,
        }
    }
}

/// A chunk's id: the row's (time-ordered) id with the chunk index mixed into its random bits.
fn chunk_id(log_id: Uuid, index: usize) -> Uuid {
    let mut b = *log_id.as_bytes();
    let tail = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes"));
    let mixed =
        tail ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0x3FFF_FFFF_FFFF_FFFF);
    b[8..16].copy_from_slice(&mixed.to_be_bytes());
    Uuid::from_bytes(b)
}

impl Batch {
    /// The records again with their ids (complete messages from the chunks), to write a batch in
    /// parts when the database refuses it as a whole.
    pub fn records_with_ids(&self) -> Vec<(Uuid, Record)> {
        self.rows.iter().map(|r| r.id).zip(self.records()).collect()
    }

    /// The records again (complete messages from the chunks).
    pub fn records(&self) -> Vec<Record> {
        self.rows
            .iter()
            .map(|r| Record {
                timestamp: r.timestamp,
                level: r.level,
                logger_name: r.logger_name.clone(),
                module: r.module.clone(),
                pathname: r.pathname.clone(),
                line_number: r.line_number,
                message: if r.message_chunked {
                    self.chunks
                        .iter()
                        .filter(|c| c.log_id == r.id)
                        .map(|c| c.text.as_str())
                        .collect()
                } else {
                    r.message.clone()
                },
            })
            .collect()
    }
}

/// Start of the hour containing `ts`, in `tz`, as an instant.
pub fn hour_start(ts: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = ts.with_timezone(&tz);
    let floor = local
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0));
    match floor {
        Some(t) => t.with_timezone(&Utc),
        // The hour start does not exist in this zone (a gap): fall back to the UTC hour.
        None => ts
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(ts),
    }
}

/// Local midnight of the day containing `ts`, in `tz`, as an instant.
pub fn day_start(ts: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = ts.with_timezone(&tz);
    let date = NaiveDate::from_ymd_opt(local.year(), local.month(), local.day())
        .expect("a valid local date");
    let mut t = date.and_hms_opt(0, 0, 0).expect("midnight");
    // Some zones skip midnight on DST days: take the first local time that exists.
    for _ in 0..4 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    hour_start(ts, Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: &str, level: Level, name: &str, msg: &str) -> Record {
        Record {
            timestamp: ts.parse().unwrap(),
            ..Record::sample(level, name, msg)
        }
    }

    #[test]
    fn aggregates_cards_and_buckets_sorted() {
        let layout = Layout {
            preview: 5,
            chunk: 4,
            time_zone: Tz::UTC,
        };
        let b = Batch::build(
            vec![
                rec("2026-11-27T10:15:00Z", Level::Error, "b", "hello world"),
                rec("2026-11-27T10:45:00Z", Level::Warning, "a", "hi"),
                rec("2026-11-27T11:05:00Z", Level::Critical, "b", "x"),
                rec("2026-11-26T23:59:59Z", Level::Info, "b", "y"),
            ],
            &layout,
        );
        assert_eq!(b.rows.len(), 4);
        assert!(b.rows[0].message_chunked);
        assert_eq!(b.rows[0].message, "hello");
        assert_eq!(b.rows[0].message_size, 11);
        let texts: Vec<_> = b.chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["hell", "o wo", "rld"]);
        assert!(b.chunks.iter().all(|c| c.log_id == b.rows[0].id));
        assert_eq!(b.loggers.len(), 2);
        assert_eq!(b.loggers[0].name, "a");
        assert_eq!(
            (
                b.loggers[1].total,
                b.loggers[1].errors,
                b.loggers[1].warnings
            ),
            (3, 2, 0)
        );
        assert_eq!(
            b.loggers[1].last_seen.to_rfc3339(),
            "2026-11-27T11:05:00+00:00"
        );
        let keys: Vec<_> = b
            .buckets
            .iter()
            .map(|x| {
                (
                    x.logger.as_str(),
                    x.unit.as_str(),
                    x.bucket.format("%d %H").to_string(),
                    x.count,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("a", "day", "27 00".to_string(), 1),
                ("a", "hour", "27 10".to_string(), 1),
                ("b", "day", "26 00".to_string(), 1),
                ("b", "day", "27 00".to_string(), 2),
                ("b", "hour", "26 23".to_string(), 1),
                ("b", "hour", "27 10".to_string(), 1),
                ("b", "hour", "27 11".to_string(), 1),
            ]
        );
    }

    #[test]
    fn buckets_in_django_time_zone() {
        let vienna = chrono_tz::Europe::Vienna;
        let kolkata = chrono_tz::Asia::Kolkata;
        let start = |f: fn(DateTime<Utc>, Tz) -> DateTime<Utc>, ts: &str, tz: Tz| {
            f(ts.parse().unwrap(), tz).to_rfc3339()
        };
        // 23:30 UTC is 00:30 on the 27th in Vienna.
        let late = "2026-11-26T23:30:00Z";
        assert_eq!(start(day_start, late, vienna), "2026-11-26T23:00:00+00:00");
        assert_eq!(start(hour_start, late, vienna), "2026-11-26T23:00:00+00:00");
        assert_eq!(
            start(hour_start, late, kolkata),
            "2026-11-26T23:30:00+00:00"
        );
        // Summer time: Vienna is UTC+2, midnight is 22:00 UTC the day before.
        let summer = "2026-07-01T12:00:00Z";
        assert_eq!(
            start(day_start, summer, vienna),
            "2026-06-30T22:00:00+00:00"
        );
        // Fall-back day (25 Oct 2026): 02:30 local happens twice; each keeps its own hour.
        let (first, second) = ("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z");
        assert_eq!(
            start(hour_start, first, vienna),
            "2026-10-25T00:00:00+00:00"
        );
        assert_eq!(
            start(hour_start, second, vienna),
            "2026-10-25T01:00:00+00:00"
        );
        assert_eq!(
            start(day_start, second, vienna),
            "2026-10-24T22:00:00+00:00"
        );
    }
}
