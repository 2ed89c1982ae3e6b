//! Syslog over UDP and TCP: framing, parsing (RFC 5424 / RFC 3164 per message) and mapping.

pub mod config;
pub mod framing;
pub mod map;
pub mod parse;
pub mod stream;
pub mod tcp;
pub mod template;
pub mod udp;

use crate::stats::Stats;
use chrono::Utc;
use map::SyslogMapping;
use std::net::IpAddr;

/// What listeners read per message: the `[syslog]` section and the mapping it implies (the logger
/// template, and whether the context line is stored, which `[storage] context` says).
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    pub config: config::SyslogConfig,
    pub mapping: SyslogMapping,
}

impl SyslogSettings {
    /// The settings for `config`, with the context line on or off.
    pub fn new(config: &config::SyslogConfig, context: bool) -> Self {
        SyslogSettings {
            mapping: SyslogMapping {
                logger_name: config.logger_name.clone(),
                context,
            },
            config: config.clone(),
        }
    }
}

/// Parses and maps one message (bytes as received; invalid UTF-8 is replaced, not rejected).
pub fn decode(
    bytes: &[u8],
    peer: IpAddr,
    settings: &SyslogSettings,
    stats: &Stats,
) -> crate::record::Record {
    // Valid UTF-8 (nearly always) is borrowed as is; anything else gets U+FFFD where it is broken.
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let now = Utc::now();
    let parsed = parse::parse(&text, now, settings.config.source_time_zone);
    if parsed.format == parse::Format::Raw {
        Stats::inc(&stats.parse_failures);
    }
    map::to_record(&parsed, peer, now, &settings.mapping)
}
