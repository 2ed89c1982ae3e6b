//! Syslog message parsing, RFC 5424 and RFC 3164 detected per message, lenient: every input yields a
//! [`Parsed`], and what could not be understood is kept as the message text.
//!
//! RFC 5424 is parsed here (its header is strict and we keep STRUCTURED-DATA exactly as received);
//! RFC 3164, with its many timestamp dialects, goes to `syslog_loose`.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::borrow::Cow;

/// Which grammar a message was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
    /// Nothing recognisable: the whole input is the message (counted as a parse failure).
    Raw,
}

/// The fields of one syslog message; `None` where the message had none (or NILVALUE).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'a> {
    pub format: Format,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub timestamp: Option<DateTime<Utc>>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<Cow<'a, str>>,
    pub msg_id: Option<&'a str>,
    /// STRUCTURED-DATA text (as received for RFC 5424).
    pub structured_data: Option<Cow<'a, str>>,
    pub msg: &'a str,
}

impl<'a> Parsed<'a> {
    fn raw(msg: &'a str) -> Self {
        Parsed {
            format: Format::Raw,
            facility: None,
            severity: None,
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: None,
            msg,
        }
    }
}

/// Parses one message. `now` is the receive time (it picks the year of RFC 3164 timestamps);
/// `source_tz` is the zone of RFC 3164 timestamps, which carry none.
pub fn parse(input: &str, now: DateTime<Utc>, source_tz: Tz) -> Parsed<'_> {
    let (pri, after_pri) = match split_pri(input) {
        Some((pri, rest)) => (Some(pri), rest),
        None => (None, input),
    };
    if pri.is_some()
        && let Some(rest) = after_pri.strip_prefix("1 ")
        && let Some(mut p) = parse_5424(rest)
    {
        set_pri(&mut p, pri);
        return p;
    }
    parse_3164(input, pri, after_pri, now, source_tz)
}

fn set_pri(p: &mut Parsed<'_>, pri: Option<u8>) {
    if let Some(pri) = pri {
        p.facility = Some(pri >> 3);
        p.severity = Some(pri & 7);
    }
}

/// `<PRI>` with 1-3 digits and a value up to 191.
fn split_pri(input: &str) -> Option<(u8, &str)> {
    let rest = input.strip_prefix('<')?;
    let close = rest.as_bytes().iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u16 = digits.parse().ok()?;
    if value > 191 {
        return None;
    }
    Some((value as u8, &rest[close + 1..]))
}

fn nil(field: &str) -> Option<&str> {
    (field != "-").then_some(field)
}

/// Header after `<PRI>1 `: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG].
fn parse_5424(rest: &str) -> Option<Parsed<'_>> {
    let mut fields = rest.splitn(6, ' ');
    let ts = fields.next()?;
    let host = fields.next()?;
    let app = fields.next()?;
    let proc_id = fields.next()?;
    let msg_id = fields.next()?;
    let tail = fields.next()?;
    let timestamp = if ts == "-" {
        None
    } else {
        Some(DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc))
    };
    let (sd, msg) = split_structured_data(tail)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Parsed {
        format: Format::Rfc5424,
        facility: None,
        severity: None,
        timestamp,
        hostname: nil(host),
        app_name: nil(app),
        proc_id: nil(proc_id).map(Cow::Borrowed),
        msg_id: nil(msg_id),
        structured_data: sd.map(Cow::Borrowed),
        msg,
    })
}

/// Splits `SD [SP MSG]`; SD is `-` or one or more `[...]` elements whose quoted values may hold
/// escaped `"`, `\` and `]`.
fn split_structured_data(tail: &str) -> Option<(Option<&str>, &str)> {
    if let Some(msg) = tail.strip_prefix('-') {
        return match msg.strip_prefix(' ') {
            Some(m) => Some((None, m)),
            None if msg.is_empty() => Some((None, "")),
            None => None,
        };
    }
    let bytes = tail.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        loop {
            match bytes.get(i)? {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let sd = &tail[..i];
    match &tail[i..] {
        "" => Some((Some(sd), "")),
        rest => rest.strip_prefix(' ').map(|m| (Some(sd), m)),
    }
}

fn parse_3164<'a>(
    input: &'a str,
    pri: Option<u8>,
    after_pri: &'a str,
    now: DateTime<Utc>,
    source_tz: Tz,
) -> Parsed<'a> {
    let get_year = move |(month, day, hour, min, sec): (u32, u32, u32, u32, u32)| {
        nearest_year(now, month, day, hour, min, sec)
    };
    let parsed = syslog_loose::parse_message_with_year_exact_tz(
        input,
        get_year,
        Some(source_tz),
        syslog_loose::Variant::RFC3164,
    );
    match parsed {
        Ok(m) if m.timestamp.is_some() => {
            let structured_data = if m.structured_data.is_empty() {
                None
            } else {
                Some(Cow::Owned(render_sd(&m.structured_data)))
            };
            let mut p = Parsed {
                format: Format::Rfc3164,
                facility: None,
                severity: None,
                timestamp: m.timestamp.map(|t| t.with_timezone(&Utc)),
                hostname: m.hostname,
                app_name: m.appname,
                proc_id: m.procid.map(|p| match p {
                    syslog_loose::ProcId::PID(n) => Cow::Owned(n.to_string()),
                    syslog_loose::ProcId::Name(n) => Cow::Borrowed(n),
                }),
                msg_id: None,
                structured_data,
                msg: m.msg,
            };
            set_pri(&mut p, pri);
            p
        }
        _ if pri.is_some() => {
            // `<PRI>` without a timestamp, as Python's SysLogHandler sends: optional `TAG[pid]: `.
            let (app, proc_id, msg) = split_tag(after_pri);
            let mut p = Parsed::raw(msg);
            p.format = Format::Rfc3164;
            p.app_name = app;
            p.proc_id = proc_id.map(Cow::Borrowed);
            set_pri(&mut p, pri);
            p
        }
        _ => Parsed::raw(input),
    }
}

/// `TAG[pid]: rest` or `TAG: rest` with a plausible tag; otherwise the whole text is the message.
fn split_tag(text: &str) -> (Option<&str>, Option<&str>, &str) {
    let Some(colon) = text.find(": ") else {
        return (None, None, text);
    };
    let tag = &text[..colon];
    let (name, pid) = match tag.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((n, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (n, Some(p)),
        _ => (tag, None),
    };
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./@:".contains(&b));
    if plausible {
        (Some(name), pid, &text[colon + 2..])
    } else {
        (None, None, text)
    }
}

fn render_sd(elements: &[syslog_loose::StructuredElement<&str>]) -> String {
    let mut out = String::new();
    for e in elements {
        out.push('[');
        out.push_str(e.id);
        for (k, v) in &e.params {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            // syslog_loose hands out the value as received, escapes included: escaping it again
            // doubled every `\\` (found by the `framing` fuzz target's size bound).
            out.push_str(v);
            out.push('"');
        }
        out.push(']');
    }
    out
}

/// The year that puts a year-less timestamp nearest to the receive time (a December line received on
/// 1 January belongs to last year).
fn nearest_year(now: DateTime<Utc>, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> i32 {
    let y = now.year();
    [y, y - 1, y + 1]
        .into_iter()
        .filter_map(|year| {
            let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, min, sec)?;
            let diff = (Utc.from_utc_datetime(&naive) - now).num_seconds().abs();
            Some((diff, year))
        })
        .min()
        .map(|(_, year)| year)
        .unwrap_or(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn rfc5424_full() {
        let line = r#"<165>1 2026-11-27T10:14:15.003+01:00 mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Appl\]ication"][x@1 a="b"] BOMAn application event"#;
        let line = line.replace("BOM", "\u{feff}");
        let p = parse(&line, now(), Tz::UTC);
        assert_eq!(p.format, Format::Rfc5424);
        assert_eq!(p.facility, Some(20));
        assert_eq!(p.severity, Some(5));
        assert_eq!(
            p.timestamp.unwrap().to_rfc3339(),
            "2026-11-27T09:14:15.003+00:00"
        );
        assert_eq!(p.hostname, Some("mymachine.example.com"));
        assert_eq!(p.app_name, Some("evntslog"));
        assert_eq!(p.proc_id.as_deref(), Some("1234"));
        assert_eq!(p.msg_id, Some("ID47"));
        assert_eq!(
            p.structured_data.as_deref(),
            Some(r#"[exampleSDID@32473 iut="3" eventSource="Appl\]ication"][x@1 a="b"]"#)
        );
        assert_eq!(p.msg, "An application event");
    }

    #[test]
    fn rfc5424_nil_values_and_no_msg() {
        let p = parse("<14>1 - - - - - -", now(), Tz::UTC);
        assert_eq!(p.format, Format::Rfc5424);
        assert_eq!(p.timestamp, None);
        assert_eq!(p.hostname, None);
        assert_eq!(p.structured_data, None);
        assert_eq!(p.msg, "");
    }

    #[test]
    fn rfc3164_structured_data_is_kept_as_received() {
        let line = r#"<13>Oct 11 22:14:15 host app[1]: [x@1 a="b\"c\\d\]e" f="g"] text"#;
        let p = parse(line, now(), Tz::UTC);
        assert_eq!(p.format, Format::Rfc3164);
        assert_eq!(
            p.structured_data.as_deref(),
            Some(r#"[x@1 a="b\"c\\d\]e" f="g"]"#)
        );
    }

    #[test]
    fn rfc3164_with_tag_and_pid_in_source_zone() {
        let p = parse(
            "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick",
            now(),
            chrono_tz::Europe::Vienna,
        );
        assert_eq!(p.format, Format::Rfc3164);
        assert_eq!(p.severity, Some(2));
        assert_eq!(p.facility, Some(4));
        assert_eq!(p.hostname, Some("mymachine"));
        assert_eq!(p.app_name, Some("su"));
        assert_eq!(p.proc_id.as_deref(), Some("123"));
        assert_eq!(p.msg, "'su root' failed for lonvick");
        // 22:14:15 CEST (UTC+2) on 11 October 2026
        assert_eq!(
            p.timestamp.unwrap().to_rfc3339(),
            "2026-10-11T20:14:15+00:00"
        );
    }

    #[test]
    fn rfc3164_december_line_in_january_is_last_year() {
        let jan: DateTime<Utc> = "2027-01-01T00:00:30Z".parse().unwrap();
        let p = parse("<13>Dec 31 23:59:50 host app: bye", jan, Tz::UTC);
        assert_eq!(
            p.timestamp.unwrap().to_rfc3339(),
            "2026-12-31T23:59:50+00:00"
        );
    }

    #[test]
    fn rfc3164_without_pri() {
        let p = parse("Nov 27 11:00:00 host cron[9]: job done", now(), Tz::UTC);
        assert_eq!(p.format, Format::Rfc3164);
        assert_eq!(p.severity, None);
        assert_eq!(p.app_name, Some("cron"));
        assert_eq!(p.msg, "job done");
    }

    #[test]
    fn python_sysloghandler_style() {
        let p = parse("<11>myapp.web: something broke", now(), Tz::UTC);
        assert_eq!(p.format, Format::Rfc3164);
        assert_eq!(p.severity, Some(3));
        assert_eq!(p.app_name, Some("myapp.web"));
        assert_eq!(p.timestamp, None);
        assert_eq!(p.msg, "something broke");
        let p = parse("<14>just text, no tag", now(), Tz::UTC);
        assert_eq!(p.app_name, None);
        assert_eq!(p.msg, "just text, no tag");
    }

    #[test]
    fn garbage_is_raw() {
        let p = parse("\u{1}\u{2} total garbage", now(), Tz::UTC);
        assert_eq!(p.format, Format::Raw);
        assert_eq!(p.msg, "\u{1}\u{2} total garbage");
        let p = parse("<999>1 x", now(), Tz::UTC);
        assert_eq!(p.format, Format::Raw);
    }

    #[test]
    fn broken_5424_header_falls_back() {
        let p = parse("<13>1 notatime host app - - - msg", now(), Tz::UTC);
        assert_ne!(p.format, Format::Rfc5424);
        assert!(p.msg.contains("msg"));
    }
}
