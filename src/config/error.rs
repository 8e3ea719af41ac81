//! Configuration errors and the key paths they name. One error per bad input; every error names
//! where the value came from (a dotted file key like `wan[2].monitors[1]`, or the `UPLINKD_*`
//! variable that set it) and what was expected. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One step of a key path. Array positions are stored 0-based and shown 1-based, so the first
/// `[[wan]]` table is `wan[1]`, like `UPLINKD_WAN1_*`, the veth `uplinkd-wan1` and the seed's ISP1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Field(String),
    Index(usize),
}

/// A dotted key path into the configuration: `rest.url`, `wan[1].monitors[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// `self.name`.
    pub fn field(&self, name: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Field(name.to_string()));
        Self(segs)
    }

    /// `self[index]`, `index` 0-based.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    pub fn from_segments(segs: Vec<Seg>) -> Self {
        Self(segs)
    }

    /// The parent path (`wan[1].monitors` for `wan[1].monitors[2]`); the root stays the root.
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Self(segs)
    }

    /// The environment variable that sets this key: `wan[2].monitors[1]` → `UPLINKD_WAN2_MONITORS`
    /// (a list is set as a whole), `rest.password` → `UPLINKD_REST_PASSWORD`.
    pub fn env_var(&self) -> String {
        let mut out = String::from("UPLINKD");
        let mut segs = self.0.iter().peekable();
        while let Some(seg) = segs.next() {
            match seg {
                Seg::Field(name) => {
                    if let Some(Seg::Index(i)) = segs.peek() {
                        // `wan[2]` → `WAN2`, `webhook[1]` → `WEBHOOK1`: arrays of tables are
                        // numbered; plain lists are set whole, so their index is dropped.
                        if super::env::is_table_array(name) {
                            out.push('_');
                            out.push_str(&env_word(name));
                            out.push_str(&(i + 1).to_string());
                            segs.next();
                            continue;
                        }
                    }
                    out.push('_');
                    out.push_str(&env_word(name));
                }
                Seg::Index(_) => {}
            }
        }
        out
    }
}

/// `pin-sha256` → `PIN_SHA256`.
pub(crate) fn env_word(key: &str) -> String {
    key.to_ascii_uppercase().replace(['-', '.'], "_")
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Seg::Index(i) => write!(f, "[{}]", i + 1)?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Which keys were set by which environment variable, so an error names what the user typed.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<KeyPath, String>);

impl Origins {
    pub fn record(&mut self, key: KeyPath, var: String) {
        self.0.insert(key, var);
    }

    /// How to name `key` in an error: `UPLINKD_WAN1_WEIGHT` when the environment set it (or the
    /// list it belongs to), else the dotted file key.
    pub fn describe(&self, key: &KeyPath) -> String {
        let mut probe = key.clone();
        loop {
            if let Some(var) = self.0.get(&probe) {
                return if &probe == key {
                    var.clone()
                } else {
                    format!("{var} ({key})")
                };
            }
            if probe.segments().is_empty() {
                return key.to_string();
            }
            // Only climb out of list items: `wan[1].monitors[2]` may come from
            // `UPLINKD_WAN1_MONITORS`, but `wan[1]` itself is never set by one variable.
            match probe.segments().last() {
                Some(Seg::Index(_)) => probe = probe.parent(),
                _ => return key.to_string(),
            }
        }
    }
}

/// Everything that can be wrong with a configuration. Each names the key (or variable, or file)
/// and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("{var}: {problem}")]
    Env { var: String, problem: String },
    #[error("{key}: unknown key; {expected}")]
    UnknownKey { key: String, expected: String },
    #[error("{key}: missing; {expected}")]
    Missing { key: String, expected: String },
    #[error("{key}: expected {expected}, got {got}")]
    Invalid {
        key: String,
        expected: String,
        got: String,
    },
    #[error("{key}: {problem}")]
    Conflict { key: String, problem: String },
    /// A value of the wrong TOML type (a number where a string belongs, a table for a list).
    #[error("{key}: {message}")]
    Type { key: String, message: String },
    #[error("{key}: cannot read the secret file {path}: {problem}")]
    SecretFile {
        key: String,
        path: PathBuf,
        problem: String,
    },
}

impl ConfigError {
    /// The key, variable or file the error is about, as shown to the user.
    pub fn key(&self) -> String {
        match self {
            ConfigError::ReadFile { path, .. } => path.display().to_string(),
            ConfigError::Syntax { origin, .. } => origin.clone(),
            ConfigError::Env { var, .. } => var.clone(),
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Conflict { key, .. }
            | ConfigError::Type { key, .. }
            | ConfigError::SecretFile { key, .. } => key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_show_one_based_and_map_to_env() {
        let k = KeyPath::root()
            .field("wan")
            .index(1)
            .field("monitors")
            .index(0);
        assert_eq!(k.to_string(), "wan[2].monitors[1]");
        assert_eq!(k.env_var(), "UPLINKD_WAN2_MONITORS");
        let k = KeyPath::root().field("rest").field("pin_sha256");
        assert_eq!(k.env_var(), "UPLINKD_REST_PIN_SHA256");
        let k = KeyPath::root().field("webhook").index(0).field("chat_id");
        assert_eq!(k.env_var(), "UPLINKD_WEBHOOK1_CHAT_ID");
    }

    #[test]
    fn origins_name_the_variable() {
        let mut o = Origins::default();
        let list = KeyPath::root().field("wan").index(0).field("monitors");
        o.record(list.clone(), "UPLINKD_WAN1_MONITORS".into());
        assert_eq!(o.describe(&list), "UPLINKD_WAN1_MONITORS");
        assert_eq!(
            o.describe(&list.index(1)),
            "UPLINKD_WAN1_MONITORS (wan[1].monitors[2])"
        );
        let other = KeyPath::root().field("wan").index(0).field("weight");
        assert_eq!(o.describe(&other), "wan[1].weight");
    }
}
