//! The indexes django-mongodb-backend's migrations create for the panel's models, created by
//! `migrate` (panel-schema.md, MongoDB section).

use bson::{Document, doc};
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

/// The indexes django-mongodb-backend's migrations create (panel-schema.md, MongoDB section).
pub(super) fn indexes() -> Vec<(&'static str, IndexModel)> {
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
