//! The package's LOG_LEVEL / IGNORED_LOGGER_NAMES / IGNORED_LOGGER_PREFIXES /
//! IGNORED_MESSAGE_SUBSTRINGS, applied to records before they take queue space.

use crate::record::{Level, Record};
use crate::settings::{Problems, Section};
use serde::Deserialize;

/// `[filter]`: the package's LOG_LEVEL, IGNORED_LOGGER_* and IGNORED_MESSAGE_SUBSTRINGS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    pub min_level: Level,
    pub ignore_loggers: Vec<String>,
    pub ignore_messages: Vec<String>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            min_level: Level::Debug,
            ignore_loggers: Vec::new(),
            ignore_messages: Vec::new(),
        }
    }
}

impl Section for FilterConfig {
    const NAME: &'static str = "filter";

    fn check(&self, p: &mut Problems<'_>) {
        for (key, list) in [
            ("ignore_loggers", &self.ignore_loggers),
            ("ignore_messages", &self.ignore_messages),
        ] {
            if list.iter().any(String::is_empty) {
                p.key(key, "an empty entry would match everything; remove it");
            }
        }
    }
}

/// Decides which records are stored.
#[derive(Debug, Clone)]
pub struct Filter {
    min_level: Level,
    names: Vec<String>,
    prefixes: Vec<String>,
    substrings: Vec<String>,
}

impl Filter {
    /// `ignore_loggers` entries ending in `.*` are prefixes (matching the name itself and its
    /// children); the others are exact names.
    pub fn new(cfg: &FilterConfig) -> Self {
        let mut names = Vec::new();
        let mut prefixes = Vec::new();
        for l in &cfg.ignore_loggers {
            match l.strip_suffix(".*") {
                Some(p) => prefixes.push(p.to_string()),
                None => names.push(l.clone()),
            }
        }
        Filter {
            min_level: cfg.min_level,
            names,
            prefixes,
            substrings: cfg.ignore_messages.clone(),
        }
    }

    /// True when the record is to be stored.
    pub fn accepts(&self, r: &Record) -> bool {
        if r.level < self.min_level {
            return false;
        }
        let name = r.logger_name.as_str();
        if self.names.iter().any(|n| n == name) {
            return false;
        }
        if self.prefixes.iter().any(|p| {
            name.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        }) {
            return false;
        }
        !self
            .substrings
            .iter()
            .any(|s| r.message.contains(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: Level, name: &str, msg: &str) -> Record {
        Record::sample(level, name, msg)
    }

    #[test]
    fn level_names_prefixes_substrings() {
        let f = Filter::new(&FilterConfig {
            min_level: Level::Info,
            ignore_loggers: vec!["django.*".into(), "noisy".into()],
            ignore_messages: vec!["healthcheck".into()],
        });
        assert!(!f.accepts(&rec(Level::Debug, "app", "x")));
        assert!(f.accepts(&rec(Level::Info, "app", "x")));
        assert!(!f.accepts(&rec(Level::Error, "django", "x")));
        assert!(!f.accepts(&rec(Level::Error, "django.request", "x")));
        assert!(f.accepts(&rec(Level::Error, "djangoish", "x")));
        assert!(!f.accepts(&rec(Level::Error, "noisy", "x")));
        assert!(f.accepts(&rec(Level::Error, "noisy.child", "x")));
        assert!(!f.accepts(&rec(Level::Error, "app", "GET /healthcheck 200")));
    }
}
