//! The demo (`cargo run --example demo`): a self-contained simulation. An emulated RouterOS 7.20 is served in-process on
//! loopback and loaded with the base objects uplinkd switches (two WANs' tagged routes and PCC
//! rules); the real daemon (health engine, policy, reconcile, REST client) runs against it with a
//! scripted prober: ISP1's monitors go silent, later answer again. Time is tokio's paused clock,
//! so minutes of router time pass in about a second. Prints the timeline and a summary.
//!
//! It must never touch a real router or any address but 127.0.0.1, and must say plainly that it
//! is a simulation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::scripted::{Behaviour, ScriptedProber};
use uplinkd::app::{self, Hooks};
use uplinkd::bus::{self, Event, Shutdown};
use uplinkd::config::{Config, Trust};
use uplinkd::health::StateKind;
use uplinkd::naming;
use uplinkd::reconciler::{Report, Trigger};
use uplinkd::routeros::Client;
use uplinkd::types::{LinkId, Secret};
use uplinkd_emulator::{Connection, Emulator, EmulatorConfig, RequestRecord, User};

/// When (virtual time after start) the scripted fault begins and ends, and when the demo stops.
pub const FAULT_AT: Duration = Duration::from_secs(10);
pub const REPAIR_AT: Duration = Duration::from_secs(70);
pub const END_AT: Duration = Duration::from_secs(140);
/// RTT of every scripted reply (a 20 ms fibre line).
pub const RTT: Duration = Duration::from_millis(20);

const DEMO_USER: &str = "uplinkd";
const DEMO_PASSWORD: &str = "demo";

/// Runs the demo on a fresh current-thread runtime with a paused clock and prints its report.
pub fn main_demo() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    println!(
        "uplinkd demo: a simulation against an emulated RouterOS on 127.0.0.1 (no router, no root).\n\
         uplinkd's own log lines come first, then the timeline and a summary.\n"
    );
    let out = rt.block_on(run_demo())?;
    print!("{}", out.text);
    Ok(())
}

/// Everything the demo observed, for the summary (and for tests).
#[derive(Debug, Default)]
pub struct Outcome {
    /// The printed report.
    pub text: String,
    /// Virtual time from start to ISP1's DOWN and UP transitions.
    pub down_at: Option<Duration>,
    pub up_at: Option<Duration>,
    /// Virtual time from start to the end of the pass that switched ISP1 off / on.
    pub switched_off_at: Option<Duration>,
    pub switched_on_at: Option<Duration>,
    /// REST requests the emulator served for the failover and for the recovery (from the
    /// transition to the router-log line written after the switch).
    pub failover_calls: Vec<RequestRecord>,
    pub recovery_calls: Vec<RequestRecord>,
}

/// The demo's config: `config::EXAMPLE` pointed at the emulator over plain HTTP.
pub fn demo_config(url: &str) -> anyhow::Result<Config> {
    let mut config = Config::example();
    config.router.rest.url = url.parse().expect("the emulator's URL");
    config.router.rest.trust = Trust::PlainHttp;
    config.router.rest.user = DEMO_USER.to_owned();
    config.router.rest.password = Secret::new(DEMO_PASSWORD);
    Ok(config)
}

/// Loads the base config as `uplinkd render base` renders it, through the emulator's script
/// interpreter (as `/import` would on a router): the LAN, per-WAN routing tables, the tagged
/// routes and PCC rules uplinkd switches, NAT and firewall. Plus an untagged route of the admin
/// that must stay untouched.
pub fn load_base_objects(emu: &Emulator, config: &Config) -> anyhow::Result<()> {
    let rendered = uplinkd::rsc::render_base(config).context("rendering the base config")?;
    emu.import_script(&rendered.text)
        .map_err(|e| anyhow::anyhow!("importing the rendered base config: {e}"))?;
    emu.add_object(
        "/ip/route",
        &[
            ("dst-address", "10.99.0.0/16"),
            ("gateway", "192.168.0.254"),
            ("comment", "admin: lab network"),
        ],
    )?;
    Ok(())
}

/// A few conntrack entries per WAN, so the flush has something to remove.
fn load_connections(emu: &Emulator, config: &Config) {
    for w in &config.wans {
        for n in 0..3 {
            emu.add_connection(Connection {
                protocol: "tcp".into(),
                src_address: format!("192.168.100.{}:{}", 100 + n, 50000 + n),
                dst_address: format!("198.18.{}.{}:443", w.priority, n + 1),
                connection_mark: naming::conn_mark(&w.id),
            });
        }
    }
}

/// Runs the whole demo and returns its report.
pub async fn run_demo() -> anyhow::Result<Outcome> {
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new(DEMO_USER, DEMO_PASSWORD)],
        ..EmulatorConfig::default()
    });
    let server = emu
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("starting the emulated router on 127.0.0.1")?;
    let config = demo_config(&server.url())?;
    load_base_objects(&emu, &config).context("loading the base objects")?;
    load_connections(&emu, &config);

    let isp1 = config.wans[0].id.clone();
    let client = Client::new(&config.router.rest).context("building the REST client")?;
    let prober = Arc::new(ScriptedProber::new(Behaviour::Reply { rtt: RTT }));
    let start = tokio::time::Instant::now();
    let journal = Arc::new(Mutex::new(Journal::new(start.into_std(), emu.clone())));

    let mut text = String::new();
    let _ = writeln!(
        text,
        "uplinkd demo: a SIMULATION. No real router and no network are involved.\n\
         The real uplinkd engine (health checks, policy, reconcile, REST client) runs against an\n\
         emulated RouterOS 7.20 served in this process at {} ; probe answers are scripted\n\
         (every monitor answers in {} ms until ISP1's monitors go silent at +{}s and come back\n\
         at +{}s). Time is virtual (tokio's paused clock): {} s of router time take about a second.\n",
        server.url(),
        RTT.as_millis(),
        FAULT_AT.as_secs(),
        REPAIR_AT.as_secs(),
        END_AT.as_secs()
    );
    let _ = writeln!(text, "Router before:");
    text.push_str(&router_table(&emu));
    text.push('\n');

    let hooks = Hooks {
        services: vec![Box::new(bus::EventTap::new("demo-recorder", {
            let journal = journal.clone();
            move |t| match t {
                bus::Tapped::Event(ev) => lock(&journal).event(&ev),
                bus::Tapped::Lagged(n) => {
                    lock(&journal).line(None, &format!("({n} events not shown)"))
                }
            }
        }))],
        ..Hooks::default()
    };
    let (trigger, stop) = Shutdown::new();
    let daemon = {
        let mut stop = stop.clone();
        app::run(
            Arc::new(config.clone()),
            Arc::new(client),
            prober.clone(),
            hooks,
            async move { stop.recv().await },
        )
    };
    let script = {
        let journal = journal.clone();
        let prober = prober.clone();
        let isp1 = isp1.clone();
        let monitors: Vec<String> = config.wans[0]
            .monitors
            .iter()
            .map(|m| m.to_string())
            .collect();
        async move {
            tokio::time::sleep_until(start + FAULT_AT).await;
            prober.set(&isp1, Behaviour::Silent);
            lock(&journal).note(format!(
                "script: ISP1's monitors ({}) stop answering",
                monitors.join(", ")
            ));
            tokio::time::sleep_until(start + REPAIR_AT).await;
            prober.set(&isp1, Behaviour::Reply { rtt: RTT });
            lock(&journal).note("script: ISP1's monitors answer again".to_owned());
            tokio::time::sleep_until(start + END_AT).await;
            trigger.fire();
        }
    };
    tokio::join!(daemon, script);
    // The flush runs as a background job on the emulated router: let it finish before reporting.
    emu.wait_jobs().await;

    let outcome = {
        let mut j = lock(&journal);
        j.flush_requests(None);
        let _ = writeln!(text, "Timeline (virtual time since start):");
        text.push_str(&j.timeline);
        let _ = writeln!(text, "\nRouter after:");
        text.push_str(&router_table(&emu));
        let globals = emu.globals();
        if !globals.is_empty() {
            let g: Vec<String> = globals.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(text, "  :global {}", g.join(" "));
        }
        let conns = emu.connections();
        let mut by_mark: BTreeMap<String, usize> = BTreeMap::new();
        for c in &conns {
            *by_mark.entry(c.connection_mark.clone()).or_default() += 1;
        }
        let _ = writeln!(text, "  connections by mark: {by_mark:?}");
        let router_log: Vec<String> = emu
            .log_entries()
            .into_iter()
            .filter(|e| e.message.contains("[FAILOVER]"))
            .map(|e| format!("  /log {}: {}", e.topics, e.message))
            .collect();
        if !router_log.is_empty() {
            let _ = writeln!(text, "Router log:\n{}", router_log.join("\n"));
        }

        let mut outcome = j.outcome(&isp1);
        let _ = writeln!(text, "\nSummary:");
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        match (outcome.down_at, outcome.switched_off_at) {
            (Some(down), Some(off)) => {
                let _ = writeln!(
                    text,
                    "  ISP1 failure detected {} after its monitors went silent; routes and PCC rules \
                 switched {} after it (default health profile).",
                    secs(down.saturating_sub(FAULT_AT)),
                    secs(off.saturating_sub(FAULT_AT))
                );
            }
            _ => {
                let _ = writeln!(text, "  ISP1's failure was NOT detected (this is a bug).");
            }
        }
        let _ = writeln!(
            text,
            "  failover: {} REST calls ({})",
            outcome.failover_calls.len(),
            describe_calls(&outcome.failover_calls)
        );
        match (outcome.up_at, outcome.switched_on_at) {
            (Some(up), Some(on)) => {
                let _ = writeln!(
                    text,
                    "  ISP1 back in service {} after its monitors answered again (the failback \
                 hold-down keeps a flapping line out); switched on {} after that.",
                    secs(up.saturating_sub(REPAIR_AT)),
                    secs(on.saturating_sub(REPAIR_AT))
                );
            }
            _ => {
                let _ = writeln!(text, "  ISP1 did not come back before the end of the demo.");
            }
        }
        let _ = writeln!(
            text,
            "  recovery: {} REST calls ({})",
            outcome.recovery_calls.len(),
            describe_calls(&outcome.recovery_calls)
        );
        let total = emu.requests();
        let writes = total.iter().filter(|r| r.is_write()).count();
        let _ = writeln!(
            text,
            "  whole run: {} REST calls, {} of them writes; {} periodic resync(s) found nothing to \
         change and wrote {} time(s).",
            total.len(),
            writes,
            j.resyncs,
            j.resync_writes
        );
        let _ = writeln!(
            text,
            "\nThis was a simulation against an emulated router. On a real router, run\n\
         `uplinkd check` and `uplinkd plan` first (plan shows what would change, changing nothing)."
        );
        outcome.text = text;
        outcome
    };
    server.shutdown().await;
    Ok(outcome)
}

fn describe_calls(calls: &[RequestRecord]) -> String {
    calls
        .iter()
        .map(|r| format!("{} {}", r.method, r.path.split('?').next().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The objects uplinkd switches (tagged routes and PCC rules), one line each.
fn router_table(emu: &Emulator) -> String {
    let mut out = String::new();
    for menu in ["/ip/route", "/ip/firewall/mangle"] {
        for o in emu.objects(menu) {
            let Some(comment) = o.get("comment") else {
                continue;
            };
            let m = if menu == "/ip/route" {
                uplinkd::reconcile::Menu::Route
            } else {
                uplinkd::reconcile::Menu::Mangle
            };
            // Only what uplinkd switches; the rest of the base config never changes at runtime.
            if uplinkd::reconcile::plan::classify(m, comment).is_none() {
                continue;
            }
            let state = if o.get("disabled") == Some("true") || o.get("disabled") == Some("yes") {
                "disabled"
            } else {
                "enabled"
            };
            let _ = writeln!(out, "  {menu:<20} {:<4} {state:<8} {comment}", o.id);
        }
    }
    out
}

fn lock(j: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    // Only this file's short critical sections hold the lock; a panic there already fails the
    // demo, and the journal stays readable.
    j.lock().unwrap_or_else(|p| p.into_inner())
}

/// The timeline being written, and the facts for the summary.
struct Journal {
    start: Instant,
    emu: Emulator,
    timeline: String,
    /// Requests of the emulator already printed.
    seen: usize,
    down: Option<(Duration, usize)>,
    up: Option<(Duration, usize)>,
    switched_off: Option<(Duration, usize)>,
    switched_on: Option<(Duration, usize)>,
    resyncs: usize,
    resync_writes: usize,
}

impl Journal {
    fn new(start: Instant, emu: Emulator) -> Self {
        Self {
            start,
            emu,
            timeline: String::new(),
            seen: 0,
            down: None,
            up: None,
            switched_off: None,
            switched_on: None,
            resyncs: 0,
            resync_writes: 0,
        }
    }

    fn line(&mut self, at: Option<Instant>, what: &str) {
        let t = at.map(|a| a.saturating_duration_since(self.start));
        match t {
            Some(t) => {
                let _ = writeln!(self.timeline, "  +{:>8.3}s  {what}", t.as_secs_f64());
            }
            None => {
                let _ = writeln!(self.timeline, "  {:>10}  {what}", "");
            }
        }
    }

    /// A note from the scenario script, stamped with the shell's (virtual) clock.
    fn note(&mut self, what: String) {
        self.flush_requests(None);
        let at = tokio::time::Instant::now().into_std();
        self.line(Some(at), &what);
    }

    /// Prints the REST writes served since the last call (reads are summarised).
    fn flush_requests(&mut self, at: Option<Instant>) {
        let reqs = self.emu.requests();
        let new = &reqs[self.seen.min(reqs.len())..];
        let reads = new.iter().filter(|r| !r.is_write()).count();
        let mut lines = Vec::new();
        if reads > 0 {
            lines.push(format!("REST   {reads} read(s)"));
        }
        for r in new.iter().filter(|r| r.is_write()) {
            lines.push(format!(
                "REST   {} {} {} -> {}",
                r.method,
                r.path,
                short(&r.body),
                r.status
            ));
        }
        self.seen = reqs.len();
        for l in lines {
            self.line(at, &l);
        }
    }

    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Transition {
                transition: tr,
                outage,
                ..
            } => {
                self.flush_requests(None);
                // The daemon's own line for the edge (the one formatter).
                let desc = uplinkd::format::state_change(tr, outage.lasted(), None)
                    .line
                    .message;
                self.line(Some(tr.at), &desc);
                let t = tr.at.saturating_duration_since(self.start);
                let mark = self.emu.requests().len();
                match tr.to.kind() {
                    StateKind::Down if self.down.is_none() => self.down = Some((t, mark)),
                    StateKind::Up if self.down.is_some() && self.up.is_none() => {
                        self.up = Some((t, mark));
                    }
                    _ => {}
                }
            }
            Event::Desired { request, at } => {
                let roles: Vec<String> = request
                    .target
                    .wans
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                self.line(Some(*at), &format!("policy: {}", roles.join(" ")));
            }
            Event::Reconcile { report, at } => {
                if let Report::Applied(r) = report
                    && r.trigger == Trigger::Resync
                {
                    self.resyncs += 1;
                    let reqs = self.emu.requests();
                    let new = &reqs[self.seen.min(reqs.len())..];
                    self.resync_writes += new.iter().filter(|r| r.is_write()).count();
                }
                self.flush_requests(Some(*at));
                let t = at.saturating_duration_since(self.start);
                let mark = self.emu.requests().len();
                match report {
                    Report::Applied(r) if !r.plan.is_noop() => {
                        let ops: Vec<String> = r
                            .plan
                            .ops
                            .iter()
                            .map(|o| format!("{} {}", o.action, o.tags.join(" ")))
                            .collect();
                        let mut what = format!("reconcile: {}", ops.join("; "));
                        if !r.flushed.is_empty() {
                            let marks: Vec<String> =
                                r.flushed.iter().map(naming::conn_mark).collect();
                            let _ = write!(what, "; then flush connections {}", marks.join(","));
                        }
                        let _ = write!(what, " ({} REST calls)", r.calls);
                        self.line(Some(*at), &what);
                        if self.down.is_some() && self.switched_off.is_none() {
                            self.switched_off = Some((t, mark));
                        } else if self.up.is_some() && self.switched_on.is_none() {
                            self.switched_on = Some((t, mark));
                        }
                    }
                    Report::Applied(r) => {
                        self.line(
                            Some(*at),
                            &format!(
                                "reconcile ({:?}): router already as desired, no writes ({} REST calls)",
                                r.trigger, r.calls
                            ),
                        );
                    }
                    Report::Failed {
                        error, retry_in, ..
                    } => {
                        self.line(
                            Some(*at),
                            &format!("reconcile failed: {error}; retry in {retry_in:?}"),
                        );
                    }
                    Report::LogDropped { message, error } => {
                        self.line(
                            Some(*at),
                            &format!("router log line dropped ({error}): {message}"),
                        );
                    }
                }
            }
        }
    }

    fn outcome(&self, isp1: &LinkId) -> Outcome {
        let reqs = self.emu.requests();
        // A failover's calls: from the transition to the [FAILOVER] log line written after it.
        let calls_from = |from: Option<(Duration, usize)>| -> Vec<RequestRecord> {
            let Some((_, mark)) = from else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for r in reqs.iter().skip(mark) {
                out.push(r.clone());
                if r.path.starts_with("/rest/log/") && r.body.contains(isp1.as_str()) {
                    break;
                }
            }
            out
        };
        Outcome {
            text: String::new(),
            down_at: self.down.map(|d| d.0),
            up_at: self.up.map(|d| d.0),
            switched_off_at: self.switched_off.map(|d| d.0),
            switched_on_at: self.switched_on.map(|d| d.0),
            failover_calls: calls_from(self.down),
            recovery_calls: calls_from(self.up),
        }
    }
}

fn short(body: &str) -> String {
    let b: String = body.chars().take(110).collect();
    if b.len() < body.len() {
        format!("{b}...")
    } else {
        b
    }
}
