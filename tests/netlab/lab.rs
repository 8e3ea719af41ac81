//! The namespace lab as a test fixture: `scripts/netlab.sh` builds it (so tests and people use
//! the same lab), a Drop guard deletes it even when the test panics, and `run_in` executes code
//! inside one of its namespaces (a thread that entered it, so every socket it opens lives there).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use uplinkd::config::ProbePath;
use uplinkd::types::LinkId;
use uplinkd_testkit::testenv;

pub(crate) const MONITORS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 18, 100, 1),
    Ipv4Addr::new(198, 18, 100, 2),
    Ipv4Addr::new(198, 18, 100, 3),
];

/// The lab's address for servers behind the ISPs (on the internet namespace's lo, like the
/// monitors): reachable from the container only through the router and an ISP.
pub(crate) const SERVICES: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 25);
/// Names the lab's DNS answers with [`SERVICES`] (`netlab.sh up --mgmt`).
pub(crate) const SMTP_NAME: &str = "smtp.example";
pub(crate) const HOOKS_NAME: &str = "hooks.example";
/// The router's end of the management veth, where the lab's DNS listens.
pub(crate) const MGMT_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 1);

/// Whether the container has the install script's management veth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mgmt {
    /// No management veth: the container's default route is the first WAN veth (how the lab
    /// was built before the install script had one).
    Absent,
    /// `uplinkd-mgmt` holds the container's default route, the router's main table carries it,
    /// and the router end answers DNS for [`SMTP_NAME`] and [`HOOKS_NAME`].
    Veth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    /// A veth per WAN.
    Veth,
    /// One veth carrying one address per WAN.
    Shared,
}

pub(crate) struct Lab {
    pub name: String,
    pub topology: Topology,
    pub wans: usize,
    pub mgmt: Mgmt,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/netlab.sh")
}

/// Whether the lab can run here; skips (or fails under UPLINKD_TEST_STRICT=1) otherwise.
pub(crate) fn available(test: &str) -> bool {
    let check = testenv::is_root()
        .and_then(|()| testenv::have_program("ip"))
        .and_then(|()| testenv::have_program("nft"))
        .and_then(|()| testenv::have_program("bash"))
        .and_then(|()| {
            std::fs::create_dir_all("/run/netns")
                .map_err(|e| format!("cannot create /run/netns: {e}"))
        });
    testenv::require(&format!("{test}: namespace lab"), check)
}

fn run(args: &[&str]) -> Result<String, String> {
    // `exec` runs uplinkd in the lab: without the runner's UPLINKD_* variables.
    let out = testenv::without_runner_env(&mut Command::new("bash"))
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("netlab.sh {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "netlab.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Lab {
    /// Builds a lab with a name unique to this process and call.
    pub(crate) fn up(topology: Topology, wans: usize) -> Lab {
        Lab::up_with(topology, wans, Mgmt::Absent)
    }

    /// [`Lab::up`] with or without the management path.
    pub(crate) fn up_with(topology: Topology, wans: usize, mgmt: Mgmt) -> Lab {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ul{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let topo = match topology {
            Topology::Veth => "veth",
            Topology::Shared => "shared",
        };
        let wans_s = wans.to_string();
        // Constructed before `up` so a half-built lab is still torn down by Drop.
        let lab = Lab {
            name,
            topology,
            wans,
            mgmt,
        };
        let mut args = vec!["up", &lab.name, "--topology", topo, "--wans", &wans_s];
        if mgmt == Mgmt::Veth {
            args.push("--mgmt");
        }
        run(&args).expect("lab up");
        lab
    }

    /// The names the lab's DNS was asked so far, as `NAME TYPE` lines (`--mgmt` only).
    pub(crate) fn dns_queries(&self) -> Vec<String> {
        std::fs::read_to_string(format!("/run/netns/.{}.dns.log", self.name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn ns(&self, which: &str) -> String {
        format!("{}-{}", self.name, which)
    }

    /// Injects a fault on WAN `wan` (1-based): `blackhole`, `down`, `unreachable`,
    /// `loss PCT`, `clear`.
    pub(crate) fn fault(&self, wan: usize, fault: &[&str]) {
        let w = wan.to_string();
        let mut args = vec!["fault", &self.name, &w];
        args.extend_from_slice(fault);
        run(&args).expect("fault");
    }

    /// A standing one-way delay of `ms` on WAN `wan`'s ISP -> internet link, which faults do
    /// not clear (0 removes it): a line with a real RTT.
    pub(crate) fn latency(&self, wan: usize, ms: u32) {
        run(&["latency", &self.name, &wan.to_string(), &ms.to_string()]).expect("latency");
    }

    pub(crate) fn monitor(&self, ip: Ipv4Addr, state: &str) {
        run(&["monitor", &self.name, &ip.to_string(), state]).expect("monitor");
    }

    /// Runs a command inside one of the lab's namespaces.
    pub(crate) fn exec(&self, ns: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", &self.name, ns];
        args.extend_from_slice(cmd);
        run(&args)
    }

    /// The probe path of WAN `n` (1-based) as the install script configures it.
    pub(crate) fn probe_path(&self, n: usize) -> (LinkId, ProbePath) {
        let path = match self.topology {
            Topology::Veth => ProbePath {
                veth: format!("uplinkd-wan{n}"),
                router_address: Ipv4Addr::new(198, 18, n as u8, 1),
                source: Ipv4Addr::new(198, 18, n as u8, 2),
                prefix_len: 30,
            },
            Topology::Shared => ProbePath {
                veth: "uplinkd-veth".into(),
                router_address: Ipv4Addr::new(198, 18, 9, 1),
                source: Ipv4Addr::new(198, 18, 9, n as u8 + 1),
                prefix_len: 29,
            },
        };
        (LinkId::new(format!("ISP{n}")), path)
    }

    pub(crate) fn probe_paths(&self) -> Vec<(LinkId, ProbePath)> {
        (1..=self.wans).map(|n| self.probe_path(n)).collect()
    }

    /// Runs `f` on a thread inside namespace `which`: sockets and netlink requests made there
    /// belong to that namespace (a socket keeps its namespace when used from other threads).
    pub(crate) fn run_in<T: Send>(&self, which: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(which));
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_netns(&path);
                f()
            })
            .join()
            .expect("thread inside the namespace panicked")
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = run(&["down", &self.name]) {
            eprintln!("lab teardown: {e}");
        }
    }
}

const CLONE_NEWNET: i32 = 0x4000_0000;

#[expect(
    unsafe_code,
    reason = "the lab enters a namespace with setns(2); std has no wrapper"
)]
unsafe extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// Moves the calling thread into the network namespace at `path`.
#[expect(unsafe_code, reason = "calls setns(2), declared above")]
pub(crate) fn enter_netns(path: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: `f` is an open namespace file for the duration of the call; setns only changes
    // the calling thread's network namespace.
    let rc = unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}
