//! One monitor IP of a WAN: its probe schedule slot, sequence numbers, RTT estimator (RFC 6298)
//! and statistics window. The loss deadline is derived here; the decision is the link's.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::Params;
use super::window::Window;

/// RFC 6298 smoothed RTT and variation (alpha 1/8, beta 1/4), fed by every reply, late or not.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            // Saturating: a prober may report any RTT (a router's `/ping` row is text).
            Some(srtt) => {
                self.rttvar = self
                    .rttvar
                    .saturating_mul(3)
                    .saturating_add(srtt.abs_diff(rtt))
                    / 4;
                self.srtt = Some(srtt.saturating_mul(7).saturating_add(rtt) / 8);
            }
        }
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

/// Counters since start, for status and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub sent: u64,
    pub replies: u64,
    /// Judged lost at the deadline (silence), including those whose reply came late.
    pub lost: u64,
    /// Replies that came after the deadline (counted lost, used for the RTT).
    pub late: u64,
    pub icmp_errors: u64,
    pub send_failures: u64,
    /// Probes that told nothing about the WAN ([`super::ProbeResult::NoEvidence`]: a REST
    /// fault in remote mode), counted neither as replies nor as lost.
    pub no_evidence: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: Ipv4Addr,
    /// Offset of this target's slot within each round (targets are staggered).
    pub(crate) offset: Duration,
    /// The next round (slot) this target may be probed in.
    pub(crate) next_round: u64,
    pub(crate) next_seq: u16,
    /// When its last probe was sent.
    pub(crate) last_sent: Option<Instant>,
    pub(crate) rtt: RttEstimator,
    pub(crate) window: Window,
    pub(crate) last_reply: Option<Instant>,
    pub(crate) counters: Counters,
}

impl Target {
    pub(crate) fn new(addr: Ipv4Addr, offset: Duration, window: usize) -> Self {
        Self {
            addr,
            offset,
            next_round: 0,
            next_seq: 0,
            last_sent: None,
            rtt: RttEstimator::default(),
            window: Window::new(window),
            last_reply: None,
            counters: Counters::default(),
        }
    }

    /// How long after sending a probe is judged lost: srtt + 4*rttvar (RFC 6298), never below
    /// 1.25 × the slowest reply still in the window (a jittery satellite link must not see its
    /// normal slow replies as losses), clamped to [min_deadline, max_deadline]. Before the first
    /// reply: max_deadline.
    pub(crate) fn deadline(&self, params: &Params) -> Duration {
        let Some(srtt) = self.rtt.srtt() else {
            return params.max_deadline;
        };
        let rto = srtt.saturating_add(self.rtt.rttvar().saturating_mul(4));
        let slowest = self
            .window
            .max_rtt()
            .map_or(Duration::ZERO, |m| m.saturating_mul(5) / 4);
        rto.max(slowest)
            .clamp(params.min_deadline, params.max_deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::window::Sample;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn rfc6298_estimator() {
        let mut e = RttEstimator::default();
        e.sample(ms(100));
        assert_eq!((e.srtt(), e.rttvar()), (Some(ms(100)), ms(50)));
        e.sample(ms(200));
        // rttvar = 3/4*50 + 1/4*100 = 62.5; srtt = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
    }

    #[test]
    fn deadline_is_adaptive_and_clamped() {
        let p = Params::default();
        // (replies seen, expected deadline)
        let table: &[(&[u64], Duration)] = &[
            (&[], p.max_deadline),
            // 20 ms fibre: srtt+4*rttvar is tiny, the floor applies
            (&[20, 20, 21, 19, 20, 20, 20, 20, 20, 20], p.min_deadline),
            // satellite: at least 1.25 × the slowest reply in the window
            (
                &[700, 800, 600, 700, 700, 700, 700, 700, 700, 700],
                ms(1000),
            ),
            // far too slow: the ceiling
            (&[5000], p.max_deadline),
        ];
        for (replies, want) in table {
            let mut t = Target::new(Ipv4Addr::LOCALHOST, Duration::ZERO, 50);
            for r in *replies {
                t.rtt.sample(ms(*r));
                t.window.push(Sample::Reply(ms(*r)));
            }
            let got = t.deadline(&p);
            assert!(
                got >= *want && got <= p.max_deadline,
                "{replies:?}: {got:?} vs {want:?}"
            );
            if *want == p.min_deadline || *want == p.max_deadline {
                assert_eq!(got, *want, "{replies:?}");
            }
        }
    }
}
