//! The environment layer: `UPLINKD_*` variables (RouterOS `/container envs`) laid over the TOML
//! table before it is read, one variable per key. The scheme is mechanical:
//!
//! - `UPLINKD_<SECTION>_<KEY>` sets `[section] key` (`UPLINKD_REST_URL` → `rest.url`, the key
//!   upper-cased: `UPLINKD_REST_PIN_SHA256` → `rest.pin_sha256`);
//! - `UPLINKD_WAN<n>_<KEY>` sets the n-th `[[wan]]` table (from 1), creating it when the file has
//!   fewer; `UPLINKD_WEBHOOK<n>_<KEY>` likewise for `[[webhook]]`;
//! - `UPLINKD_STATE_DIR` sets the top-level `state_dir`;
//! - lists are comma-separated (`UPLINKD_WAN1_MONITORS=9.9.9.9,4.2.2.2`), booleans are
//!   `true|false|yes|no`, numbers are decimal, durations are `500ms`, `10s`, `60m`;
//! - a secret `X` may instead be read from a file with `X_FILE` (`UPLINKD_REST_PASSWORD_FILE`).
//!
//! An `UPLINKD_` variable that matches no key is an error naming it. This module never reads
//! files or parses values beyond their TOML type: the resolver validates them.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

use super::error::{ConfigError, KeyPath, Origins, env_word};
use super::file;

/// Variables that start with `UPLINKD_` but are not configuration keys (read elsewhere). The
/// tests' own switch is not among them: every test that starts uplinkd removes the runner's
/// `UPLINKD_*` first (`uplinkd_testkit::testenv::without_runner_env`).
pub const NON_CONFIG_VARS: &[&str] = &["UPLINKD_CONFIG"];

/// Most WANs (and webhooks) the environment may number: bounds what a typo like
/// `UPLINKD_WAN99999_NAME` can allocate, and the default probe /30s (172.31.255.0/24) fit 64.
pub const MAX_TABLES: usize = 64;

/// A snapshot of the `UPLINKD_*` environment. `Debug` prints names only: values may be secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// Variables whose value is not UTF-8 (reported as an error when loading).
    not_unicode: Vec<String>,
}

impl Env {
    /// No variables at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The process environment's `UPLINKD_*` variables.
    pub fn from_process() -> Self {
        let mut env = Self::default();
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if !name.starts_with("UPLINKD_") {
                continue;
            }
            match value.into_string() {
                Ok(v) => {
                    env.vars.insert(name, v);
                }
                Err(_) => env.not_unicode.push(name),
            }
        }
        env
    }

    /// Explicit variables (tests, the demo). Names not starting with `UPLINKD_` are ignored, as
    /// they are in the process environment.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut env = Self::default();
        for (k, v) in pairs {
            env = env.with(k, v);
        }
        env
    }

    /// This snapshot plus (or overriding) one variable.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        if name.starts_with("UPLINKD_") {
            self.vars.insert(name, value.into());
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The TOML type an environment value is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
    /// A `[health]` key: the health core owns its types, so take the value as TOML would read
    /// it bare (integer, float, boolean) and as a string otherwise (`500ms`).
    Infer,
}

/// A configuration section reachable from the environment.
struct Section {
    /// TOML key (`wan`); the env word is its upper-case form.
    key: &'static str,
    /// `[[wan]]`: numbered in the environment.
    array: bool,
    fields: FieldsFn,
}

const SECTIONS: &[Section] = &[
    Section {
        key: "router",
        array: false,
        fields: fields_of::<file::RouterFile>,
    },
    Section {
        key: "rest",
        array: false,
        fields: fields_of::<file::RestFile>,
    },
    Section {
        key: "wan",
        array: true,
        fields: fields_of::<file::WanFile>,
    },
    Section {
        key: "health",
        array: false,
        fields: fields_of::<super::health::HealthFile>,
    },
    Section {
        key: "balance",
        array: false,
        fields: fields_of::<file::BalanceFile>,
    },
    Section {
        key: "lan",
        array: false,
        fields: fields_of::<file::LanFile>,
    },
    Section {
        key: "sections",
        array: false,
        fields: fields_of::<file::SectionsFile>,
    },
    Section {
        key: "alerts",
        array: false,
        fields: fields_of::<file::AlertsFile>,
    },
    Section {
        key: "email",
        array: false,
        fields: fields_of::<file::EmailFile>,
    },
    Section {
        key: "webhook",
        array: true,
        fields: fields_of::<file::WebhookFile>,
    },
    Section {
        key: "status",
        array: false,
        fields: fields_of::<file::StatusFile>,
    },
    Section {
        key: "reconcile",
        array: false,
        fields: fields_of::<file::ReconcileFile>,
    },
];

/// Reads the field names of one file-layer struct.
type FieldsFn = fn() -> &'static [&'static str];

/// Sub-tables reachable from the environment: `UPLINKD_HEALTH_BROWNOUT_LOSS_FAIL` →
/// `health.brownout_loss.fail`.
const NESTED: &[(&str, &str, FieldsFn)] = &[
    (
        "health",
        "brownout_loss",
        fields_of::<super::health::LossLevelsFile>,
    ),
    (
        "health",
        "brownout_latency",
        fields_of::<super::health::DurationLevelsFile>,
    ),
    (
        "health",
        "brownout_jitter",
        fields_of::<super::health::DurationLevelsFile>,
    ),
];

/// Top-level keys that are not tables.
const TOP_SCALARS: &[&str] = &["state_dir"];

/// Keys whose value is not a plain string. Everything else in the file layer is a string.
fn kind_of(section: &str, key: &str) -> Kind {
    match (section, key) {
        ("health", _) => Kind::Infer,
        ("sections", _) => Kind::Bool,
        ("wan", "weight" | "priority" | "tier" | "probe_prefix_len")
        | ("alerts", "memory_percent" | "cpu_percent")
        | ("email", "port") => Kind::Int,
        ("alerts", "on_failure" | "on_recovery") => Kind::Bool,
        ("wan", "monitors")
        | ("lan", "ports" | "dns_servers")
        | ("alerts", "reminders")
        | ("email", "to") => Kind::List,
        _ => Kind::Str,
    }
}

/// Secrets that may come either inline or from a file: setting one in a layer clears the other
/// from the layers below, and setting both in the environment is an error.
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("password", "password_file"),
    ("pppoe_password", "pppoe_password_file"),
    ("token", "token_file"),
];

/// Whether `key` is an array of tables numbered in the environment (`wan`, `webhook`).
pub(crate) fn is_table_array(key: &str) -> bool {
    SECTIONS.iter().any(|s| s.array && s.key == key)
}

/// Every environment variable name the scheme accepts, with `<n>` for table numbers (docs, tests).
pub fn known_variables() -> Vec<String> {
    let mut out: Vec<String> = TOP_SCALARS
        .iter()
        .map(|k| format!("UPLINKD_{}", env_word(k)))
        .collect();
    for s in SECTIONS {
        let n = if s.array { "<n>" } else { "" };
        for f in (s.fields)() {
            match NESTED
                .iter()
                .find(|(sec, key, _)| *sec == s.key && key == f)
            {
                Some((_, _, sub)) => {
                    for k in sub() {
                        out.push(format!(
                            "UPLINKD_{}{n}_{}_{}",
                            env_word(s.key),
                            env_word(f),
                            env_word(k)
                        ));
                    }
                }
                None => out.push(format!("UPLINKD_{}{n}_{}", env_word(s.key), env_word(f))),
            }
        }
    }
    out
}

/// Lays the environment over `table`, recording which key each variable set.
pub(crate) fn overlay(
    env: &Env,
    table: &mut toml::Table,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    if let Some(name) = env.not_unicode.first() {
        return Err(ConfigError::Env {
            var: name.clone(),
            problem: "the value is not valid UTF-8".into(),
        });
    }
    // Tables the environment numbers, per section: to check there are no gaps.
    let mut numbered: BTreeMap<&'static str, BTreeMap<usize, String>> = BTreeMap::new();
    let mut set_here: BTreeMap<KeyPath, String> = BTreeMap::new();
    let file_lens: BTreeMap<&'static str, usize> = SECTIONS
        .iter()
        .filter(|s| s.array)
        .map(|s| match table.get(s.key) {
            Some(toml::Value::Array(a)) => (s.key, a.len()),
            _ => (s.key, 0),
        })
        .collect();
    for (var, value) in &env.vars {
        if NON_CONFIG_VARS.contains(&var.as_str()) {
            continue;
        }
        let target = parse_name(var)?;
        let (path, kind) = match target {
            Target::Top(key) => (KeyPath::root().field(key), Kind::Str),
            Target::Field {
                section,
                index,
                key,
                sub,
            } => {
                let mut p = KeyPath::root().field(section.key);
                if let Some(i) = index {
                    p = p.index(i);
                    numbered
                        .entry(section.key)
                        .or_default()
                        .entry(i)
                        .or_insert_with(|| var.clone());
                }
                let p = p.field(key);
                match sub {
                    Some(sub) => (p.field(sub), kind_of(section.key, key)),
                    None => (p, kind_of(section.key, key)),
                }
            }
        };
        let value = convert(var, value, kind)?;
        set_here.insert(path.clone(), var.clone());
        put(table, &path, value, origins)?;
        origins.record(path, var.clone());
    }
    check_secret_pairs(&set_here)?;
    check_no_gaps(&file_lens, &numbered)
}

enum Target {
    Top(&'static str),
    Field {
        section: &'static Section,
        index: Option<usize>,
        key: &'static str,
        /// A key of a sub-table (`fail` of `health.brownout_loss`).
        sub: Option<&'static str>,
    },
}

fn parse_name(var: &str) -> Result<Target, ConfigError> {
    let unknown = |hint: String| ConfigError::Env {
        var: var.to_string(),
        problem: format!("not a configuration variable; {hint}"),
    };
    let rest = var.strip_prefix("UPLINKD_").unwrap_or(var);
    if let Some(key) = TOP_SCALARS.iter().find(|k| env_word(k) == rest) {
        return Ok(Target::Top(key));
    }
    for section in SECTIONS {
        let word = env_word(section.key);
        let Some(after) = rest.strip_prefix(word.as_str()) else {
            continue;
        };
        let (index, key_word) = if section.array {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            let Some(key_word) = after[digits.len()..].strip_prefix('_') else {
                continue;
            };
            let n = parse_table_number(var, &digits, &word)?;
            (Some(n - 1), key_word)
        } else {
            match after.strip_prefix('_') {
                Some(k) => (None, k),
                None => continue,
            }
        };
        let fields = (section.fields)();
        if let Some(key) = fields.iter().find(|f| env_word(f) == key_word) {
            return Ok(Target::Field {
                section,
                index,
                key,
                sub: None,
            });
        }
        for (sec, key, sub_fields) in NESTED {
            if *sec != section.key {
                continue;
            }
            let Some(sub_word) = key_word
                .strip_prefix(env_word(key).as_str())
                .and_then(|r| r.strip_prefix('_'))
            else {
                continue;
            };
            if let Some(sub) = sub_fields().iter().find(|f| env_word(f) == sub_word) {
                return Ok(Target::Field {
                    section,
                    index,
                    key,
                    sub: Some(sub),
                });
            }
        }
        let prefix = format!("UPLINKD_{word}{}_", if section.array { "<n>" } else { "" });
        let list: Vec<String> = known_variables()
            .into_iter()
            .filter(|v| v.starts_with(&prefix))
            .collect();
        return Err(unknown(format!("expected one of {}", list.join(", "))));
    }
    let words: Vec<String> = SECTIONS
        .iter()
        .map(|s| {
            let n = if s.array { "<n>" } else { "" };
            format!("UPLINKD_{}{n}_*", env_word(s.key))
        })
        .chain(
            TOP_SCALARS
                .iter()
                .map(|k| format!("UPLINKD_{}", env_word(k))),
        )
        .collect();
    Err(unknown(format!(
        "expected one of {}, {}",
        words.join(", "),
        NON_CONFIG_VARS.join(", ")
    )))
}

fn parse_table_number(var: &str, digits: &str, word: &str) -> Result<usize, ConfigError> {
    let bad = |problem: String| ConfigError::Env {
        var: var.to_string(),
        problem,
    };
    if digits.is_empty() || digits.starts_with('0') {
        return Err(bad(format!(
            "expected UPLINKD_{word}<n>_<KEY> with n = 1, 2, ... (no leading zero)"
        )));
    }
    match digits.parse::<usize>() {
        Ok(n) if n <= MAX_TABLES => Ok(n),
        _ => Err(bad(format!(
            "expected UPLINKD_{word}<n>_<KEY> with n from 1 to {MAX_TABLES}"
        ))),
    }
}

fn convert(var: &str, value: &str, kind: Kind) -> Result<toml::Value, ConfigError> {
    let bad = |expected: &str| ConfigError::Invalid {
        key: var.to_string(),
        expected: expected.to_string(),
        got: format!("{value:?}"),
    };
    Ok(match kind {
        Kind::Str => toml::Value::String(value.to_string()),
        Kind::Int => toml::Value::Integer(
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("a whole number"))?,
        ),
        Kind::Bool => {
            toml::Value::Boolean(parse_bool(value).ok_or_else(|| bad("true, false, yes or no"))?)
        }
        Kind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Infer => {
            let t = value.trim();
            if let Ok(i) = t.parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Some(b) = parse_bool(t) {
                toml::Value::Boolean(b)
            } else if let Ok(f) = t.parse::<f64>().map_err(|_| ()).and_then(|f| {
                // `inf`/`nan` parse as floats; as a threshold they are typos, keep them strings.
                if f.is_finite() { Ok(f) } else { Err(()) }
            }) {
                toml::Value::Float(f)
            } else {
                toml::Value::String(value.to_string())
            }
        }
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// Sets `path` (a section key, possibly numbered, then a field) in `table`.
fn put(
    table: &mut toml::Table,
    path: &KeyPath,
    value: toml::Value,
    origins: &Origins,
) -> Result<(), ConfigError> {
    use super::error::Seg;
    let segs = path.segments();
    let not_table = |upto: usize, what: &str| ConfigError::Invalid {
        key: origins.describe(&KeyPath::from_segments(segs[..upto].to_vec())),
        expected: what.to_string(),
        got: "another type in the file".into(),
    };
    let mut cur = table;
    let mut i = 0;
    while i + 1 < segs.len() {
        let Seg::Field(name) = &segs[i] else {
            return Err(not_table(i + 1, "a table"));
        };
        if let Some(Seg::Index(n)) = segs.get(i + 1) {
            let arr = cur
                .entry(name.clone())
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            let toml::Value::Array(arr) = arr else {
                return Err(not_table(i + 1, "an array of tables ([[...]])"));
            };
            while arr.len() <= *n {
                arr.push(toml::Value::Table(toml::Table::new()));
            }
            let toml::Value::Table(t) = &mut arr[*n] else {
                return Err(not_table(i + 2, "a table"));
            };
            cur = t;
            i += 2;
        } else {
            let entry = cur
                .entry(name.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else {
                return Err(not_table(i + 1, "a table"));
            };
            cur = t;
            i += 1;
        }
    }
    if let Some(Seg::Field(last)) = segs.last() {
        // The environment replaces a secret as a whole: drop the other spelling from the file.
        for (inline, from_file) in SECRET_PAIRS {
            if last == inline {
                cur.remove(*from_file);
            } else if last == from_file {
                cur.remove(*inline);
            }
        }
        cur.insert(last.clone(), value);
    }
    Ok(())
}

fn check_secret_pairs(set_here: &BTreeMap<KeyPath, String>) -> Result<(), ConfigError> {
    for (path, var) in set_here {
        let Some(super::error::Seg::Field(last)) = path.segments().last() else {
            continue;
        };
        for (inline, from_file) in SECRET_PAIRS {
            if last == inline {
                let other = path.parent().field(from_file);
                if let Some(other_var) = set_here.get(&other) {
                    return Err(ConfigError::Conflict {
                        key: var.clone(),
                        problem: format!("give either {var} or {other_var}, not both"),
                    });
                }
            }
        }
    }
    Ok(())
}

fn check_no_gaps(
    file_lens: &BTreeMap<&'static str, usize>,
    numbered: &BTreeMap<&'static str, BTreeMap<usize, String>>,
) -> Result<(), ConfigError> {
    for (section, by_index) in numbered {
        let file_len = file_lens.get(section).copied().unwrap_or(0);
        let Some(max) = by_index.keys().next_back().copied() else {
            continue;
        };
        // A table the environment had to create because a later number was set, with no
        // variable of its own: a gap, most likely a typo in the number.
        if let Some(i) = (file_len..max).find(|i| !by_index.contains_key(i)) {
            let var = by_index.get(&max).cloned().unwrap_or_default();
            let word = env_word(section);
            return Err(ConfigError::Env {
                var,
                problem: format!(
                    "there is no {section}[{n}]: they are numbered 1, 2, 3, ... without gaps; \
                     set UPLINKD_{word}{n}_* or add a [[{section}]] table to the file",
                    n = i + 1
                ),
            });
        }
    }
    Ok(())
}

/// The field names a derived `Deserialize` struct accepts (after renaming), read from the
/// derive itself so the environment scheme can never drift from the file layer.
pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let cell = Cell::new(&[][..]);
    // The capturing deserializer always fails after recording the field list; the error is
    // the expected outcome and carries nothing.
    let _ = T::deserialize(FieldCapture(&cell));
    cell.get()
}

struct FieldCapture<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldCapture<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(de::Error::custom("fields captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_the_derive() {
        let f = fields_of::<file::RestFile>();
        assert!(f.contains(&"pin_sha256"), "{f:?}");
        assert!(f.contains(&"password_file"), "{f:?}");
    }

    #[test]
    fn every_typed_key_is_a_real_field() {
        // kind_of's table must only name fields that exist.
        let typed = [
            ("wan", "weight"),
            ("wan", "priority"),
            ("wan", "tier"),
            ("wan", "probe_prefix_len"),
            ("wan", "monitors"),
            ("alerts", "memory_percent"),
            ("alerts", "cpu_percent"),
            ("alerts", "on_failure"),
            ("alerts", "on_recovery"),
            ("alerts", "reminders"),
            ("email", "port"),
            ("email", "to"),
            ("lan", "ports"),
            ("lan", "dns_servers"),
        ];
        for (section, key) in typed {
            let s = SECTIONS.iter().find(|s| s.key == section).unwrap();
            assert!((s.fields)().contains(&key), "{section}.{key}");
            assert_ne!(kind_of(section, key), Kind::Str);
        }
        for (inline, file) in SECRET_PAIRS {
            assert!(
                SECTIONS
                    .iter()
                    .any(|s| (s.fields)().contains(inline) && (s.fields)().contains(file))
            );
        }
    }

    #[test]
    fn names_parse() {
        assert!(matches!(
            parse_name("UPLINKD_WAN12_PROBE_VETH"),
            Ok(Target::Field {
                index: Some(11),
                key: "probe_veth",
                ..
            })
        ));
        assert!(matches!(
            parse_name("UPLINKD_STATE_DIR"),
            Ok(Target::Top("state_dir"))
        ));
        for bad in [
            "UPLINKD_WAN0_NAME",
            "UPLINKD_WAN01_NAME",
            "UPLINKD_WAN_NAME",
            "UPLINKD_WAN65_NAME",
            "UPLINKD_WAN99999999999999999999999_NAME",
            "UPLINKD_REST_PASSWD",
            "UPLINKD_RESTURL",
            "UPLINKD_",
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_values() {
        let env = Env::from_pairs([("UPLINKD_REST_PASSWORD", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
    }
}
