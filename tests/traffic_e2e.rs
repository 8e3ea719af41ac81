//! Traffic rules end to end: the daemon on the emulated router after defconf, prepared as
//! docs/install.md says, with config.example.toml's LTE backup uncommented and the rules of
//! docs/config.md's "Traffic rules" examples added. Every answer comes from the emulator's
//! evaluation of the imported mangle rules and routes, as the daemon switched them: a failover
//! inside each policy kind (failover order, balanced set, one WAN with each last resort), PCC
//! ratios per policy, a guest VLAN that never uses LTE, and a sticky rule whose memory survives
//! resyncs and is released when its WAN dies.

mod reconcile_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use reconcile_support::*;
use uplinkd::config::{Config, Env, Trust};
use uplinkd::types::{LinkId, Secret};
use uplinkd_emulator::{Emulator, Flow, RunningEmulator};
use uplinkd_testkit::scripted::Behaviour;

/// The rules as docs/config.md shows them (its `traffic-rules` block), typed into the config.
fn rules() -> String {
    reconcile_support::docs::block(reconcile_support::docs::CONFIG_MD, "traffic-rules").join("\n")
}

const SETTLE: Duration = Duration::from_secs(5);

fn config(server: &RunningEmulator) -> Config {
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    let text = format!("{}\n{}", example_with_lte("drain"), rules());
    let mut config = Config::from_toml_str(&text, &env).expect("resolves");
    config.router.rest.url = server.url().parse().unwrap();
    config.router.rest.trust = Trust::PlainHttp;
    config.router.rest.password = Secret::new("demo");
    // Resyncs every second: the sticky memory must survive them.
    config.reconcile.resync_interval = Duration::from_secs(1);
    config
}

/// The router with the user's guest VLAN (on defconf's bridge) and the base config imported.
async fn router() -> (Emulator, RunningEmulator, Config) {
    hex_with_lte(config, |emu| {
        for line in [
            "/interface vlan add name=vlan-guest vlan-id=20 interface=bridge comment=\"guest Wi-Fi\"",
            "/ip address add address=192.168.30.1/24 interface=vlan-guest comment=\"guests\"",
        ] {
            emu.import_script(line)
                .unwrap_or_else(|e| panic!("typing {line:?}: {e}"));
        }
    })
    .await
}

fn lan(emu: &Emulator) -> String {
    emu.l3_interface("ether3")
}

fn public(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1)
}

/// 1,000 SIP/RTP flows from LAN hosts.
fn voip(emu: &Emulator) -> Vec<Flow> {
    let lan = lan(emu);
    (0..1_000u32)
        .map(|i| {
            let src = Ipv4Addr::new(192, 168, 100, 50 + (i % 40) as u8);
            let port = if i % 2 == 0 {
                5060
            } else {
                10_000 + (i % 10_000) as u16
            };
            Flow::udp(&lan, src, 5_000 + i as u16, public(i), port)
        })
        .collect()
}

/// 1,000 TCP connections from one LAN host.
fn from_host(emu: &Emulator, host: u8) -> Vec<Flow> {
    let lan = lan(emu);
    let src = Ipv4Addr::new(192, 168, 100, host);
    (0..1_000u32)
        .map(|i| Flow::tcp(&lan, src, 30_000 + i as u16, public(i), 443))
        .collect()
}

/// 2,000 TCP connections from the guest VLAN.
fn guests() -> Vec<Flow> {
    (0..2_000u32)
        .map(|i| {
            let src = Ipv4Addr::new(192, 168, 30, 10 + (i % 200) as u8);
            Flow::tcp(
                "vlan-guest",
                src,
                40_000 + (i % 20_000) as u16,
                public(i),
                443,
            )
        })
        .collect()
}

/// Everything else from the LAN (hosts .100-.199: no rule matches them).
fn others(emu: &Emulator) -> Vec<Flow> {
    lan_flows(&lan(emu), 100, 100).collect()
}

fn shares(emu: &Emulator, flows: Vec<Flow>) -> BTreeMap<String, f64> {
    shares_of(emu, flows)
}

fn only(s: &BTreeMap<String, f64>, wan: &str) -> bool {
    s.len() == 1 && s.get(wan) == Some(&100.0)
}

fn near(s: &BTreeMap<String, f64>, wan: &str, percent: f64) -> bool {
    (s.get(wan).copied().unwrap_or(0.0) - percent).abs() < 5.0
}

/// 40 LAN hosts each open 10 connections to the banks (distinct addresses and ports, so PCC
/// alone would spread each host over both WANs); returns each host's WANs.
fn bank_sessions(emu: &Emulator, round: u32) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let lan = lan(emu);
    let mut out: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for h in 0..40u8 {
        let src = Ipv4Addr::new(192, 168, 100, 60 + h);
        for c in 0..10u32 {
            let dst = Ipv4Addr::new(198, 18, 200, 1 + ((c * 7 + round) % 250) as u8);
            let flow = Flow::tcp(&lan, src, 20_000 + (round * 10 + c) as u16, dst, 443);
            out.entry(src)
                .or_default()
                .push(leaves_by(emu, &flow, true));
        }
    }
    out
}

/// The hosts a sticky list holds.
fn remembered(emu: &Emulator, wan: &str) -> usize {
    let list = format!("uplinkd.sticky.banking.{wan}");
    emu.objects("/ip/firewall/address-list")
        .iter()
        .filter(|e| e.get("list") == Some(list.as_str()))
        .count()
}

fn every_host_on_one_wan(s: &BTreeMap<Ipv4Addr, Vec<String>>) -> bool {
    s.values().all(|w| w.iter().all(|x| *x == w[0]))
}

fn steer(emu: &Emulator, rule: &str) -> BTreeMap<String, bool> {
    emu.objects("/ip/firewall/mangle")
        .iter()
        .filter_map(|o| {
            let c = o.get("comment")?.split_whitespace().next()?.to_string();
            c.starts_with(&format!("uplinkd:steer:{rule}."))
                .then(|| (c, !matches!(o.get("disabled"), Some("true" | "yes"))))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_policy_fails_over_inside_its_own_wans_and_sticky_sources_keep_theirs() {
    let (emu, _server, config) = router().await;
    let hold_down = config.health.hold_down;
    let daemon = Daemon::start(config);
    tokio::time::sleep(SETTLE).await;

    // ---- Every WAN up.
    let s = shares(&emu, voip(&emu));
    assert!(
        only(&s, "ISP2"),
        "VoIP on ISP2, the first of its failover order: {s:?}"
    );
    let s = shares(&emu, from_host(&emu, 10));
    assert!(only(&s, "ISP1"), "the server leaves by ISP1 only: {s:?}");
    let s = shares(&emu, from_host(&emu, 11));
    assert!(only(&s, "ISP2"), "the NAS by ISP2: {s:?}");
    let s = shares(&emu, guests());
    eprintln!("guests, all up (%): {s:?}");
    assert!(
        near(&s, "ISP1", 75.0) && near(&s, "ISP2", 25.0) && !s.contains_key("LTE"),
        "guests balanced 3:1 over ISP1 and ISP2: {s:?}"
    );
    let s = shares(&emu, others(&emu));
    eprintln!("everything else, all up (%): {s:?}");
    assert!(
        near(&s, "ISP1", 50.0) && near(&s, "ISP2", 50.0),
        "the default policy, 1:1: {s:?}"
    );
    let first = bank_sessions(&emu, 0);
    assert!(every_host_on_one_wan(&first), "{first:?}");
    let on_isp1 = first.values().filter(|w| w[0] == "ISP1").count();
    eprintln!("bank hosts on ISP1: {on_isp1} of 40");
    assert!(
        (8..=32).contains(&on_isp1),
        "sticky hosts are still balanced over both WANs: {on_isp1} of 40 on ISP1"
    );
    assert_eq!(remembered(&emu, "ISP1") + remembered(&emu, "ISP2"), 40);

    // ---- Resyncs (every second) keep the memory: each host again on its first WAN, with new
    // destinations and ports.
    tokio::time::sleep(Duration::from_secs(5)).await;
    emu.wait_jobs().await;
    assert_eq!(remembered(&emu, "ISP1") + remembered(&emu, "ISP2"), 40);
    let again = bank_sessions(&emu, 1);
    for (host, wans) in &again {
        assert_eq!(
            wans[0], first[host][0],
            "{host} kept its WAN across resyncs"
        );
    }
    assert!(every_host_on_one_wan(&again), "{again:?}");

    // ---- ISP1 fails.
    add_connections(&emu, "ISP2");
    let isp2_before = connections(&emu, "conn-ISP2");
    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.wait_jobs().await;
    assert!(only(&shares(&emu, voip(&emu)), "ISP2"));
    let s = shares(&emu, from_host(&emu, 10));
    assert!(
        only(&s, "dropped"),
        "the server never leaves by another address: {s:?}"
    );
    assert!(only(&shares(&emu, from_host(&emu, 11)), "ISP2"));
    let s = shares(&emu, guests());
    assert!(only(&s, "ISP2"), "guests fail over inside their set: {s:?}");
    assert!(only(&shares(&emu, others(&emu)), "ISP2"));
    assert_eq!(remembered(&emu, "ISP1"), 0, "ISP1's sticky hosts released");
    let moved = bank_sessions(&emu, 2);
    assert!(
        moved.values().all(|w| w.iter().all(|x| x == "ISP2")),
        "{moved:?}"
    );
    assert_eq!(remembered(&emu, "ISP2"), 40);
    assert_eq!(
        connections(&emu, "conn-ISP2"),
        isp2_before,
        "connections on the healthy WAN are never touched"
    );

    // ---- ISP2 fails too: LTE carries the default policy and the `any` last resorts; the
    // guests and the server are dropped rather than use LTE.
    daemon.fail(2);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "LTE", true)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.wait_jobs().await;
    let s = shares(&emu, voip(&emu));
    assert!(
        only(&s, "LTE"),
        "VoIP's last resort (any) takes the main table: {s:?}"
    );
    assert!(only(&shares(&emu, from_host(&emu, 11)), "LTE"));
    assert!(only(&shares(&emu, from_host(&emu, 10)), "dropped"));
    let s = shares(&emu, guests());
    assert!(only(&s, "dropped"), "a guest VLAN never uses LTE: {s:?}");
    assert!(only(&shares(&emu, others(&emu)), "LTE"));
    assert_eq!(remembered(&emu, "ISP2"), 0, "ISP2's sticky hosts released");
    assert!(
        steer(&emu, "guests").values().all(|on| !on),
        "{:?}",
        steer(&emu, "guests")
    );

    // ---- ISP2 returns (after its hold-down): VoIP, the NAS and the guests are back on it.
    daemon.repair(2);
    assert!(
        wait_for(hold_down + Duration::from_secs(30), || wan_is(
            &emu, "ISP2", true
        ))
        .await,
        "{:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.wait_jobs().await;
    assert!(only(&shares(&emu, voip(&emu)), "ISP2"));
    assert!(only(&shares(&emu, from_host(&emu, 11)), "ISP2"));
    assert!(only(&shares(&emu, guests()), "ISP2"));
    assert!(only(&shares(&emu, others(&emu)), "ISP2"));

    // ---- ISP1 returns: the server leaves again, the guests are 3:1 again, VoIP stays on ISP2
    // (the first of its order).
    daemon.repair(1);
    assert!(
        wait_for(hold_down + Duration::from_secs(30), || wan_is(
            &emu, "ISP1", true
        ))
        .await,
        "{:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(only(&shares(&emu, from_host(&emu, 10)), "ISP1"));
    let s = shares(&emu, guests());
    assert!(near(&s, "ISP1", 75.0) && near(&s, "ISP2", 25.0), "{s:?}");
    assert!(only(&shares(&emu, voip(&emu)), "ISP2"));
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_wan_that_a_rule_uses_keeps_its_table_and_connections() {
    // The LTE backup (tier 2) is Standby for the default policy while ISP1 and ISP2 work; a rule
    // that sends a camera's uploads to LTE only keeps LTE's own table on and its connections.
    let (emu, _server, mut config) = router().await;
    let text = format!(
        "{}\n{}\n[[policy]]\nname = \"lte\"\nkind = \"only\"\nwans = [\"LTE\"]\nlast_resort = \"drop\"\n\n[[rule]]\nname = \"camera\"\nsrc_address = \"192.168.100.12\"\npolicy = \"lte\"\n",
        example_with_lte("flush"),
        rules()
    );
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    let fresh = Config::from_toml_str(&text, &env).expect("resolves");
    config.traffic = fresh.traffic;
    config.balance = fresh.balance;
    emu.import_script(&uplinkd::rsc::render_base(&config).unwrap().text)
        .expect("the base config with the camera rule imports");
    add_connections(&emu, "LTE");
    let daemon = Daemon::start(config);
    tokio::time::sleep(SETTLE).await;
    emu.wait_jobs().await;
    let s = shares(&emu, from_host(&emu, 12));
    assert!(only(&s, "LTE"), "the camera leaves by LTE: {s:?}");
    assert!(
        near(&shares(&emu, others(&emu)), "ISP1", 50.0),
        "the default policy does not use LTE"
    );
    assert_eq!(
        connections(&emu, "conn-LTE"),
        3,
        "handback = flush does not flush a WAN a rule uses"
    );
    // LTE fails: the camera's uploads are dropped, LTE's connections flushed.
    daemon.prober.set(&LinkId::new("LTE"), Behaviour::Silent);
    assert!(
        wait_for(Duration::from_secs(10), || {
            emu.objects("/ip/route").iter().any(|r| {
                r.get("comment")
                    .is_some_and(|c| c.starts_with("uplinkd:route:LTE-table"))
                    && matches!(r.get("disabled"), Some("true" | "yes"))
            })
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.wait_jobs().await;
    assert!(only(&shares(&emu, from_host(&emu, 12)), "dropped"));
    assert_eq!(connections(&emu, "conn-LTE"), 0);
    daemon.stop().await;
}

#[tokio::test]
async fn a_src_dst_sticky_rule_keeps_each_pair_on_its_first_wan() {
    // Every line as imported (every WAN usable): a pair's first connection is balanced by PCC,
    // and every later connection of the pair, whatever its ports, takes the same WAN.
    let text = format!(
        "{}\n[lists]\nshops = [\"198.18.210.0/24\"]\n\n[[policy]]\nname = \"pair\"\nkind = \"balanced\"\nwans = [\"ISP1\", \"ISP2\"]\n\n[[rule]]\nname = \"shops\"\ndst_address_list = \"shops\"\nprotocol = \"tcp\"\ndst_port = 443\npolicy = \"pair\"\nsticky = \"src+dst\"\nsticky_timeout = \"10m\"\n",
        example_with_lte("drain")
    );
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    let config = Config::from_toml_str(&text, &env).expect("resolves");
    let emu = prepared_hex();
    emu.import_script(&uplinkd::rsc::render_base(&config).unwrap().text)
        .expect("the base config imports");
    let lan = lan(&emu);
    let mut first: BTreeMap<(Ipv4Addr, Ipv4Addr), String> = BTreeMap::new();
    for round in 0..5u16 {
        for h in 0..20u8 {
            for d in 0..3u8 {
                let src = Ipv4Addr::new(192, 168, 100, 20 + h);
                let dst = Ipv4Addr::new(198, 18, 210, 1 + d + 3 * h);
                let flow = Flow::tcp(&lan, src, 10_000 + round * 100 + u16::from(d), dst, 443);
                let wan = leaves_by(&emu, &flow, true);
                let was = first.entry((src, dst)).or_insert_with(|| wan.clone());
                assert_eq!(*was, wan, "{src} → {dst}, round {round}");
            }
        }
    }
    let on_isp1 = first.values().filter(|w| *w == "ISP1").count();
    eprintln!("src+dst pairs on ISP1: {on_isp1} of {}", first.len());
    assert!(
        (10..=50).contains(&on_isp1),
        "pairs still balanced: {on_isp1}"
    );
    let listed = |list: &str| {
        emu.objects("/ip/firewall/address-list")
            .iter()
            .filter(|e| e.get("list").is_some_and(|l| l.starts_with(list)))
            .count()
    };
    assert!(
        listed("uplinkd.sticky.shops.") >= 20,
        "every source remembered"
    );
    assert!(
        listed("uplinkd.stickyd.shops.") >= 60,
        "every destination remembered"
    );
}
