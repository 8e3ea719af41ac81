//! The health core (sans-IO, time always an argument): per WAN, per-target probe windows, an
//! RTT-adaptive loss deadline, a quorum across targets, hysteresis, hold-down, flap damping,
//! brown-out thresholds and a start-up grace. It never touches a socket or reads the clock.
//!
//! SKELETON: the types are the contract; the engine is to be written here (issue 2, item 3).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::types::LinkId;

/// Effective thresholds of the health core. Defaults are the "default profile".
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Time between probe rounds to each target.
    pub interval: Duration,
    /// A round is good when at least this many targets answered (default 1: down only when all
    /// targets fail, as the seed does).
    pub quorum: usize,
    /// Consecutive bad rounds to go down.
    pub down_rounds: u32,
    /// Consecutive good rounds to come back (after the hold-down).
    pub up_rounds: u32,
    /// Minimum time down before coming back.
    pub hold_down: Duration,
    /// Loss-deadline clamp: a probe is lost when srtt + 4*rttvar passes, bounded by these.
    pub min_deadline: Duration,
    pub max_deadline: Duration,
}

/// A WAN's health. Every state is documented; `since` is when it was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not enough evidence yet (start-up grace).
    Unknown,
    /// Carrying traffic.
    Up,
    /// Up but worse than a brown-out threshold (loss/latency/jitter): taken out of balancing.
    Degraded { since: Instant },
    /// Failed.
    Down { since: Instant },
    /// Answering again, held until the evidence and the hold-down are satisfied.
    Recovering { since: Instant },
}

/// A probe to send, decided by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    pub target: Ipv4Addr,
    pub seq: u16,
}

/// What happened to a probe, reported by the prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Reply { rtt: Duration },
    /// An ICMP error came back (unreachable, TTL exceeded): evidence of failure, not silence.
    IcmpError,
    /// The send itself failed (no route, interface down).
    SendFailed,
    /// Nothing came back within the prober's own maximum wait (the core may have judged the
    /// probe lost earlier, at its adaptive deadline).
    NoReply,
}

/// Why a transition happened, for logs and alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason(pub String);

/// An edge of a link's state, emitted once per change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub link: LinkId,
    pub at: Instant,
    pub from: LinkState,
    pub to: LinkState,
    pub reason: Reason,
}
