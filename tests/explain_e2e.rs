//! `uplinkd explain` against the emulator's evaluation of the imported mangle rules: a hEX after
//! defconf (prepared as docs/install.md says) with the base config of config.example.toml (its
//! LTE backup uncommented) plus a rule of every kind, switched by the real planner for each set
//! of link states. For many flows per rule kind, explain's exits must be what the emulator's
//! `route_new_connection` gives: the same WANs (the `gw:<WAN>` note of the chosen route), the same
//! tables, shares within 5 points, the blackhole for a drop.

mod reconcile_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use reconcile_support::{example_with_lte, prepared_hex};
use uplinkd::config::{Config, Env};
use uplinkd::explain::{self, Exit};
use uplinkd::reconcile::Menu;
use uplinkd::reconcile::plan::{self, Action, Observed, RosId, Switch};
use uplinkd::traffic::{Connection, Protocol};
use uplinkd::types::LinkId;
use uplinkd_emulator::{Emulator, Flow, RouteDecision};

/// A rule of every kind over the example's ISP1, ISP2 (tier 1) and LTE (tier 2).
const RULES: &str = r#"
[lists]
servers = ["192.168.100.10", "192.168.100.11"]
banks = ["198.18.200.0/24"]
games = ["198.51.100.0/24"]

[[policy]]
name = "voip"
kind = "failover"
wans = ["ISP2", "ISP1"]

[[policy]]
name = "fixed"
kind = "only"
wans = ["ISP1"]
last_resort = "drop"

[[policy]]
name = "isp2"
kind = "only"
wans = ["ISP2"]

[[policy]]
name = "no-lte"
kind = "balanced"
wans = ["ISP1", "ISP2"]
last_resort = "drop"

[[policy]]
name = "weighted"
kind = "balanced"
wans = ["ISP1", "ISP2", "LTE"]
weights = { ISP1 = 3, ISP2 = 1, LTE = 1 }

[[policy]]
name = "pair"
kind = "balanced"
wans = ["ISP1", "ISP2"]

[[rule]]
name = "voip"
protocol = "udp"
dst_port = "5060,10000-20000"
policy = "voip"

[[rule]]
name = "servers"
src_address_list = "servers"
policy = "fixed"

[[rule]]
name = "pings"
protocol = "icmp"
policy = "isp2"

[[rule]]
name = "guests"
in_interface = "vlan-guest"
policy = "no-lte"

[[rule]]
name = "games"
dst_address_list = "games"
policy = "weighted"

[[rule]]
name = "banking"
dst_address_list = "banks"
protocol = "tcp"
dst_port = 443
policy = "pair"
sticky = "src"
sticky_timeout = "30m"

[[rule]]
name = "office"
src_address = "192.168.100.128/26"
dst_address = "203.0.113.0/24"
policy = "no-lte"
"#;

/// config.example.toml with its commented LTE `[[wan]]` uncommented, and [`RULES`].
fn config() -> Config {
    let mut text = example_with_lte("drain");
    text.push_str(RULES);
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    Config::from_toml_str(&text, &env).expect("resolves")
}

/// The hEX after defconf, prepared, with the base config imported and a guest VLAN.
fn router(config: &Config) -> Emulator {
    let emu = prepared_hex();
    // The guest VLAN lives on the LAN bridge the base config makes, and a rule naming it
    // imports only once it exists: first the base without rules, then the VLAN, then all.
    let mut plain = config.clone();
    plain.traffic = uplinkd::traffic::Traffic::default();
    let first = uplinkd::rsc::render_base(&plain).expect("renders");
    emu.import_script(&first.text)
        .expect("the base config imports over defconf");
    emu.import_script(
        "/interface vlan add name=vlan-guest vlan-id=20 interface=bridge-lan\n/ip address add address=192.168.50.1/24 interface=vlan-guest",
    )
    .expect("the guest VLAN");
    let base = uplinkd::rsc::render_base(config).expect("renders");
    emu.import_script(&base.text)
        .expect("the base config with the rules imports again");
    emu
}

/// Switches the router to `desired` with the real planner, as the reconciler does.
fn apply(emu: &Emulator, config: &Config, desired: &uplinkd::policy::Desired) {
    let target = uplinkd::engine::target_of(desired, &config.traffic);
    let mut observed = Vec::new();
    for menu in Menu::ALL {
        for o in emu.objects(menu.path()) {
            observed.push(Observed {
                menu,
                id: RosId::parse(&o.id).expect("an id"),
                comment: o.get("comment").unwrap_or("").to_string(),
                state: if matches!(o.get("disabled"), Some("true" | "yes")) {
                    Switch::Disabled
                } else {
                    Switch::Enabled
                },
            });
        }
    }
    let p = plan::plan(&observed, &target);
    assert!(p.missing.is_empty(), "{:?}", p.missing);
    for op in &p.ops {
        let disabled = match op.action {
            Action::Enable => "false",
            Action::Disable => "true",
            Action::Remove => panic!("nothing is stale: {op:?}"),
        };
        for id in &op.ids {
            assert!(emu.edit_object(op.menu.path(), id.as_str(), &[("disabled", disabled)]));
        }
    }
    let again = plan::plan(&plan::apply(&observed, &p), &target);
    assert!(again.ops.is_empty(), "the plan converges");
}

/// Where one flow goes, as a name: a WAN, `dropped` or `connected`, with its table.
fn leg_of_exit(e: &Exit) -> (String, String) {
    match e {
        Exit::Wan { wan, table, .. } => (wan.to_string(), table.clone()),
        Exit::Dropped => ("dropped".into(), uplinkd::traffic::BLOCKED.into()),
        Exit::Connected => ("connected".into(), "main".into()),
    }
}

fn leg_of_decision(d: &RouteDecision, flow: &Flow) -> (String, String) {
    match d {
        RouteDecision::Routed(r) => {
            let wan = match r.route_comment.as_deref() {
                None => "connected".to_string(),
                Some(c) => c
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("gw:"))
                    .unwrap_or_else(|| panic!("{flow:?} leaves by an untagged route: {r:?}"))
                    .to_string(),
            };
            (wan, r.table.clone())
        }
        RouteDecision::Unreachable { table, reason, .. } => {
            assert!(reason.contains("blackhole"), "{flow:?}: {reason}");
            ("dropped".into(), table.clone())
        }
    }
}

/// A kind of flow: (label, the rule explain must name or `None` for the default policy, flow i).
type Maker = (&'static str, Option<&'static str>, fn(u32) -> Flow);

fn lan_src(i: u32) -> Ipv4Addr {
    // .20-.127: not a server, not the office.
    Ipv4Addr::new(192, 168, 100, 20 + (i % 108) as u8)
}

fn makers() -> Vec<Maker> {
    vec![
        ("failover (udp, dst ports)", Some("voip"), |i| {
            Flow::udp(
                "bridge-lan",
                lan_src(i),
                30_000 + (i % 1000) as u16,
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
                if i % 2 == 0 {
                    5060
                } else {
                    10_000 + (i % 10_000) as u16
                },
            )
        }),
        ("only + drop (src list)", Some("servers"), |i| {
            Flow::tcp(
                "bridge-lan",
                Ipv4Addr::new(192, 168, 100, 10 + (i % 2) as u8),
                40_000 + (i % 20_000) as u16,
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
                443,
            )
        }),
        ("only + any (icmp)", Some("pings"), |i| {
            Flow::icmp(
                "bridge-lan",
                lan_src(i),
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
            )
        }),
        ("balanced + drop (VLAN)", Some("guests"), |i| {
            Flow::tcp(
                "vlan-guest",
                Ipv4Addr::new(192, 168, 50, 10 + (i % 200) as u8),
                40_000 + (i % 20_000) as u16,
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
                80,
            )
        }),
        ("balanced by weights (dst list)", Some("games"), |i| {
            Flow::udp(
                "bridge-lan",
                lan_src(i),
                40_000 + (i % 20_000) as u16,
                Ipv4Addr::new(198, 51, 100, (i % 250) as u8 + 1),
                27_015,
            )
        }),
        (
            "sticky balanced (dst list, tcp 443)",
            Some("banking"),
            |i| {
                Flow::tcp(
                    "bridge-lan",
                    lan_src(i),
                    40_000 + (i % 20_000) as u16,
                    Ipv4Addr::new(198, 18, 200, (i % 250) as u8 + 1),
                    443,
                )
            },
        ),
        ("balanced + drop (src and dst nets)", Some("office"), |i| {
            Flow::tcp(
                "bridge-lan",
                Ipv4Addr::new(192, 168, 100, 128 + (i % 64) as u8),
                40_000 + (i % 20_000) as u16,
                Ipv4Addr::new(203, 0, 113, (i % 250) as u8 + 1),
                22,
            )
        }),
        ("default policy", None, |i| {
            Flow::tcp(
                "bridge-lan",
                lan_src(i),
                40_000 + (i % 20_000) as u16,
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
                443,
            )
        }),
    ]
}

fn connection(f: &Flow) -> Connection {
    Connection {
        in_interface: f.in_interface.clone(),
        src: f.src,
        dst: f.dst,
        protocol: Protocol::parse(f.protocol).expect("a protocol"),
        dst_port: f.dst_port,
    }
}

const FLOWS: u32 = 1_200;

/// Per kind of flow: explain's mean shares and the emulator's, by (WAN, table), in percent.
type Shares = BTreeMap<(String, String), f64>;

fn compare(emu: &Emulator, config: &Config, desired: &uplinkd::policy::Desired, scenario: &str) {
    for (label, rule, make) in makers() {
        let mut want: Shares = BTreeMap::new();
        let mut got: Shares = BTreeMap::new();
        for i in 0..FLOWS {
            let flow = make(i);
            let e = explain::explain(config, desired, &connection(&flow));
            match (&e.stage, rule) {
                (explain::Stage::Rule { name, .. }, Some(r)) => assert_eq!(name, r, "{label}"),
                (explain::Stage::Default, None) => {}
                (s, _) => panic!("{label}: {flow:?} decided by {s:?}"),
            }
            let legs: Vec<(String, String)> =
                e.exits.iter().map(|s| leg_of_exit(&s.exit)).collect();
            for s in &e.exits {
                *want.entry(leg_of_exit(&s.exit)).or_default() += s.percent / f64::from(FLOWS);
            }
            let d = emu
                .route_new_connection(&flow)
                .unwrap_or_else(|err| panic!("{flow:?}: {err}"));
            let leg = leg_of_decision(&d, &flow);
            assert!(
                legs.contains(&leg),
                "{scenario}, {label}: {flow:?} went {leg:?}, explain said {legs:?}"
            );
            *got.entry(leg).or_default() += 100.0 / f64::from(FLOWS);
        }
        eprintln!("{scenario:<22} {label:<38} explain {want:.1?}  emulator {got:.1?}");
        let keys: std::collections::BTreeSet<_> = want
            .iter()
            .chain(got.iter())
            .filter(|(_, p)| **p >= 0.5)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let (w, g) = (
                want.get(&k).copied().unwrap_or(0.0),
                got.get(&k).copied().unwrap_or(0.0),
            );
            assert!(
                (w - g).abs() <= 5.0,
                "{scenario}, {label}, {k:?}: explain {w:.1} %, emulator {g:.1} % ({want:?} vs {got:?})"
            );
            assert!(g > 0.0, "{scenario}, {label}: explain's {k:?} never seen");
        }
    }
}

#[test]
fn explain_equals_the_emulators_evaluation_of_the_imported_rules_for_every_rule_kind() {
    let config = config();
    // Every rule is exercised (and the default policy): a rule added without flows fails here.
    let covered: Vec<&str> = makers().iter().filter_map(|(_, r, _)| *r).collect();
    let rules: Vec<&str> = config
        .traffic
        .rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(covered, rules);
    let emu = router(&config);
    let scenarios: &[&[&str]] = &[
        &[],
        &["ISP1"],
        &["ISP2"],
        &["LTE"],
        &["ISP1", "ISP2"],
        &["ISP2", "LTE"],
    ];
    let now = uplinkd::clock::mono();
    for down in scenarios {
        let down: Vec<LinkId> = down.iter().map(|d| LinkId::new(*d)).collect();
        let desired = explain::assume(&config, &down, now);
        apply(&emu, &config, &desired);
        let names: Vec<&str> = down.iter().map(LinkId::as_str).collect();
        let name = if down.is_empty() {
            "all up".to_string()
        } else {
            format!("{} down", names.join("+"))
        };
        compare(&emu, &config, &desired, &name);
    }
}

#[test]
fn a_remembered_source_keeps_its_wan_as_the_sticky_note_says() {
    let config = config();
    let emu = router(&config);
    let desired = explain::assume(&config, &[], uplinkd::clock::mono());
    apply(&emu, &config, &desired);
    let src = Ipv4Addr::new(192, 168, 100, 77);
    let bank =
        |n: u8, port: u16| Flow::tcp("bridge-lan", src, port, Ipv4Addr::new(198, 18, 200, n), 443);
    let first = emu.open_connection(&bank(1, 40_000)).expect("decides");
    let (wan, _) = leg_of_decision(&first, &bank(1, 40_000));
    let note = explain::explain(&config, &desired, &connection(&bank(1, 40_000)))
        .sticky
        .expect("a sticky rule");
    assert!(
        note.wans.iter().any(|w| w.as_str() == wan),
        "{wan} in {note:?}"
    );
    for n in 2..60 {
        let f = bank(n, 40_000 + u16::from(n));
        let (w, _) = leg_of_decision(&emu.route_new_connection(&f).unwrap(), &f);
        assert_eq!(w, wan, "{f:?} keeps the remembered WAN");
    }
}

#[test]
fn inbound_and_bypassed_connections_are_explained_as_the_emulator_routes_them() {
    let config = config();
    let emu = router(&config);
    for down in [&[][..], &["ISP1"][..]] {
        let down: Vec<LinkId> = down.iter().map(|d| LinkId::new(*d)).collect();
        let desired = explain::assume(&config, &down, uplinkd::clock::mono());
        apply(&emu, &config, &desired);
        let flows = [
            // Inbound on ISP2 to the router's own WAN address: marked, routed as connected.
            (
                "inbound",
                Flow::tcp(
                    "ether2",
                    Ipv4Addr::new(203, 0, 113, 9),
                    5555,
                    Ipv4Addr::new(192, 168, 20, 3),
                    443,
                ),
            ),
            // To the LAN: connected.
            (
                "local",
                Flow::udp(
                    "bridge-lan",
                    Ipv4Addr::new(192, 168, 100, 20),
                    5555,
                    Ipv4Addr::new(192, 168, 100, 30),
                    5060,
                ),
            ),
            // To a private range nothing is connected to: main's default route, never a rule.
            (
                "local",
                Flow::udp(
                    "bridge-lan",
                    Ipv4Addr::new(192, 168, 100, 10),
                    5555,
                    Ipv4Addr::new(10, 9, 9, 9),
                    5060,
                ),
            ),
        ];
        for (stage, flow) in flows {
            let e = explain::explain(&config, &desired, &connection(&flow));
            let named = match e.stage {
                explain::Stage::Inbound { .. } => "inbound",
                explain::Stage::LocalBypass { .. } => "local",
                ref other => panic!("{flow:?}: {other:?}"),
            };
            assert_eq!(named, stage, "{flow:?}");
            assert_eq!(e.exits.len(), 1, "{e:?}");
            let d = emu.route_new_connection(&flow).unwrap();
            assert_eq!(
                leg_of_decision(&d, &flow),
                leg_of_exit(&e.exits[0].exit),
                "{flow:?}: {e:?}"
            );
        }
    }
}
