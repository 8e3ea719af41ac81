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
