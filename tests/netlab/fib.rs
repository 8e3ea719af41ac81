//! The lab's data-plane sync: the emulator is the router's control plane (the daemon switches
//! routes there over REST), the lab's `rtr` namespace is its data plane. This thread is the
//! test's model of RouterOS's FIB for table `main`: whenever the emulator's enabled default
//! routes of `main` change, it installs the one with the lowest distance as `rtr`'s main default
//! route (`ip route replace default via GATEWAY`). RouterOS also needs the gateway to be active
//! (reachable through a connected network), which every lab gateway is; it is not modelled.
//!
//! Only traffic that uses `main` follows it: the container's own traffic over the management
//! veth (`netlab.sh up --mgmt`). The probes have their per-WAN tables and never move.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uplinkd_emulator::Emulator;

use super::lab::Lab;

/// One change the sync made to `rtr`'s main default route.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub at: Instant,
    /// The gateway installed, or `None` when no default route is enabled (none installed).
    pub gateway: Option<Ipv4Addr>,
}

/// The running sync; stops (and joins) on drop, leaving the last route in place.
pub(crate) struct FibSync {
    stop: Arc<AtomicBool>,
    changes: Arc<Mutex<Vec<Change>>>,
    thread: Option<JoinHandle<()>>,
}

/// The gateway RouterOS's FIB would use for `main`'s default route: among the enabled routes
/// to 0.0.0.0/0 in `main`, the lowest distance, ties to the first in print order. A gateway
/// bound to an interface (`198.18.11.1%ether1`) counts by its address; a gateway that is not
/// an address (an interface name) cannot be a lab route and is skipped.
pub(crate) fn main_gateway(emu: &Emulator) -> Option<Ipv4Addr> {
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for r in emu.objects("/ip/route") {
        let enabled = !matches!(r.get("disabled"), Some("true" | "yes"));
        let in_main = r.get("routing-table").is_none_or(|t| t == "main");
        let default = r.get("dst-address") == Some("0.0.0.0/0");
        if !(enabled && in_main && default) {
            continue;
        }
        let Some(gw) = r
            .get("gateway")
            .and_then(|g| g.split('%').next())
            .and_then(|g| g.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let distance = r.get("distance").and_then(|d| d.parse().ok()).unwrap_or(1);
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, gw));
        }
    }
    best.map(|(_, gw)| gw)
}

impl FibSync {
    /// Installs the emulator's current choice, then follows it every 50 ms until dropped.
    pub(crate) fn start(lab: &Lab, emu: &Emulator) -> FibSync {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let rtr = lab.ns("rtr");
        let apply = move |gw: Option<Ipv4Addr>| {
            let gw_s = gw.map(|g| g.to_string());
            let args: Vec<&str> = match &gw_s {
                Some(g) => vec!["-n", &rtr, "route", "replace", "default", "via", g],
                None => vec!["-n", &rtr, "route", "del", "default"],
            };
            let out = std::process::Command::new("ip")
                .args(&args)
                .output()
                .expect("run ip");
            // Deleting a default that is already gone is the state we want.
            assert!(
                out.status.success() || gw.is_none(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let first = main_gateway(emu);
        apply(first);
        changes.lock().unwrap().push(Change {
            at: Instant::now(),
            gateway: first,
        });
        let thread = {
            let (stop, changes, emu) = (stop.clone(), changes.clone(), emu.clone());
            std::thread::spawn(move || {
                let mut current = first;
                while !stop.load(Ordering::Relaxed) {
                    let want = main_gateway(&emu);
                    if want != current {
                        apply(want);
                        current = want;
                        changes.lock().unwrap().push(Change {
                            at: Instant::now(),
                            gateway: want,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        FibSync {
            stop,
            changes,
            thread: Some(thread),
        }
    }

    /// Every change so far, the initial install first.
    pub(crate) fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap().clone()
    }

    /// The gateway installed last.
    pub(crate) fn current(&self) -> Option<Ipv4Addr> {
        self.changes().last().and_then(|c| c.gateway)
    }
}

impl Drop for FibSync {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A failed `ip` in the thread fails the test here (unless it is failing already).
        if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join)
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// `rtr`'s main default gateway as the kernel has it (what the data plane really uses).
pub(crate) fn installed_gateway(lab: &Lab) -> Option<Ipv4Addr> {
    let out = lab.exec("rtr", &["ip", "route", "show", "default"]).ok()?;
    let mut words = out.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next()?.parse().ok()
}
