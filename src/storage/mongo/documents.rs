//! The document shapes django-mongodb-backend gives the panel's models: 32-hex string ids in field
//! `id`, Int64 integers, UTC Dates.

use crate::pipeline::batch::{Chunk, Row};
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use uuid::Uuid;

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

pub fn date(ts: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(ts.timestamp_millis())
}

pub fn hex(id: Uuid) -> String {
    id.simple().to_string()
}
