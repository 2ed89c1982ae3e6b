//! The real daemon binary as a child process (stderr collected, signals, kill -9, RSS), and plain
//! HTTP/1.1 senders for OTLP/JSON and metrics, so fault tests know exactly which request was answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A daemon process whose stderr is collected.
pub struct Daemon {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts the binary on this config file.
    pub fn start(config: &Path) -> Daemon {
        let mut cmd = Command::new(super::binary());
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,sqlx=warn");
        Daemon::spawn(cmd)
    }

    /// Runs `cmd` (the binary, or a wrapper that execs it) with its stderr collected.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts the daemon");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        self.wait_any(&[needle], timeout)
    }

    /// Waits for a stderr line containing any of `needles`; returns it.
    pub fn wait_any(&self, needles: &[&str], timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| needles.iter().any(|n| l.contains(n)))
                .cloned();
            if let Some(l) = found {
                return l;
            }
            assert!(
                t0.elapsed() < timeout,
                "no line with {needles:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The address a "listening on …" line names after `prefix`.
    pub fn addr(&self, prefix: &str) -> SocketAddr {
        let l = self.wait_line(prefix, Duration::from_secs(20));
        l[l.find(prefix).unwrap() + prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// The whole log so far.
    pub fn text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (TERM, HUP, ...).
    pub fn signal(&self, sig: &str) {
        super::run_ok(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.child.id().to_string()),
        );
    }

    /// Resident memory in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM; waits for the exit and for every line it wrote. Returns (exited successfully, log).
    pub fn stop(mut self) -> (bool, String) {
        self.signal("TERM");
        let ok = self.child.wait().unwrap().success();
        // The reader ends at the end of the pipe.
        self.reader.take().unwrap().join().unwrap();
        (ok, self.text())
    }

    /// kill -9, and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; waits up to `timeout` for the exit. Returns (exited successfully, time taken, log).
    pub fn term(mut self, timeout: Duration) -> (bool, Duration, String) {
        let t0 = Instant::now();
        self.signal("TERM");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.success(), t0.elapsed(), self.text());
            }
            assert!(
                t0.elapsed() < timeout,
                "the daemon did not stop within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit by itself: (exit code, log).
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, String) {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code(), self.text());
            }
            assert!(
                t0.elapsed() < timeout,
                "the daemon did not exit within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave the daemon running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request on a new connection: the status code, or `None` when no answer came
/// (connection refused or cut: the outcome is unknown to the sender).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// An OTLP/JSON export request: one record per message, under scope (logger) `logger`.
pub fn otlp_json(logger: &str, messages: &[String]) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let records: Vec<serde_json::Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::json!({
                "timeUnixNano": (now + i as i64).to_string(),
                "severityNumber": if i % 7 == 0 { 17 } else if i % 5 == 0 { 13 } else { 9 },
                "body": {"stringValue": m},
            })
        })
        .collect();
    serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": []},
            "scopeLogs": [{"scope": {"name": logger}, "logRecords": records}],
        }]
    })
    .to_string()
    .into_bytes()
}

/// POSTs an OTLP/JSON request: the status, or `None` when the outcome is unknown.
pub fn post_otlp(addr: SocketAddr, logger: &str, messages: &[String]) -> Option<u16> {
    http(addr, "POST", "/v1/logs", &otlp_json(logger, messages)).map(|(c, _)| c)
}

/// A metric's value from the Prometheus text (first line with this name, without labels filter).
pub fn scrape(addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, text) = http(addr, "GET", "/metrics", b"")?;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
