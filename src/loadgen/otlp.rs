//! OTLP/gRPC mode of `log-panel-collector bench`: sends batches of log records over gRPC at a
//! configured size and rate, retrying what the collector answers UNAVAILABLE (its queue is full), so
//! the accepted rate is the rate the collector takes records in.

use super::{LoadError, LoadReport, LoadSpec, pace, share};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// One Export request of `n` records, numbered from `first`.
pub fn request(first: usize, n: usize, size: usize, loggers: usize) -> ExportLogsServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let pad: String = "x".repeat(size);
    let mut scopes: Vec<ScopeLogs> = (0..loggers.max(1))
        .map(|i| ScopeLogs {
            scope: Some(InstrumentationScope {
                name: format!("bench.logger{i}"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    for i in first..first + n {
        let mut body = format!("record {i} ");
        body.push_str(&pad);
        body.truncate(size.max(body.find(' ').unwrap_or(0) + 1));
        let scope = i % scopes.len();
        scopes[scope].log_records.push(LogRecord {
            time_unix_nano: now + i as u64,
            severity_number: [5, 9, 9, 9, 13, 17][i % 6],
            body: Some(AnyValue {
                value: Some(Value::StringValue(body)),
            }),
            attributes: vec![
                kv(
                    "code.file.path",
                    Value::StringValue("/srv/bench/worker.py".into()),
                ),
                kv("code.line.number", Value::IntValue((i % 500) as i64)),
            ],
            ..Default::default()
        });
    }
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("bench".into()))],
                ..Default::default()
            }),
            scope_logs: scopes
                .into_iter()
                .filter(|s| !s.log_records.is_empty())
                .collect(),
            ..Default::default()
        }],
    }
}

/// Sends `spec.records` records from `started` on, adding each accepted request's records to
/// `sent`, and returns once every request was accepted.
pub async fn run(
    spec: &LoadSpec,
    started: Instant,
    sent: &Arc<AtomicU64>,
) -> Result<LoadReport, LoadError> {
    let workers = spec.concurrency.max(1);
    let batch = spec.batch.max(1);
    let mut clients = Vec::with_capacity(workers);
    for _ in 0..workers {
        let client = LogsServiceClient::connect(spec.endpoint.clone())
            .await
            .map_err(|source| LoadError::Connect {
                endpoint: spec.endpoint.clone(),
                source,
            })?
            .max_encoding_message_size(usize::MAX);
        clients.push(client);
    }
    let per_worker_rate = share(spec.rate, workers);
    let mut tasks = tokio::task::JoinSet::new();
    for (w, mut client) in clients.into_iter().enumerate() {
        let spec = spec.clone();
        let total = sent.clone();
        tasks.spawn(async move {
            let (mut requests, mut retries) = (0usize, 0usize);
            let mut first = w * batch;
            let mut done = 0usize;
            while first < spec.records {
                let n = batch.min(spec.records - first);
                let req = request(first, n, spec.size, spec.loggers);
                loop {
                    match client.export(req.clone()).await {
                        Ok(_) => break,
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(s) => return Err(LoadError::Export(s)),
                    }
                }
                requests += 1;
                done += n;
                total.fetch_add(n as u64, Ordering::Relaxed);
                pace(started, done, per_worker_rate).await;
                first += workers * batch;
            }
            Ok((done, requests, retries))
        });
    }
    let mut report = LoadReport::default();
    while let Some(r) = tasks.join_next().await {
        let (s, q, t) = r.map_err(LoadError::Worker)??;
        report.records += s;
        report.requests += q;
        report.retries += t;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_hold_the_asked_records() {
        let r = request(10, 7, 40, 3);
        let recs: Vec<_> = r.resource_logs[0]
            .scope_logs
            .iter()
            .flat_map(|s| s.log_records.iter())
            .collect();
        assert_eq!(recs.len(), 7);
        let Some(Value::StringValue(b)) = &recs[0].body.as_ref().unwrap().value else {
            panic!()
        };
        assert_eq!(b.len(), 40);
        assert!(b.starts_with("record "));
    }
}
