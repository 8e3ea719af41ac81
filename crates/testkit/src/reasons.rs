//! Reasons as the health core gives them, for tests of the layers that show them (status, alerts).

use uplinkd::health::{OutageEvidence, Reason};

/// A clean outage of a WAN with two monitors; its sentence is [`LOST`].
pub fn lost() -> Reason {
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

/// The sentence of [`lost`].
pub const LOST: &str = "none of 2 targets answered in 3 consecutive rounds (6 silent); \
                        evidence 18.6 >= 18 against a usual bad-round rate of 0.2%";

/// Five good rounds, no RTT yet; its sentence is [`GOOD`].
pub fn good() -> Reason {
    Reason::GoodRounds {
        rounds: 5,
        srtt: Vec::new(),
    }
}

/// The sentence of [`good`].
pub const GOOD: &str = "5 consecutive good rounds";
