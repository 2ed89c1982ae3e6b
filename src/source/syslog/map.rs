//! Syslog fields to a panel [`Record`] (mapping.md, "Syslog").

use super::parse::{Format, Parsed};
use super::template::{LoggerTemplate, TemplatePart};
use crate::context::ContextLine;
use crate::record::{Level, Record};
use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// What the mapping needs besides the message.
#[derive(Debug, Clone)]
pub struct SyslogMapping {
    pub logger_name: LoggerTemplate,
    pub context: bool,
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Name of a syslog facility code.
pub fn facility_name(code: u8) -> &'static str {
    FACILITIES.get(code as usize).copied().unwrap_or("unknown")
}

/// Builds the record; `received` stands in for a missing timestamp, `peer` for a missing hostname.
pub fn to_record(
    p: &Parsed<'_>,
    peer: IpAddr,
    received: DateTime<Utc>,
    m: &SyslogMapping,
) -> Record {
    let peer_text = peer.to_string();
    let host = p.hostname.unwrap_or(&peer_text);
    let app = p.app_name.unwrap_or("syslog");
    let facility = p.facility.map(facility_name);
    let mut logger_name = String::new();
    for part in &m.logger_name.0 {
        match part {
            TemplatePart::Text(t) => logger_name.push_str(t),
            TemplatePart::App => logger_name.push_str(app),
            TemplatePart::Host => logger_name.push_str(host),
            TemplatePart::Facility => logger_name.push_str(facility.unwrap_or("user")),
            TemplatePart::MsgId => logger_name.push_str(p.msg_id.unwrap_or("-")),
        }
    }
    let mut message = String::with_capacity(p.msg.len() + 64);
    message.push_str(p.msg.strip_suffix('\n').unwrap_or(p.msg));
    if message.ends_with('\r') {
        message.pop();
    }
    let mut ctx = ContextLine::new();
    ctx.push("facility", facility)
        .push("pid", p.proc_id.as_deref())
        .push("msgid", p.msg_id)
        .push("sd", p.structured_data.as_deref());
    if p.format == Format::Raw {
        ctx.push("unparsed", Some("true"));
    }
    ctx.push("peer", Some(&peer_text));
    ctx.append_to(&mut message, m.context);
    Record {
        timestamp: p.timestamp.unwrap_or(received),
        level: p
            .severity
            .map(Level::from_syslog_severity)
            .unwrap_or(Level::Info),
        logger_name,
        module: host.to_string(),
        pathname: String::new(),
        line_number: 0,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::syslog::parse::parse;
    use chrono_tz::Tz;

    fn mapping(t: &str) -> SyslogMapping {
        SyslogMapping {
            logger_name: LoggerTemplate::parse(t).unwrap(),
            context: true,
        }
    }

    #[test]
    fn maps_5424_fields_and_context() {
        let now = Utc::now();
        let p = parse(
            r#"<163>1 2026-11-27T10:00:00Z web01 nginx 77 REQ [meta x="1"] upstream timed out"#,
            now,
            Tz::UTC,
        );
        let r = to_record(
            &p,
            "10.0.0.9".parse().unwrap(),
            now,
            &mapping("{host}/{app}"),
        );
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.logger_name, "web01/nginx");
        assert_eq!(r.module, "web01");
        assert_eq!(r.timestamp.to_rfc3339(), "2026-11-27T10:00:00+00:00");
        assert_eq!(
            r.message,
            "upstream timed out\nfacility=local4 pid=77 msgid=REQ sd=\"[meta x=\\\"1\\\"]\" peer=10.0.0.9"
        );
    }

    #[test]
    fn raw_line_defaults() {
        let now = Utc::now();
        let p = parse("no header at all\n", now, Tz::UTC);
        let r = to_record(&p, "127.0.0.1".parse().unwrap(), now, &mapping("{app}"));
        assert_eq!(r.level, Level::Info);
        assert_eq!(r.logger_name, "syslog");
        assert_eq!(r.module, "127.0.0.1");
        assert_eq!(r.timestamp, now);
        assert_eq!(r.message, "no header at all\nunparsed=true peer=127.0.0.1");
        let off = SyslogMapping {
            context: false,
            ..mapping("{app}")
        };
        assert_eq!(
            to_record(&p, "127.0.0.1".parse().unwrap(), now, &off).message,
            "no header at all"
        );
    }
}
