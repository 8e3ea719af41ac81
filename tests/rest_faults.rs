//! Reconcile under REST faults, against the emulated router on tokio's paused clock: a 500 in
//! the middle of a failover, bad credentials, a hung request, a reboot, a hand-edited router, and
//! removing objects that are already gone.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use uplinkd::reconcile::plan::{Action, Op, Target, Want};
use uplinkd::reconcile::{Menu, RosId};
use uplinkd::reconciler::{BootstrapStep, FailureKind, Reconciler, Request, Router, Trigger};
use uplinkd::routeros::Client;
use uplinkd_emulator::{Fault, FaultKind, RebootMode};

fn isp1_down() -> Request {
    Request {
        target: Target::new([(isp(1), Want::Standby), (isp(2), Want::Carry)]),
        globals: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn status_500_mid_failover_is_retried_and_nothing_is_half_applied() {
    let (emu, server) = router("demo").await;
    let daemon = Daemon::start(config(&server));
    tokio::time::sleep(Duration::from_secs(5)).await;
    emu.clear_requests();
    // The PCC switch fails more often than the client's own retries cover: the pass fails after
    // the routes were switched, and reconcile must come back for the rest and only then flush.
    emu.inject(Fault::next(FaultKind::Status500, 4).path("/rest/ip/firewall/mangle/disable"));
    daemon.fail(1);
    assert!(
        wait_for(Duration::from_secs(20), || wan_is(&emu, "ISP1", false)).await,
        "{:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    let reqs = emu.requests();
    let failed_500 = reqs.iter().filter(|r| r.status == 500).count();
    assert_eq!(failed_500, 4, "{reqs:#?}");
    let pcc_ok = reqs
        .iter()
        .position(|r| r.path.starts_with("/rest/ip/firewall/mangle/disable") && r.status == 200)
        .expect("the PCC switch succeeded in the end");
    let flush = reqs
        .iter()
        .position(|r| r.path == "/rest/execute" && r.body.contains("connection remove"))
        .expect("a flush");
    assert!(
        pcc_ok < flush,
        "flushed before the switch was complete: {reqs:#?}"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.body.contains("connection remove"))
            .count(),
        1
    );
    assert_eq!(connections(&emu, "conn-ISP1"), 0);
    assert!(wan_is(&emu, "ISP2", true));
    let failures = daemon
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(e, uplinkd::bus::Event::Reconcile {
                report: uplinkd::reconciler::Report::Failed { error, .. }, ..
            } if error.kind == FailureKind::Server)
        })
        .count();
    assert!(failures >= 1);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unauthorized_is_a_clear_error_and_writes_nothing() {
    let (emu, server) = router("the-real-password").await;
    let config = config(&server); // password "demo": wrong
    let client = Client::new(&config.router.rest).unwrap();
    let mut rec = Reconciler::new();
    let err = rec
        .pass(&client, &isp1_down(), Trigger::Start, &BootstrapStep::Skip)
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.to_string().contains("401"), "{err}");
    assert!(err.to_string().contains("rest-api"), "{err}");
    // The daemon keeps failing the same way, and never writes.
    let daemon = Daemon::start(config);
    daemon.fail(1);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let reqs = emu.requests();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| r.status == 401), "{reqs:#?}");
    assert!(wan_is(&emu, "ISP1", true));
    assert_eq!(connections(&emu, "conn-ISP1"), 3);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_write_times_out_and_is_retried() {
    let (emu, server) = router("demo").await;
    let config = config(&server);
    let timeout = config.router.rest.timeout;
    let client = Client::new(&config.router.rest).unwrap();
    // The route switch hangs longer than the client waits; the late answer is applied (as on
    // RouterOS), the retry is harmless because enable/disable is idempotent.
    emu.inject(
        Fault::next(FaultKind::Hang(Some(timeout + Duration::from_secs(2))), 1)
            .path("/rest/ip/route/disable"),
    );
    let mut rec = Reconciler::new();
    let mut result = rec
        .pass(
            &client,
            &isp1_down(),
            Trigger::Desired,
            &BootstrapStep::Skip,
        )
        .await;
    let rec_retried = result.is_err();
    if let Err(e) = &result {
        // The client gave up on the hung call; the task's policy retries the pass.
        assert!(
            matches!(e.kind, FailureKind::Timeout | FailureKind::Transport),
            "{e}"
        );
        result = rec
            .pass(&client, &isp1_down(), Trigger::Retry, &BootstrapStep::Skip)
            .await;
    }
    let report = result.expect("converges after the hang");
    assert_eq!(report.flushed, vec![isp(1)]);
    emu.wait_jobs().await;
    assert!(wan_is(&emu, "ISP1", false) && wan_is(&emu, "ISP2", true));
    assert_eq!(connections(&emu, "conn-ISP1"), 0);
    // The client saw the timeout and repeated the call (the emulator records only the request
    // that answered: the timed-out one's connection was dropped by the client).
    let stats = client.stats();
    assert!(
        stats
            .requests
            .get(&uplinkd::routeros::Outcome::Timeout)
            .copied()
            .unwrap_or(0)
            >= 1,
        "no timeout seen: {stats:?}"
    );
    assert!(
        stats.retries >= 1 || rec_retried,
        "the hung call was not retried: {stats:?}"
    );
    // Converged: the next pass writes nothing.
    let again = rec
        .pass(&client, &isp1_down(), Trigger::Resync, &BootstrapStep::Skip)
        .await
        .unwrap();
    assert!(again.plan.is_noop());
}

#[tokio::test(start_paused = true)]
async fn reboot_during_failover_converges_and_restores_globals() {
    let (emu, server) = router("demo").await;
    let daemon = Daemon::start(config(&server));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(emu.global("ISP1Status").as_deref(), Some("up"));
    emu.reboot(Duration::from_secs(20), RebootMode::KeepConfig);
    daemon.fail(1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        wan_is(&emu, "ISP1", true),
        "nothing can change while the router reboots"
    );
    assert!(
        wait_for(Duration::from_secs(60), || wan_is(&emu, "ISP1", false)).await,
        "{:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    // The reboot wiped the globals and the connection table; uplinkd wrote the globals again.
    assert_eq!(emu.global("ISP1Status").as_deref(), Some("down"));
    assert_eq!(emu.global("ISP2Status").as_deref(), Some("up"));
    // A quick reboot between two passes leaves no failed call behind: the resync notices the
    // missing globals and writes them again.
    emu.reboot(Duration::from_millis(100), RebootMode::KeepConfig);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(emu.globals().is_empty());
    assert!(
        wait_for(Duration::from_secs(70), || emu
            .globals()
            .get("ISP1Status")
            .map(String::as_str)
            == Some("down"))
        .await
    );
    assert!(wan_is(&emu, "ISP1", false));
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn hand_edited_router_converges_on_resync() {
    let (emu, server) = router("demo").await;
    let mut config = config(&server);
    config.reconcile.resync_interval = Duration::from_secs(30);
    let daemon = Daemon::start(config);
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(10), || wan_is(&emu, "ISP1", false)).await);
    // An admin re-enables ISP1's main route, and a connection is opened through it.
    let id = emu
        .objects("/ip/route")
        .into_iter()
        .find(|o| {
            o.get("comment")
                .is_some_and(|c| c.starts_with("uplinkd:route:ISP1-main"))
        })
        .unwrap()
        .id;
    assert!(emu.edit_object("/ip/route", &id, &[("disabled", "false")]));
    emu.add_connection(uplinkd_emulator::Connection {
        protocol: "udp".into(),
        src_address: "192.168.100.50:5000".into(),
        dst_address: "198.18.9.9:53".into(),
        connection_mark: "conn-ISP1".into(),
    });
    assert!(!wan_is(&emu, "ISP1", false));
    assert!(
        wait_for(Duration::from_secs(40), || wan_is(&emu, "ISP1", false)).await,
        "the hand edit was not reverted by the resync: {:?}",
        switched(&emu)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    emu.wait_jobs().await;
    assert_eq!(connections(&emu, "conn-ISP1"), 0);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn removing_what_is_already_gone_is_fine_and_stale_wans_are_removed_once() {
    let (emu, server) = router("demo").await;
    let config = config(&server);
    let client = Client::new(&config.router.rest).unwrap();
    // Deleting a missing object succeeds.
    let op = Op {
        menu: Menu::Route,
        action: Action::Remove,
        ids: vec![RosId::parse("*FFF0").unwrap()],
        tags: vec!["uplinkd:route:OLD-main".into()],
    };
    Router::write(&client, &op).await.unwrap();
    // A WAN removed from the config: its switched objects go, nothing else does.
    emu.add_object(
        "/ip/route",
        &[
            ("dst-address", "0.0.0.0/0"),
            ("gateway", "198.18.50.1"),
            ("distance", "9"),
            ("comment", "uplinkd:route:OLD-main"),
        ],
    )
    .unwrap();
    let routes_before = emu.objects("/ip/route").len();
    let mut rec = Reconciler::new();
    let all_carry = Request {
        target: Target::new([(isp(1), Want::Carry), (isp(2), Want::Carry)]),
        globals: Default::default(),
    };
    let r = rec
        .pass(&client, &all_carry, Trigger::Start, &BootstrapStep::Skip)
        .await
        .unwrap();
    assert_eq!(r.plan.ops.len(), 1, "{:?}", r.plan);
    assert_eq!(r.plan.ops[0].action, Action::Remove);
    assert_eq!(emu.objects("/ip/route").len(), routes_before - 1);
    assert!(
        !emu.objects("/ip/route")
            .iter()
            .any(|o| o.get("comment") == Some("uplinkd:route:OLD-main"))
    );
    emu.clear_requests();
    let again = rec
        .pass(&client, &all_carry, Trigger::Resync, &BootstrapStep::Skip)
        .await
        .unwrap();
    assert!(again.plan.is_noop());
    assert!(emu.requests().iter().all(|r| !r.is_write()));
}

/// A failover that happens while a resync pass is in flight (its route read answers slowly):
/// the `[FAILOVER] ... DOWN` line reaches the router's log only after the pass that switches
/// ISP1 off, never at the end of the pass that was already running (issue 13).
#[tokio::test(start_paused = true)]
async fn failover_line_waits_for_its_switch_when_a_resync_was_in_flight() {
    let (emu, server) = router("demo").await;
    let mut config = config(&server);
    config.reconcile.resync_interval = Duration::from_secs(10);
    let hang = config
        .router
        .rest
        .timeout
        .saturating_sub(Duration::from_millis(500));
    let daemon = Daemon::start(config);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The next resync's first route read answers late, but within the client's timeout.
    emu.inject(Fault::next(FaultKind::Hang(Some(hang)), 1).path("/rest/ip/route"));
    emu.clear_requests();
    // Into the hung pass, then ISP1 fails while it is still waiting.
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    assert_eq!(emu.pending_faults(), 0, "the resync pass is in flight");
    daemon.fail(1);
    assert!(wait_for(Duration::from_secs(20), || wan_is(&emu, "ISP1", false)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reqs = emu.requests();
    let switch = reqs
        .iter()
        .position(|r| r.path.starts_with("/rest/ip/route/disable"))
        .expect("the switch");
    let line = reqs
        .iter()
        .position(|r| r.path.starts_with("/rest/log/") && r.body.contains("ISP1 DOWN"))
        .expect("the failover line");
    assert!(
        switch < line,
        "log at {line}, switch at {switch}: {reqs:#?}"
    );
    daemon.stop().await;
}
