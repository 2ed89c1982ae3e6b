//! The daemon's own log on stderr, shaped for where stderr goes: colour only on a terminal, and
//! under systemd's journal no timestamp (the journal adds its own) but each line's priority as an
//! sd-daemon `<N>` prefix, so that `journalctl -p warning` selects warnings and errors.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where stderr goes, which decides the log's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A terminal: timestamps and ANSI colour.
    Terminal,
    /// A pipe or file: timestamps, no escape codes.
    Plain,
    /// systemd's journal (`JOURNAL_STREAM` names stderr): `<N>` priority prefixes, no timestamp.
    Journal,
}

impl Target {
    /// Decides from the environment and stderr itself. `JOURNAL_STREAM` counts only while it
    /// names the stderr we have (`DEVICE:INODE`), as sd_journal_stream_fd(3) advises: a child
    /// whose stderr was redirected elsewhere inherits the variable but not the journal.
    pub fn detect() -> Target {
        let stderr = std::io::stderr();
        if let Ok(v) = std::env::var("JOURNAL_STREAM")
            && stream_is(&stderr, &v)
        {
            return Target::Journal;
        }
        if stderr.is_terminal() {
            Target::Terminal
        } else {
            Target::Plain
        }
    }
}

fn stream_is(fd: &impl AsFd, journal_stream: &str) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(owned) = fd.as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(owned)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The sd-daemon(3) priority of a tracing level (syslog severities: 3 error ... 7 debug).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Installs the global subscriber for `target` with this level filter.
pub fn init(target: Target, filter: tracing_subscriber::EnvFilter) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(target == Target::Terminal);
    match target {
        Target::Journal => builder
            .event_format(Journal(Format::default().without_time()))
            .init(),
        Target::Terminal | Target::Plain => builder.init(),
    }
}

/// Where this process's stderr goes, decided once.
pub fn target() -> Target {
    static TARGET: std::sync::OnceLock<Target> = std::sync::OnceLock::new();
    *TARGET.get_or_init(Target::detect)
}

/// A plain line of the daemon's own outside tracing (where it listens, a fatal error), with its
/// sd-daemon priority on every line under the journal.
pub fn say(priority: u8, text: impl std::fmt::Display) {
    let text = text.to_string();
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.lines() {
        if target() == Target::Journal {
            let _ = write!(out, "<{priority}>");
        }
        out.push_str(line);
        out.push('\n');
    }
    eprint!("{out}");
}

/// sd-daemon priority of [`say`] lines that report an error.
pub const ERR: u8 = 3;
/// sd-daemon priority of [`say`] lines that inform.
pub const INFO: u8 = 6;

/// The default format without a timestamp, with `<N>` before every line of an event (the journal
/// reads each line as an entry of its own).
struct Journal(Format<Full, ()>);

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let n = priority(event.metadata().level());
        for line in text.lines() {
            writeln!(writer, "<{n}>{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
    }

    #[test]
    fn journal_stream_must_name_this_fd() {
        let f = tempfile::tempfile().unwrap();
        let m = f.metadata().unwrap();
        assert!(stream_is(&f, &format!("{}:{}", m.dev(), m.ino())));
        assert!(!stream_is(&f, &format!("{}:{}", m.dev(), m.ino() + 1)));
        assert!(!stream_is(&f, "garbage"));
    }
}
