//! Real senders nobody here wrote (util-linux `logger`, Python's SysLogHandler) into a running
//! collector, on SQLite and PostgreSQL: the stored rows carry the mapped fields.

mod common;
use common::*;

use chrono::Utc;
use std::time::Duration;

const PY_SYSLOG: &str = r#"
import logging, logging.handlers, socket, sys
host, port, proto, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
h = logging.handlers.SysLogHandler(address=(host, port),
    socktype=socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
log = logging.getLogger("pyapp." + proto)
log.setLevel(logging.DEBUG)
log.addHandler(h)
log.error("python error " + tag)
log.warning("python warning " + tag)
log.debug("python debug " + tag)
h.close()
"#;

async fn senders_into(engine: Engine) {
    let db = TestDb::new(engine, "senders").await;
    let collector = start(&test_config(&db.url)).await;
    let udp = collector.udp_addrs()[0];
    let tcp = collector.tcp_addrs()[0];
    let tag = format!("t{}", std::process::id());
    let before = Utc::now() - chrono::Duration::seconds(5);

    logger(
        udp,
        &[
            "--id=4242",
            "--udp",
            "--rfc3164",
            "-t",
            "udp3164",
            "-p",
            "user.err",
            &format!("one {tag}"),
        ],
    );
    logger(
        udp,
        &[
            "--id=4242",
            "--udp",
            "--rfc5424",
            "-t",
            "udp5424",
            "-p",
            "local3.warning",
            &format!("two {tag}"),
        ],
    );
    logger(
        tcp,
        &[
            "--id=4242",
            "--tcp",
            "--rfc3164",
            "-t",
            "tcp3164",
            "-p",
            "daemon.info",
            &format!("three {tag}"),
        ],
    );
    logger(
        tcp,
        &[
            "--id=4242",
            "--tcp",
            "--rfc5424",
            "-t",
            "tcp5424",
            "-p",
            "auth.crit",
            "--msgid",
            "M1",
            &format!("four {tag}"),
        ],
    );
    logger(
        tcp,
        &[
            "--id=4242",
            "--tcp",
            "--rfc5424",
            "--octet-count",
            "-t",
            "octet",
            "-p",
            "local7.debug",
            &format!("five {tag}"),
        ],
    );
    for proto in ["udp", "tcp"] {
        let addr = if proto == "udp" { udp } else { tcp };
        python3(
            PY_SYSLOG,
            &[
                addr.ip().to_string(),
                addr.port().to_string(),
                proto.into(),
                tag.clone(),
            ],
        );
    }

    let store = db.store().await;
    let n = store.wait_rows(11, Duration::from_secs(20)).await;
    assert_eq!(n, 11, "all 11 messages stored");
    let rows = store.rows().await;
    let find = |text: &str| {
        rows.iter()
            .find(|r| r.message.starts_with(text))
            .unwrap_or_else(|| panic!("no row starting with {text:?} in {rows:#?}"))
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim();

    let expect = [
        ("one", "udp3164", "ERROR", "facility=user"),
        ("two", "udp5424", "WARNING", "facility=local3"),
        ("three", "tcp3164", "INFO", "facility=daemon"),
        ("four", "tcp5424", "CRITICAL", "facility=auth"),
        ("five", "octet", "DEBUG", "facility=local7"),
    ];
    for (word, app, level, facility) in expect {
        let r = find(&format!("{word} {tag}\n"));
        assert_eq!(r.logger_name, app, "{word}");
        assert_eq!(r.level, level, "{word}");
        assert_eq!(r.module, hostname, "{word}: module is HOSTNAME");
        assert_eq!((r.pathname.as_str(), r.line_number), ("", 0));
        assert!(r.message.contains(facility), "{word}: {}", r.message);
        assert!(
            r.message.contains("pid=4242"),
            "logger sends its pid: {}",
            r.message
        );
        assert!(r.message.ends_with("peer=127.0.0.1"), "{}", r.message);
        assert!(r.timestamp > before && r.timestamp < Utc::now() + chrono::Duration::seconds(5));
        assert!(!r.message_chunked);
        assert_eq!(r.message_size as usize, r.message.chars().count());
    }
    assert!(find(&format!("four {tag}")).message.contains("msgid=M1"));
    for proto in ["udp", "tcp"] {
        let e = find(&format!("python error {tag}"));
        assert_eq!(e.level, "ERROR");
        let logger = format!("pyapp.{proto}");
        let ours: Vec<_> = rows.iter().filter(|r| r.logger_name == logger).collect();
        assert_eq!(ours.len(), 3, "{logger}: {rows:#?}");
        let levels: Vec<_> = ours.iter().map(|r| r.level.as_str()).collect();
        for l in ["ERROR", "WARNING", "DEBUG"] {
            assert!(levels.contains(&l), "{logger} has {l}: {levels:?}");
        }
        // SysLogHandler sends no hostname: module is the sender's address.
        assert!(ours.iter().all(|r| r.module == "127.0.0.1"));
    }

    // Counters agree with the rows.
    let cards = store.cards().await;
    let (want_cards, want_buckets) = recompute(&rows, chrono_tz::Tz::UTC);
    for (name, (t, e, w)) in &want_cards {
        let c = cards.get(name).unwrap_or_else(|| panic!("card for {name}"));
        assert_eq!((c.0, c.1, c.2), (*t, *e, *w), "card {name}");
    }
    assert_eq!(cards.len(), want_cards.len());
    assert_eq!(store.buckets().await, want_buckets);

    let stats = collector.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(stats.rows_written, 11);
    assert_eq!(stats.parse_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_senders_into_sqlite() {
    senders_into(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_senders_into_postgres() {
    senders_into(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_senders_into_mysql() {
    senders_into(Engine::MySql).await;
}
