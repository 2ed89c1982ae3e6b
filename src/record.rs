//! The panel record before storage, and the rules that make any input fit the panel's columns.

use chrono::{DateTime, Datelike, Utc};
use std::fmt;
use std::str::FromStr;

/// Column limits of `log_panel_log` (Django's `max_length`, counted in characters).
pub const LOGGER_NAME_MAX: usize = 200;
/// See [`LOGGER_NAME_MAX`].
pub const MODULE_MAX: usize = 200;
/// See [`LOGGER_NAME_MAX`].
pub const PATHNAME_MAX: usize = 500;

/// Queue bytes a record holds at the least (its fixed part).
pub const MIN_WEIGHT: usize = 96;

/// The five level strings the admin filters, counts and colours by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// The exact string stored in `log_panel_log.level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// Counts toward `total_errors` / `error_count` (the package counts ERROR and CRITICAL).
    pub fn is_error(self) -> bool {
        matches!(self, Level::Error | Level::Critical)
    }

    /// Counts toward `total_warnings` / `warning_count`.
    pub fn is_warning(self) -> bool {
        self == Level::Warning
    }

    /// Syslog severity (RFC 5424 section 6.2.1) to panel level, as mapping.md says.
    pub fn from_syslog_severity(severity: u8) -> Level {
        match severity {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warning,
            5 | 6 => Level::Info,
            _ => Level::Debug,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARNING" | "WARN" => Ok(Level::Warning),
            "ERROR" => Ok(Level::Error),
            "CRITICAL" => Ok(Level::Critical),
            _ => Err(format!(
                "unknown level {s:?} (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One log event in the panel's shape, with the full message (chunking happens at batch time).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub timestamp: DateTime<Utc>,
    pub level: Level,
    pub logger_name: String,
    pub module: String,
    pub pathname: String,
    pub line_number: i32,
    pub message: String,
}

impl Record {
    /// Makes every field storable: NUL characters removed (PostgreSQL rejects them), short columns
    /// clipped to their `max_length`. Never fails: odd input is kept, not dropped.
    pub fn sanitize(&mut self) {
        strip_nul(&mut self.message);
        strip_nul(&mut self.logger_name);
        strip_nul(&mut self.module);
        strip_nul(&mut self.pathname);
        clip_chars(&mut self.logger_name, LOGGER_NAME_MAX);
        clip_chars(&mut self.module, MODULE_MAX);
        clip_chars(&mut self.pathname, PATHNAME_MAX);
        if self.line_number < 0 {
            self.line_number = 0;
        }
        // Python's datetime (and so Django), MySQL and PostgreSQL's text input all stop at years
        // 1-9999: a timestamp outside is the sender's error, and the receive time stands in.
        if !(1..=9999).contains(&self.timestamp.year()) {
            self.timestamp = Utc::now();
        }
    }

    /// Approximate memory held by the record, for the queue's byte cap.
    pub fn weight(&self) -> usize {
        MIN_WEIGHT
            + self.message.len()
            + self.logger_name.len()
            + self.module.len()
            + self.pathname.len()
    }
}

/// Removes NUL characters in place (cheap when there are none).
pub fn strip_nul(s: &mut String) {
    if s.contains('\0') {
        s.retain(|c| c != '\0');
    }
}

/// Cuts `s` to at most `max` characters (Unicode scalar values, as Django counts).
pub fn clip_chars(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    if let Some((byte, _)) = s.char_indices().nth(max) {
        s.truncate(byte);
    }
}

/// How a message is stored: the preview in `log_panel_log.message` and, past the preview length,
/// the complete text again as chunks (panel-schema.md, "Large messages").
#[derive(Debug, PartialEq, Eq)]
pub struct SplitMessage<'a> {
    /// What goes into `message`.
    pub preview: &'a str,
    /// `message_size`: the complete length in characters.
    pub size: usize,
    /// Chunk texts in index order; empty when the message fits the preview.
    pub chunks: Vec<&'a str>,
}

impl SplitMessage<'_> {
    /// `message_chunked`.
    pub fn chunked(&self) -> bool {
        !self.chunks.is_empty()
    }
}

/// Splits a message into preview and chunks; lengths count characters, chunks start at character 0.
pub fn split_message(message: &str, preview_len: usize, chunk_len: usize) -> SplitMessage<'_> {
    // A string of at most `preview_len` bytes has at most that many characters.
    if message.len() <= preview_len {
        return SplitMessage {
            preview: message,
            size: message.chars().count(),
            chunks: Vec::new(),
        };
    }
    let chunk_len = chunk_len.max(1);
    let mut chunks = Vec::new();
    let mut preview_end = None;
    let mut chunk_start = 0;
    let mut count = 0usize;
    for (byte, _) in message.char_indices() {
        if count == preview_len {
            preview_end = Some(byte);
        }
        if count > 0 && count.is_multiple_of(chunk_len) {
            chunks.push(&message[chunk_start..byte]);
            chunk_start = byte;
        }
        count += 1;
    }
    match preview_end {
        None => SplitMessage {
            preview: message,
            size: count,
            chunks: Vec::new(),
        },
        Some(end) => {
            chunks.push(&message[chunk_start..]);
            SplitMessage {
                preview: &message[..end],
                size: count,
                chunks,
            }
        }
    }
}

#[cfg(test)]
impl Record {
    /// A record for tests: now, at `level`, from `logger`, with no source location.
    pub(crate) fn sample(level: Level, logger: &str, message: impl Into<String>) -> Record {
        Record {
            timestamp: Utc::now(),
            level,
            logger_name: logger.into(),
            module: String::new(),
            pathname: String::new(),
            line_number: 0,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_message_is_not_chunked() {
        let s = split_message("hello", 10, 4);
        assert_eq!(s.preview, "hello");
        assert_eq!(s.size, 5);
        assert!(!s.chunked());
    }

    #[test]
    fn exact_preview_boundary_is_not_chunked_one_more_is() {
        let msg = "é".repeat(10);
        let s = split_message(&msg, 10, 4);
        assert!(!s.chunked(), "10 chars with preview 10 must not chunk");
        assert_eq!(s.size, 10);
        let msg = "é".repeat(11);
        let s = split_message(&msg, 10, 4);
        assert!(s.chunked());
        assert_eq!(s.preview, "é".repeat(10));
        assert_eq!(s.size, 11);
        assert_eq!(s.chunks, vec!["éééé", "éééé", "ééé"]);
    }

    #[test]
    fn chunks_cover_whole_message_from_char_zero() {
        let msg: String = (0..1000)
            .map(|i| char::from_u32(0x41 + (i % 26)).unwrap())
            .chain("日本語🎉".chars())
            .collect();
        let s = split_message(&msg, 100, 64);
        assert_eq!(s.chunks.concat(), msg);
        assert!(
            s.chunks[..s.chunks.len() - 1]
                .iter()
                .all(|c| c.chars().count() == 64)
        );
        assert_eq!(s.preview.chars().count(), 100);
        assert_eq!(s.size, 1004);
    }

    #[test]
    fn multibyte_message_longer_in_bytes_than_preview_but_not_in_chars() {
        let msg = "日".repeat(8); // 24 bytes, 8 chars
        let s = split_message(&msg, 10, 4);
        assert!(!s.chunked());
        assert_eq!(s.size, 8);
    }

    #[test]
    fn sanitize_strips_nul_and_clips() {
        let mut r = Record {
            timestamp: Utc::now(),
            level: Level::Info,
            logger_name: "a\0".to_string() + &"x".repeat(300),
            module: "m".repeat(250),
            pathname: "p".repeat(600),
            line_number: -3,
            message: "a\0b".into(),
        };
        r.sanitize();
        let mut far = r.clone();
        far.timestamp = "+10000-01-01T00:00:00Z".parse().unwrap();
        far.sanitize();
        assert!(
            far.timestamp.year() < 10000,
            "out-of-range years become the receive time"
        );
        assert_eq!(r.message, "ab");
        assert_eq!(r.logger_name.chars().count(), 200);
        assert!(r.logger_name.starts_with("ax"));
        assert_eq!(r.module.len(), 200);
        assert_eq!(r.pathname.len(), 500);
        assert_eq!(r.line_number, 0);
    }

    #[test]
    fn levels_from_severity() {
        let got: Vec<_> = (0..8).map(Level::from_syslog_severity).collect();
        use Level::*;
        assert_eq!(
            got,
            [
                Critical, Critical, Critical, Error, Warning, Info, Info, Debug
            ]
        );
    }
}
