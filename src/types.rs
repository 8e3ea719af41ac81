//! Small shared value types (identifiers, secrets, log levels) and the one way errors are
//! rendered with their causes. No I/O.

use std::fmt;

/// A WAN's identity: its configured name (`ISP1`, `ISP2`, ...). Unique within a config; used in
/// logs (`[FAILOVER] ISP1 DOWN`), in comment tags (`uplinkd:route:ISP1-main`) and in mark names.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LinkId(String);

impl LinkId {
    /// Wraps a name that config validation has already checked (see `naming::validate_wan_name`).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkId({})", self.0)
    }
}

/// Severity of a line in the router's log: the RouterOS command word of `POST /rest/log/<level>`
/// and of `:log <level>`. One type for the alert schedule, the reconciler and the REST client.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

impl LogLevel {
    /// The RouterOS command word (`/log/<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// A secret (REST or SMTP password, webhook token). `Debug` and `Display` print `***`, so a secret
/// cannot leak through logs, `uplinkd check`, status or metrics; `expose()` is the only way in.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one call that needs it (an HTTP header, an SMTP AUTH).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Renders an error and all its `source()`s as `outer: inner: innermost`, skipping a cause whose
/// text the message already holds (many errors print their cause and also return it as source).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("preparing")]
    struct Wraps(#[source] Repeats);

    #[test]
    fn error_chains_name_each_cause_once() {
        let e = Wraps(Repeats(std::io::Error::other("disk on fire")));
        assert_eq!(error_chain(&e), "preparing: cannot read x: disk on fire");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }
}

/// One `/system/resource` reading, already turned into percentages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSample {
    pub memory_used_percent: Option<f64>,
    pub cpu_load_percent: Option<f64>,
}

impl ResourceSample {
    /// From `/system/resource` fields: `total-memory`, `free-memory` (bytes), `cpu-load` (%).
    pub fn from_system_resource(total_memory: u64, free_memory: u64, cpu_load: Option<u8>) -> Self {
        let memory_used_percent = (total_memory > 0).then(|| {
            let used = total_memory.saturating_sub(free_memory);
            used as f64 * 100.0 / total_memory as f64
        });
        Self {
            memory_used_percent,
            cpu_load_percent: cpu_load.map(f64::from),
        }
    }
}

/// The router's REST address, parsed once where the configuration is read: `http` or `https`,
/// a host, an optional port, and nothing else (no user or password, no path, query or
/// fragment; the `/rest` prefix is added by the client). Displays as `https://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestUrl {
    url: url::Url,
    /// `scheme://host[:port]`, without a trailing slash.
    base: String,
}

/// Why a text is not a [`RestUrl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestUrlError {
    #[error("not a URL")]
    NotAUrl,
    #[error("not http:// or https://")]
    Scheme,
    #[error("no host, or a user or password in the URL")]
    HostOrCredentials,
    #[error("a ?query or #fragment")]
    QueryOrFragment,
    #[error("the /rest suffix (uplinkd adds it)")]
    RestSuffix,
    #[error("a path (give only scheme, host and port)")]
    Path,
}

impl RestUrl {
    /// Parses `text` (surrounding space and a trailing `/` are ignored).
    pub fn parse(text: &str) -> Result<Self, RestUrlError> {
        let text = text.trim().trim_end_matches('/');
        let url = url::Url::parse(text).map_err(|_| RestUrlError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RestUrlError::Scheme);
        }
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(RestUrlError::HostOrCredentials);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(RestUrlError::QueryOrFragment);
        }
        let path = url.path().trim_end_matches('/');
        if path.ends_with("/rest") {
            return Err(RestUrlError::RestSuffix);
        }
        if !path.is_empty() {
            return Err(RestUrlError::Path);
        }
        let mut base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            base.push_str(&format!(":{port}"));
        }
        Ok(Self { url, base })
    }

    /// `https://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.base
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The host: a name, or an IPv4 or IPv6 address.
    pub fn host(&self) -> Option<url::Host<&str>> {
        self.url.host()
    }
}

impl std::str::FromStr for RestUrl {
    type Err = RestUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for RestUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

impl PartialEq<&str> for RestUrl {
    fn eq(&self, other: &&str) -> bool {
        self.base == *other
    }
}

#[cfg(test)]
mod rest_url_tests {
    use super::{RestUrl, RestUrlError as E};

    #[test]
    fn parses_scheme_host_and_port_only() {
        let table: &[(&str, Result<&str, E>)] = &[
            ("https://198.18.0.1", Ok("https://198.18.0.1")),
            (" https://198.18.0.1/ ", Ok("https://198.18.0.1")),
            ("https://router.lan:8443", Ok("https://router.lan:8443")),
            ("http://[::1]:80", Ok("http://[::1]")),
            ("https://198.18.0.1:443", Ok("https://198.18.0.1")),
            ("198.18.0.1", Err(E::NotAUrl)),
            ("ftp://198.18.0.1", Err(E::Scheme)),
            ("https://admin:pw@198.18.0.1", Err(E::HostOrCredentials)),
            ("https://198.18.0.1/?x=1", Err(E::QueryOrFragment)),
            ("https://198.18.0.1#top", Err(E::QueryOrFragment)),
            ("https://198.18.0.1/rest/", Err(E::RestSuffix)),
            ("https://198.18.0.1/api", Err(E::Path)),
        ];
        for (text, want) in table {
            let got = RestUrl::parse(text);
            assert_eq!(
                got.as_ref().map(RestUrl::as_str),
                want.as_ref().map(|s| *s),
                "{text:?}"
            );
        }
        assert!(RestUrl::parse("https://x").unwrap().is_https());
        assert!(!RestUrl::parse("http://x").unwrap().is_https());
    }
}

/// A backup tier: 1 is the first (the WANs that normally carry), at most [`Tier::MAX`]. A WAN
/// of a higher tier carries traffic only while no WAN of the tiers below can ([`Promotion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Tier(u8);

impl Tier {
    pub const FIRST: Tier = Tier(1);
    pub const MAX: u8 = 9;

    /// `None` outside 1..=[`Tier::MAX`].
    pub fn new(n: u8) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// When the next tier takes over from a tier (`[balance] promote_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Promotion {
    /// When no WAN of the tier is usable: every one is down or recovering. A degraded WAN still
    /// carries rather than hand its traffic to a backup.
    #[default]
    Down,
    /// Also when every usable WAN of the tier is degraded: a backup that answers well is
    /// preferred to a lower tier that answers badly.
    Degraded,
}

/// What becomes of a backup tier's connections when a lower tier is usable again
/// (`[balance] handback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handback {
    /// New connections go to the lower tier; the backup's own go on until they end (its route
    /// in its own table stays on; its PCC rules and main route go off).
    #[default]
    Drain,
    /// The backup's connections are removed after the switch, as for a failed WAN (a data cap:
    /// the LTE link goes idle at once and clients reconnect through the lower tier).
    Flush,
}
