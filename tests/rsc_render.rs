//! Rendered `.rsc` scripts: snapshots of every config variant, the tag discipline (every object
//! tagged, only tagged objects removed, no secret, no `:local`), the reconciler's contract tags,
//! the 7.20/7.21 property names, and the PCC ratio evaluated from the rendered rules.

use std::collections::BTreeMap;
use std::path::Path;

use uplinkd::config::{Config, Env};
use uplinkd::naming;
use uplinkd::reconcile::plan::{Kind, Menu, classify};
use uplinkd::rsc::{self, InstallOptions};
use uplinkd::types::LinkId;

const VARIANTS: &[&str] = &[
    "two-static",
    "two-static-7.21",
    "three-weighted",
    "dhcp-pppoe",
    "lan-off",
    "remote-mixed",
    "identical-modems",
    "lte-backup-tier",
    "traffic-rules",
];

/// Secrets given through the environment, which must never reach a script.
const REST_SECRET: &str = "rest-secret-4711";
const PPPOE_SECRET: &str = "pppoe-secret-0815";

fn variant(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rsc-variants")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut env = Env::empty().with("UPLINKD_REST_PASSWORD", REST_SECRET);
    if text.contains("addressing = \"pppoe\"") {
        env = env.with("UPLINKD_WAN2_PPPOE_PASSWORD", PPPOE_SECRET);
    }
    Config::from_toml_str(&text, &env).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn base(name: &str) -> String {
    rsc::render_base(&variant(name)).unwrap().text
}

fn install(name: &str) -> String {
    rsc::render_install(&variant(name), &InstallOptions::default()).unwrap()
}

#[test]
fn snapshots_of_every_variant() {
    for name in VARIANTS {
        insta::assert_snapshot!(format!("{name}-base"), base(name));
        insta::assert_snapshot!(format!("{name}-install"), install(name));
    }
}

/// The commands that create or delete objects, with the menu they run in.
fn commands(script: &str) -> Vec<(String, String)> {
    let mut menu = String::new();
    let mut out = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('/') && !line.contains('=') && !line.contains('[') {
            menu = line.to_string();
            continue;
        }
        out.push((menu.clone(), line.to_string()));
    }
    out
}

#[test]
fn every_added_object_is_tagged_and_only_tagged_objects_are_removed() {
    for name in VARIANTS {
        for script in [base(name), install(name)] {
            for (menu, line) in commands(&script) {
                // Every `add`, including those inside `:if ... do={ add ... }`, carries a tag as
                // the first word of its comment.
                let quoted = quoted_bytes(&line);
                for (i, _) in line.match_indices("add ") {
                    if quoted[i]
                        || (i > 0 && !line[..i].ends_with(' ') && !line[..i].ends_with('{'))
                    {
                        continue;
                    }
                    let rest = &line[i..];
                    // Inside `do={ add ... }` the add ends at the block's `}` (not one inside
                    // a quoted script).
                    let rest = if i > 0 {
                        let end = rest
                            .match_indices(" }")
                            .map(|(j, _)| j)
                            .find(|j| !quoted[i + j])
                            .unwrap_or(rest.len());
                        &rest[..end]
                    } else {
                        rest
                    };
                    if menu == "/certificate" {
                        // RouterOS certificates take no comment: uplinkd's is known by its name.
                        assert!(rest.starts_with("add name=uplinkd-rest "), "{line}");
                        continue;
                    }
                    let comment = rest
                        .split(" comment=")
                        .nth(1)
                        .unwrap_or_else(|| panic!("{name}: untagged add in {menu}: {line}"));
                    let word = comment
                        .trim_start_matches('"')
                        .split([' ', '"'])
                        .next()
                        .unwrap();
                    assert!(
                        naming::parse_tag(word).is_some(),
                        "{name}: add without an uplinkd tag in {menu}: {line}"
                    );
                }
                // Every removal selects by an uplinkd tag regex.
                if line.contains("remove [") {
                    assert!(
                        line.contains("remove [find where comment~\"^uplinkd:"),
                        "{name}: removal not limited to uplinkd tags in {menu}: {line}"
                    );
                }
                assert!(
                    !line.starts_with(":local ")
                        && !line.contains(" :local ")
                        && !line.contains("{:local "),
                    "{name}: a :local: {line}"
                );
                assert!(!line.contains(":global "), "{name}: a :global: {line}");
            }
            assert!(
                !script.contains(REST_SECRET),
                "{name}: REST password rendered"
            );
            assert!(
                !script.contains(PPPOE_SECRET),
                "{name}: PPPoE password rendered"
            );
            assert!(
                !commands(&script)
                    .iter()
                    .any(|(_, l)| l.replace("password=[:rndstr ", "").contains("password=")),
                "{name}: a password= argument other than the router-made random one"
            );
        }
    }
}

/// For each byte of a line, whether it is inside a quoted string.
fn quoted_bytes(line: &str) -> Vec<bool> {
    let mut out = Vec::with_capacity(line.len());
    let (mut inside, mut escaped) = (false, false);
    for b in line.bytes() {
        out.push(inside);
        if escaped {
            escaped = false;
        } else if inside && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            inside = !inside;
        }
    }
    out
}

/// `(menu, first word of the comment)` of each unconditional tagged add.
fn tags(script: &str) -> Vec<(String, String)> {
    rsc::expected_objects(script)
        .into_iter()
        .map(|e| (e.menu, e.tag))
        .collect()
}

#[test]
fn the_reconcilers_switched_objects_exist_exactly_as_it_classifies_them() {
    for name in VARIANTS {
        let config = variant(name);
        let text = base(name);
        let mut switched: BTreeMap<(LinkId, String), usize> = BTreeMap::new();
        for (menu, tag) in tags(&text) {
            let m = match menu.as_str() {
                "/ip/route" => Menu::Route,
                "/ip/firewall/mangle" => Menu::Mangle,
                _ => continue,
            };
            if let Some((wan, kind)) = classify(m, &tag) {
                let k = match kind {
                    Kind::MainRoute => "main".to_string(),
                    Kind::TableRoute => "table".to_string(),
                    Kind::Pcc(k) => format!("pcc{k}"),
                };
                *switched.entry((wan, k)).or_default() += 1;
            }
        }
        let weights: Vec<_> = config
            .wans
            .iter()
            .map(|w| (w.id.clone(), w.weight, w.tier))
            .collect();
        let mut want: BTreeMap<(LinkId, String), usize> = BTreeMap::new();
        for w in &config.wans {
            want.insert((w.id.clone(), "main".into()), 1);
            want.insert((w.id.clone(), "table".into()), 1);
        }
        // Hybrid PCC has a TCP and an other-protocols rule per bucket, both switched together.
        let per_bucket = if config.balance.pcc == uplinkd::config::PccClassifier::Hybrid {
            2
        } else {
            1
        };
        for b in uplinkd::policy::pcc_layout(&weights) {
            want.insert((b.wan.clone(), format!("pcc{}", b.index)), per_bucket);
        }
        assert_eq!(
            switched, want,
            "{name}: switched objects differ from the contract"
        );

        // The failsafe and cross-WAN fallback routes exist and are never classified as switched.
        for w in &config.wans {
            let t = naming::route_table(&w.id);
            assert!(
                text.contains(&format!("routing-table={t} distance=250 ")),
                "{name}: {t} failsafe"
            );
            for other in config.wans.iter().filter(|o| o.id != w.id) {
                let tag = format!("uplinkd:fallback:{}-via-{}", w.id, other.id);
                assert!(text.contains(&tag), "{name}: missing {tag}");
                assert!(classify(Menu::Route, &tag).is_none());
            }
        }
    }
}

#[test]
fn container_properties_follow_the_target_release() {
    let v20 = install("two-static");
    let v21 = install("two-static-7.21");
    assert!(v20.contains(" mounts=uplinkd-state ") && !v20.contains("mountlists"));
    assert!(v20.contains("add name=uplinkd-state src="));
    assert!(v21.contains(" mountlists=uplinkd-state ") && !v21.contains(" mounts="));
    assert!(v21.contains("add list=uplinkd-state src="));
    for s in [&v20, &v21] {
        assert!(s.contains(" envlists=uplinkd ") && !s.contains(" envlist="));
        assert!(s.contains(" logging=yes start-on-boot=yes "));
        // The management veth first: it holds the container's default route (and its DNS).
        assert!(s.contains("interface=uplinkd-mgmt,uplinkd-wan1,uplinkd-wan2 dns=172.31.254.1 "));
    }
    // The base config does not depend on the release.
    let strip = |s: String| s.replace("RouterOS 7.21", "RouterOS 7.20");
    let a = base("two-static");
    let b = strip(base("two-static-7.21"));
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("uplinkd:marker:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&a), body(&b));
}

#[test]
fn install_pins_each_veth_to_its_wan_and_exempts_rest() {
    let s = install("three-weighted");
    for (i, wan) in ["ISP1", "ISP2", "LTE"].iter().enumerate() {
        let veth = naming::veth_name(i);
        assert!(veth.len() <= naming::MAX_VETH_NAME);
        assert!(s.contains(&format!("add name={veth:?} ")), "{veth}");
        let table = naming::probe_table(&LinkId::new(*wan));
        assert!(s.contains(&format!("action=lookup-only-in-table table={table} ")));
        assert!(s.contains(&format!(
            "routing-table={table} comment=\"uplinkd:probe:{wan}-route"
        )));
    }
    // The exemptions (to main) come before every pin.
    let first_pin = s
        .find("action=lookup-only-in-table table=uplinkd-")
        .unwrap();
    let last_exempt = s.rfind("action=lookup-only-in-table table=main").unwrap();
    assert!(last_exempt < first_pin);
    // The REST accept goes before the first input drop when there is one.
    assert!(s.contains("place-before=[:pick [find where chain=input && action=drop] 0]"));
    // The user only from the veths, created disabled and without a password.
    assert!(s.contains("address=172.31.255.0/30,172.31.255.4/30,172.31.255.8/30 disabled=yes"));
}

#[test]
fn marker_identifies_version_and_content() {
    let a = rsc::render_base(&variant("two-static")).unwrap();
    let again = rsc::render_base(&variant("two-static")).unwrap();
    assert_eq!(a, again, "rendering is deterministic");
    let b = rsc::render_base(&variant("three-weighted")).unwrap();
    assert_ne!(a.marker, b.marker);
    assert!(a.marker.starts_with(&format!(
        "uplinkd:marker:base v={} h=",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        a.text
            .trim_end()
            .lines()
            .rev()
            .nth(1)
            .unwrap()
            .contains(&a.marker)
    );
}

/// One rendered mangle rule, as far as PCC evaluation needs it.
#[derive(Debug)]
struct Rule {
    chain: String,
    args: BTreeMap<String, String>,
    tag: String,
}

/// A fresh router with the script imported: the rendered text is rewritten into add-or-set
/// lines, so the router is the one reader that understands it.
fn imported(script: &str) -> uplinkd_emulator::Emulator {
    let emu = uplinkd_emulator::Emulator::new(uplinkd_emulator::EmulatorConfig {
        ethernet: (1..=6)
            .map(|i| format!("ether{i}"))
            .chain(["lte1".to_string()])
            .collect(),
        ..Default::default()
    });
    emu.import_script(script).expect("the base config imports");
    emu
}

fn mangle_rules(script: &str) -> Vec<Rule> {
    imported(script)
        .objects("/ip/firewall/mangle")
        .into_iter()
        .map(|o| {
            let tag = o
                .get("comment")
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap()
                .to_string();
            Rule {
                chain: o.get("chain").unwrap_or("").to_string(),
                tag,
                args: o.props.clone(),
            }
        })
        .collect()
}

/// A new connection from the LAN to the internet.
struct Conn {
    tcp: bool,
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
}

/// RouterOS's PCC hash is internal; any hash that spreads tuples evenly gives the same shares.
fn hash(c: &Conn, fields: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    match fields {
        "both-addresses-and-ports" => {
            eat(&c.src);
            eat(&c.dst);
            eat(&c.sport.to_be_bytes());
            eat(&c.dport.to_be_bytes());
        }
        "both-addresses" => {
            eat(&c.src);
            eat(&c.dst);
        }
        "src-address" => eat(&c.src),
        other => panic!("classifier {other} not modelled"),
    }
    h
}

/// The connection mark the prerouting chain gives a new LAN connection (None: unmarked, it
/// follows main), with `disabled` WANs' PCC rules switched off as the reconciler does.
fn classify_conn(rules: &[Rule], c: &Conn, disabled: &[&str]) -> Option<String> {
    let mut mark: Option<String> = None;
    for r in rules.iter().filter(|r| r.chain == "prerouting") {
        if let Some(wan) = r.tag.strip_prefix("uplinkd:pcc:")
            && disabled.iter().any(|d| wan.starts_with(&format!("{d}-")))
        {
            continue;
        }
        let a = &r.args;
        match a.get("protocol").map(String::as_str) {
            Some("tcp") if !c.tcp => continue,
            Some("!tcp") if c.tcp => continue,
            _ => {}
        }
        if a.get("in-interface").is_some() {
            continue; // WAN ingress: not a LAN connection
        }
        if a.contains_key("src-address-list") || a.contains_key("dst-address-list") {
            continue; // probe sources and local destinations: not this public destination
        }
        if a.get("dst-address-type").map(String::as_str) == Some("local") {
            continue;
        }
        if a.get("connection-mark").map(String::as_str) == Some("no-mark") && mark.is_some() {
            continue;
        }
        if let Some(pcc) = a.get("per-connection-classifier") {
            let (fields, nk) = pcc.split_once(':').unwrap();
            let (n, k) = nk.split_once('/').unwrap();
            let (n, k): (u64, u64) = (n.parse().unwrap(), k.parse().unwrap());
            if hash(c, fields) % n != k {
                continue;
            }
        }
        match a["action"].as_str() {
            "mark-connection" => mark = Some(a["new-connection-mark"].clone()),
            "mark-routing" => break,
            _ => {}
        }
    }
    mark
}

fn shares(config: &Config, text: &str, disabled: &[&str]) -> BTreeMap<String, u32> {
    shares_of(config, text, disabled, true)
}

fn shares_of(config: &Config, text: &str, disabled: &[&str], tcp: bool) -> BTreeMap<String, u32> {
    let rules = mangle_rules(text);
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..40_000 {
        let c = Conn {
            tcp,
            src: [192, 168, 100, rng.u8(2..254)],
            sport: rng.u16(1024..),
            dst: [198, 51, rng.u8(..), rng.u8(1..255)],
            dport: 443,
        };
        let m = classify_conn(&rules, &c, disabled).unwrap_or_else(|| "main".into());
        *out.entry(m).or_default() += 1;
    }
    let _ = config;
    out
}

fn assert_ratio(got: &BTreeMap<String, u32>, want: &[(&str, u32)]) {
    let n: u32 = got.values().sum();
    let total: u32 = want.iter().map(|(_, w)| w).sum();
    for (mark, w) in want {
        let share = f64::from(*got.get(*mark).unwrap_or(&0)) / f64::from(n);
        let expect = f64::from(*w) / f64::from(total);
        assert!(
            (share - expect).abs() < 0.015,
            "{mark}: share {share:.3}, configured {expect:.3} ({got:?})"
        );
    }
}

#[test]
fn pcc_buckets_give_the_configured_ratio() {
    // 2:2:1 as rendered.
    let c = variant("three-weighted");
    let got = shares(&c, &rsc::render_base(&c).unwrap().text, &[]);
    assert_eq!(
        got.get("main"),
        None,
        "every new LAN connection is classified"
    );
    assert_ratio(&got, &[("conn-ISP1", 2), ("conn-ISP2", 2), ("conn-LTE", 1)]);

    // 3:1 from the two-WAN variant with the weights changed.
    let mut c = variant("two-static");
    c.wans[0].weight = 3;
    c.wans[1].weight = 1;
    let text = rsc::render_base(&c).unwrap().text;
    assert!(text.contains("per-connection-classifier=both-addresses-and-ports:4/3 "));
    let got = shares(&c, &text, &[]);
    assert_ratio(&got, &[("conn-ISP1", 3), ("conn-ISP2", 1)]);

    // With ISP1's PCC rules switched off, its buckets stay unmarked and follow main (to the
    // next WAN by preference, where postrouting marks them by the WAN they really used).
    let got = shares(&c, &text, &["ISP1"]);
    assert_ratio(&got, &[("main", 3), ("conn-ISP2", 1)]);

    // Hybrid: TCP and the other protocols each split 1:1, and all of one host's non-TCP
    // connections take one WAN.
    let c = variant("lan-off");
    let text = rsc::render_base(&c).unwrap().text;
    for tcp in [true, false] {
        let got = shares_of(&c, &text, &[], tcp);
        assert_eq!(
            got.get("main"),
            None,
            "tcp={tcp}: every connection is classified"
        );
        assert_ratio(&got, &[("conn-ISP1", 1), ("conn-ISP2", 1)]);
    }
    let rules = mangle_rules(&text);
    let host = |sport: u16, dst: u8| Conn {
        tcp: false,
        src: [192, 168, 100, 7],
        sport,
        dst: [198, 51, 100, dst],
        dport: 3478,
    };
    let first = classify_conn(&rules, &host(1, 1), &[]);
    assert!((2..200).all(|i| classify_conn(&rules, &host(i, i as u8), &[]) == first));
}

#[test]
fn mangle_order_inbound_bypass_pcc_routing() {
    let text = base("two-static");
    let rules: Vec<Rule> = mangle_rules(&text)
        .into_iter()
        .filter(|r| r.chain == "prerouting")
        .collect();
    let pos = |pred: &dyn Fn(&Rule) -> bool| rules.iter().position(pred).unwrap();
    let inbound = pos(&|r| r.tag.ends_with("-inbound"));
    let bypass = pos(&|r| r.tag == "uplinkd:mangle:local-bypass");
    let router = pos(&|r| r.tag == "uplinkd:mangle:router-bypass");
    let first_pcc = pos(&|r| r.tag.starts_with("uplinkd:pcc:"));
    let first_route_mark = pos(&|r| r.args["action"] == "mark-routing");
    assert!(
        inbound < bypass && bypass < router && router < first_pcc && first_pcc < first_route_mark
    );
    // Marked connections skip FastTrack: uplinkd's own FastTrack rule only takes unmarked ones.
    assert!(text.contains("action=fasttrack-connection hw-offload=yes connection-state=established,related connection-mark=no-mark"));
    // The default deny is in the filter table's real chains, last.
    let emu = imported(&text);
    let input: Vec<_> = emu
        .objects("/ip/firewall/filter")
        .into_iter()
        .filter(|r| r.get("chain") == Some("input"))
        .collect();
    let last = input.last().unwrap();
    assert_eq!(last.get("action"), Some("drop"));
    assert_eq!(last.get("comment"), Some("uplinkd:filter:input-drop"));
}

#[test]
fn install_creates_the_user_with_a_router_made_password() {
    // routeros-lsp marks `/user add password` as required: the user is created with a random
    // password made on the router, so the script holds no secret and nobody knows it.
    for name in VARIANTS {
        let s = install(name);
        let add = s
            .lines()
            .find(|l| l.contains("comment=\"uplinkd:install:user\" }"))
            .unwrap_or_else(|| panic!("{name}: no /user add"));
        assert!(
            add.contains(" add name=\"uplinkd\" password=[:rndstr length=32] group="),
            "{name}: {add}"
        );
        assert!(
            add.contains(" disabled=yes "),
            "{name}: enabled before its owner sets a password: {add}"
        );
        assert!(
            !s.contains(REST_SECRET),
            "{name}: the REST secret is in the script"
        );
    }
}
