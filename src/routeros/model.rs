//! The REST client's data model: RouterOS's all-string JSON becomes typed values here and nowhere
//! else. Ids, menus, records with typed accessors, write payloads, and the pure decoding functions
//! for response bodies (which must never panic, whatever the bytes). No I/O in this module.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use serde_json::Value;

/// A RouterOS internal item id: `*` followed by hex digits (`*1A`). Stable while the item exists.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RosId(String);

impl RosId {
    /// Parses `*<hex>`; anything else is not an id.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let ok = s.strip_prefix('*').is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new(".id", s, "an item id like *1A"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RosId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RosId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RosId({})", self.0)
    }
}

/// A RouterOS menu path in console form: `/ip/route`, `/ip/firewall/mangle`. Never an item id or
/// a command: those are separate arguments of the client's operations.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Menu(Cow<'static, str>);

const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
}

/// Whether `s` is `/seg/seg...` with non-empty segments of `[a-z0-9._-]` (const, for literals).
const fn valid_menu(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'/' || b[b.len() - 1] == b'/' {
        return false;
    }
    let mut i = 1;
    let mut prev_slash = true;
    while i < b.len() {
        if b[i] == b'/' {
            if prev_slash {
                return false;
            }
            prev_slash = true;
        } else if is_name_byte(b[i]) {
            prev_slash = false;
        } else {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `s` is one command or attribute name (`print`, `connection-mark`, `.id`).
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(is_name_byte)
}

impl Menu {
    /// A menu from a literal. Use it in `const` items, where an invalid literal fails the build
    /// (the check is evaluated at compile time there).
    pub const fn from_static(path: &'static str) -> Self {
        assert!(valid_menu(path), "menu paths look like /ip/route");
        Self(Cow::Borrowed(path))
    }

    /// Parses a menu path given at run time (`/ip/route`; a missing leading `/` is added).
    pub fn parse(path: &str) -> Result<Self, ValueError> {
        let owned = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        if valid_menu(&owned) {
            Ok(Self(Cow::Owned(owned)))
        } else {
            Err(ValueError::new("menu", path, "a menu path like /ip/route"))
        }
    }

    /// `/ip/route`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The REST path of this menu: `/rest/ip/route`.
    pub fn rest_path(&self) -> String {
        format!("/rest{}", self.0)
    }

    pub const IP_ROUTE: Menu = Menu::from_static("/ip/route");
    pub const IP_ADDRESS: Menu = Menu::from_static("/ip/address");
    pub const IP_FIREWALL_MANGLE: Menu = Menu::from_static("/ip/firewall/mangle");
    pub const IP_FIREWALL_NAT: Menu = Menu::from_static("/ip/firewall/nat");
    pub const IP_FIREWALL_FILTER: Menu = Menu::from_static("/ip/firewall/filter");
    pub const IP_FIREWALL_CONNECTION: Menu = Menu::from_static("/ip/firewall/connection");
    pub const IP_FIREWALL_ADDRESS_LIST: Menu = Menu::from_static("/ip/firewall/address-list");
    pub const ROUTING_TABLE: Menu = Menu::from_static("/routing/table");
    pub const ROUTING_RULE: Menu = Menu::from_static("/routing/rule");
    pub const SYSTEM_RESOURCE: Menu = Menu::from_static("/system/resource");
    pub const SYSTEM_SCRIPT_ENVIRONMENT: Menu = Menu::from_static("/system/script/environment");
    pub const SYSTEM_IDENTITY: Menu = Menu::from_static("/system/identity");
    pub const FILE: Menu = Menu::from_static("/file");
}

impl fmt::Display for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Menu({})", self.0)
    }
}

/// A value that does not have the expected form: names the key, the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?}: expected {expected}")]
pub struct ValueError {
    pub key: String,
    pub value: String,
    pub expected: &'static str,
}

impl ValueError {
    pub fn new(key: &str, value: &str, expected: &'static str) -> Self {
        // Bound what an error can carry: values come from the network.
        let value: String = value.chars().take(80).collect();
        Self {
            key: key.to_owned(),
            value,
            expected,
        }
    }
}

/// Attribute name → value, all strings as RouterOS sends and accepts them. Used both for what a
/// record holds and for what a write sends. Typed accessors decode on read; [`RosValue`] encodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props(pub BTreeMap<String, String>);

impl Props {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form: `Props::new().with("distance", 1u32).with("disabled", false)`.
    pub fn with(mut self, key: impl Into<String>, value: impl RosValue) -> Self {
        self.0.insert(key.into(), value.to_ros());
        self
    }

    /// The raw string, if present.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean (`true`/`false`/`yes`/`no`); `None` when absent.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ValueError> {
        self.str(key).map(|v| parse_bool(key, v)).transpose()
    }

    /// An unsigned decimal number; `None` when absent.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ValueError> {
        self.str(key).map(|v| parse_u64(key, v)).transpose()
    }

    /// A signed decimal number; `None` when absent.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ValueError> {
        self.str(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ValueError::new(key, v, "a decimal number"))
            })
            .transpose()
    }

    /// A RouterOS duration (`1d2h3m4s`, `500ms`, `00:01:30`, `1w2d00:00:10`); `None` when absent.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ValueError> {
        self.str(key).map(|v| parse_duration(key, v)).transpose()
    }

    /// The `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.str("comment")
    }

    /// `disabled`; an absent flag means enabled (RouterOS omits default values in some menus).
    pub fn disabled(&self) -> Result<bool, ValueError> {
        Ok(self.bool("disabled")?.unwrap_or(false))
    }
}

impl Deref for Props {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Props {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Props {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// One item of a menu: its id and its other attributes (without `.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: RosId,
    pub props: Props,
}

impl Record {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.props.str(key)
    }
    pub fn comment(&self) -> Option<&str> {
        self.props.comment()
    }
    pub fn disabled(&self) -> Result<bool, ValueError> {
        self.props.disabled()
    }
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ValueError> {
        self.props.bool(key)
    }
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ValueError> {
        self.props.u64(key)
    }
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ValueError> {
        self.props.duration(key)
    }
}

/// A typed value written to RouterOS, encoded as the string RouterOS itself prints.
pub trait RosValue {
    fn to_ros(&self) -> String;
}

impl RosValue for bool {
    // RouterOS prints booleans as "true"/"false" and accepts them on input, so a written value
    // reads back identically.
    fn to_ros(&self) -> String {
        if *self { "true" } else { "false" }.to_owned()
    }
}

macro_rules! ros_display {
    ($($t:ty),*) => {$(
        impl RosValue for $t {
            fn to_ros(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
ros_display!(
    u8,
    u16,
    u32,
    u64,
    i32,
    i64,
    usize,
    std::net::Ipv4Addr,
    ipnet::Ipv4Net,
    RosId
);

impl RosValue for &str {
    fn to_ros(&self) -> String {
        (*self).to_owned()
    }
}

impl RosValue for String {
    fn to_ros(&self) -> String {
        self.clone()
    }
}

impl RosValue for &String {
    fn to_ros(&self) -> String {
        (*self).clone()
    }
}

impl RosValue for Duration {
    /// Whole milliseconds when sub-second (`500ms`), else `1h2m3s` style.
    fn to_ros(&self) -> String {
        format_duration(*self)
    }
}

/// What a `print` selects. Only `.proplist` and equality filters: a `GET` with a query string.
/// With API query words (`#|`, `?<`...): a `POST <menu>/print` with `.query`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub proplist: Vec<String>,
    pub equal: Vec<(String, String)>,
    pub words: Vec<String>,
}

impl Query {
    /// Every item with every attribute.
    pub fn all() -> Self {
        Self::default()
    }

    /// Limit the attributes returned (`.id` is always added): cheaper for the router.
    pub fn proplist<S: AsRef<str>>(mut self, props: &[S]) -> Self {
        self.proplist = props.iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// Only items whose `key` equals `value`.
    pub fn eq(mut self, key: impl Into<String>, value: impl RosValue) -> Self {
        self.equal.push((key.into(), value.to_ros()));
        self
    }

    /// Raw API query words (`type=ether`, `#|`), sent with `POST print`.
    pub fn words<S: AsRef<str>>(mut self, words: &[S]) -> Self {
        self.words = words.iter().map(|w| w.as_ref().to_owned()).collect();
        self
    }
}

/// How `/execute` runs a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// No `as-string`: RouterOS starts a background job and answers its id at once. For long work
    /// (removing many connections) that must not hold the serialized REST session.
    Background,
    /// `as-string` present: the call waits for the script and answers its output. A failing script
    /// still answers 200 with the error text as output (RouterOS 7.20 behaviour).
    Sync,
}

/// What `/execute` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// A background job was started (`{"ret":"*B546"}`).
    Job(RosId),
    /// The output of a synchronous script (possibly its error text; see [`ExecMode::Sync`]).
    Output(String),
}

/// RouterOS log severity for `POST /log/<level>` (shared with the alert schedule).
pub use crate::types::LogLevel;

/// The outcome of a successful remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Deleted,
    /// The router answered 404: the item was already gone, which is what we wanted.
    AlreadyGone,
}

/// RouterOS's error body `{"error":400,"message":"Bad Request","detail":"..."}`, decoded
/// leniently: whatever is missing stays `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: Option<String>,
    pub detail: Option<String>,
}

// ------------------------------------------------------------------------------------------------
// Decoding of response bodies. Every function here takes arbitrary bytes and never panics.

/// Longest text kept from a body for messages (RouterOS details are short; anything longer is
/// noise or an attack).
const MAX_TEXT: usize = 4096;

fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An object of string values → `Props` (with `.id` still inside).
fn object_props(v: &Value) -> Result<Props, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object, got {}", kind(v)));
    };
    let mut props = Props::new();
    for (k, val) in map {
        match val {
            Value::String(s) => {
                props.insert(k.clone(), s.clone());
            }
            other => {
                return Err(format!(
                    "attribute {:?} is {}, RouterOS sends strings",
                    clip(k),
                    kind(other)
                ));
            }
        }
    }
    Ok(props)
}

fn record_from(v: &Value) -> Result<Record, String> {
    let mut props = object_props(v)?;
    let id = props
        .remove(".id")
        .ok_or_else(|| "an item without .id".to_owned())?;
    let id = RosId::parse(&id).map_err(|e| e.to_string())?;
    Ok(Record { id, props })
}

/// A `print` answer: a JSON array of items, each with `.id`.
pub fn decode_records(body: &[u8]) -> Result<Vec<Record>, String> {
    match parse_json(body)? {
        Value::Array(items) => items.iter().map(record_from).collect(),
        other => Err(format!("expected an array of items, got {}", kind(&other))),
    }
}

/// The answer of a command that reports rows without ids (`/ping count=1`): a JSON array of
/// objects (an empty body is no rows).
pub fn decode_rows(body: &[u8]) -> Result<Vec<Props>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match parse_json(body)? {
        Value::Array(items) => items.iter().map(object_props).collect(),
        other => Err(format!("expected an array of rows, got {}", kind(&other))),
    }
}

/// One item (a `GET <menu>/<id>`, `PATCH` or `PUT` answer).
pub fn decode_record(body: &[u8]) -> Result<Record, String> {
    record_from(&parse_json(body)?)
}

/// The attributes of a menu without items (`GET /rest/system/resource`). RouterOS answers an
/// object; some versions wrap it in a one-element array.
pub fn decode_singleton(body: &[u8]) -> Result<Props, String> {
    match parse_json(body)? {
        Value::Array(items) if items.len() == 1 => object_props(&items[0]),
        v => object_props(&v),
    }
}

/// The id of an added item: the created object's `.id`, or `{"ret":"*1A"}`.
pub fn decode_added_id(body: &[u8]) -> Result<RosId, String> {
    let v = parse_json(body)?;
    let props = object_props(&v)?;
    let raw = props
        .get(".id")
        .or_else(|| props.get("ret"))
        .ok_or_else(|| "the answer names no .id".to_owned())?;
    RosId::parse(raw).map_err(|e| e.to_string())
}

/// The `ret` of a command (`{"ret":"..."}`); `None` when the command returned nothing (`[]`, `{}`).
pub fn decode_ret(body: &[u8]) -> Result<Option<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match parse_json(body)? {
        Value::Array(a) if a.is_empty() => Ok(None),
        Value::Object(map) => match map.get("ret") {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("ret is {}, expected a string", kind(other))),
        },
        other => Err(format!("expected an object with ret, got {}", kind(&other))),
    }
}

/// The answer of `/execute` in the given mode.
pub fn decode_executed(mode: ExecMode, body: &[u8]) -> Result<Executed, String> {
    let ret = decode_ret(body)?;
    match mode {
        ExecMode::Background => {
            let ret = ret.ok_or_else(|| "no job id in the answer".to_owned())?;
            RosId::parse(&ret)
                .map(Executed::Job)
                .map_err(|e| e.to_string())
        }
        ExecMode::Sync => Ok(Executed::Output(ret.unwrap_or_default())),
    }
}

/// RouterOS's error body. Never fails: a body that is not the expected JSON is kept as the
/// detail when it is short text, else ignored.
pub fn decode_error_body(body: &[u8]) -> ErrorBody {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) if !s.is_empty() => Some(clip(s)),
        _ => None,
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => ErrorBody {
            message: text(map.get("message")),
            detail: text(map.get("detail")),
        },
        Ok(_) => ErrorBody::default(),
        Err(_) => {
            let s = String::from_utf8_lossy(body);
            let s = s.trim();
            ErrorBody {
                message: None,
                detail: (!s.is_empty() && s.len() <= 512 && !s.contains('<')).then(|| s.to_owned()),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Value parsers (the typed edge of the all-string JSON).

/// `true`/`false`/`yes`/`no`.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, ValueError> {
    match v {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(ValueError::new(key, v, "true, false, yes or no")),
    }
}

/// A decimal unsigned number (RouterOS prints numbers in decimal inside strings).
pub fn parse_u64(key: &str, v: &str) -> Result<u64, ValueError> {
    let t = v.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new(key, v, "a decimal number"));
    }
    t.parse()
        .map_err(|_| ValueError::new(key, v, "a decimal number within 64 bits"))
}

/// A RouterOS duration: unit groups (`1w2d3h4m5s`, `500ms`, `20us`, `3ns`), an optional clock
/// part (`00:01:30`, `1d00:00:10.500`), or a bare number of seconds.
pub fn parse_duration(key: &str, v: &str) -> Result<Duration, ValueError> {
    let bad = || ValueError::new(key, v, "a duration like 1d2h3m4s, 500ms or 00:01:30");
    let s = v.trim();
    // ASCII only: every index below is then a char boundary.
    if s.is_empty() || s.len() > 64 || !s.is_ascii() {
        return Err(bad());
    }
    // Split off the clock part: the text from the start of the last number group before ':'.
    let (units, clock) = match s.find(':') {
        Some(colon) => {
            let start = s[..colon]
                .rfind(|c: char| !c.is_ascii_digit())
                .map_or(0, |i| i + 1);
            (&s[..start], Some(&s[start..]))
        }
        None => (s, None),
    };
    let mut total: u128 = 0; // nanoseconds; u128 so no input can overflow before the final check
    let b = units.as_bytes();
    let mut i = 0;
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) && clock.is_none() {
        let secs: u128 = units.parse().map_err(|_| bad())?;
        total = secs * 1_000_000_000;
        i = b.len();
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 12 {
            return Err(bad());
        }
        let n: u128 = units[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let nanos_per: u128 = match &units[ustart..i] {
            "w" => 604_800_000_000_000,
            "d" => 86_400_000_000_000,
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        total += n * nanos_per;
    }
    if let Some(clock) = clock {
        let (hms, frac) = match clock.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (clock, None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 6 || !p.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(bad());
        }
        let num = |p: &str| p.parse::<u128>().map_err(|_| bad());
        total += (num(parts[0])? * 3600 + num(parts[1])? * 60 + num(parts[2])?) * 1_000_000_000;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            total += num(f)? * 10u128.pow(9 - f.len() as u32);
        }
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    // The remainder of a division by 1e9 always fits in u32.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way RouterOS accepts it: `1h2m3s`, `500ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms_total = d.as_millis();
    if ms_total == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut secs = ms_total / 1000;
    let ms = ms_total % 1000;
    for (unit, len) in [
        ("w", 604_800u128),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(RosId::parse("*1A").unwrap().as_str(), "*1A");
        assert_eq!(RosId::parse("*b546").unwrap().to_string(), "*b546");
        for bad in [
            "",
            "*",
            "1A",
            "*1G",
            "**1",
            "*1 ",
            "ether1",
            "*12345678901234567",
        ] {
            assert!(RosId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn menus() {
        assert_eq!(Menu::IP_ROUTE.rest_path(), "/rest/ip/route");
        assert_eq!(
            Menu::parse("ip/firewall/mangle").unwrap().as_str(),
            "/ip/firewall/mangle"
        );
        for bad in [
            "",
            "/",
            "//ip",
            "/ip/",
            "/ip//route",
            "/ip/route/*1",
            "/ip route",
            "/IP",
            "/ip?x=1",
        ] {
            assert!(Menu::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn booleans_numbers() {
        let p: Props = [
            ("a", "true"),
            ("b", "no"),
            ("c", "yes"),
            ("d", "false"),
            ("e", "maybe"),
            ("n", "42"),
            ("x", "0x2a"),
            ("neg", "-3"),
        ]
        .into_iter()
        .collect();
        assert_eq!(p.bool("a"), Ok(Some(true)));
        assert_eq!(p.bool("b"), Ok(Some(false)));
        assert_eq!(p.bool("c"), Ok(Some(true)));
        assert_eq!(p.bool("d"), Ok(Some(false)));
        assert_eq!(p.bool("missing"), Ok(None));
        let e = p.bool("e").unwrap_err();
        assert_eq!(e.key, "e");
        assert_eq!(p.u64("n"), Ok(Some(42)));
        assert!(p.u64("x").is_err());
        assert!(p.u64("neg").is_err());
        assert_eq!(p.i64("neg"), Ok(Some(-3)));
        assert!(p.u64("a").is_err());
    }

    #[test]
    fn disabled_and_comment() {
        let p: Props = [("comment", "uplinkd:route:ISP1-main"), ("disabled", "true")]
            .into_iter()
            .collect();
        assert_eq!(p.comment(), Some("uplinkd:route:ISP1-main"));
        assert_eq!(p.disabled(), Ok(true));
        assert_eq!(Props::new().disabled(), Ok(false));
        assert_eq!(Props::new().comment(), None);
    }

    #[test]
    fn durations() {
        let table: &[(&str, Duration)] = &[
            ("10s", Duration::from_secs(10)),
            (
                "1d2h3m4s",
                Duration::from_secs(86_400 + 2 * 3600 + 3 * 60 + 4),
            ),
            ("1w", Duration::from_secs(604_800)),
            ("500ms", Duration::from_millis(500)),
            ("1s500ms", Duration::from_millis(1500)),
            ("20us", Duration::from_micros(20)),
            ("00:01:30", Duration::from_secs(90)),
            ("1d00:00:10", Duration::from_secs(86_410)),
            (
                "2w3d01:02:03",
                Duration::from_secs(2 * 604_800 + 3 * 86_400 + 3723),
            ),
            ("00:00:01.250", Duration::from_millis(1250)),
            ("30", Duration::from_secs(30)),
            ("0s", Duration::ZERO),
        ];
        for (s, d) in table {
            assert_eq!(parse_duration("k", s), Ok(*d), "{s}");
        }
        for bad in [
            "",
            "s",
            "10x",
            "1:2",
            "1h:00:00",
            "::",
            "00:00:01.",
            "-1s",
            "1.5s",
            "99999999999999999999999w",
        ] {
            assert!(parse_duration("k", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duration_round_trip() {
        for ms in [0u64, 1, 999, 1000, 1500, 60_000, 3_723_000, 694_861_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration("k", &format_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h2m3s");
    }

    #[test]
    fn encode_values() {
        let p = Props::new()
            .with("disabled", true)
            .with("distance", 2u32)
            .with("gateway", std::net::Ipv4Addr::new(198, 18, 0, 1))
            .with("timeout", Duration::from_millis(500));
        assert_eq!(p.str("disabled"), Some("true"));
        assert_eq!(p.str("distance"), Some("2"));
        assert_eq!(p.str("gateway"), Some("198.18.0.1"));
        assert_eq!(p.str("timeout"), Some("500ms"));
    }

    #[test]
    fn decode_print() {
        let body = br#"[{".id":"*1","comment":"uplinkd:route:ISP1-main","disabled":"false","distance":"1"},{".id":"*2A","dst-address":"0.0.0.0/0"}]"#;
        let r = decode_records(body).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].id.as_str(), "*1");
        assert_eq!(r[0].u64("distance"), Ok(Some(1)));
        assert!(!r[0].props.contains_key(".id"));
        assert_eq!(r[1].str("dst-address"), Some("0.0.0.0/0"));
        assert_eq!(decode_records(b"[]").unwrap(), vec![]);
        assert!(
            decode_records(br#"[{"comment":"x"}]"#)
                .unwrap_err()
                .contains(".id")
        );
        assert!(
            decode_records(br#"[{".id":"*1","distance":1}]"#)
                .unwrap_err()
                .contains("strings")
        );
        assert!(decode_records(br#"{".id":"*1"}"#).is_err());
        assert!(decode_records(b"<html>").is_err());
    }

    #[test]
    fn decode_others() {
        assert_eq!(
            decode_added_id(br#"{".id":"*1B","comment":"x"}"#)
                .unwrap()
                .as_str(),
            "*1B"
        );
        assert_eq!(
            decode_added_id(br#"{"ret":"*1C"}"#).unwrap().as_str(),
            "*1C"
        );
        assert!(decode_added_id(b"[]").is_err());
        assert_eq!(decode_ret(b"[]"), Ok(None));
        assert_eq!(decode_ret(b""), Ok(None));
        assert_eq!(decode_ret(br#"{"ret":"hi"}"#), Ok(Some("hi".into())));
        assert_eq!(
            decode_executed(ExecMode::Background, br#"{"ret":"*B546"}"#),
            Ok(Executed::Job(RosId::parse("*B546").unwrap()))
        );
        assert!(decode_executed(ExecMode::Background, b"[]").is_err());
        assert_eq!(
            decode_executed(
                ExecMode::Sync,
                br#"{"ret":"expected end of command (line 1 column 5)"}"#
            ),
            Ok(Executed::Output(
                "expected end of command (line 1 column 5)".into()
            ))
        );
        assert_eq!(
            decode_executed(ExecMode::Sync, b"[]"),
            Ok(Executed::Output(String::new()))
        );
        let s = decode_singleton(br#"{"cpu-load":"3","free-memory":"1000"}"#).unwrap();
        assert_eq!(s.u64("cpu-load"), Ok(Some(3)));
        assert!(decode_singleton(br#"[{"cpu-load":"3"}]"#).is_ok());
    }

    #[test]
    fn decode_errors() {
        let e =
            decode_error_body(br#"{"error":400,"message":"Bad Request","detail":"no such item"}"#);
        assert_eq!(e.message.as_deref(), Some("Bad Request"));
        assert_eq!(e.detail.as_deref(), Some("no such item"));
        assert_eq!(
            decode_error_body(br#"{"error":404,"message":"Not Found"}"#).detail,
            None
        );
        assert_eq!(decode_error_body(b"").detail, None);
        assert_eq!(decode_error_body(b"<html>bad gateway</html>").detail, None);
        assert_eq!(
            decode_error_body(b"plain failure").detail.as_deref(),
            Some("plain failure")
        );
        assert_eq!(decode_error_body(br#"{"detail":5}"#), ErrorBody::default());
    }
}
