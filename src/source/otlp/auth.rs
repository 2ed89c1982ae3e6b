//! OTLP bearer tokens (`[otlp] bearer_token_file`): one token per line, blank lines and `#` comments
//! ignored. A request must carry `Authorization: Bearer TOKEN` with one of them; the comparison runs
//! in constant time over every token, and no token is ever logged or shown (not even by `Debug`).

use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The accepted tokens.
#[derive(Clone)]
pub struct Tokens(Vec<Vec<u8>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} hidden)", self.0.len())
    }
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("otlp.bearer_token_file: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("otlp.bearer_token_file: {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Tokens {
    /// Reads the token file.
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Tokens::parse(&text).map_err(|reason| TokenError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the file's text (the error says which line, never what it holds).
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            // A token travels in an HTTP header and a gRPC metadata value: visible ASCII only.
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "line {}: a token may hold visible ASCII characters only (no spaces)",
                    i + 1
                ));
            }
            tokens.push(t.as_bytes().to_vec());
        }
        if tokens.is_empty() {
            return Err("no token in the file (only blank lines and comments)".into());
        }
        Ok(Tokens(tokens))
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = bearer(value) else {
            return false;
        };
        // Compare with every token, without stopping at a match.
        let mut ok = subtle::Choice::from(0);
        for t in &self.0 {
            ok |= t.as_slice().ct_eq(presented);
        }
        bool::from(ok)
    }
}

/// The token of `Bearer TOKEN` (scheme case-insensitive, as RFC 7235 says).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_format_and_matching() {
        let t = Tokens::parse("# ops\n\n  tok-one  \ntok2\n").unwrap();
        assert!(t.accepts(Some(b"Bearer tok-one")));
        assert!(t.accepts(Some(b"bearer   tok2 ")));
        assert!(!t.accepts(Some(b"Bearer tok")));
        assert!(!t.accepts(Some(b"Bearer tok-one2")));
        assert!(!t.accepts(Some(b"Basic tok-one")));
        assert!(!t.accepts(Some(b"Bearertok-one")));
        assert!(!t.accepts(Some(b"Bearer ")));
        assert!(!t.accepts(None));
        assert_eq!(format!("{t:?}"), "Tokens(2 hidden)");
        assert!(Tokens::parse("# only a comment\n\n").is_err());
        let e = Tokens::parse("good\nsecret with space\n").unwrap_err();
        assert!(e.contains("line 2") && !e.contains("secret"), "{e}");
    }
}
