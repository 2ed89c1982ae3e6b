//! What every config section is built from, kept apart from the sections themselves so that types flow
//! one way: each module owns its section type and builds it from these pieces; [`crate::config`] only
//! puts the sections together. Holds the value types a config file spells (durations, byte sizes,
//! addresses, time zones) and [`Problems`], which ties each complaint to its dotted key.

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, de};
use std::net::SocketAddr;
use std::time::Duration;

/// Bounds for [`Problems::duration_range`], so that a check reads as one line.
pub const MILLISECOND: Duration = Duration::from_millis(1);
/// See [`MILLISECOND`].
pub const TENTH_SECOND: Duration = Duration::from_millis(100);
/// See [`MILLISECOND`].
pub const SECOND: Duration = Duration::from_secs(1);
/// See [`MILLISECOND`].
pub const MINUTE: Duration = Duration::from_secs(60);
/// See [`MILLISECOND`].
pub const HOUR: Duration = Duration::from_secs(3600);
/// See [`MILLISECOND`].
pub const DAY: Duration = Duration::from_secs(86400);

/// One problem in a config file, tied to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted key, such as `batch.max_records`.
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Collects the problems of one section, each with its dotted key, so `validate` can list them all.
#[derive(Debug)]
pub struct Problems<'a> {
    section: &'static str,
    out: &'a mut Vec<KeyError>,
}

impl<'a> Problems<'a> {
    /// Problems of `section` go to `out`.
    pub fn new(section: &'static str, out: &'a mut Vec<KeyError>) -> Self {
        Problems { section, out }
    }

    /// Records a problem with `key` of this section.
    pub fn key(&mut self, key: &str, reason: impl Into<String>) {
        let key = if key.is_empty() {
            self.section.to_string()
        } else {
            format!("{}.{key}", self.section)
        };
        self.out.push(KeyError {
            key,
            reason: reason.into(),
        });
    }

    /// Complains unless `min <= value <= max`.
    pub fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.key(
                key,
                format!("must be between {min} and {max}, found {value}"),
            );
        }
    }

    /// Complains unless `min <= value <= max`, naming the bounds as durations.
    pub fn duration_range(&mut self, key: &str, value: Duration, min: Duration, max: Duration) {
        if value < min || value > max {
            self.key(
                key,
                format!(
                    "must be between {} and {}, found {}",
                    show_duration(min),
                    show_duration(max),
                    show_duration(value)
                ),
            );
        }
    }
}

/// A config section: a serde type with defaults for every key, owned by the module it configures.
pub trait Section: de::DeserializeOwned + Default {
    /// The table name, such as `syslog`.
    const NAME: &'static str;

    /// Checks ranges and keys that depend on each other; called after every key was read.
    fn check(&self, problems: &mut Problems<'_>);
}

/// The longest duration any key takes: ten years (so no `Instant + Duration` can overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86400);

/// A duration as humans write it.
pub fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// An integer or a string, whichever a key was given; anything else is refused naming what it was.
enum Spelled {
    Int(i64),
    Text(String),
}

fn spelled<'de, D: Deserializer<'de>>(d: D, expecting: &'static str) -> Result<Spelled, D::Error> {
    struct V(&'static str);
    impl de::Visitor<'_> for V {
        type Value = Spelled;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Spelled, E> {
            Ok(Spelled::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Spelled, E> {
            Ok(Spelled::Int(v.min(i64::MAX as u64) as i64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Spelled, E> {
            Ok(Spelled::Text(v.to_string()))
        }
    }
    d.deserialize_any(V(expecting))
}

/// Durations: a string such as `"200ms"`, `"30s"`, `"15m"`, `"1h"`, `"2d"`, or an integer of
/// milliseconds (what the older `*_ms` keys hold).
pub mod duration {
    use super::*;

    /// Reads either spelling; anything over [`MAX_DURATION`] is refused here.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let value = match spelled(
            d,
            "a duration such as \"30s\", \"500ms\" or \"1h\" (or an integer of milliseconds)",
        )? {
            Spelled::Int(n) if n < 0 => {
                return Err(de::Error::custom(format!("must not be negative, found {n}")));
            }
            Spelled::Int(n) => Duration::from_millis(n as u64),
            Spelled::Text(s) => humantime::parse_duration(s.trim()).map_err(|e| {
                de::Error::custom(format!(
                    "{s:?} is not a duration ({e}; e.g. \"30s\", \"500ms\", \"15m\", \"1h\", \"1d\")"
                ))
            })?,
        };
        if value > MAX_DURATION {
            return Err(de::Error::custom(format!(
                "{} is too long (at most 10 years)",
                show_duration(value)
            )));
        }
        Ok(value)
    }

    /// Writes the human form.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&show_duration(*d))
    }
}

/// Byte sizes: an integer of bytes, or a string such as `"64KiB"`, `"1MiB"`, `"2GiB"`.
pub mod bytes {
    use super::*;

    /// Parses `N`, `NKiB`, `NMiB`, `NGiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all binary).
    pub fn parse(s: &str) -> Result<usize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: usize = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. 65536, \"64KiB\", \"1MiB\")"))?;
        let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => {
                return Err(format!(
                    "{s:?} is not a size (e.g. 65536, \"64KiB\", \"1MiB\")"
                ));
            }
        };
        n.checked_mul(mult)
            .ok_or_else(|| format!("{s:?} is too large"))
    }

    /// Reads an integer or a string with a unit.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        match spelled(d, "an integer")? {
            Spelled::Int(n) if n < 0 => Err(de::Error::custom(format!(
                "must not be negative, found {n}"
            ))),
            Spelled::Int(n) => Ok(n as usize),
            Spelled::Text(s) => parse(&s).map_err(de::Error::custom),
        }
    }
}

/// IANA time zone names, such as `"UTC"` or `"Europe/Vienna"`.
pub mod time_zone {
    use super::*;

    /// Reads a zone name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Tz>().map_err(|_| {
            de::Error::custom(format!(
                "unknown time zone {s:?} (use an IANA name such as \"UTC\" or \"Europe/Vienna\")"
            ))
        })
    }
}

fn parse_addr<E: de::Error>(s: &str, hint: &str) -> Result<SocketAddr, E> {
    s.parse::<SocketAddr>().map_err(|_| {
        E::custom(format!(
            "{s:?} is not an address of the form IP:PORT (e.g. \"127.0.0.1:5514\" or \"[::]:514\"){hint}"
        ))
    })
}

/// Listener lists: one address as a string, or an array of them.
pub mod addresses {
    use super::*;

    /// Reads `"IP:PORT"` or `["IP:PORT", ...]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        let list = d.deserialize_any(V)?;
        list.iter().map(|s| parse_addr(s, "")).collect()
    }
}

/// One optional listener: `"IP:PORT"`, or `""` to turn it off.
pub mod optional_address {
    use super::*;

    /// Reads the address or `""`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        match String::deserialize(d)?.as_str() {
            "" => Ok(None),
            s => parse_addr(s, " or \"\" to turn it off").map(Some),
        }
    }
}

/// Duplicate entries in a listener list.
pub fn duplicates(list: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut seen = std::collections::HashSet::new();
    list.iter().filter(|a| !seen.insert(**a)).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(with = "duration")]
        d: Duration,
    }

    fn d(text: &str) -> Result<Duration, String> {
        toml::from_str::<T>(&format!("d = {text}"))
            .map(|t| t.d)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_in_both_spellings() {
        assert_eq!(d("\"200ms\"").unwrap(), Duration::from_millis(200));
        assert_eq!(d("\"1h\"").unwrap(), Duration::from_secs(3600));
        assert_eq!(d("\"2d\"").unwrap(), Duration::from_secs(2 * 86400));
        assert_eq!(d("50").unwrap(), Duration::from_millis(50));
        assert!(d("-5").unwrap_err().contains("negative"));
        assert!(d("\"99999999999999d\"").is_err());
        assert!(d("\"soon\"").unwrap_err().contains("not a duration"));
        assert!(d("9223372036854775807").unwrap_err().contains("too long"));
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes::parse("1MiB").unwrap(), 1 << 20);
        assert_eq!(bytes::parse("64k").unwrap(), 64 << 10);
        assert_eq!(bytes::parse("123").unwrap(), 123);
        assert!(bytes::parse("12 parsecs").is_err());
        assert!(bytes::parse("99999999999999999999G").is_err());
    }
}
