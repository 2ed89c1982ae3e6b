//! MongoDB connection strings: the package's `[storage]` connection settings (database, user,
//! password, port, driver options) written over the URI's own values. The driver parses the result
//! (`ClientOptions::parse`, with SRV lookups and every option it knows); only the precedence of the
//! package's settings over the URI is done here, since the driver takes options by name only from
//! a connection string.

use std::collections::BTreeMap;

/// The package's connection settings that take precedence over the URI (`[storage]` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MongoSettings {
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub port: Option<u16>,
    /// Driver options, as URI options (`retryWrites`, `replicaSet`, `authSource`, `tls`, …).
    pub options: BTreeMap<String, String>,
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Applies the settings to a MongoDB connection string: user/password replace the URI's credentials,
/// `port` every host's port, `database` the path, `options` the same-named URI options.
/// Returns the URI and the database name.
pub fn effective_uri(url: &str, s: &MongoSettings) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a MongoDB connection string"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, p),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("the connection string names no host".into());
    }
    let userinfo = match (&s.user, &s.password, userinfo) {
        (Some(u), Some(p), _) => Some(format!("{}:{}", percent(u), percent(p))),
        (Some(u), None, _) => Some(percent(u)),
        (None, Some(p), Some(ui)) => Some(format!(
            "{}:{}",
            ui.split(':').next().unwrap_or(""),
            percent(p)
        )),
        (None, Some(_), None) => return Err("a password is set but no user".into()),
        (None, None, ui) => ui.map(str::to_string),
    };
    let hosts = match s.port {
        None => hosts.to_string(),
        Some(_) if scheme == "mongodb+srv" => {
            return Err(
                "port cannot be set with mongodb+srv:// (SRV records name the ports)".into(),
            );
        }
        Some(port) => hosts
            .split(',')
            .map(|h| format!("{}:{port}", strip_port(h)))
            .collect::<Vec<_>>()
            .join(","),
    };
    let database = s
        .database
        .clone()
        .or_else(|| (!path.is_empty()).then(|| path.to_string()))
        .ok_or_else(|| {
            "no database: put it in the URL (mongodb://host/DB) or set database".to_string()
        })?;
    let mut opts: Vec<(String, String)> = query
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in &s.options {
        opts.retain(|(ok, _)| !ok.eq_ignore_ascii_case(k));
        opts.push((k.clone(), percent(v)));
    }
    let mut uri = format!("{scheme}://");
    if let Some(u) = userinfo {
        uri.push_str(&u);
        uri.push('@');
    }
    uri.push_str(&hosts);
    uri.push('/');
    uri.push_str(&percent(&database));
    if !opts.is_empty() {
        uri.push('?');
        uri.push_str(
            &opts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    Ok((uri, database))
}

/// `host`, `host:27017`, `[::1]:27017` -> the host part.
fn strip_port(h: &str) -> &str {
    if let Some(end) = h.find(']') {
        return &h[..=end];
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => h,
    }
}
