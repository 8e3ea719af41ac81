//! Backup tiers end to end: the daemon on the emulated router, defconf imported first and
//! prepared as docs/install.md says, with the LTE backup of config.example.toml uncommented as a
//! user would. fibre and cable (ISP1, ISP2) carry; LTE only while both are down, and hands back
//! (draining or flushed, as `[balance] handback` says) as soon as one returns.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use std::collections::BTreeMap;
use uplinkd::config::{Config, Env, Trust};
use uplinkd::types::{LinkId, Secret};

use uplinkd_emulator::{Emulator, RunningEmulator};
use uplinkd_testkit::scripted::Behaviour;

const SETTLE: Duration = Duration::from_secs(5);

fn config(handback: &str, server: &RunningEmulator) -> Config {
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    let mut config = Config::from_toml_str(&example_with_lte(handback), &env).expect("resolves");
    config.router.rest.url = server.url().parse().unwrap();
    config.router.rest.trust = Trust::PlainHttp;
    config.router.rest.password = Secret::new("demo");
    config
}

async fn router(
    config_of: impl Fn(&RunningEmulator) -> Config,
) -> (Emulator, RunningEmulator, Config) {
    hex_with_lte(config_of, |_| {}).await
}

/// Tag → enabled for the switched objects of `wan`.
fn objects_of(emu: &Emulator, wan: &str) -> Vec<(String, bool)> {
    switched(emu)
        .into_iter()
        .filter(|(tag, _)| {
            tag.starts_with(&format!("uplinkd:route:{wan}-"))
                || tag.starts_with(&format!("uplinkd:pcc:{wan}-"))
        })
        .collect()
}

/// The backup as it is while tier 1 carries: draining, or off with `handback = "flush"`.
fn idle(emu: &Emulator, handback: &str) -> bool {
    match handback {
        "drain" => draining(emu, "LTE"),
        _ => wan_is(emu, "LTE", false),
    }
}

/// LTE drains: PCC rules and main route off, its own table's route on.
fn draining(emu: &Emulator, wan: &str) -> bool {
    let objs = objects_of(emu, wan);
    !objs.is_empty() && objs.iter().all(|(tag, on)| *on == tag.ends_with("-table"))
}

/// Where 2,000 new TCP connections from LAN hosts to distinct public addresses leave, by WAN,
/// in percent: the rendered rules' own semantics, as switched by the daemon.
fn shares(emu: &Emulator) -> BTreeMap<String, f64> {
    shares_of(emu, lan_flows(&emu.l3_interface("ether3"), 10, 200))
}

fn share(s: &BTreeMap<String, f64>, wan: &str) -> f64 {
    s.get(wan).copied().unwrap_or(0.0)
}

fn lte() -> LinkId {
    LinkId::new("LTE")
}

/// Both tier-1 WANs fail, LTE carries, ISP1 returns: returns the router (and its listener, which
/// must outlive the daemon) at the handback.
async fn promote_then_hand_back(handback: &str) -> (Emulator, RunningEmulator, Daemon) {
    let (emu, server, config) = router(|s| config(handback, s)).await;
    let hold_down = config.health.hold_down;
    let daemon = Daemon::start(config);
    tokio::time::sleep(SETTLE).await;
    // Start-up: no evidence yet, tier 1 carries, the backup takes no new connection from the
    // first pass (draining: its own table's route stays on for what it has).
    assert!(
        wan_is(&emu, "ISP1", true) && wan_is(&emu, "ISP2", true),
        "{:?}",
        switched(&emu)
    );
    assert!(idle(&emu, handback), "{:?}", objects_of(&emu, "LTE"));
    // The rendered PCC of tier 1 (weights 1:1) splits new connections evenly; none use LTE.
    let s = shares(&emu);
    eprintln!("new connections by WAN at start (%): {s:?}");
    assert!((share(&s, "ISP1") - 50.0).abs() < 5.0, "{s:?}");
    assert!((share(&s, "ISP2") - 50.0).abs() < 5.0, "{s:?}");
    assert_eq!(share(&s, "LTE"), 0.0, "{s:?}");

    // ISP1 fails: ISP2 carries alone, LTE stays off.
    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        wan_is(&emu, "ISP2", true) && idle(&emu, handback),
        "{:?}",
        switched(&emu)
    );
    let s = shares(&emu);
    assert_eq!(share(&s, "ISP2"), 100.0, "{s:?}");

    // ISP2 fails too: LTE carries, tier 1 stays off (not every WAN is down).
    daemon.fail(2);
    assert!(
        wait_for(Duration::from_secs(10), || wan_is(&emu, "LTE", true)).await,
        "LTE was not promoted: {:?}",
        switched(&emu)
    );
    assert!(
        wan_is(&emu, "ISP1", false) && wan_is(&emu, "ISP2", false),
        "{:?}",
        switched(&emu)
    );
    let s = shares(&emu);
    assert_eq!(
        share(&s, "LTE"),
        100.0,
        "every new connection leaves by LTE: {s:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    assert_eq!(
        connections(&emu, "conn-ISP2"),
        0,
        "ISP2's connections flushed"
    );
    add_connections(&emu, "LTE");

    // ISP1 returns (after its hold-down): it carries, LTE hands back.
    daemon.repair(1);
    assert!(
        wait_for(hold_down + Duration::from_secs(30), || wan_is(
            &emu, "ISP1", true
        ))
        .await,
        "ISP1 did not come back: {:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.wait_jobs().await;
    assert!(wan_is(&emu, "ISP2", false), "{:?}", switched(&emu));
    // Handed back: every new connection leaves by ISP1, the only tier-1 WAN up.
    let s = shares(&emu);
    assert_eq!(share(&s, "ISP1"), 100.0, "{s:?}");
    (emu, server, daemon)
}

#[tokio::test(start_paused = true)]
async fn lte_backup_carries_only_while_both_tier_one_wans_are_down_and_drains_on_handback() {
    let (emu, _server, daemon) = promote_then_hand_back("drain").await;
    assert!(draining(&emu, "LTE"), "{:?}", objects_of(&emu, "LTE"));
    assert_eq!(
        connections(&emu, "conn-LTE"),
        3,
        "a draining backup keeps its connections"
    );
    // LTE failing while it drains: its table route goes off and its connections go.
    daemon.prober.set(&lte(), Behaviour::Silent);
    assert!(
        wait_for(Duration::from_secs(10), || wan_is(&emu, "LTE", false)).await,
        "{:?}",
        objects_of(&emu, "LTE")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    assert_eq!(connections(&emu, "conn-LTE"), 0);
    assert!(
        emu.log_entries()
            .iter()
            .any(|e| e.message.starts_with("[FAILOVER] ISP2 DOWN")),
        "{:?}",
        emu.log_entries()
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn lte_backup_is_flushed_on_handback_when_configured() {
    let (emu, _server, daemon) = promote_then_hand_back("flush").await;
    assert!(wan_is(&emu, "LTE", false), "{:?}", objects_of(&emu, "LTE"));
    assert_eq!(
        connections(&emu, "conn-LTE"),
        0,
        "handback = flush removes them"
    );
    assert_eq!(
        connections(&emu, "conn-ISP1"),
        0,
        "ISP1's were flushed when it failed"
    );
    daemon.stop().await;
}
