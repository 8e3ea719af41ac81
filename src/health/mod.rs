//! The health core (sans-IO, time always an argument): per WAN, per-target probe windows, an
//! RTT-adaptive loss deadline, a quorum across targets, a sequential (CUSUM) test against the
//! WAN's own measured loss to go down, consecutive good rounds and a damped hold-down to come
//! back, brown-out thresholds and a start-up grace. It never touches a socket or reads the
//! clock: the shell passes `now` into every call and sends the probes it is asked for.
//!
//! Life of a [`Link`]: the shell calls [`Link::poll_probe`] until it returns `None`, sends each
//! probe, feeds outcomes to [`Link::handle_result`], calls [`Link::handle_timeout`] at
//! [`Link::poll_timeout`], and drains [`Link::poll_transition`] after every call.

mod link;
mod params;
mod target;
mod window;

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::types::LinkId;

pub use link::{Link, LinkStats, TargetStats};
pub use params::{
    DurationLevels, LossLevels, MAX_PROBE_DURATION, MAX_STATE_DURATION, Params, duration_str,
};
pub use target::Counters;

/// A WAN's health. Every state is documented; `since` is when it was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not enough evidence yet (start-up grace): the WAN is used, since failing over without
    /// evidence is worse than waiting a second.
    Unknown,
    /// Answering within quorum and within every brown-out threshold: carries traffic.
    Up,
    /// Answering, but worse than a brown-out threshold (loss, latency or jitter): taken out of
    /// balancing unless no better WAN is left.
    Degraded { since: Instant },
    /// Failed: the outage test fired. Carries no traffic unless every WAN is down.
    Down { since: Instant },
    /// Answering again after `Down`, held until the damped hold-down has passed with good rounds;
    /// still carries no traffic.
    Recovering { since: Instant },
}

/// The name of a [`LinkState`] without its timestamps, for status, metrics and scenario files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    Unknown,
    Up,
    Degraded,
    Down,
    Recovering,
}

impl LinkState {
    pub fn kind(&self) -> StateKind {
        match self {
            LinkState::Unknown => StateKind::Unknown,
            LinkState::Up => StateKind::Up,
            LinkState::Degraded { .. } => StateKind::Degraded,
            LinkState::Down { .. } => StateKind::Down,
            LinkState::Recovering { .. } => StateKind::Recovering,
        }
    }

    /// When the state was entered (`None` for `Unknown` and `Up`, which carry no timestamp).
    pub fn since(&self) -> Option<Instant> {
        match *self {
            LinkState::Unknown | LinkState::Up => None,
            LinkState::Degraded { since }
            | LinkState::Down { since }
            | LinkState::Recovering { since } => Some(since),
        }
    }
}

impl StateKind {
    /// Upper-case word used in log lines (`[FAILOVER] ISP1 DOWN - ...`).
    pub fn word(self) -> &'static str {
        match self {
            StateKind::Unknown => "UNKNOWN",
            StateKind::Up => "UP",
            StateKind::Degraded => "DEGRADED",
            StateKind::Down => "DOWN",
            StateKind::Recovering => "RECOVERING",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Unknown => "unknown",
            StateKind::Up => "up",
            StateKind::Degraded => "degraded",
            StateKind::Down => "down",
            StateKind::Recovering => "recovering",
        })
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind().fmt(f)
    }
}

/// A probe to send, decided by the core. The shell should let the prober wait up to
/// [`Params::max_deadline`] (or [`Link::max_wait`]) so that late replies still update the RTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    pub target: Ipv4Addr,
    pub seq: u16,
}

/// What happened to a probe, reported by the prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Reply {
        rtt: Duration,
    },
    /// An ICMP error came back (unreachable, TTL exceeded): evidence of failure, not silence.
    IcmpError,
    /// The send itself failed (no route, interface down).
    SendFailed,
    /// Nothing came back within the prober's own maximum wait (the core may have judged the
    /// probe lost earlier, at its adaptive deadline).
    NoReply,
    /// The probe told nothing about the WAN: it could not be sent or its answer not read for a
    /// reason outside the path (remote mode: the router's REST API answered 5xx or 401, timed
    /// out, refused the connection, or the WAN's address could not be read). Neither loss nor
    /// success: the round has no evidence from this target, and a link that gets only this
    /// holds its state. Counted apart ([`Counters::no_evidence`]), so a REST fault is not
    /// shown as WAN loss.
    NoEvidence,
}

/// How a prober's results are timed, which decides what "late" means to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The result arrives when the probe ends (container mode: the echo leaves when the core
    /// asks and the reply is read as it comes): a reply is late when it arrives after the
    /// probe's deadline, and a probe still unanswered at its deadline is judged lost.
    Arrival,
    /// The prober reports the probe's own round trip, measured where it was sent (remote mode:
    /// the router's `/ping` rows), and its result may arrive much later than the echo ended
    /// (queued behind other calls on the one REST session). A reply is judged by its reported
    /// RTT against its deadline, never by when it arrives; an outstanding probe is never judged
    /// lost, and after `max_pending` without a result it counts as [`ProbeResult::NoEvidence`].
    /// While a target's probe is outstanding the target is not probed again, so a slow session
    /// never builds a queue of probes; its rounds then follow in order rather than by the clock
    /// (each round still holds one probe of every target), and a late target goes on at one
    /// probe per interval instead of catching up in a burst.
    Reported { max_pending: Duration },
}

/// Why a transition happened, for logs and alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason(pub String);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An edge of a link's state, emitted once per change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub link: LinkId,
    pub at: Instant,
    pub from: LinkState,
    pub to: LinkState,
    pub reason: Reason,
}

impl Transition {
    /// The one log line for this edge, in the seed's format that users already filter on:
    /// `[FAILOVER] ISP1 DOWN - no reply from 2/2 targets ...`.
    pub fn log_line(&self) -> String {
        format!(
            "[FAILOVER] {} {} - {}",
            self.link,
            self.to.kind().word(),
            self.reason
        )
    }
}
