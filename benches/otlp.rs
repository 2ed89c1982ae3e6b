//! OTLP decode + map throughput (records/s): protobuf and JSON request bodies of 1000 records, decoded
//! and mapped to panel records, as the gRPC and HTTP listeners do per request.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use log_panel_collector::context::ContextLimits;
use log_panel_collector::loadgen::request;
use log_panel_collector::source::otlp::{decode_json, map};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use std::hint::black_box;
use std::time::Duration;

fn otlp(c: &mut Criterion) {
    let req = request(0, 1000, 256, 8);
    let proto = req.encode_to_vec();
    let json = serde_json::to_vec(&req).unwrap();
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("otlp_decode_map");
    g.throughput(Throughput::Elements(1000))
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g.bench_function("protobuf_1000_records", |b| {
        b.iter(|| {
            let r = ExportLogsServiceRequest::decode(black_box(proto.as_slice())).unwrap();
            black_box(map::records(
                &r,
                now,
                Some(ContextLimits {
                    value: 4096,
                    total: 16384,
                }),
            ))
        })
    });
    g.bench_function("json_1000_records", |b| {
        b.iter(|| {
            let r = decode_json(black_box(&json)).unwrap();
            black_box(map::records(
                &r,
                now,
                Some(ContextLimits {
                    value: 4096,
                    total: 16384,
                }),
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, otlp);
criterion_main!(benches);
