//! Which WAN a new connection from the LAN leaves by: `/ip/firewall/mangle` chain=prerouting
//! walked in print order as RouterOS walks it (connection and routing marks, PCC buckets,
//! `return` bypasses), then the route lookup in the table the routing mark names (or `main`),
//! with `/routing/rule` entries when they are simple. Like the filter oracle (`firewall.rs`) it
//! refuses what it does not model with an `Err` naming it, rather than guess: a test cannot pass
//! on a rule, route or case the oracle skipped.
//!
//! # PCC: only the division is RouterOS's
//!
//! `per-connection-classifier=<fields>:<denominator>/<remainder>` matches when a hash of the
//! selected fields, divided by the denominator (the manual: 1..4294967295), leaves the remainder.
//! RouterOS's hash function is not public, so this oracle hashes the same fields with its own
//! deterministic function (FNV-1a, then a 64-bit finalizer). The same flow always lands in the
//! same bucket, and distinct flows spread evenly, but *which* bucket one flow lands in is this
//! oracle's, not RouterOS's: tests must assert ratios over many flows, never one flow's bucket.
//! A port field of a protocol without ports (ICMP) hashes as port 0.
//!
//! # A marked table without an active route
//!
//! What RouterOS v7 does with a packet whose routing mark names a table that has no active route
//! to the destination (fall back to `main`, or drop) is not stated by the manual pages this
//! oracle follows: "Policy Routing" (<https://help.mikrotik.com/docs/x/RACTAw>) and "Mangle"
//! (<https://help.mikrotik.com/docs/x/A4DFCQ>) describe marking and tables but not that case. The
//! manual's routing rule page (<https://help.mikrotik.com/docs/spaces/ROS/pages/331612232>)
//! says only `lookup` "perform a lookup in routing tables" and `lookup-only-in-table` "perform
//! lookup only in the specified routing table". So: `lookup-only-in-table` without a route is
//! unreachable (the lookup is confined to that table); a routing mark's table, or a `lookup`
//! rule's table, without a route is an `Err` (the manual is silent on the fallback).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Emulator;
use super::firewall::{parse_net, port_list_holds};
use super::store::Object;

/// A new connection from inside: its first packet, no conntrack entry yet (so no connection
/// mark and no routing mark before mangle runs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The layer-3 interface it arrives on (a bridge port's bridge, see
    /// [`Emulator::l3_interface`]).
    pub in_interface: String,
    pub src: Ipv4Addr,
    pub src_port: Option<u16>,
    pub dst: Ipv4Addr,
    pub dst_port: Option<u16>,
    /// `tcp`, `udp` or `icmp`.
    pub protocol: &'static str,
}

impl Flow {
    /// A new TCP connection.
    pub fn tcp(
        in_interface: &str,
        src: Ipv4Addr,
        src_port: u16,
        dst: Ipv4Addr,
        dst_port: u16,
    ) -> Self {
        Flow {
            in_interface: in_interface.to_string(),
            src,
            src_port: Some(src_port),
            dst,
            dst_port: Some(dst_port),
            protocol: "tcp",
        }
    }

    /// A new UDP connection.
    pub fn udp(
        in_interface: &str,
        src: Ipv4Addr,
        src_port: u16,
        dst: Ipv4Addr,
        dst_port: u16,
    ) -> Self {
        Flow {
            protocol: "udp",
            ..Flow::tcp(in_interface, src, src_port, dst, dst_port)
        }
    }

    /// A new ICMP "connection" (an echo request): no ports.
    pub fn icmp(in_interface: &str, src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Flow {
            in_interface: in_interface.to_string(),
            src,
            src_port: None,
            dst,
            dst_port: None,
            protocol: "icmp",
        }
    }
}

/// A flow that has a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The connection mark mangle left on the connection (`None`: no-mark).
    pub connection_mark: Option<String>,
    /// The routing mark mangle left on the packet.
    pub routing_mark: Option<String>,
    /// The table looked up: the routing mark, a routing rule's table, or `main`.
    pub table: String,
    /// The chosen route's comment (`None` for a connected route or an uncommented one).
    pub route_comment: Option<String>,
    /// The chosen route's gateway (an interface for a connected route).
    pub gateway: Option<String>,
    /// The comment of the mangle rule that set the routing mark.
    pub rule_comment: Option<String>,
}

/// The routing decision for a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    Routed(Routed),
    /// No route: `main` (or a `lookup-only-in-table` rule's table) has no active route to the
    /// destination, or a routing rule drops it.
    Unreachable {
        connection_mark: Option<String>,
        routing_mark: Option<String>,
        table: String,
        rule_comment: Option<String>,
        reason: String,
    },
}

impl RouteDecision {
    /// The route, when there is one.
    pub fn routed(&self) -> Option<&Routed> {
        match self {
            RouteDecision::Routed(r) => Some(r),
            RouteDecision::Unreachable { .. } => None,
        }
    }

    /// The table looked up.
    pub fn table(&self) -> &str {
        match self {
            RouteDecision::Routed(r) => &r.table,
            RouteDecision::Unreachable { table, .. } => table,
        }
    }
}

/// The marks on the connection and packet while mangle runs.
#[derive(Debug, Default)]
struct Marks {
    connection: Option<String>,
    routing: Option<String>,
    /// The comment of the rule that set `routing`.
    routing_rule: Option<String>,
    /// `add-src-to-address-list` / `add-dst-to-address-list` the walk passed: (list, address,
    /// timeout), applied by [`Emulator::open_connection`].
    remembered: Vec<(String, Ipv4Addr, Option<String>)>,
}

/// How a walk of one chain ended.
enum End {
    /// It reached the end of the chain, or a `return`: the caller's chain goes on after its
    /// `jump` (in the built-in chain: mangle is done).
    Returned,
    /// `accept` or `passthrough=no`: mangle is done for this packet.
    Stopped,
}

/// Nested `jump`s deeper than this are refused (a loop RouterOS itself would refuse to add).
const MAX_JUMP_DEPTH: usize = 16;

/// The comment of a rule or route, for messages.
fn comment(o: &Object) -> &str {
    o.get("comment").unwrap_or("")
}

fn is_true(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "yes"))
}

impl Emulator {
    /// The routing decision for a new connection from inside; an error names a matcher, action,
    /// route property or case the oracle does not model.
    pub fn route_new_connection(&self, flow: &Flow) -> Result<RouteDecision, String> {
        let rules = self.objects("/ip/firewall/mangle");
        let mut marks = Marks::default();
        self.walk(&rules, "prerouting", flow, &mut marks, 0)?;
        self.route_lookup(flow, marks)
    }

    /// [`Emulator::route_new_connection`], and what its first packet leaves behind: the
    /// addresses `add-src-to-address-list` / `add-dst-to-address-list` rules added, as dynamic
    /// `/ip/firewall/address-list` entries with the rule's timeout (an address already on the
    /// list is not added twice; whether RouterOS restarts its timeout is not modelled).
    pub fn open_connection(&self, flow: &Flow) -> Result<RouteDecision, String> {
        let rules = self.objects("/ip/firewall/mangle");
        let mut marks = Marks::default();
        self.walk(&rules, "prerouting", flow, &mut marks, 0)?;
        for (list, address, timeout) in std::mem::take(&mut marks.remembered) {
            let a = address.to_string();
            let present = self.objects("/ip/firewall/address-list").iter().any(|e| {
                e.get("list") == Some(list.as_str())
                    && e.get("address")
                        .is_some_and(|x| x == a || x == format!("{a}/32"))
            });
            if !present {
                let mut props = vec![
                    ("list", list.as_str()),
                    ("address", a.as_str()),
                    ("dynamic", "true"),
                ];
                if let Some(t) = &timeout {
                    props.push(("timeout", t.as_str()));
                }
                self.add_object("/ip/firewall/address-list", &props)
                    .map_err(|e| {
                        format!("mangle oracle: cannot add to address list {list}: {e:?}")
                    })?;
            }
        }
        self.route_lookup(flow, marks)
    }

    fn walk(
        &self,
        rules: &[Object],
        chain: &str,
        flow: &Flow,
        marks: &mut Marks,
        depth: usize,
    ) -> Result<End, String> {
        for rule in rules
            .iter()
            .filter(|r| r.get("chain") == Some(chain) && !is_true(r.get("disabled")))
        {
            if !self.mangle_matches(rule, flow, marks)? {
                continue;
            }
            let passthrough = rule.get("passthrough").is_none_or(|p| is_true(Some(p)));
            let continues = if passthrough {
                None
            } else {
                Some(End::Stopped)
            };
            match rule.get("action").unwrap_or("accept") {
                "mark-connection" => {
                    let mark = rule.get("new-connection-mark").ok_or_else(|| {
                        format!(
                            "mangle oracle: mark-connection without new-connection-mark ({})",
                            comment(rule)
                        )
                    })?;
                    marks.connection = Some(mark.to_string());
                    if let Some(end) = continues {
                        return Ok(end);
                    }
                }
                "mark-routing" => {
                    let mark = rule.get("new-routing-mark").ok_or_else(|| {
                        format!(
                            "mangle oracle: mark-routing without new-routing-mark ({})",
                            comment(rule)
                        )
                    })?;
                    marks.routing = Some(mark.to_string());
                    marks.routing_rule = rule.get("comment").map(str::to_string);
                    if let Some(end) = continues {
                        return Ok(end);
                    }
                }
                "add-src-to-address-list" | "add-dst-to-address-list" => {
                    let list = rule.get("address-list").ok_or_else(|| {
                        format!(
                            "mangle oracle: {} without address-list ({})",
                            rule.get("action").unwrap_or(""),
                            comment(rule)
                        )
                    })?;
                    let address = if rule.get("action") == Some("add-src-to-address-list") {
                        flow.src
                    } else {
                        flow.dst
                    };
                    marks.remembered.push((
                        list.to_string(),
                        address,
                        rule.get("address-list-timeout").map(str::to_string),
                    ));
                }
                "return" => return Ok(End::Returned),
                "accept" => return Ok(End::Stopped),
                "jump" => {
                    let target = rule.get("jump-target").ok_or_else(|| {
                        format!(
                            "mangle oracle: jump without jump-target ({})",
                            comment(rule)
                        )
                    })?;
                    if depth >= MAX_JUMP_DEPTH {
                        return Err(format!(
                            "mangle oracle: jumps nested deeper than {MAX_JUMP_DEPTH} ({})",
                            comment(rule)
                        ));
                    }
                    if let End::Stopped = self.walk(rules, target, flow, marks, depth + 1)? {
                        return Ok(End::Stopped);
                    }
                }
                // Neither changes a mark nor ends the chain.
                "change-mss" | "log" | "passthrough" => {}
                other => {
                    return Err(format!(
                        "mangle oracle: action {other} is not modelled ({})",
                        comment(rule)
                    ));
                }
            }
        }
        Ok(End::Returned)
    }

    fn mangle_matches(&self, rule: &Object, flow: &Flow, marks: &Marks) -> Result<bool, String> {
        for (key, value) in &rule.props {
            let (negated, v) = match value.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, value.as_str()),
            };
            let hit = match key.as_str() {
                "chain"
                | "action"
                | "comment"
                | "disabled"
                | "log"
                | "log-prefix"
                | "dynamic"
                | "invalid"
                | "bytes"
                | "packets"
                | "passthrough"
                | "new-connection-mark"
                | "new-routing-mark"
                | "jump-target"
                | "address-list"
                | "address-list-timeout"
                | "new-mss" => continue,
                // A flow is the first packet of a new connection.
                "connection-state" => v.split(',').any(|s| s == "new"),
                "connection-mark" => match &marks.connection {
                    None => v == "no-mark",
                    Some(m) => v == m,
                },
                "routing-mark" => match &marks.routing {
                    Some(m) => v == m,
                    None if v == "main" || v == "no-mark" => {
                        return Err(format!(
                            "mangle oracle: routing-mark={v} on an unmarked packet is not modelled ({})",
                            comment(rule)
                        ));
                    }
                    None => false,
                },
                "in-interface" => v == flow.in_interface,
                "in-interface-list" => self.list_holds(v, &flow.in_interface)?,
                "protocol" => v == flow.protocol,
                "src-port" => flow
                    .src_port
                    .map(|p| port_list_holds(v, p))
                    .transpose()?
                    .unwrap_or(false),
                "dst-port" => flow
                    .dst_port
                    .map(|p| port_list_holds(v, p))
                    .transpose()?
                    .unwrap_or(false),
                "src-address" => parse_net(v)?.contains(&flow.src),
                "dst-address" => parse_net(v)?.contains(&flow.dst),
                "src-address-list" => self.address_list_holds(v, flow.src)?,
                "dst-address-list" => self.address_list_holds(v, flow.dst)?,
                "dst-address-type" => match v {
                    "local" => self.is_router_address(flow.dst)?,
                    other => {
                        return Err(format!(
                            "mangle oracle: dst-address-type={other} is not modelled ({})",
                            comment(rule)
                        ));
                    }
                },
                "per-connection-classifier" => pcc_matches(v, flow)?,
                other => {
                    return Err(format!(
                        "mangle oracle: matcher {other}={value} is not modelled ({})",
                        comment(rule)
                    ));
                }
            };
            if hit == negated {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `a` is one of the router's own addresses (`/ip/address`, enabled).
    fn is_router_address(&self, a: Ipv4Addr) -> Result<bool, String> {
        for entry in self.addresses()? {
            if entry.addr() == a {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The enabled `/ip/address` entries (address with its prefix).
    fn addresses(&self) -> Result<Vec<Ipv4Net>, String> {
        self.objects("/ip/address")
            .iter()
            .filter(|a| !is_true(a.get("disabled")))
            .map(|a| {
                a.get("address")
                    .ok_or_else(|| "mangle oracle: an /ip/address without address".to_string())
                    .and_then(parse_net)
            })
            .collect()
    }

    fn route_lookup(&self, flow: &Flow, marks: Marks) -> Result<RouteDecision, String> {
        let rule = self.routing_rule(flow, &marks)?;
        let unreachable =
            |marks: Marks, table: String, reason: String| RouteDecision::Unreachable {
                connection_mark: marks.connection,
                routing_mark: marks.routing,
                table,
                rule_comment: marks.routing_rule,
                reason,
            };
        let (table, only_in_table) = match (&marks.routing, rule) {
            (Some(mark), _) => (mark.clone(), false),
            (None, Some(RuleAction::Lookup { table, only })) => (table, only),
            (None, Some(RuleAction::Drop(c))) => {
                return Ok(unreachable(
                    marks,
                    "main".into(),
                    format!("routing rule {c}"),
                ));
            }
            (None, None) => ("main".to_string(), true),
        };
        self.check_table(&table)?;
        match self.best_route(&table, flow.dst)? {
            Some((route_comment, Some(g))) if g == BLACKHOLE => {
                let reason = format!(
                    "blackhole route in table {table} ({})",
                    route_comment.as_deref().unwrap_or("")
                );
                Ok(unreachable(marks, table, reason))
            }
            Some((route_comment, gateway)) => Ok(RouteDecision::Routed(Routed {
                connection_mark: marks.connection,
                routing_mark: marks.routing,
                table,
                route_comment,
                gateway,
                rule_comment: marks.routing_rule,
            })),
            None if only_in_table => {
                let reason = format!("no active route to {} in table {table}", flow.dst);
                Ok(unreachable(marks, table, reason))
            }
            None => Err(format!(
                "mangle oracle: table {table} has no active route to {}; whether RouterOS falls back \
                 to main is not in the manual, so it is not modelled",
                flow.dst
            )),
        }
    }

    /// The first enabled `/routing/rule` that matches the flow, when the rules are simple
    /// (`src-address`, `dst-address`, `interface`; `lookup`, `lookup-only-in-table`, `drop`,
    /// `unreachable`).
    fn routing_rule(&self, flow: &Flow, marks: &Marks) -> Result<Option<RuleAction>, String> {
        for rule in self.objects("/routing/rule") {
            if is_true(rule.get("disabled")) {
                continue;
            }
            let mut hit = true;
            for (key, v) in &rule.props {
                let matched = match key.as_str() {
                    "action" | "table" | "comment" | "disabled" | "dynamic" | "invalid"
                    | "inactive" => continue,
                    "chain" if v == "user" => continue,
                    "src-address" => parse_net(v)?.contains(&flow.src),
                    "dst-address" => parse_net(v)?.contains(&flow.dst),
                    "interface" => *v == flow.in_interface,
                    other => {
                        return Err(format!(
                            "mangle oracle: routing rule {other}={v} is not modelled ({})",
                            comment(&rule)
                        ));
                    }
                };
                hit &= matched;
            }
            if !hit {
                continue;
            }
            if let Some(mark) = &marks.routing {
                return Err(format!(
                    "mangle oracle: routing rule ({}) matches a packet with routing mark {mark}: \
                     the order of the user rules and the mangle decision is not modelled",
                    comment(&rule)
                ));
            }
            let table = || {
                rule.get("table").map(str::to_string).ok_or_else(|| {
                    format!(
                        "mangle oracle: routing rule without table ({})",
                        comment(&rule)
                    )
                })
            };
            return match rule.get("action").unwrap_or("lookup") {
                "lookup" => Ok(Some(RuleAction::Lookup {
                    table: table()?,
                    only: false,
                })),
                "lookup-only-in-table" => Ok(Some(RuleAction::Lookup {
                    table: table()?,
                    only: true,
                })),
                "drop" | "unreachable" => Ok(Some(RuleAction::Drop(comment(&rule).to_string()))),
                other => Err(format!(
                    "mangle oracle: routing rule action {other} is not modelled ({})",
                    comment(&rule)
                )),
            };
        }
        Ok(None)
    }

    /// A table other than `main` must exist in `/routing/table`, enabled, with `fib`.
    fn check_table(&self, table: &str) -> Result<(), String> {
        if table == "main" {
            return Ok(());
        }
        let tables = self.objects("/routing/table");
        let t = tables
            .iter()
            .find(|t| t.get("name") == Some(table))
            .ok_or_else(|| format!("mangle oracle: no routing table {table}"))?;
        if is_true(t.get("disabled")) {
            return Err(format!("mangle oracle: routing table {table} is disabled"));
        }
        if t.get("fib").is_none_or(|f| f == "false" || f == "no") {
            return Err(format!(
                "mangle oracle: routing table {table} without fib is not modelled"
            ));
        }
        Ok(())
    }

    /// The active route of `table` to `dst`: longest prefix, then lowest distance; in `main` the
    /// connected networks of `/ip/address` too (distance 0). `(comment, gateway)`.
    fn best_route(&self, table: &str, dst: Ipv4Addr) -> Result<Option<ChosenRoute>, String> {
        let addresses = self.addresses()?;
        let interfaces = self.objects("/interface");
        // (prefix length, distance, comment, gateway)
        let mut candidates: Vec<(u8, u32, Option<String>, Option<String>)> = Vec::new();
        if table == "main" {
            for a in self.objects("/ip/address") {
                if is_true(a.get("disabled")) {
                    continue;
                }
                let net = parse_net(a.get("address").unwrap_or(""))?.trunc();
                if net.contains(&dst) {
                    let iface = a.get("interface").map(str::to_string);
                    candidates.push((net.prefix_len(), 0, None, iface));
                }
            }
        }
        for route in self.objects("/ip/route") {
            if route.get("routing-table").unwrap_or("main") != table
                || is_true(route.get("disabled"))
            {
                continue;
            }
            for (key, v) in &route.props {
                // A flag that is not set (`invalid`, `blackhole`, `ecmp`, ...) changes nothing.
                if v == "false" {
                    continue;
                }
                match key.as_str() {
                    "dst-address"
                    | "gateway"
                    | "distance"
                    | "routing-table"
                    | "comment"
                    | "disabled"
                    | "dynamic"
                    | "static"
                    | "active"
                    | "inactive"
                    | "scope"
                    | "target-scope"
                    | "pref-src"
                    | "suppress-hw-offload"
                    | "immediate-gw" => {}
                    "check-gateway" if v == "none" => {}
                    "blackhole" => {}
                    other => {
                        return Err(format!(
                            "mangle oracle: route property {other}={v} is not modelled ({})",
                            comment(&route)
                        ));
                    }
                }
            }
            let net = parse_net(route.get("dst-address").ok_or_else(|| {
                format!(
                    "mangle oracle: route without dst-address ({})",
                    comment(&route)
                )
            })?)?;
            if !net.contains(&dst) {
                continue;
            }
            let blackhole = is_true(route.get("blackhole")) || route.get("blackhole") == Some("");
            let gateway = match route.get("gateway") {
                None if blackhole => BLACKHOLE,
                Some(_) if blackhole => {
                    return Err(format!(
                        "mangle oracle: a blackhole route with a gateway ({})",
                        comment(&route)
                    ));
                }
                Some(g) => g,
                None => {
                    return Err(format!(
                        "mangle oracle: route without gateway ({})",
                        comment(&route)
                    ));
                }
            };
            if !blackhole && !gateway_active(gateway, &addresses, &interfaces)? {
                continue;
            }
            let distance = match route.get("distance") {
                None => 1,
                Some(d) => d
                    .parse()
                    .map_err(|_| format!("mangle oracle: distance {d:?} ({})", comment(&route)))?,
            };
            candidates.push((
                net.prefix_len(),
                distance,
                route.get("comment").map(str::to_string),
                Some(gateway.to_string()),
            ));
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        if let [best, second, ..] = candidates.as_slice()
            && (best.0, best.1) == (second.0, second.1)
        {
            return Err(format!(
                "mangle oracle: ECMP in table {table} ({:?} and {:?}) is not modelled",
                best.2, second.2
            ));
        }
        Ok(candidates.into_iter().next().map(|(_, _, c, g)| (c, g)))
    }
}

/// The gateway a blackhole route is chosen with (it has none): its packets are dropped.
const BLACKHOLE: &str = "<blackhole>";

/// A chosen route: (comment, gateway).
type ChosenRoute = (Option<String>, Option<String>);

/// What a matching routing rule does.
enum RuleAction {
    Lookup { table: String, only: bool },
    Drop(String),
}

/// Whether a gateway resolves: an address inside a connected network of the router, or an
/// existing, enabled interface. `addr%interface` and `addr@table` are not modelled.
fn gateway_active(
    gateway: &str,
    addresses: &[Ipv4Net],
    interfaces: &[Object],
) -> Result<bool, String> {
    if gateway.contains('%') || gateway.contains('@') || gateway.contains(',') {
        return Err(format!(
            "mangle oracle: gateway {gateway:?} is not modelled"
        ));
    }
    if let Ok(ip) = gateway.parse::<Ipv4Addr>() {
        return Ok(addresses.iter().any(|n| n.trunc().contains(&ip)));
    }
    Ok(interfaces
        .iter()
        .any(|i| i.get("name") == Some(gateway) && !is_true(i.get("disabled"))))
}

/// `per-connection-classifier=<fields>:<denominator>/<remainder>`.
fn pcc_matches(spec: &str, flow: &Flow) -> Result<bool, String> {
    let bad = || format!("mangle oracle: per-connection-classifier {spec:?} is not modelled");
    let (fields, division) = spec.split_once(':').ok_or_else(bad)?;
    let (den, rem) = division.split_once('/').ok_or_else(bad)?;
    let den: u32 = den.parse().map_err(|_| bad())?;
    let rem: u32 = rem.parse().map_err(|_| bad())?;
    if den == 0 || rem >= den {
        return Err(bad());
    }
    Ok(pcc_hash(fields, flow)? % u64::from(den) == u64::from(rem))
}

/// This oracle's hash of the PCC fields of a flow (not RouterOS's; see the module docs).
fn pcc_hash(fields: &str, flow: &Flow) -> Result<u64, String> {
    let src = flow.src.octets();
    let dst = flow.dst.octets();
    let sport = flow.src_port.unwrap_or(0).to_be_bytes();
    let dport = flow.dst_port.unwrap_or(0).to_be_bytes();
    let parts: Vec<&[u8]> = match fields {
        "src-address" => vec![&src],
        "dst-address" => vec![&dst],
        "both-addresses" => vec![&src, &dst],
        "src-port" => vec![&sport],
        "dst-port" => vec![&dport],
        "both-ports" => vec![&sport, &dport],
        "src-address-and-port" => vec![&src, &sport],
        "dst-address-and-port" => vec![&dst, &dport],
        "both-addresses-and-ports" => vec![&src, &dst, &sport, &dport],
        other => {
            return Err(format!(
                "mangle oracle: PCC fields {other:?} are not modelled"
            ));
        }
    };
    // FNV-1a over the selected fields (the field set goes in too, so `src-address` and
    // `dst-address` of a symmetric flow do not collide by construction) ...
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in fields.bytes().chain(parts.into_iter().flatten().copied()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // ... then the splitmix64 finalizer, so small moduli see well-mixed low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
/interface bridge add name=bridge-lan
/ip address add address=192.168.100.1/24 interface=bridge-lan
/ip address add address=198.18.1.2/30 interface=ether1
/ip address add address=198.18.2.2/30 interface=ether2
/ip address add address=198.18.3.2/30 interface=ether3
/interface list add name=wan
/interface list member add list=wan interface=ether1
/interface list member add list=wan interface=ether2
/interface list member add list=wan interface=ether3
/routing table add name=to-a fib
/routing table add name=to-b fib
/routing table add name=to-c fib
/ip route add dst-address=0.0.0.0/0 gateway=198.18.1.1 distance=1 comment=a-main
/ip route add dst-address=0.0.0.0/0 gateway=198.18.1.1 routing-table=to-a comment=a-table
/ip route add dst-address=0.0.0.0/0 gateway=198.18.2.1 routing-table=to-b comment=b-table
/ip route add dst-address=0.0.0.0/0 gateway=198.18.3.1 routing-table=to-c comment=c-table
/ip firewall address-list add list=local address=10.0.0.0/8
"#;

    fn pcc(k: u32) -> String {
        let wan = ["a", "b", "c"][k as usize];
        format!(
            "/ip firewall mangle add chain=prerouting in-interface-list=!wan connection-state=new connection-mark=no-mark per-connection-classifier=both-addresses-and-ports:3/{k} action=mark-connection new-connection-mark=conn-{wan} passthrough=yes comment=pcc-{wan}\n"
        )
    }

    fn route_marks() -> String {
        ["a", "b", "c"]
            .iter()
            .map(|w| format!("/ip firewall mangle add chain=prerouting connection-mark=conn-{w} action=mark-routing new-routing-mark=to-{w} passthrough=no comment=rm-{w}\n"))
            .collect()
    }

    fn router(extra: &str) -> Emulator {
        let emu = Emulator::default();
        emu.import_script(BASE).expect("base");
        emu.import_script(extra).expect("rules");
        emu
    }

    fn three_buckets() -> Emulator {
        let rules = format!(
            "/ip firewall mangle add chain=prerouting dst-address-list=local action=return comment=bypass\n{}{}{}{}",
            pcc(0),
            pcc(1),
            pcc(2),
            route_marks()
        );
        router(&rules)
    }

    fn flows(n: u32) -> impl Iterator<Item = Flow> {
        (0..n).map(|i| {
            Flow::tcp(
                "bridge-lan",
                Ipv4Addr::new(192, 168, 100, 10 + (i % 200) as u8),
                40000 + (i / 200) as u16,
                Ipv4Addr::new(198, 19, (i % 250) as u8, (i / 250 % 250) as u8 + 1),
                443,
            )
        })
    }

    #[test]
    fn pcc_three_buckets_split_evenly() {
        let emu = three_buckets();
        let mut counts = std::collections::BTreeMap::new();
        for f in flows(10_000) {
            let d = emu.route_new_connection(&f).expect("decides");
            let r = d.routed().expect("routed").clone();
            assert_eq!(
                r.rule_comment.as_deref(),
                Some(format!("rm-{}", &r.table[3..]).as_str())
            );
            *counts.entry(r.table).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        for (table, n) in &counts {
            let share = f64::from(*n) / 10_000.0;
            assert!(
                (share - 1.0 / 3.0).abs() <= 0.03,
                "{table}: {share} ({counts:?})"
            );
        }
    }

    #[test]
    fn same_flow_same_decision() {
        let emu = three_buckets();
        for f in flows(200) {
            let first = emu.route_new_connection(&f).unwrap();
            for _ in 0..3 {
                assert_eq!(emu.route_new_connection(&f).unwrap(), first);
            }
        }
    }

    #[test]
    fn disabled_pcc_rule_falls_through_to_main() {
        let emu = three_buckets();
        emu.import_script("/ip firewall mangle disable [find where comment=pcc-b]")
            .unwrap();
        let mut main = 0;
        for f in flows(3000) {
            let r = emu
                .route_new_connection(&f)
                .unwrap()
                .routed()
                .unwrap()
                .clone();
            assert_ne!(r.table, "to-b");
            if r.table == "main" {
                main += 1;
                assert_eq!(r.connection_mark, None);
                assert_eq!(r.route_comment.as_deref(), Some("a-main"));
                assert_eq!(r.gateway.as_deref(), Some("198.18.1.1"));
            }
        }
        assert!((800..1200).contains(&main), "{main} of 3000 via main");
    }

    #[test]
    fn return_bypasses_an_address_list_destination() {
        let emu = three_buckets();
        let f = Flow::tcp(
            "bridge-lan",
            Ipv4Addr::new(192, 168, 100, 9),
            5000,
            Ipv4Addr::new(10, 1, 2, 3),
            22,
        );
        let d = emu.route_new_connection(&f).unwrap();
        // No mark; main has no route to 10/8 but the default.
        let r = d.routed().unwrap();
        assert_eq!(
            (r.connection_mark.as_ref(), r.table.as_str()),
            (None, "main")
        );
        // Without mangle rules, the LAN itself is a connected route of main.
        let emu = router("");
        let lan = Flow::udp(
            "bridge-lan",
            Ipv4Addr::new(192, 168, 100, 9),
            5000,
            Ipv4Addr::new(192, 168, 100, 1),
            53,
        );
        let r = emu.route_new_connection(&lan).unwrap();
        assert_eq!(r.routed().unwrap().gateway.as_deref(), Some("bridge-lan"));
    }

    #[test]
    fn negated_interface_list_skips_wan_arrivals() {
        let emu = three_buckets();
        for f in flows(300) {
            let from_wan = Flow {
                in_interface: "ether2".into(),
                ..f
            };
            let r = emu.route_new_connection(&from_wan).unwrap();
            assert_eq!(
                r.table(),
                "main",
                "in-interface-list=!wan must not match ether2"
            );
        }
    }

    #[test]
    fn unmodelled_matcher_is_an_error() {
        let emu = router(
            "/ip firewall mangle add chain=prerouting src-mac-address=00:11:22:33:44:55 action=mark-connection new-connection-mark=x comment=mac\n",
        );
        let f = flows(1).next().unwrap();
        let err = emu.route_new_connection(&f).unwrap_err();
        assert!(err.contains("src-mac-address"), "{err}");
    }

    #[test]
    fn empty_marked_table_is_an_error_and_lookup_only_is_unreachable() {
        let emu = three_buckets();
        emu.import_script("/ip route disable [find where routing-table=to-a]")
            .unwrap();
        let mut errors = 0;
        for f in flows(300) {
            match emu.route_new_connection(&f) {
                Err(e) => {
                    assert!(e.contains("to-a") && e.contains("not in the manual"), "{e}");
                    errors += 1;
                }
                Ok(d) => assert_ne!(d.table(), "to-a"),
            }
        }
        assert!(errors > 0);
        let emu = router(
            "/routing rule add src-address=192.168.100.0/24 action=lookup-only-in-table table=to-a comment=pin\n/ip route disable [find where routing-table=to-a]\n",
        );
        let d = emu.route_new_connection(&flows(1).next().unwrap()).unwrap();
        assert!(
            matches!(d, RouteDecision::Unreachable { ref table, .. } if table == "to-a"),
            "{d:?}"
        );
    }
}
