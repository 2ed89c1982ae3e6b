//! OTLP logs over gRPC (`LogsService/Export`) and HTTP (`POST /v1/logs`, protobuf and JSON), with gzip.
//! Both transports share [`export`]: map, filter, queue all records of a request or none.

pub mod auth;
pub mod config;
pub mod cost;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod map;
#[cfg(test)]
pub(crate) mod test_requests;

use crate::context::ContextLimits;
use crate::pipeline::intake::{Intake, Offer, SubmitAllError};
use chrono::Utc;
use config::OtlpConfig;
use limits::{DecodeBudget, ShareError};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::ops::ControlFlow;
use std::sync::Arc;

/// What both OTLP listeners read per request: the `[otlp]` section, and whether the context line
/// is stored (`[storage] context`).
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub config: OtlpConfig,
    pub context: bool,
    /// Bearer tokens a request must carry (`None`: no authentication asked).
    pub tokens: Option<Arc<auth::Tokens>>,
}

impl OtlpSettings {
    /// The settings for `config`, with the context line on or off (and no bearer tokens asked).
    pub fn new(config: &OtlpConfig, context: bool) -> Self {
        OtlpSettings {
            config: config.clone(),
            context,
            tokens: None,
        }
    }

    /// How long each record's context line may grow, when it is stored.
    pub fn context_limits(&self) -> Option<ContextLimits> {
        self.context.then_some(ContextLimits {
            value: self.config.max_attribute_bytes,
            total: self.config.max_context_bytes,
        })
    }
}

impl OtlpSettings {
    /// Whether a request with this `Authorization` header value may export.
    pub fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        self.tokens
            .as_ref()
            .is_none_or(|t| t.accepts(authorization))
    }
}

/// The answer to a request without an accepted bearer token (no detail: nothing to probe with).
pub const UNAUTHENTICATED: &str = "missing or invalid bearer token";

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
    /// Decoding would take more memory than the whole decode budget (HTTP 413, gRPC
    /// RESOURCE_EXHAUSTED).
    #[error(
        "decoding this request would take {0} bytes, more than the collector's decode_budget; send smaller batches"
    )]
    TooExpensive(usize),
    /// Queue full or shutting down: retryable (HTTP 503 + Retry-After, gRPC UNAVAILABLE).
    #[error("the collector's queue is full (storage is slow or down); retry later")]
    Unavailable,
    /// The body did not arrive within `body_timeout` (HTTP 408, gRPC DEADLINE_EXCEEDED).
    #[error("the request body did not arrive within the collector's body_timeout")]
    Timeout,
    /// Other requests hold the decode budget: retryable (HTTP 503, gRPC UNAVAILABLE).
    #[error("the collector is busy decoding other requests; retry later")]
    Busy,
}

/// Seconds an exporter is asked to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 2;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Decodes, maps and queues one request body (already decompressed). Its decoded size is known
/// before decoding and taken from `budget`; its records take their queue bytes as they are mapped.
pub async fn export_body(
    body: &[u8],
    encoding: Encoding,
    intake: &Intake,
    settings: &OtlpSettings,
    budget: &DecodeBudget,
) -> Result<ExportLogsServiceResponse, ExportError> {
    let cost = match encoding {
        Encoding::Protobuf => {
            cost::protobuf(body).map_err(|e| ExportError::Invalid(e.to_string()))?
        }
        Encoding::Json => cost::json(body),
    };
    let stats = intake.stats();
    let deadline = tokio::time::Instant::now() + settings.config.queue_wait;
    let _share = match budget.take(cost.bytes, deadline).await {
        Ok(s) => s,
        Err(ShareError::TooLarge) => {
            stats.limit_hit("otlp_decode_budget");
            return Err(ExportError::TooExpensive(cost.bytes));
        }
        Err(ShareError::Busy) => {
            stats.limit_hit("otlp_decode_busy");
            return Err(ExportError::Busy);
        }
    };
    let req = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body).map_err(|e| {
            ExportError::Invalid(format!("malformed ExportLogsServiceRequest: {e}"))
        })?,
        Encoding::Json => decode_json(body)?,
    };
    export(&req, intake, settings).await
}

/// Maps and queues the records of one request: all of them or none, each taking its queue bytes as
/// it is mapped (waiting up to `queue_wait` for room), so a request is never expanded past the
/// room the queue has, nor accepted when it could never fit.
pub async fn export(
    req: &ExportLogsServiceRequest,
    intake: &Intake,
    settings: &OtlpSettings,
) -> Result<ExportLogsServiceResponse, ExportError> {
    let stats = intake.stats();
    let count: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| r.scope_logs.iter())
        .map(|s| s.log_records.len())
        .sum();
    if count.saturating_mul(crate::record::MIN_WEIGHT) > intake.queue().capacity() {
        stats.limit_hit("otlp_too_many_records");
        return Err(ExportError::TooManyRecords(count));
    }
    let deadline = tokio::time::Instant::now() + settings.config.queue_wait;
    let received = Utc::now();
    let limits = settings.context_limits();
    let mut taking = intake.request();
    let mut start = 0;
    let outcome: Result<(), SubmitAllError> = loop {
        // Map until a record's bytes are not free; wait for them, then go on after it.
        let mut index = start;
        let flow = map::each_record(req, received, limits, start, |r| {
            index += 1;
            match taking.offer(r) {
                Ok(Offer::Taken) => ControlFlow::Continue(()),
                Ok(Offer::Wait(r)) => ControlFlow::Break(Ok(r)),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        });
        match flow {
            ControlFlow::Continue(()) => break Ok(()),
            ControlFlow::Break(Err(e)) => break Err(e),
            ControlFlow::Break(Ok(waiting)) => {
                if let Err(e) = taking.wait_for(waiting, deadline).await {
                    break Err(e);
                }
                start = index;
            }
        }
    };
    let committed = match outcome {
        Ok(()) => taking.commit(deadline).await,
        Err(e) => Err(e),
    };
    let refused = match committed {
        Ok(refused) => refused,
        Err(SubmitAllError::TooLarge) => {
            stats.limit_hit("otlp_too_many_records");
            return Err(ExportError::TooManyRecords(count));
        }
        Err(SubmitAllError::Full | SubmitAllError::Closed) => {
            crate::stats::Stats::inc(&stats.otlp_unavailable);
            return Err(ExportError::Unavailable);
        }
    };
    if refused == 0 {
        return Ok(ExportLogsServiceResponse::default());
    }
    Ok(ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: refused as i64,
            error_message: format!(
                "{refused} log record(s) refused by the collector's filters (min_level, ignore_loggers, ignore_messages)"
            ),
        }),
    })
}

/// A budget for tests and tools that call [`export_body`] outside a collector.
pub fn default_budget() -> Arc<DecodeBudget> {
    DecodeBudget::new(OtlpConfig::default().decode_budget)
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
        let recs = map::records(&req, Utc::now(), Some(ContextLimits::NONE));
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
