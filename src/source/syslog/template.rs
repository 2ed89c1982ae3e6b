//! The `logger_name` template (`{app}`, `{host}/{app}`, …): how a syslog message picks the panel
//! logger it is counted under.

use serde::{Deserialize, Deserializer, de};

/// One placeholder-or-text piece of the logger name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    App,
    Host,
    Facility,
    MsgId,
}

/// `logger_name` template such as `{app}` or `{host}/{app}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerTemplate(pub Vec<TemplatePart>);

impl Default for LoggerTemplate {
    fn default() -> Self {
        LoggerTemplate(vec![TemplatePart::App])
    }
}

impl LoggerTemplate {
    /// Parses `{app}`, `{host}`, `{facility}`, `{msgid}` and literal text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?
                + open;
            parts.push(match &rest[open + 1..close] {
                "app" => TemplatePart::App,
                "host" => TemplatePart::Host,
                "facility" => TemplatePart::Facility,
                "msgid" => TemplatePart::MsgId,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} (use {{app}}, {{host}}, {{facility}} or {{msgid}})"
                    ));
                }
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("empty template".into());
        }
        Ok(LoggerTemplate(parts))
    }
}

impl<'de> Deserialize<'de> for LoggerTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LoggerTemplate::parse(&s).map_err(de::Error::custom)
    }
}
