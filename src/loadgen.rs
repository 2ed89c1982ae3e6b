//! The collector's own OTLP load generator (`log-panel-collector bench`): sends batches of log records
//! over gRPC at a configured size and rate, retrying what the collector answers UNAVAILABLE, so
//! end-to-end figures can be taken beside the database's own COPY limit.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `http://HOST:PORT` of an OTLP/gRPC receiver.
    pub endpoint: String,
    /// Records in all.
    pub records: usize,
    /// Records per Export request.
    pub batch: usize,
    /// Characters of each record's body.
    pub size: usize,
    /// Parallel connections.
    pub concurrency: usize,
    /// Records per second over all connections; `None` sends as fast as the receiver takes them.
    pub rate: Option<u64>,
    /// Distinct scope (logger) names.
    pub loggers: usize,
}

/// What was sent.
#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    pub records: usize,
    pub requests: usize,
    /// Requests answered UNAVAILABLE and sent again.
    pub retries: usize,
    pub elapsed: Duration,
}

/// Why the load run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("export failed: {0}")]
    Export(#[from] tonic::Status),
}

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

/// Sends `spec.records` records and returns once every request was accepted.
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    let started = Instant::now();
    let workers = spec.concurrency.max(1);
    let batch = spec.batch.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let client = LogsServiceClient::connect(spec.endpoint.clone())
            .await
            .map_err(|source| LoadError::Connect {
                endpoint: spec.endpoint.clone(),
                source,
            })?
            .max_encoding_message_size(usize::MAX);
        let spec = spec.clone();
        tasks.spawn(async move {
            let mut client = client;
            let (mut requests, mut retries) = (0usize, 0usize);
            let per_worker_rate = spec.rate.map(|r| (r as f64 / workers as f64).max(1.0));
            let mut first = w * batch;
            let mut sent = 0usize;
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
                sent += n;
                if let Some(rate) = per_worker_rate {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                first += workers * batch;
            }
            Ok((sent, requests, retries))
        });
    }
    let mut report = LoadReport {
        records: 0,
        requests: 0,
        retries: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(r) = tasks.join_next().await {
        let (s, q, t) = r.expect("load worker")?;
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
