//! PostgreSQL's binary `COPY` format for a batch's rows and chunks. Binary instead of text because
//! the server then parses no uuid, timestamp or integer text and unescapes nothing: the same rows
//! took about 10 % less server time (`scripts/copy-format.sh`, docs/benchmarks.md), and PostgreSQL
//! is what limits the rate. The layout is the documented one: a signature, flags and an empty
//! header extension; per tuple a 16-bit field count, then each field as a 32-bit length and its
//! bytes in the type's binary form; a trailer of -1.

use crate::pipeline::batch::Batch;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// `PGCOPY\n\377\r\n\0`, flags 0, header extension length 0.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Fixed bytes per row besides its text: field count, ten lengths, uuid, timestamp, three
/// integers and a bool.
const ROW_FIXED: usize = 2 + 10 * 4 + 16 + 8 + 4 + 1 + 4;

struct Tuples(Vec<u8>);

impl Tuples {
    fn with_capacity(n: usize) -> Self {
        let mut out = Vec::with_capacity(HEADER.len() + n + TRAILER.len());
        out.extend_from_slice(HEADER);
        Tuples(out)
    }

    fn fields(&mut self, n: i16) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        // A field past 1 GB is refused by PostgreSQL anyway; messages are chunked far below that.
        self.0.extend_from_slice(&(b.len() as i32).to_be_bytes());
        self.0.extend_from_slice(b);
    }

    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn uuid(&mut self, id: Uuid) {
        self.bytes(id.as_bytes());
    }

    fn int4(&mut self, v: i32) {
        self.bytes(&v.to_be_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.bytes(&[v as u8]);
    }

    fn timestamptz(&mut self, ts: DateTime<Utc>) {
        self.bytes(&pg_micros(ts).to_be_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(TRAILER);
        self.0
    }
}

/// A timestamp as PostgreSQL's binary `timestamptz`: microseconds since 2000-01-01 UTC, the
/// fraction truncated as the text form `%.6f` did.
fn pg_micros(ts: DateTime<Utc>) -> i64 {
    ts.timestamp_micros() - PG_EPOCH_MICROS
}

/// The batch's `log_panel_log` rows, in the column order of [`super::postgres`]'s `COPY_ROWS`.
pub fn encode_rows(batch: &Batch) -> Vec<u8> {
    let text: usize = batch
        .rows
        .iter()
        .map(|r| r.message.len() + r.logger_name.len() + r.module.len() + r.pathname.len() + 8)
        .sum();
    let mut t = Tuples::with_capacity(text + batch.rows.len() * ROW_FIXED);
    for r in &batch.rows {
        t.fields(10);
        t.uuid(r.id);
        t.timestamptz(r.timestamp);
        t.text(r.level.as_str());
        t.text(&r.logger_name);
        t.text(&r.message);
        t.text(&r.module);
        t.text(&r.pathname);
        t.int4(r.line_number);
        t.bool(r.message_chunked);
        t.int4(r.message_size);
    }
    t.finish()
}

/// The batch's `log_panel_log_message_chunk` rows (id, log_id, index, text).
pub fn encode_chunks(batch: &Batch) -> Vec<u8> {
    let text: usize = batch.chunks.iter().map(|c| c.text.len()).sum();
    let mut t = Tuples::with_capacity(text + batch.chunks.len() * (2 + 4 * 4 + 16 + 16 + 4));
    for c in &batch.chunks {
        t.fields(4);
        t.uuid(c.id);
        t.uuid(c.log_id);
        t.int4(c.index);
        t.text(&c.text);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::batch::{Chunk, Row};
    use crate::record::Level;

    #[test]
    fn timestamps_count_from_2000_and_truncate_to_microseconds() {
        let at = |s: &str| pg_micros(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(at("2000-01-01T00:00:00Z"), 0);
        assert_eq!(at("2000-01-01T00:00:01.0000019Z"), 1_000_001);
        assert_eq!(at("1999-12-31T23:59:59.9999999Z"), -1);
        assert_eq!(at("0001-01-01T00:00:00Z"), -63_082_281_600_000_000);
    }

    #[test]
    fn rows_and_chunks_are_laid_out_as_postgres_reads_them() {
        let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let batch = Batch {
            rows: vec![Row {
                id,
                timestamp: "2000-01-01T00:00:02Z".parse().unwrap(),
                level: Level::Warning,
                logger_name: "app".into(),
                message: "hé\tx".into(),
                module: String::new(),
                pathname: "/p".into(),
                line_number: 7,
                message_chunked: true,
                message_size: 300,
            }],
            chunks: vec![Chunk {
                id,
                log_id: id,
                index: 2,
                text: "ab".into(),
            }],
            ..Batch::default()
        };
        let mut want = HEADER.to_vec();
        want.extend([0, 10]);
        want.extend([0, 0, 0, 16]);
        want.extend(id.as_bytes());
        want.extend([0, 0, 0, 8]);
        want.extend(2_000_000i64.to_be_bytes());
        for s in ["WARNING", "app", "hé\tx", "", "/p"] {
            want.extend((s.len() as i32).to_be_bytes());
            want.extend(s.as_bytes());
        }
        want.extend([0, 0, 0, 4, 0, 0, 0, 7]);
        want.extend([0, 0, 0, 1, 1]);
        want.extend([0, 0, 0, 4, 0, 0, 1, 44]);
        want.extend([0xff, 0xff]);
        assert_eq!(encode_rows(&batch), want);

        let mut want = HEADER.to_vec();
        want.extend([0, 4]);
        for _ in 0..2 {
            want.extend([0, 0, 0, 16]);
            want.extend(id.as_bytes());
        }
        want.extend([0, 0, 0, 4, 0, 0, 0, 2]);
        want.extend([0, 0, 0, 2, b'a', b'b']);
        want.extend([0xff, 0xff]);
        assert_eq!(encode_chunks(&batch), want);
    }
}
