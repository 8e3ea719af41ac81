//! Status: the model of what uplinkd knows right now ([`Snapshot`]: per WAN state, since, reason,
//! loss/RTT/jitter per target; last reconcile; pending alerts; REST request counts), rendered as
//! JSON, as Prometheus text ([`metrics`]), as the `uplinkd status` table ([`table`]) and, with
//! the graphs' [`history`], as the status page ([`page`]).
//!
//! The model and its renderings are pure: the app builds a `Snapshot` from its own state and the
//! wall clock, and hands it over. Only [`http`] does I/O (serving it); nothing here reads the
//! clock or holds a secret (no field can carry one).

pub mod history;
pub mod http;
pub mod metrics;
pub mod page;
pub mod service;
pub mod table;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::health::{LinkState, LinkStats, StateKind, Transition};
use crate::reconciler::Report;
use crate::types::LinkId;

/// Everything the status endpoint serves, as of `generated_unix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// uplinkd's version.
    pub version: String,
    /// The router's name (`/system/identity`), the `router` label of every metric; empty until
    /// it has been read (older daemons did not send it).
    #[serde(default)]
    pub router: String,
    /// Wall-clock time the snapshot was built, Unix seconds.
    pub generated_unix: u64,
    /// One entry per WAN, in configuration order.
    pub links: Vec<LinkStatus>,
    pub reconcile: Option<ReconcileStatus>,
    pub alerts: AlertsStatus,
    pub rest: RestStatus,
    /// Per traffic rule (`[[rule]]`), the WANs its policy may use now, as the router is told;
    /// empty: none, its last resort applies. Absent without rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleStatus>,
}

/// A traffic rule as the router is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStatus {
    pub rule: String,
    /// The WANs its switched lines are on for, in name order.
    pub wans: Vec<String>,
}

impl RuleStatus {
    /// Every rule of a reconcile request.
    pub fn of_request(request: &crate::reconcile::plan::Request) -> Vec<RuleStatus> {
        request
            .target
            .steer
            .iter()
            .map(|(rule, wans)| RuleStatus {
                rule: rule.clone(),
                wans: wans.iter().map(ToString::to_string).collect(),
            })
            .collect()
    }
}

/// A WAN's state as the health core sees it, with its probe statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub wan: String,
    pub label: String,
    pub state: StateKind,
    /// When the current state was entered (Unix seconds), if known.
    pub since_unix: Option<u64>,
    /// Why the last transition happened.
    pub reason: String,
    /// Aggregates over the targets (the health core's view of the link).
    pub loss_ratio: Option<f64>,
    pub rtt_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    pub targets: Vec<TargetStatus>,
    /// Transitions into `down` since start.
    pub failovers_total: u64,
    /// Whether the router is told to send new connections through it; `None` before the first
    /// decision reached the status (or from an older daemon).
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// Its backup tier (1: the WANs that normally carry).
    #[serde(default = "first_tier")]
    pub tier: u8,
}

fn first_tier() -> u8 {
    crate::types::Tier::FIRST.get()
}

/// What a WAN does with traffic, as the router is told (the reconcile request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    /// Takes new connections (its PCC rules and routes on).
    Carrying,
    /// A backup tier's WAN waiting: no new connections, its own go on.
    Backup,
    /// Switched off (failed, or a backup with `handback = "flush"`).
    Standby,
}

impl Traffic {
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Carrying => "carrying",
            Traffic::Backup => "backup",
            Traffic::Standby => "standby",
        }
    }

    /// Each WAN's traffic in a reconcile request, as the planner applies it (a request in which
    /// no WAN carries makes every WAN carry).
    pub fn of_request(request: &crate::reconcile::plan::Request) -> BTreeMap<LinkId, Traffic> {
        use crate::reconcile::plan::Want;
        request
            .target
            .effective()
            .into_iter()
            .map(|(id, want)| {
                let t = match want {
                    Want::Carry => Traffic::Carrying,
                    Want::Drain => Traffic::Backup,
                    Want::Standby => Traffic::Standby,
                };
                (id, t)
            })
            .collect()
    }
}

/// The `since` of a state, when the state carries one.
pub fn state_since(s: &LinkState) -> Option<Instant> {
    match *s {
        LinkState::Unknown | LinkState::Up => None,
        LinkState::Degraded { since }
        | LinkState::Down { since }
        | LinkState::Recovering { since } => Some(since),
    }
}

/// Probe statistics of one monitor target through one WAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub address: Ipv4Addr,
    pub loss_ratio: Option<f64>,
    pub rtt_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    /// Probes since start that told nothing about the WAN (remote mode's REST faults): not in
    /// `loss_ratio`.
    #[serde(default)]
    pub no_evidence: u64,
}

/// The last reconcile pass and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileStatus {
    /// When the last pass finished (Unix seconds).
    pub last_unix: u64,
    pub outcome: ReconcileOutcome,
    /// REST writes the last pass made.
    pub changes: u64,
    /// The error of the last pass, when it failed (typed error text; never holds a secret).
    pub error: Option<String>,
    pub runs_total: u64,
    pub errors_total: u64,
    /// When a pass last succeeded (Unix seconds).
    pub last_success_unix: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReconcileOutcome {
    Ok,
    Error,
}

/// REST requests to the router, by HTTP status (or `error` for transport failures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestStatus {
    pub requests_total: BTreeMap<String, u64>,
}

pub use crate::clock::unix;
pub use crate::notify::outbox::{AlertsStatus, PendingAlert};

/// Maps a monotonic instant to wall-clock Unix seconds, given one moment read on both clocks.
pub fn unix_of(at: Instant, now: Instant, now_wall: SystemTime) -> u64 {
    let wall = match now.checked_duration_since(at) {
        Some(ago) => now_wall.checked_sub(ago),
        None => now_wall.checked_add(at.saturating_duration_since(now)),
    };
    wall.map(unix).unwrap_or(0)
}

/// Seconds as f64, for the JSON and the metrics.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What the status keeps from the event stream: per WAN the last transition (since, reason) and
/// the failover count, and the last reconcile pass. Pure: fed with events and their wall time.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    links: BTreeMap<LinkId, History>,
    reconcile: Option<ReconcileStatus>,
    router: String,
}

#[derive(Debug, Clone, Default)]
struct History {
    since_unix: Option<u64>,
    reason: String,
    failovers: u64,
}

/// One WAN's live state as the health core reports it.
#[derive(Debug, Clone)]
pub struct LinkInput<'a> {
    pub id: &'a LinkId,
    pub label: &'a str,
    pub state: LinkState,
    pub stats: Option<&'a LinkStats>,
    pub traffic: Option<Traffic>,
    pub tier: u8,
}

impl Tracker {
    /// The router's identity, as read from `/system/identity`.
    pub fn handle_identity(&mut self, name: &str) {
        self.router = name.to_string();
    }

    /// Records an edge and the WAN's failover count after it (the engine's
    /// [`crate::engine::Outages`] counts them).
    pub fn handle_transition(&mut self, t: &Transition, wall: SystemTime, failovers: u64) {
        let h = self.links.entry(t.link.clone()).or_default();
        h.since_unix = Some(unix(wall));
        h.reason = crate::format::reason(&t.reason);
        h.failovers = failovers;
    }

    pub fn handle_report(&mut self, report: &Report, wall: SystemTime) {
        let prev = self.reconcile.take();
        let (runs, errors, last_ok) = prev.as_ref().map_or((0, 0, None), |r| {
            (r.runs_total, r.errors_total, r.last_success_unix)
        });
        let now = unix(wall);
        self.reconcile = match report {
            Report::Applied(p) => Some(ReconcileStatus {
                last_unix: now,
                outcome: ReconcileOutcome::Ok,
                changes: p.plan.ops.len() as u64,
                error: None,
                runs_total: runs + 1,
                errors_total: errors,
                last_success_unix: Some(now),
            }),
            Report::Failed { error, .. } => Some(ReconcileStatus {
                last_unix: now,
                outcome: ReconcileOutcome::Error,
                changes: 0,
                error: Some(error.to_string()),
                runs_total: runs + 1,
                errors_total: errors + 1,
                last_success_unix: last_ok,
            }),
            // A dropped router-log line is not a pass.
            Report::LogDropped { .. } => prev,
        };
    }

    /// The snapshot of everything, as of `now_wall`.
    pub fn build(
        &self,
        links: &[LinkInput<'_>],
        alerts: AlertsStatus,
        rest: BTreeMap<String, u64>,
        now_wall: SystemTime,
    ) -> Snapshot {
        self.build_with_rules(links, alerts, rest, Vec::new(), now_wall)
    }

    /// [`Tracker::build`] with the traffic rules' state.
    pub fn build_with_rules(
        &self,
        links: &[LinkInput<'_>],
        alerts: AlertsStatus,
        rest: BTreeMap<String, u64>,
        rules: Vec<RuleStatus>,
        now_wall: SystemTime,
    ) -> Snapshot {
        let secs_of = |v: Option<Duration>| v.map(secs);
        Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            router: self.router.clone(),
            generated_unix: unix(now_wall),
            links: links
                .iter()
                .map(|l| {
                    let h = self.links.get(l.id).cloned().unwrap_or_default();
                    LinkStatus {
                        wan: l.id.to_string(),
                        label: l.label.to_string(),
                        state: l.state.kind(),
                        since_unix: h.since_unix,
                        reason: h.reason,
                        loss_ratio: l.stats.and_then(|s| s.loss_ratio),
                        rtt_seconds: secs_of(l.stats.and_then(|s| s.rtt)),
                        jitter_seconds: secs_of(l.stats.and_then(|s| s.jitter)),
                        targets: l
                            .stats
                            .map(|s| {
                                s.targets
                                    .iter()
                                    .map(|t| TargetStatus {
                                        address: t.target,
                                        loss_ratio: t.loss_ratio,
                                        rtt_seconds: secs_of(t.rtt),
                                        jitter_seconds: secs_of(t.jitter),
                                        no_evidence: t.counters.no_evidence,
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        failovers_total: h.failovers,
                        traffic: l.traffic,
                        tier: l.tier,
                    }
                })
                .collect(),
            reconcile: self.reconcile.clone(),
            alerts,
            rest: RestStatus {
                requests_total: rest,
            },
            rules,
        }
    }
}

impl Snapshot {
    /// The snapshot as pretty JSON (what `/status` serves).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! A snapshot with every field filled, shared by the renderers' tests.
    use super::*;

    pub(crate) fn snapshot() -> Snapshot {
        Snapshot {
            version: "0.1.0".into(),
            router: "gw-office".into(),
            generated_unix: 1_764_095_000,
            links: vec![
                LinkStatus {
                    wan: "ISP1".into(),
                    label: "Primary-ISP".into(),
                    state: StateKind::Up,
                    since_unix: Some(1_764_095_000 - 3725),
                    reason: "2/2 targets answer".into(),
                    loss_ratio: Some(0.0),
                    rtt_seconds: Some(0.0123),
                    jitter_seconds: Some(0.0008),
                    targets: vec![
                        TargetStatus {
                            address: Ipv4Addr::new(198, 18, 0, 1),
                            loss_ratio: Some(0.0),
                            rtt_seconds: Some(0.012),
                            jitter_seconds: Some(0.0007),
                            no_evidence: 0,
                        },
                        TargetStatus {
                            address: Ipv4Addr::new(198, 18, 0, 2),
                            loss_ratio: Some(0.05),
                            rtt_seconds: Some(0.0126),
                            jitter_seconds: Some(0.0009),
                            no_evidence: 3,
                        },
                    ],
                    failovers_total: 1,
                    traffic: Some(Traffic::Carrying),
                    tier: 1,
                },
                LinkStatus {
                    wan: "ISP2".into(),
                    label: "Backup-ISP".into(),
                    state: StateKind::Down,
                    since_unix: Some(1_764_095_000 - 252),
                    reason: "all 2 targets lost".into(),
                    loss_ratio: Some(1.0),
                    rtt_seconds: None,
                    jitter_seconds: None,
                    targets: vec![TargetStatus {
                        address: Ipv4Addr::new(198, 18, 1, 1),
                        loss_ratio: Some(1.0),
                        rtt_seconds: None,
                        jitter_seconds: None,
                        no_evidence: 0,
                    }],
                    failovers_total: 3,
                    traffic: Some(Traffic::Standby),
                    tier: 2,
                },
            ],
            reconcile: Some(ReconcileStatus {
                last_unix: 1_764_094_990,
                outcome: ReconcileOutcome::Ok,
                changes: 4,
                error: None,
                runs_total: 17,
                errors_total: 2,
                last_success_unix: Some(1_764_094_990),
            }),
            alerts: AlertsStatus {
                pending: vec![PendingAlert {
                    subject: "[uplinkd] ISP2 DOWN - all 2 targets lost".into(),
                    severity: "warning".into(),
                    created_unix: 1_764_095_000 - 250,
                    attempts: 2,
                    next_attempt_unix: 1_764_095_030,
                    channels: vec!["email".into()],
                    last_error: Some("email: connection refused".into()),
                }],
                sent_total: 5,
                failed_attempts_total: 2,
                dropped_total: 0,
            },
            rest: RestStatus {
                requests_total: [("200".to_string(), 120), ("400".to_string(), 1)].into(),
            },
            rules: vec![
                RuleStatus {
                    rule: "guests".into(),
                    wans: vec![],
                },
                RuleStatus {
                    rule: "voip".into(),
                    wans: vec!["ISP1".into()],
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::reconcile::plan::{Request, Target, Want};

    #[test]
    fn traffic_is_what_the_router_is_told() {
        let l = |s: &str| LinkId::new(s);
        let req = |wants: &[(&str, Want)]| Request {
            target: Target::new(wants.iter().map(|(w, want)| (l(w), *want))),
            globals: BTreeMap::new(),
        };
        let t = Traffic::of_request(&req(&[
            ("fibre", Want::Carry),
            ("cable", Want::Standby),
            ("LTE", Want::Drain),
        ]));
        assert_eq!(t[&l("fibre")], Traffic::Carrying);
        assert_eq!(t[&l("cable")], Traffic::Standby);
        assert_eq!(t[&l("LTE")], Traffic::Backup);
        // No WAN carrying: the planner switches every WAN on, and so says the status.
        let all = Traffic::of_request(&req(&[("a", Want::Standby), ("b", Want::Drain)]));
        assert!(all.values().all(|t| *t == Traffic::Carrying));
        assert!(Traffic::of_request(&Request::default()).is_empty());
    }

    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn json_round_trips() {
        let s = sample::snapshot();
        let back: Snapshot = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(back, s);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["links"][1]["state"], "down");
        assert_eq!(v["links"][0]["targets"][1]["address"], "198.18.0.2");
        assert_eq!(v["reconcile"]["outcome"], "ok");
    }

    #[test]
    fn instants_map_to_wall_clock() {
        let now = crate::clock::mono();
        let wall = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(unix_of(now, now, wall), 1000);
        assert_eq!(unix_of(now - Duration::from_secs(10), now, wall), 990);
        assert_eq!(unix_of(now + Duration::from_secs(5), now, wall), 1005);
    }

    #[test]
    fn tracker_counts_failovers_and_reconcile_passes() {
        use crate::reconciler::{ApiError, FailureKind, Trigger};
        let t = crate::clock::mono();
        let wall = |s: u64| UNIX_EPOCH + Duration::from_secs(1000 + s);
        let isp1 = LinkId::new("ISP1");
        let tr = |from, to| Transition {
            link: isp1.clone(),
            at: t,
            from,
            to,
            reason: crate::health::examples::edge(from, to),
        };
        let down = LinkState::Down { since: t };
        let rec = LinkState::Recovering { since: t };
        let mut k = Tracker::default();
        let mut outages = crate::engine::Outages::default();
        k.handle_identity("gw-office");
        for (t, w) in [
            (tr(LinkState::Unknown, LinkState::Up), 0),
            (tr(LinkState::Up, down), 10),
            (tr(down, rec), 20),
            (tr(rec, down), 25),
        ] {
            outages.handle(&t);
            k.handle_transition(&t, wall(w), outages.failovers(&t.link));
        }
        k.handle_report(
            &Report::Failed {
                trigger: Trigger::Desired,
                error: ApiError {
                    kind: FailureKind::Timeout,
                    operation: "read /ip/route".into(),
                    message: "timed out".into(),
                },
                retry_in: Duration::from_secs(1),
                consecutive: 1,
            },
            wall(26),
        );
        let input = [LinkInput {
            id: &isp1,
            label: "Primary",
            state: down,
            stats: None,
            traffic: None,
            tier: 1,
        }];
        let s = k.build(
            &input,
            AlertsStatus::default(),
            [("200".to_string(), 3)].into(),
            wall(30),
        );
        let l = &s.links[0];
        assert_eq!(
            (l.state, l.since_unix, l.reason.as_str(), l.failovers_total),
            (
                StateKind::Down,
                Some(1025),
                crate::health::examples::OUTAGE,
                1
            )
        );
        let r = s.reconcile.as_ref().unwrap();
        assert_eq!(
            (r.outcome, r.runs_total, r.errors_total),
            (ReconcileOutcome::Error, 1, 1)
        );
        assert_eq!(r.error.as_deref(), Some("read /ip/route: timed out"));
        assert_eq!(s.generated_unix, 1030);
        assert_eq!(s.router, "gw-office");
        assert_eq!(s.rest.requests_total["200"], 3);
    }

    #[test]
    fn states_from_the_core() {
        let t = crate::clock::mono();
        assert_eq!(LinkState::Down { since: t }.kind(), StateKind::Down);
        assert!(StateKind::Degraded.is_up() && !StateKind::Recovering.is_up());
    }
}
