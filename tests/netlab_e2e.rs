//! End to end in the namespace lab (root only; required under UPLINKD_TEST_STRICT=1): the real
//! `uplinkd run` in the container namespace probes both WANs (the same monitor IPs on each) with
//! real ICMP through the lab's router and ISPs, and drives the REST emulator that stands for the
//! router. Faults are injected in the lab; the assertions read the emulator's objects.
//!
//! Waits are bounded polls (a limit against hanging, never a speed assertion); the speed goals
//! are measured by scripts/bench-lab.sh.

#[path = "netlab/daemon.rs"]
mod daemon;
#[path = "netlab/lab.rs"]
mod lab;
#[path = "support/smtp.rs"]
mod smtp;

use std::time::{Duration, Instant};

use daemon::{Daemon, Router, wait_until};
use lab::{Lab, Topology};
use uplinkd::emulator::{Connection, Emulator};

/// Short hold-down so recovery fits in a test; everything else is the default profile.
const HOLD_DOWN: Duration = Duration::from_secs(5);
const BIN: &str = env!("CARGO_BIN_EXE_uplinkd");
const LIMIT: Duration = Duration::from_secs(30);

/// `disabled` of every object of `menu` whose comment starts with `prefix`.
fn disabled(emu: &Emulator, menu: &str, prefix: &str) -> Vec<bool> {
    emu.objects(menu)
        .iter()
        .filter(|o| o.get("comment").is_some_and(|c| c.starts_with(prefix)))
        .map(|o| o.get("disabled") == Some("true") || o.get("disabled") == Some("yes"))
        .collect()
}

/// A WAN's switchable objects: its main-table default route and its PCC rules.
fn wan_objects(emu: &Emulator, wan: &str) -> Vec<bool> {
    let mut v = disabled(emu, "/ip/route", &format!("uplinkd:route:{wan}-main"));
    v.extend(disabled(
        emu,
        "/ip/firewall/mangle",
        &format!("uplinkd:pcc:{wan}-"),
    ));
    assert!(v.len() >= 2, "{wan}: no tagged objects in the emulator");
    v
}

fn switched_off(emu: &Emulator, wan: &str) -> bool {
    wan_objects(emu, wan).iter().all(|d| *d)
}

fn carrying(emu: &Emulator, wan: &str) -> bool {
    wan_objects(emu, wan).iter().all(|d| !*d)
}

/// Writes to the objects uplinkd switches (routes, mangle, connections).
fn switch_writes(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.is_write())
        .filter(|r| {
            r.path.starts_with("/rest/ip/route")
                || r.path.starts_with("/rest/ip/firewall/mangle")
                || r.path.starts_with("/rest/ip/firewall/connection")
        })
        .count()
}

struct Setup {
    daemon: Daemon,
    config_path: std::path::PathBuf,
    router: Router,
    lab: Lab,
}

/// A lab, the emulator with the base config's tagged objects, and the daemon, up and probing.
fn setup() -> Setup {
    setup_with(Lab::up(Topology::Veth, 2), "")
}

/// [`setup`] on a lab already up, with `extra` appended to the daemon's config.
fn setup_with(lab: Lab, extra: &str) -> Setup {
    let router = Router::start(&lab);
    let state = daemon::state_dir();
    let mut text = daemon::config_text(
        &lab,
        &router.url,
        &state,
        &format!("hold_down = \"{}s\"", HOLD_DOWN.as_secs()),
    );
    text.push_str(extra);
    let config = daemon::parse_config(&text);
    uplinkd::demo::load_base_objects(&router.emu, &config).expect("base objects");
    let config_path = state.join("uplinkd.toml");
    std::fs::write(&config_path, text).expect("config file");
    let daemon = Daemon::start(&lab, BIN.as_ref(), &config_path);
    let up = wait_until(LIMIT, || {
        daemon.has_line("ISP1") && carrying(&router.emu, "ISP1") && carrying(&router.emu, "ISP2")
    });
    assert!(up, "daemon did not start:\n{}", daemon.output());
    Setup {
        daemon,
        config_path,
        router,
        lab,
    }
}

fn add_connections(emu: &Emulator) {
    for (i, mark) in ["conn-ISP1", "conn-ISP1", "conn-ISP2"].iter().enumerate() {
        emu.add_connection(Connection {
            protocol: "tcp".into(),
            src_address: format!("198.18.200.{}:4000{i}", i + 10),
            dst_address: "198.18.100.3:443".into(),
            connection_mark: (*mark).into(),
        });
    }
}

/// ISP1 blackholed: its route and PCC rules go off over REST, then its connections are removed
/// (ISP2's stay); restored: back on, but not before the hold-down.
#[test]
fn blackhole_fails_over_and_recovers_after_hold_down() {
    if !lab::available("e2e failover") {
        return;
    }
    let s = setup();
    let emu = &s.router.emu;
    add_connections(emu);

    s.lab.fault(1, &["blackhole"]);
    assert!(
        wait_until(LIMIT, || switched_off(emu, "ISP1")),
        "ISP1 never switched off:\n{}",
        s.daemon.output()
    );
    let off_seen = Instant::now();
    assert!(carrying(emu, "ISP2"), "ISP2 must keep carrying");
    assert!(
        wait_until(LIMIT, || !emu
            .connection_marks()
            .iter()
            .any(|m| m == "conn-ISP1")),
        "ISP1's connections were not removed: {:?}",
        emu.connection_marks()
    );
    assert_eq!(emu.connection_marks(), vec!["conn-ISP2".to_string()]);

    s.lab.fault(1, &["clear"]);
    // Until the hold-down can have passed (it started at the DOWN transition, before the
    // switch-off we saw), ISP1 must stay off although its probes answer again.
    let margin = Duration::from_millis(1500);
    while off_seen.elapsed() + margin < HOLD_DOWN {
        assert!(
            switched_off(emu, "ISP1"),
            "ISP1 came back before its hold-down:\n{}",
            s.daemon.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_until(LIMIT, || carrying(emu, "ISP1")),
        "ISP1 never came back:\n{}",
        s.daemon.output()
    );
    assert!(carrying(emu, "ISP2"));
}

/// 20 % iid loss on ISP1, then one of the two monitors unreachable on every WAN: no failover,
/// not a single switching write.
#[test]
fn loss_and_one_dead_monitor_cause_no_failover() {
    if !lab::available("e2e no false failover") {
        return;
    }
    let s = setup();
    let emu = &s.router.emu;
    let before = switch_writes(emu);

    s.lab.fault(1, &["loss", "20"]);
    std::thread::sleep(Duration::from_secs(20));
    s.lab.fault(1, &["clear"]);
    assert_eq!(
        switch_writes(emu),
        before,
        "writes under 20 % loss:\n{}",
        s.daemon.output()
    );

    s.lab.monitor(lab::MONITORS[0], "down");
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        switch_writes(emu),
        before,
        "writes with one monitor down:\n{}",
        s.daemon.output()
    );
    assert!(carrying(emu, "ISP1") && carrying(emu, "ISP2"));
    assert!(!s.daemon.has_line("DOWN"), "{}", s.daemon.output());
}

/// Every WAN down: the daemon sees it (both DOWN) but keeps every route on, so whichever WAN
/// returns first carries at once.
#[test]
fn every_wan_down_keeps_all_routes_enabled() {
    if !lab::available("e2e all down") {
        return;
    }
    let s = setup();
    let emu = &s.router.emu;
    s.lab.fault(1, &["blackhole"]);
    s.lab.fault(2, &["blackhole"]);
    assert!(
        wait_until(LIMIT, || {
            s.daemon.has_line("ISP1 DOWN") && s.daemon.has_line("ISP2 DOWN")
        }),
        "both WANs never went down:\n{}",
        s.daemon.output()
    );
    // Let any pass triggered by the second DOWN finish.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        carrying(emu, "ISP1") && carrying(emu, "ISP2"),
        "routes switched off with every WAN down:\n{}",
        s.daemon.output()
    );
}

/// The daemon is SIGKILLed in the middle of a failover (right after its first switching write)
/// and started again: the router converges to the right state.
#[test]
fn daemon_killed_during_failover_converges_after_restart() {
    if !lab::available("e2e kill and restart") {
        return;
    }
    let mut s = setup();
    let emu = s.router.emu.clone();
    let before = switch_writes(&emu);
    s.lab.fault(1, &["blackhole"]);
    assert!(
        wait_until(LIMIT, || switch_writes(&emu) > before),
        "no failover write:\n{}",
        s.daemon.output()
    );
    s.daemon.kill();
    let half_done = wan_objects(&emu, "ISP1");

    let daemon = Daemon::start(&s.lab, BIN.as_ref(), &s.config_path);
    assert!(
        wait_until(LIMIT * 2, || switched_off(&emu, "ISP1")
            && carrying(&emu, "ISP2")),
        "router did not converge after restart (state at kill: {half_done:?}):\n{}",
        daemon.output()
    );
    s.lab.fault(1, &["clear"]);
    assert!(
        wait_until(LIMIT, || carrying(&emu, "ISP1")),
        "ISP1 never came back after restart:\n{}",
        daemon.output()
    );
}

/// The whole chain with nothing scripted: real ICMP through the lab → the health core → REST
/// writes to the emulator → an alert mailed through a real SMTP server (STARTTLS, AUTH, the CA
/// pinned) at the failure, and again at the recovery.
#[test]
fn blackhole_is_mailed_at_failure_and_recovery() {
    if !lab::available("e2e alert mail")
        || !uplinkd::testenv::require("SMTP server (python3 + aiosmtpd)", smtp::available())
    {
        return;
    }
    let lab = Lab::up(Topology::Veth, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = smtp::make_certs(dir.path());
    let server =
        smtp::SmtpServer::start_in(Some(&lab.ns("ctr")), dir.path(), &certs, Some(0), None);
    let port = server.starttls_port.expect("starttls port");
    let email = format!(
        "\n[email]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\n\
         user = \"{}\"\npassword = \"{}\"\nfrom = \"router@example.net\"\n\
         to = [\"ops@example.net\"]\nca_file = \"{}\"\n",
        smtp::USER,
        smtp::PASSWORD,
        certs.ca.display()
    );
    let s = setup_with(lab, &email);
    let subjects = || -> Vec<String> {
        server
            .messages()
            .iter()
            .filter_map(|m| m["data"].as_str())
            .filter_map(|d| d.lines().find(|l| l.starts_with("Subject: ")))
            .map(str::to_string)
            .collect()
    };

    s.lab.fault(1, &["blackhole"]);
    assert!(
        wait_until(LIMIT, || switched_off(&s.router.emu, "ISP1")),
        "ISP1 never switched off:\n{}",
        s.daemon.output()
    );
    assert!(
        wait_until(LIMIT, || subjects().iter().any(|l| l.contains("ISP1 DOWN"))),
        "no DOWN mail: {:?}\n{}",
        subjects(),
        s.daemon.output()
    );
    s.lab.fault(1, &["clear"]);
    assert!(
        wait_until(LIMIT, || carrying(&s.router.emu, "ISP1")),
        "ISP1 never came back:\n{}",
        s.daemon.output()
    );
    assert!(
        wait_until(LIMIT, || subjects().iter().any(|l| l.contains("ISP1 UP"))),
        "no UP mail: {:?}\n{}",
        subjects(),
        s.daemon.output()
    );
    let all = subjects();
    assert_eq!(all.len(), 2, "one mail per transition: {all:?}");
    assert!(!all.iter().any(|l| l.contains("ISP2")), "{all:?}");
}
