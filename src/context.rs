//! The context line: what a source received that has no column of its own, kept searchable as
//! space-separated `key=value` pairs after the message (mapping.md, "The context line").

use std::fmt::Write;

/// Builds `key=value` pairs; values are quoted when they contain spaces, quotes or are empty.
#[derive(Debug, Default)]
pub struct ContextLine {
    text: String,
}

impl ContextLine {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one pair; `None` and empty values are skipped so the line only says what was received.
    pub fn push(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(key);
            self.text.push('=');
            push_value(&mut self.text, v);
        }
        self
    }

    /// Adds one pair from anything printable.
    pub fn push_display(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        let mut s = String::new();
        let _ = write!(s, "{value}");
        self.push(key, Some(&s))
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Appends the line to `message` (after a newline) when context storage is on.
    pub fn append_to(self, message: &mut String, enabled: bool) {
        if enabled && !self.text.is_empty() {
            message.push('\n');
            message.push_str(&self.text);
        }
    }

    /// The line itself.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn push_value(out: &mut String, v: &str) {
    let needs_quotes = v
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '=');
    if !needs_quotes {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed_and_skips_empty() {
        let mut c = ContextLine::new();
        c.push("facility", Some("user"))
            .push("pid", None)
            .push("msgid", Some(""))
            .push("sd", Some(r#"[a b="c\]"]"#))
            .push_display("peer", "127.0.0.1");
        assert_eq!(
            c.as_str(),
            r#"facility=user sd="[a b=\"c\\]\"]" peer=127.0.0.1"#
        );
        let mut m = "hello".to_string();
        c.append_to(&mut m, true);
        assert!(m.starts_with("hello\nfacility=user "));
        let mut m = "hello".to_string();
        ContextLine::new().append_to(&mut m, true);
        assert_eq!(m, "hello");
    }
}
