//! The daemon end to end against the emulated router, on tokio's paused clock: the real health
//! engine, policy, reconcile and REST client, with scripted probe outcomes. Virtual time only, so
//! every check is on router state and request order, never on how fast anything ran.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use uplinkd::bus::Event;
use uplinkd::reconciler::Report;

const SETTLE: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn failover_switches_first_then_flushes_and_recovers_after_hold_down() {
    let (emu, server) = router("demo").await;
    let config = config(&server);
    let hold_down = config.health.hold_down;
    let daemon = Daemon::start(config);

    tokio::time::sleep(SETTLE).await;
    assert!(wan_is(&emu, "ISP1", true) && wan_is(&emu, "ISP2", true));
    let start_writes = applied_writes(&emu.requests()).len();
    assert_eq!(
        start_writes,
        1,
        "at start only the status globals are written: {:?}",
        emu.requests()
    );
    let before_ids = switched_ids(&emu);

    emu.clear_requests();
    daemon.fail(1);
    assert!(
        wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await,
        "ISP1's routes and PCC rules were not disabled: {:?}",
        switched(&emu)
    );
    assert!(wan_is(&emu, "ISP2", true));
    // Let the log line and the background flush finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    assert_eq!(connections(&emu, "conn-ISP1"), 0);
    assert_eq!(connections(&emu, "conn-ISP2"), 3);

    // Order: both switches, then the flush, then the log line; at most 6 calls in all.
    let reqs = emu.requests();
    let pos = |pred: &dyn Fn(&uplinkd_emulator::RequestRecord) -> bool| {
        reqs.iter().position(pred).unwrap_or(usize::MAX)
    };
    let route_off = pos(&|r| r.path.starts_with("/rest/ip/route/disable"));
    let pcc_off = pos(&|r| r.path.starts_with("/rest/ip/firewall/mangle/disable"));
    let flush = pos(&|r| r.path == "/rest/execute" && r.body.contains("connection remove"));
    let log = pos(&|r| r.path == "/rest/log/warning");
    assert!(
        route_off < flush && pcc_off < flush && flush < log && log != usize::MAX,
        "{reqs:#?}"
    );
    assert!(reqs[flush].body.contains("conn-ISP1") && !reqs[flush].body.contains("conn-ISP2"));
    assert!(
        reqs.len() <= 6,
        "failover took {} calls: {reqs:#?}",
        reqs.len()
    );
    assert!(reqs[log].body.contains("[FAILOVER] ISP1 DOWN - "));
    assert_eq!(emu.global("ISP1Status").as_deref(), Some("down"));
    assert_eq!(emu.global("ISP2Status").as_deref(), Some("up"));
    // Writes touched only switched objects, never the fallback/failsafe routes or the admin's.
    for r in applied_writes(&reqs) {
        if let Some(numbers) = r.body.split("\"numbers\":\"").nth(1) {
            let menu = r
                .path
                .trim_start_matches("/rest")
                .rsplit_once('/')
                .unwrap()
                .0;
            for id in numbers.split('"').next().unwrap().split(',') {
                assert!(
                    before_ids.contains(&format!("{menu}:{id}")),
                    "{id} of {menu} is not switched"
                );
            }
        }
    }

    // Recovery: held for the hold-down, then switched back on.
    daemon.repair(1);
    tokio::time::sleep(hold_down - Duration::from_secs(2)).await;
    assert!(
        wan_is(&emu, "ISP1", false),
        "ISP1 came back before its hold-down ended"
    );
    assert!(
        wait_for(Duration::from_secs(30), || wan_is(&emu, "ISP1", true)).await,
        "ISP1 did not come back: {:?}",
        switched(&emu)
    );
    assert!(
        wait_for(Duration::from_secs(60), || {
            emu.log_entries().iter().any(|e| {
                e.message
                    .starts_with("[FAILOVER] ISP1 UP - recovered after ")
            }) && emu.global("ISP1Status").as_deref() == Some("up")
        })
        .await,
        "{:?} {:?}",
        emu.log_entries(),
        emu.globals()
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_wan_down_enables_all() {
    let (emu, server) = router("demo").await;
    let daemon = Daemon::start(config(&server));
    tokio::time::sleep(SETTLE).await;

    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await);
    daemon.fail(2);
    // ISP2 down too: everything on again, never nothing.
    assert!(
        wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", true)
            && wan_is(&emu, "ISP2", true))
        .await,
        "{:?}",
        switched(&emu)
    );
    // The globals go out with the pass's background `/execute`: wait for it (a failure limit;
    // on the paused clock a fixed sleep can elapse before the HTTP round trips end).
    assert!(
        wait_for(Duration::from_secs(60), || {
            emu.global("ISP1Status").as_deref() == Some("down")
                && emu.global("ISP2Status").as_deref() == Some("down")
        })
        .await,
        "{:?}",
        emu.globals()
    );
    // ISP2's connections were never flushed: going all-down switches nothing off.
    emu.wait_jobs().await;
    assert_eq!(connections(&emu, "conn-ISP2"), 3);
    daemon.stop().await;
}

/// One router-log outbox: the engine's `[FAILOVER]` lines and the alert service's all-down line
/// reach `/log` in the order they happened, each after the switch it reports (the all-down line
/// after the pass that turns every WAN back on), never before.
#[tokio::test(start_paused = true)]
async fn router_log_lines_follow_their_switch_in_order() {
    let (emu, server) = router("demo").await;
    let daemon = Daemon::start_with_services(config(&server)).await;
    tokio::time::sleep(SETTLE).await;
    emu.clear_requests();

    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await);
    daemon.fail(2);
    let critical = "[FAILOVER] CRITICAL: all WANs DOWN";
    assert!(
        wait_for(Duration::from_secs(60), || emu
            .log_entries()
            .iter()
            .any(|e| e.message.starts_with(critical)))
        .await,
        "{:?}",
        emu.log_entries()
    );
    let messages: Vec<String> = emu
        .log_entries()
        .into_iter()
        .map(|e| e.message)
        .filter(|m| m.starts_with("[FAILOVER]"))
        .collect();
    let at = |prefix: &str| {
        messages
            .iter()
            .position(|m| m.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {messages:#?}"))
    };
    let (down1, down2, all) = (
        at("[FAILOVER] ISP1 DOWN - "),
        at("[FAILOVER] ISP2 DOWN - "),
        at(critical),
    );
    assert!(down1 < down2 && down2 < all, "{messages:#?}");
    // Each line after its switch: ISP1 off before its line; every WAN on again before the
    // lines of ISP2 and of all-down.
    let reqs = emu.requests();
    let pos = |pred: &dyn Fn(&uplinkd_emulator::RequestRecord) -> bool| {
        reqs.iter()
            .position(pred)
            .unwrap_or_else(|| panic!("request not found: {reqs:#?}"))
    };
    let off = pos(&|r| r.path == "/rest/ip/route/disable");
    let on = pos(&|r| r.path == "/rest/ip/route/enable");
    let log = |text: &'static str| {
        move |r: &uplinkd_emulator::RequestRecord| {
            r.path.starts_with("/rest/log/") && r.body.contains(text)
        }
    };
    let (l1, l2, la) = (
        pos(&log("ISP1 DOWN")),
        pos(&log("ISP2 DOWN")),
        pos(&log("CRITICAL")),
    );
    assert!(off < l1 && l1 < on && on < l2 && l2 < la, "{reqs:#?}");
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_changed_means_zero_writes() {
    let (emu, server) = router("demo").await;
    let mut config = config(&server);
    config.reconcile.resync_interval = Duration::from_secs(30);
    let daemon = Daemon::start(config);
    tokio::time::sleep(SETTLE).await;
    emu.clear_requests();
    // Ten resyncs with healthy WANs.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let reqs = emu.requests();
    assert!(reqs.len() >= 2 * 9, "resyncs did not run: {reqs:?}");
    assert!(
        reqs.iter().all(|r| !r.is_write()),
        "writes without a change: {reqs:#?}"
    );
    let resyncs = daemon
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(e, Event::Reconcile { report: Report::Applied(r), .. } if r.plan.is_noop())
        })
        .count();
    assert!(resyncs >= 9);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn resyncs_with_the_bootstrap_write_nothing_on_an_intact_router() {
    let (emu, server) = router("demo").await;
    let mut config = config(&server);
    config.reconcile.resync_interval = Duration::from_secs(30);
    let daemon = Daemon::start_with_bootstrap(config);
    tokio::time::sleep(SETTLE).await;
    emu.clear_requests();
    tokio::time::sleep(Duration::from_secs(90)).await; // three resyncs
    let reqs = emu.requests();
    assert!(
        reqs.iter().all(|r| !r.is_write()),
        "writes without a change: {reqs:#?}"
    );
    // Reported in docs/reconcile.md: calls per resync with the bootstrap check.
    eprintln!("calls in 3 resyncs with bootstrap: {}", reqs.len());
    assert!(wan_is(&emu, "ISP1", true) && wan_is(&emu, "ISP2", true));
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn plan_reads_the_router_and_changes_nothing() {
    let (emu, server) = router("demo").await;
    let config = config(&server);
    // Someone disabled ISP2's main route by hand.
    let id = emu
        .objects("/ip/route")
        .into_iter()
        .find(|o| {
            o.get("comment")
                .is_some_and(|c| c.starts_with("uplinkd:route:ISP2-main"))
        })
        .unwrap()
        .id;
    assert!(emu.edit_object("/ip/route", &id, &[("disabled", "true")]));
    let client = uplinkd::routeros::Client::new(&config.router.rest).unwrap();
    let text = uplinkd::cmd::plan::plan_text(&client, &config)
        .await
        .unwrap();
    assert!(text.contains("enable /ip/route (1 object(s))"), "{text}");
    assert!(text.contains(&id), "{text}");
    let reqs = emu.requests();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| !r.is_write()), "{reqs:#?}");
    assert!(!switched(&emu)["uplinkd:route:ISP2-main"]);
}

/// Without consent (`apply_base = "manual"`, the default) the daemon never imports the base
/// config on a router that lacks it, and still probes and reports a failing WAN; with `auto` it
/// imports it at start.
#[tokio::test(start_paused = true)]
async fn the_daemon_imports_the_base_config_only_with_consent() {
    use uplinkd::config::ApplyBase;
    use uplinkd_emulator::{Emulator, EmulatorConfig, User};
    let imports = |emu: &Emulator| {
        emu.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/rest/file") || r.path.starts_with("/rest/import"))
            .count()
    };
    for consent in [ApplyBase::Manual, ApplyBase::Auto] {
        let emu = Emulator::new(EmulatorConfig {
            users: vec![User::new("uplinkd", "demo")],
            ..EmulatorConfig::default()
        });
        let server = emu
            .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let mut config = config(&server);
        assert_eq!(config.router.apply_base, ApplyBase::Manual, "the default");
        config.router.apply_base = consent;
        let daemon = Daemon::start_with_bootstrap(config);
        tokio::time::sleep(SETTLE).await;
        match consent {
            ApplyBase::Manual => {
                assert_eq!(imports(&emu), 0, "{:#?}", emu.requests());
                assert!(emu.objects("/ip/route").is_empty());
                daemon.fail(1);
                tokio::time::sleep(Duration::from_secs(10)).await;
                let down = daemon.events.lock().unwrap().iter().any(|e| {
                    matches!(e, Event::Transition { transition, .. }
                        if transition.link.as_str() == "ISP1"
                            && format!("{:?}", transition.to).starts_with("Down"))
                });
                assert!(down, "ISP1 still probed and detected down");
            }
            ApplyBase::Auto => {
                assert!(imports(&emu) > 0, "{:#?}", emu.requests());
                assert!(wan_is(&emu, "ISP1", true) && wan_is(&emu, "ISP2", true));
            }
        }
        daemon.stop().await;
    }
}

/// On a router without the base config `plan` lists, menu by menu, what the first `run` imports;
/// on a converged router it says there is nothing to change. It writes nothing either way.
#[tokio::test(start_paused = true)]
async fn plan_lists_the_base_config_import_and_says_no_changes_when_converged() {
    use uplinkd_emulator::{Emulator, EmulatorConfig, User};
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new("uplinkd", "demo")],
        ..EmulatorConfig::default()
    });
    let server = emu
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let fresh = config(&server);
    let client = uplinkd::routeros::Client::new(&fresh.router.rest).unwrap();
    let text = uplinkd::cmd::plan::plan_text(&client, &fresh)
        .await
        .unwrap();
    assert!(text.contains("base config: missing"), "{text}");
    let expected = uplinkd::rsc::expected_objects(&uplinkd::rsc::render_base(&fresh).unwrap().text);
    assert!(!expected.is_empty());
    for e in &expected {
        assert!(
            text.contains(&format!("add     {} (", e.menu)),
            "{} in {text}",
            e.menu
        );
        assert!(
            text.contains(&format!("        {}\n", e.tag)),
            "{} in {text}",
            e.tag
        );
    }
    // The settings the import sets, which are not objects: each listed.
    for setting in uplinkd::bootstrap::settings_of(&uplinkd::rsc::render_base(&fresh).unwrap().text)
    {
        assert!(
            text.contains(&format!("    set     {setting}\n")),
            "{setting} in {text}"
        );
    }
    assert!(
        text.contains("    set     /ip settings rp-filter=loose\n"),
        "{text}"
    );
    assert!(emu.requests().iter().all(|r| !r.is_write()));

    let (emu, server) = router("demo").await;
    let config = config(&server);
    let client = uplinkd::routeros::Client::new(&config.router.rest).unwrap();
    let text = uplinkd::cmd::plan::plan_text(&client, &config)
        .await
        .unwrap();
    assert!(text.contains("base config: up to date"), "{text}");
    assert!(text.contains(": no changes"), "{text}");
    assert!(!text.contains("add     /"), "{text}");
    assert!(!text.contains("    set     /"), "{text}");
    assert!(emu.requests().iter().all(|r| !r.is_write()));
}

#[tokio::test(start_paused = true)]
async fn demo_runs_and_reports_the_failover() {
    let out = uplinkd_testkit::demo::run_demo().await.unwrap();
    assert!(out.text.contains("SIMULATION"), "{}", out.text);
    assert!(out.text.contains("[FAILOVER] ISP1 DOWN - "), "{}", out.text);
    let down = out.down_at.expect("ISP1 detected down");
    assert!(down > uplinkd_testkit::demo::FAULT_AT);
    assert!(out.up_at.expect("ISP1 back") > uplinkd_testkit::demo::REPAIR_AT);
    assert!(!out.failover_calls.is_empty() && out.failover_calls.len() <= 6);
    assert!(!out.recovery_calls.is_empty() && out.recovery_calls.len() <= 6);
}

/// `uplinkd apply` (what a person runs after `plan`): imports the base config the daemon left
/// alone, and a second `apply` finds nothing to do.
#[test]
fn apply_imports_the_base_config_and_is_idempotent() {
    use uplinkd_emulator::{Emulator, EmulatorConfig, User};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new("uplinkd", "demo")],
        ..EmulatorConfig::default()
    });
    let server = rt
        .block_on(emu.serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    let config = config(&server);
    assert!(emu.objects("/ip/route").is_empty());
    // main_apply builds its own runtime, as the binary does: run it off this one.
    let c = config.clone();
    std::thread::spawn(move || uplinkd::cmd::apply::main_apply(c))
        .join()
        .unwrap()
        .unwrap();
    assert!(wan_is(&emu, "ISP1", true) && wan_is(&emu, "ISP2", true));
    emu.clear_requests();
    std::thread::spawn(move || uplinkd::cmd::apply::main_apply(config))
        .join()
        .unwrap()
        .unwrap();
    assert!(emu.requests().iter().all(|r| !r.is_write()));
    drop(server);
}

/// A base config the router rejects is not re-imported at every resync: attempts back off
/// (1, 2, 4, ... minutes up to an hour) and the error names the failing line's text.
#[tokio::test(start_paused = true)]
async fn a_rejected_base_import_backs_off_and_names_its_line() {
    use uplinkd::config::ApplyBase;
    use uplinkd_emulator::{Emulator, EmulatorConfig, User};
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new("uplinkd", "demo")],
        ..EmulatorConfig::default()
    });
    let server = emu
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let mut config = config(&server);
    config.router.apply_base = ApplyBase::Auto;
    config.reconcile.resync_interval = Duration::from_secs(60);
    // A bridge of the user's own with the name uplinkd's LAN wants: the base config stops.
    emu.add_object(
        "/interface/bridge",
        &[("name", config.lan.as_ref().unwrap().bridge.as_str())],
    )
    .unwrap();
    let imports = |emu: &Emulator| {
        emu.requests()
            .iter()
            .filter(|r| r.path.starts_with("/rest/import"))
            .count()
    };
    let daemon = Daemon::start_with_bootstrap(config);
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    let n = imports(&emu);
    eprintln!("base imports in 31 minutes of resyncs: {n}");
    // 31 resyncs; with backoff the attempts are at 0, 1, 3, 7, 15 and 31 minutes.
    assert!((2..=7).contains(&n), "{n} imports in 31 minutes");
    daemon.stop().await;
    let err = uplinkd::bootstrap::ensure(
        &uplinkd::routeros::Client::new(&reconcile_support::config(&server).router.rest).unwrap(),
        &{
            let mut c = reconcile_support::config(&server);
            c.router.apply_base = ApplyBase::Auto;
            c
        },
    )
    .await
    .expect_err("still rejected");
    let text = err.to_string();
    assert!(
        text.contains("at line") && text.contains("; the line: :if ([:len [/interface bridge find"),
        "{text}"
    );
}
