//! The context line: what a source received that has no column of its own, kept searchable as
//! space-separated `key=value` pairs after the message (mapping.md, "The context line").

/// What marks a value or a whole line that a limit cut short.
pub const CUT_MARK: &str = "…cut";

/// How long a context line may grow: per value and in all, in bytes of the stored text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    pub value: usize,
    pub total: usize,
}

impl ContextLimits {
    /// No limit (syslog: the line is bounded by the frame it came in).
    pub const NONE: ContextLimits = ContextLimits {
        value: usize::MAX,
        total: usize::MAX,
    };
}

/// Builds `key=value` pairs; values are quoted when they contain spaces, quotes or are empty.
/// Values longer than the limits are cut and end in [`CUT_MARK`], so one attribute copied into many
/// records (OTLP resource attributes) cannot multiply into gigabytes.
#[derive(Debug)]
pub struct ContextLine {
    text: String,
    limits: ContextLimits,
    full: bool,
}

impl Default for ContextLine {
    fn default() -> Self {
        ContextLine::new()
    }
}

impl ContextLine {
    /// An empty line without limits.
    pub fn new() -> Self {
        ContextLine::limited(ContextLimits::NONE)
    }

    /// An empty line that keeps to `limits`.
    pub fn limited(limits: ContextLimits) -> Self {
        ContextLine {
            text: String::new(),
            limits,
            full: false,
        }
    }

    /// Adds one pair; `None` and empty values are skipped so the line only says what was received.
    pub fn push(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return self;
        };
        if self.full {
            return self;
        }
        let mark = self.text.len();
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
        let value = clip_bytes(v, self.limits.value);
        push_value(&mut self.text, value);
        if value.len() < v.len() {
            self.text.push_str(CUT_MARK);
        }
        if self.text.len() > self.limits.total {
            // Keep what fits of this pair, then mark the line as cut: nothing more is added.
            let keep = clip_bytes(&self.text, self.limits.total.max(mark)).len();
            self.text.truncate(keep);
            self.text.push_str(CUT_MARK);
            self.full = true;
        }
        self
    }

    /// Adds pairs rendered earlier (by a line with the same limits), such as the attributes that
    /// every record of one OTLP resource shares.
    pub fn push_rendered(&mut self, rendered: &ContextLine) -> &mut Self {
        if rendered.text.is_empty() || self.full {
            return self;
        }
        let mark = self.text.len();
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(&rendered.text);
        if self.text.len() > self.limits.total {
            let keep = clip_bytes(&self.text, self.limits.total.max(mark)).len();
            self.text.truncate(keep);
            self.text.push_str(CUT_MARK);
            self.full = true;
        } else if rendered.full {
            self.full = true;
        }
        self
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

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn clip_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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
            .push("peer", Some("127.0.0.1"));
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

    #[test]
    fn limits_cut_values_and_the_line_with_a_mark() {
        let limits = ContextLimits {
            value: 8,
            total: 40,
        };
        let mut c = ContextLine::limited(limits);
        c.push("a", Some("0123456789abcdef")).push("b", Some("ok"));
        assert_eq!(c.as_str(), "a=01234567…cut b=ok");
        let mut shared = ContextLine::limited(limits);
        shared.push("host", Some("h"));
        c.push_rendered(&shared);
        for i in 0..100 {
            c.push("k", Some(&i.to_string()));
        }
        assert!(c.as_str().len() <= 40 + CUT_MARK.len(), "{}", c.as_str());
        assert!(c.as_str().ends_with(CUT_MARK), "{}", c.as_str());
        assert!(c.as_str().starts_with("a=01234567…cut b=ok host=h k=0"));
        // Multi-byte text is cut on a character boundary.
        let mut c = ContextLine::limited(ContextLimits {
            value: 5,
            total: 100,
        });
        c.push("x", Some("ääää"));
        assert_eq!(c.as_str(), "x=ää…cut");
    }
}
