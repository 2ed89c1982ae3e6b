//! The invariants the fuzz targets assert, one function per target, each taking arbitrary bytes.
//!
//! Shared by the coverage-guided targets in `fuzz/fuzz_targets/` (cargo-fuzz, libFuzzer) and by the
//! stable `cargo test` in `tests/fuzz_invariants.rs`, which replays the seed corpus and random
//! inputs through the same functions. A broken invariant panics with what was expected.
//!
//! Each target reads its first byte(s) as parameters (flags, `max_frame`), the rest as input:
//! - `framing`: `[flags, max_lo, max_hi, stream..]`; flags bit 0 = structured (the stream is built
//!   from a list of frames whose expected output is known), else raw bytes.
//! - `syslog_decode`: `[flags, message..]`; bit 0 context off, bits 1-2 logger template, bits 3-4
//!   source time zone, bit 5 IPv6 peer.
//! - `otlp_protobuf`: `[flags, body..]`; bit 0 context off, bit 1 gzip: then `[flags, limit, body..]`
//!   with a decompression limit of `(limit + 1) * 64` bytes.
//! - `otlp_json`: `[flags, body..]`; bit 0 context off.
//! - `config`: the whole input is the TOML text.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use log_panel_collector::config::{Config, ConfigError, LoggerTemplate, OtlpConfig, SyslogConfig};
use log_panel_collector::context::{CUT_MARK, ContextLimits};
use log_panel_collector::record::{self, Record, split_message};
use log_panel_collector::source::otlp::{self, ExportError, cost};
use log_panel_collector::source::syslog::framing::{Frame, Framer};
use log_panel_collector::source::syslog::{SyslogSettings, decode, parse};
use log_panel_collector::stats::Stats;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use std::net::IpAddr;
use std::time::Instant;

/// Bytes a context line adds at most beyond its escaped values (keys, `=`, quotes, peer, facility).
const CONTEXT_OVERHEAD: usize = 256;

/// The first byte of the input as flags, and the rest.
fn split_flags(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, &[]),
    }
}

/// A small deterministic generator (splitmix64) seeded from the input, for split points.
struct Rng(u64);

impl Rng {
    fn from_bytes(data: &[u8]) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Runs a stream through a framer in the given pieces: the frames, then what `finish` gives.
fn frames_of(max_frame: usize, pieces: &[&[u8]]) -> Vec<Frame> {
    let mut framer = Framer::new(max_frame);
    let mut out = Vec::new();
    for piece in pieces {
        framer.buffer().extend_from_slice(piece);
        while let Some(f) = framer.next_frame() {
            out.push(f);
        }
    }
    out.extend(framer.finish());
    out
}

/// Cuts `stream` at random points (from 1 byte to the whole stream per piece).
fn random_pieces<'a>(stream: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(8),
            2 => 1 + rng.below(256),
            _ => 1 + rng.below(rest.len()),
        }
        .min(rest.len());
        let (a, b) = rest.split_at(n);
        pieces.push(a);
        rest = b;
    }
    pieces
}

/// One frame the structured stream holds, and how it is framed on the wire.
struct Planned {
    content: Vec<u8>,
    wire: Vec<u8>,
}

/// Builds a stream of octet-counted, LF- and NUL-delimited frames from the input; every message
/// starts with `<` (as syslog does), so its expected frame is known exactly.
fn plan_frames(mut data: &[u8], last_open: bool) -> Vec<Planned> {
    let mut out = Vec::new();
    while let [kind, len, rest @ ..] = data {
        let n = (*len as usize).min(rest.len());
        let (body, tail) = rest.split_at(n);
        data = tail;
        let mut content = vec![b'<'];
        let wire = match kind % 3 {
            0 => {
                content.extend_from_slice(body);
                let mut w = format!("{} ", content.len()).into_bytes();
                w.extend_from_slice(&content);
                w
            }
            k => {
                content.extend(body.iter().copied().filter(|&b| b != b'\n' && b != 0));
                while content.last() == Some(&b'\r') {
                    content.pop();
                }
                let mut w = content.clone();
                w.push(if k == 1 { b'\n' } else { 0 });
                w
            }
        };
        out.push(Planned { content, wire });
    }
    // The stream may end inside a last delimited line: `finish` must still deliver it.
    if last_open
        && let Some(last) = out.last_mut()
        && last.wire.len() == last.content.len() + 1
    {
        last.wire.pop();
    }
    out
}

/// Target `framing`: the same stream gives the same frames whatever the read sizes; no frame is
/// longer than `max_frame`, empty, or made of bytes not in the stream (in order); a structured
/// stream gives exactly its frames (cut at `max_frame` and flagged when longer); every frame
/// decodes to one record that keeps the record invariants.
pub fn framing(data: &[u8]) {
    let (flags, rest) = split_flags(data);
    let (max_frame, stream) = match rest {
        [lo, hi, stream @ ..] => (1 + u16::from_le_bytes([*lo, *hi]) as usize % 2048, stream),
        _ => return,
    };
    let mut rng = Rng::from_bytes(data);
    let (stream, expected) = if flags & 1 == 1 {
        let plan = plan_frames(stream, flags & 2 == 2);
        let wire: Vec<u8> = plan.iter().flat_map(|p| p.wire.iter().copied()).collect();
        let expected: Vec<Frame> = plan
            .iter()
            .map(|p| {
                let keep = p.content.len().min(max_frame);
                Frame {
                    data: p.content[..keep].to_vec().into(),
                    truncated: p.content.len() > keep,
                }
            })
            .collect();
        (wire, Some(expected))
    } else {
        (stream.to_vec(), None)
    };
    let whole = frames_of(max_frame, &[&stream]);
    let pieces = random_pieces(&stream, &mut rng);
    let split = frames_of(max_frame, &pieces);
    assert_eq!(
        whole,
        split,
        "frames depend on how the stream was split ({} pieces)",
        pieces.len()
    );
    if let Some(expected) = expected {
        assert_eq!(whole, expected, "structured stream framed differently");
    }
    let mut at = 0;
    for f in &whole {
        assert!(!f.data.is_empty(), "empty frame");
        assert!(f.data.len() <= max_frame, "frame over max_frame");
        let found = find(&stream[at..], &f.data)
            .unwrap_or_else(|| panic!("frame {:?} is not in the stream after byte {at}", f.data));
        at += found + f.data.len();
    }
    // Each frame decodes to one record (the `syslog_decode` target covers decoding in depth: here
    // the first frames and the cut ones, whose last character may be a broken UTF-8 sequence).
    let settings = syslog_settings(flags >> 2);
    let stats = Stats::default();
    let decoded: Vec<&Frame> = whole
        .iter()
        .enumerate()
        .filter(|(i, f)| *i < 2 || f.truncated)
        .map(|(_, f)| f)
        .take(8)
        .collect();
    for f in &decoded {
        let r = decode(&f.data, peer(flags), &settings, &stats);
        check_syslog_record(r, &f.data, &settings);
    }
    assert!(stats.parse_failures.get() <= decoded.len() as u64);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn peer(flags: u8) -> IpAddr {
    if flags & 0x20 != 0 {
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()
    } else {
        "203.0.113.255".parse().unwrap()
    }
}

fn syslog_settings(flags: u8) -> SyslogSettings {
    let template = [
        "{app}",
        "{host}/{app}",
        "{facility}.{msgid}",
        "x{host}{app}{msgid}y",
    ][(flags >> 1) as usize & 3];
    let tz = [
        "UTC",
        "Europe/Vienna",
        "America/St_Johns",
        "Pacific/Kiritimati",
    ][(flags >> 3) as usize & 3];
    let config = SyslogConfig {
        logger_name: LoggerTemplate::parse(template).unwrap(),
        source_time_zone: tz.parse().unwrap(),
        ..SyslogConfig::default()
    };
    SyslogSettings::new(&config, flags & 1 == 0)
}

/// Target `syslog_decode`: one message is one record; a parse failure is counted exactly when the
/// message was stored raw; the record keeps the record invariants and its size bound.
pub fn syslog_decode(data: &[u8]) {
    let (flags, msg) = split_flags(data);
    let settings = syslog_settings(flags);
    let stats = Stats::default();
    let r = decode(msg, peer(flags), &settings, &stats);
    let text = String::from_utf8_lossy(msg);
    let parsed = parse::parse(&text, Utc::now(), settings.config.source_time_zone);
    let raw = parsed.format == parse::Format::Raw;
    assert_eq!(
        stats.parse_failures.get(),
        raw as u64,
        "parse failure counted iff stored raw"
    );
    if raw {
        let kept = text.strip_suffix('\n').unwrap_or(&text);
        let kept = kept.strip_suffix('\r').unwrap_or(kept);
        assert!(r.message.starts_with(kept), "a raw line is kept whole");
    }
    if let Some(t) = parsed.timestamp {
        // A sender's timestamp is kept when storable, else the receive time stands in.
        if (1..=9999).contains(&t.year()) {
            assert_eq!(r.timestamp, t);
        }
    }
    check_syslog_record(r, msg, &settings);
}

/// The size bound of a syslog record: the text (after U+FFFD replacement) with every field
/// escaped at most doubled, plus the fixed part of the context line.
fn check_syslog_record(mut r: Record, input: &[u8], settings: &SyslogSettings) {
    let text_len = String::from_utf8_lossy(input).len();
    let bound = 2 * text_len + CONTEXT_OVERHEAD;
    assert!(
        r.message.len() <= bound,
        "message of {} bytes from {} input bytes (bound {bound})",
        r.message.len(),
        input.len()
    );
    if !settings.mapping.context {
        assert!(r.message.len() <= text_len, "no context: no growth");
    }
    r.sanitize();
    check_record(&r, input.len());
}

/// What every record that reaches the queue keeps, whatever came in: storable timestamp, no NUL,
/// short columns within their `max_length`, and a message that preview + chunks rebuild.
fn check_record(r: &Record, seed: usize) {
    assert!(
        (1..=9999).contains(&r.timestamp.year()),
        "timestamp {} out of years 1-9999",
        r.timestamp
    );
    for (name, field, max) in [
        ("logger_name", &r.logger_name, record::LOGGER_NAME_MAX),
        ("module", &r.module, record::MODULE_MAX),
        ("pathname", &r.pathname, record::PATHNAME_MAX),
    ] {
        assert!(field.chars().count() <= max, "{name} over {max} characters");
        assert!(!field.contains('\0'), "NUL in {name}");
    }
    assert!(!r.message.contains('\0'), "NUL in message");
    assert!(r.line_number >= 0);
    assert!(r.weight() >= record::MIN_WEIGHT + r.message.len());
    // The configured defaults, and small sizes so that short inputs are chunked too.
    check_split(&r.message, 16384, 262144);
    check_split(&r.message, 1 + seed % 61, 1 + seed % 13);
    check_split(&r.message, 1, 1);
}

/// `split_message`: the preview is the first `preview_len` characters, the chunks rebuild the
/// whole message from character 0, each but the last holding exactly `chunk_len` characters.
pub fn check_split(msg: &str, preview_len: usize, chunk_len: usize) {
    let s = split_message(msg, preview_len, chunk_len);
    let chars = msg.chars().count();
    assert_eq!(s.size, chars, "message_size");
    assert!(msg.starts_with(s.preview));
    if chars <= preview_len {
        assert!(
            !s.chunked(),
            "{chars} characters fit a preview of {preview_len}"
        );
        assert_eq!(s.preview, msg);
        return;
    }
    assert!(s.chunked());
    assert_eq!(s.preview.chars().count(), preview_len);
    assert_eq!(s.chunks.concat(), msg, "chunks rebuild the message");
    let (last, full) = s.chunks.split_last().unwrap();
    assert!(full.iter().all(|c| c.chars().count() == chunk_len));
    assert!((1..=chunk_len).contains(&last.chars().count()));
}

/// The context line limits a flags byte picks: bit 0 context off, bit 2 tiny limits (so that
/// short inputs are cut too), else the configured defaults.
fn context_limits(flags: u8) -> Option<ContextLimits> {
    let d = OtlpConfig::default();
    match (flags & 1, flags & 4) {
        (1, _) => None,
        (_, 0) => Some(ContextLimits {
            value: d.max_attribute_bytes,
            total: d.max_context_bytes,
        }),
        _ => Some(ContextLimits {
            value: 1 + (flags >> 3) as usize,
            total: 8 + 4 * (flags >> 3) as usize,
        }),
    }
}

/// Target `otlp_protobuf`: decoding (after gunzip, which never inflates past its limit) either
/// fails as invalid or gives a request whose records keep the OTLP invariants; the cost walk that
/// runs before decoding counts exactly the records decoding finds, and calls malformed only what
/// decoding refuses too (or what uses the deprecated group wire types, which it refuses on purpose).
pub fn otlp_protobuf(data: &[u8]) {
    let (flags, rest) = split_flags(data);
    let body = if flags & 2 != 0 {
        let [limit, body @ ..] = rest else { return };
        let limit = (*limit as usize + 1) * 64;
        match otlp::gunzip(body, limit) {
            Ok(out) => {
                assert!(out.len() <= limit, "gunzip inflated past its limit");
                out
            }
            Err(ExportError::TooLarge(l)) => return assert_eq!(l, limit),
            Err(ExportError::Invalid(m)) => return assert!(!m.is_empty()),
            Err(e) => panic!("gunzip answered {e:?}"),
        }
    } else {
        rest.to_vec()
    };
    let walked = cost::protobuf(&body);
    if let Ok(req) = ExportLogsServiceRequest::decode(&body[..]) {
        let c = match walked {
            Ok(c) => c,
            // The walk refuses the deprecated group wire types (3, 4), which prost skips in
            // unknown fields: a request using them is refused as malformed, by design.
            Err(e) if e.to_string().ends_with("unsupported wire type") => return,
            Err(e) => panic!("the cost walk refuses what decodes: {e}"),
        };
        assert_eq!(
            c.records,
            count_records(&req),
            "records counted before decoding"
        );
        check_request(&req, context_limits(flags));
    }
}

fn count_records(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// Target `otlp_json`: a JSON body maps exactly as its protobuf encoding does (HTTP/JSON and
/// gRPC agree), and keeps the OTLP invariants.
pub fn otlp_json(data: &[u8]) {
    let (flags, body) = split_flags(data);
    match otlp::decode_json(body) {
        Ok(req) => {
            let limits = context_limits(flags);
            let received = Utc.timestamp_opt(1_764_244_800, 0).unwrap();
            let wire = req.encode_to_vec();
            let again =
                ExportLogsServiceRequest::decode(&wire[..]).expect("our own encoding decodes");
            assert_eq!(
                otlp::map::records(&req, received, limits),
                otlp::map::records(&again, received, limits),
                "JSON and protobuf of one request map differently"
            );
            let walked = cost::protobuf(&wire).expect("the cost walk takes our own encoding");
            assert_eq!(walked.records, count_records(&req));
            check_request(&req, limits);
        }
        Err(ExportError::Invalid(m)) => assert!(!m.is_empty()),
        Err(e) => panic!("decode_json answered {e:?}"),
    }
}

/// One record per log record, in order; each record's message bounded by the encoded size of its
/// own log record and its resource (values escaped at most 8-fold: JSON `\u00XX` of a control
/// character, quoted again in the context line), and, whatever the resource, by its own log
/// record plus the context line's cap (`[otlp] max_context_bytes` and the cut mark); and keeping
/// the record invariants.
fn check_request(req: &ExportLogsServiceRequest, limits: Option<ContextLimits>) {
    let received: DateTime<Utc> = Utc.timestamp_opt(1_764_244_800, 0).unwrap();
    let records = otlp::map::records(req, received, limits);
    let mut bounds = Vec::new();
    for rl in &req.resource_logs {
        let resource = rl.resource.as_ref().map_or(0, |r| r.encoded_len());
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                let own = 8 * lr.encoded_len() + CONTEXT_OVERHEAD;
                let bound = match limits {
                    None => own,
                    Some(l) => (own + 8 * resource).min(own + l.total + CUT_MARK.len() + 1),
                };
                bounds.push(bound);
            }
        }
    }
    assert_eq!(records.len(), bounds.len(), "one record per log record");
    for (mut r, bound) in records.into_iter().zip(bounds) {
        assert!(
            r.message.len() <= bound,
            "message of {} bytes over its bound {bound}",
            r.message.len()
        );
        r.sanitize();
        check_record(&r, bound);
    }
}

/// Target `config`: any text either loads or is refused with errors that each name a key and a
/// reason; a config that loads keeps every checked range, and every duration is usable as a
/// deadline and doubles without overflow (the retry backoff doubles).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::from_toml_str(&text) {
        Ok(c) => {
            let now = Instant::now();
            for (key, d) in [
                ("syslog.frame_timeout", c.syslog.frame_timeout),
                ("otlp.queue_wait", c.otlp.queue_wait),
                ("otlp.header_timeout", c.otlp.header_timeout),
                ("otlp.body_timeout", c.otlp.body_timeout),
                ("otlp.keepalive", c.otlp.keepalive),
                ("batch.max_delay", c.batch.max_delay),
                ("batch.retry_initial", c.batch.retry_initial),
                ("batch.retry_max", c.batch.retry_max),
                ("service.shutdown_timeout", c.service.shutdown_timeout),
                ("retention.interval", c.retention.interval),
            ] {
                assert!(
                    now.checked_add(d).is_some() && d.checked_mul(2).is_some(),
                    "{key} = {d:?} overflows a deadline"
                );
            }
            assert!(
                (480..=256 << 20).contains(&c.syslog.max_frame),
                "max_frame out of range"
            );
            assert!(c.batch.max_records > 0 && c.batch.writers > 0 && c.batch.queue_bytes > 0);
            assert!(c.storage.preview_length > 0 && c.storage.chunk_size > 0);
            // What loads once loads again the same (the same file validates and runs).
            let again = Config::from_toml_str(&text).expect("loads twice");
            assert_eq!(again, c);
        }
        Err(ConfigError::Keys { errors, .. }) => {
            assert!(!errors.is_empty(), "refused without an error");
            for e in errors {
                assert!(!e.key.is_empty() && !e.reason.is_empty(), "{e:?}");
            }
        }
        Err(ConfigError::Syntax { message, .. }) => assert!(!message.is_empty()),
        Err(e) => panic!("from_toml_str answered {e}"),
    }
}
