//! The daemon's own log, read from the real binary's stderr: on a pipe plain text with timestamps
//! and no ANSI escape codes; under the journal (`JOURNAL_STREAM` naming stderr) no timestamp and an
//! sd-daemon `<N>` priority on every line, so that `journalctl -p warning` works.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The daemon with its stderr read line by line until it closes.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Daemon {
    fn spawn(mut cmd: Command, stderr: impl Read + Send + 'static) -> Daemon {
        let child = cmd.spawn().expect("starts the daemon");
        // The command holds our copy of the pipe's write end: drop it, so EOF comes with the exit.
        drop(cmd);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Daemon {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn wait_line(&self, needle: &str) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no line with {needle:?} in:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        run_ok(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.child.id().to_string()),
        );
    }

    /// SIGTERM, then every line it wrote (read to the end of the pipe).
    fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        assert!(self.child.wait().unwrap().success(), "exit status");
        self.reader.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the daemon through startup, a SIGHUP whose change needs a restart (a warning), a SIGHUP with
/// an invalid config (a multi-line error) and SIGTERM; returns its stderr lines.
fn run_daemon(journal: bool, journal_stream_override: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    let body = |level: &str| {
        format!(
            "[storage]\nurl = \"sqlite://{}/l.sqlite3\"\n[syslog]\nudp = []\ntcp = [\"127.0.0.1:0\"]\n\
             [otlp]\ngrpc = \"\"\nhttp = \"\"\n[service]\nmetrics = \"\"\nlog_level = \"{level}\"\n",
            dir.path().display()
        )
    };
    std::fs::write(&conf, body("debug")).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    let stream = {
        let fd: std::os::fd::OwnedFd = writer.try_clone().unwrap().into();
        let m = std::fs::File::from(fd).metadata().unwrap();
        format!("{}:{}", m.dev(), m.ino())
    };
    let mut cmd = Command::new(binary());
    cmd.args(["run", "--config"])
        .arg(&conf)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer);
    if journal {
        cmd.env("JOURNAL_STREAM", &stream);
    }
    if let Some(v) = journal_stream_override {
        cmd.env("JOURNAL_STREAM", v);
    }
    let daemon = Daemon::spawn(cmd, reader);
    daemon.wait_line("listening on syslog tcp");
    daemon.wait_line("writing to sqlite");
    std::fs::write(&conf, body("warn")).unwrap();
    daemon.signal("HUP");
    daemon.wait_line("SIGHUP: configuration reloaded");
    std::fs::write(&conf, "[storage]\nurl = 42\n[nope]\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_line("keeping the old one");
    // A debug event: the first retention pass (5 s after start) finds nothing to delete.
    daemon.wait_line("retention: nothing older than");
    daemon.stop()
}

/// The level word that the event format prints first (after any priority prefix).
fn level_word(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .into_iter()
        .find(|w| t.starts_with(&format!("{w} ")))
}

fn starts_with_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

#[test]
fn on_a_pipe_plain_text_with_timestamps_and_no_colour() {
    // A JOURNAL_STREAM that names another stream (inherited by a child whose stderr was
    // redirected) must not switch the format.
    let lines = run_daemon(false, Some("1:2"));
    let all = lines.join("\n");
    assert!(!all.contains('\x1b'), "ANSI escape codes on a pipe:\n{all}");
    let events: Vec<&String> = lines.iter().filter(|l| starts_with_timestamp(l)).collect();
    assert!(
        events.iter().any(|l| l.contains(" WARN ")
            && l.contains("service.log_level changes need a restart")),
        "{all}"
    );
    assert!(
        events
            .iter()
            .any(|l| l.contains("ERROR ") && l.contains("the new config is invalid")),
        "{all}"
    );
    assert!(
        events
            .iter()
            .any(|l| l.contains(" INFO ") && l.contains("stopped")),
        "{all}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with('<') && l.as_bytes().get(2) == Some(&b'>')),
        "no priority prefixes off the journal:\n{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("listening on syslog tcp ")),
        "{all}"
    );
}

#[test]
fn under_the_journal_every_line_has_its_priority_and_no_timestamp() {
    let lines = run_daemon(true, None);
    let all = lines.join("\n");
    assert!(
        !all.contains('\x1b'),
        "ANSI escape codes in the journal:\n{all}"
    );
    let mut seen = std::collections::BTreeMap::new();
    for l in &lines {
        let (n, rest) = match l.as_bytes() {
            [b'<', n @ b'0'..=b'7', b'>', ..] => (n - b'0', &l[3..]),
            _ => panic!("line without a priority prefix: {l:?} in:\n{all}"),
        };
        assert!(
            !starts_with_timestamp(rest.trim_start()),
            "timestamp in {l:?}"
        );
        if let Some(word) = level_word(rest) {
            let want = match word {
                "ERROR" => 3,
                "WARN" => 4,
                "INFO" => 6,
                _ => 7,
            };
            assert_eq!(n, want, "{word} line {l:?}");
            *seen.entry(word).or_insert(0) += 1;
        }
    }
    for word in ["ERROR", "WARN", "INFO", "DEBUG"] {
        assert!(seen.contains_key(word), "no {word} event in:\n{all}");
    }
    // The invalid config's error spans several lines: each one carries the error's priority, so
    // `journalctl -p err` shows all of it.
    let first = lines
        .iter()
        .position(|l| l.contains("the new config is invalid"))
        .unwrap();
    let error = &lines[first..first + 4];
    assert!(error.iter().all(|l| l.starts_with("<3>")), "{error:#?}");
    assert!(error[1].contains("2 error(s)"), "{error:#?}");
    assert!(
        error
            .iter()
            .any(|l| l.contains("storage.url: expected a string"))
    );
    assert!(error.iter().any(|l| l.contains("nope: unknown section")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>listening on syslog tcp ")),
        "{all}"
    );
}
