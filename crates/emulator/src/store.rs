//! The emulated router's data and the menu operations shared by REST and the script interpreter:
//! add, set, remove, enable/disable, move, lookups, argument validation against the command table.
//! No HTTP and no script syntax here: both front ends turn their input into these calls, so a rule
//! is enforced the same way whichever way it arrives.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::schema::{ArgKind, MenuKind, MenuSpec, Schema};

/// An error as RouterOS reports it over REST: HTTP status and `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}{}", self.message(), self.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct RosError {
    pub status: u16,
    pub detail: Option<String>,
}

impl RosError {
    pub fn bad(detail: impl Into<String>) -> Self {
        RosError {
            status: 400,
            detail: Some(detail.into()),
        }
    }
    pub fn not_found() -> Self {
        RosError {
            status: 404,
            detail: None,
        }
    }
    pub fn no_such_item() -> Self {
        Self::bad("no such item")
    }
    /// A path segment that is neither a menu nor a command.
    pub fn no_such_dir(seg: &str) -> Self {
        Self::bad(format!("no such command or directory ({seg})"))
    }
    /// A command the menu does not have (RouterOS answers 406 here).
    pub fn no_such_cmd(cmd: &str) -> Self {
        RosError {
            status: 406,
            detail: Some(format!("no such command or directory ({cmd})")),
        }
    }
    pub fn unknown_param(name: &str) -> Self {
        Self::bad(format!("unknown parameter {name}"))
    }
    pub fn no_match(arg: &str) -> Self {
        Self::bad(format!("input does not match any value of {arg}"))
    }
    /// The reason phrase RouterOS puts in `message`.
    pub fn message(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            406 => "Not Acceptable",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }
    /// The JSON body: `{"error":400,"message":"Bad Request","detail":"..."}`.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.status));
        m.insert("message".into(), json!(self.message()));
        if let Some(d) = &self.detail {
            m.insert("detail".into(), json!(d));
        }
        Value::Object(m)
    }
}

/// One object of a menu: `.id` (`*1A`) and its properties, all strings as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: String,
    pub props: BTreeMap<String, String>,
}

impl Object {
    pub fn get(&self, prop: &str) -> Option<&str> {
        if prop == ".id" {
            return Some(&self.id);
        }
        self.props.get(prop).map(String::as_str)
    }

    /// The JSON form; `with_id` false for singleton menus, which print no `.id`.
    pub fn to_json(&self, with_id: bool, proplist: Option<&[String]>) -> Value {
        let mut m = Map::new();
        let wanted = |k: &str| proplist.is_none_or(|p| p.iter().any(|x| x == k));
        if with_id && wanted(".id") {
            m.insert(".id".into(), json!(self.id));
        }
        for (k, v) in &self.props {
            if wanted(k) {
                m.insert(k.clone(), json!(v));
            }
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub objects: Vec<Object>,
    next_id: u64,
}

impl Table {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("*{:X}", self.next_id)
    }
}

/// Menus whose content is runtime state: emptied by a reboot.
pub(crate) const RUNTIME_MENUS: &[&str] = &[
    "/log",
    "/ip/firewall/connection",
    "/system/script/environment",
];

/// Menus whose objects together are the router's interfaces (what `interface=` may name).
const INTERFACE_MENUS: &[(&str, &str)] = &[
    ("/interface/ethernet", "ether"),
    ("/interface/bridge", "bridge"),
    ("/interface/veth", "veth"),
    ("/interface/pppoe-client", "pppoe-out"),
    ("/interface/vlan", "vlan"),
];

/// Arguments that name another object: (menu, arg) -> (menu holding it, names always valid).
/// RouterOS refuses a reference to an object that does not exist yet, so a script that creates
/// objects out of order fails here as it would on the router.
const REFERENCES: &[(&str, &str, Ref)] = &[
    ("/ip/route", "routing-table", Ref::Table),
    ("/routing/rule", "table", Ref::Table),
    ("/ip/firewall/mangle", "new-routing-mark", Ref::Table),
    (
        "/interface/bridge/port",
        "bridge",
        Ref::Menu("/interface/bridge"),
    ),
    ("/interface/bridge/port", "interface", Ref::Interface),
    ("/interface/list/member", "list", Ref::List),
    ("/interface/list/member", "interface", Ref::Interface),
    ("/ip/address", "interface", Ref::Interface),
    ("/ip/dhcp-server", "interface", Ref::Interface),
    ("/ip/dhcp-server", "address-pool", Ref::Pool),
    ("/ip/dhcp-client", "interface", Ref::Interface),
    ("/interface/pppoe-client", "interface", Ref::Interface),
    ("/interface/vlan", "interface", Ref::Interface),
    ("/ip/firewall/filter", "in-interface-list", Ref::List),
    ("/ip/firewall/filter", "out-interface-list", Ref::List),
    ("/ip/firewall/nat", "in-interface-list", Ref::List),
    ("/ip/firewall/nat", "out-interface-list", Ref::List),
    ("/ip/firewall/mangle", "in-interface-list", Ref::List),
    ("/ip/firewall/mangle", "out-interface-list", Ref::List),
    ("/ip/firewall/raw", "in-interface-list", Ref::List),
    ("/ip/firewall/filter", "in-interface", Ref::Interface),
    ("/ip/firewall/filter", "out-interface", Ref::Interface),
    ("/ip/firewall/nat", "in-interface", Ref::Interface),
    ("/ip/firewall/nat", "out-interface", Ref::Interface),
    ("/ip/firewall/mangle", "in-interface", Ref::Interface),
    ("/ip/firewall/mangle", "out-interface", Ref::Interface),
    ("/ipv6/firewall/filter", "in-interface-list", Ref::List),
    ("/ipv6/firewall/filter", "out-interface-list", Ref::List),
    ("/user", "group", Ref::Menu("/user/group")),
];

#[derive(Debug, Clone, Copy)]
enum Ref {
    Table,
    List,
    Interface,
    Pool,
    Menu(&'static str),
}

/// Properties RouterOS fills in on `add` when the request leaves them out (a subset: the ones
/// clients read back).
const ADD_DEFAULTS: &[(&str, &str, &str)] = &[
    ("/ip/route", "distance", "1"),
    ("/ip/route", "routing-table", "main"),
    ("/ip/route", "scope", "30"),
    ("/ip/route", "target-scope", "10"),
    ("/ip/firewall/filter", "action", "accept"),
    ("/ip/firewall/nat", "action", "accept"),
    ("/ip/firewall/mangle", "action", "accept"),
    ("/ip/firewall/raw", "action", "accept"),
    ("/ipv6/firewall/filter", "action", "accept"),
    ("/ipv6/firewall/raw", "action", "accept"),
    ("/routing/rule", "action", "lookup"),
];

/// Arguments `add` cannot do without (RouterOS: `missing value(s) of argument(s) ...`).
const REQUIRED: &[(&str, &[&str])] = &[
    ("/ip/firewall/filter", &["chain"]),
    ("/ip/firewall/nat", &["chain"]),
    ("/ip/firewall/mangle", &["chain"]),
    ("/ip/firewall/raw", &["chain"]),
    ("/ipv6/firewall/filter", &["chain"]),
    ("/ipv6/firewall/raw", &["chain"]),
    ("/ip/address", &["address", "interface"]),
    ("/ip/firewall/address-list", &["list", "address"]),
    ("/ipv6/firewall/address-list", &["list", "address"]),
    ("/routing/table", &["name"]),
    ("/interface/list", &["name"]),
    ("/interface/list/member", &["list", "interface"]),
    ("/interface/bridge/port", &["bridge", "interface"]),
    ("/ip/pool", &["name", "ranges"]),
    ("/user", &["name", "group"]),
    ("/user/group", &["name"]),
    ("/file", &["name"]),
    ("/system/script", &["name"]),
    ("/system/scheduler", &["name"]),
];

/// Combinations RouterOS keeps unique, and its refusal when `add` would repeat one.
const UNIQUE: &[(&str, &[&str], &str)] = &[
    (
        "/ip/firewall/address-list",
        &["list", "address"],
        "failure: already have such entry",
    ),
    (
        "/ipv6/firewall/address-list",
        &["list", "address"],
        "failure: already have such entry",
    ),
    (
        "/interface/bridge/port",
        &["interface"],
        "failure: device already added as bridge port",
    ),
];

/// Names that are built in and always valid for a reference kind.
fn builtin_names(r: Ref) -> &'static [&'static str] {
    match r {
        Ref::Table => &["main"],
        Ref::List => &["all", "none", "dynamic", "static"],
        Ref::Pool => &["static-only"],
        Ref::Interface | Ref::Menu(_) => &[],
    }
}

/// The emulated configuration plus runtime tables, keyed by menu path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    pub tables: BTreeMap<String, Table>,
}

/// Where `add` puts a new object in an ordered menu.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    End,
    Before(usize),
}

impl Store {
    pub(crate) fn table(&self, menu: &str) -> &[Object] {
        self.tables
            .get(menu)
            .map(|t| t.objects.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn table_mut(&mut self, menu: &str) -> &mut Table {
        self.tables.entry(menu.to_string()).or_default()
    }

    /// Adds without validation (seeding, test helpers for read-only menus such as connections).
    pub(crate) fn insert_raw(&mut self, menu: &str, props: BTreeMap<String, String>) -> String {
        let id = self.next_id(menu);
        let t = self.table_mut(menu);
        t.objects.push(Object {
            id: id.clone(),
            props,
        });
        id
    }

    /// A fresh `.id`; interfaces of every kind share one numbering, as in `/interface`.
    fn next_id(&mut self, menu: &str) -> String {
        let key = if INTERFACE_MENUS.iter().any(|(m, _)| *m == menu) {
            "/interface"
        } else {
            menu
        };
        self.table_mut(key).new_id()
    }

    /// The menu and position behind row `i` of the `/interface` view.
    fn interface_slot(&self, mut i: usize) -> Option<(&'static str, usize)> {
        for (m, _) in INTERFACE_MENUS {
            let n = self.table(m).len();
            if i < n {
                return Some((m, i));
            }
            i -= n;
        }
        None
    }

    /// Positions in the tables that hold them: `/interface` rows map to their kind's menu.
    fn slots(&self, menu: &str, idx: &[usize]) -> Result<Vec<(String, usize)>, RosError> {
        idx.iter()
            .map(|&i| {
                if menu == "/interface" {
                    self.interface_slot(i)
                        .map(|(m, j)| (m.to_string(), j))
                        .ok_or_else(RosError::no_such_item)
                } else {
                    Ok((menu.to_string(), i))
                }
            })
            .collect()
    }

    /// Sets the singleton object of a menu without validation (seeding).
    pub(crate) fn set_singleton_raw(&mut self, menu: &str, props: &[(&str, &str)]) {
        let t = self.table_mut(menu);
        if t.objects.is_empty() {
            t.objects.push(Object {
                id: String::new(),
                props: BTreeMap::new(),
            });
        }
        for (k, v) in props {
            t.objects[0].props.insert(k.to_string(), v.to_string());
        }
    }

    /// Names of every interface (ethernet, bridge, veth, pppoe, vlan).
    pub(crate) fn interface_names(&self) -> Vec<String> {
        INTERFACE_MENUS
            .iter()
            .flat_map(|(m, _)| self.table(m).iter())
            .filter_map(|o| o.props.get("name").cloned())
            .collect()
    }

    /// The derived `/interface` view: one row per interface of any kind.
    pub(crate) fn interface_view(&self) -> Vec<Object> {
        INTERFACE_MENUS
            .iter()
            .flat_map(|(m, ty)| {
                self.table(m).iter().map(move |o| {
                    let mut props = BTreeMap::new();
                    for k in ["name", "comment", "disabled", "mtu", "mac-address"] {
                        if let Some(v) = o.props.get(k) {
                            props.insert(k.to_string(), v.clone());
                        }
                    }
                    props.insert("type".into(), ty.to_string());
                    let running = o.props.get("disabled").is_none_or(|d| d == "false");
                    props.insert("running".into(), running.to_string());
                    props.insert("dynamic".into(), "false".into());
                    Object {
                        id: o.id.clone(),
                        props,
                    }
                })
            })
            .collect()
    }

    fn ref_exists(&self, r: Ref, name: &str) -> bool {
        if builtin_names(r).contains(&name) {
            return true;
        }
        let has = |menu: &str| {
            self.table(menu)
                .iter()
                .any(|o| o.props.get("name").is_some_and(|n| n == name))
        };
        match r {
            Ref::Table => has("/routing/table"),
            Ref::List => has("/interface/list"),
            Ref::Pool => has("/ip/pool"),
            Ref::Interface => self.interface_names().iter().any(|n| n == name),
            Ref::Menu(m) => has(m),
        }
    }

    fn check_refs(&self, menu: &str, args: &[(String, String)]) -> Result<(), RosError> {
        for (m, arg, r) in REFERENCES {
            if *m != menu {
                continue;
            }
            if let Some((_, v)) = args.iter().find(|(k, _)| k == arg) {
                let name = v.strip_prefix('!').unwrap_or(v);
                if !name.is_empty() && !self.ref_exists(*r, name) {
                    return Err(RosError::no_match(arg));
                }
            }
        }
        Ok(())
    }

    /// Finds an object by `.id` or (in named menus) by name.
    pub(crate) fn resolve(&self, spec: &MenuSpec, token: &str) -> Result<usize, RosError> {
        let view;
        let objs: &[Object] = if spec.path == "/interface" {
            view = self.interface_view();
            &view
        } else {
            self.table(&spec.path)
        };
        let token = token.trim();
        let pos = if token.starts_with('*') {
            objs.iter().position(|o| o.id.eq_ignore_ascii_case(token))
        } else {
            // Any menu whose objects have names accepts the name (`/ip service set telnet`).
            objs.iter()
                .position(|o| o.props.get("name").is_some_and(|n| n == token))
        };
        pos.ok_or_else(RosError::no_such_item)
    }

    /// Positions of many tokens (ids or names) at once: one pass over the table, not one per token.
    pub(crate) fn resolve_all(
        &self,
        spec: &MenuSpec,
        tokens: &[String],
    ) -> Result<Vec<usize>, RosError> {
        if tokens.len() < 8 || spec.path == "/interface" {
            return tokens.iter().map(|t| self.resolve(spec, t)).collect();
        }
        let objs = self.table(&spec.path);
        let mut by_key = std::collections::HashMap::with_capacity(objs.len() * 2);
        for (i, o) in objs.iter().enumerate().rev() {
            by_key.insert(o.id.to_ascii_uppercase(), i);
            if let Some(n) = o.props.get("name") {
                by_key.insert(format!("name:{n}"), i);
            }
        }
        tokens
            .iter()
            .map(|t| {
                let t = t.trim();
                let key = if t.starts_with('*') {
                    t.to_ascii_uppercase()
                } else {
                    format!("name:{t}")
                };
                by_key.get(&key).copied().ok_or_else(RosError::no_such_item)
            })
            .collect()
    }

    /// How many objects a menu shows.
    pub(crate) fn count(&self, spec: &MenuSpec) -> usize {
        if spec.path == "/interface" {
            self.interface_names().len()
        } else {
            self.table(&spec.path).len()
        }
    }

    /// The objects a menu shows (derived for `/interface`).
    pub(crate) fn objects_of(&self, spec: &MenuSpec) -> Vec<Object> {
        if spec.path == "/interface" {
            self.interface_view()
        } else {
            self.table(&spec.path).to_vec()
        }
    }

    /// `add`: validated against the table, references checked, defaults filled. Returns `.id`.
    pub(crate) fn add(
        &mut self,
        spec: &MenuSpec,
        args: Vec<(String, String)>,
        place: Place,
    ) -> Result<String, RosError> {
        let cmd = spec
            .cmd("add")
            .ok_or_else(|| RosError::no_such_cmd("add"))?;
        let args = validate(cmd, args)?;
        if let Some((_, req)) = REQUIRED.iter().find(|(m, _)| *m == spec.path) {
            let missing: Vec<&str> = req
                .iter()
                .copied()
                .filter(|r| !args.iter().any(|(k, v)| k == r && !v.is_empty()))
                .collect();
            if !missing.is_empty() {
                return Err(RosError::bad(format!(
                    "missing value(s) of argument(s) {}",
                    missing.join(", ")
                )));
            }
        }
        self.check_refs(&spec.path, &args)?;
        if spec.named()
            && let Some((_, name)) = args.iter().find(|(k, _)| k == "name")
            && self
                .table(&spec.path)
                .iter()
                .any(|o| o.props.get("name") == Some(name))
        {
            return Err(RosError::bad("failure: already have such name"));
        }
        for (m, keys, msg) in UNIQUE {
            if *m != spec.path {
                continue;
            }
            let value = |k: &str| args.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            let clash = self.table(&spec.path).iter().any(|o| {
                keys.iter()
                    .all(|k| value(k).is_some() && o.get(k) == value(k))
            });
            if clash {
                return Err(RosError::bad(*msg));
            }
        }
        let mut props = BTreeMap::new();
        for (m, k, v) in ADD_DEFAULTS {
            if *m == spec.path {
                props.insert(k.to_string(), v.to_string());
            }
        }
        if cmd.has("disabled") {
            props.insert("disabled".into(), "false".into());
        }
        for p in ["dynamic", "invalid"] {
            if spec.props.contains(p) && spec.path != "/interface/list" {
                props.insert(p.into(), "false".into());
            }
        }
        for (k, v) in args {
            if matches!(k.as_str(), "place-before" | "copy-from") {
                continue;
            }
            props.insert(k, v);
        }
        if spec.path == "/file" {
            let size = props.get("contents").map_or(0, String::len);
            props.insert("size".into(), size.to_string());
            props.entry("type".into()).or_insert_with(|| "file".into());
        }
        let id = self.next_id(&spec.path);
        let t = self.table_mut(&spec.path);
        let obj = Object {
            id: id.clone(),
            props,
        };
        match place {
            Place::Before(i) if i <= t.objects.len() => t.objects.insert(i, obj),
            _ => t.objects.push(obj),
        }
        Ok(id)
    }

    /// `set` on the objects at `idx` (collection) or on the singleton (`idx` empty).
    pub(crate) fn set(
        &mut self,
        spec: &MenuSpec,
        idx: &[usize],
        args: Vec<(String, String)>,
    ) -> Result<(), RosError> {
        let cmd = spec
            .cmd("set")
            .ok_or_else(|| RosError::no_such_cmd("set"))?;
        let args = validate(cmd, args)?;
        self.check_refs(&spec.path, &args)?;
        if spec.kind() == MenuKind::Singleton {
            let t = self.table_mut(&spec.path);
            if t.objects.is_empty() {
                t.objects.push(Object {
                    id: String::new(),
                    props: BTreeMap::new(),
                });
            }
            for (k, v) in args {
                t.objects[0].props.insert(k, v);
            }
            return Ok(());
        }
        if spec.named()
            && let Some((_, name)) = args.iter().find(|(k, _)| k == "name")
        {
            let clash = self
                .table(&spec.path)
                .iter()
                .enumerate()
                .any(|(i, o)| !idx.contains(&i) && o.props.get("name") == Some(name));
            if clash || idx.len() > 1 {
                return Err(RosError::bad("failure: already have such name"));
            }
        }
        for (menu, i) in self.slots(&spec.path, idx)? {
            let t = self.table_mut(&menu);
            let o = t.objects.get_mut(i).ok_or_else(RosError::no_such_item)?;
            for (k, v) in &args {
                o.props.insert(k.clone(), v.clone());
                if spec.path == "/file" && k == "contents" {
                    o.props.insert("size".into(), v.len().to_string());
                }
            }
        }
        Ok(())
    }

    /// `remove` of the objects at `idx`.
    pub(crate) fn remove(&mut self, spec: &MenuSpec, idx: &[usize]) -> Result<(), RosError> {
        if spec.cmd("remove").is_none() {
            return Err(RosError::no_such_cmd("remove"));
        }
        let gone: std::collections::HashSet<usize> = idx.iter().copied().collect();
        let t = self.table_mut(&spec.path);
        let mut i = 0;
        t.objects.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        Ok(())
    }

    /// `enable` / `disable`.
    pub(crate) fn set_disabled(
        &mut self,
        spec: &MenuSpec,
        idx: &[usize],
        disabled: bool,
    ) -> Result<(), RosError> {
        let name = if disabled { "disable" } else { "enable" };
        if spec.cmd(name).is_none() {
            return Err(RosError::no_such_cmd(name));
        }
        for (menu, i) in self.slots(&spec.path, idx)? {
            let t = self.table_mut(&menu);
            let o = t.objects.get_mut(i).ok_or_else(RosError::no_such_item)?;
            o.props.insert("disabled".into(), disabled.to_string());
        }
        Ok(())
    }

    /// `/certificate sign`: the certificate gets a key and a fingerprint (derived from its
    /// name, stable across runs) and becomes trusted.
    pub(crate) fn sign_certificate(&mut self, idx: &[usize]) {
        let t = self.table_mut("/certificate");
        for &i in idx {
            if let Some(o) = t.objects.get_mut(i) {
                let seed = o.props.get("name").cloned().unwrap_or_default();
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                let mut fp = String::new();
                for round in 0..4u8 {
                    for b in seed.bytes().chain([round]) {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                    fp.push_str(&format!("{h:016x}"));
                }
                o.props.insert("fingerprint".into(), fp);
                o.props.insert("private-key".into(), "true".into());
                o.props.insert("trusted".into(), "true".into());
                o.props.insert("invalid".into(), "false".into());
            }
        }
    }

    /// `move`: the objects at `idx` go before `dest` (or to the end).
    pub(crate) fn move_before(
        &mut self,
        spec: &MenuSpec,
        idx: &[usize],
        dest: Option<usize>,
    ) -> Result<(), RosError> {
        if spec.cmd("move").is_none() {
            return Err(RosError::no_such_cmd("move"));
        }
        let t = self.table_mut(&spec.path);
        let dest_id = dest.and_then(|d| t.objects.get(d)).map(|o| o.id.clone());
        let mut sorted = idx.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut moved = Vec::new();
        for i in sorted.into_iter().rev() {
            if i < t.objects.len() {
                moved.insert(0, t.objects.remove(i));
            }
        }
        let at = dest_id
            .and_then(|id| t.objects.iter().position(|o| o.id == id))
            .unwrap_or(t.objects.len());
        for (k, o) in moved.into_iter().enumerate() {
            t.objects.insert(at + k, o);
        }
        Ok(())
    }
}

/// Whether a value list is RouterOS's boolean (`yes|no`).
fn is_bool(vals: &[String]) -> bool {
    vals.iter().any(|v| v == "yes") && vals.iter().any(|v| v == "no")
}

/// Checks every argument against the command's table entry and normalises booleans to
/// `true`/`false` (the form RouterOS prints).
pub(crate) fn validate(
    cmd: &super::schema::CmdSpec,
    args: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, RosError> {
    let mut out = Vec::with_capacity(args.len());
    for (k, v) in args {
        let Some(kind) = cmd.args.get(&k) else {
            return Err(RosError::unknown_param(&k));
        };
        let v = match kind {
            ArgKind::Enum(vals) if is_bool(vals) => match v.as_str() {
                "yes" | "true" => "true".to_string(),
                "no" | "false" => "false".to_string(),
                "" => v,
                _ => return Err(RosError::no_match(&k)),
            },
            ArgKind::Enum(vals) => {
                check_enum(&k, vals, &v)?;
                v
            }
            ArgKind::Time if !v.is_empty() && !is_time(&v) => {
                return Err(RosError::bad(format!("invalid value for argument {k}")));
            }
            ArgKind::Ip if !v.is_empty() && !is_ip_list(&v) => {
                return Err(RosError::bad(format!("invalid value for argument {k}")));
            }
            ArgKind::Time | ArgKind::Ip | ArgKind::Any => v,
        };
        out.push((k, v));
    }
    Ok(out)
}

/// A RouterOS time value: `none`/`never`, plain seconds, or number+unit groups (`1h30m`, `500ms`).
pub(crate) fn is_time(v: &str) -> bool {
    if matches!(v, "none" | "never" | "auto" | "default") {
        return true;
    }
    let mut chars = v.chars().peekable();
    let mut groups = 0;
    while chars.peek().is_some() {
        let mut digits = 0;
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || *c == '.')
        {
            chars.next();
            digits += 1;
        }
        if digits == 0 {
            return false;
        }
        match chars.next() {
            None => return true,
            Some('m') if chars.peek() == Some(&'s') => {
                chars.next();
            }
            Some('s' | 'm' | 'h' | 'd' | 'w') => {}
            Some(_) => return false,
        }
        groups += 1;
    }
    groups > 0
}

/// Comma-separated IP addresses, each optionally with a prefix length.
fn is_ip_list(v: &str) -> bool {
    v.split(',').all(|part| {
        let (addr, len) = match part.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (part.trim(), None),
        };
        match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => len.is_none_or(|l| {
                l.parse::<u8>()
                    .is_ok_and(|n| n <= if ip.is_ipv4() { 32 } else { 128 })
                    || l.parse::<std::net::Ipv4Addr>().is_ok()
            }),
            Err(_) => false,
        }
    })
}

/// A value against a closed list: each comma part (without a `!` negation or a `:` suffix such
/// as PCC's `both-addresses:2/0`) must be listed; numbers and free text pass when the list has no
/// numeric values (RouterOS lists mix keywords and typed input, e.g. a time or `none`).
fn check_enum(arg: &str, vals: &[String], v: &str) -> Result<(), RosError> {
    let digits = vals
        .iter()
        .any(|x| x.starts_with(|c: char| c.is_ascii_digit()));
    for part in v.split(',') {
        let part = part.trim().trim_start_matches('!');
        let part = part.split(':').next().unwrap_or(part);
        if part.is_empty()
            || vals.iter().any(|x| x == part)
            || !(digits || part.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            continue;
        }
        return Err(RosError::no_match(arg));
    }
    Ok(())
}

/// Converts a JSON request value to RouterOS's string form (numbers and booleans accepted).
pub(crate) fn json_value_to_string(key: &str, v: &Value) -> Result<String, RosError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(RosError::bad(format!("invalid value for argument {key}"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Value::Object(_) => Err(RosError::bad(format!("invalid value for argument {key}"))),
    }
}

/// The schema-level menu spec, or the RouterOS error for the first unknown segment.
pub(crate) fn menu_spec(path: &str) -> Result<&'static MenuSpec, RosError> {
    let s = Schema::get();
    s.menu(path).ok_or_else(|| {
        let seg = path.rsplit('/').next().unwrap_or(path);
        RosError::no_such_dir(seg)
    })
}
