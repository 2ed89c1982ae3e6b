//! `[otlp]`: the gRPC and HTTP listeners and the limits that keep one request, or many at once, from
//! taking more memory than the queue is allowed (docs/security.md).

use crate::settings::{self, DAY, HOUR, MILLISECOND, Problems, Section, TENTH_SECOND};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// OTLP listeners and their limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// gRPC `LogsService/Export`; `None` when off (`grpc = ""`).
    #[serde(deserialize_with = "settings::optional_address::deserialize")]
    pub grpc: Option<SocketAddr>,
    /// HTTP `POST /v1/logs`; `None` when off.
    #[serde(deserialize_with = "settings::optional_address::deserialize")]
    pub http: Option<SocketAddr>,
    /// Both listeners speak TLS with the `[tls]` material.
    pub tls: bool,
    /// Bearer tokens, one per line: requests must carry `Authorization: Bearer` with one of them.
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// Largest request body, after decompression.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_message_bytes: usize,
    /// How long a request waits for queue room before it is answered "unavailable, retry".
    #[serde(with = "settings::duration", alias = "queue_wait_ms")]
    pub queue_wait: Duration,
    /// Requests handled at once per listener; more wait for a turn (HTTP) or a stream (gRPC).
    pub max_concurrent_requests: usize,
    /// Open connections per listener; more are closed at once.
    pub max_connections: usize,
    /// HTTP: time to receive a request's headers.
    #[serde(with = "settings::duration")]
    pub header_timeout: Duration,
    /// HTTP and gRPC: time to receive a request's body once its headers arrived.
    #[serde(with = "settings::duration")]
    pub body_timeout: Duration,
    /// gRPC: HTTP/2 keepalive ping interval; a peer that does not answer within the same time is
    /// disconnected.
    #[serde(with = "settings::duration")]
    pub keepalive: Duration,
    /// Memory that requests being decoded may take together, both listeners (the decoded size is
    /// known before decoding); a request needing more than all of it is refused.
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub decode_budget: usize,
    /// Longest text kept of one attribute value in the context line; longer ones end in "…cut".
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_attribute_bytes: usize,
    /// Longest context line of one record; the rest is cut with "…cut".
    #[serde(deserialize_with = "settings::bytes::deserialize")]
    pub max_context_bytes: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        OtlpConfig {
            grpc: Some(local(4317)),
            http: Some(local(4318)),
            tls: false,
            bearer_token_file: None,
            max_message_bytes: 4 << 20,
            queue_wait: Duration::from_millis(1000),
            max_concurrent_requests: 4,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            decode_budget: 32 << 20,
            max_attribute_bytes: 4096,
            max_context_bytes: 16384,
        }
    }
}

impl Section for OtlpConfig {
    const NAME: &'static str = "otlp";

    fn check(&self, p: &mut Problems<'_>) {
        p.range("max_message_bytes", self.max_message_bytes, 1024, 1 << 30);
        p.duration_range("queue_wait", self.queue_wait, MILLISECOND, HOUR);
        p.range(
            "max_concurrent_requests",
            self.max_concurrent_requests,
            1,
            100_000,
        );
        p.range("max_connections", self.max_connections, 1, 1_000_000);
        for (key, d) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("keepalive", self.keepalive),
        ] {
            p.duration_range(key, d, TENTH_SECOND, DAY);
        }
        p.range(
            "max_attribute_bytes",
            self.max_attribute_bytes,
            16,
            16 << 20,
        );
        p.range("max_context_bytes", self.max_context_bytes, 64, 64 << 20);
        if self
            .bearer_token_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            p.key(
                "bearer_token_file",
                "must be a file path (leave the key out instead of \"\")",
            );
        }
        if let (Some(g), Some(h)) = (self.grpc, self.http)
            && g == h
            && g.port() != 0
        {
            p.key("http", format!("{h} is also the gRPC address"));
        }
    }
}
