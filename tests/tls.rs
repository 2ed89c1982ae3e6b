//! TLS and authentication with real clients: the `[tls]` material and its errors, syslog over TLS
//! (RFC 5425) from rsyslog and `openssl s_client`, OTLP over TLS from the OpenTelemetry SDK
//! exporters with client certificates and bearer tokens, refusals (no / foreign / expired client
//! certificate, wrong / missing token, plain text on a TLS port) with nothing stored, the real admin,
//! and SIGHUP swapping the certificate under TLS traffic.

mod common;
use common::pki::Pki;
use common::*;

use log_panel_collector::config::TlsConfig;
use log_panel_collector::tls::{self, MinVersion, TlsSettings};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn settings(pki: &Pki, server: &str, client_ca: bool) -> TlsSettings {
    TlsSettings {
        cert: pki.path(&format!("{server}.pem")),
        key: pki.path(&format!("{server}.key")),
        client_ca: client_ca.then(|| pki.ca_cert()),
        client_names: vec![],
        min_version: MinVersion::Tls12,
    }
}

#[test]
fn material_errors_name_the_key() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "server",
        "localhost",
        "DNS:localhost,IP:127.0.0.1",
        true,
        30,
    );
    pki.leaf("ca", "other", "other", "DNS:other", true, 30);
    assert!(tls::load(&settings(&pki, "server", true)).is_ok());

    let mut s = settings(&pki, "server", false);
    s.cert = pki.path("missing.pem");
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("tls.cert: cannot read") && e.contains("missing.pem"),
        "{e}"
    );

    std::fs::write(pki.path("garbage.pem"), "not a certificate\n").unwrap();
    let mut s = settings(&pki, "server", false);
    s.cert = pki.path("garbage.pem");
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("tls.cert: ") && e.contains("no CERTIFICATE"),
        "{e}"
    );
    let mut s = settings(&pki, "server", false);
    s.key = pki.path("garbage.pem");
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("tls.key: ") && e.contains("no PRIVATE KEY"),
        "{e}"
    );
    // A PEM block cut in the middle.
    let pem = std::fs::read_to_string(pki.path("server.pem")).unwrap();
    std::fs::write(pki.path("cut.pem"), &pem[..pem.len() / 2]).unwrap();
    let mut s = settings(&pki, "server", false);
    s.cert = pki.path("cut.pem");
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(e.starts_with("tls.cert: "), "{e}");

    let mut s = settings(&pki, "server", false);
    s.key = pki.path("other.key");
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("tls.key: ") && e.contains("does not match"),
        "{e}"
    );

    let mut s = settings(&pki, "server", true);
    s.client_ca = Some(pki.path("garbage.pem"));
    let e = tls::load(&s).unwrap_err().to_string();
    assert!(e.starts_with("tls.client_ca: "), "{e}");
    let mut s = settings(&pki, "server", true);
    s.client_ca = Some(pki.path("nope.pem"));
    let e = tls::load(&s).unwrap_err();
    assert_eq!(e.key(), "tls.client_ca", "{e}");
}

#[test]
fn client_names_match_subject_cn_or_san() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "relay",
        "relay.example",
        "DNS:relay-alt.example,IP:10.1.2.3",
        false,
        30,
    );
    pki.leaf("ca", "bare", "bare-cn-only", "", false, 30);
    let der = |name: &str| CertificateDer::from_pem_file(pki.path(&format!("{name}.pem"))).unwrap();
    let relay = der("relay");
    assert!(
        tls::names::cert_has_name(&relay, "relay-alt.example"),
        "SAN DNS name"
    );
    assert!(
        tls::names::cert_has_name(&relay, "10.1.2.3"),
        "SAN IP address"
    );
    assert!(
        tls::names::cert_has_name(&relay, "RELAY.example"),
        "subject CN, any case"
    );
    assert!(!tls::names::cert_has_name(&relay, "relay"));
    assert!(!tls::names::cert_has_name(&relay, "other.example"));
    let bare = der("bare");
    assert_eq!(
        tls::names::subject_common_names(bare.as_ref()),
        vec!["bare-cn-only"]
    );
    assert!(tls::names::cert_has_name(&bare, "bare-cn-only"));
}

/// A fresh PKI: the server (localhost, 127.0.0.1), the relay's client certificate (`relay.test`),
/// a client with a name not accepted, a client of another CA, and an expired client.
fn test_pki() -> Pki {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "server",
        "localhost",
        "DNS:localhost,IP:127.0.0.1",
        true,
        30,
    );
    pki.leaf("ca", "relay", "relay.test", "DNS:relay.test", false, 30);
    pki.leaf(
        "ca",
        "intruder",
        "intruder.test",
        "DNS:intruder.test",
        false,
        30,
    );
    pki.ca("stranger-ca", "Some Other CA");
    pki.leaf(
        "stranger-ca",
        "stranger",
        "relay.test",
        "DNS:relay.test",
        false,
        30,
    );
    pki.leaf("ca", "expired", "relay.test", "DNS:relay.test", false, -1);
    pki
}

/// `[tls]` for the server certificate; with `client_ca`, client certificates of the test CA named
/// `relay.test` are required.
fn tls_section(pki: &Pki, client_ca: bool) -> TlsConfig {
    TlsConfig {
        cert: Some(pki.path("server.pem")),
        key: Some(pki.path("server.key")),
        client_ca: client_ca.then(|| pki.ca_cert()),
        client_names: if client_ca {
            vec!["relay.test".into()]
        } else {
            vec![]
        },
        min_version: MinVersion::Tls12,
    }
}

/// `openssl s_client` sending one octet-counted frame, with the client certificate `client` (if
/// any); returns (exit success, output).
fn s_client(addr: SocketAddr, pki: &Pki, client: Option<&str>, frame: &[u8]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
    ])
    .arg("-CAfile")
    .arg(pki.ca_cert())
    .args([
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-no_ign_eof",
    ]);
    if let Some(c) = client {
        cmd.arg("-cert")
            .arg(pki.path(&format!("{c}.pem")))
            .arg("-key")
            .arg(pki.path(&format!("{c}.key")));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is needed (scripts/test.sh installs it)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(frame).unwrap();
        // Give the server the time to answer the handshake before stdin's EOF closes the connection.
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rfc5424(app: &str, text: &str) -> Vec<u8> {
    octet_frame(format!("<131>1 2026-12-01T10:00:00Z s-client {app} 7 - - {text}").as_bytes())
}

/// Waits until `f()` holds, for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_from_rsyslog_and_refusals_with_openssl() {
    let rsyslogd = "/usr/sbin/rsyslogd";
    assert!(
        std::path::Path::new(rsyslogd).exists()
            && std::fs::read_dir("/usr/lib")
                .unwrap()
                .filter_map(Result::ok)
                .any(|d| d.path().join("rsyslog/lmnsd_gtls.so").exists()),
        "rsyslog with rsyslog-gnutls is needed (scripts/test.sh installs them)"
    );
    let pki = test_pki();
    let db = TestDb::new(Engine::Postgres, "tls_syslog").await;
    // A: server-authenticated only. B: client certificates of the test CA named relay.test.
    let mut cfg_a = test_config(&db.url);
    cfg_a.syslog.tls = vec!["127.0.0.1:0".parse().unwrap()];
    cfg_a.tls = tls_section(&pki, false);
    let mut cfg_b = cfg_a.clone();
    cfg_b.tls = tls_section(&pki, true);
    let a = start(&cfg_a).await;
    let b = start(&cfg_b).await;
    let (tls_a, tls_b) = (a.tls_addrs()[0], b.tls_addrs()[0]);

    let dir = tempfile::tempdir().unwrap();
    let (in_a, in_b) = (free_port(), free_port());
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}" DefaultNetstreamDriverCAFile="{ca}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{in_a}" ruleset="toA")
input(type="imtcp" address="127.0.0.1" port="{in_b}" ruleset="toB")
ruleset(name="toA") {{
  action(type="omfwd" target="127.0.0.1" port="{pa}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
}}
ruleset(name="toB") {{
  action(type="omfwd" target="127.0.0.1" port="{pb}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost"
         StreamDriver.CertFile="{cert}" StreamDriver.KeyFile="{key}"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
            dir = dir.path().display(),
            ca = pki.ca_cert().display(),
            cert = pki.path("relay.pem").display(),
            key = pki.path("relay.key").display(),
            pa = tls_a.port(),
            pb = tls_b.port(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("rsyslog.log")).unwrap();
    let mut rs = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("pid"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for("rsyslogd to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", in_b)).is_ok()
    });
    let to = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    logger(
        to(in_a),
        &[
            "--tcp",
            "--rfc5424",
            "-t",
            "tls.server_auth",
            "-p",
            "local3.warning",
            "server-authenticated relay",
        ],
    );
    logger(
        to(in_b),
        &[
            "--tcp",
            "--rfc5424",
            "-t",
            "tls.mutual",
            "-p",
            "local3.err",
            "relay with a client certificate",
        ],
    );
    let store = db.store().await;
    let n = store.wait_rows(2, Duration::from_secs(30)).await;
    let _ = rs.kill();
    let _ = rs.wait();
    assert_eq!(
        n,
        2,
        "both relayed messages arrive over TLS; rsyslog said:\n{}",
        std::fs::read_to_string(dir.path().join("rsyslog.log")).unwrap_or_default()
    );
    let rows = store.rows().await;
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.logger_name == name)
            .unwrap_or_else(|| panic!("{name}: {rows:?}"))
    };
    assert_eq!(row("tls.server_auth").level, "WARNING");
    assert!(
        row("tls.server_auth")
            .message
            .starts_with("server-authenticated relay\n")
    );
    assert_eq!(row("tls.mutual").level, "ERROR");
    assert!(
        row("tls.mutual")
            .message
            .starts_with("relay with a client certificate\n")
    );

    // openssl s_client against B: refused without a certificate, with one of another CA, with an
    // expired one and with one of a name not in client_names; nothing of theirs is stored.
    let refused_before = b.stats().tls_refused.get();
    for (client, alert) in [
        (None, "alert certificate required"),
        (Some("stranger"), "alert unknown ca"),
        (Some("expired"), "alert certificate expired"),
        (Some("intruder"), "alert bad certificate"),
    ] {
        let (_, out) = s_client(
            tls_b,
            &pki,
            client,
            &rfc5424("tls.refused", "must not be stored"),
        );
        assert!(
            out.contains(alert),
            "{client:?} must be refused with {alert:?}:\n{out}"
        );
    }
    // Plain text against the TLS port.
    send_tcp(tls_b, &rfc5424("tls.plain", "plain text on a TLS port"));
    wait_for("five refused handshakes", Duration::from_secs(10), || {
        b.stats().tls_refused.get() == refused_before + 5
    });
    // The accepted client, through the same tool, arrives (so the refusals above could have failed).
    let (ok, out) = s_client(
        tls_b,
        &pki,
        Some("relay"),
        &rfc5424("tls.accepted", "s_client with the relay certificate"),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Verification: OK") || out.contains("Verify return code: 0"),
        "{out}"
    );
    assert_eq!(store.wait_rows(3, Duration::from_secs(20)).await, 3);
    let b_stats = b.stats();
    a.shutdown(Duration::from_secs(5)).await.unwrap();
    b.shutdown(Duration::from_secs(5)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(
        rows.len(),
        3,
        "nothing of the refused clients is stored: {rows:?}"
    );
    assert!(rows.iter().any(|r| r.logger_name == "tls.accepted"));
    assert_eq!(
        b_stats.tls_refused.get(),
        refused_before + 5,
        "exactly the five refusals"
    );
}

/// Runs tests/otlp/send_logs.py with the panel venv's Python; returns what it says it sent.
fn send_logs(protocol: &str, endpoint: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(panel_python())
        .arg(repo().join("tests/otlp/send_logs.py"))
        .arg(protocol)
        .arg(endpoint)
        .args(extra)
        // requests lets these override the exporter's own CA file (psf/requests#3829).
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("runs send_logs.py");
    assert!(
        out.status.success(),
        "send_logs.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("send_logs.py prints JSON")
}

/// curl POSTing an OTLP/JSON body over HTTPS (or plain HTTP with `plain`); returns (curl exit
/// code, HTTP status, body, headers lowercased).
fn curl(
    addr: SocketAddr,
    pki: &Pki,
    client_cert: bool,
    token: Option<&str>,
    plain: bool,
    body: &[u8],
) -> (i32, u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (f, out, hdr) = (
        dir.path().join("body"),
        dir.path().join("out"),
        dir.path().join("hdr"),
    );
    std::fs::write(&f, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--max-time",
        "10",
    ])
    .arg("--cacert")
    .arg(pki.ca_cert());
    if client_cert {
        cmd.arg("--cert")
            .arg(pki.path("relay.pem"))
            .arg("--key")
            .arg(pki.path("relay.key"));
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let scheme = if plain { "http" } else { "https" };
    cmd.arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg("-o")
        .arg(&out)
        .arg("-D")
        .arg(&hdr)
        .args(["-w", "%{http_code}"])
        .arg(format!("{scheme}://{addr}/v1/logs"));
    let o = cmd.output().expect("curl runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        String::from_utf8_lossy(&std::fs::read(out).unwrap_or_default()).into_owned(),
        std::fs::read_to_string(hdr)
            .unwrap_or_default()
            .to_ascii_lowercase(),
    )
}

fn json_body(logger: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "resourceLogs": [{"scopeLogs": [{"scope": {"name": logger},
            "logRecords": [{"severityNumber": 9, "body": {"stringValue": text}}]}]}]
    }))
    .unwrap()
}

/// A raw gRPC client (grpcio): Export with `body`, over TLS with the relay's client certificate or
/// over plain text; prints "OK" or the status code and details.
const RAW_GRPC: &str = r#"
import sys, grpc
addr, body, ca, cert, key, token, mode = sys.argv[1:8]
read = lambda p: open(p, "rb").read()
if mode == "tls":
    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    ch = grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
else:
    ch = grpc.insecure_channel(addr)
call = ch.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
md = [("authorization", f"Bearer {token}")] if token else []
try:
    call(bytes.fromhex(body), timeout=10, metadata=md)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
"#;

fn raw_grpc(addr: SocketAddr, pki: &Pki, token: &str, tls: bool, logger: &str) -> String {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: logger.into(),
                    ..Default::default()
                }),
                log_records: vec![LogRecord {
                    severity_number: 13,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "raw grpc as {logger}"
                        ))),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let hex: String = req
        .encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    run_stdout(
        Command::new(panel_python())
            .arg("-c")
            .arg(RAW_GRPC)
            .arg(addr.to_string())
            .arg(hex)
            .arg(pki.ca_cert())
            .arg(pki.path("relay.pem"))
            .arg(pki.path("relay.key"))
            .arg(token)
            .arg(if tls { "tls" } else { "plain" }),
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_tls_with_client_certificates_and_bearer_tokens() {
    use sha2::{Digest, Sha256};
    let pki = test_pki();
    std::fs::write(
        pki.path("tokens"),
        "# one token per line\nsdk-token-1\n\n  collector-token-2  \n",
    )
    .unwrap();
    let db = TestDb::new(Engine::Postgres, "tls_otlp").await;
    let mut cfg = test_config(&db.url);
    cfg.otlp.tls = true;
    cfg.otlp.bearer_token_file = Some(pki.path("tokens"));
    cfg.tls = tls_section(&pki, true);
    let collector = start(&cfg).await;
    let (grpc, http) = (
        collector.grpc_addr().unwrap(),
        collector.http_addr().unwrap(),
    );
    let stats = collector.stats();
    let (ca, cert, key) = (pki.ca_cert(), pki.path("relay.pem"), pki.path("relay.key"));
    let tls_args = |token: &'static str| {
        vec![
            "--ca".to_string(),
            ca.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
            "--token".into(),
            token.into(),
        ]
    };

    // The SDK's exporters, with the CA, the client certificate and a token.
    let args = tls_args("sdk-token-1");
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["--big", "0"]);
    let sent_grpc = send_logs("grpc", &format!("https://{grpc}"), &a);
    assert_eq!(sent_grpc["records"].as_array().unwrap().len(), 6);
    let args = tls_args("collector-token-2");
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let sent_http = send_logs("http", &format!("https://{http}/v1/logs"), &a);
    assert_eq!(sent_http["records"].as_array().unwrap().len(), 7);
    let store = db.store().await;
    assert_eq!(store.wait_rows(13, Duration::from_secs(30)).await, 13);

    // curl: the right token is taken; a wrong or missing one is 401 with WWW-Authenticate.
    let (rc, code, body, _) = curl(
        http,
        &pki,
        true,
        Some("sdk-token-1"),
        false,
        &json_body("tls.curl", "curl with a token"),
    );
    assert_eq!((rc, code), (0, 200), "{body}");
    for token in [Some("sdk-token-1x"), Some("wrong"), None] {
        let (rc, code, body, hdr) = curl(
            http,
            &pki,
            true,
            token,
            false,
            &json_body("tls.refused", "no"),
        );
        assert_eq!((rc, code), (0, 401), "{token:?}: {body}");
        assert!(hdr.contains("www-authenticate: bearer"), "{hdr}");
        assert!(body.contains("missing or invalid bearer token"), "{body}");
        assert!(
            !body.contains("sdk-token-1"),
            "no token in the answer: {body}"
        );
    }
    // No client certificate, and plain text against the TLS port: no HTTP answer at all.
    let (rc, code, ..) = curl(
        http,
        &pki,
        false,
        Some("sdk-token-1"),
        false,
        &json_body("tls.refused", "no"),
    );
    assert!(
        rc != 0 && code == 0,
        "without a client certificate: curl exit {rc}, HTTP {code}"
    );
    let (rc, code, ..) = curl(
        http,
        &pki,
        true,
        Some("sdk-token-1"),
        true,
        &json_body("tls.refused", "no"),
    );
    assert!(
        rc != 0 && code == 0,
        "plain HTTP on the TLS port: curl exit {rc}, HTTP {code}"
    );

    // A raw gRPC client: UNAUTHENTICATED without the right token, UNAVAILABLE in plain text.
    assert_eq!(
        raw_grpc(grpc, &pki, "collector-token-2", true, "tls.grpc"),
        "OK"
    );
    for token in ["nope", ""] {
        let answer = raw_grpc(grpc, &pki, token, true, "tls.refused");
        assert_eq!(
            answer, "UNAUTHENTICATED missing or invalid bearer token",
            "{token:?}"
        );
    }
    let answer = raw_grpc(grpc, &pki, "collector-token-2", false, "tls.refused");
    assert!(
        answer.starts_with("UNAVAILABLE"),
        "plain text gRPC on the TLS port: {answer}"
    );

    assert_eq!(store.wait_rows(15, Duration::from_secs(20)).await, 15);
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = store.rows().await;
    assert_eq!(rows.len(), 15, "nothing of the refused requests is stored");
    assert!(rows.iter().all(|r| r.logger_name != "tls.refused"));
    assert_eq!(
        stats.auth_refused.get(),
        5,
        "3 HTTP + 2 gRPC requests refused for their token"
    );
    assert!(
        stats.tls_refused.get() >= 3,
        "curl without a certificate, plain HTTP, plain gRPC"
    );

    // The real admin shows what arrived over TLS: cards, table, search in chunks, full message.
    let bulk = rows
        .iter()
        .find(|r| r.logger_name == "shop.bulk")
        .expect("the big record");
    let big = sent_http["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["logger"] == "shop.bulk")
        .unwrap();
    let text = big["message"].as_str().unwrap();
    let full = store.full_message(bulk).await;
    assert!(full.starts_with(text));
    let expect = serde_json::json!({
        "cards": {
            "shop.checkout": {"total": 12, "errors": 6, "warnings": 2},
            "shop.bulk": {"total": 1, "errors": 0, "warnings": 1},
            "tls.curl": {"total": 1, "errors": 0, "warnings": 0},
            "tls.grpc": {"total": 1, "errors": 0, "warnings": 1},
        },
        "no_cards": ["tls.refused"],
        "table": [
            {"params": {"logger_name__exact": "shop.checkout"}, "count": 12},
            {"params": {"level__exact": "CRITICAL"}, "count": 2},
        ],
        "search": [{"q": big["needle"], "count": 1}, {"q": "curl with a token", "count": 1}],
        "full_message": [{"id": bulk.id, "length": full.chars().count(),
                          "sha256": format!("{:x}", Sha256::digest(full.as_bytes()))}],
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expect.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&expect).unwrap()).unwrap();
    let (ok, out) = check_panel(&db, &[], &["admin", file.to_str().unwrap()]);
    println!("{out}");
    assert!(
        ok && out.contains(" 0 failed"),
        "the admin does not show what arrived over TLS:\n{out}"
    );
}

/// The daemon binary with its stderr collected line by line.
struct Daemon {
    child: std::process::Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn spawn(config: &std::path::Path) -> Daemon {
        let mut cmd = Command::new(binary());
        cmd.args(["run", "--config"]).arg(config);
        Daemon::spawn_cmd(cmd)
    }

    fn spawn_cmd(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts the daemon");
        Daemon {
            log: collect_lines(child.stderr.take().unwrap()),
            child,
        }
    }

    fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        wait_line(&self.log, needle, 0, timeout)
    }

    fn signal(&self, sig: &str) {
        run_ok(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.child.id().to_string()),
        );
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn stop(mut self) -> (bool, String) {
        self.signal("TERM");
        let ok = self.child.wait().unwrap().success();
        std::thread::sleep(Duration::from_millis(50));
        let log = self.log.lock().unwrap().join("\n");
        (ok, log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    use std::io::BufRead;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    log
}

/// Waits for a line containing `needle` at index `from` or later; returns it.
fn wait_line(log: &Mutex<Vec<String>>, needle: &str, from: usize, timeout: Duration) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(l) = log
            .lock()
            .unwrap()
            .iter()
            .skip(from)
            .find(|l| l.contains(needle))
        {
            return l.clone();
        }
        assert!(
            t0.elapsed() < timeout,
            "no line with {needle:?} in:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_under_tls_traffic() {
    let pki = test_pki();
    pki.leaf(
        "ca",
        "server2",
        "localhost",
        "DNS:localhost,IP:127.0.0.1",
        true,
        30,
    );
    let (live_cert, live_key) = (pki.path("live.pem"), pki.path("live.key"));
    std::fs::copy(pki.path("server.pem"), &live_cert).unwrap();
    std::fs::copy(pki.path("server.key"), &live_key).unwrap();
    let (old_fp, new_fp) = (
        Pki::fingerprint(&pki.path("server.pem")),
        Pki::fingerprint(&pki.path("server2.pem")),
    );
    let db = TestDb::new(Engine::Postgres, "tls_hup").await;
    let conf = pki.path("c.toml");
    std::fs::write(
        &conf,
        format!(
            "[storage]\nurl = \"{}\"\n[syslog]\nudp = []\ntcp = []\ntls = [\"127.0.0.1:0\"]\n\
             [otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            db.url,
            live_cert.display(),
            live_key.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::spawn(&conf);
    let l = daemon.wait_line("listening on syslog tls ", Duration::from_secs(20));
    let addr: SocketAddr = l.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        daemon
            .wait_line("TLS certificate SHA-256 ", Duration::from_secs(5))
            .ends_with(&old_fp)
    );

    // Python's ssl module: a long-lived connection plus a new connection every 20 messages, until told to stop.
    let stop = pki.path("stop");
    let mut sender = Command::new("python3")
        .arg(repo().join("tests/tls/send_syslog.py"))
        .args(["127.0.0.1", &addr.port().to_string(), "--ca"])
        .arg(pki.ca_cert())
        .arg("--until-file")
        .arg(&stop)
        .args(["--per-conn", "20", "--prefix", "hup"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let conns = collect_lines(sender.stdout.take().unwrap());
    let count = |fp: &str| {
        conns
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.ends_with(fp))
            .count()
    };
    let store = db.store().await;
    wait_for(
        "traffic on the old certificate",
        Duration::from_secs(30),
        || count(&old_fp) >= 4,
    );
    assert!(store.wait_rows(50, Duration::from_secs(20)).await >= 50);

    // Swap the files, SIGHUP: new connections get the new certificate.
    std::fs::copy(pki.path("server2.key"), &live_key).unwrap();
    std::fs::copy(pki.path("server2.pem"), &live_cert).unwrap();
    daemon.signal("HUP");
    daemon.wait_line("SIGHUP: configuration reloaded", Duration::from_secs(10));
    daemon.wait_line(
        &format!("SHA-256 {new_fp} in force for new connections"),
        Duration::from_secs(5),
    );
    wait_for(
        "connections on the new certificate",
        Duration::from_secs(30),
        || count(&new_fp) >= 4,
    );

    // A broken certificate file: refused naming the key, the new certificate stays in force.
    std::fs::write(&live_cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    daemon.signal("HUP");
    let why = daemon.wait_line("cannot apply the new config", Duration::from_secs(10));
    assert!(
        why.contains("tls.cert") && why.contains("keeping the old one"),
        "{why}"
    );
    let seen = count(&new_fp);
    wait_for(
        "connections after the refused reload",
        Duration::from_secs(30),
        || count(&new_fp) >= seen + 4,
    );
    let rss = daemon.rss_kib();

    std::fs::write(&stop, "").unwrap();
    assert!(sender.wait().unwrap().success());
    let done = wait_line(&conns, "done ", 0, Duration::from_secs(5));
    let nums: Vec<usize> = done
        .split(' ')
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    let (sent, long) = (nums[0], nums[1]);
    let stored = store.wait_rows(sent as i64, Duration::from_secs(30)).await;
    let (ok, log) = daemon.stop();
    assert!(ok, "{log}");
    assert_eq!(
        stored, sent as i64,
        "no record lost across the certificate swaps"
    );
    let rows = store.rows().await;
    let got: std::collections::BTreeSet<usize> = rows
        .iter()
        .map(|r| {
            r.message
                .split(['\n', ' '])
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(got, (0..sent).collect(), "every message once");
    // The connection opened before the first swap kept working through both reloads.
    assert!(
        long * 10 >= sent - 10 && long > 0,
        "long-lived connection sent {long} of {sent}"
    );
    // Handshakes saw the old certificate, then only the new one.
    let lines = conns.lock().unwrap().clone();
    let fps: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("conn "))
        .collect();
    let first_new = fps.iter().position(|f| *f == new_fp).unwrap();
    assert!(fps[..first_new].iter().all(|f| *f == old_fp), "{fps:?}");
    assert!(fps[first_new..].iter().all(|f| *f == new_fp), "{fps:?}");
    println!(
        "sent {sent} ({long} on the long-lived connection), stored {stored}, {} handshakes, RSS {rss} KiB",
        fps.len()
    );
    assert!(rss < 256 * 1024, "RSS {rss} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_reload_and_a_bad_token_file_keeps_the_old_ones() {
    let pki = Pki::new();
    let tokens = pki.path("tokens");
    std::fs::write(&tokens, "first-token\n").unwrap();
    let (_dir, url, _) = fresh_sqlite();
    let mut cfg = test_config(&url);
    cfg.otlp.bearer_token_file = Some(tokens.clone());
    let mut collector = start(&cfg).await;
    let http = collector.http_addr().unwrap();
    let post = |token: &str| {
        run_stdout(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
                .args(["-H", "Content-Type: application/json", "-H"])
                .arg(format!("Authorization: Bearer {token}"))
                .arg("--data-binary")
                .arg(String::from_utf8(json_body("tok.reload", token)).unwrap())
                .arg(format!("http://{http}/v1/logs")),
        )
    };
    assert_eq!(post("first-token"), "200");
    assert_eq!(post("second-token"), "401");
    std::fs::write(&tokens, "# rotated\nsecond-token\n").unwrap();
    assert!(collector.reload(cfg.clone()).await.unwrap().is_empty());
    assert_eq!(
        post("first-token"),
        "401",
        "the old token is gone after the reload"
    );
    assert_eq!(post("second-token"), "200");
    std::fs::write(&tokens, "# nothing left\n").unwrap();
    let e = collector.reload(cfg.clone()).await.unwrap_err().to_string();
    assert!(
        e.starts_with("otlp.bearer_token_file: ") && e.contains("no token"),
        "{e}"
    );
    assert_eq!(
        post("second-token"),
        "200",
        "a refused reload keeps the tokens in force"
    );
    std::fs::remove_file(&tokens).unwrap();
    let e = collector.reload(cfg.clone()).await.unwrap_err().to_string();
    assert!(e.starts_with("otlp.bearer_token_file: cannot read"), "{e}");
    let store = Store::connect(&url).await;
    assert_eq!(store.wait_rows(3, Duration::from_secs(10)).await, 3);
    collector.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        store.count("log_panel_log").await,
        3,
        "only the accepted requests are stored"
    );
}

/// `validate` (and `run`) name the key of every TLS problem.
#[test]
fn validate_names_tls_and_token_errors() {
    let pki = test_pki();
    let validate = |body: &str| {
        let conf = pki.path("v.toml");
        std::fs::write(&conf, body).unwrap();
        let out = Command::new(binary())
            .args(["validate", "--config"])
            .arg(&conf)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let p = |n: &str| pki.path(n).display().to_string();
    let (code, out) = validate(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n[syslog]\ntls = [\"127.0.0.1:6514\"]\n[otlp]\ntls = true\n",
        p("server.pem"),
        p("server.key"),
        p("ca.pem")
    ));
    assert_eq!(code, Some(0), "{out}");
    for (body, wants) in [
        (
            "[syslog]\ntls = [\"127.0.0.1:6514\"]\n[otlp]\ntls = true\n".to_string(),
            vec![
                "syslog.tls: TLS listeners need [tls] cert and key",
                "otlp.tls: TLS listeners need [tls] cert and key",
            ],
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nmin_version = \"1.1\"\nclient_names = [\"a\"]\nflavour = 1\n",
                p("server.pem")
            ),
            vec![
                "tls.key: tls.cert is set but tls.key is not",
                "tls.min_version: unknown TLS version \"1.1\"",
                "tls.client_names: needs tls.client_ca",
                "tls.flavour: unknown key",
            ],
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                p("missing.pem"),
                p("server.key")
            ),
            vec!["tls.cert: cannot read", "missing.pem"],
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                p("server.pem"),
                p("relay.key")
            ),
            vec!["tls.key: ", "does not match the certificate in tls.cert"],
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                p("server.key"),
                p("server.key")
            ),
            vec!["tls.cert: ", "no CERTIFICATE"],
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
                p("server.pem"),
                p("server.key"),
                p("nope.pem")
            ),
            vec!["tls.client_ca: cannot read"],
        ),
        (
            format!("[otlp]\nbearer_token_file = \"{}\"\n", p("no-tokens")),
            vec!["otlp.bearer_token_file: cannot read"],
        ),
    ] {
        let (code, out) = validate(&body);
        assert_eq!(code, Some(2), "{body}\n{out}");
        for w in wants {
            assert!(out.contains(w), "{w:?} missing for\n{body}\n{out}");
        }
    }
    // `run` refuses to start on the same errors, naming the key.
    let conf = pki.path("run.toml");
    std::fs::write(&conf, format!("[storage]\nurl = \"sqlite://{}\"\n[syslog]\nudp = []\ntcp = []\ntls = [\"127.0.0.1:0\"]\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n", p("db.sqlite3"), p("server.pem"), p("relay.key"))).unwrap();
    let out = Command::new(binary())
        .args(["run", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("tls.key: ") && text.contains("does not match"),
        "{text}"
    );
}

/// PostgreSQL over TLS through the URL's own parameters: `sslmode=verify-full` with `sslrootcert`
/// against a private server started with `ssl = on` and a certificate of the test's CA; with
/// another CA the connection fails with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_full_with_a_private_ca() {
    let pki = test_pki();
    let pg = PrivatePg::init_with(|dir| {
        for (from, to) in [("server.pem", "server.crt"), ("server.key", "server.key")] {
            std::fs::copy(pki.path(from), dir.join(to)).unwrap();
            run_ok(Command::new("chown").arg("postgres").arg(dir.join(to)));
        }
        run_ok(Command::new("chmod").arg("600").arg(dir.join("server.key")));
        format!(
            "-c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
            dir.display()
        )
    });
    let url = |ca: &str| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            pki.path(ca).display()
        )
    };
    let migrate = |url: &str| {
        let conf = pki.path("pg.toml");
        std::fs::write(&conf, format!("[storage]\nurl = \"{url}\"\n")).unwrap();
        Command::new(binary())
            .args(["migrate", "--config"])
            .arg(&conf)
            .output()
            .unwrap()
    };
    let good = url("ca.pem");
    let out = migrate(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The collector writes over such a connection.
    let mut cfg = test_config(&good);
    cfg.otlp.grpc = None;
    cfg.otlp.http = None;
    let collector = start(&cfg).await;
    send_tcp(
        collector.tcp_addrs()[0],
        &rfc5424("pg.tls", "stored over verify-full"),
    );
    let store = Store::connect(&good).await;
    assert_eq!(store.wait_rows(1, Duration::from_secs(20)).await, 1);
    collector.shutdown(Duration::from_secs(5)).await.unwrap();
    let pool = sqlx::PgPool::connect(&good).await.unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl, "a connection with this URL is TLS");
    pool.close().await;

    // Another CA: refused, saying why.
    let out = migrate(&url("stranger-ca.pem"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a server certificate of another CA must be refused"
    );
    assert!(
        err.contains("connecting to PostgreSQL") && err.contains("UnknownIssuer"),
        "a clear error: {err}"
    );
    // Plain text (sslmode=disable) still works against the same server, so the refusal was TLS's.
    let plain = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    assert!(migrate(&plain).status.success());
}

/// MySQL/MariaDB's `ssl-mode` is honoured: the machine's MariaDB has no TLS, so `REQUIRED` must fail
/// saying so, and `DISABLED` connects. (No private TLS MariaDB is started; PostgreSQL above proves
/// certificate verification end to end.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_ssl_mode_is_honoured() {
    let (url, _) = fresh_mysql("tls_mysql").await;
    let dir = tempfile::tempdir().unwrap();
    let migrate = |params: &str| {
        let conf = dir.path().join("m.toml");
        std::fs::write(&conf, format!("[storage]\nurl = \"{url}?{params}\"\n")).unwrap();
        Command::new(binary())
            .args(["migrate", "--config"])
            .arg(&conf)
            .output()
            .unwrap()
    };
    let out = migrate("ssl-mode=REQUIRED");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "TLS required from a server without it must fail"
    );
    assert!(err.contains("server does not support TLS"), "{err}");
    let out = migrate("ssl-mode=DISABLED");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// MongoDB `tls=true` with `tlsCAFile`, through the URI and through `[storage.options]`: the driver
/// opens TLS to `openssl s_server` (no MongoDB here speaks TLS: the stand-in has none), verifies it
/// with the given CA and sends its hello inside the session; with another CA it refuses the server.
#[test]
fn mongodb_tls_ca_file_through_the_uri_and_the_options() {
    let pki = test_pki();
    let port = free_port();
    let received = pki.path("s_server.out");
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(pki.path("server.pem"))
        .arg("-key")
        .arg(pki.path("server.key"))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&received).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("openssl s_server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let migrate = |storage: String| {
        let conf = pki.path("mongo.toml");
        std::fs::write(&conf, storage).unwrap();
        Command::new(binary())
            .args(["migrate", "--config"])
            .arg(&conf)
            .output()
            .unwrap()
    };
    let base = format!("mongodb://localhost:{port}/logs");
    let quick = "serverSelectionTimeoutMS=3000&connectTimeoutMS=2000&directConnection=true";
    // Through the URI, with the right CA: the TLS session is established and the driver talks in it
    // (s_server prints what it decrypts); there is no MongoDB behind, so migrate fails afterwards.
    let out = migrate(format!(
        "[storage]\nurl = \"{base}?tls=true&tlsCAFile={}&{quick}\"\n",
        pki.ca_cert().display()
    ));
    assert!(!out.status.success());
    let seen = || std::fs::read(&received).unwrap_or_default();
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    wait_for(
        "the driver's hello inside TLS",
        Duration::from_secs(5),
        || {
            let s = seen();
            has(&s, b"hello") || has(&s, b"isMaster") || has(&s, b"ismaster")
        },
    );
    // Through [storage.options], with another CA: refused in the handshake, saying why.
    let before = seen().len();
    let out = migrate(format!(
        "[storage]\nurl = \"{base}?{quick}\"\n[storage.options]\ntls = true\ntlsCAFile = \"{}\"\n",
        pki.path("stranger-ca.pem").display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = server.kill();
    let _ = server.wait();
    assert!(!out.status.success());
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert_eq!(
        seen().len(),
        before,
        "nothing was sent to a server of another CA"
    );
}

/// The optional socket unit's way: systemd hands over a stream socket named `syslog-tls` that the
/// config does not list; the daemon serves it as syslog over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activated_syslog_tls() {
    let activate = [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-activate (Debian's systemd package) is needed");
    let pki = test_pki();
    let db = TestDb::new(Engine::Sqlite, "tls_activate").await;
    let port = free_port();
    let conf = pki.path("a.toml");
    std::fs::write(
        &conf,
        format!(
            "[storage]\nurl = \"{}\"\n[syslog]\nudp = []\ntcp = []\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n\
             [service]\nmetrics = \"\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            db.url,
            pki.path("server.pem").display(),
            pki.path("server.key").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(activate);
    cmd.arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--fdname=syslog-tls")
        .arg(binary())
        .args(["run", "--config"])
        .arg(&conf);
    let daemon = Daemon::spawn_cmd(cmd);
    wait_for(
        "systemd-socket-activate to listen",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let out = run_stdout(
        Command::new("python3")
            .arg(repo().join("tests/tls/send_syslog.py"))
            .args(["127.0.0.1", &port.to_string(), "--ca"])
            .arg(pki.ca_cert())
            .args(["--count", "25", "--per-conn", "5", "--prefix", "activated"]),
    );
    assert!(out.contains("done 25 3"), "{out}");
    daemon.wait_line(
        "listening on syslog tls 127.0.0.1:",
        Duration::from_secs(10),
    );
    let store = db.store().await;
    assert_eq!(store.wait_rows(25, Duration::from_secs(20)).await, 25);
    let (ok, log) = daemon.stop();
    assert!(ok, "{log}");
    assert!(
        log.contains("socket activation: 1 socket(s) handed over"),
        "{log}"
    );
}

/// syslog-ng's loggen over TLS (`--use-ssl`), RFC 5424 with octet counting and with LF framing, on
/// two connections each: every message stored once. loggen cannot present a client certificate, so
/// the listener authenticates the server only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loggen_over_tls() {
    let loggen = std::env::var("LPC_LOGGEN").unwrap_or_else(|_| {
        format!(
            "{}/.cache/log-panel-collector/sng/loggen",
            std::env::var("HOME").unwrap()
        )
    });
    assert!(
        std::path::Path::new(&loggen).exists(),
        "syslog-ng's loggen is needed at {loggen} (scripts/test.sh unpacks it; or set LPC_LOGGEN)"
    );
    let pki = test_pki();
    let db = TestDb::new(Engine::Postgres, "tls_loggen").await;
    let mut cfg = test_config(&db.url);
    cfg.syslog.tls = vec!["127.0.0.1:0".parse().unwrap()];
    cfg.tls = tls_section(&pki, false);
    let collector = start(&cfg).await;
    let addr = collector.tls_addrs()[0];
    const N: usize = 2000;
    // The two runs differ in message size, so that their messages stay apart (loggen's runid is
    // only as fine as its clock).
    for (framing, size) in [(&["-P"][..], "200"), (&["-P", "-F"][..], "300")] {
        let out = Command::new(&loggen)
            .args(["-U", "--active-connections", "2", "-r", "20000", "-s", size])
            // -n counts per connection.
            .args(["-n", &(N / 4).to_string()])
            .args(framing)
            .args([addr.ip().to_string(), addr.port().to_string()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // loggen exits 0 even when it refuses its options: check what it says it sent.
        assert!(
            out.status.success() && text.contains(&format!("count={}", N / 2)),
            "loggen {framing:?}: {text}"
        );
    }
    let store = db.store().await;
    let n = store.wait_rows(N as i64, Duration::from_secs(60)).await;
    collector.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        n, N as i64,
        "every loggen message arrives over TLS, in both framings"
    );
    // loggen numbers its messages "seq: N, thread: T, runid: R": each one once per run.
    let ids: std::collections::BTreeSet<(usize, String)> = store
        .rows()
        .await
        .iter()
        .map(|r| {
            let id = r.message.split(", stamp:").next().unwrap().to_string();
            (r.message.len(), id)
        })
        .collect();
    assert_eq!(
        ids.len(),
        N,
        "every message once: {:?}",
        ids.iter().take(3).collect::<Vec<_>>()
    );
}

/// A reload cannot take the material from OTLP listeners that speak TLS until a restart, and a
/// bad certificate on reload changes nothing (the served certificate stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_material_of_running_tls_listeners() {
    let pki = test_pki();
    let (_dir, url, _) = fresh_sqlite();
    let mut cfg = test_config(&url);
    cfg.otlp.tls = true;
    cfg.tls = tls_section(&pki, false);
    let mut collector = start(&cfg).await;
    let fp = collector.tls_fingerprint().unwrap();
    assert_eq!(fp, Pki::fingerprint(&pki.path("server.pem")));
    let mut plain = cfg.clone();
    plain.otlp.tls = false;
    plain.tls = TlsConfig::default();
    let e = collector.reload(plain).await.unwrap_err().to_string();
    assert!(
        e.starts_with("tls: the OTLP listeners speak TLS until a restart"),
        "{e}"
    );
    let mut bad = cfg.clone();
    bad.tls.key = Some(pki.path("relay.key"));
    let e = collector.reload(bad).await.unwrap_err().to_string();
    assert!(
        e.starts_with("tls.key: ") && e.contains("does not match"),
        "{e}"
    );
    assert_eq!(collector.tls_fingerprint().unwrap(), fp);
    let mut toggled = cfg.clone();
    toggled.otlp.tls = false;
    let kept = collector.reload(toggled).await.unwrap();
    assert_eq!(kept, vec!["otlp.tls changes need a restart".to_string()]);
    assert!(collector.otlp_tls(), "still TLS until a restart");
    // Still served over TLS with the same certificate.
    let (rc, code, ..) = curl(
        collector.http_addr().unwrap(),
        &pki,
        false,
        None,
        false,
        &json_body("tls.kept", "still TLS"),
    );
    assert_eq!((rc, code), (0, 200));
    collector.shutdown(Duration::from_secs(5)).await.unwrap();
}
