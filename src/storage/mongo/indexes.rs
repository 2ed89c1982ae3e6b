//! The indexes django-mongodb-backend's migrations create for the panel's models, created by
//! `migrate` (panel-schema.md, MongoDB section).

use bson::{Document, doc};
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

const LOG: &str = "log_panel_log";
const CHUNK: &str = "log_panel_log_message_chunk";
const LOGGER: &str = "log_panel_logger";
const CARD: &str = "log_panel_log_card";
const BUCKET: &str = "log_panel_log_timeline_bucket";

/// An index of `coll` named `name`; `partial` limits it to the documents that match (as Django's
/// conditional constraints do).
fn index(
    coll: &'static str,
    name: &str,
    keys: Document,
    unique: bool,
    partial: Option<Document>,
) -> (&'static str, IndexModel) {
    let options = IndexOptions::builder()
        .name(name.to_string())
        .unique(unique.then_some(true))
        .partial_filter_expression(partial)
        .build();
    (
        coll,
        IndexModel::builder().keys(keys).options(options).build(),
    )
}

/// A unique index, over the documents that match `partial`.
fn unique(
    coll: &'static str,
    name: &str,
    keys: Document,
    partial: Option<Document>,
) -> (&'static str, IndexModel) {
    index(coll, name, keys, true, partial)
}

/// A plain index.
fn plain(coll: &'static str, name: &str, keys: Document) -> (&'static str, IndexModel) {
    index(coll, name, keys, false, None)
}

/// The indexes django-mongodb-backend's migrations create (panel-schema.md, MongoDB section).
#[rustfmt::skip] // a table: one index a line
pub(super) fn indexes() -> Vec<(&'static str, IndexModel)> {
    let string_id = || Some(doc! {"id": {"$type": "string"}});
    vec![
        unique(LOG, "log_panel_log_id_4e67d3d7_uniq", doc! {"id": 1}, string_id()),
        plain(LOG, "log_panel_log_timestamp_16bc740c", doc! {"timestamp": 1}),
        plain(LOG, "log_panel_log_logger_name_2f491f10", doc! {"logger_name": 1}),
        plain(LOG, "timestamp_logger_level", doc! {"timestamp": 1, "logger_name": 1, "level": 1}),
        plain(LOG, "logger_name_timestamp", doc! {"logger_name": 1, "timestamp": -1}),
        plain(LOG, "log_panel_log_message_chunked_be7ebdf6", doc! {"message_chunked": 1}),
        unique(CHUNK, "log_panel_log_message_chunk_id_88594bdf_uniq", doc! {"id": 1}, string_id()),
        plain(CHUNK, "log_panel_log_message_chunk_log_id_546a6a65", doc! {"log_id": 1}),
        unique(CHUNK, "unique_log_message_chunk", doc! {"log_id": 1, "index": 1}, Some(doc! {"log_id": {"$type": "string"}, "index": {"$type": "long"}})),
        plain(CHUNK, "log_message_chunk_order", doc! {"log_id": 1, "index": 1}),
        unique(LOGGER, "log_panel_logger_id_a7af854a_uniq", doc! {"id": 1}, string_id()),
        unique(LOGGER, "log_panel_logger_name_eed063d9_uniq", doc! {"name": 1}, Some(doc! {"name": {"$type": "string"}})),
        unique(CARD, "log_panel_log_card_id_bfe83192_uniq", doc! {"id": 1}, string_id()),
        unique(CARD, "log_panel_log_card_logger_id_6ea7e6a8_uniq", doc! {"logger_id": 1}, Some(doc! {"logger_id": {"$type": "string"}})),
        unique(BUCKET, "log_panel_log_timeline_bucket_id_2f130f00_uniq", doc! {"id": 1}, string_id()),
        plain(BUCKET, "log_panel_log_timeline_bucket_logger_id_96c38f85", doc! {"logger_id": 1}),
        unique(BUCKET, "unique_timeline_bucket", doc! {"logger_id": 1, "bucket": 1, "unit": 1}, Some(doc! {"logger_id": {"$type": "string"}, "bucket": {"$type": "date"}, "unit": {"$type": "string"}})),
        plain(BUCKET, "timeline_logger_unit_bucket", doc! {"logger_id": 1, "unit": 1, "bucket": 1}),
    ]
}
