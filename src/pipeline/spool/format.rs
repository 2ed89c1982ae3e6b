//! The on-disk shape of a spool segment: a header, then records, each framed as
//! `magic (u32) | length (u32) | CRC32 of length and payload (u32) | payload`, all little-endian.
//! The magic lets a reader find the next intact record after a damaged one; the CRC tells a torn
//! or flipped record from a good one.

use crate::record::{Level, Record};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// First bytes of every segment file (name and format version).
pub const SEGMENT_HEADER: &[u8; 8] = b"LPCSPL01";
/// Marks the start of a record.
pub const RECORD_MAGIC: u32 = 0x5250_434C;
/// Magic, length and CRC.
pub const FRAME_HEADER: usize = 12;
/// A length above this is damage, not a record (OTLP and syslog limits are far below).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Why a payload could not be decoded (its CRC matched, so this is a format bug or a future version).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("spool record payload is malformed: {0}")]
pub struct Malformed(pub &'static str);

fn level_code(l: Level) -> u8 {
    match l {
        Level::Debug => 0,
        Level::Info => 1,
        Level::Warning => 2,
        Level::Error => 3,
        Level::Critical => 4,
    }
}

fn level_of(c: u8) -> Option<Level> {
    Some(match c {
        0 => Level::Debug,
        1 => Level::Info,
        2 => Level::Warning,
        3 => Level::Error,
        4 => Level::Critical,
        _ => return None,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Size of the framed record [`encode`] writes.
pub fn encoded_len(r: &Record) -> usize {
    FRAME_HEADER
        + 16
        + 8
        + 4
        + 1
        + 4
        + 16
        + r.logger_name.len()
        + r.module.len()
        + r.pathname.len()
        + r.message.len()
}

/// Appends one framed record (id and record) to `out`.
pub fn encode(id: Uuid, r: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // length and CRC, filled in below
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&r.timestamp.timestamp().to_le_bytes());
    out.extend_from_slice(&r.timestamp.timestamp_subsec_nanos().to_le_bytes());
    out.push(level_code(r.level));
    out.extend_from_slice(&r.line_number.to_le_bytes());
    put_str(out, &r.logger_name);
    put_str(out, &r.module);
    put_str(out, &r.pathname);
    put_str(out, &r.message);
    let len = (out.len() - start - FRAME_HEADER) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(len, &out[start + FRAME_HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32 over the length field and the payload.
pub fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Reads a frame header: `(length, crc)` when the magic is there and the length is plausible.
pub fn frame_header(b: &[u8; FRAME_HEADER]) -> Option<(usize, u32)> {
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if word(0) != RECORD_MAGIC {
        return None;
    }
    let len = word(4) as usize;
    (len <= MAX_PAYLOAD).then_some((len, word(8)))
}

struct Take<'a>(&'a [u8]);

impl<'a> Take<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("too short"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, Malformed> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| Malformed("text is not UTF-8"))
    }
}

/// Decodes a payload whose CRC has been checked.
pub fn decode(payload: &[u8]) -> Result<(Uuid, Record), Malformed> {
    let mut t = Take(payload);
    let id = Uuid::from_slice(t.bytes(16)?).map_err(|_| Malformed("id"))?;
    let secs = i64::from_le_bytes(t.bytes(8)?.try_into().expect("8 bytes"));
    let nanos = t.u32()?;
    let timestamp: DateTime<Utc> =
        DateTime::from_timestamp(secs, nanos).ok_or(Malformed("timestamp"))?;
    let level = level_of(t.bytes(1)?[0]).ok_or(Malformed("level"))?;
    let line_number = t.u32()? as i32;
    let record = Record {
        timestamp,
        level,
        logger_name: t.string()?,
        module: t.string()?,
        pathname: t.string()?,
        line_number,
        message: t.string()?,
    };
    if !t.0.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok((id, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_crc_catches_a_flip() {
        let r = Record {
            timestamp: "2026-11-27T10:15:00.123456789Z".parse().unwrap(),
            level: Level::Warning,
            logger_name: "app.db".into(),
            module: "m".into(),
            pathname: "/p.py".into(),
            line_number: 42,
            message: "héllo\nworld".into(),
        };
        let id = Uuid::now_v7();
        let mut out = Vec::new();
        encode(id, &r, &mut out);
        assert_eq!(out.len(), encoded_len(&r));
        let (len, crc) = frame_header(out[..FRAME_HEADER].try_into().unwrap()).unwrap();
        assert_eq!(len, out.len() - FRAME_HEADER);
        assert_eq!(checksum(len as u32, &out[FRAME_HEADER..]), crc);
        assert_eq!(decode(&out[FRAME_HEADER..]).unwrap(), (id, r));
        out[FRAME_HEADER + 20] ^= 1;
        assert_ne!(checksum(len as u32, &out[FRAME_HEADER..]), crc);
    }
}
