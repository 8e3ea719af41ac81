//! Probing: per-WAN, source- and device-bound ICMP echo (surge-ping + socket2), and the remote
//! mode in which the router pings and uplinkd reads the results. The health core decides what to
//! send and when; a [`Prober`] only performs one probe and reports what happened.
//!
//! - [`icmp`]: container mode, one device- and source-bound ICMP socket per WAN;
//! - [`netns`]: container networking (find the veths by address, per-WAN routes and rules);
//! - [`remote`]: remote mode, the router pings through each WAN over REST;
//! - [`oneshot`]: `uplinkd probe`, one path tried by hand.

use std::future::Future;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::health::{ProbeResult, Timing};
use crate::types::LinkId;

pub mod icmp;
pub mod netns;
pub mod oneshot;
pub mod remote;

/// Sends one echo to `target` through `link`'s path and waits at most `max_wait` for the answer.
/// Implementations: real ICMP (container mode), the router's `/ping` (remote mode), and a
/// scripted double (tests, `demo`).
pub trait Prober: Send + Sync + 'static {
    fn probe(
        &self,
        link: &LinkId,
        target: Ipv4Addr,
        seq: u16,
        max_wait: Duration,
    ) -> impl Future<Output = ProbeResult> + Send;

    /// How this prober's results are timed (the health core judges lateness accordingly).
    fn timing(&self) -> Timing {
        Timing::Arrival
    }
}

/// How many probes ended each way; the replies, ICMP errors, send failures and silence that the
/// health core tells apart, counted for a summary (`uplinkd probe`) or a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub replies: u32,
    pub icmp_errors: u32,
    pub send_failures: u32,
    pub no_reply: u32,
    /// Probes that told nothing about the path (remote mode's REST faults).
    pub no_evidence: u32,
}

impl Tally {
    pub fn count(&mut self, result: &ProbeResult) {
        match result {
            ProbeResult::Reply { .. } => self.replies += 1,
            ProbeResult::IcmpError => self.icmp_errors += 1,
            ProbeResult::SendFailed => self.send_failures += 1,
            ProbeResult::NoReply => self.no_reply += 1,
            ProbeResult::NoEvidence => self.no_evidence += 1,
        }
    }

    /// Every probe counted.
    pub fn total(&self) -> u32 {
        self.replies + self.icmp_errors + self.send_failures + self.no_reply + self.no_evidence
    }
}
