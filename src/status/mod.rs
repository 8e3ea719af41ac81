//! Status: the model of what uplinkd knows right now ([`Snapshot`]: per WAN state, since, reason,
//! loss/RTT/jitter per target; last reconcile; pending alerts; REST request counts), rendered as
//! JSON, as Prometheus text ([`metrics`]) and as the `uplinkd status` table ([`table`]).
//!
//! The model and its renderings are pure: the app builds a `Snapshot` from its own state and the
//! wall clock, and hands it over. Only [`http`] does I/O (serving it); nothing here reads the
//! clock or holds a secret (no field can carry one).

pub mod http;
pub mod metrics;
pub mod table;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::health::LinkState;

/// Default status address when the config gives none: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

/// Everything the status endpoint serves, as of `generated_unix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// uplinkd's version.
    pub version: String,
    /// Wall-clock time the snapshot was built, Unix seconds.
    pub generated_unix: u64,
    /// One entry per WAN, in configuration order.
    pub links: Vec<LinkStatus>,
    pub reconcile: Option<ReconcileStatus>,
    pub alerts: AlertsStatus,
    pub rest: RestStatus,
}

/// A WAN's state as the health core sees it, with its probe statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub wan: String,
    pub label: String,
    pub state: State,
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
}

/// A WAN state, as a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No verdict yet.
    Unknown,
    /// Carrying traffic.
    Up,
    /// Up, but out of balancing (brown-out).
    Degraded,
    /// Failed.
    Down,
    /// Answering again, held by the hold-down.
    Recovering,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Unknown,
        State::Up,
        State::Degraded,
        State::Down,
        State::Recovering,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Recovering => "recovering",
        }
    }

    /// Whether the link answers its probes well enough to carry traffic (up or degraded).
    pub fn is_up(self) -> bool {
        matches!(self, State::Up | State::Degraded)
    }
}

impl From<&LinkState> for State {
    fn from(s: &LinkState) -> Self {
        match s {
            LinkState::Unknown => State::Unknown,
            LinkState::Up => State::Up,
            LinkState::Degraded { .. } => State::Degraded,
            LinkState::Down { .. } => State::Down,
            LinkState::Recovering { .. } => State::Recovering,
        }
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

/// The alert queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsStatus {
    pub pending: Vec<PendingAlert>,
    pub sent_total: u64,
    pub failed_attempts_total: u64,
    /// Alerts dropped because the queue was full.
    pub dropped_total: u64,
}

/// An alert not yet delivered to every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAlert {
    pub subject: String,
    pub severity: String,
    pub created_unix: u64,
    pub attempts: u32,
    pub next_attempt_unix: u64,
    /// Channels still to deliver to (`email`, `webhook1:ntfy`, ...).
    pub channels: Vec<String>,
    pub last_error: Option<String>,
}

/// REST requests to the router, by HTTP status (or `error` for transport failures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestStatus {
    pub requests_total: BTreeMap<String, u64>,
}

/// Unix seconds of a wall-clock time (0 before the epoch, which a sane clock never is).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

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

    pub fn snapshot() -> Snapshot {
        Snapshot {
            version: "0.1.0".into(),
            generated_unix: 1_764_095_000,
            links: vec![
                LinkStatus {
                    wan: "ISP1".into(),
                    label: "Primary-ISP".into(),
                    state: State::Up,
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
                        },
                        TargetStatus {
                            address: Ipv4Addr::new(198, 18, 0, 2),
                            loss_ratio: Some(0.05),
                            rtt_seconds: Some(0.0126),
                            jitter_seconds: Some(0.0009),
                        },
                    ],
                    failovers_total: 1,
                },
                LinkStatus {
                    wan: "ISP2".into(),
                    label: "Backup-ISP".into(),
                    state: State::Down,
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
                    }],
                    failovers_total: 3,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(unix_of(now, now, wall), 1000);
        assert_eq!(unix_of(now - Duration::from_secs(10), now, wall), 990);
        assert_eq!(unix_of(now + Duration::from_secs(5), now, wall), 1005);
    }

    #[test]
    fn states_from_the_core() {
        let t = Instant::now();
        assert_eq!(State::from(&LinkState::Down { since: t }), State::Down);
        assert_eq!(state_since(&LinkState::Recovering { since: t }), Some(t));
        assert_eq!(state_since(&LinkState::Up), None);
        assert!(State::Degraded.is_up() && !State::Recovering.is_up());
    }
}
