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
    pub const ALL: [StateKind; 5] = [
        StateKind::Unknown,
        StateKind::Up,
        StateKind::Degraded,
        StateKind::Down,
        StateKind::Recovering,
    ];

    /// The lower-case word of status, metrics and scenario files (`up`, `recovering`).
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Unknown => "unknown",
            StateKind::Up => "up",
            StateKind::Degraded => "degraded",
            StateKind::Down => "down",
            StateKind::Recovering => "recovering",
        }
    }

    /// Whether the link answers its probes well enough to carry traffic (up or degraded).
    pub fn is_up(self) -> bool {
        matches!(self, StateKind::Up | StateKind::Degraded)
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// Why a transition happened: the cause and its numbers. The sentence is written at the edge
/// (the formatter's `reason`), never here.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Out of the start-up grace: the first run of good rounds.
    GoodRounds {
        rounds: u32,
        /// Each target's smoothed RTT, where it has one.
        srtt: Vec<(Ipv4Addr, Duration)>,
    },
    /// Down → Recovering: answering again; the hold-down starts.
    Answering {
        rounds: u32,
        down_for: Duration,
        hold_down: Duration,
    },
    /// Recovering → usable: the hold-down passed without a new outage.
    HoldDownPassed {
        hold_down: Duration,
        rounds: u32,
        srtt: Vec<(Ipv4Addr, Duration)>,
    },
    /// → Down: the outage test fired.
    Outage(OutageEvidence),
    /// Up → Degraded: at least one brown-out metric at or above its fail level (those listed).
    BrownOut { over: Vec<Check> },
    /// Degraded → Up: every enabled metric at or below its recover level (all listed).
    BrownOutOver { within: Vec<Check> },
    /// A usable edge (`usable`: start-up or the end of a hold-down) that enters Degraded at
    /// once, because these metrics fail.
    DegradedOnEntry {
        usable: Box<Reason>,
        over: Vec<Check>,
    },
}

/// The numbers behind a failover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageEvidence {
    pub targets: usize,
    pub quorum: usize,
    /// Consecutive bad rounds.
    pub rounds: u32,
    /// Lost probes of those rounds, by kind.
    pub silent: u32,
    pub icmp_errors: u32,
    pub send_failures: u32,
    /// The CUSUM when it fired, and the threshold (`down_evidence`).
    pub evidence: f64,
    pub threshold: f64,
    /// The usual share of bad rounds it was tested against (0..=1).
    pub baseline: f64,
}

/// One brown-out metric judged against its levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Window loss in percent, against levels in percent.
    Loss { percent: f64, levels: LossLevels },
    Latency {
        value: Duration,
        levels: DurationLevels,
    },
    Jitter {
        value: Duration,
        levels: DurationLevels,
    },
}

impl Check {
    /// At or above its fail level.
    pub fn failing(&self) -> bool {
        match *self {
            Check::Loss { percent, levels } => percent >= levels.fail,
            Check::Latency { value, levels } | Check::Jitter { value, levels } => {
                value >= levels.fail
            }
        }
    }

    /// At or below its recover level.
    pub fn recovered(&self) -> bool {
        match *self {
            Check::Loss { percent, levels } => percent <= levels.recover,
            Check::Latency { value, levels } | Check::Jitter { value, levels } => {
                value <= levels.recover
            }
        }
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

/// Reasons as the core gives them, for the tests of the layers that print them.
#[cfg(test)]
pub(crate) mod examples {
    use super::{OutageEvidence, Reason};

    /// A clean outage of a WAN with two monitors; its sentence is [`OUTAGE`].
    pub(crate) fn outage() -> Reason {
        Reason::Outage(OutageEvidence {
            targets: 2,
            quorum: 1,
            rounds: 3,
            silent: 6,
            icmp_errors: 0,
            send_failures: 0,
            evidence: 18.6,
            threshold: 18.0,
            baseline: 0.002,
        })
    }

    pub(crate) const OUTAGE: &str = "none of 2 targets answered in 3 consecutive rounds (6 silent); \
                                     evidence 18.6 >= 18 against a usual bad-round rate of 0.2%";

    /// Five good rounds, no RTT yet: `5 consecutive good rounds`.
    pub(crate) fn good_rounds() -> Reason {
        Reason::GoodRounds {
            rounds: 5,
            srtt: Vec::new(),
        }
    }

    /// The edge `from` → `to` of WAN `link` at `at`, with the reason the core gives for it.
    pub(crate) fn transition(
        link: &str,
        at: std::time::Instant,
        from: super::LinkState,
        to: super::LinkState,
    ) -> super::Transition {
        super::Transition {
            link: crate::types::LinkId::new(link),
            at,
            from,
            to,
            reason: edge(from, to),
        }
    }

    /// The reason the core gives for the edge `from` → `to`.
    pub(crate) fn edge(from: super::LinkState, to: super::LinkState) -> Reason {
        use super::{Check, LinkState as S, LossLevels};
        use std::time::Duration;
        let loss = |percent| Check::Loss {
            percent,
            levels: LossLevels {
                fail: 10.0,
                recover: 5.0,
            },
        };
        match (from, to) {
            (_, S::Down { .. }) => outage(),
            (_, S::Degraded { .. }) => Reason::BrownOut {
                over: vec![loss(20.0)],
            },
            (S::Degraded { .. }, S::Up) => Reason::BrownOutOver {
                within: vec![loss(2.0)],
            },
            (_, S::Recovering { .. }) => Reason::Answering {
                rounds: 5,
                down_for: Duration::from_secs(60),
                hold_down: Duration::from_secs(30),
            },
            (S::Recovering { .. }, S::Up) => Reason::HoldDownPassed {
                hold_down: Duration::from_secs(30),
                rounds: 150,
                srtt: Vec::new(),
            },
            _ => good_rounds(),
        }
    }
}
