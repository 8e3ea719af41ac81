//! Remote mode against the REST emulator: the router pings each WAN from that WAN's address
//! (static, or read from `/ip/address` for DHCP/PPPoE), and `/ping`'s rows become the same probe
//! results the health core gets in container mode.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use uplinkd::config::{Addressing, ProbePath, Rest, Wan};
use uplinkd::emulator::{Emulator, PingOutcome};
use uplinkd::health::ProbeResult;
use uplinkd::probe::Prober;
use uplinkd::probe::remote::RemoteProber;
use uplinkd::routeros::Client;
use uplinkd::types::LinkId;

const MONITOR: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);

fn wan(n: u8, addressing: Addressing) -> Wan {
    Wan {
        id: LinkId::new(format!("ISP{n}")),
        label: format!("ISP {n}"),
        interface: format!("ether{n}"),
        addressing,
        monitors: vec![MONITOR],
        weight: 1,
        priority: u32::from(n),
        probe: ProbePath {
            veth: format!("uplinkd-wan{n}"),
            router_address: Ipv4Addr::new(198, 18, n, 1),
            source: Ipv4Addr::new(198, 18, n, 2),
            prefix_len: 30,
        },
    }
}

fn static_wan(n: u8) -> Wan {
    wan(
        n,
        Addressing::Static {
            address: format!("198.18.1{n}.2/30").parse().expect("net"),
            gateway: Ipv4Addr::new(198, 18, 10 + n, 1),
        },
    )
}

fn client(url: String) -> Client {
    Client::new(&Rest::plain_http(url, "admin", "", Duration::from_secs(10))).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_pings_each_wan_from_its_own_address() {
    let wans = [
        static_wan(1),
        static_wan(2),
        wan(3, Addressing::Dhcp),
        wan(4, Addressing::Dhcp),
    ];
    let emu = remote_router(&wans);
    emu.add_object(
        "/ip/address",
        &[("address", "198.18.13.2/30"), ("interface", "ether3")],
    )
    .expect("address");
    emu.script_ping(
        Some("198.18.11.2"),
        None,
        PingOutcome::Reply {
            rtt: Duration::from_millis(3),
        },
    );
    emu.script_ping(Some("198.18.12.2"), None, PingOutcome::Timeout);
    emu.script_ping(
        Some("198.18.13.2"),
        None,
        PingOutcome::Error {
            from: Ipv4Addr::new(198, 18, 13, 1),
            status: "net unreachable".into(),
        },
    );
    let server = emu
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let prober = RemoteProber::new(client(server.url()), &wans);
    let wait = Duration::from_millis(50);

    let r1 = prober.probe(&LinkId::new("ISP1"), MONITOR, 1, wait).await;
    assert!(
        matches!(r1, ProbeResult::Reply { rtt } if rtt == Duration::from_millis(3)),
        "{r1:?}"
    );
    assert_eq!(
        prober.probe(&LinkId::new("ISP2"), MONITOR, 1, wait).await,
        ProbeResult::NoReply
    );
    assert_eq!(
        prober.probe(&LinkId::new("ISP3"), MONITOR, 1, wait).await,
        ProbeResult::IcmpError
    );
    // A DHCP WAN without an address on the router cannot be probed: a send failure, not silence.
    assert_eq!(
        prober.probe(&LinkId::new("ISP4"), MONITOR, 1, wait).await,
        ProbeResult::SendFailed
    );

    let pings: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/rest/ping"))
        .collect();
    assert_eq!(pings.len(), 3, "{pings:?}");
    for (r, src) in pings
        .iter()
        .zip(["198.18.11.2", "198.18.12.2", "198.18.13.2"])
    {
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(body["src-address"], src);
        assert_eq!(body["count"], "1");
        assert_eq!(body["interval"], "50ms");
        assert!(!r.is_write());
    }
}

/// The sustainable remote probe rate: sequential `/ping` calls through one serialized REST
/// session against the emulator (loopback, 1 ms scripted RTT). Prints calls/s for
/// docs/probing.md; asserts only that every call answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_probe_rate_is_measured() {
    let wans = [static_wan(1), static_wan(2)];
    let emu = remote_router(&wans);
    emu.script_ping(
        None,
        None,
        PingOutcome::Reply {
            rtt: Duration::from_millis(1),
        },
    );
    let server = emu
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let prober = std::sync::Arc::new(RemoteProber::new(client(server.url()), &wans));
    let n: u16 = 200;
    let start = Instant::now();
    // Two WANs probing concurrently, as the daemon's per-WAN tasks do: the session serializes them.
    let mut set = tokio::task::JoinSet::new();
    for w in ["ISP1", "ISP2"] {
        let prober = prober.clone();
        set.spawn(async move {
            let mut replies = 0;
            for seq in 0..n / 2 {
                if let ProbeResult::Reply { .. } = prober
                    .probe(&LinkId::new(w), MONITOR, seq, Duration::from_millis(500))
                    .await
                {
                    replies += 1;
                }
            }
            replies
        });
    }
    let mut replies = 0;
    while let Some(r) = set.join_next().await {
        replies += r.expect("task");
    }
    let elapsed = start.elapsed();
    assert_eq!(replies, n);
    println!(
        "remote probe rate: {n} pings in {:.3} s = {:.0} calls/s (emulator, loopback, 1 ms RTT)",
        elapsed.as_secs_f64(),
        f64::from(n) / elapsed.as_secs_f64()
    );
}

/// Remote mode end to end: `uplinkd run` on "another host" (here: this one, over loopback) has
/// the emulated router ping both WANs; ISP1's echoes start timing out → its route and PCC rules
/// are switched off over REST as in container mode; they answer again → switched back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_fails_over_with_the_same_actions() {
    let emu = Emulator::new(uplinkd::emulator::EmulatorConfig {
        users: vec![uplinkd::emulator::User::new("uplinkd", "lab-secret")],
        ..Default::default()
    });
    let server = emu
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = format!(
        "state_dir = \"{}\"\n[router]\nversion = \"7.20\"\nmode = \"remote\"\n\
         [rest]\nurl = \"{}\"\nuser = \"uplinkd\"\npassword = \"lab-secret\"\n\
         trust = \"plain-http\"\ntimeout = \"5s\"\n",
        dir.path().display(),
        server.url()
    );
    for n in 1..=2u8 {
        text.push_str(&format!(
            "[[wan]]\nname = \"ISP{n}\"\nlabel = \"L{n}\"\ninterface = \"ether{n}\"\n\
             address = \"198.18.1{n}.2/30\"\ngateway = \"198.18.1{n}.1\"\n\
             monitors = [\"198.18.100.1\", \"198.18.100.2\"]\nweight = 1\npriority = {n}\n\
             probe_veth = \"uplinkd-wan{n}\"\nprobe_router_address = \"198.18.{n}.1\"\n\
             probe_source = \"198.18.{n}.2\"\nprobe_prefix_len = 30\n"
        ));
    }
    // Remote mode's probe budget (docs/probing.md): a slower interval than in a container.
    text.push_str(
        "[health]\ninterval = \"2s\"\nhold_down = \"3s\"\n\
         [balance]\npcc = \"both-addresses-and-ports\"\npreferred = \"ISP1\"\n\
         [sections]\nlan = false\ndhcp = false\ndns = false\nfirewall = false\n\
         hardening = false\nipv6_off = false\nmss_clamp = false\nntp = false\n",
    );
    let config = uplinkd::config::Config::from_toml_str(&text, &uplinkd::config::Env::empty())
        .expect("config");
    uplinkd::demo::load_base_objects(&emu, &config).expect("objects");
    // The router as the remote install script leaves it: probe tables and pin rules.
    let install = uplinkd::rsc::render_install(&config, &Default::default()).expect("render");
    emu.import_script(&install).expect("install script");
    let path = dir.path().join("uplinkd.toml");
    std::fs::write(&path, &text).expect("write");
    for src in ["198.18.11.2", "198.18.12.2"] {
        emu.script_ping(
            Some(src),
            None,
            PingOutcome::Reply {
                rtt: Duration::from_millis(5),
            },
        );
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_uplinkd"))
        .arg("--config")
        .arg(&path)
        .arg("run")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("uplinkd");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);

    let state = |wan: &str| -> Vec<bool> {
        let mut v: Vec<bool> = emu
            .objects("/ip/route")
            .iter()
            .chain(emu.objects("/ip/firewall/mangle").iter())
            .filter(|o| {
                o.get("comment").is_some_and(|c| {
                    c == format!("uplinkd:route:{wan}-main")
                        || c.starts_with(&format!("uplinkd:pcc:{wan}-"))
                })
            })
            .map(|o| o.get("disabled") == Some("true"))
            .collect();
        v.sort();
        v
    };
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(40);
        while Instant::now() < end && !cond() {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(cond(), "{what}");
    };
    let on = |wan: &str| !state(wan).is_empty() && state(wan).iter().all(|d| !d);
    let off = |wan: &str| !state(wan).is_empty() && state(wan).iter().all(|d| *d);

    tokio::task::block_in_place(|| {
        wait_for("the router never pinged", &|| emu.pings_served() >= 8);
        assert!(on("ISP1") && on("ISP2"));
        emu.script_ping(Some("198.18.11.2"), None, PingOutcome::Timeout);
        wait_for("ISP1 never switched off", &|| off("ISP1"));
        assert!(on("ISP2"), "ISP2 must keep carrying");
        emu.script_ping(
            Some("198.18.11.2"),
            None,
            PingOutcome::Reply {
                rtt: Duration::from_millis(5),
            },
        );
        wait_for("ISP1 never came back", &|| on("ISP1"));
    });
}

/// A router prepared by the remote install script rendered for `wans` (uplinkd's real script,
/// imported by the emulator's interpreter): probe tables, routes and pin rules.
fn remote_router(wans: &[Wan]) -> Emulator {
    let mut config = uplinkd::config::Config::example();
    config.router.mode = uplinkd::config::Mode::Remote;
    config.router.rest.url = "https://192.168.88.1".into();
    config.wans = wans.to_vec();
    config.balance.preferred = wans[0].id.clone();
    let script = uplinkd::rsc::render_install(&config, &Default::default()).expect("render");
    let emu = Emulator::default();
    emu.import_script(&script)
        .unwrap_or_else(|e| panic!("import of the remote install script: {e}\n{script}"));
    emu
}

fn pin_rule_object(emu: &Emulator, wan: &str) -> uplinkd::emulator::Object {
    let rules = emu.objects("/routing/rule");
    rules
        .iter()
        .find(|r| r.get("comment") == Some(format!("uplinkd:probe:{wan}-pin").as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("no pin rule for {wan}: {rules:?}"))
}

/// The pin rule's `src-address` and `disabled`.
fn pin_rule(emu: &Emulator, wan: &str) -> (Option<String>, Option<String>) {
    let rule = pin_rule_object(emu, wan);
    (
        rule.get("src-address").map(str::to_string),
        rule.get("disabled").map(str::to_string),
    )
}

/// Serves `emu` with every ping answered in 2 ms, and a remote prober for `wans` talking to it.
async fn serve_answering(
    emu: &Emulator,
    wans: &[Wan],
) -> (uplinkd::emulator::RunningEmulator, RemoteProber) {
    emu.script_ping(
        None,
        None,
        PingOutcome::Reply {
            rtt: Duration::from_millis(2),
        },
    );
    let server = emu
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let prober = RemoteProber::new(client(server.url()), wans);
    (server, prober)
}

/// The install script pins a static WAN's address and leaves a leased WAN's rule disabled; the
/// prober fills in the lease before the first ping, follows a new lease, and writes nothing
/// while the rule is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_rule_follows_the_wans_address() {
    let wans = [static_wan(1), wan(2, Addressing::Dhcp)];
    let emu = remote_router(&wans);
    assert_eq!(
        pin_rule(&emu, "ISP1"),
        (Some("198.18.11.2/32".into()), Some("false".into()))
    );
    assert_eq!(pin_rule(&emu, "ISP2").1.as_deref(), Some("true"));
    emu.add_object(
        "/ip/address",
        &[("address", "198.18.12.2/30"), ("interface", "ether2")],
    )
    .expect("lease");
    let (_server, prober) = serve_answering(&emu, &wans).await;
    let wait = Duration::from_millis(50);
    let (isp1, isp2) = (LinkId::new("ISP1"), LinkId::new("ISP2"));
    for seq in 0..3 {
        for link in [&isp1, &isp2] {
            let r = prober.probe(link, MONITOR, seq, wait).await;
            assert!(matches!(r, ProbeResult::Reply { .. }), "{link}: {r:?}");
        }
    }
    assert_eq!(
        pin_rule(&emu, "ISP2"),
        (Some("198.18.12.2/32".into()), Some("false".into()))
    );
    let rule_writes = || {
        emu.requests()
            .iter()
            .filter(|r| r.is_write() && r.path.starts_with("/rest/routing/rule"))
            .count()
    };
    assert_eq!(
        rule_writes(),
        1,
        "only the leased WAN's rule is written, once"
    );

    // A new lease: the old address is gone, the pings from it time out; the prober re-reads the
    // address and moves the rule before pinging from the new one.
    let old = emu
        .objects("/ip/address")
        .into_iter()
        .find(|a| a.get("address") == Some("198.18.12.2/30"))
        .expect("lease row");
    assert!(emu.remove_object("/ip/address", &old.id));
    emu.add_object(
        "/ip/address",
        &[("address", "198.18.12.6/30"), ("interface", "ether2")],
    )
    .expect("new lease");
    emu.script_ping(Some("198.18.12.2"), None, PingOutcome::Timeout);
    assert_eq!(
        prober.probe(&isp2, MONITOR, 10, wait).await,
        ProbeResult::NoReply
    );
    let r = prober.probe(&isp2, MONITOR, 11, wait).await;
    assert!(matches!(r, ProbeResult::Reply { .. }), "{r:?}");
    assert_eq!(pin_rule(&emu, "ISP2").0.as_deref(), Some("198.18.12.6/32"));
    assert_eq!(rule_writes(), 2);
}

/// Without its pin rule a WAN is not probed at all: a ping from its address could leave through
/// the other WAN and answer for a dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_pin_rule_a_wan_is_not_probed() {
    let wans = [static_wan(1), static_wan(2)];
    let emu = remote_router(&wans);
    let rule = pin_rule_object(&emu, "ISP2");
    assert!(emu.remove_object("/routing/rule", &rule.id));
    let (_server, prober) = serve_answering(&emu, &wans).await;
    let wait = Duration::from_millis(50);
    for seq in 0..3 {
        assert_eq!(
            prober.probe(&LinkId::new("ISP2"), MONITOR, seq, wait).await,
            ProbeResult::SendFailed
        );
    }
    let r = prober.probe(&LinkId::new("ISP1"), MONITOR, 0, wait).await;
    assert!(matches!(r, ProbeResult::Reply { .. }), "{r:?}");
    assert_eq!(emu.pings_served(), 1, "only ISP1 was pinged");
}
