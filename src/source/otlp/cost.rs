//! What decoding a request will cost in memory, known before decoding it. A protobuf body of empty
//! log records or attributes takes two bytes per record on the wire and over a hundred as decoded
//! structs, so the decoded size is computed from the wire format first (a walk that allocates
//! nothing) and charged against the decode budget; OTLP/JSON gets an upper bound from its brackets.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::mem::size_of;

/// Deeper nesting than this is refused (prost refuses past 100 levels anyway).
const MAX_DEPTH: usize = 100;

/// The message types of an OTLP logs request that allocate when decoded.
#[derive(Clone, Copy)]
enum Kind {
    Request,
    ResourceLogs,
    Resource,
    ScopeLogs,
    Scope,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

impl Kind {
    /// The type of field `field` of this message, when it is a message itself.
    fn child(self, field: u64) -> Option<Kind> {
        use Kind::*;
        Some(match (self, field) {
            (Request, 1) => ResourceLogs,
            (ResourceLogs, 1) => Resource,
            (ResourceLogs, 2) => ScopeLogs,
            (Resource, 1) => KeyValue,
            (ScopeLogs, 1) => Scope,
            (ScopeLogs, 2) => LogRecord,
            (Scope, 3) => KeyValue,
            (LogRecord, 5) => AnyValue,
            (LogRecord, 6) => KeyValue,
            (KeyValue, 2) => AnyValue,
            (AnyValue, 5) => ArrayValue,
            (AnyValue, 6) => KeyValueList,
            (ArrayValue, 1) => AnyValue,
            (KeyValueList, 1) => KeyValue,
            _ => return None,
        })
    }

    /// Bytes one decoded value takes, twice over for the slack of a growing `Vec`.
    fn size(self) -> usize {
        2 * match self {
            Kind::Request => size_of::<ExportLogsServiceRequest>(),
            Kind::ResourceLogs => size_of::<ResourceLogs>(),
            Kind::Resource => size_of::<Resource>(),
            Kind::ScopeLogs => size_of::<ScopeLogs>(),
            Kind::Scope => size_of::<InstrumentationScope>(),
            Kind::LogRecord => size_of::<LogRecord>(),
            Kind::KeyValue => size_of::<KeyValue>(),
            Kind::AnyValue => size_of::<AnyValue>(),
            Kind::ArrayValue => size_of::<ArrayValue>(),
            Kind::KeyValueList => size_of::<KeyValueList>(),
        }
    }
}

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Bytes the decoded request will take, at most.
    pub bytes: usize,
    /// Log records in the request.
    pub records: usize,
}

/// The wire format is broken; decoding would fail too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ExportLogsServiceRequest: {0}")]
pub struct Malformed(&'static str);

/// Walks a protobuf `ExportLogsServiceRequest` without decoding it.
pub fn protobuf(body: &[u8]) -> Result<Cost, Malformed> {
    let mut cost = Cost {
        bytes: Kind::Request.size(),
        records: 0,
    };
    walk(body, Kind::Request, 0, &mut cost)?;
    Ok(cost)
}

/// An upper bound for an OTLP/JSON body: every object or array becomes at most one decoded value
/// of the largest kind, and every string at most its own bytes.
pub fn json(body: &[u8]) -> Cost {
    let nodes = body.iter().filter(|&&b| b == b'{' || b == b'[').count();
    let largest = [
        Kind::LogRecord,
        Kind::ResourceLogs,
        Kind::ScopeLogs,
        Kind::Scope,
        Kind::KeyValue,
        Kind::AnyValue,
    ]
    .iter()
    .map(|k| k.size())
    .max()
    .unwrap_or(0);
    Cost {
        bytes: nodes.saturating_mul(largest).saturating_add(body.len()),
        records: 0,
    }
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or(Malformed("truncated varint"))?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed("varint too long"))
}

fn walk(buf: &[u8], kind: Kind, depth: usize, cost: &mut Cost) -> Result<(), Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed("nested too deeply"));
    }
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?)
                    .map_err(|_| Malformed("length too large"))?;
                let end = at
                    .checked_add(len)
                    .filter(|&e| e <= buf.len())
                    .ok_or(Malformed("length past the end"))?;
                match kind.child(field) {
                    Some(child) => {
                        if matches!(child, Kind::LogRecord) {
                            cost.records += 1;
                        }
                        cost.bytes = cost.bytes.saturating_add(child.size());
                        walk(&buf[at..end], child, depth + 1, cost)?;
                    }
                    // Strings and bytes become a heap copy of themselves.
                    None => cost.bytes = cost.bytes.saturating_add(len),
                }
                at = end;
            }
            _ => return Err(Malformed("unsupported wire type")),
        }
        if at > buf.len() {
            return Err(Malformed("field past the end"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    #[test]
    fn counts_records_and_bounds_the_decoded_size() {
        let req = crate::loadgen::request(0, 100, 50, 3);
        let body = req.encode_to_vec();
        let cost = protobuf(&body).unwrap();
        assert_eq!(cost.records, 100);
        assert!(cost.bytes > 100 * size_of::<LogRecord>(), "{cost:?}");
        assert!(
            cost.bytes < 40 * body.len(),
            "{cost:?} for {} bytes",
            body.len()
        );
    }

    #[test]
    fn empty_records_cost_what_they_take_decoded() {
        let scope = ScopeLogs {
            log_records: vec![LogRecord::default(); 10_000],
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![scope],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        assert!(body.len() < 30_000);
        let cost = protobuf(&body).unwrap();
        assert_eq!(cost.records, 10_000);
        assert!(cost.bytes >= 10_000 * size_of::<LogRecord>());
    }

    #[test]
    fn deep_nesting_and_broken_lengths_are_malformed() {
        let mut v = AnyValue {
            value: Some(Value::StringValue("x".into())),
        };
        for _ in 0..200 {
            v = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let lr = LogRecord {
            body: Some(v),
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![lr],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(protobuf(&req.encode_to_vec()).is_err());
        assert!(protobuf(&[0x0a, 0x05, 0x01]).is_err());
        assert!(protobuf(&[0x0b]).is_err(), "group wire type");
        assert_eq!(protobuf(&[]).unwrap().records, 0);
        assert!(json(b"[{},{},{}]").bytes > 3 * size_of::<LogRecord>());
    }
}
