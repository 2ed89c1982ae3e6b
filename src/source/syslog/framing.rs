//! Stream framing for syslog over TCP/TLS (RFC 6587): octet counting and newline (or NUL) delimited
//! frames, detected per frame, with a maximum frame size. A longer frame is cut and still delivered;
//! the rest of it is skipped so the connection's later frames stay intact.

use bytes::{Buf, Bytes, BytesMut};

/// One frame taken from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Bytes,
    /// The sender's frame was longer than `max_frame` and was cut.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// Rest of an oversized octet-counted frame.
    Bytes(usize),
    /// Rest of an oversized delimited frame.
    ToDelimiter,
}

/// Incremental framer: feed bytes into [`Framer::buffer`], then take frames with [`Framer::next_frame`].
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max_frame: usize,
    skip: Skip,
    /// Bytes at the start of `buf` already searched for a delimiter (a long line arriving in small
    /// pieces is then scanned once, not once per piece).
    scanned: usize,
    /// Frame ends passed so far (complete frames, and ends of skipped oversized ones).
    boundaries: u64,
}

fn is_delimiter(b: u8) -> bool {
    b == b'\n' || b == 0
}

/// The first delimiter in `bytes`. `memchr2` compares 32 bytes at a time: the byte-by-byte scan it
/// replaced was 5 % of the collector's CPU on syslog TCP (docs/benchmarks.md).
fn find_delimiter(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', 0, bytes)
}

impl Framer {
    /// A framer that cuts frames at `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Framer {
            buf: BytesMut::new(),
            max_frame,
            skip: Skip::None,
            scanned: 0,
            boundaries: 0,
        }
    }

    /// Where the reader appends received bytes.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next complete frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let frame = self.next_frame_inner();
        if frame.is_some() {
            self.scanned = 0;
            self.boundaries += 1;
        }
        frame
    }

    /// True while a frame has begun and not ended (bytes held, or the rest of a cut frame still to
    /// skip): the time a sender may take for it is limited, idle time between frames is not.
    pub fn in_frame(&self) -> bool {
        !self.buf.is_empty() || self.skip != Skip::None
    }

    /// How many frame ends were passed so far; a change means the unfinished frame is a new one.
    pub fn boundaries(&self) -> u64 {
        self.boundaries
    }

    /// Memory the unfinished frame holds.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives memory back once nothing is held, so an idle connection costs almost nothing.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
            self.scanned = 0;
        }
    }

    /// Ends the unfinished frame now (a sender too slow, or too much held): what arrived of it, as
    /// a cut frame. Nothing when the bytes of a cut frame were being skipped (that frame was stored).
    pub fn cut(&mut self) -> Option<Frame> {
        let skipping = self.skip != Skip::None;
        self.skip = Skip::None;
        self.scanned = 0;
        let data = if skipping {
            None
        } else {
            self.unfinished().map(|(data, _)| data)
        };
        self.buf.clear();
        self.shrink();
        data.map(|data| Frame {
            data,
            truncated: true,
        })
    }

    /// The bytes of the unfinished frame in the buffer, without an octet-count header (a header
    /// alone carries no message) and within `max_frame`, and whether the sender's frame was longer
    /// or not finished. Found by the `framing` fuzz target: the header and the bytes up to
    /// `max_frame` came out as one frame, longer than `max_frame`.
    fn unfinished(&mut self) -> Option<(Bytes, bool)> {
        if self.buf.is_empty() {
            return None;
        }
        let (mut data, mut cut) = match self.octet_count_header() {
            Header::Count { header_len, .. } => {
                self.buf.advance(header_len);
                (self.buf.split().freeze(), true)
            }
            _ => (trim_cr(self.buf.split().freeze()), false),
        };
        if data.len() > self.max_frame {
            data.truncate(self.max_frame);
            cut = true;
        }
        (!data.is_empty()).then_some((data, cut))
    }

    fn next_frame_inner(&mut self) -> Option<Frame> {
        if self.skip != Skip::None {
            self.scanned = 0;
        }
        match self.skip {
            Skip::Bytes(n) => {
                let k = n.min(self.buf.len());
                self.buf.advance(k);
                if k < n {
                    self.skip = Skip::Bytes(n - k);
                    return None;
                }
                self.skip = Skip::None;
                self.boundaries += 1;
            }
            Skip::ToDelimiter => match find_delimiter(&self.buf) {
                Some(p) => {
                    self.buf.advance(p + 1);
                    self.skip = Skip::None;
                    self.boundaries += 1;
                }
                None => {
                    self.buf.clear();
                    return None;
                }
            },
            Skip::None => {}
        }
        // Blank lines and stray delimiters between frames carry nothing.
        let lead = self
            .buf
            .iter()
            .take_while(|&&b| is_delimiter(b) || b == b'\r')
            .count();
        if lead > 0 {
            self.buf.advance(lead);
            self.scanned = 0;
        }
        if self.buf.is_empty() {
            return None;
        }
        match self.octet_count_header() {
            Header::NeedMore => None,
            Header::Count { header_len, len } => self.take_counted(header_len, len),
            Header::NotCounted => self.take_delimited(),
        }
    }

    /// What is left when the stream ends (a last line without delimiter), as one frame.
    pub fn finish(&mut self) -> Option<Frame> {
        if self.skip != Skip::None {
            self.buf.clear();
            return None;
        }
        self.unfinished()
            .map(|(data, truncated)| Frame { data, truncated })
    }

    /// `LEN SP <` at the frame start: octet counting (the `<` of the PRI confirms it).
    fn octet_count_header(&self) -> Header {
        let b = &self.buf;
        if !(b'1'..=b'9').contains(&b[0]) {
            return Header::NotCounted;
        }
        let digits = b.iter().take(11).take_while(|c| c.is_ascii_digit()).count();
        if digits > 10 {
            return Header::NotCounted;
        }
        match (b.get(digits), b.get(digits + 1)) {
            (None, _) | (Some(b' '), None) => Header::NeedMore,
            (Some(b' '), Some(b'<')) => {
                let len = std::str::from_utf8(&b[..digits])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok());
                match len {
                    Some(len) => Header::Count {
                        header_len: digits + 1,
                        len,
                    },
                    None => Header::NotCounted,
                }
            }
            _ => Header::NotCounted,
        }
    }

    fn take_counted(&mut self, header_len: usize, len: usize) -> Option<Frame> {
        let keep = len.min(self.max_frame);
        if self.buf.len() < header_len + keep {
            return None;
        }
        self.buf.advance(header_len);
        let data = self.buf.split_to(keep).freeze();
        if len > keep {
            self.skip = Skip::Bytes(len - keep);
        }
        Some(Frame {
            data,
            truncated: len > keep,
        })
    }

    fn take_delimited(&mut self) -> Option<Frame> {
        let window = self.buf.len().min(self.max_frame + 1);
        let from = self.scanned.min(window);
        let found = find_delimiter(&self.buf[from..window]).map(|p| p + from);
        if found.is_none() {
            self.scanned = window;
        }
        match found {
            Some(p) if p <= self.max_frame => {
                let data = trim_cr(self.buf.split_to(p).freeze());
                self.buf.advance(1);
                Some(Frame {
                    data,
                    truncated: false,
                })
            }
            _ if self.buf.len() > self.max_frame => {
                let data = self.buf.split_to(self.max_frame).freeze();
                self.skip = Skip::ToDelimiter;
                Some(Frame {
                    data,
                    truncated: true,
                })
            }
            _ => None,
        }
    }
}

enum Header {
    NeedMore,
    NotCounted,
    Count { header_len: usize, len: usize },
}

fn trim_cr(mut data: Bytes) -> Bytes {
    if data.last() == Some(&b'\r') {
        data.truncate(data.len() - 1);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.buffer().extend_from_slice(c);
            while let Some(fr) = f.next_frame() {
                out.push((String::from_utf8_lossy(&fr.data).into_owned(), fr.truncated));
            }
        }
        if let Some(fr) = f.finish() {
            out.push((String::from_utf8_lossy(&fr.data).into_owned(), fr.truncated));
        }
        out
    }

    fn texts(v: Vec<(String, bool)>) -> Vec<String> {
        v.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn newline_and_nul_delimited() {
        let got = texts(frames(
            100,
            &[b"<13>one\n<13>tw", b"o\r\n\n<14>three\0<14>four"],
        ));
        assert_eq!(got, ["<13>one", "<13>two", "<14>three", "<14>four"]);
    }

    #[test]
    fn octet_counted_split_across_reads_and_mixed() {
        let got = texts(frames(
            100,
            &[b"9 <13>hello", b"13 <13>1 - - - -", b"5 <1>ab<13>plain\n"],
        ));
        assert_eq!(got, ["<13>hello", "<13>1 - - - -", "<1>ab", "<13>plain"]);
    }

    #[test]
    fn counted_frame_keeps_embedded_newlines() {
        let got = texts(frames(100, &[b"10 <13>a\nb\nc\n7 <13>xyz"]));
        assert_eq!(got, ["<13>a\nb\nc\n", "<13>xyz"]);
    }

    #[test]
    fn oversized_counted_frame_is_cut_and_next_frame_survives() {
        let mut input = b"30 <13>".to_vec();
        input.extend(std::iter::repeat_n(b'x', 26));
        input.extend(b"8 <13>next");
        let got = frames(10, &[&input[..15], &input[15..]]);
        assert_eq!(
            got,
            [("<13>xxxxxx".to_string(), true), ("<13>next".into(), false)]
        );
    }

    #[test]
    fn oversized_line_is_cut_and_rest_skipped() {
        let mut input = b"<13>".to_vec();
        input.extend(std::iter::repeat_n(b'y', 50));
        input.extend(b"\n<13>after\n");
        let got = frames(16, &[&input]);
        assert_eq!(
            got,
            [
                ("<13>yyyyyyyyyyyy".to_string(), true),
                ("<13>after".into(), false)
            ]
        );
    }

    #[test]
    fn a_line_arriving_byte_by_byte_is_one_frame() {
        let line = format!("<13>{}\n<13>next\n", "z".repeat(300));
        let pieces: Vec<&[u8]> = line.as_bytes().chunks(1).collect();
        let got = texts(frames(1000, &pieces));
        assert_eq!(
            got,
            [format!("<13>{}", "z".repeat(300)), "<13>next".to_string()]
        );
    }

    #[test]
    fn an_unfinished_frame_is_cut_on_demand_and_memory_given_back() {
        let mut f = Framer::new(1000);
        assert!(!f.in_frame());
        f.buffer().extend_from_slice(b"<13>done\n<13>half");
        assert_eq!(f.next_frame().unwrap().data.as_ref(), b"<13>done");
        assert_eq!(f.boundaries(), 1);
        assert!(f.next_frame().is_none());
        assert!(f.in_frame());
        assert!(f.held() > 0);
        let cut = f.cut().unwrap();
        assert_eq!((cut.data.as_ref(), cut.truncated), (&b"<13>half"[..], true));
        assert!(!f.in_frame());
        assert_eq!(f.held(), 0);
        // While the rest of an oversized frame is skipped, the frame is still unfinished.
        let mut f = Framer::new(16);
        f.buffer().extend_from_slice(&[b'y'; 40]);
        assert!(f.next_frame().unwrap().truncated);
        assert!(f.next_frame().is_none());
        assert!(f.in_frame());
        assert!(f.cut().is_none(), "the cut part was stored already");
        assert!(!f.in_frame());
    }

    #[test]
    fn a_counted_frame_cut_by_the_end_of_the_stream_keeps_its_bytes_within_max_frame() {
        let got = frames(16, &[b"7 <13>one30 <13>abcdefghijklmnopqrstu"]);
        assert_eq!(
            got,
            [
                ("<13>one".to_string(), false),
                ("<13>abcdefghijkl".to_string(), true)
            ]
        );
        assert_eq!(frames(16, &[b"30 <13>ab"]), [("<13>ab".to_string(), true)]);
        assert_eq!(frames(2, &[b"999999"]), [("99".to_string(), true)]);
        // The same bounds when a frame timeout cuts the frame.
        let mut f = Framer::new(16);
        f.buffer().extend_from_slice(b"30 <13>abcdefgh");
        assert!(f.next_frame().is_none());
        let cut = f.cut().unwrap();
        assert_eq!(
            (cut.data.as_ref(), cut.truncated),
            (&b"<13>abcdefgh"[..], true)
        );
    }

    #[test]
    fn digits_without_pri_are_not_a_count() {
        let got = texts(frames(100, &[b"2026 was a year\n"]));
        assert_eq!(got, ["2026 was a year"]);
    }

    #[test]
    fn garbage_then_valid_frames() {
        let got = texts(frames(100, &[b"\xff\xfe\x01garbage\n9 <13>hello<13>x\n"]));
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], "<13>hello");
        assert_eq!(got[2], "<13>x");
    }
}
