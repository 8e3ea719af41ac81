//! Real ICMP through the namespace lab (root only; required under UPLINKD_TEST_STRICT=1): every
//! WAN probes the same monitors at once, and a WAN whose path is dead must never be reported up
//! by replies that belong to another WAN, whatever socket kind and topology.

#[path = "netlab/lab.rs"]
mod lab;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use lab::{Lab, MONITORS, Topology};
use uplinkd::health::ProbeResult;
use uplinkd::probe::icmp::{self, IcmpProber, KindPreference, SocketKind};
use uplinkd::probe::netns;
use uplinkd::probe::{Prober, Tally};
use uplinkd::types::LinkId;

const WAIT: Duration = Duration::from_millis(400);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Probes every monitor through every WAN at the same time, `rounds` times (same sequence number
/// on every WAN in a round, the worst case for reply matching).
async fn rounds(
    prober: &Arc<IcmpProber>,
    links: &[LinkId],
    monitors: &[Ipv4Addr],
    rounds: u16,
    first_seq: u16,
) -> HashMap<LinkId, Tally> {
    let mut counts: HashMap<LinkId, Tally> = HashMap::new();
    for r in 0..rounds {
        let mut set = tokio::task::JoinSet::new();
        for link in links {
            for &m in monitors {
                let prober = prober.clone();
                let link = link.clone();
                set.spawn(async move {
                    let result = prober.probe(&link, m, first_seq + r, WAIT).await;
                    (link, result)
                });
            }
        }
        while let Some(joined) = set.join_next().await {
            let (link, result) = joined.expect("probe task");
            counts.entry(link).or_default().count(&result);
        }
    }
    counts
}

/// A fresh namespace's ping_group_range is `1 0`, which refuses datagram ICMP even to root.
fn allow_datagram(lab: &Lab) {
    lab.exec(
        "ctr",
        &["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"],
    )
    .expect("sysctl");
}

fn links(lab: &Lab) -> Vec<LinkId> {
    lab.probe_paths().into_iter().map(|(l, _)| l).collect()
}

/// One blackholed WAN among two, both probing the same monitors: the dead one gets nothing but
/// silence, the live one every reply; then the other way round.
fn dead_wan_stays_dead(topology: Topology, kind: SocketKind) {
    let lab = Lab::up(topology, 2);
    allow_datagram(&lab);
    let links = links(&lab);
    let (isp1, isp2) = (&links[0], &links[1]);
    lab.run_in("ctr", || {
        runtime().block_on(async {
            let (_, attachments) = netns::prepare_paths(&lab.probe_paths()).expect("prepare");
            let prober = Arc::new(
                IcmpProber::with_attachments(attachments, KindPreference::Only(kind))
                    .expect("prober"),
            );
            assert_eq!(prober.kind(), kind);
            let n = MONITORS.len() as u32;

            let healthy = rounds(&prober, &links, &MONITORS, 3, 1).await;
            assert_eq!(healthy[isp1].replies, 3 * n, "{healthy:?}");
            assert_eq!(healthy[isp2].replies, 3 * n, "{healthy:?}");

            lab.fault(1, &["blackhole"]);
            let c = rounds(&prober, &links, &MONITORS, 10, 100).await;
            assert_eq!(c[isp1].replies, 0, "dead ISP1 reported replies: {c:?}");
            assert_eq!(c[isp1].total(), 10 * n);
            assert_eq!(c[isp2].replies, 10 * n, "live ISP2 lost replies: {c:?}");

            lab.fault(1, &["clear"]);
            lab.fault(2, &["blackhole"]);
            let c = rounds(&prober, &links, &MONITORS, 10, 200).await;
            assert_eq!(c[isp2].replies, 0, "dead ISP2 reported replies: {c:?}");
            assert_eq!(c[isp1].replies, 10 * n, "live ISP1 lost replies: {c:?}");
        })
    });
}

#[test]
fn dead_wan_is_never_reported_up_by_another_wans_replies_datagram() {
    if !lab::available("dead_wan datagram") {
        return;
    }
    dead_wan_stays_dead(Topology::Veth, SocketKind::Datagram);
}

#[test]
fn dead_wan_is_never_reported_up_by_another_wans_replies_raw() {
    if !lab::available("dead_wan raw") {
        return;
    }
    dead_wan_stays_dead(Topology::Veth, SocketKind::Raw);
}

#[test]
fn shared_veth_topology_keeps_wans_apart() {
    if !lab::available("shared veth") {
        return;
    }
    dead_wan_stays_dead(Topology::Shared, SocketKind::Raw);
}

#[test]
fn shared_veth_topology_keeps_wans_apart_datagram() {
    if !lab::available("shared veth datagram") {
        return;
    }
    dead_wan_stays_dead(Topology::Shared, SocketKind::Datagram);
}

/// Without the daemon's source rules the second veth cannot reach anything (RouterOS gives only
/// the first veth a default route, and the container's rp_filter is strict in the lab): the rules
/// are what makes WAN 2 work, and the veths are found by address, whatever their names.
#[test]
fn container_routes_are_what_makes_the_second_veth_work() {
    if !lab::available("container routes") {
        return;
    }
    let lab = Lab::up(Topology::Veth, 2);
    let links = links(&lab);
    lab.run_in("ctr", || {
        runtime().block_on(async {
            let mut paths = lab.probe_paths();
            // A configured name that differs from the container's (RouterOS truncation).
            paths[1].1.veth = "uplinkd-wan2-truncated".into();
            let addresses = netns::interface_addresses().expect("addresses");
            let attachments = netns::discover(&paths, &addresses).expect("discover");
            assert_eq!(attachments[1].device, "uplinkd-wan2");
            assert_eq!(netns::topology(&attachments), netns::Topology::VethPerWan);

            let without = Arc::new(
                IcmpProber::new(
                    &attachments
                        .iter()
                        .map(netns::Attachment::icmp_path)
                        .collect::<Vec<_>>(),
                    KindPreference::Auto,
                )
                .expect("prober"),
            );
            let c = rounds(&without, &links, &MONITORS[..1], 2, 1).await;
            assert_eq!(c[&links[0]].replies, 2, "{c:?}");
            assert_eq!(c[&links[1]].replies, 0, "{c:?}");

            netns::ensure_routes(&attachments).expect("routes");
            // Idempotent: a restarted daemon runs it again over what is there.
            netns::ensure_routes(&attachments).expect("routes again");
            let c = rounds(&without, &links, &MONITORS[..1], 2, 10).await;
            assert_eq!(c[&links[0]].replies, 2, "{c:?}");
            assert_eq!(c[&links[1]].replies, 2, "{c:?}");
        })
    });
    let rules = lab.exec("ctr", &["ip", "rule"]).expect("ip rule");
    assert_eq!(
        rules.matches("from 198.18.2.2 lookup 30002").count(),
        1,
        "{rules}"
    );
}

/// An ISP that answers "net unreachable": counted as an ICMP error on RAW (surge-ping hands it
/// over as `Ok`), never as a reply; a datagram socket does not see ICMP errors at all.
#[test]
fn icmp_errors_are_not_replies() {
    if !lab::available("icmp errors") {
        return;
    }
    let lab = Lab::up(Topology::Veth, 2);
    allow_datagram(&lab);
    let links = links(&lab);
    lab.fault(1, &["unreachable"]);
    lab.run_in("ctr", || {
        runtime().block_on(async {
            let (_, attachments) = netns::prepare_paths(&lab.probe_paths()).expect("prepare");
            for (kind, first) in [(SocketKind::Raw, 1), (SocketKind::Datagram, 100)] {
                let prober = Arc::new(
                    IcmpProber::with_attachments(attachments.clone(), KindPreference::Only(kind))
                        .expect("prober"),
                );
                let c = rounds(&prober, &links, &MONITORS[..2], 3, first).await;
                let isp1 = c[&links[0]];
                assert_eq!(isp1.replies, 0, "{kind:?}: {c:?}");
                match kind {
                    SocketKind::Raw => assert_eq!(isp1.icmp_errors, 6, "{c:?}"),
                    SocketKind::Datagram => assert_eq!(isp1.no_reply, 6, "{c:?}"),
                }
                assert_eq!(c[&links[1]].replies, 6, "{kind:?}: {c:?}");
            }
        })
    });
}

/// The container's veth goes down: sends fail (counted as such), and once it is back the prober
/// restores the routes the kernel flushed, so probing resumes without a restart.
#[test]
fn send_failures_are_counted_and_routes_come_back() {
    if !lab::available("send failures") {
        return;
    }
    let lab = Lab::up(Topology::Veth, 2);
    let links = links(&lab);
    lab.run_in("ctr", || {
        runtime().block_on(async {
            let (_, attachments) = netns::prepare_paths(&lab.probe_paths()).expect("prepare");
            let prober = Arc::new(
                IcmpProber::with_attachments(attachments, KindPreference::Auto).expect("prober"),
            );
            lab.exec("ctr", &["ip", "link", "set", "uplinkd-wan2", "down"])
                .expect("link down");
            let c = rounds(&prober, &links, &MONITORS[..1], 2, 1).await;
            assert_eq!(c[&links[1]].send_failures, 2, "{c:?}");
            assert_eq!(c[&links[0]].replies, 2, "{c:?}");

            lab.exec("ctr", &["ip", "link", "set", "uplinkd-wan2", "up"])
                .expect("link up");
            // Wait (bounded) for the carrier; the first probe after it repairs the route.
            let mut last = Tally::default();
            for attempt in 0..20u16 {
                let c = rounds(&prober, &links, &MONITORS[..1], 1, 10 + attempt).await;
                last = c[&links[1]];
                if last.replies == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(last.replies, 1, "ISP2 never came back: {last:?}");
        })
    });
}

/// Neither socket kind allowed: the error names both missing permissions.
#[test]
fn missing_icmp_permission_is_named() {
    if !lab::available("icmp permission") {
        return;
    }
    let lab = Lab::up(Topology::Veth, 1);
    lab.exec("ctr", &["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"])
        .expect("sysctl");
    let err = lab.run_in("ctr", || {
        drop_cap_net_raw();
        icmp::usable_kind(KindPreference::Auto).expect_err("no permission")
    });
    let text = err.to_string();
    assert!(text.contains("ping_group_range"), "{text}");
    assert!(text.contains("`1 0`"), "{text}");
    assert!(text.contains("CAP_NET_RAW"), "{text}");
}

/// Removes CAP_NET_RAW from this thread's effective set (capabilities are per thread).
fn drop_cap_net_raw() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    #[expect(
        unsafe_code,
        reason = "capget(2)/capset(2) drop CAP_NET_RAW; std has no wrapper"
    )]
    unsafe extern "C" {
        fn capget(h: *mut Header, d: *mut Data) -> i32;
        fn capset(h: *mut Header, d: *const Data) -> i32;
    }
    const CAP_NET_RAW: u32 = 13;
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: header and a two-element data array as _LINUX_CAPABILITY_VERSION_3 requires.
    #[expect(unsafe_code, reason = "calls capget(2)/capset(2), declared above")]
    unsafe {
        assert_eq!(capget(&mut h, d.as_mut_ptr()), 0);
        d[0].effective &= !(1 << CAP_NET_RAW);
        assert_eq!(capset(&mut h, d.as_ptr()), 0);
    }
}

/// The lab's faults do what the benchmarks and end-to-end tests rely on: iid loss drops about the
/// given share, delay holds every echo at least delay − jitter, a standing latency outlives the
/// faults put on top of it, one monitor can be taken away for
/// every WAN at once, and a downed ISP link stops replies.
#[test]
fn lab_faults_do_what_they_say() {
    if !lab::available("lab faults") {
        return;
    }
    if let Err(why) = uplinkd_testkit::testenv::have_program("iptables")
        .and_then(|()| uplinkd_testkit::testenv::have_program("python3"))
    {
        // The delay fault needs iptables-nft's NFQUEUE target and the python helper.
        if !uplinkd_testkit::testenv::require("lab delay fault", Err(why)) {
            return;
        }
    }
    let lab = Lab::up(Topology::Veth, 2);
    let links = links(&lab);
    let isp1 = &links[0];
    lab.run_in("ctr", || {
        runtime().block_on(async {
            let (_, attachments) = netns::prepare_paths(&lab.probe_paths()).expect("prepare");
            let prober = Arc::new(
                IcmpProber::with_attachments(attachments, KindPreference::Auto).expect("prober"),
            );

            // 50 % loss over 120 echoes: outside 30..90 replies has a probability below 1e-7.
            lab.fault(1, &["loss", "50"]);
            let c = rounds(&prober, &links[..1], &MONITORS, 40, 1).await;
            assert!((30..=90).contains(&c[isp1].replies), "{c:?}");

            lab.fault(1, &["delay", "80", "20"]);
            for seq in 100..106 {
                match prober
                    .probe(isp1, MONITORS[0], seq, Duration::from_secs(2))
                    .await
                {
                    ProbeResult::Reply { rtt } => {
                        assert!(rtt >= Duration::from_millis(59), "{rtt:?}")
                    }
                    other => panic!("delayed echo lost: {other:?}"),
                }
            }

            // A standing latency survives the faults injected on top of it (bench-lab.sh's
            // outages on a 20 ms line rely on that).
            lab.fault(1, &["clear"]);
            lab.latency(2, 40);
            let isp2 = &links[1];
            let rtt_of = |result| match result {
                ProbeResult::Reply { rtt } => rtt,
                other => panic!("echo on the slow line lost: {other:?}"),
            };
            let wait = Duration::from_secs(2);
            let rtt = rtt_of(prober.probe(isp2, MONITORS[0], 150, wait).await);
            assert!(rtt >= Duration::from_millis(39), "{rtt:?}");
            lab.fault(2, &["blackhole"]);
            let lost = prober
                .probe(isp2, MONITORS[0], 151, Duration::from_millis(300))
                .await;
            assert_eq!(lost, ProbeResult::NoReply);
            lab.fault(2, &["clear"]);
            let rtt = rtt_of(prober.probe(isp2, MONITORS[0], 152, wait).await);
            assert!(rtt >= Duration::from_millis(39), "{rtt:?}");
            // Removed: no queue rule is left (checked by rule, not by a time bound), and the
            // line still answers.
            lab.latency(2, 0);
            let rules = lab
                .exec("inet", &["iptables", "-t", "mangle", "-S", "PREROUTING"])
                .expect("iptables");
            assert!(!rules.contains("NFQUEUE"), "{rules}");
            rtt_of(prober.probe(isp2, MONITORS[0], 153, wait).await);

            lab.monitor(MONITORS[1], "down");
            let c = rounds(&prober, &links, &[MONITORS[1]], 2, 200).await;
            assert_eq!(c[isp1].replies + c[&links[1]].replies, 0, "{c:?}");
            let c = rounds(&prober, &links, &[MONITORS[0], MONITORS[2]], 2, 210).await;
            assert_eq!(c[isp1].replies + c[&links[1]].replies, 8, "{c:?}");
            lab.monitor(MONITORS[1], "up");
            let c = rounds(&prober, &links, &[MONITORS[1]], 1, 220).await;
            assert_eq!(c[isp1].replies + c[&links[1]].replies, 2, "{c:?}");

            lab.fault(1, &["down"]);
            let c = rounds(&prober, &links, &MONITORS, 2, 300).await;
            assert_eq!(c[isp1].replies, 0, "{c:?}");
            assert_eq!(c[&links[1]].replies, 6, "{c:?}");
            lab.fault(1, &["clear"]);
        })
    });
}

/// `uplinkd probe`, the command people (and check-static.sh, under qemu) use to try one path:
/// finds the interface by the source address, answers through a live WAN, and fails with
/// "0 replies" through a blackholed one.
#[test]
fn the_probe_command_tries_one_path() {
    if !lab::available("probe command") {
        return;
    }
    let lab = Lab::up(Topology::Veth, 1);
    let bin = env!("CARGO_BIN_EXE_uplinkd");
    let probe = |count: &str| {
        lab.exec(
            "ctr",
            &[
                bin,
                "probe",
                "--source",
                "198.18.1.2",
                "--count",
                count,
                "--interval-ms",
                "50",
                "--timeout-ms",
                "300",
                "198.18.100.1",
            ],
        )
    };
    let out = probe("3").expect("probe through a live WAN");
    assert!(out.contains("on uplinkd-wan1"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("3 sent, 3 replies, 0 ICMP errors"),
        "{out}"
    );
    assert!(last.contains("first reply"), "{out}");

    lab.fault(1, &["blackhole"]);
    let err = probe("2").expect_err("a blackholed WAN must fail the command");
    assert!(err.contains("2 sent, 0 replies"), "{err}");
    assert!(err.contains("no reply to any of 2 probes"), "{err}");
}
