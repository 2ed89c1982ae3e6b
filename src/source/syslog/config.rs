//! `[syslog]`: listeners, parsing, and the limits that keep a flood of connections or endless frames
//! from taking the daemon's memory (docs/security.md).

use super::template::LoggerTemplate;
use crate::settings::{self, HOUR, Problems, Section, TENTH_SECOND};
use chrono_tz::Tz;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// Syslog listeners and parsing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    #[serde(deserialize_with = "settings::addresses::deserialize")]
    pub udp: Vec<SocketAddr>,
    #[serde(deserialize_with = "settings::addresses::deserialize")]
    pub tcp: Vec<SocketAddr>,
    /// Syslog over TLS (RFC 5425) listeners, with the `[tls]` material; empty: none.
    #[serde(deserialize_with = "settings::addresses::deserialize")]
    pub tls: Vec<SocketAddr>,
    /// Zone of RFC 3164 timestamps, which carry none.
    #[serde(with = "settings::time_zone")]
    pub source_time_zone: Tz,
    /// Longest frame kept whole; longer ones are cut here and stored.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_frame: usize,
    /// Template for `logger_name`.
    pub logger_name: LoggerTemplate,
    /// SO_RCVBUF for UDP sockets, in bytes (0 keeps the kernel default).
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub udp_recv_buffer: usize,
    /// Open connections per TCP listener; one more is closed at once.
    pub max_connections: usize,
    /// A frame that was started must be complete within this time, or what arrived is stored as a
    /// cut frame and the connection is closed (slowloris). Idle time between frames is not limited.
    #[serde(with = "settings::duration")]
    pub frame_timeout: Duration,
    /// Bytes held in unfinished frames across all connections; past it, the connection holding
    /// the most is answered as if its frame had timed out.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_pending_bytes: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        let local = SocketAddr::from(([127, 0, 0, 1], 5514));
        SyslogConfig {
            udp: vec![local],
            tcp: vec![local],
            tls: Vec::new(),
            source_time_zone: Tz::UTC,
            max_frame: 1 << 20,
            logger_name: LoggerTemplate::default(),
            udp_recv_buffer: 32 << 20,
            max_connections: 4096,
            frame_timeout: Duration::from_secs(10),
            max_pending_bytes: 64 << 20,
        }
    }
}

impl Section for SyslogConfig {
    const NAME: &'static str = "syslog";

    fn check(&self, p: &mut Problems<'_>) {
        if self.max_frame < 480 {
            p.key(
                "max_frame",
                "must be at least 480 (RFC 5426's minimum message size)",
            );
        }
        if self.max_frame > 256 << 20 {
            p.key("max_frame", "must be at most 268435456 (256 MiB)");
        }
        p.range("udp_recv_buffer", self.udp_recv_buffer, 0, 1 << 30);
        p.range("max_connections", self.max_connections, 1, 1_000_000);
        p.duration_range("frame_timeout", self.frame_timeout, TENTH_SECOND, HOUR);
        p.range(
            "max_pending_bytes",
            self.max_pending_bytes,
            1 << 20,
            1 << 40,
        );
        for (key, list) in [("udp", &self.udp), ("tcp", &self.tcp), ("tls", &self.tls)] {
            for addr in settings::duplicates(list) {
                p.key(key, format!("{addr} is listed twice"));
            }
        }
    }
}
