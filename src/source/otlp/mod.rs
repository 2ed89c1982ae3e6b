//! OTLP logs over gRPC (`LogsService/Export`) and HTTP (`POST /v1/logs`, protobuf and JSON), with gzip.
//! Both transports share [`export`]: map, filter, queue all records of a request or none.

pub mod config;
pub mod grpc;
pub mod http;
pub mod map;

use crate::pipeline::intake::{Intake, SubmitAllError};
use chrono::Utc;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use std::io::Read;
use std::time::Duration;

/// What both OTLP listeners need.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// Largest request body (after decompression).
    pub max_message_bytes: usize,
    /// Append trace/span ids and attributes as the context line.
    pub context: bool,
    /// How long a request may wait for queue room before it is answered "unavailable, retry".
    pub queue_wait: Duration,
}

/// Why an export was not accepted; each maps to the status the OTLP specification asks for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    /// Malformed body: not retryable (HTTP 400, gRPC INVALID_ARGUMENT).
    #[error("{0}")]
    Invalid(String),
    /// Body over `max_message_bytes` (HTTP 413, gRPC RESOURCE_EXHAUSTED).
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// More records than the whole queue could hold (HTTP 413, gRPC RESOURCE_EXHAUSTED).
    #[error(
        "{0} log records in one request are more than the collector's queue holds; send smaller batches"
    )]
    TooManyRecords(usize),
    /// Queue full or shutting down: retryable (HTTP 503 + Retry-After, gRPC UNAVAILABLE).
    #[error("the collector's queue is full (storage is slow or down); retry later")]
    Unavailable,
}

/// Seconds an exporter is asked to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Maps and queues the records of one request.
pub async fn export(
    req: &ExportLogsServiceRequest,
    intake: &Intake,
    settings: &OtlpSettings,
) -> Result<ExportLogsServiceResponse, ExportError> {
    // A request of many tiny records would hold far more memory as records than as bytes: refuse one
    // that could not fit the queue even when empty, before mapping it.
    let count: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| r.scope_logs.iter())
        .map(|s| s.log_records.len())
        .sum();
    if count.saturating_mul(crate::record::MIN_WEIGHT) > intake.queue().capacity() {
        return Err(ExportError::TooManyRecords(count));
    }
    let records = map::records(req, Utc::now(), settings.context);
    match intake.submit_all(records, settings.queue_wait).await {
        Ok(0) => Ok(ExportLogsServiceResponse::default()),
        Ok(refused) => Ok(ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: refused as i64,
                error_message: format!(
                    "{refused} log record(s) refused by the collector's filters (min_level, ignore_loggers, ignore_messages)"
                ),
            }),
        }),
        Err(SubmitAllError::Full | SubmitAllError::Closed) => {
            crate::stats::Stats::inc(&intake.stats().otlp_unavailable);
            Err(ExportError::Unavailable)
        }
    }
}

/// Decompresses a gzip body, refusing to inflate past `limit` bytes.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ExportError::Invalid(format!("gzip body cannot be decompressed: {e}")))?;
    if out.len() > limit {
        return Err(ExportError::TooLarge(limit));
    }
    Ok(out)
}

/// Decodes an OTLP/JSON body (hex ids, integers as numbers or strings, enums as integers or names).
pub fn decode_json(body: &[u8]) -> Result<ExportLogsServiceRequest, ExportError> {
    let invalid =
        |e: serde_json::Error| ExportError::Invalid(format!("malformed OTLP/JSON body: {e}"));
    match serde_json::from_slice(body) {
        Ok(req) => Ok(req),
        // The generated types take severityNumber only as a JSON number; retry once with names
        // and numeric strings turned into numbers.
        Err(first) => {
            let mut v: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
            if !severity_names_to_numbers(&mut v) {
                return Err(invalid(first));
            }
            serde_json::from_value(v).map_err(invalid)
        }
    }
}

/// Protobuf's JSON mapping allows enum names and numeric strings; the generated serde types take
/// only numbers. Returns whether anything was changed.
fn severity_names_to_numbers(v: &mut serde_json::Value) -> bool {
    use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
    let mut changed = false;
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if (k == "severityNumber" || k == "severity_number")
                    && let Some(text) = x.as_str()
                {
                    let n = SeverityNumber::from_str_name(text)
                        .map(|n| n as i32)
                        .or_else(|| text.trim().parse::<i32>().ok());
                    if let Some(n) = n {
                        *x = serde_json::Value::from(n);
                        changed = true;
                    }
                } else {
                    changed |= severity_names_to_numbers(x);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for x in items {
                changed |= severity_names_to_numbers(x);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_hex_ids_string_ints_and_enum_names() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeLogs":[{"scope":{"name":"my.logger"},"logRecords":[
            {"timeUnixNano":"1764244800000000000","severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"hi"},
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "attributes":[{"key":"code.lineno","value":{"intValue":"12"}}]},
            {"timeUnixNano":1764244800000000001,"severityNumber":17,"body":{"intValue":5}}]}]}]}"#;
        let req = decode_json(body).unwrap();
        let recs = map::records(&req, Utc::now(), true);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].level, crate::record::Level::Warning);
        assert_eq!(recs[0].line_number, 12);
        assert!(
            recs[0]
                .message
                .contains("trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174")
        );
        assert_eq!(recs[1].level, crate::record::Level::Error);
        assert!(recs[1].message.starts_with("5\n"));
    }

    #[test]
    fn bad_json_and_bad_gzip_are_invalid() {
        assert!(matches!(
            decode_json(b"{\"resourceLogs\": 5}"),
            Err(ExportError::Invalid(_))
        ));
        assert!(matches!(decode_json(b""), Err(ExportError::Invalid(_))));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(ExportError::Invalid(_))
        ));
    }

    #[test]
    fn gzip_bomb_is_too_large() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(gunzip(&z, 1000), Err(ExportError::TooLarge(1000)));
        assert_eq!(gunzip(&z, 2 << 20).unwrap().len(), 1 << 20);
    }
}
