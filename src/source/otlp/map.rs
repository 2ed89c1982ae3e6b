//! OTLP log records to panel [`Record`]s (mapping.md, "OTLP logs").

use crate::context::{ContextLimits, ContextLine, clip_bytes};
use crate::record::{LOGGER_NAME_MAX, Level, Record, clip_chars};
use chrono::{DateTime, TimeZone, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::fmt::Write as _;
use std::ops::ControlFlow;

/// Severity number (1-24) or, when unspecified, severity text, to a panel level.
pub fn level(number: i32, text: &str) -> Level {
    match number {
        1..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warning,
        17..=20 => Level::Error,
        21..=24 => Level::Critical,
        _ => match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" | "DEBUG" => Level::Debug,
            "WARN" | "WARNING" => Level::Warning,
            "ERROR" | "ERR" => Level::Error,
            "FATAL" | "CRITICAL" | "CRIT" | "ALERT" | "EMERG" | "EMERGENCY" => Level::Critical,
            _ => Level::Info,
        },
    }
}

/// An AnyValue as text: strings as they are, everything else as compact JSON.
pub fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        _ => {
            let mut out = String::new();
            write_json(&mut out, v);
            out
        }
    }
}

fn write_json(out: &mut String, v: &AnyValue) {
    match &v.value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => {
            out.push_str(&serde_json::Value::from(s.as_str()).to_string())
        }
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        // A string-table index (profiles only); logs never carry one, but keep what came.
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => out.push_str(&serde_json::Value::from(*d).to_string()),
        Some(Value::BytesValue(b)) => {
            out.push('"');
            for x in b {
                let _ = write!(out, "{x:02x}");
            }
            out.push('"');
        }
        Some(Value::ArrayValue(a)) => write_list(out, ['[', ']'], &a.values, write_json),
        Some(Value::KvlistValue(kv)) => write_list(out, ['{', '}'], &kv.values, |out, x| {
            out.push_str(&serde_json::Value::from(x.key.as_str()).to_string());
            out.push(':');
            match &x.value {
                Some(v) => write_json(out, v),
                None => out.push_str("null"),
            }
        }),
    }
}

/// Writes `items` comma-separated between the two `brackets`.
fn write_list<T>(out: &mut String, brackets: [char; 2], items: &[T], each: fn(&mut String, &T)) {
    out.push(brackets[0]);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, x);
    }
    out.push(brackets[1]);
}

fn attr<'a>(attrs: &'a [KeyValue], keys: &[&str]) -> Option<&'a AnyValue> {
    keys.iter()
        .find_map(|k| attrs.iter().find(|a| a.key == *k))
        .and_then(|a| a.value.as_ref())
}

fn nanos(t: u64) -> Option<DateTime<Utc>> {
    (t != 0).then(|| Utc.timestamp_nanos(t.min(i64::MAX as u64) as i64))
}

fn hex(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty() && bytes.iter().any(|&b| b != 0)).then(|| {
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
        s
    })
}

/// Attribute keys that have a column (or the message) of their own.
const USED: [&str; 8] = [
    "code.file.path",
    "code.filepath",
    "code.line.number",
    "code.lineno",
    "code.namespace",
    "exception.stacktrace",
    "exception.type",
    "exception.message",
];

/// Maps every log record of a request; `received` stands in for missing timestamps. With
/// `context`, each message gets its context line, kept to those limits.
pub fn records(
    req: &ExportLogsServiceRequest,
    received: DateTime<Utc>,
    context: Option<ContextLimits>,
) -> Vec<Record> {
    let mut out = Vec::new();
    let _ = each_record(req, received, context, 0, |r| {
        out.push(r);
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Like [`records`], one record at a time from the `start`th on, so the caller can account for each
/// as it comes, stop, and go on later: a request is never expanded in full before its size is known.
pub fn each_record<B>(
    req: &ExportLogsServiceRequest,
    received: DateTime<Utc>,
    context: Option<ContextLimits>,
    start: usize,
    mut f: impl FnMut(Record) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let mut skip = start;
    for rl in &req.resource_logs {
        let in_resource: usize = rl.scope_logs.iter().map(|s| s.log_records.len()).sum();
        if skip >= in_resource {
            skip -= in_resource;
            continue;
        }
        let resource: &[KeyValue] = rl
            .resource
            .as_ref()
            .map(|r| &r.attributes[..])
            .unwrap_or(&[]);
        // Resource attributes are the same for every record of the resource: rendered (and cut to
        // the limits) once.
        let shared = context.map(|limits| {
            let mut line = ContextLine::limited(limits);
            for kv in resource {
                if let Some(v) = &kv.value {
                    line.push(&kv.key, Some(&value_text_clipped(v, limits.value)));
                }
            }
            line
        });
        let service =
            attr(resource, &["service.name"]).map(|v| value_text_clipped(v, LOGGER_NAME_MAX * 4));
        for sl in &rl.scope_logs {
            if skip >= sl.log_records.len() {
                skip -= sl.log_records.len();
                continue;
            }
            let scope = sl
                .scope
                .as_ref()
                .map(|s| s.name.as_str())
                .filter(|n| !n.is_empty());
            let mut logger_name = scope
                .map(|s| clip_bytes(s, LOGGER_NAME_MAX * 4).to_string())
                .or_else(|| service.clone().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "otlp".to_string());
            clip_chars(&mut logger_name, LOGGER_NAME_MAX);
            for lr in &sl.log_records[std::mem::take(&mut skip)..] {
                let ctx = context.zip(shared.as_ref());
                f(record(lr, &logger_name, received, ctx))?;
            }
        }
    }
    ControlFlow::Continue(())
}

/// [`value_text`], cut to about `max` bytes without rendering more than that of a long string.
fn value_text_clipped(v: &AnyValue, max: usize) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => clip_bytes(s, max.saturating_add(1)).to_string(),
        _ => value_text(v),
    }
}

fn record(
    lr: &LogRecord,
    logger_name: &str,
    received: DateTime<Utc>,
    context: Option<(ContextLimits, &ContextLine)>,
) -> Record {
    let attrs = &lr.attributes[..];
    let pathname = attr(attrs, &["code.file.path", "code.filepath"])
        .map(value_text)
        .unwrap_or_default();
    let line_number =
        match attr(attrs, &["code.line.number", "code.lineno"]).and_then(|v| v.value.as_ref()) {
            Some(Value::IntValue(i)) => (*i).clamp(0, i32::MAX as i64) as i32,
            Some(Value::StringValue(s)) => s.trim().parse().unwrap_or(0),
            Some(Value::DoubleValue(d)) => d.clamp(0.0, i32::MAX as f64) as i32,
            _ => 0,
        };
    let module = if pathname.is_empty() {
        attr(attrs, &["code.namespace"])
            .map(value_text)
            .unwrap_or_default()
    } else {
        let file = pathname.rsplit(['/', '\\']).next().unwrap_or(&pathname);
        file.rsplit_once('.')
            .map(|(stem, _)| stem)
            .unwrap_or(file)
            .to_string()
    };
    let mut message = lr.body.as_ref().map(value_text).unwrap_or_default();
    if let Some(trace) = attr(attrs, &["exception.stacktrace"]).map(value_text) {
        message.push('\n');
        message.push_str(trace.strip_suffix('\n').unwrap_or(&trace));
    } else {
        let ty = attr(attrs, &["exception.type"]).map(value_text);
        let msg = attr(attrs, &["exception.message"]).map(value_text);
        match (ty, msg) {
            (Some(t), Some(m)) => {
                let _ = write!(message, "\n{t}: {m}");
            }
            (Some(x), None) | (None, Some(x)) => {
                message.push('\n');
                message.push_str(&x);
            }
            (None, None) => {}
        }
    }
    if let Some((limits, shared)) = context {
        let mut ctx = ContextLine::limited(limits);
        ctx.push("trace_id", hex(&lr.trace_id).as_deref())
            .push("span_id", hex(&lr.span_id).as_deref())
            .push("event", Some(lr.event_name.as_str()))
            .push_rendered(shared);
        for kv in attrs.iter().filter(|a| !USED.contains(&a.key.as_str())) {
            if let Some(v) = &kv.value {
                ctx.push(&kv.key, Some(&value_text_clipped(v, limits.value)));
            }
        }
        ctx.append_to(&mut message, true);
    }
    Record {
        timestamp: nanos(lr.time_unix_nano)
            .or_else(|| nanos(lr.observed_time_unix_nano))
            .unwrap_or(received),
        level: level(lr.severity_number, &lr.severity_text),
        logger_name: logger_name.to_string(),
        module,
        pathname,
        line_number,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_requests::{self, kv, s};
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn request(scope: &str, service: Option<&str>, lr: LogRecord) -> ExportLogsServiceRequest {
        let resource = service.map(|n| vec![kv("service.name", s(n))]);
        test_requests::request(resource.unwrap_or_default(), scope, vec![lr])
    }

    #[test]
    fn levels() {
        assert_eq!(level(1, ""), Level::Debug);
        assert_eq!(level(9, "ERROR"), Level::Info, "the number wins");
        assert_eq!(level(13, ""), Level::Warning);
        assert_eq!(level(17, ""), Level::Error);
        assert_eq!(level(24, ""), Level::Critical);
        assert_eq!(level(0, "warn"), Level::Warning);
        assert_eq!(level(0, "Fatal"), Level::Critical);
        assert_eq!(level(0, "err"), Level::Error);
        assert_eq!(level(0, "whatever"), Level::Info);
        assert_eq!(level(0, ""), Level::Info);
    }

    #[test]
    fn python_handler_record() {
        let lr = LogRecord {
            time_unix_nano: 1_764_244_800_123_456_789,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(s("boom")),
            }),
            attributes: vec![
                kv("code.file.path", s("/srv/app/views.py")),
                kv("code.line.number", Value::IntValue(42)),
                kv("code.function.name", s("index")),
                kv("exception.type", s("ValueError")),
                kv("exception.message", s("bad")),
                kv(
                    "exception.stacktrace",
                    s("Traceback (most recent call last):\nValueError: bad\n"),
                ),
                kv("user", s("ann marie")),
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        };
        let r = &records(
            &request("app.views", Some("shop"), lr),
            Utc::now(),
            Some(ContextLimits::NONE),
        )[0];
        assert_eq!(r.logger_name, "app.views");
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.pathname, "/srv/app/views.py");
        assert_eq!(r.module, "views");
        assert_eq!(r.line_number, 42);
        assert_eq!(
            r.timestamp.timestamp_nanos_opt(),
            Some(1_764_244_800_123_456_789)
        );
        let (text, ctx) = r.message.rsplit_once('\n').unwrap();
        assert_eq!(
            text,
            "boom\nTraceback (most recent call last):\nValueError: bad"
        );
        assert_eq!(
            ctx,
            format!(
                "trace_id={} span_id={} service.name=shop code.function.name=index user=\"ann marie\"",
                "ab".repeat(16),
                "cd".repeat(8)
            )
        );
    }

    #[test]
    fn fallbacks_and_structured_body() {
        let lr = LogRecord {
            observed_time_unix_nano: 5_000_000_000,
            body: Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("a", Value::IntValue(1)),
                        kv(
                            "b",
                            Value::ArrayValue(ArrayValue {
                                values: vec![AnyValue {
                                    value: Some(s("x\"y")),
                                }],
                            }),
                        ),
                    ],
                })),
            }),
            attributes: vec![kv("code.namespace", s("pkg.mod"))],
            ..Default::default()
        };
        let r = &records(&request("", Some("svc"), lr.clone()), Utc::now(), None)[0];
        assert_eq!(r.logger_name, "svc");
        assert_eq!(r.module, "pkg.mod");
        assert_eq!(r.message, r#"{"a":1,"b":["x\"y"]}"#);
        assert_eq!(r.timestamp.timestamp(), 5);
        assert_eq!(r.level, Level::Info);
        let r = &records(&request("", None, lr), Utc::now(), None)[0];
        assert_eq!(r.logger_name, "otlp");
    }
}
