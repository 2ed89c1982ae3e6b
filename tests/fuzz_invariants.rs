//! The fuzz targets' invariants on stable `cargo test`: every seed of `fuzz/corpus/<target>/`, then
//! random mutations of them (a fixed count per target, `LPC_FUZZ_ITERATIONS`, default 20,000; seed
//! `LPC_FUZZ_SEED`). The coverage-guided runs are `scripts/fuzz.sh` (README, "Tests").
//!
//! `cargo test --test fuzz_invariants -- --ignored write_seed_corpus` rewrites the seed corpus from
//! the odd real-world inputs listed here (from tests/bad_input.rs, tests/senders.rs and the parse
//! unit tests).

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod lpc_fuzz;

#[path = "../src/source/otlp/test_requests.rs"]
mod test_requests;
use test_requests::{kv, s};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("framing", lpc_fuzz::framing),
    ("syslog_decode", lpc_fuzz::syslog_decode),
    ("otlp_protobuf", lpc_fuzz::otlp_protobuf),
    ("otlp_json", lpc_fuzz::otlp_json),
    ("config", lpc_fuzz::config),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// splitmix64, for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers, so that mutations reach their branches.
const INTERESTING: &[&[u8]] = &[
    b"<",
    b">",
    b"<13>",
    b"<191>",
    b"1 ",
    b" ",
    b"-",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"=",
    b"\n",
    b"\0",
    b"\r\n",
    b"\xff",
    b"\xef\xbb\xbf",
    b"2026-11-27T10:00:00Z",
    b"Nov 27 11:00:00 ",
    b"9999",
    b"99999999999",
    b"{",
    b"}",
    b":",
    b",",
    b"\"stringValue\"",
    b"\"intValue\"",
    b"[storage]",
    b"_ms = ",
    b"18446744073709551615",
    b"\"1000000000000000d\"",
    b"\xc3",
    b"\x80",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 if at < input.len() => {
                let n = 1 + rng.below((input.len() - at).min(16));
                input.drain(at..at + n);
            }
            3 => {
                let tok = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(at..at, tok.iter().copied());
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                input.splice(at..at, other[from..from + n].iter().copied());
            }
            5 if at < input.len() => {
                let n = 1 + rng.below((input.len() - at).min(64));
                let piece = input[at..at + n].to_vec();
                input.splice(at..at, piece.repeat(1 + rng.below(8)));
            }
            _ => input.insert(at, rng.next() as u8),
        }
    }
    input.truncate(16 * 1024);
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn run(name: &str, target: Target) {
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "no seeds for {name}");
    let check = |input: &[u8], what: &str| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = std::env::temp_dir().join("lpc-fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}-{}", what.replace(' ', "-")));
            std::fs::write(&path, input).unwrap();
            panic!(
                "{name}: invariant broken by {what} ({} bytes, saved to {}; replay with \
                 `cargo fuzz run {name} {}` in fuzz/)",
                input.len(),
                path.display(),
                path.display()
            );
        }
    };
    for (i, s) in seeds.iter().enumerate() {
        check(s, &format!("seed {i}"));
    }
    let iterations = env_num("LPC_FUZZ_ITERATIONS", 20_000);
    let seed = env_num("LPC_FUZZ_SEED", 0x6c70_6366);
    let mut rng = Rng(seed ^ name.len() as u64);
    for i in 0..iterations {
        let mut input = seeds[rng.below(seeds.len())].clone();
        let other = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, &mut input, other);
        check(&input, &format!("random input {i} of seed {seed}"));
    }
    println!(
        "{name}: {} seeds and {iterations} random inputs, invariants held",
        seeds.len()
    );
}

#[test]
fn framing() {
    run(TARGETS[0].0, TARGETS[0].1);
}

#[test]
fn syslog_decode() {
    run(TARGETS[1].0, TARGETS[1].1);
}

#[test]
fn otlp_protobuf() {
    run(TARGETS[2].0, TARGETS[2].1);
}

#[test]
fn otlp_json() {
    run(TARGETS[3].0, TARGETS[3].1);
}

#[test]
fn config() {
    run(TARGETS[4].0, TARGETS[4].1);
}

/// The odd syslog lines from the tests (bad_input.rs, senders.rs, parse.rs unit tests).
const SYSLOG_LINES: &[&[u8]] = &[
    b"<14>1 - h empty - - -",
    b"<14>1 - h utf8 - - - bad \xff\xfe bytes",
    b"Nov 27 11:00:00 host cron[9]: no pri here",
    br#"<12>1 - host nil - - [x@1 a="b\]c" d="e"] nil timestamp"#,
    b"\xff\xfe\x01\x02garbage that is no syslog",
    b"<14>1 - h nul - - - nul\0inside\0",
    b"",
    br#"<163>1 2026-11-27T10:00:00Z web01 nginx 77 REQ [meta x="1"] upstream timed out"#,
    br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] \xef\xbb\xbfAn application event"#,
    b"<13>1 - - - - - -",
    b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
    b"<13>Dec 31 23:59:59 host app: last line of the year",
    b"<13>Jan  1 00:00:01 host app: first line of the year",
    b"<11>myapp.views: Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n",
    b"<14>python.logger: message from SysLogHandler\x00",
    b"<13>1 2026-13-45T99:99:99Z host app - - - broken 5424 header",
    b"<13>1 0000-01-01T00:00:00Z host app - - - year zero",
    b"<13>1 9999-12-31T23:59:59.999999+14:00 host app - - - edge of time",
    b"<13>1 9999-12-31T23:59:59-12:00 host app - - - past 9999 in UTC",
    b"<999>not a pri",
    b"<13>Feb 29 12:00:00 host app: leap day",
    b"<13>2026-11-27T10:00:00+01:00 host app[1]: rfc3339 in 3164",
    b"<0>1 - - - - - [a][b c=\"\\\"\"] multiple elements",
    b"2026 was a year",
    b"<13>\r\n",
];

fn otlp_requests() -> Vec<ExportLogsServiceRequest> {
    let python = LogRecord {
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
    let structured = LogRecord {
        observed_time_unix_nano: 5_000_000_000,
        body: Some(AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("a", Value::IntValue(-1)),
                    kv(
                        "b",
                        Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue {
                                    value: Some(s("x\"y\u{1}")),
                                },
                                AnyValue { value: None },
                                AnyValue {
                                    value: Some(Value::DoubleValue(1e300)),
                                },
                                AnyValue {
                                    value: Some(Value::BytesValue(vec![0, 255])),
                                },
                            ],
                        }),
                    ),
                ],
            })),
        }),
        attributes: vec![
            kv("code.namespace", s("pkg.mod")),
            kv("code.lineno", s(" 12 ")),
        ],
        severity_text: "warn".into(),
        ..Default::default()
    };
    let far = LogRecord {
        time_unix_nano: u64::MAX,
        severity_number: 99,
        body: Some(AnyValue {
            value: Some(s(&"long \0 body ".repeat(100))),
        }),
        attributes: vec![kv("code.line.number", Value::DoubleValue(-3.5))],
        event_name: "event with space".into(),
        ..Default::default()
    };
    let request = |service: Option<&str>, scope: &str, records: Vec<LogRecord>| {
        let resource = service.map(|n| vec![kv("service.name", s(n)), kv("host", s("web 1"))]);
        test_requests::request(resource.unwrap_or_default(), scope, records)
    };
    vec![
        ExportLogsServiceRequest::default(),
        request(Some("shop"), "app.views", vec![python.clone()]),
        request(Some("svc"), "", vec![structured.clone(), far.clone()]),
        request(None, "", vec![LogRecord::default(); 3]),
        request(Some(&"s".repeat(300)), "", vec![python, structured, far]),
    ]
}

const OTLP_JSON: &[&str] = &[
    r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeLogs":[{"scope":{"name":"my.logger"},"logRecords":[
        {"timeUnixNano":"1764244800000000000","severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"hi"},
         "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
         "attributes":[{"key":"code.lineno","value":{"intValue":"12"}}]},
        {"timeUnixNano":1764244800000000001,"severityNumber":17,"body":{"intValue":5}}]}]}]}"#,
    r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[{"key":"k","value":{"arrayValue":{"values":[{"boolValue":true},{"doubleValue":1.5},{"bytesValue":"AP8="}]}}}]}}}]}]}]}"#,
    r#"{"resourceLogs":[]}"#,
    r#"{}"#,
    r#"{"resourceLogs": 5}"#,
    "",
];

const CONFIGS: &[&str] = &[
    "",
    "[storage]\nurl = \"sqlite://./x.sqlite3\"\n",
    include_str!("../packaging/config.toml"),
    r#"
        [storage]
        url = 42
        preview_length = "long"
        colour = "blue"
        [syslog]
        tcp = ["not an address"]
        max_frame = true
        [batch]
        max_delay_ms = -5
        [sinks]
        x = 1
    "#,
    r#"
        [storage]
        url = "postgres://u:p@127.0.0.1:5432/logs"
        time_zone = "Europe/Vienna"
        preview_length = 10
        chunk_size = 4
        context = false
        [syslog]
        udp = "127.0.0.1:0"
        tcp = []
        source_time_zone = "America/New_York"
        max_frame = 480
        logger_name = "{host}/{app}"
        [otlp]
        grpc = ""
        http = "[::1]:4318"
        max_message_bytes = 1
        queue_wait_ms = 0
        [filter]
        min_level = "warning"
        ignore_loggers = ["django.*", "x"]
        ignore_messages = ["health"]
        [batch]
        max_records = 1
        max_delay_ms = 1
        queue_bytes = 1
        writers = 1
        retry_initial_ms = 1
        retry_max_ms = 1
        [service]
        metrics = ""
        log_level = "debug"
        shutdown_timeout = "1s"
        [retention]
        days = 0
        interval = "1d"
        batch = 1
    "#,
    "[storage]\nurl = \"mongodb://h1,h2/db?replicaSet=rs0\"\ndatabase = \"logs\"\nport = 27017\n[storage.options]\nauthSource = \"admin\"\n",
    "[batch]\nretry_max_ms = 18446744073709551615\n",
    "[retention]\ninterval = \"99999999999999d\"\n",
    "[syslog]\nlogger_name = \"{nope}\"\n",
    "not toml at all = = =",
];

/// Writes the seed corpus (run by hand after changing the inputs above).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::File::create(dir.join(name))
            .unwrap()
            .write_all(data)
            .unwrap();
    };
    let octet = |m: &[u8]| {
        let mut w = format!("{} ", m.len()).into_bytes();
        w.extend_from_slice(m);
        w
    };
    for (i, line) in SYSLOG_LINES.iter().enumerate() {
        for flags in [0u8, 0x2b] {
            write(
                "syslog_decode",
                &format!("seed-{i:02}-{flags:02x}"),
                &[&[flags], *line].concat(),
            );
        }
    }
    // Framing: raw wires as the tests send them (max_frame 1024 and 2047), and structured plans.
    let mut wire = Vec::new();
    for line in SYSLOG_LINES.iter().filter(|l| l.starts_with(b"<")) {
        wire.extend(octet(line));
    }
    wire.extend(
        b"Nov 27 11:00:00 host cron[9]: no pri here\n\xff\xfe\x01garbage\n9 <13>hello<13>x\n",
    );
    wire.extend(b"10 <13>a\nb\nc\n7 <13>xyz\r\n\n\0<14>three\0");
    wire.extend(octet(
        format!("<14>1 - h longframe - - - {}", "x".repeat(1500)).as_bytes(),
    ));
    wire.extend(format!("<14>1 - h longline - - - {}\n", "y".repeat(1500)).as_bytes());
    wire.extend(b"<14>1 - h after2 - - - after the long line\n2026 was a year\n99999999999 <1>x");
    for (name, max) in [("wire-1024", 1023u16), ("wire-max", 2047)] {
        write(
            "framing",
            name,
            &[&[0u8], &max.to_le_bytes()[..], &wire].concat(),
        );
    }
    write(
        "framing",
        "small-max",
        &[
            &[0u8],
            &[15, 0][..],
            b"<13>one\n<13>tw\n30 <13>xxxxxxxxxxxxxxxxxxxxxxxxxx8 <13>next",
        ]
        .concat(),
    );
    let mut plan = vec![3u8, 0xff, 0x07];
    for (i, line) in SYSLOG_LINES.iter().enumerate() {
        plan.push(i as u8);
        plan.push(line.len() as u8);
        plan.extend_from_slice(line);
    }
    write("framing", "plan", &plan);
    let mut plan_small = plan.clone();
    plan_small[1] = 40;
    plan_small[2] = 0;
    write("framing", "plan-small", &plan_small);
    for (i, req) in otlp_requests().iter().enumerate() {
        let body = req.encode_to_vec();
        write(
            "otlp_protobuf",
            &format!("seed-{i:02}"),
            &[&[0u8], &body[..]].concat(),
        );
        write(
            "otlp_protobuf",
            &format!("seed-{i:02}-nocontext"),
            &[&[1u8], &body[..]].concat(),
        );
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).unwrap();
        write(
            "otlp_protobuf",
            &format!("seed-{i:02}-gzip"),
            &[&[2u8, 255], &z.finish().unwrap()[..]].concat(),
        );
        let json = serde_json::to_vec(req).unwrap();
        write(
            "otlp_json",
            &format!("seed-{i:02}-serde"),
            &[&[0u8], &json[..]].concat(),
        );
    }
    for (i, json) in OTLP_JSON.iter().enumerate() {
        write(
            "otlp_json",
            &format!("seed-json-{i:02}"),
            &[&[0u8], json.as_bytes()].concat(),
        );
    }
    for (i, c) in CONFIGS.iter().enumerate() {
        write("config", &format!("seed-{i:02}"), c.as_bytes());
    }
}
