//! `/tool/netwatch`, as far as uplinkd's watchdog needs it: `type=icmp` (and `simple`) entries
//! probed every `interval`, `status` up or down, the up-script or down-script run on a change
//! (the first result counts as one unless `ignore-initial-up`/`-down` says otherwise), and a
//! `netwatch,info` log line, as RouterOS logs it. Who answers a ping:
//! an address of this router, or the address of a veth whose container is running. Other
//! types and anything else are refused, not guessed.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Emulator, log_into, script};

impl Emulator {
    /// One netwatch round at `now`: probes every enabled entry that is due and runs the script
    /// of each entry whose status changed. Returns the names of the entries that changed.
    pub fn netwatch_step(&self, now: tokio::time::Instant) -> Result<Vec<String>, String> {
        let entries = self.objects("/tool/netwatch");
        let mut changed = Vec::new();
        for e in entries.iter().filter(|e| e.get("disabled") != Some("true")) {
            let interval = e
                .get("interval")
                .map(parse_interval)
                .transpose()?
                .unwrap_or(Duration::from_secs(10));
            {
                let mut due = self
                    .inner
                    .netwatch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let next = due.entry(e.id.clone()).or_insert(now);
                if *next > now {
                    continue;
                }
                *next = now + interval;
            }
            match e.get("type").unwrap_or("simple") {
                "icmp" | "simple" => {}
                other => return Err(format!("emulator: netwatch type={other} is not emulated")),
            }
            let host: Ipv4Addr = e
                .get("host")
                .unwrap_or("")
                .parse()
                .map_err(|_| format!("emulator: netwatch host {:?}", e.get("host")))?;
            let status = if self.answers_ping(host) {
                "up"
            } else {
                "down"
            };
            if e.get("status") == Some(status) {
                continue;
            }
            let name = e.get("name").unwrap_or(&e.id).to_string();
            self.edit_object("/tool/netwatch", &e.id, &[("status", status)]);
            log_into(
                &mut self.lock().store,
                "netwatch,info",
                &format!("event {status} [ type: icmp, host: {host} ]"),
            );
            let initial = e.get("status").is_none_or(|s| s == "unknown");
            let ignored = initial && e.get(&format!("ignore-initial-{status}")) == Some("true");
            let script = e
                .get(if status == "up" {
                    "up-script"
                } else {
                    "down-script"
                })
                .filter(|_| !ignored)
                .unwrap_or("")
                .to_string();
            if !script.is_empty() {
                script::run(self, &script).map_err(|err| format!("netwatch {name}: {err}"))?;
            }
            changed.push(name);
        }
        Ok(changed)
    }

    /// Runs netwatch in the background, a round every second, until the handle is aborted or
    /// dropped. A script error is logged to the router's log, as RouterOS does.
    pub fn spawn_netwatch(&self) -> NetwatchHandle {
        let emu = self.clone();
        NetwatchHandle(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let now = tick.tick().await;
                if let Err(e) = emu.netwatch_step(now) {
                    log_into(&mut emu.lock().store, "netwatch,error", &e);
                }
            }
        }))
    }

    /// Whether `ip` answers an echo from the router: one of its own addresses, or the address
    /// of a veth that a running container uses.
    fn answers_ping(&self, ip: Ipv4Addr) -> bool {
        let holds = |o: &super::Object| {
            o.get("address")
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
                == Some(ip)
        };
        if self.objects("/ip/address").iter().any(holds) {
            return true;
        }
        let veths = self.objects("/interface/veth");
        self.objects("/container")
            .iter()
            .filter(|c| c.get("status") == Some("running"))
            .flat_map(|c| {
                c.get("interface")
                    .unwrap_or("")
                    .split(',')
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .any(|name| {
                veths
                    .iter()
                    .any(|v| v.get("name") == Some(name.as_str()) && holds(v))
            })
    }
}

/// Stops the background netwatch when dropped.
pub struct NetwatchHandle(tokio::task::JoinHandle<()>);

impl Drop for NetwatchHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    script::parse_duration(s).ok_or_else(|| format!("emulator: netwatch interval {s:?}"))
}
