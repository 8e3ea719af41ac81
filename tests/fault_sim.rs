//! A whole-system fault simulation (issue 13.2): the real daemon (health, policy, reconcile and
//! the REST client, with scripted probe outcomes) against the emulated router on tokio's paused
//! clock, driven by a seed that draws random faults: WAN outages and flaps, REST 500s, hangs,
//! 401s and closed connections, router reboots, hand edits of switched objects, and daemon
//! restarts (also in the middle of a failover). After every step it checks invariants:
//!
//! - never every WAN off (some switched route or PCC rule is always on);
//! - the user's own (untagged) objects are never changed;
//! - a WAN's connections are flushed only after its routes were switched off, and a traffic
//!   rule's sticky memory of a WAN released only after its sticky line was;
//! - no panic (a panicking daemon task fails the join);
//! - after the faults stop, within a bounded time, the router equals the desired state (every
//!   WAN healthy, so every switched object on, every traffic rule's line too, the status
//!   globals `up`).
//!
//! `FAULT_SIM_SEEDS` (default 40; CI sets 1000) chooses how many seeds run, `FAULT_SIM_FIRST`
//! the first seed; a violation names the seed that reproduces it.

mod reconcile_support;

use std::collections::BTreeMap;
use std::time::Duration;

use reconcile_support::*;
use uplinkd_emulator::{Emulator, Fault, FaultKind, RebootMode};

/// Virtual time a seed runs faults for, and the step between two draws.
const FAULT_TIME: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(4);
/// Bound on convergence once the faults stop: hold-down (30 s), flap damping's longest, a
/// resync and the REST client's backoff.
const CONVERGE_WITHIN: Duration = Duration::from_secs(600);

fn untagged(emu: &Emulator) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    [
        "/ip/route",
        "/ip/firewall/mangle",
        "/ip/firewall/filter",
        "/ip/firewall/nat",
    ]
    .iter()
    .map(|m| {
        (
            m.to_string(),
            emu.objects(m)
                .into_iter()
                .filter(|o| !o.get("comment").unwrap_or("").starts_with("uplinkd:"))
                .map(|o| o.props)
                .collect(),
        )
    })
    .collect()
}

/// Not every switched object is off. (Mid-pass a WAN can be half switched: a REST fault after
/// its routes and before its PCC rules; the failsafe routes, never switched, keep a default
/// route in `main` meanwhile. What must never happen is every WAN switched off.)
fn some_wan_on(emu: &Emulator) -> bool {
    switched(emu).values().any(|on| *on)
}

/// Every flush of a WAN's connections comes after a switch-off of its routes or PCC rules (in
/// request order, since the last switch-on), by the daemon or by a hand edit (`edits`: the
/// request count at the edit, the WAN, whether it switched off).
fn flushes_follow_switches(
    emu: &Emulator,
    edits: &[(usize, String, bool)],
) -> Result<(usize, usize), String> {
    // Object id -> WAN, from the switched objects (ids are stable: no import runs here).
    let mut wan_of: BTreeMap<String, String> = BTreeMap::new();
    for path in ["/ip/route", "/ip/firewall/mangle"] {
        for o in emu.objects(path) {
            let Some(c) = o.get("comment") else { continue };
            let name = c
                .strip_prefix("uplinkd:route:")
                .or_else(|| c.strip_prefix("uplinkd:pcc:"));
            if let Some(wan) = name.and_then(|n| n.split('-').next()) {
                wan_of.insert(format!("{path}:{}", o.id), wan.to_string());
            }
        }
    }
    let wans_in = |path: &str, body: &str| -> Vec<String> {
        body.split("\"numbers\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(|ids| {
                ids.split(',')
                    .filter_map(|i| wan_of.get(&format!("{path}:{i}")).cloned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Sticky lines: object id -> (rule, WAN); a rule's memory of a WAN may be released only
    // after its sticky line for that WAN was switched off.
    let mut sticky_of: BTreeMap<String, (String, String)> = BTreeMap::new();
    for o in emu.objects("/ip/firewall/mangle") {
        let comment = o.get("comment").unwrap_or("");
        if let Some((rule, wan, uplinkd::traffic::SteerKind::Sticky)) =
            uplinkd::reconcile::plan::classify_steer(uplinkd::reconcile::Menu::Mangle, comment)
        {
            sticky_of.insert(o.id.clone(), (rule.to_string(), wan.to_string()));
        }
    }
    let mut sticky_off: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut off: BTreeMap<String, bool> = BTreeMap::new();
    let mut flushes = 0;
    let mut releases = 0;
    let mut edits = edits.iter().peekable();
    for (i, r) in emu.requests().iter().enumerate() {
        while let Some((at, wan, disabled)) = edits.peek() {
            if *at > i {
                break;
            }
            if *disabled {
                off.insert(wan.clone(), true);
            }
            edits.next();
        }
        if r.status >= 300 {
            continue;
        }
        for path in ["/ip/route", "/ip/firewall/mangle"] {
            if r.path.starts_with(&format!("/rest{path}/disable")) {
                for w in wans_in(path, &r.body) {
                    off.insert(w, true);
                }
            } else if r.path.starts_with(&format!("/rest{path}/enable")) {
                for w in wans_in(path, &r.body) {
                    off.insert(w, false);
                }
            }
        }
        for (action, is_off) in [("disable", true), ("enable", false)] {
            if r.path
                .starts_with(&format!("/rest/ip/firewall/mangle/{action}"))
            {
                let ids = r
                    .body
                    .split("\"numbers\":\"")
                    .nth(1)
                    .and_then(|x| x.split('"').next())
                    .unwrap_or("");
                for id in ids.split(',') {
                    if let Some(k) = sticky_of.get(id) {
                        sticky_off.insert(k.clone(), is_off);
                    }
                }
            }
        }
        if r.path == "/rest/execute" && r.body.contains("address-list remove") {
            for ((rule, wan), is_off) in &sticky_off {
                let list =
                    uplinkd::traffic::sticky_src_list(rule, &uplinkd::types::LinkId::new(wan));
                if r.body.contains(&format!("\\\"{list}\\\"")) && !is_off {
                    return Err(format!(
                        "request {i}: rule {rule}'s memory of {wan} released while its sticky line is on"
                    ));
                }
            }
            releases += 1;
        }
        if r.path == "/rest/execute" && r.body.contains("connection remove") {
            for wan in ["ISP1", "ISP2"] {
                if r.body.contains(&format!("conn-{wan}")) {
                    if !off.get(wan).copied().unwrap_or(false) {
                        return Err(format!("request {i}: {wan} flushed before its switch-off"));
                    }
                    flushes += 1;
                }
            }
        }
    }
    Ok((flushes, releases))
}

fn traffic_rules() -> uplinkd::traffic::Traffic {
    let text = format!(
        "{}\n[lists]\nbanks = [\"198.18.200.0/24\"]\n\n[[policy]]\nname = \"voip\"\nkind = \"failover\"\nwans = [\"ISP2\", \"ISP1\"]\n\n[[policy]]\nname = \"pair\"\nkind = \"balanced\"\nwans = [\"ISP1\", \"ISP2\"]\nlast_resort = \"drop\"\n\n[[rule]]\nname = \"voip\"\nprotocol = \"udp\"\ndst_port = 5060\npolicy = \"voip\"\n\n[[rule]]\nname = \"banking\"\ndst_address_list = \"banks\"\npolicy = \"pair\"\nsticky = \"src\"\n",
        uplinkd::config::EXAMPLE
    );
    let env = uplinkd::config::Env::empty()
        .with("UPLINKD_REST_PASSWORD", "demo")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    uplinkd::config::Config::from_toml_str(&text, &env)
        .expect("the example with two traffic rules resolves")
        .traffic
}

/// Every traffic rule's switched line is on (every WAN healthy: every WAN usable).
fn rule_lines_on(emu: &Emulator) -> bool {
    let lines: Vec<bool> = emu
        .objects("/ip/firewall/mangle")
        .iter()
        .filter(|o| {
            o.get("comment")
                .is_some_and(|c| c.starts_with("uplinkd:steer:"))
        })
        .map(|o| o.get("disabled") != Some("true"))
        .collect();
    !lines.is_empty() && lines.iter().all(|on| *on)
}

async fn run_seed(seed: u64) -> Result<(usize, Duration, usize, usize), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (emu, server) = router("demo").await;
    // The user's own objects, which nothing of uplinkd may touch.
    emu.add_object(
        "/ip/route",
        &[
            ("dst-address", "10.99.0.0/16"),
            ("gateway", "192.168.100.2"),
            ("comment", "office"),
        ],
    )
    .unwrap();
    emu.add_object(
        "/ip/firewall/filter",
        &[
            ("chain", "forward"),
            ("action", "accept"),
            ("comment", "mine"),
        ],
    )
    .unwrap();
    let mut config = config(&server);
    config.reconcile.resync_interval = Duration::from_secs(20);
    // Traffic rules whose lines the daemon switches too: VoIP on ISP2, else ISP1; banking
    // balanced and sticky per source.
    config.traffic = traffic_rules();
    emu.import_script(&uplinkd::rsc::render_base(&config).unwrap().text)
        .map_err(|e| format!("seed {seed}: the base config with rules: {e}"))?;
    let users = untagged(&emu);
    let mut daemon = Daemon::start(config.clone());
    let mut down = [false, false];
    let mut edits: Vec<(usize, String, bool)> = Vec::new();
    let mut steps = 0usize;
    let mut elapsed = Duration::ZERO;
    let check = |emu: &Emulator, what: &str| -> Result<(), String> {
        if !some_wan_on(emu) {
            return Err(format!("{what}: every WAN off: {:?}", switched(emu)));
        }
        if untagged(emu) != users {
            return Err(format!("{what}: the user's objects changed"));
        }
        Ok(())
    };
    while elapsed < FAULT_TIME {
        let what = match rng.u8(0..12) {
            0 | 1 => {
                let w = rng.usize(0..2);
                down[w] = true;
                daemon.fail(w as u8 + 1);
                format!("ISP{} fails", w + 1)
            }
            2 | 3 => {
                let w = rng.usize(0..2);
                down[w] = false;
                daemon.repair(w as u8 + 1);
                format!("ISP{} repaired", w + 1)
            }
            4 => {
                emu.inject(Fault::next(FaultKind::Status500, rng.usize(1..6)));
                "REST 500s".into()
            }
            5 => {
                emu.inject(Fault::next(
                    FaultKind::Hang(Some(Duration::from_millis(rng.u64(100..8000)))),
                    1,
                ));
                "REST hang".into()
            }
            6 => {
                emu.inject(Fault::next(FaultKind::Close, rng.usize(1..3)));
                "connection closed".into()
            }
            7 => {
                emu.inject(Fault::next(FaultKind::Unauthorized, 1));
                "401".into()
            }
            8 => {
                emu.reboot(Duration::from_secs(rng.u64(1..15)), RebootMode::KeepConfig);
                "router reboot".into()
            }
            9 => {
                // A hand edit: a switched route turned on or off behind the daemon's back.
                let routes: Vec<_> = emu
                    .objects("/ip/route")
                    .into_iter()
                    .filter(|o| {
                        o.get("comment")
                            .is_some_and(|c| c.starts_with("uplinkd:route:"))
                    })
                    .collect();
                if !routes.is_empty() {
                    let o = &routes[rng.usize(0..routes.len())];
                    let flip = if o.get("disabled") == Some("true") {
                        "false"
                    } else {
                        "true"
                    };
                    emu.edit_object("/ip/route", &o.id, &[("disabled", flip)]);
                    let wan = o
                        .get("comment")
                        .and_then(|c| c.strip_prefix("uplinkd:route:"))
                        .and_then(|n| n.split('-').next())
                        .unwrap_or("")
                        .to_string();
                    edits.push((emu.requests().len(), wan, flip == "true"));
                }
                "hand edit".into()
            }
            10 => {
                // The daemon killed and started again (its state is in memory and the router).
                daemon.stop().await;
                daemon = Daemon::start(config.clone());
                for (i, d) in down.iter().enumerate() {
                    if *d {
                        daemon.fail(i as u8 + 1);
                    }
                }
                "daemon restart".into()
            }
            _ => "quiet".into(),
        };
        steps += 1;
        let step = STEP + Duration::from_millis(rng.u64(0..4000));
        tokio::time::sleep(step).await;
        elapsed += step;
        if emu.is_down() {
            continue;
        }
        // A hand edit that switched off the last WAN is the admin's doing, until the next
        // resync reverts it; every other moment must have a WAN on.
        if !what.starts_with("hand edit") {
            check(&emu, &format!("seed {seed} step {steps} after {what}"))?;
        }
    }
    // The faults stop: every WAN healthy, no REST faults. The router must converge.
    emu.clear_faults();
    emu.finish_reboot();
    emu.release_hangs();
    daemon.repair(1);
    daemon.repair(2);
    let converged = wait_for(CONVERGE_WITHIN, || {
        wan_is(&emu, "ISP1", true)
            && wan_is(&emu, "ISP2", true)
            && rule_lines_on(&emu)
            && emu.global("ISP1Status").as_deref() == Some("up")
            && emu.global("ISP2Status").as_deref() == Some("up")
    })
    .await;
    if !converged {
        return Err(format!(
            "seed {seed}: not converged {CONVERGE_WITHIN:?} after the faults stopped: {:?} {:?}, rule lines on: {}",
            switched(&emu),
            emu.globals(),
            rule_lines_on(&emu)
        ));
    }
    check(&emu, &format!("seed {seed} at the end"))?;
    let (flushes, releases) =
        flushes_follow_switches(&emu, &edits).map_err(|e| format!("seed {seed}: {e}"))?;
    daemon.stop().await;
    drop(server);
    Ok((steps, elapsed, flushes, releases))
}

#[test]
fn random_faults_keep_the_invariants() {
    let seeds: u64 = std::env::var("FAULT_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let first: u64 = std::env::var("FAULT_SIM_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut violations = Vec::new();
    let mut virtual_time = Duration::ZERO;
    let mut steps = 0;
    let mut flushes = 0;
    let mut releases = 0;
    for seed in first..first + seeds {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        match rt.block_on(run_seed(seed)) {
            Ok((s, t, f, r)) => {
                steps += s;
                virtual_time += t;
                flushes += f;
                releases += r;
            }
            Err(e) => violations.push(e),
        }
    }
    eprintln!(
        "fault simulation: {seeds} seeds from {first}, {steps} fault steps, {:.1} virtual hours of faults, {flushes} flushes and {releases} sticky releases checked against their switch, {} invariant violation(s)",
        virtual_time.as_secs_f64() / 3600.0,
        violations.len()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
