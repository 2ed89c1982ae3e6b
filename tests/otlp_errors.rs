//! OTLP error answers, with curl and a raw gRPC client: OTLP/JSON and gzip accepted; malformed
//! protobuf or JSON 400 / INVALID_ARGUMENT, wrong content type 415, oversize 413, filters answered with
//! partial_success; and none of it loses the requests around it.

mod common;
use common::*;

use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// POSTs `body` with curl; returns (HTTP status, response body, response headers).
fn curl(addr: SocketAddr, content_type: &str, body: &[u8], gzip: bool) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("body");
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        std::fs::write(&f, e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(&f, body).unwrap();
    }
    let (out, hdr) = (dir.path().join("out"), dir.path().join("hdr"));
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-X",
        "POST",
        "-H",
        &format!("Content-Type: {content_type}"),
    ]);
    if gzip {
        cmd.args(["-H", "Content-Encoding: gzip"]);
    }
    cmd.arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg("-o")
        .arg(&out)
        .arg("-D")
        .arg(&hdr)
        .args(["-w", "%{http_code}"])
        .arg(format!("http://{addr}/v1/logs"));
    let code = run_ok(&mut cmd);
    (
        code.trim().parse().unwrap(),
        String::from_utf8_lossy(&std::fs::read(out).unwrap_or_default()).into_owned(),
        std::fs::read_to_string(hdr)
            .unwrap_or_default()
            .to_ascii_lowercase(),
    )
}

fn json_request(logger: &str, records: &[(&str, &str)]) -> Vec<u8> {
    let recs: Vec<Value> = records
        .iter()
        .map(|(sev, body)| {
            serde_json::json!({
                "timeUnixNano": "1764244800000000000",
                "severityNumber": sev,
                "body": {"stringValue": body},
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "attributes": [{"key": "code.lineno", "value": {"intValue": "12"}},
                               {"key": "code.filepath", "value": {"stringValue": "/srv/app/jobs.py"}}]
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl"}}]},
                          "scopeLogs": [{"scope": {"name": logger}, "logRecords": recs}]}]
    }))
    .unwrap()
}

const RAW_GRPC: &str = r#"
import sys, grpc
ch = grpc.insecure_channel(sys.argv[1])
call = ch.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    call(bytes.fromhex(sys.argv[2]), timeout=10)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
"#;

fn raw_grpc(addr: SocketAddr, body: &[u8]) -> String {
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    run_ok(
        Command::new(panel_python())
            .arg("-c")
            .arg(RAW_GRPC)
            .arg(addr.to_string())
            .arg(hex),
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_errors_are_answered_and_lose_nothing() {
    let db = TestDb::new(Engine::Postgres, "otlp_err").await;
    let mut cfg = test_config(&db.url);
    cfg.otlp.max_message_bytes = 8192;
    cfg.filter.min_level = log_panel_collector::record::Level::Info;
    let collector = start(&cfg).await;
    let http = collector.http_addr().unwrap();
    let grpc = collector.grpc_addr().unwrap();

    // OTLP/JSON: hex ids, int64 as strings, enum by name and by number.
    let (code, body, _) = curl(
        http,
        "application/json",
        &json_request("json.plain", &[("SEVERITY_NUMBER_WARN", "plain json")]),
        false,
    );
    assert_eq!(
        (code, body.as_str()),
        (200, "{}"),
        "success, no partial_success"
    );
    let (code, _, _) = curl(
        http,
        "application/json; charset=utf-8",
        &json_request("json.gzip", &[("17", "gzipped json")]),
        true,
    );
    assert_eq!(code, 200);
    // A filtered record is reported in partial_success; the other one is kept.
    let (code, body, _) = curl(
        http,
        "application/json",
        &json_request(
            "json.partial",
            &[("5", "debug, filtered"), ("9", "info, kept")],
        ),
        false,
    );
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let rejected = &v["partialSuccess"]["rejectedLogRecords"];
    assert!(rejected == 1 || rejected == "1", "{body}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("filters")
    );

    // Malformed protobuf, malformed JSON, wrong content type, oversize, gzip bomb, bad encoding.
    let (code, body, hdr) = curl(
        http,
        "application/x-protobuf",
        b"\xff\xff\xff\xff garbage",
        false,
    );
    assert_eq!(code, 400, "{body}");
    assert!(hdr.contains("content-type: application/x-protobuf"));
    assert!(
        body.contains("malformed ExportLogsServiceRequest"),
        "readable message in the Status: {body}"
    );
    let (code, body, _) = curl(http, "application/json", b"{\"resourceLogs\": [", false);
    assert_eq!(code, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP/JSON"),
        "{body}"
    );
    let (code, body, _) = curl(http, "text/plain", b"hello", false);
    assert_eq!(code, 415);
    assert!(body.contains("application/x-protobuf"));
    let big = json_request("json.big", &[("9", &"x".repeat(10_000))]);
    let (code, _, _) = curl(http, "application/json", &big, false);
    assert_eq!(code, 413, "over max_message_bytes");
    let (code, _, _) = curl(http, "application/json", &big, true);
    assert_eq!(code, 413, "over max_message_bytes once decompressed");
    // Empty bodies: an empty protobuf message is a valid, empty export; empty JSON is malformed.
    let (code, _, _) = curl(http, "application/x-protobuf", b"", false);
    assert_eq!(code, 200);
    let (code, _, _) = curl(http, "application/json", b"", false);
    assert_eq!(code, 400);

    // gRPC: a malformed request is INVALID_ARGUMENT, an empty one is fine.
    let out = raw_grpc(grpc, b"\xff\xff\xff\xff garbage");
    assert!(
        out.starts_with("INVALID_ARGUMENT malformed ExportLogsServiceRequest"),
        "{out}"
    );
    assert_eq!(raw_grpc(grpc, b""), "OK");
    // A valid protobuf request over raw gRPC after the bad one.
    use prost::Message;
    let req = log_panel_collector::source::otlp::decode_json(&json_request(
        "grpc.after",
        &[("13", "after the bad grpc call")],
    ))
    .unwrap();
    assert_eq!(raw_grpc(grpc, &req.encode_to_vec()), "OK");

    let store = db.store().await;
    assert_eq!(store.wait_rows(4, Duration::from_secs(10)).await, 4);
    // Shutdown writes whatever is still queued: a stray fifth record would show in the names below.
    let stats = collector.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    let names: std::collections::BTreeSet<_> =
        rows.iter().map(|r| r.logger_name.as_str()).collect();
    assert_eq!(
        names,
        ["grpc.after", "json.gzip", "json.partial", "json.plain"]
            .into_iter()
            .collect()
    );
    assert_eq!(stats.filtered, 1);
    let plain = rows.iter().find(|r| r.logger_name == "json.plain").unwrap();
    assert_eq!(
        (
            plain.level.as_str(),
            plain.line_number,
            plain.module.as_str()
        ),
        ("WARNING", 12, "jobs")
    );
    assert!(
        plain
            .message
            .contains("trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174")
    );
    assert_eq!(plain.timestamp.timestamp(), 1_764_244_800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_more_records_than_the_queue_holds_is_refused() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let db = TestDb::new(Engine::Sqlite, "otlp_many").await;
    let mut cfg = test_config(&db.url);
    cfg.batch.queue_bytes = 1 << 20;
    let collector = start(&cfg).await;
    // 12,000 empty records: 24 KB of protobuf, over a megabyte as records.
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 12_000],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = req.encode_to_vec();
    assert!(body.len() < 64 * 1024);
    let (code, text, _) = curl(
        collector.http_addr().unwrap(),
        "application/x-protobuf",
        &body,
        false,
    );
    assert_eq!(code, 413, "{text}");
    assert!(
        text.contains("more than the collector's queue holds"),
        "{text}"
    );
    let out = raw_grpc(collector.grpc_addr().unwrap(), &body);
    assert!(out.starts_with("RESOURCE_EXHAUSTED"), "{out}");
    collector
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(db.store().await.count("log_panel_log").await, 0);
}
