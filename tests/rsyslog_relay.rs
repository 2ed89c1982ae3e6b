//! rsyslog as a relay in front of the collector: RFC 5424 with octet counting over TCP, and the
//! traditional RFC 3164 forward over UDP.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_into_the_panel() {
    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("rsyslog is needed (apt-get install rsyslog; scripts/test.sh does it)");
    let db = TestDb::new(Engine::Postgres, "rsyslog").await;
    let collector = start(&test_config(&db.url)).await;
    let tcp = collector.tcp_addrs()[0];
    let udp = collector.udp_addrs()[0];

    let dir = tempfile::tempdir().unwrap();
    let (in_tcp, in_udp) = (free_port(), free_port());
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{in_tcp}" ruleset="to5424")
input(type="imudp" address="127.0.0.1" port="{in_udp}" ruleset="to3164")
ruleset(name="to5424") {{
  action(type="omfwd" target="127.0.0.1" port="{tp}" protocol="tcp"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
}}
ruleset(name="to3164") {{
  action(type="omfwd" target="127.0.0.1" port="{up}" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
}}
"#,
            dir = dir.path().display(),
            tp = tcp.port(),
            up = udp.port(),
        ),
    )
    .unwrap();
    let mut rs = Command::new(rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until rsyslog listens.
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", in_tcp)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "rsyslogd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let to_tcp: std::net::SocketAddr = format!("127.0.0.1:{in_tcp}").parse().unwrap();
    let to_udp: std::net::SocketAddr = format!("127.0.0.1:{in_udp}").parse().unwrap();
    logger(
        to_tcp,
        &[
            "--tcp",
            "--rfc5424",
            "-t",
            "relayed5424",
            "-p",
            "local2.err",
            "--id=77",
            "via rsyslog tcp",
        ],
    );
    logger(
        to_udp,
        &[
            "--udp",
            "--rfc3164",
            "-t",
            "relayed3164",
            "-p",
            "mail.warning",
            "via rsyslog udp",
        ],
    );

    let store = db.store().await;
    let n = store.wait_rows(2, Duration::from_secs(20)).await;
    let _ = rs.kill();
    let _ = rs.wait();
    assert_eq!(n, 2, "both relayed messages arrive");
    let rows = store.rows().await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let t = rows
        .iter()
        .find(|r| r.logger_name == "relayed5424")
        .expect("the TCP-relayed row");
    assert_eq!(t.level, "ERROR");
    assert!(
        t.message.starts_with("via rsyslog tcp\n"),
        "{:?}",
        t.message
    );
    assert!(
        t.message.contains("facility=local2") && t.message.contains("pid=77"),
        "{:?}",
        t.message
    );
    assert_eq!(t.module, hostname.trim());
    let u = rows
        .iter()
        .find(|r| r.logger_name == "relayed3164")
        .expect("the UDP-relayed row");
    assert_eq!(u.level, "WARNING");
    assert!(
        u.message.starts_with("via rsyslog udp\n"),
        "{:?}",
        u.message
    );
    assert!(u.message.contains("facility=mail"));
    collector.shutdown(Duration::from_secs(5)).await.unwrap();
}
