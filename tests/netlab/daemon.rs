//! End-to-end fixture: the REST emulator served inside the lab's container namespace (on its
//! loopback, as a RouterOS container reaches the router on the veth), a config file for the lab,
//! and `uplinkd run` started in that namespace as a child process (killed on drop).
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uplinkd::config::{Config, Env};
use uplinkd_emulator::{Emulator, EmulatorConfig, RunningEmulator, User};

use super::lab::Lab;

pub(crate) const USER: &str = "uplinkd";
pub(crate) const PASSWORD: &str = "lab-secret";

/// The emulator, served from a runtime whose threads live in the container namespace.
pub(crate) struct Router {
    pub emu: Emulator,
    pub url: String,
    server: Option<RunningEmulator>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Router {
    pub(crate) fn start(lab: &Lab) -> Router {
        let emu = Emulator::new(EmulatorConfig {
            users: vec![User::new(USER, PASSWORD)],
            ..EmulatorConfig::default()
        });
        let e = emu.clone();
        // Worker threads are spawned by the thread that builds the runtime and inherit its
        // namespace, so the listener and every connection live in the container namespace.
        let (rt, server) = lab.run_in("ctr", move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let server = rt
                .block_on(e.serve("127.0.0.1:0".parse().expect("addr")))
                .expect("serve");
            (rt, server)
        });
        Router {
            emu,
            url: server.url(),
            server: Some(server),
            rt: Some(rt),
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let _g = rt.enter();
            drop(self.server.take());
            drop(_g);
            rt.shutdown_background();
        }
    }
}

/// The lab's config: two WANs probing the same monitors through their own veths.
pub(crate) fn config_text(lab: &Lab, url: &str, state_dir: &Path, extra_health: &str) -> String {
    let mut wans = String::new();
    for n in 1..=lab.wans {
        let (_, p) = lab.probe_path(n);
        wans.push_str(&format!(
            r#"
[[wan]]
name = "ISP{n}"
label = "Lab-ISP{n}"
interface = "ether{n}"
address = "198.18.{isp}.2/30"
gateway = "198.18.{isp}.1"
monitors = ["198.18.100.1", "198.18.100.2"]
weight = 1
priority = {n}
probe_veth = "{veth}"
probe_router_address = "{router}"
probe_source = "{source}"
probe_prefix_len = {plen}
"#,
            isp = 10 + n,
            veth = p.veth,
            router = p.router_address,
            source = p.source,
            plen = p.prefix_len,
        ));
    }
    format!(
        r#"state_dir = "{state}"

[router]
version = "7.20"
mode = "container"

[rest]
url = "{url}"
user = "{USER}"
password = "{PASSWORD}"
trust = "plain-http"
timeout = "5s"
{wans}
[health]
{extra_health}

[balance]
pcc = "both-addresses-and-ports"
preferred = "ISP1"

[sections]
lan = false
dhcp = false
dns = false
firewall = false
hardening = false
ipv6_off = false
mss_clamp = false
ntp = false

[reconcile]
resync_interval = "5s"
"#,
        state = state_dir.display(),
    )
}

pub(crate) fn parse_config(text: &str) -> Config {
    Config::from_toml_str(text, &Env::empty()).expect("lab config resolves")
}

/// `uplinkd run` in the container namespace, its output collected line by line.
pub(crate) struct Daemon {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_uplinkd")` in tests, the release build in the bench).
    pub(crate) fn start(lab: &Lab, binary: &Path, config_path: &Path) -> Daemon {
        let mut child = uplinkd_testkit::testenv::without_runner_env(&mut Command::new("ip"))
            .args(["netns", "exec", &lab.ns("ctr")])
            .arg(binary)
            .args(["--config"])
            .arg(config_path)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start uplinkd");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        Daemon { child, lines }
    }

    /// SIGKILL: no chance to clean up, as a crash or an OOM kill.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    pub(crate) fn has_line(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|l| l.contains(needle))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes (a bound against hanging, not a
/// speed assertion: failing it means the state was never reached).
pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

pub(crate) fn state_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "uplinkd-lab-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).expect("state dir");
    dir
}
