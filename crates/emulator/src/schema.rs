//! The RouterOS 7.20 command table the emulator enforces: menus, their commands, each command's
//! argument names and closed value lists, each menu's properties. Parsed once from the committed,
//! generated `schema.txt` (tools/gen-schema-table.py); this module never edits it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// The embedded table (generated; see the script for its format).
const TABLE: &str = include_str!("schema.txt");

/// What an argument accepts, as far as the command tree says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgKind {
    /// Anything (the tree gives no type, or a free-form one).
    Any,
    /// One of these words (a comma list of them where RouterOS allows lists).
    Enum(Vec<String>),
    /// A time interval (`30s`, `1h5m`, `500ms`, plain seconds).
    Time,
    /// IP addresses, optionally with `/M`, comma separated.
    Ip,
}

/// One command of a menu: its arguments and what each accepts.
#[derive(Debug, Clone, Default)]
pub struct CmdSpec {
    pub args: BTreeMap<String, ArgKind>,
}

impl CmdSpec {
    pub fn has(&self, arg: &str) -> bool {
        self.args.contains_key(arg)
    }
}

/// How a menu holds its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuKind {
    /// A list of objects with `.id` (has `find`).
    Collection,
    /// One unnamed object set without an id (`/ip/dns`, `/system/identity`).
    Singleton,
    /// Only commands (the root: `/execute`, `/import`, `/ping`).
    Commands,
}

/// A menu of the table.
#[derive(Debug, Clone)]
pub struct MenuSpec {
    /// `/ip/firewall/filter`; the root is `/`.
    pub path: String,
    pub props: BTreeSet<String>,
    pub cmds: BTreeMap<String, CmdSpec>,
}

impl MenuSpec {
    pub fn kind(&self) -> MenuKind {
        if self.cmds.contains_key("find") {
            MenuKind::Collection
        } else if self.cmds.contains_key("print") {
            MenuKind::Singleton
        } else {
            MenuKind::Commands
        }
    }

    /// Whether rule order matters (`add place-before=` exists: firewall, mangle, routing rules).
    pub fn ordered(&self) -> bool {
        self.cmd("add").is_some_and(|c| c.has("place-before"))
    }

    /// Whether objects are addressed by a unique `name` as well as by `.id`.
    pub fn named(&self) -> bool {
        self.cmd("add").is_some_and(|c| c.has("name"))
            || (self.kind() == MenuKind::Collection
                && self.cmd("set").is_some_and(|c| c.has("name")))
    }

    pub fn cmd(&self, name: &str) -> Option<&CmdSpec> {
        self.cmds.get(name)
    }
}

/// The whole table.
#[derive(Debug)]
pub struct Schema {
    menus: BTreeMap<String, MenuSpec>,
}

impl Schema {
    /// The embedded table.
    pub fn get() -> &'static Schema {
        static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
            // Invariant: schema.txt is generated and committed; `schema_table_parses` tests it.
            Schema::parse(TABLE).expect("the committed schema.txt parses")
        });
        &SCHEMA
    }

    pub fn parse(text: &str) -> Result<Schema, String> {
        let mut menus = BTreeMap::new();
        let mut cur: Option<MenuSpec> = None;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut words = line.split(' ');
            match words.next() {
                Some("menu") => {
                    if let Some(m) = cur.take() {
                        menus.insert(m.path.clone(), m);
                    }
                    let path = words
                        .next()
                        .ok_or(format!("line {}: menu without path", n + 1))?;
                    cur = Some(MenuSpec {
                        path: path.to_string(),
                        props: BTreeSet::new(),
                        cmds: BTreeMap::new(),
                    });
                }
                Some("props") => {
                    let m = cur
                        .as_mut()
                        .ok_or(format!("line {}: props outside a menu", n + 1))?;
                    m.props.extend(words.map(str::to_string));
                }
                Some("cmd") => {
                    let m = cur
                        .as_mut()
                        .ok_or(format!("line {}: cmd outside a menu", n + 1))?;
                    let name = words
                        .next()
                        .ok_or(format!("line {}: cmd without name", n + 1))?;
                    let mut spec = CmdSpec::default();
                    for w in words {
                        let (name, kind) = if let Some((a, vals)) = w.split_once('=') {
                            (
                                a,
                                ArgKind::Enum(vals.split('|').map(str::to_string).collect()),
                            )
                        } else if let Some((a, ty)) = w.split_once(':') {
                            let kind = match ty {
                                "time" => ArgKind::Time,
                                "ip4" => ArgKind::Ip,
                                _ => return Err(format!("line {}: unknown type {ty}", n + 1)),
                            };
                            (a, kind)
                        } else {
                            (w, ArgKind::Any)
                        };
                        spec.args.insert(name.to_string(), kind);
                    }
                    m.cmds.insert(name.to_string(), spec);
                }
                _ => return Err(format!("line {}: unexpected {line:?}", n + 1)),
            }
        }
        if let Some(m) = cur.take() {
            menus.insert(m.path.clone(), m);
        }
        Ok(Schema { menus })
    }

    pub fn menu(&self, path: &str) -> Option<&MenuSpec> {
        self.menus.get(path)
    }

    pub fn root(&self) -> &MenuSpec {
        static EMPTY: LazyLock<MenuSpec> = LazyLock::new(|| MenuSpec {
            path: "/".into(),
            props: BTreeSet::new(),
            cmds: BTreeMap::new(),
        });
        self.menus.get("/").unwrap_or(&EMPTY)
    }

    /// Whether `path` is a menu of the table or a directory on the way to one (`/ip/firewall`).
    pub fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.menus.contains_key(path) || self.menus.keys().any(|k| k.starts_with(&prefix))
    }

    pub fn menus(&self) -> impl Iterator<Item = &MenuSpec> {
        self.menus.values()
    }
}

/// Joins a menu path and a child name.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_table_parses() {
        let s = Schema::get();
        let filter = s.menu("/ip/firewall/filter").expect("filter menu");
        assert_eq!(filter.kind(), MenuKind::Collection);
        assert!(filter.ordered());
        let action = filter.cmd("add").and_then(|c| c.args.get("action"));
        assert!(matches!(action, Some(ArgKind::Enum(v)) if v.contains(&"drop".to_string())));
        let lease = s.menu("/ip/dhcp-server").and_then(|m| m.cmd("add"));
        assert_eq!(
            lease.and_then(|c| c.args.get("lease-time")),
            Some(&ArgKind::Time)
        );
        assert_eq!(
            s.menu("/ip/dns").map(MenuSpec::kind),
            Some(MenuKind::Singleton)
        );
        assert_eq!(s.root().kind(), MenuKind::Commands);
        assert!(s.root().cmd("execute").is_some_and(|c| c.has("as-string")));
        assert!(s.is_dir("/ip/firewall"));
        assert!(!s.is_dir("/ip/nothing"));
        assert!(s.menu("/routing/table").is_some_and(MenuSpec::named));
        assert!(!s.menu("/ip/route").is_some_and(MenuSpec::named));
    }
}
