//! Per-traffic rules and named policies (`[[rule]]`, `[[policy]]`, `[lists]`): which new
//! connections leave by which WANs, beside the default policy (every WAN by weight, by tier).
//!
//! A rule matches new connections from inside (source, address list, LAN interface or VLAN,
//! destination, protocol, port) and sends them to a policy: `balanced` over a set of WANs (PCC,
//! weighted, by tier), `failover` (the first usable WAN in order) or `only` (one WAN), each with
//! a last resort for when none of its WANs is usable: `any` (the main table's preferred WAN) or
//! `drop`. A rule may be sticky: a source (or source and destination) keeps the WAN it first
//! used for a timeout.
//!
//! This module holds the resolved types and [`lines`], the mangle rules a configuration's rules
//! become, as data: the base config prints them (`rsc::steer_line`), the reconciler switches them by
//! their tags, `uplinkd explain` evaluates them. One model, so what is explained is what is
//! rendered. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::naming;
use crate::types::LinkId;

/// Tag section of the mangle rules the reconciler switches per (rule, WAN):
/// `uplinkd:steer:<rule>.<WAN>-pick`, `-sticky`, `-<k>` (PCC bucket k).
pub const SECTION_STEER: &str = "steer";
/// Tag section of the rules' objects that are never switched: `uplinkd:rule:<rule>-anywan`,
/// `<rule>-drop`, `<rule>.<WAN>-remember`, and the drop table's `.blocked-*`.
pub const SECTION_RULE: &str = "rule";
/// Connection mark and routing table of connections a policy drops (a blackhole route).
pub const BLOCKED: &str = "blocked-by-uplinkd";

/// How a policy spreads connections over its WANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// PCC over the usable WANs of its lowest usable tier, by weight.
    Balanced,
    /// The first usable WAN in the order written.
    Failover,
    /// One WAN.
    Only,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Balanced => "balanced",
            PolicyKind::Failover => "failover",
            PolicyKind::Only => "only",
        }
    }
}

/// What happens to a policy's new connections while none of its WANs is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LastResort {
    /// They leave by the main table: the default policy's preferred WAN.
    #[default]
    Any,
    /// They are dropped (a blackhole route): "this server never leaves by another address".
    Drop,
}

impl LastResort {
    pub fn as_str(self) -> &'static str {
        match self {
            LastResort::Any => "any",
            LastResort::Drop => "drop",
        }
    }
}

/// One WAN of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub wan: LinkId,
    /// PCC buckets in a balanced policy (the WAN's own weight unless the policy sets one).
    pub weight: u32,
}

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub kind: PolicyKind,
    /// In the order written (a failover order).
    pub members: Vec<Member>,
    pub last_resort: LastResort,
}

impl Policy {
    pub fn wans(&self) -> impl Iterator<Item = &LinkId> {
        self.members.iter().map(|m| &m.wan)
    }

    /// The WANs the policy may ever pick: all of them, except a balanced policy's of weight 0
    /// (no PCC bucket; `policy::steer` never lists them).
    pub fn usable_wans(&self) -> impl Iterator<Item = &LinkId> {
        self.members
            .iter()
            .filter(|m| self.kind != PolicyKind::Balanced || m.weight > 0)
            .map(|m| &m.wan)
    }
}

/// A matched protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" => Some(Protocol::Icmp),
            _ => None,
        }
    }
}

/// An inclusive port range (`443`, `10000-20000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// What a rule matches; every given condition must hold. Empty matches every new connection
/// from inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub src: Option<Ipv4Net>,
    /// A `[lists]` name.
    pub src_list: Option<String>,
    /// A LAN interface or VLAN the connection arrives on.
    pub in_interface: Option<String>,
    pub dst: Option<Ipv4Net>,
    pub dst_list: Option<String>,
    pub protocol: Option<Protocol>,
    /// Only with `tcp` or `udp`.
    pub dst_ports: Vec<PortRange>,
}

impl Match {
    /// The RouterOS matchers, in a fixed order.
    pub fn rsc_args(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(i) = &self.in_interface {
            out.push(("in-interface", i.clone()));
        }
        if let Some(n) = self.src {
            out.push(("src-address", n.to_string()));
        }
        if let Some(l) = &self.src_list {
            out.push(("src-address-list", list_name(l)));
        }
        if let Some(n) = self.dst {
            out.push(("dst-address", n.to_string()));
        }
        if let Some(l) = &self.dst_list {
            out.push(("dst-address-list", list_name(l)));
        }
        if let Some(p) = self.protocol {
            out.push(("protocol", p.as_str().to_string()));
        }
        if !self.dst_ports.is_empty() {
            let ports: Vec<String> = self.dst_ports.iter().map(ToString::to_string).collect();
            out.push(("dst-port", ports.join(",")));
        }
        out
    }

    /// Whether `conn` meets every condition; `lists` holds the `[lists]` entries.
    pub fn matches(&self, conn: &Connection, lists: &BTreeMap<String, Vec<Ipv4Net>>) -> bool {
        let in_list = |name: &String, a: Ipv4Addr| {
            lists
                .get(name)
                .is_some_and(|nets| nets.iter().any(|n| n.contains(&a)))
        };
        self.in_interface
            .as_ref()
            .is_none_or(|i| *i == conn.in_interface)
            && self.src.is_none_or(|n| n.contains(&conn.src))
            && self.src_list.as_ref().is_none_or(|l| in_list(l, conn.src))
            && self.dst.is_none_or(|n| n.contains(&conn.dst))
            && self.dst_list.as_ref().is_none_or(|l| in_list(l, conn.dst))
            && self.protocol.is_none_or(|p| p == conn.protocol)
            && (self.dst_ports.is_empty()
                || conn
                    .dst_port
                    .is_some_and(|port| self.dst_ports.iter().any(|r| r.contains(port))))
    }

    /// Whether every connection this matches is also matched by `earlier` (so a rule with this
    /// match after `earlier` never sees a connection): each of `earlier`'s conditions is absent
    /// or at least as wide as this one's. Lists are compared by name and content.
    pub fn covered_by(&self, earlier: &Match, lists: &BTreeMap<String, Vec<Ipv4Net>>) -> bool {
        let net_within = |inner: Option<Ipv4Net>, outer: Option<Ipv4Net>| match (inner, outer) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(i), Some(o)) => o.contains(&i),
        };
        let list_within = |inner: &Option<String>, outer: &Option<String>| match (inner, outer) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(i), Some(o)) => {
                i == o
                    || lists
                        .get(i)
                        .zip(lists.get(o))
                        .is_some_and(|(iv, ov)| iv.iter().all(|n| ov.iter().any(|m| m.contains(n))))
            }
        };
        let ports_within = match (self.dst_ports.is_empty(), earlier.dst_ports.is_empty()) {
            (_, true) => true,
            (true, false) => false,
            (false, false) => self.dst_ports.iter().all(|r| {
                earlier
                    .dst_ports
                    .iter()
                    .any(|o| o.first <= r.first && r.last <= o.last)
            }),
        };
        (earlier.in_interface.is_none() || earlier.in_interface == self.in_interface)
            && net_within(self.src, earlier.src)
            && list_within(&self.src_list, &earlier.src_list)
            && net_within(self.dst, earlier.dst)
            && list_within(&self.dst_list, &earlier.dst_list)
            && (earlier.protocol.is_none() || earlier.protocol == self.protocol)
            && ports_within
    }
}

/// Who is remembered by a sticky rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sticky {
    #[default]
    Off,
    /// The source address keeps its WAN for `timeout` from its first connection.
    Src { timeout: Duration },
    /// The source and the destination: RouterOS address lists hold single addresses, so each
    /// is remembered per WAN, and a connection sticks when both are (a pair never seen together
    /// whose two ends were each seen on the same WAN sticks too).
    SrcDst { timeout: Duration },
}

impl Sticky {
    pub fn timeout(self) -> Option<Duration> {
        match self {
            Sticky::Off => None,
            Sticky::Src { timeout } | Sticky::SrcDst { timeout } => Some(timeout),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sticky::Off => "off",
            Sticky::Src { .. } => "src",
            Sticky::SrcDst { .. } => "src+dst",
        }
    }
}

/// A rule: connections it matches go to `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub matcher: Match,
    pub policy: String,
    pub sticky: Sticky,
}

/// Every rule, policy and list of a configuration. Empty: the default policy alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    pub lists: BTreeMap<String, Vec<Ipv4Net>>,
    pub policies: Vec<Policy>,
    pub rules: Vec<Rule>,
}

impl Traffic {
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The WANs each rule's policy may use, by rule name (the reconciler's view).
    pub fn rule_policies(&self) -> impl Iterator<Item = (&Rule, &Policy)> {
        self.rules
            .iter()
            .filter_map(|r| self.policy(&r.policy).map(|p| (r, p)))
    }
}

/// A new connection as `explain` and the tests describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub in_interface: String,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: Protocol,
    pub dst_port: Option<u16>,
}

/// Address list of a `[lists]` entry on the router.
pub fn list_name(name: &str) -> String {
    format!("uplinkd.{name}")
}

/// Address list remembering the sources a sticky rule sent to a WAN.
pub fn sticky_src_list(rule: &str, wan: &LinkId) -> String {
    format!("uplinkd.sticky.{rule}.{wan}")
}

/// Address list remembering the destinations of a `src+dst` sticky rule's WAN.
pub fn sticky_dst_list(rule: &str, wan: &LinkId) -> String {
    format!("uplinkd.stickyd.{rule}.{wan}")
}

/// What a switched line is, in its tag `uplinkd:steer:<rule>.<WAN>-<this>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SteerKind {
    /// Marks for the WAN a source remembered on it (sticky).
    Sticky,
    /// PCC bucket k of a balanced policy.
    Pcc(u32),
    /// Marks for the WAN: a failover step, an `only` WAN, or a balanced policy's spill (the
    /// buckets of a WAN that is off fall to the first usable WAN).
    Pick,
}

impl SteerKind {
    fn suffix(self) -> String {
        match self {
            SteerKind::Sticky => "sticky".into(),
            SteerKind::Pcc(k) => k.to_string(),
            SteerKind::Pick => "pick".into(),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sticky" => Some(SteerKind::Sticky),
            "pick" => Some(SteerKind::Pick),
            k if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
                k.parse().ok().map(SteerKind::Pcc)
            }
            _ => None,
        }
    }
}

/// The tag name of a switched line: `<rule>.<WAN>-<kind>`.
pub fn steer_name(rule: &str, wan: &LinkId, kind: SteerKind) -> String {
    format!("{rule}.{wan}-{}", kind.suffix())
}

/// Parses a switched line's tag name back: `(rule, WAN, kind)`. Rule and WAN names never
/// contain '.', and a kind never contains '-'.
pub fn parse_steer_name(name: &str) -> Option<(&str, LinkId, SteerKind)> {
    let (rule, rest) = name.split_once('.')?;
    let (wan, kind) = rest.rsplit_once('-')?;
    naming::validate_wan_name(rule).ok()?;
    naming::validate_wan_name(wan).ok()?;
    Some((rule, LinkId::new(wan), SteerKind::parse(kind)?))
}

/// A PCC condition: `per-connection-classifier=<classifier>:<total>/<index>`, for the
/// protocols of `only`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PccCond {
    pub classifier: &'static str,
    pub total: u32,
    pub index: u32,
    pub protocols: ProtocolSplit,
}

/// The hybrid classifier's two rules per bucket: TCP by ports, the rest by source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolSplit {
    All,
    Tcp,
    NotTcp,
}

/// What a line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `mark-connection` for the WAN (its route-mark rule then routes it by `to-<WAN>`).
    Mark(LinkId),
    /// `accept`: the rest of prerouting is skipped; the connection leaves by `main`.
    Accept,
    /// `mark-connection` [`BLOCKED`]: routed to a blackhole.
    Block,
    /// `add-src-to-address-list` (or dst) for a sticky rule, once its connection is marked.
    Remember {
        list: String,
        dst: bool,
        timeout: Duration,
    },
}

/// When a line is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switching {
    /// Always: the reconciler never touches it.
    Static,
    /// While the WAN is usable for the rule's policy.
    Steer { wan: LinkId, kind: SteerKind },
}

/// One mangle rule (chain `prerouting`) made for a traffic rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Index of the traffic rule in [`Traffic::rules`].
    pub rule: usize,
    pub matcher: Match,
    /// `connection-mark=` this line requires: `None` = `no-mark` (a new, unmarked connection).
    pub marked: Option<LinkId>,
    /// Sticky conditions: the source (and destination) address lists.
    pub sticky_lists: Option<(String, Option<String>)>,
    pub pcc: Option<PccCond>,
    pub action: Action,
    pub switching: Switching,
    /// The full comment: the tag, and a note for PCC twins.
    pub comment: String,
}

/// One PCC bucket: `per-connection-classifier=...:total/index` marks connections for `wan`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PccBucket {
    pub index: u32,
    pub total: u32,
    pub wan: LinkId,
}

/// PCC buckets by weight, per tier, in configuration order: each tier has its own total (its
/// WANs' weights), so a backup tier carrying alone splits all new connections between its own
/// WANs, and a tier's rules never leave a gap when another tier's are off. Weights 2:2:1 in one
/// tier give 5 buckets, indices 0-1 to the first WAN, 2-3 to the second, 4 to the third.
/// Weight 0 gets no bucket.
pub fn pcc_layout(wans: &[(LinkId, u32, crate::types::Tier)]) -> Vec<PccBucket> {
    let mut tiers: Vec<crate::types::Tier> = wans.iter().map(|(_, _, t)| *t).collect();
    tiers.sort();
    tiers.dedup();
    let mut out = Vec::new();
    for tier in tiers {
        let members = wans.iter().filter(|(_, _, t)| *t == tier);
        let total: u32 = members.clone().map(|(_, w, _)| *w).sum();
        let mut index = 0;
        for (wan, weight, _) in members {
            for _ in 0..*weight {
                out.push(PccBucket {
                    index,
                    total,
                    wan: wan.clone(),
                });
                index += 1;
            }
        }
    }
    out
}

/// A duration as RouterOS writes one: `10m`, `1h30m`, `1d`; whole seconds.
pub fn ros_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, n) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= n {
            let _ = write!(out, "{}{unit}", secs / n);
            secs %= n;
        }
    }
    out
}

/// How the default policy's classifier applies to a rule's PCC buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classifier {
    /// One classifier for every protocol.
    One(&'static str),
    /// TCP by `both-addresses-and-ports`, the rest by `src-address` (the seed's hybrid).
    Hybrid,
}

/// The mangle lines of every rule, in the order written; each rule's block is, in order:
///
/// 1. sticky: per WAN, a source (and destination) remembered on it takes it again (switched);
/// 2. balanced: the PCC buckets, per tier of its WANs (switched per WAN);
/// 3. per WAN in the order written, a pick (switched): a failover step, the `only` WAN, or a
///    balanced policy's spill, which takes the buckets of a WAN that is off;
/// 4. sticky: per WAN, remember the source (and destination) it carried (never switched);
/// 5. the last resort (never switched): `any` accepts (the connection leaves by `main`), `drop`
///    marks it for the blackhole.
///
/// Every line matches only new, unmarked connections from inside, so the first that marks one
/// decides and the later blocks, and the default policy's PCC after them, never see it.
/// `tiers` gives each WAN's tier (a balanced policy lays its buckets out per tier).
pub fn lines(
    traffic: &Traffic,
    classifier: Classifier,
    tiers: &BTreeMap<LinkId, crate::types::Tier>,
) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, rule) in traffic.rules.iter().enumerate() {
        let Some(policy) = traffic.policy(&rule.policy) else {
            continue;
        };
        let r = rule.name.as_str();
        let line = |marked: Option<LinkId>, action: Action, switching: Switching, comment| Line {
            rule: i,
            matcher: rule.matcher.clone(),
            marked,
            sticky_lists: None,
            pcc: None,
            action,
            switching,
            comment,
        };
        let steer = |wan: &LinkId, kind: SteerKind| {
            (
                Switching::Steer {
                    wan: wan.clone(),
                    kind,
                },
                naming::tag(SECTION_STEER, &steer_name(r, wan, kind)),
            )
        };
        let timeout = rule.sticky.timeout();
        if timeout.is_some() {
            for w in policy.wans() {
                let (switching, tag) = steer(w, SteerKind::Sticky);
                let dst =
                    matches!(rule.sticky, Sticky::SrcDst { .. }).then(|| sticky_dst_list(r, w));
                out.push(Line {
                    sticky_lists: Some((sticky_src_list(r, w), dst)),
                    ..line(None, Action::Mark(w.clone()), switching, tag)
                });
            }
        }
        if policy.kind == PolicyKind::Balanced {
            let weights: Vec<(LinkId, u32, crate::types::Tier)> = policy
                .members
                .iter()
                .map(|m| {
                    let tier = tiers
                        .get(&m.wan)
                        .copied()
                        .unwrap_or(crate::types::Tier::FIRST);
                    (m.wan.clone(), m.weight, tier)
                })
                .collect();
            for b in pcc_layout(&weights) {
                let (switching, tag) = steer(&b.wan, SteerKind::Pcc(b.index));
                let splits: Vec<(&'static str, ProtocolSplit, &str)> =
                    match (classifier, rule.matcher.protocol) {
                        (Classifier::One(c), _) => vec![(c, ProtocolSplit::All, "")],
                        (Classifier::Hybrid, Some(Protocol::Tcp)) => {
                            vec![("both-addresses-and-ports", ProtocolSplit::All, "")]
                        }
                        (Classifier::Hybrid, Some(_)) => {
                            vec![("src-address", ProtocolSplit::All, "")]
                        }
                        (Classifier::Hybrid, None) => vec![
                            ("both-addresses-and-ports", ProtocolSplit::Tcp, " tcp"),
                            ("src-address", ProtocolSplit::NotTcp, " other"),
                        ],
                    };
                for (c, protocols, note) in splits {
                    out.push(Line {
                        pcc: Some(PccCond {
                            classifier: c,
                            total: b.total,
                            index: b.index,
                            protocols,
                        }),
                        ..line(
                            None,
                            Action::Mark(b.wan.clone()),
                            switching.clone(),
                            format!("{tag}{note}"),
                        )
                    });
                }
            }
        }
        for w in policy.wans() {
            let (switching, tag) = steer(w, SteerKind::Pick);
            out.push(line(None, Action::Mark(w.clone()), switching, tag));
        }
        if let Some(timeout) = timeout {
            for w in policy.wans() {
                let src = naming::tag(SECTION_RULE, &format!("{r}.{w}-remember"));
                out.push(line(
                    Some(w.clone()),
                    Action::Remember {
                        list: sticky_src_list(r, w),
                        dst: false,
                        timeout,
                    },
                    Switching::Static,
                    src,
                ));
                if let Sticky::SrcDst { .. } = rule.sticky {
                    let dst = naming::tag(SECTION_RULE, &format!("{r}.{w}-remember-dst"));
                    out.push(line(
                        Some(w.clone()),
                        Action::Remember {
                            list: sticky_dst_list(r, w),
                            dst: true,
                            timeout,
                        },
                        Switching::Static,
                        dst,
                    ));
                }
            }
        }
        let (action, name) = match policy.last_resort {
            LastResort::Any => (Action::Accept, format!("{r}-anywan")),
            LastResort::Drop => (Action::Block, format!("{r}-drop")),
        };
        out.push(line(
            None,
            action,
            Switching::Static,
            naming::tag(SECTION_RULE, &name),
        ));
    }
    out
}

/// The switched lines' tags by (rule, WAN): what the reconciler expects to find.
pub fn switched(lines: &[Line], traffic: &Traffic) -> BTreeSet<(String, LinkId)> {
    lines
        .iter()
        .filter_map(|l| match &l.switching {
            Switching::Steer { wan, .. } => Some((traffic.rules[l.rule].name.clone(), wan.clone())),
            Switching::Static => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> LinkId {
        LinkId::new(s)
    }

    #[test]
    fn steer_names_round_trip_with_dashes_in_names() {
        let n = steer_name("guest-vlan", &id("my-isp"), SteerKind::Pcc(3));
        assert_eq!(n, "guest-vlan.my-isp-3");
        assert_eq!(
            parse_steer_name(&n),
            Some(("guest-vlan", id("my-isp"), SteerKind::Pcc(3)))
        );
        assert_eq!(parse_steer_name("ISP1-3"), None);
        assert_eq!(parse_steer_name("a.b-remember"), None);
    }

    #[test]
    fn durations_print_as_routeros_writes_them() {
        assert_eq!(ros_duration(Duration::from_secs(600)), "10m");
        assert_eq!(ros_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(ros_duration(Duration::from_secs(86_400 * 8)), "1w1d");
    }

    #[test]
    fn a_narrower_match_is_covered_by_a_wider_earlier_one() {
        let lists = BTreeMap::new();
        let wide = Match {
            src: Some("192.168.88.0/24".parse().unwrap()),
            ..Match::default()
        };
        let narrow = Match {
            src: Some("192.168.88.10/32".parse().unwrap()),
            protocol: Some(Protocol::Tcp),
            dst_ports: vec![PortRange {
                first: 443,
                last: 443,
            }],
            ..Match::default()
        };
        assert!(narrow.covered_by(&wide, &lists));
        assert!(!wide.covered_by(&narrow, &lists));
        assert!(narrow.covered_by(&Match::default(), &lists));
    }
}
