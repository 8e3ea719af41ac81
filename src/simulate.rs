//! `uplinkd simulate FILE`: a fault scenario through the real health core and policy in virtual
//! time; prints the timeline and detection/recovery times. Pure apart from reading the file:
//! the clock is a variable, the network a seeded random model, so a run is reproducible.
//!
//! A scenario (TOML) names WANs with their monitors (RTT, jitter, baseline loss per target),
//! `[params]` overrides of the `[health]` table, a timeline of faults and, optionally, what
//! must happen (`[expect]`), which `uplinkd simulate` and the scenario tests check.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::config::health::HealthFile;
use crate::engine::{self, Engine};
use crate::format;
use crate::health::{self, ProbeResult, StateKind, Timing, duration_str};
use crate::policy::{self, Desired, Role, Tiering};
use crate::types::{Handback, LinkId, Promotion, Tier};

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing scenario {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("scenario {path}: {key}: expected {expected}")]
    Invalid {
        path: String,
        key: String,
        expected: String,
    },
    #[error("scenario {path}: expectations not met:\n{failures}")]
    Unmet { path: String, failures: String },
}

/// A scenario, parsed and checked: `params` is the resolved health profile it runs with.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// RNG seed (`fastrand::Rng::with_seed`): same seed, same run.
    pub seed: u64,
    /// Virtual time simulated.
    pub duration: Duration,
    /// The `[health]` profile (the default, or a configuration's) with the file's `[params]`
    /// over it, validated.
    pub params: health::Params,
    /// Print a probe summary line per WAN and second.
    pub per_second: bool,
    /// `promote_on` and `handback`, as in the configuration's `[balance]`.
    pub tiering: Tiering,
    pub wans: Vec<WanSpec>,
    /// `[[policy]]` tables, resolved as a configuration's.
    pub policies: Vec<crate::traffic::Policy>,
    pub faults: Vec<Fault>,
    pub expect: Option<Expect>,
}

/// A scenario file as written; [`Scenario::from_toml_over`] checks it into a [`Scenario`].
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(with = "duration_str")]
    duration: Duration,
    /// Overrides of the `[health]` table; unset keys keep the base profile.
    #[serde(default)]
    params: HealthFile,
    #[serde(default)]
    per_second: bool,
    #[serde(default)]
    promote_on: Promotion,
    #[serde(default)]
    handback: Handback,
    #[serde(rename = "wan")]
    wans: Vec<WanSpec>,
    /// Named policies, as `[[policy]]` in the configuration: the timeline shows which WANs
    /// each one's connections take.
    #[serde(default, rename = "policy")]
    policies: Vec<crate::config::file::PolicyFile>,
    #[serde(default, rename = "fault")]
    faults: Vec<FaultFile>,
    #[serde(default)]
    expect: Option<Expect>,
}

fn default_seed() -> u64 {
    1
}

fn default_tier() -> u8 {
    Tier::FIRST.get()
}

fn default_weight() -> u32 {
    1
}

fn default_priority() -> u32 {
    1
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanSpec {
    pub name: String,
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Backup tier, 1..=9 (default 1), as `[[wan]] tier` in the configuration.
    #[serde(default = "default_tier")]
    pub tier: u8,
    /// PCC weight (default 1), as `[[wan]] weight`: a balanced policy's default weights.
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(rename = "target")]
    pub targets: Vec<TargetSpec>,
}

/// A monitor as the network presents it: RTT uniform in `rtt ± jitter`, iid loss in percent.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub ip: Ipv4Addr,
    #[serde(with = "duration_str")]
    pub rtt: Duration,
    #[serde(default, with = "duration_str_opt")]
    pub jitter: Option<Duration>,
    #[serde(default)]
    pub loss: f64,
}

/// What goes wrong, on one WAN (all its targets, or one), from `from` until `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub wan: String,
    pub kind: FaultKind,
    pub from: Duration,
    pub to: Duration,
    /// Only this monitor (default: all of the WAN's).
    pub target: Option<Ipv4Addr>,
}

/// The kind of a fault, with what that kind needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// Silence: every probe (and reply in flight) is dropped.
    Outage,
    /// ICMP unreachable comes back after the usual RTT.
    Unreachable,
    /// The send fails at once (interface down, no route).
    SendFailed,
    /// Extra iid loss, in percent.
    Loss { loss: f64 },
    /// Added RTT and extra jitter (uniform ±).
    Delay {
        delay: Duration,
        jitter: Option<Duration>,
    },
    /// Alternating outage (`down`) and service (`up`), starting with the outage; both > 0.
    Flap { down: Duration, up: Duration },
}

impl FaultKind {
    /// The word the timeline uses for a kind without parameters.
    fn word(self) -> &'static str {
        match self {
            Self::Outage => "outage",
            Self::Unreachable => "unreachable",
            // The timeline has always written it as one word.
            Self::SendFailed => "sendfailed",
            Self::Loss { .. } => "loss",
            Self::Delay { .. } => "delay",
            Self::Flap { .. } => "flap",
        }
    }
}

/// A `[[fault]]` table as written: `kind` and the keys of every kind side by side (serde's
/// `flatten` cannot reject unknown keys); [`FaultFile::check`] keeps the ones the kind takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    wan: String,
    kind: KindName,
    #[serde(with = "duration_str")]
    from: Duration,
    #[serde(with = "duration_str")]
    to: Duration,
    #[serde(default)]
    target: Option<Ipv4Addr>,
    #[serde(default)]
    loss: Option<f64>,
    #[serde(default, with = "duration_str_opt")]
    delay: Option<Duration>,
    #[serde(default, with = "duration_str_opt")]
    jitter: Option<Duration>,
    #[serde(default, with = "duration_str_opt")]
    down: Option<Duration>,
    #[serde(default, with = "duration_str_opt")]
    up: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Outage,
    Unreachable,
    SendFailed,
    Loss,
    Delay,
    Flap,
}

impl FaultFile {
    /// The fault, or the first key that is missing or does not belong to its kind, with what
    /// was expected there.
    fn check(self) -> Result<Fault, (&'static str, String)> {
        let FaultFile {
            wan,
            kind,
            from,
            to,
            target,
            loss,
            delay,
            jitter,
            down,
            up,
        } = self;
        let flap = "flap needs down and up durations > 0".to_string();
        let kind = match kind {
            KindName::Outage => FaultKind::Outage,
            KindName::Unreachable => FaultKind::Unreachable,
            KindName::SendFailed => FaultKind::SendFailed,
            KindName::Loss => FaultKind::Loss {
                loss: loss.ok_or(("loss", "a loss fault's extra loss in percent".into()))?,
            },
            KindName::Delay => FaultKind::Delay {
                delay: delay.ok_or(("delay", "a delay fault's added RTT".into()))?,
                jitter,
            },
            KindName::Flap => FaultKind::Flap {
                down: down
                    .filter(|d| !d.is_zero())
                    .ok_or(("down", flap.clone()))?,
                up: up.filter(|d| !d.is_zero()).ok_or(("up", flap))?,
            },
        };
        // Keys of another kind would be silently ignored: a mistake worth naming.
        let taken: &[&str] = match kind {
            FaultKind::Loss { .. } => &["loss"],
            FaultKind::Delay { .. } => &["delay", "jitter"],
            FaultKind::Flap { .. } => &["down", "up"],
            _ => &[],
        };
        for (key, given) in [
            ("loss", loss.is_some()),
            ("delay", delay.is_some()),
            ("jitter", jitter.is_some()),
            ("down", down.is_some()),
            ("up", up.is_some()),
        ] {
            if given && !taken.contains(&key) {
                return Err((key, format!("no {key} for kind = \"{}\"", kind.word())));
            }
        }
        Ok(Fault {
            wan,
            kind,
            from,
            to,
            target,
        })
    }
}

/// What the run must show. Times are virtual.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exact sequence of transitions, each `"WAN state"` (`"ISP1 down"`).
    #[serde(default)]
    pub transitions: Option<Vec<String>>,
    /// At most this many transitions in total.
    #[serde(default)]
    pub max_transitions: Option<usize>,
    /// At most this many failovers (a WAN leaving Up/Degraded/Unknown for Down).
    #[serde(default)]
    pub max_failovers: Option<usize>,
    /// Each outage-like fault on all targets is detected within this time.
    #[serde(default, with = "duration_str_opt")]
    pub detect_within: Option<Duration>,
    /// After each such fault ends, the WAN is Up again within this time...
    #[serde(default, with = "duration_str_opt")]
    pub recover_within: Option<Duration>,
    /// ...and not before this time (the hold-down).
    #[serde(default, with = "duration_str_opt")]
    pub recover_not_before: Option<Duration>,
    /// The state of each named WAN at the end.
    #[serde(default, rename = "final")]
    pub final_states: BTreeMap<String, StateKind>,
    /// The policy never leaves no WAN active (checked always; listed for readability).
    #[serde(default)]
    pub policy_mode_all_down: Option<bool>,
    /// The exact sequence of [`Report::carriers`]: which WANs carried new connections, each
    /// time that changed (backup tiers: `["ISP1+ISP2", "ISP2", "LTE", "ISP1"]`).
    #[serde(default)]
    pub carriers: Option<Vec<String>>,
    /// Per named policy, the exact sequence of [`Report::policies`] (`voip = ["ISP2", "ISP1",
    /// "ISP2"]`).
    #[serde(default)]
    pub policies: BTreeMap<String, Vec<String>>,
}

/// Optional humantime durations.
mod duration_str_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected a duration such as \"500ms\", got {t:?} ({e})"
                ))
            })
        })
        .transpose()
    }
}

/// One transition as the run saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTransition {
    pub at: Duration,
    pub wan: LinkId,
    pub from: StateKind,
    pub to: StateKind,
    pub reason: String,
}

/// Detection or recovery time of one fault (`None`: did not happen within the run).
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub wan: String,
    pub fault: usize,
    pub time: Option<Duration>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The printed timeline.
    pub lines: Vec<String>,
    pub transitions: Vec<SimTransition>,
    pub detections: Vec<Measure>,
    pub recoveries: Vec<Measure>,
    /// Transitions into Down from Up, Degraded or Unknown.
    pub failovers: usize,
    pub final_states: BTreeMap<String, StateKind>,
    /// Whether the policy ever put every WAN in the all-down mode.
    pub saw_all_down: bool,
    /// Whether the policy ever left no WAN active (must never happen).
    pub saw_none_active: bool,
    /// Which WANs took new connections, each time that changed, from the start: the Active
    /// WANs in scenario order joined by `+` (`"ISP1+ISP2"`, then `"LTE"`, ...).
    pub carriers: Vec<String>,
    /// Per named policy, which WANs its connections take, each time that changed, from the
    /// start ([`policy_carriers`]).
    pub policies: BTreeMap<String, Vec<String>>,
    pub probes_sent: u64,
}

impl Scenario {
    pub fn from_toml(path: &str, text: &str) -> Result<Self, Error> {
        Self::from_toml_over(path, text, None)
    }

    /// [`Scenario::from_toml`] with `base` (a configuration's `[health]`) in place of the
    /// default profile: the scenario's `[params]` keys override it one by one.
    pub fn from_toml_over(
        path: &str,
        text: &str,
        base: Option<&health::Params>,
    ) -> Result<Self, Error> {
        let parse_err = |e: toml::de::Error| Error::Parse {
            path: path.into(),
            source: Box::new(e),
        };
        let table: toml::Table = text.parse().map_err(parse_err)?;
        let file: ScenarioFile = toml::Value::Table(table).try_into().map_err(parse_err)?;
        let invalid = |key: &str, expected: &str| Error::Invalid {
            path: path.into(),
            key: key.into(),
            expected: expected.into(),
        };
        let default = health::Params::default();
        let params = file
            .params
            .resolve_over(base.unwrap_or(&default))
            .map_err(|(key, expected)| invalid(&format!("params.{key}"), &expected))?;
        let mut s = Scenario {
            name: file.name,
            description: file.description,
            seed: file.seed,
            duration: file.duration,
            params,
            per_second: file.per_second,
            tiering: Tiering {
                promote_on: file.promote_on,
                handback: file.handback,
            },
            policies: Vec::new(),
            wans: file.wans,
            faults: Vec::with_capacity(file.faults.len()),
            expect: file.expect,
        };
        if s.wans.is_empty() {
            return Err(invalid("wan", "at least one [[wan]]"));
        }
        for (i, w) in s.wans.iter().enumerate() {
            if Tier::new(w.tier).is_none() {
                return Err(invalid(
                    &format!("wan[{}].tier", i + 1),
                    &format!("a tier from 1 to {}", Tier::MAX),
                ));
            }
            if w.targets.is_empty() {
                return Err(invalid(
                    &format!("wan[{}].target", i + 1),
                    "at least one [[wan.target]]",
                ));
            }
            if s.params.quorum > w.targets.len() {
                return Err(invalid(
                    "params.quorum",
                    "at most the number of targets of every WAN",
                ));
            }
        }
        let weights: Vec<(LinkId, u32)> = s
            .wans
            .iter()
            .map(|w| (LinkId::new(&w.name), w.weight))
            .collect();
        s.policies = crate::config::resolve_policies(file.policies, &weights)
            .map_err(|e| invalid(&e.key(), &e.to_string()))?;
        for (i, f) in file.faults.into_iter().enumerate() {
            let key = |k: &str| format!("fault[{}].{k}", i + 1);
            let Some(w) = s.wans.iter().find(|w| w.name == f.wan) else {
                return Err(invalid(&key("wan"), "the name of a [[wan]]"));
            };
            if f.to < f.from {
                return Err(invalid(&key("to"), "a time >= from"));
            }
            if let Some(t) = f.target
                && !w.targets.iter().any(|x| x.ip == t)
            {
                return Err(invalid(&key("target"), "one of the WAN's target IPs"));
            }
            let fault = f
                .check()
                .map_err(|(k, expected)| invalid(&key(k), &expected))?;
            s.faults.push(fault);
        }
        Ok(s)
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::load_over(path, None)
    }

    /// [`Scenario::load`] over a configuration's `[health]` (see [`Scenario::from_toml_over`]).
    pub fn load_over(path: &Path, base: Option<&health::Params>) -> Result<Self, Error> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_toml_over(&name, &text, base)
    }
}

/// How a fault takes a target out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// No answer at all (an outage, or a flap's down phase).
    Silence,
    Unreachable,
    SendFailed,
}

/// Whether a fault takes the whole WAN (or the given target) out during `from..to`, and how.
fn outage_kind(
    s: &Scenario,
    wan: &str,
    target: Ipv4Addr,
    from: Duration,
    to: Duration,
) -> Option<Cut> {
    s.faults
        .iter()
        .filter(|f| f.wan == wan && f.target.is_none_or(|t| t == target))
        .find_map(|f| {
            let overlaps = f.from < to && from < f.to;
            match f.kind {
                FaultKind::Outage => overlaps.then_some(Cut::Silence),
                FaultKind::Unreachable => overlaps.then_some(Cut::Unreachable),
                FaultKind::SendFailed => overlaps.then_some(Cut::SendFailed),
                FaultKind::Flap { down, up } => {
                    // Down phases [from + k*(down+up), + down).
                    let period = down + up;
                    let lo = from.max(f.from);
                    let hi = to.min(f.to);
                    let hit = lo < hi && {
                        let k = (lo - f.from).as_nanos() / period.as_nanos().max(1);
                        let phase_start = f.from + period * k as u32;
                        lo < phase_start + down || hi > phase_start + period
                    };
                    hit.then_some(Cut::Silence)
                }
                FaultKind::Loss { .. } | FaultKind::Delay { .. } => None,
            }
        })
}

/// Faults that take a whole WAN down (for detection/recovery times): (index, wan, from, to).
fn wan_outages(s: &Scenario) -> Vec<(usize, String, Duration, Duration)> {
    s.faults
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.target.is_none()
                && matches!(
                    f.kind,
                    FaultKind::Outage
                        | FaultKind::Unreachable
                        | FaultKind::SendFailed
                        | FaultKind::Flap { .. }
                )
        })
        .map(|(i, f)| {
            // A flap's first outage phase is what is detected; it "ends" when the flapping does.
            (i, f.wan.clone(), f.from, f.to)
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Duration,
    order: u64,
    wan: usize,
    target: Ipv4Addr,
    seq: u16,
    result: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Reply(Duration),
    IcmpError,
    SendFailed,
    NoReply,
}

fn fmt_at(d: Duration) -> String {
    format!("{:>9.3}s", d.as_secs_f64())
}

/// Runs a scenario. `echo` prints the timeline as it happens (besides collecting it).
pub fn run(s: &Scenario, echo: bool) -> Report {
    let mut sim = Sim::new(s, echo);
    sim.header();
    let start = sim.engine.desired().clone();
    sim.note_carriers(&start);
    let mut edges = fault_edges(s).into_iter().peekable();
    loop {
        // Everything due at `now`, in the daemon's order: results, timers, probes, events.
        while let Some((at, _)) = edges.peek()
            && *at <= sim.now
        {
            let (at, line) = edges.next().unwrap_or_default(); // invariant: peeked above
            sim.say(format!("{}  {line}", fmt_at(at)));
        }
        sim.deliver();
        sim.engine.handle_timeout(sim.t0 + sim.now);
        sim.send_probes();
        sim.events();
        sim.per_second();
        match sim.next_time(edges.peek().map(|(at, _)| *at)) {
            Some(at) if at <= s.duration => sim.now = at,
            _ => break,
        }
    }
    sim.finish()
}

/// A run in progress: the engine (the daemon's own), the network model and the virtual clock.
struct Sim<'a> {
    s: &'a Scenario,
    echo: bool,
    rng: fastrand::Rng,
    /// The instant virtual time 0 stands for.
    t0: std::time::Instant,
    now: Duration,
    engine: Engine,
    heap: BinaryHeap<Reverse<Delivery>>,
    order: u64,
    next_second: Duration,
    /// Probes sent and replies received per WAN in the current second (`per_second`).
    sec_counts: Vec<(u32, u32)>,
    report: Report,
}

impl<'a> Sim<'a> {
    fn new(s: &'a Scenario, echo: bool) -> Self {
        let t0 = crate::clock::mono();
        let wans: Vec<engine::WanSpec> = s
            .wans
            .iter()
            .map(|w| engine::WanSpec {
                id: LinkId::new(&w.name),
                monitors: w.targets.iter().map(|t| t.ip).collect(),
                priority: w.priority,
                tier: Tier::new(w.tier).unwrap_or(Tier::FIRST), // invariant: checked at parse
            })
            .collect();
        Self {
            s,
            echo,
            rng: fastrand::Rng::with_seed(s.seed),
            t0,
            now: Duration::ZERO,
            engine: Engine::new(&wans, &s.params, Timing::Arrival, t0)
                .with_tiering(s.tiering)
                .with_traffic(crate::traffic::Traffic {
                    policies: s.policies.clone(),
                    ..Default::default()
                }),
            heap: BinaryHeap::new(),
            order: 0,
            next_second: Duration::from_secs(1),
            sec_counts: vec![(0, 0); s.wans.len()],
            report: Report::default(),
        }
    }

    fn say(&mut self, line: String) {
        if self.echo {
            // A closed stdout (`simulate | head`) ends the echo, not the run.
            let _ = writeln!(std::io::stdout(), "{line}");
        }
        self.report.lines.push(line);
    }

    fn header(&mut self) {
        let s = self.s;
        self.say(format!(
            "scenario: {} (seed {}, {} of virtual time)",
            s.name,
            s.seed,
            humantime::format_duration(s.duration)
        ));
        if !s.description.is_empty() {
            for line in s.description.trim().lines() {
                self.say(format!("  {}", line.trim()));
            }
        }
        self.say(format!("health: {}", s.params));
        self.say("This is a simulation: no packets are sent, time is virtual.".into());
    }

    fn wan_index(&self, id: &LinkId) -> Option<usize> {
        self.s.wans.iter().position(|w| w.name == id.as_str())
    }

    /// Hands the engine every probe result due by now.
    fn deliver(&mut self) {
        while self.heap.peek().is_some_and(|Reverse(d)| d.at <= self.now) {
            let Some(Reverse(d)) = self.heap.pop() else {
                break;
            };
            let result = match d.result {
                Outcome::Reply(rtt) => {
                    self.sec_counts[d.wan].1 += 1;
                    ProbeResult::Reply { rtt }
                }
                Outcome::IcmpError => ProbeResult::IcmpError,
                Outcome::SendFailed => ProbeResult::SendFailed,
                Outcome::NoReply => ProbeResult::NoReply,
            };
            let id = LinkId::new(&self.s.wans[d.wan].name);
            self.engine
                .handle_result(self.t0 + self.now, &id, d.target, d.seq, result);
        }
    }

    /// Sends the probes the engine asks for through the network model.
    fn send_probes(&mut self) {
        let max_wait = self.engine.max_wait();
        while let Some((id, req)) = self.engine.poll_probe(self.t0 + self.now) {
            self.report.probes_sent += 1;
            let Some(w) = self.wan_index(&id) else {
                continue;
            };
            self.sec_counts[w].0 += 1;
            let spec = &self.s.wans[w];
            let Some(t) = spec.targets.iter().find(|t| t.ip == req.target) else {
                continue;
            };
            let (at, result) = network(self.s, &mut self.rng, &spec.name, t, self.now, max_wait);
            self.order += 1;
            self.heap.push(Reverse(Delivery {
                at,
                order: self.order,
                wan: w,
                target: req.target,
                seq: req.seq,
                result,
            }));
        }
    }

    /// Prints and records the engine's events: each edge as the daemon logs it, each new
    /// decision as a policy line.
    fn events(&mut self) {
        while let Some(ev) = self.engine.poll_event() {
            let tr = &ev.transition;
            let at = tr.at.saturating_duration_since(self.t0);
            let line = format::state_change(tr, ev.outage.lasted(), None)
                .line
                .message;
            self.say(format!("{}  {line}", fmt_at(at)));
            self.report.transitions.push(SimTransition {
                at,
                wan: tr.link.clone(),
                from: tr.from.kind(),
                to: tr.to.kind(),
                reason: format::reason(&tr.reason),
            });
            if let Some(d) = &ev.desired {
                self.note_carriers(d);
                let mut line = policy_line(d, &self.s.wans);
                for p in &self.s.policies {
                    let c = policy_carriers(p, d);
                    let note = if c == p.last_resort.as_str() {
                        " (last resort)"
                    } else {
                        ""
                    };
                    line.push_str(&format!("; {} → {c}{note}", p.name));
                }
                if d.active().count() == 0 {
                    self.report.saw_none_active = true;
                }
                if d.mode == policy::Mode::AllDown {
                    self.report.saw_all_down = true;
                }
                self.say(format!("{}  {line}", fmt_at(self.now)));
            }
        }
    }

    /// Books which WANs carry new connections, when that changed.
    fn note_carriers(&mut self, d: &Desired) {
        let active: Vec<&str> = self
            .s
            .wans
            .iter()
            .map(|w| w.name.as_str())
            .filter(|n| d.role(&LinkId::new(*n)) == Some(Role::Active))
            .collect();
        let now = active.join("+");
        if self.report.carriers.last() != Some(&now) {
            self.report.carriers.push(now);
        }
        for p in &self.s.policies {
            let now = policy_carriers(p, d);
            let seen = self.report.policies.entry(p.name.clone()).or_default();
            if seen.last() != Some(&now) {
                seen.push(now);
            }
        }
    }

    /// With `per_second`, a probe summary per WAN at each whole second.
    fn per_second(&mut self) {
        if !self.s.per_second || self.now < self.next_second {
            return;
        }
        let lines: Vec<String> = self
            .engine
            .links()
            .iter()
            .zip(&self.sec_counts)
            .map(|(link, (sent, replies))| {
                let st = link.stats();
                let rtt = st
                    .rtt
                    .map_or("-".into(), |r| format!("{:.0} ms", r.as_secs_f64() * 1000.0));
                let loss = st
                    .loss_ratio
                    .map_or("-".into(), |l| format!("{:.0}%", l * 100.0));
                format!(
                    "{}  {} {}: {sent} sent, {replies} replies; window loss {loss}, rtt {rtt}, evidence {:.1}/{}",
                    fmt_at(self.next_second),
                    st.link,
                    st.state,
                    st.evidence,
                    st.evidence_threshold
                )
            })
            .collect();
        for line in lines {
            self.say(line);
        }
        self.sec_counts.iter_mut().for_each(|c| *c = (0, 0));
        self.next_second += Duration::from_secs(1);
    }

    /// The next virtual time at which something can happen.
    fn next_time(&self, edge: Option<Duration>) -> Option<Duration> {
        let delivery = self.heap.peek().map(|Reverse(d)| d.at);
        let timer = self
            .engine
            .poll_timeout()
            .map(|at| at.saturating_duration_since(self.t0));
        let second = self.s.per_second.then_some(self.next_second);
        [delivery, timer, edge, second]
            .into_iter()
            .flatten()
            .filter(|at| *at > self.now)
            .min()
    }

    /// Final states, detection and recovery times, the summary.
    fn finish(mut self) -> Report {
        let finals: Vec<(String, StateKind)> = self
            .engine
            .links()
            .iter()
            .map(|l| (l.id().to_string(), l.state().kind()))
            .collect();
        self.report.final_states.extend(finals);
        self.report.failovers = self.engine.outages().total_failovers() as usize;
        let r = &mut self.report;
        for (i, wan, from, to) in wan_outages(self.s) {
            let down = r
                .transitions
                .iter()
                .find(|t| t.wan.as_str() == wan && t.to == StateKind::Down && t.at >= from)
                .map(|t| t.at - from);
            r.detections.push(Measure {
                wan: wan.clone(),
                fault: i + 1,
                time: down,
            });
            let up = r
                .transitions
                .iter()
                .find(|t| {
                    t.wan.as_str() == wan
                        && matches!(t.to, StateKind::Up | StateKind::Degraded)
                        && t.at >= to
                })
                .map(|t| t.at - to);
            if to < self.s.duration {
                r.recoveries.push(Measure {
                    wan,
                    fault: i + 1,
                    time: up,
                });
            }
        }
        for line in summary(&self.report) {
            self.say(line);
        }
        self.report
    }
}

/// `policy: ISP1 standby, ISP2 active; preferred ISP2`, the WANs in scenario order; with backup
/// tiers, which tier carries (`; tier 2 carries`).
fn policy_line(d: &Desired, wans: &[WanSpec]) -> String {
    let roles: Vec<String> = wans
        .iter()
        .filter_map(|w| {
            let role = match d.role(&LinkId::new(&w.name))? {
                Role::Active => "active",
                Role::Backup => "backup",
                Role::Standby => "standby",
            };
            Some(format!("{} {role}", w.name))
        })
        .collect();
    let preferred = d
        .preferred
        .as_ref()
        .map_or("none".to_string(), |p| p.to_string());
    let mode = match d.mode {
        policy::Mode::AllDown => " (every WAN down: all kept on)",
        policy::Mode::Normal => "",
    };
    let tiered = wans.iter().any(|w| w.tier != Tier::FIRST.get());
    let tier = match d.carrying {
        Some(t) if tiered => format!("; tier {t} carries"),
        _ => String::new(),
    };
    format!(
        "policy: {}; preferred {preferred}{tier}{mode}",
        roles.join(", ")
    )
}

/// Which WANs a named policy's new connections take under `d`: a balanced policy's usable WANs
/// joined by `+` (in the policy's order), the first usable WAN of a failover or `only` policy,
/// or its last resort when none is (`"any"`: the main table; `"drop"`).
pub fn policy_carriers(p: &crate::traffic::Policy, d: &Desired) -> String {
    use crate::traffic::PolicyKind;
    let usable = d.steering.get(&p.name);
    let mut wans = p.wans().filter(|w| usable.is_some_and(|u| u.contains(*w)));
    let out: Vec<String> = match p.kind {
        PolicyKind::Balanced => wans.map(ToString::to_string).collect(),
        PolicyKind::Failover | PolicyKind::Only => {
            wans.next().map(ToString::to_string).into_iter().collect()
        }
    };
    if out.is_empty() {
        p.last_resort.as_str().to_string()
    } else {
        out.join("+")
    }
}

/// The timeline lines of the faults' beginnings and ends, in time order.
fn fault_edges(s: &Scenario) -> Vec<(Duration, String)> {
    let mut edges: Vec<(Duration, String)> = Vec::new();
    for (i, f) in s.faults.iter().enumerate() {
        let scope = f
            .target
            .map_or_else(|| "all targets".to_string(), |t| t.to_string());
        let what = match f.kind {
            FaultKind::Loss { loss } => format!("{loss}% loss"),
            FaultKind::Delay { delay, jitter } => format!(
                "+{} delay ±{}",
                humantime::format_duration(delay),
                humantime::format_duration(jitter.unwrap_or_default())
            ),
            FaultKind::Flap { down, up } => format!(
                "flapping {} down / {} up",
                humantime::format_duration(down),
                humantime::format_duration(up)
            ),
            k @ (FaultKind::Outage | FaultKind::Unreachable | FaultKind::SendFailed) => {
                k.word().to_string()
            }
        };
        edges.push((
            f.from,
            format!("fault {}: {} {what} on {scope} begins", i + 1, f.wan),
        ));
        edges.push((
            f.to,
            format!("fault {}: {} {what} on {scope} ends", i + 1, f.wan),
        ));
    }
    edges.sort();
    edges
}

/// The network's answer to a probe sent at `now`: when the prober reports, and what.
fn network(
    s: &Scenario,
    rng: &mut fastrand::Rng,
    wan: &str,
    t: &TargetSpec,
    now: Duration,
    max_wait: Duration,
) -> (Duration, Outcome) {
    let mut rtt = t.rtt;
    let mut jitter = t.jitter.unwrap_or_default();
    let mut keep = 1.0 - t.loss / 100.0;
    for f in s
        .faults
        .iter()
        .filter(|f| f.wan == wan && f.target.is_none_or(|x| x == t.ip))
    {
        if now < f.from || now >= f.to {
            continue;
        }
        match f.kind {
            FaultKind::Loss { loss } => keep *= 1.0 - loss / 100.0,
            FaultKind::Delay {
                delay,
                jitter: extra,
            } => {
                rtt += delay;
                jitter += extra.unwrap_or_default();
            }
            FaultKind::Outage
            | FaultKind::Unreachable
            | FaultKind::SendFailed
            | FaultKind::Flap { .. } => {}
        }
    }
    // Uniform in rtt ± jitter.
    let spread = jitter.as_secs_f64() * (2.0 * rng.f64() - 1.0);
    let sample = Duration::from_secs_f64((rtt.as_secs_f64() + spread).max(0.000_1));
    let lost = rng.f64() >= keep;
    match outage_kind(s, wan, t.ip, now, now + sample) {
        Some(Cut::SendFailed) => (now, Outcome::SendFailed),
        Some(Cut::Unreachable) => (now + sample, Outcome::IcmpError),
        Some(Cut::Silence) => (now + max_wait, Outcome::NoReply),
        None if lost => (now + max_wait, Outcome::NoReply),
        None if sample > max_wait => (now + max_wait, Outcome::NoReply),
        None => (now + sample, Outcome::Reply(sample)),
    }
}

fn summary(r: &Report) -> Vec<String> {
    let mut out = vec![String::new(), "summary:".to_string()];
    let t = |m: &Measure| {
        m.time.map_or("not within the run".to_string(), |d| {
            format!("{:.3}s", d.as_secs_f64())
        })
    };
    for m in &r.detections {
        out.push(format!(
            "  fault {} on {}: detected (DOWN) after {}",
            m.fault,
            m.wan,
            t(m)
        ));
    }
    for m in &r.recoveries {
        out.push(format!(
            "  fault {} on {}: back UP {} after it ended",
            m.fault,
            m.wan,
            t(m)
        ));
    }
    out.push(format!(
        "  {} transitions, {} failovers, {} probes sent",
        r.transitions.len(),
        r.failovers,
        r.probes_sent
    ));
    let finals: Vec<String> = r
        .final_states
        .iter()
        .map(|(w, s)| format!("{w} {s}"))
        .collect();
    out.push(format!("  final: {}", finals.join(", ")));
    out
}

/// Checks a run against the scenario's `[expect]`; each failure is one line.
pub fn check(s: &Scenario, r: &Report) -> Result<(), Vec<String>> {
    let mut fail = Vec::new();
    if r.saw_none_active {
        fail.push("the policy left no WAN active".to_string());
    }
    let Some(e) = &s.expect else {
        return if fail.is_empty() { Ok(()) } else { Err(fail) };
    };
    if let Some(want) = &e.transitions {
        let got: Vec<String> = r
            .transitions
            .iter()
            .map(|t| format!("{} {}", t.wan, t.to))
            .collect();
        if &got != want {
            fail.push(format!("transitions: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(max) = e.max_transitions
        && r.transitions.len() > max
    {
        fail.push(format!("max_transitions: {} > {max}", r.transitions.len()));
    }
    if let Some(max) = e.max_failovers
        && r.failovers > max
    {
        fail.push(format!("max_failovers: {} > {max}", r.failovers));
    }
    if let Some(within) = e.detect_within {
        for m in &r.detections {
            match m.time {
                Some(d) if d <= within => {}
                other => fail.push(format!(
                    "detect_within {within:?}: fault {} on {}: {other:?}",
                    m.fault, m.wan
                )),
            }
        }
    }
    for m in &r.recoveries {
        if let Some(within) = e.recover_within
            && m.time.is_none_or(|d| d > within)
        {
            fail.push(format!(
                "recover_within {within:?}: fault {} on {}: {:?}",
                m.fault, m.wan, m.time
            ));
        }
        if let Some(not_before) = e.recover_not_before
            && m.time.is_some_and(|d| d < not_before)
        {
            fail.push(format!(
                "recover_not_before {not_before:?}: fault {} on {}: {:?}",
                m.fault, m.wan, m.time
            ));
        }
    }
    for (wan, want) in &e.final_states {
        let got = r.final_states.get(wan);
        if got != Some(want) {
            fail.push(format!(
                "final state of {wan}: expected {want}, got {got:?}"
            ));
        }
    }
    if let Some(want) = e.policy_mode_all_down
        && want != r.saw_all_down
    {
        fail.push(format!(
            "policy all-down mode: expected {want}, got {}",
            r.saw_all_down
        ));
    }
    if let Some(want) = &e.carriers
        && *want != r.carriers
    {
        fail.push(format!(
            "carriers: expected {}, got {}",
            want.join(" → "),
            r.carriers.join(" → ")
        ));
    }
    for (name, want) in &e.policies {
        let got = r.policies.get(name).cloned().unwrap_or_default();
        if *want != got {
            fail.push(format!(
                "policy {name}: expected {}, got {}",
                want.join(" → "),
                got.join(" → ")
            ));
        }
    }
    if fail.is_empty() { Ok(()) } else { Err(fail) }
}

/// `uplinkd simulate FILE`: runs, prints, and fails when the file's expectations are not met.
pub fn run_file(path: &Path, base: Option<&health::Params>) -> Result<(), Error> {
    let s = Scenario::load_over(path, base)?;
    let report = run(&s, true);
    match check(&s, &report) {
        Ok(()) => {
            if s.expect.is_some() {
                let _ = writeln!(std::io::stdout(), "  expectations: all met");
            }
            Ok(())
        }
        Err(fails) => {
            let mut failures = String::new();
            for f in &fails {
                let _ = writeln!(failures, "  {f}");
            }
            Err(Error::Unmet {
                path: path.display().to_string(),
                failures,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "t"
duration = "60s"
[[wan]]
name = "A"
target = [{ ip = "198.18.0.1", rtt = "20ms" }]
[[fault]]
wan = "A"
kind = "flap"
from = "10s"
to = "30s"
down = "1s"
up = "4s"
"#;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn flap_phases() {
        let sc = Scenario::from_toml("t", BASE).unwrap();
        let ip = Ipv4Addr::new(198, 18, 0, 1);
        // (probe sent, reply due) -> in an outage?
        let table: &[(u64, u64, bool)] = &[
            (9_000, 9_020, false),   // before the fault
            (9_990, 10_010, true),   // reply due inside the first down phase
            (10_500, 10_520, true),  // inside it
            (11_000, 11_020, false), // up phase
            (14_990, 15_010, true),  // reaches the second down phase
            (15_999, 16_019, true),
            (29_999, 30_019, false), // 25-30 s is an up phase; the fault ends at 30 s
            (30_500, 30_520, false), // after the fault
        ];
        for (from, to, want) in table {
            let got = outage_kind(&sc, "A", ip, s(*from), s(*to)).is_some();
            assert_eq!(got, *want, "{from}..{to}");
        }
    }

    #[test]
    fn faults_take_their_kind_s_keys_only() {
        let table: &[(&str, &str, &str)] = &[
            ("down = \"1s\"\n", "", "fault[1].down"),
            ("down = \"1s\"\n", "down = \"0s\"\n", "fault[1].down"),
            ("up = \"4s\"\n", "", "fault[1].up"),
            ("kind = \"flap\"", "kind = \"outage\"", "fault[1].down"),
            ("kind = \"flap\"", "kind = \"loss\"", "fault[1].loss"),
            ("kind = \"flap\"", "kind = \"delay\"", "fault[1].delay"),
            (
                "up = \"4s\"\n",
                "up = \"4s\"\nloss = 5.0\n",
                "fault[1].loss",
            ),
        ];
        for (from, to, key) in table {
            let text = BASE.replacen(from, to, 1);
            let err = Scenario::from_toml("t", &text).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { key: k, .. } if k == key),
                "{from} -> {to}: {err}"
            );
        }
        let err = Scenario::from_toml("t", &BASE.replacen("up = ", "upp = ", 1)).unwrap_err();
        assert!(
            matches!(&err, Error::Parse { .. }) && err.to_string().contains("upp"),
            "{err}"
        );
        let delay = BASE
            .replacen("kind = \"flap\"", "kind = \"delay\"", 1)
            .replacen("down = \"1s\"\nup = \"4s\"\n", "delay = \"300ms\"\n", 1);
        let sc = Scenario::from_toml("t", &delay).unwrap();
        assert_eq!(
            sc.faults[0].kind,
            FaultKind::Delay {
                delay: s(300),
                jitter: None
            }
        );
    }

    #[test]
    fn network_model_outcomes() {
        let mut sc = Scenario::from_toml("t", BASE).unwrap();
        sc.faults.clear();
        let mut rng = fastrand::Rng::with_seed(1);
        let t = TargetSpec {
            ip: Ipv4Addr::new(198, 18, 0, 1),
            rtt: s(20),
            jitter: None,
            loss: 100.0,
        };
        assert_eq!(
            network(&sc, &mut rng, "A", &t, s(0), s(3000)),
            (s(3000), Outcome::NoReply)
        );
        let t = TargetSpec { loss: 0.0, ..t };
        assert_eq!(
            network(&sc, &mut rng, "A", &t, s(0), s(3000)),
            (s(20), Outcome::Reply(s(20)))
        );
        let t = TargetSpec { rtt: s(5000), ..t };
        assert_eq!(
            network(&sc, &mut rng, "A", &t, s(0), s(3000)).1,
            Outcome::NoReply,
            "slower than the prober waits"
        );
    }

    #[test]
    fn check_reports_each_unmet_expectation() {
        let text = format!(
            "{BASE}\n[expect]\ntransitions = [\"A down\"]\nmax_failovers = 0\nfinal = {{ A = \"down\" }}\n"
        );
        let sc = Scenario::from_toml("t", &text).unwrap();
        let report = run(&sc, false);
        let fails = check(&sc, &report).unwrap_err();
        assert!(
            fails.iter().any(|f| f.starts_with("transitions:")),
            "{fails:?}"
        );
        assert!(
            fails.iter().any(|f| f.starts_with("max_failovers:")),
            "{fails:?}"
        );
        assert!(
            fails.iter().any(|f| f.starts_with("final state of A")),
            "{fails:?}"
        );
    }
}
