//! `uplinkd explain`: which stage of the rendered mangle decides a new connection, and by which
//! WANs it leaves, for a decision of the policy. It walks the same lines the base config renders
//! ([`traffic::lines`], the default policy's PCC from [`policy::pcc_layout`], the bypass list from
//! [`crate::rsc::local_subnets`], the routes' order from [`crate::rsc::rank`]) with each switched
//! object on exactly when the reconciler turns it on ([`engine::target_of`]). Pure: no I/O, no
//! clock; the sentences are written by the command (`cmd::explain`).
//!
//! RouterOS's PCC hash is not public, so one connection's bucket is unknowable: every residue
//! `h` of the hash modulo the lcm of the denominators in play is walked once, which gives each
//! exit's exact share of such connections.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::engine;
use crate::health::LinkState;
use crate::policy::{self, Candidate, Desired, Tiering};
use crate::reconcile::plan::Want;
use crate::rsc::{LocalSubnet, fallbacks, local_subnets, probe_sources, rank};
use crate::traffic::{
    self, Action, Connection, LastResort, Line, PolicyKind, Protocol, ProtocolSplit, Switching,
};
use crate::types::LinkId;

/// What decided a new connection, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub stage: Stage,
    /// Each way out with its share of such connections, largest first; they sum to 100.
    pub exits: Vec<Share>,
    /// For a sticky rule: a source it remembered keeps its WAN.
    pub sticky: Option<StickyNote>,
}

/// The part of prerouting that decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// It arrived on a WAN's interface: marked for that WAN (its replies leave by it), never
    /// balanced; the packet itself is routed by `main`.
    Inbound { wan: LinkId, interface: String },
    /// From one of the container's probe sources: left alone by mangle.
    ProbeBypass { source: Ipv4Addr },
    /// To a destination of the local bypass list: never balanced, routed by `main`.
    LocalBypass { subnet: LocalSubnet },
    /// A traffic rule (`[[rule]]`) matched.
    Rule {
        name: String,
        /// Its matchers as RouterOS writes them (`protocol=udp`, `dst-port=5060`).
        matchers: Vec<Matcher>,
        policy: String,
        kind: PolicyKind,
        /// The policy's WANs, in the order written.
        wans: Vec<LinkId>,
        last_resort: LastResort,
        /// The WANs its policy may use in this decision (its switched lines that are on).
        usable: Vec<LinkId>,
    },
    /// No rule matched: the default policy (PCC over every carrying WAN, else `main`).
    Default,
}

/// One RouterOS matcher of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matcher {
    pub key: &'static str,
    pub value: String,
}

/// A way out and its share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    #[serde(flatten)]
    pub exit: Exit,
    pub percent: f64,
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "exit", rename_all = "snake_case")]
pub enum Exit {
    /// It leaves by `wan`, through `table`'s route.
    Wan {
        wan: LinkId,
        table: String,
        route: Route,
    },
    /// A connected network of `main` (the LAN, a WAN's subnet, a veth): it never leaves by a WAN.
    Connected,
    /// Marked for the blackhole: a policy whose last resort is `drop`, with no WAN usable.
    Dropped,
}

/// Which route of the table is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `main`'s default route of the first carrying WAN by rank.
    Main,
    /// The WAN's own route in its table `to-<WAN>`.
    Own,
    /// A fallback of `to-<WAN>` (the WAN's own route is off): the next WAN by rank.
    Fallback,
    /// A failsafe route (distance 250 and up), when nothing else is on.
    Failsafe,
}

/// A sticky rule's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StickyNote {
    /// `src` or `src+dst`.
    pub by: &'static str,
    pub timeout_secs: u64,
    /// WANs whose memories are in force now (a remembered source keeps its WAN); the exits above
    /// are for a source not remembered.
    pub wans: Vec<LinkId>,
}

/// The decision with every WAN `Up` except those in `down`, which are `Down` since `now`.
pub fn assume(config: &Config, down: &[LinkId], now: Instant) -> Desired {
    let candidates: Vec<Candidate> = config
        .wans
        .iter()
        .map(|w| Candidate {
            id: w.id.clone(),
            state: if down.contains(&w.id) {
                LinkState::Down { since: now }
            } else {
                LinkState::Up
            },
            priority: w.priority,
            tier: w.tier,
        })
        .collect();
    let tiering = Tiering {
        promote_on: config.balance.promote_on,
        handback: config.balance.handback,
    };
    policy::decide_all(&candidates, tiering, &config.traffic.policies, None)
}

/// The connection mark mangle leaves on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mark {
    None,
    Wan(LinkId),
    Blocked,
}

/// Explains `conn` under `desired`, as the rendered rules switched for it decide.
pub fn explain(config: &Config, desired: &Desired, conn: &Connection) -> Explanation {
    let target = engine::target_of(desired, &config.traffic);
    let wants = target.effective();
    let routes = Routes {
        config,
        wants: &wants,
    };
    let tiers: BTreeMap<LinkId, crate::types::Tier> =
        config.wans.iter().map(|w| (w.id.clone(), w.tier)).collect();
    let classifier = config.balance.pcc.for_rules();
    let lines = traffic::lines(&config.traffic, classifier, &tiers);
    // A config whose veth prefix is invalid does not render at all (`render_base` fails on the
    // same call), so there is no bypass list to follow.
    let locals = local_subnets(config).unwrap_or_default();
    let local = locals.iter().find(|s| s.net.contains(&conn.dst)).cloned();
    let main_or_connected = |local: &Option<LocalSubnet>| match local {
        Some(s) if s.origin.connected() => Exit::Connected,
        _ => routes.main(),
    };
    let whole = |exit: Exit| {
        vec![Share {
            exit,
            percent: 100.0,
        }]
    };

    // 1. Inbound: the first mangle lines (before any bypass) mark it; nothing later matches a
    // connection from a WAN (in-interface-list=!uplinkd-wan), so `main` routes it.
    if let Some(w) = config
        .wans
        .iter()
        .find(|w| w.interface == conn.in_interface)
    {
        return Explanation {
            stage: Stage::Inbound {
                wan: w.id.clone(),
                interface: w.interface.clone(),
            },
            exits: whole(main_or_connected(&local)),
            sticky: None,
        };
    }
    // 2. The bypasses: `return` before any mark.
    if probe_sources(config).contains(&conn.src) {
        return Explanation {
            stage: Stage::ProbeBypass { source: conn.src },
            exits: whole(main_or_connected(&local)),
            sticky: None,
        };
    }
    if let Some(subnet) = local {
        let exits = whole(main_or_connected(&Some(subnet.clone())));
        return Explanation {
            stage: Stage::LocalBypass { subnet },
            exits,
            sticky: None,
        };
    }

    // 3. and 4. The rules' lines, then the default policy's PCC, for every hash residue.
    let lists = &config.traffic.lists;
    let matched = lines
        .iter()
        .find(|l| l.matcher.matches(conn, lists))
        .map(|l| l.rule);
    let on = |line: &Line| match &line.switching {
        Switching::Static => true,
        Switching::Steer { wan, .. } => {
            let rule = &config.traffic.rules[line.rule];
            desired
                .steering
                .get(&rule.policy)
                .is_some_and(|s| s.contains(wan))
        }
    };
    let buckets = policy::pcc_layout(
        &config
            .wans
            .iter()
            .map(|w| (w.id.clone(), w.weight, w.tier))
            .collect::<Vec<_>>(),
    );
    let splits = |p: ProtocolSplit| match p {
        ProtocolSplit::All => true,
        ProtocolSplit::Tcp => conn.protocol == Protocol::Tcp,
        ProtocolSplit::NotTcp => conn.protocol != Protocol::Tcp,
    };
    let period = lines
        .iter()
        .filter_map(|l| l.pcc.as_ref().map(|p| p.total))
        .chain(buckets.iter().map(|b| b.total))
        .fold(1u64, |acc, t| lcm(acc, u64::from(t)));
    let mut counts: BTreeMap<Exit, u64> = BTreeMap::new();
    for h in 0..period {
        let mut mark = Mark::None;
        let mut accepted = false;
        for line in &lines {
            if !line.matcher.matches(conn, lists) || !on(line) {
                continue;
            }
            let mark_holds = match (&line.marked, &mark) {
                (None, Mark::None) => true,
                (Some(w), Mark::Wan(m)) => w == m,
                _ => false,
            };
            // A sticky line needs a remembered source; explained for a source not remembered.
            if !mark_holds || line.sticky_lists.is_some() {
                continue;
            }
            if let Some(p) = &line.pcc
                && (!splits(p.protocols) || h % u64::from(p.total) != u64::from(p.index))
            {
                continue;
            }
            match &line.action {
                Action::Mark(w) => mark = Mark::Wan(w.clone()),
                Action::Block => mark = Mark::Blocked,
                Action::Accept => {
                    accepted = true;
                    break;
                }
                Action::Remember { .. } => {}
            }
        }
        if mark == Mark::None && !accepted {
            // The default PCC: a bucket is on while its WAN carries; both halves of the hybrid
            // classifier hash what this connection's protocol selects, as the rules' lines do.
            if let Some(b) = buckets.iter().find(|b| {
                wants.get(&b.wan) == Some(&Want::Carry)
                    && h % u64::from(b.total) == u64::from(b.index)
            }) {
                mark = Mark::Wan(b.wan.clone());
            }
        }
        let exit = match mark {
            Mark::Wan(w) => routes.table(&w),
            Mark::Blocked => Exit::Dropped,
            Mark::None => routes.main(),
        };
        *counts.entry(exit).or_default() += 1;
    }
    let mut exits: Vec<Share> = counts
        .into_iter()
        .map(|(exit, n)| Share {
            exit,
            percent: n as f64 * 100.0 / period as f64,
        })
        .collect();
    exits.sort_by(|a, b| b.percent.total_cmp(&a.percent));

    let (stage, sticky) = match matched.map(|i| &config.traffic.rules[i]) {
        None => (Stage::Default, None),
        Some(rule) => {
            // Invariant: `lines` makes lines only for rules whose policy exists.
            let p = config
                .traffic
                .policy(&rule.policy)
                .expect("a rule's lines have its policy");
            let usable: BTreeSet<LinkId> =
                desired.steering.get(&p.name).cloned().unwrap_or_default();
            let sticky = rule.sticky.timeout().map(|t| StickyNote {
                by: rule.sticky.as_str(),
                timeout_secs: t.as_secs(),
                wans: p.wans().filter(|w| usable.contains(*w)).cloned().collect(),
            });
            let stage = Stage::Rule {
                name: rule.name.clone(),
                matchers: rule
                    .matcher
                    .rsc_args()
                    .into_iter()
                    .map(|(key, value)| Matcher { key, value })
                    .collect(),
                policy: p.name.clone(),
                kind: p.kind,
                wans: p.wans().cloned().collect(),
                last_resort: p.last_resort,
                usable: p.wans().filter(|w| usable.contains(*w)).cloned().collect(),
            };
            (stage, sticky)
        }
    };
    Explanation {
        stage,
        exits,
        sticky,
    }
}

/// The routes as the base config lays them out, switched by the wants.
struct Routes<'a> {
    config: &'a Config,
    wants: &'a BTreeMap<LinkId, Want>,
}

impl Routes<'_> {
    /// `main`: the default route of the first carrying WAN by rank, else the failsafes (in
    /// rank order, never switched).
    fn main(&self) -> Exit {
        let ranked = rank(self.config);
        let carrying = ranked
            .iter()
            .find(|w| self.wants.get(*w) == Some(&Want::Carry));
        match (carrying, ranked.first()) {
            (Some(w), _) => Exit::Wan {
                wan: w.clone(),
                table: "main".into(),
                route: Route::Main,
            },
            (None, Some(w)) => Exit::Wan {
                wan: w.clone(),
                table: "main".into(),
                route: Route::Failsafe,
            },
            // No WAN at all: the resolver refuses such a config.
            (None, None) => Exit::Dropped,
        }
    }

    /// `to-<wan>`: its own route unless the WAN is on standby, else its first fallback (never
    /// switched), else its failsafe.
    fn table(&self, wan: &LinkId) -> Exit {
        let table = crate::naming::route_table(wan);
        let (via, route) = if self.wants.get(wan) != Some(&Want::Standby) {
            (wan.clone(), Route::Own)
        } else {
            match fallbacks(self.config, wan).into_iter().next() {
                Some(f) => (f, Route::Fallback),
                None => (wan.clone(), Route::Failsafe),
            }
        };
        Exit::Wan {
            wan: via,
            table,
            route,
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    if a == 0 || b == 0 {
        a.max(b).max(1)
    } else {
        a / gcd(a, b) * b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = include_str!("../tests/fixtures/rsc-variants/traffic-rules.toml");

    fn config() -> Config {
        let env = crate::config::Env::empty().with("UPLINKD_REST_PASSWORD", "x");
        Config::from_toml_str(RULES, &env).expect("the fixture resolves")
    }

    fn id(s: &str) -> LinkId {
        LinkId::new(s)
    }

    fn conn(
        iface: &str,
        src: &str,
        dst: &str,
        protocol: Protocol,
        port: Option<u16>,
    ) -> Connection {
        Connection {
            in_interface: iface.into(),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            dst_port: port,
        }
    }

    fn run(down: &[&str], c: &Connection) -> Explanation {
        let config = config();
        let down: Vec<LinkId> = down.iter().map(|d| id(d)).collect();
        let desired = assume(&config, &down, crate::clock::mono());
        explain(&config, &desired, c)
    }

    /// (WAN or "dropped"/"connected", percent rounded to a tenth).
    /// By WAN (whatever the table), largest first.
    fn exits(e: &Explanation) -> Vec<(String, f64)> {
        let mut by: BTreeMap<String, f64> = BTreeMap::new();
        for s in &e.exits {
            let name = match &s.exit {
                Exit::Wan { wan, .. } => wan.to_string(),
                Exit::Connected => "connected".into(),
                Exit::Dropped => "dropped".into(),
            };
            *by.entry(name).or_default() += s.percent;
        }
        let mut out: Vec<(String, f64)> = by
            .into_iter()
            .map(|(n, p)| (n, (p * 10.0).round() / 10.0))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    fn rule_name(e: &Explanation) -> &str {
        match &e.stage {
            Stage::Rule { name, .. } => name,
            other => panic!("not a rule: {other:?}"),
        }
    }

    #[test]
    fn a_connection_from_a_wan_is_inbound_and_routed_by_main() {
        let e = run(
            &[],
            &conn(
                "ether2",
                "203.0.113.9",
                "198.18.2.2",
                Protocol::Tcp,
                Some(22),
            ),
        );
        assert_eq!(
            e.stage,
            Stage::Inbound {
                wan: id("cable"),
                interface: "ether2".into()
            }
        );
        assert_eq!(exits(&e), [("connected".to_string(), 100.0)]);
    }

    #[test]
    fn local_destinations_bypass_every_rule() {
        let e = run(
            &[],
            &conn(
                "bridge-lan",
                "192.168.88.10",
                "192.168.88.20",
                Protocol::Udp,
                Some(5060),
            ),
        );
        match &e.stage {
            Stage::LocalBypass { subnet } => {
                assert_eq!(subnet.net.to_string(), "192.168.88.0/24");
                assert_eq!(subnet.origin, crate::rsc::LocalOrigin::Lan);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(exits(&e), [("connected".to_string(), 100.0)]);
        // A private range that is not connected: main's default route.
        let e = run(
            &["fibre"],
            &conn(
                "bridge-lan",
                "192.168.88.30",
                "10.9.9.9",
                Protocol::Tcp,
                Some(443),
            ),
        );
        assert!(
            matches!(&e.stage, Stage::LocalBypass { subnet } if subnet.origin == crate::rsc::LocalOrigin::Private)
        );
        assert_eq!(exits(&e), [("cable".to_string(), 100.0)]);
        // The probe sources are left alone too.
        let e = run(
            &[],
            &conn(
                "uplinkd-wan1",
                "172.31.255.2",
                "198.18.0.1",
                Protocol::Icmp,
                None,
            ),
        );
        assert!(matches!(e.stage, Stage::ProbeBypass { .. }), "{e:?}");
    }

    #[test]
    fn a_failover_rule_takes_its_first_usable_wan() {
        let voip = conn(
            "bridge-lan",
            "192.168.88.30",
            "198.51.100.7",
            Protocol::Udp,
            Some(10_500),
        );
        let e = run(&[], &voip);
        assert_eq!(rule_name(&e), "voip");
        assert_eq!(exits(&e), [("cable".to_string(), 100.0)]);
        assert_eq!(
            exits(&run(&["cable"], &voip)),
            [("fibre".to_string(), 100.0)]
        );
        // Both down: the last resort is any, main's preferred WAN (LTE, promoted).
        assert_eq!(
            exits(&run(&["cable", "fibre"], &voip)),
            [("LTE".to_string(), 100.0)]
        );
        // Another port is not this rule's.
        let other = Connection {
            dst_port: Some(9999),
            ..voip
        };
        assert_eq!(run(&[], &other).stage, Stage::Default);
    }

    #[test]
    fn an_only_rule_with_drop_is_dropped_while_its_wan_is_down() {
        let server = conn(
            "bridge-lan",
            "192.168.88.11",
            "198.51.100.7",
            Protocol::Tcp,
            Some(443),
        );
        let e = run(&[], &server);
        assert_eq!(rule_name(&e), "servers");
        assert_eq!(exits(&e), [("fibre".to_string(), 100.0)]);
        assert_eq!(
            exits(&run(&["fibre"], &server)),
            [("dropped".to_string(), 100.0)]
        );
    }

    #[test]
    fn a_balanced_rule_splits_by_its_weights_and_drops_when_none_is_usable() {
        let guest = conn(
            "vlan-guest",
            "192.168.50.9",
            "198.51.100.7",
            Protocol::Tcp,
            Some(80),
        );
        let e = run(&[], &guest);
        assert_eq!(rule_name(&e), "guests");
        assert_eq!(
            exits(&e),
            [("cable".to_string(), 50.0), ("fibre".to_string(), 50.0)]
        );
        assert_eq!(
            exits(&run(&["fibre"], &guest)),
            [("cable".to_string(), 100.0)]
        );
        // Never LTE: dropped when both tier-1 WANs are down.
        assert_eq!(
            exits(&run(&["fibre", "cable"], &guest)),
            [("dropped".to_string(), 100.0)]
        );
    }

    #[test]
    fn a_sticky_rule_says_who_is_remembered() {
        let bank = conn(
            "bridge-lan",
            "192.168.88.30",
            "198.18.200.5",
            Protocol::Tcp,
            Some(443),
        );
        let e = run(&[], &bank);
        assert_eq!(rule_name(&e), "banking");
        assert_eq!(
            exits(&e),
            [("fibre".to_string(), 66.7), ("cable".to_string(), 33.3)]
        );
        let note = e.sticky.expect("sticky");
        assert_eq!((note.by, note.timeout_secs), ("src", 1800));
        assert_eq!(note.wans, [id("fibre"), id("cable")]);
        let e = run(&["fibre", "cable"], &bank);
        assert_eq!(exits(&e), [("LTE".to_string(), 100.0)]);
        assert_eq!(e.sticky.unwrap().wans, [id("LTE")]);
    }

    #[test]
    fn the_default_policy_is_pcc_over_the_carrying_wans() {
        let web = conn(
            "bridge-lan",
            "192.168.88.30",
            "198.51.100.7",
            Protocol::Tcp,
            Some(443),
        );
        let e = run(&[], &web);
        assert_eq!(e.stage, Stage::Default);
        assert_eq!(
            exits(&e),
            [("fibre".to_string(), 66.7), ("cable".to_string(), 33.3)]
        );
        for s in &e.exits {
            assert!(
                matches!(
                    s.exit,
                    Exit::Wan {
                        route: Route::Own,
                        ..
                    }
                ),
                "{s:?}"
            );
        }
        // fibre down: its buckets are off and fall through to main, whose route is cable's.
        let e = run(&["fibre"], &web);
        assert_eq!(exits(&e), [("cable".to_string(), 100.0)]);
        assert!(e.exits.iter().all(
            |s| matches!(&s.exit, Exit::Wan { table, .. } if table == "to-cable" || table == "main")
        ));
    }

    #[test]
    fn lcm_of_denominators() {
        assert_eq!(lcm(1, 3), 3);
        assert_eq!(lcm(4, 6), 12);
        assert_eq!([2u64, 3, 1].iter().fold(1, |a, b| lcm(a, *b)), 6);
    }
}
