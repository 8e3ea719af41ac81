//! One WAN's health state machine ([`Link`]): schedules probes to its targets in staggered
//! rounds, judges each probe at its RTT-adaptive deadline, turns rounds into good/bad verdicts
//! by quorum, and moves between [`LinkState`]s on evidence. Sans-IO: no socket, no clock.
//!
//! Going down is a sequential test (CUSUM of log-likelihood ratios) of "outage" against the
//! WAN's own measured rate of bad rounds: a clean link fails over after about 3 bad rounds, a
//! link that normally loses 4 % of its rounds needs about 6, so neither a clean link waits for
//! a fixed count sized for a bad one, nor does a lossy link fail over on noise. Bad rounds are
//! added to that baseline only once a good round has ended their run, so an outage in
//! progress never raises the baseline it is measured against.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::target::{Counters, Target};
use super::window::Sample;
use super::{
    Check, LinkState, OutageEvidence, Params, ProbeRequest, ProbeResult, Reason, StateKind, Timing,
    Transition,
};
use crate::types::LinkId;

/// Probability that a round is bad during an outage (the alternative hypothesis). Slightly
/// below 1 so that one good round cancels most, not all, of the evidence.
const P_OUTAGE: f64 = 0.98;
/// Prior for the share of bad rounds on a link we know nothing about yet, and its weight in
/// rounds: conservative, so the first minutes need about 5 bad rounds rather than 3.
const PRIOR_BAD_ROUNDS: f64 = 0.02;
const PRIOR_WEIGHT: f64 = 50.0;
/// The baseline is an average over about this many recent committed rounds (10 min at 200 ms).
const BASELINE_ROUNDS: f64 = 3000.0;
/// Baseline bounds: below the floor a clean link would fail over on 2 lost rounds; above the
/// ceiling the link is not usable anyway, and the test still needs ~30 bad rounds.
const BASELINE_FLOOR: f64 = 0.002;
const BASELINE_CEIL: f64 = 0.5;
/// Upper bound of [`Timing::Reported`]'s `max_pending`: however slow the prober's own bound,
/// a target is probed again after this long without an answer.
const MAX_PENDING: Duration = Duration::from_secs(600);
/// Upper bound of the flap-damping penalty, in hold-downs.
const MAX_PENALTY: f64 = 1e6;

/// How one probe ended, for a round's slot and for reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    NotSent,
    Pending,
    Answered,
    Silent,
    IcmpError,
    SendFailed,
    /// The prober had no evidence ([`ProbeResult::NoEvidence`]): neither answered nor lost.
    NoEvidence,
}

impl Slot {
    fn is_lost(self) -> bool {
        matches!(self, Slot::Silent | Slot::IcmpError | Slot::SendFailed)
    }
}

#[derive(Debug, Clone)]
struct Round {
    slots: Vec<Slot>,
}

/// Whether a failure counts for flap damping: a WAN found dead at start-up has not flapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flap {
    Counted,
    NotCounted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Good,
    Bad,
}

/// A probe in flight (or judged lost but still accepting a late reply for the RTT).
#[derive(Debug, Clone, Copy)]
struct InFlight {
    target: usize,
    seq: u16,
    round: u64,
    sent: Instant,
    /// The RTT budget fixed at sending: answered within it, the probe is good.
    budget: Duration,
    judged: bool,
}

impl InFlight {
    /// When the core judges the probe without a result: at its deadline when results are timed
    /// by arrival; after `max_pending` when the prober reports its own timing (then as no
    /// evidence, see [`Timing::Reported`]).
    fn judge_at(&self, timing: Timing) -> Instant {
        match timing {
            Timing::Arrival => self.sent + self.budget,
            Timing::Reported { max_pending } => self.sent + max_pending.max(self.budget),
        }
    }
}

/// The outage test and its inputs.
#[derive(Debug, Clone)]
struct Evidence {
    /// CUSUM of log-likelihood ratios, never below 0.
    cusum: f64,
    bad_streak: u32,
    good_streak: u32,
    /// Bad rounds of the current run, not yet added to the baseline.
    uncommitted_bad: u32,
    /// Share of bad rounds in normal operation, and the weight behind it.
    baseline: f64,
    baseline_weight: f64,
    /// Lost probes of the current bad run by kind: (silent, icmp errors, send failures).
    causes: (u32, u32, u32),
}

impl Evidence {
    fn new() -> Self {
        Self {
            cusum: 0.0,
            bad_streak: 0,
            good_streak: 0,
            uncommitted_bad: 0,
            baseline: PRIOR_BAD_ROUNDS,
            baseline_weight: PRIOR_WEIGHT,
            causes: (0, 0, 0),
        }
    }

    fn p0(&self) -> f64 {
        self.baseline.clamp(BASELINE_FLOOR, BASELINE_CEIL)
    }

    fn commit(&mut self, bad: bool) {
        self.baseline_weight = (self.baseline_weight + 1.0).min(BASELINE_ROUNDS);
        let x = if bad { 1.0 } else { 0.0 };
        self.baseline += (x - self.baseline) / self.baseline_weight;
    }
}

/// Per-target statistics, for status and metrics (which choose their own units).
#[derive(Debug, Clone)]
pub struct TargetStats {
    pub target: Ipv4Addr,
    /// Lost share of the window (0..1), `None` before the first judged probe.
    pub loss_ratio: Option<f64>,
    /// Mean RTT of the replies in the window.
    pub rtt: Option<Duration>,
    /// RFC 6298 smoothed RTT and its variation.
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    pub jitter: Option<Duration>,
    /// The loss deadline a probe sent now would get.
    pub deadline: Duration,
    /// Time since the last in-time reply, as of the last call into the link.
    pub last_reply_age: Option<Duration>,
    pub window_len: usize,
    pub counters: Counters,
}

/// A link's statistics: per target, and the aggregate the brown-out thresholds judge (for each
/// metric the quorum-th best target, so one dead monitor does not degrade a working WAN).
#[derive(Debug, Clone)]
pub struct LinkStats {
    pub link: LinkId,
    pub state: StateKind,
    pub loss_ratio: Option<f64>,
    pub rtt: Option<Duration>,
    pub jitter: Option<Duration>,
    /// Probes, summed over the targets, that told nothing about the WAN (REST faults in remote
    /// mode): not part of `loss_ratio`.
    pub no_evidence: u64,
    /// Outage evidence accumulated now, and the level at which the WAN goes down.
    pub evidence: f64,
    pub evidence_threshold: f64,
    /// Measured share of bad rounds in normal operation (what the evidence is judged against).
    pub baseline_round_loss: f64,
    pub good_streak: u32,
    pub bad_streak: u32,
    /// The failback hold-down in force (damped by recent flaps).
    pub hold_down: Duration,
    /// Flap-damping penalty, in hold-downs.
    pub flap_penalty: f64,
    pub targets: Vec<TargetStats>,
}

/// The health state machine of one WAN. See the module documentation.
#[derive(Debug, Clone)]
pub struct Link {
    id: LinkId,
    params: Params,
    timing: Timing,
    quorum: usize,
    start: Instant,
    now: Instant,
    targets: Vec<Target>,
    in_flight: Vec<InFlight>,
    rounds: BTreeMap<u64, Round>,
    /// Rounds below this index are decided (a round can be decided before all its probes are
    /// sent: quorum already answered). Later probes of such a round only feed statistics.
    decided_below: u64,
    state: LinkState,
    transitions: VecDeque<Transition>,
    evidence: Evidence,
    /// Flap-damping penalty (in hold-downs) as of `penalty_at`.
    penalty: f64,
    penalty_at: Instant,
    /// Hold-down fixed when the current failure began.
    hold: Duration,
}

impl Link {
    /// A link in state `Unknown`, whose first probes are due at `now`. An empty target list
    /// makes a link that never probes and stays `Unknown` (config validation prevents it).
    pub fn new(id: LinkId, targets: Vec<Ipv4Addr>, params: &Params, now: Instant) -> Self {
        let n = targets.len().max(1) as u32;
        let window = params.window as usize;
        let targets: Vec<Target> = targets
            .into_iter()
            .enumerate()
            .map(|(i, addr)| Target::new(addr, params.interval * i as u32 / n, window))
            .collect();
        let quorum = params.quorum.clamp(1, targets.len().max(1));
        Self {
            id,
            params: params.clone(),
            timing: Timing::Arrival,
            quorum,
            start: now,
            now,
            targets,
            in_flight: Vec::new(),
            rounds: BTreeMap::new(),
            decided_below: 0,
            state: LinkState::Unknown,
            transitions: VecDeque::new(),
            evidence: Evidence::new(),
            penalty: 0.0,
            penalty_at: now,
            hold: params.hold_down,
        }
    }

    /// The same link, judging its prober's results by `timing` (the default is
    /// [`Timing::Arrival`]). A `max_pending` above 10 minutes is taken as 10 minutes.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = match timing {
            Timing::Arrival => Timing::Arrival,
            Timing::Reported { max_pending } => Timing::Reported {
                max_pending: max_pending.min(MAX_PENDING),
            },
        };
        self
    }

    pub fn id(&self) -> &LinkId {
        &self.id
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// How long the prober should wait for a reply: late replies still refine the RTT.
    pub fn max_wait(&self) -> Duration {
        self.params.max_deadline
    }

    fn slot_time(&self, target: usize, round: u64) -> Instant {
        let t = &self.targets[target];
        self.start
            + t.offset
            + self
                .params
                .interval
                .saturating_mul(round.min(u32::MAX as u64) as u32)
    }

    /// When target `i`'s next probe is due. By arrival: at its slot. Reported: at its slot,
    /// but never sooner than an interval after its previous probe (see [`Link::poll_probe`]).
    fn due_at(&self, i: usize) -> Instant {
        let slot = self.slot_time(i, self.targets[i].next_round);
        match (self.timing, self.targets[i].last_sent) {
            (Timing::Reported { .. }, Some(last)) => slot.max(last + self.params.interval),
            _ => slot,
        }
    }

    /// The next probe to send now, if one is due. Call until `None`.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeRequest> {
        self.now = self.now.max(now);
        let (i, _) = (0..self.targets.len())
            .filter(|i| !self.outstanding(*i))
            .map(|i| (i, self.due_at(i)))
            .filter(|(_, at)| *at <= now)
            .min_by_key(|(_, at)| *at)?;
        let round = match self.timing {
            // Probe the slot that is current now: after a stall, skipped slots stay unsent
            // rather than being sent in a burst (their rounds are judged on what was sent).
            Timing::Arrival => {
                let elapsed = now.saturating_duration_since(self.start + self.targets[i].offset);
                let current = (elapsed.as_nanos() / self.params.interval.as_nanos().max(1)) as u64;
                current.max(self.targets[i].next_round)
            }
            // The next round in order, however late: a target held back by an outstanding probe
            // must still meet the other targets' probes in the same rounds, or no round would
            // ever hold a probe of each and a dead WAN on a busy session would never be judged.
            // Rounds then count probes rather than time slices; `due_at` keeps a late target
            // from catching up in a burst.
            Timing::Reported { .. } => self.targets[i].next_round,
        };
        let budget = self.targets[i].deadline(&self.params);
        let n = self.targets.len();
        let target = &mut self.targets[i];
        target.next_round = round + 1;
        target.last_sent = Some(now);
        let seq = target.next_seq;
        target.next_seq = seq.wrapping_add(1);
        target.counters.sent += 1;
        let addr = target.addr;
        if round >= self.decided_below {
            self.rounds
                .entry(round)
                .or_insert_with(|| Round {
                    slots: vec![Slot::NotSent; n],
                })
                .slots[i] = Slot::Pending;
        }
        self.in_flight.push(InFlight {
            target: i,
            seq,
            round,
            sent: now,
            budget,
            judged: false,
        });
        Some(ProbeRequest { target: addr, seq })
    }

    /// Whether target `i` waits for the result of a probe the core has not judged, which holds
    /// its next probe back when results are [`Timing::Reported`].
    fn outstanding(&self, i: usize) -> bool {
        matches!(self.timing, Timing::Reported { .. })
            && self.in_flight.iter().any(|f| f.target == i && !f.judged)
    }

    /// Feeds the outcome of probe `seq` to `target`. Unknown or forgotten probes are ignored.
    pub fn handle_result(&mut self, now: Instant, target: Ipv4Addr, seq: u16, result: ProbeResult) {
        self.now = self.now.max(now);
        let Some(pos) = self
            .in_flight
            .iter()
            .position(|f| f.seq == seq && self.targets[f.target].addr == target)
        else {
            return;
        };
        let f = self.in_flight.swap_remove(pos);
        let t = &mut self.targets[f.target];
        let slot = match result {
            ProbeResult::Reply { rtt } => {
                t.rtt.sample(rtt);
                let late = match self.timing {
                    // Judged means its deadline passed: whatever comes now is late.
                    Timing::Arrival => f.judged || now > f.sent + f.budget,
                    Timing::Reported { .. } => rtt > f.budget,
                };
                if late {
                    t.counters.late += 1;
                    if !f.judged {
                        t.counters.lost += 1;
                    }
                    Slot::Silent
                } else if f.judged {
                    // In time by the prober's clock, but after the core gave up waiting (it
                    // counted no evidence): feeds the RTT only.
                    Slot::Answered
                } else {
                    t.counters.replies += 1;
                    t.last_reply = Some(now);
                    Slot::Answered
                }
            }
            ProbeResult::IcmpError => {
                t.counters.icmp_errors += 1;
                Slot::IcmpError
            }
            ProbeResult::SendFailed => {
                t.counters.send_failures += 1;
                Slot::SendFailed
            }
            ProbeResult::NoReply => {
                if !f.judged {
                    t.counters.lost += 1;
                }
                Slot::Silent
            }
            ProbeResult::NoEvidence => {
                if !f.judged {
                    t.counters.no_evidence += 1;
                }
                Slot::NoEvidence
            }
        };
        if matches!(result, ProbeResult::Reply { .. })
            && slot == Slot::Silent
            && !matches!(self.state, LinkState::Down { .. })
        {
            // A late reply stays a loss (window, round verdict), but it proves the path alive:
            // the outage evidence gathered so far was slowness, not silence. Start over, so a
            // sudden jump in latency degrades the WAN (brown-out) instead of failing it, while
            // a WAN that really dies after getting slow is still caught a few rounds later.
            self.evidence.cusum = 0.0;
            self.evidence.bad_streak = 0;
        }
        if !f.judged {
            let rtt = match result {
                ProbeResult::Reply { rtt } => Some(rtt),
                _ => None,
            };
            self.record(f, slot, rtt);
        }
        self.advance(now);
    }

    /// Judges probes whose deadline passed and applies time-based rules (grace, hold-down).
    /// Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let timing = self.timing;
        let mut due: Vec<InFlight> = Vec::new();
        for f in self
            .in_flight
            .iter_mut()
            .filter(|f| !f.judged && f.judge_at(timing) <= now)
        {
            f.judged = true;
            due.push(*f);
        }
        due.sort_by_key(|f| f.judge_at(timing));
        for f in due {
            let counters = &mut self.targets[f.target].counters;
            let slot = match timing {
                // Silent past its deadline: lost.
                Timing::Arrival => {
                    counters.lost += 1;
                    Slot::Silent
                }
                // The prober never came back: that says nothing about the WAN.
                Timing::Reported { .. } => {
                    counters.no_evidence += 1;
                    Slot::NoEvidence
                }
            };
            self.record(f, slot, None);
        }
        // Forget judged probes once no late reply can matter any more.
        let keep = self.params.max_deadline + self.params.interval;
        self.in_flight
            .retain(|f| !f.judged || now < f.judge_at(timing) + keep);
        self.advance(now);
    }

    /// When [`Link::handle_timeout`] (or [`Link::poll_probe`]) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A target waiting for an outstanding probe is woken by its result, not by its slot.
        let next_probe = (0..self.targets.len())
            .filter(|i| !self.outstanding(*i))
            .map(|i| self.due_at(i));
        let deadlines = self
            .in_flight
            .iter()
            .filter(|f| !f.judged)
            .map(|f| f.judge_at(self.timing));
        // Only timers still ahead: a rule that waits for rounds rather than time (a recovering
        // link past its hold-down but short of good rounds) is driven by probe deadlines.
        let state_timer = match self.state {
            LinkState::Unknown if self.evidence.cusum >= self.params.down_evidence => {
                Some(self.start + self.params.startup_grace)
            }
            LinkState::Recovering { since } => Some(since + self.hold),
            _ => None,
        }
        .filter(|at| *at > self.now);
        next_probe.chain(deadlines).chain(state_timer).min()
    }

    /// The next state change, oldest first.
    pub fn poll_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    /// Statistics as of the last call into the link.
    pub fn stats(&self) -> LinkStats {
        let targets: Vec<TargetStats> = self
            .targets
            .iter()
            .map(|t| TargetStats {
                target: t.addr,
                loss_ratio: t.window.loss_ratio(),
                rtt: t.window.mean_rtt(),
                srtt: t.rtt.srtt(),
                rttvar: t.rtt.srtt().map(|_| t.rtt.rttvar()),
                jitter: t.window.jitter(),
                deadline: t.deadline(&self.params),
                last_reply_age: t
                    .last_reply
                    .map(|at| self.now.saturating_duration_since(at)),
                window_len: t.window.len(),
                counters: t.counters,
            })
            .collect();
        let q = self.quorum;
        LinkStats {
            link: self.id.clone(),
            state: self.state.kind(),
            loss_ratio: quorum_best(targets.iter().map(|t| t.loss_ratio), q),
            rtt: quorum_best_duration(targets.iter().map(|t| t.rtt), q),
            jitter: quorum_best_duration(targets.iter().map(|t| t.jitter), q),
            no_evidence: targets.iter().map(|t| t.counters.no_evidence).sum(),
            evidence: self.evidence.cusum,
            evidence_threshold: self.params.down_evidence,
            baseline_round_loss: self.evidence.p0(),
            good_streak: self.evidence.good_streak,
            bad_streak: self.evidence.bad_streak,
            hold_down: self.hold,
            flap_penalty: self.decayed_penalty(self.now),
            targets,
        }
    }

    /// Records a judged probe in its target's window and its round.
    fn record(&mut self, f: InFlight, slot: Slot, rtt: Option<Duration>) {
        let t = &mut self.targets[f.target];
        match (slot, rtt) {
            (Slot::Answered, Some(rtt)) => t.window.push(Sample::Reply(rtt)),
            // No evidence is not a sample: the window's loss is the WAN's, not the REST API's.
            (Slot::NoEvidence, _) => {}
            _ => t.window.push(Sample::Lost),
        }
        if let Some(round) = self.rounds.get_mut(&f.round) {
            round.slots[f.target] = slot;
        }
    }

    /// Resolves rounds in order, feeds verdicts to the state machine, applies timers.
    fn advance(&mut self, now: Instant) {
        while let Some((&index, round)) = self.rounds.first_key_value() {
            let closed = self.targets.iter().all(|t| t.next_round > index);
            let Some(verdict) = self.verdict(round) else {
                if closed && !round.slots.contains(&Slot::Pending) {
                    // A round some target skipped (the shell stalled) without quorum: void.
                    self.rounds.pop_first();
                    self.decided_below = index + 1;
                    continue;
                }
                break;
            };
            let causes = round
                .slots
                .iter()
                .fold((0, 0, 0), |(s, i, f), slot| match slot {
                    Slot::Silent => (s + 1, i, f),
                    Slot::IcmpError => (s, i + 1, f),
                    Slot::SendFailed => (s, i, f + 1),
                    _ => (s, i, f),
                });
            self.rounds.pop_first();
            self.decided_below = index + 1;
            self.on_verdict(now, verdict, causes);
        }
        self.on_time(now);
    }

    fn verdict(&self, round: &Round) -> Option<Verdict> {
        let n = round.slots.len();
        let answered = round.slots.iter().filter(|s| **s == Slot::Answered).count();
        let lost = round.slots.iter().filter(|s| s.is_lost()).count();
        if answered >= self.quorum {
            Some(Verdict::Good)
        } else if lost > n - self.quorum {
            Some(Verdict::Bad)
        } else {
            None
        }
    }

    fn on_verdict(&mut self, now: Instant, verdict: Verdict, causes: (u32, u32, u32)) {
        let counting = matches!(
            self.state,
            LinkState::Unknown | LinkState::Up | LinkState::Degraded { .. }
        );
        let p0 = self.evidence.p0();
        let e = &mut self.evidence;
        match verdict {
            Verdict::Good => {
                e.good_streak = e.good_streak.saturating_add(1);
                e.bad_streak = 0;
                e.causes = (0, 0, 0);
                if counting {
                    for _ in 0..e.uncommitted_bad {
                        e.commit(true);
                    }
                    e.commit(false);
                }
                e.uncommitted_bad = 0;
                e.cusum = (e.cusum + ((1.0 - P_OUTAGE) / (1.0 - p0)).ln()).max(0.0);
            }
            Verdict::Bad => {
                e.bad_streak = e.bad_streak.saturating_add(1);
                e.good_streak = 0;
                e.uncommitted_bad = e.uncommitted_bad.saturating_add(1);
                e.causes = (
                    e.causes.0.saturating_add(causes.0),
                    e.causes.1.saturating_add(causes.1),
                    e.causes.2.saturating_add(causes.2),
                );
                if !matches!(self.state, LinkState::Down { .. }) {
                    e.cusum += (P_OUTAGE / p0).ln();
                }
            }
        }
        match self.state {
            LinkState::Unknown => {
                if self.outage_proven(now) {
                    self.go_down(now, Flap::NotCounted);
                } else if self.evidence.good_streak >= self.params.up_rounds {
                    let reason = Reason::GoodRounds {
                        rounds: self.evidence.good_streak,
                        srtt: self.srtts(),
                    };
                    self.enter_usable(now, reason);
                }
            }
            LinkState::Up | LinkState::Degraded { .. } => {
                if self.outage_proven(now) {
                    self.go_down(now, Flap::Counted);
                } else {
                    self.check_brownout(now);
                }
            }
            LinkState::Down { since } => {
                if self.evidence.good_streak >= self.rounds_to_recover(now) {
                    self.evidence.cusum = 0.0;
                    for t in &mut self.targets {
                        // Judge quality on post-outage probes only.
                        t.window.clear();
                    }
                    let reason = Reason::Answering {
                        rounds: self.evidence.good_streak,
                        down_for: now.saturating_duration_since(since),
                        hold_down: self.hold,
                    };
                    self.enter(now, LinkState::Recovering { since: now }, reason);
                }
            }
            LinkState::Recovering { .. } => {
                if self.outage_proven(now) {
                    self.go_down(now, Flap::Counted);
                }
            }
        }
    }

    /// Time-based rules: the end of the start-up grace and of the hold-down.
    fn on_time(&mut self, now: Instant) {
        match self.state {
            LinkState::Unknown if self.outage_proven(now) => self.go_down(now, Flap::NotCounted),
            LinkState::Recovering { since }
                if now >= since + self.hold
                    && self.evidence.good_streak >= self.params.up_rounds =>
            {
                let reason = Reason::HoldDownPassed {
                    hold_down: self.hold,
                    rounds: self.evidence.good_streak,
                    srtt: self.srtts(),
                };
                self.enter_usable(now, reason);
            }
            _ => {}
        }
    }

    fn outage_proven(&self, now: Instant) -> bool {
        self.evidence.cusum >= self.params.down_evidence
            && self.evidence.bad_streak >= self.params.down_rounds
            && now >= self.start + self.params.startup_grace
    }

    fn go_down(&mut self, now: Instant, flap: Flap) {
        if flap == Flap::Counted {
            // Bounded: beyond the cap of `damping` a larger penalty changes nothing, and an
            // unbounded one could reach infinity and decay into NaN.
            let penalty = (self.decayed_penalty(now) + self.params.flap_penalty).min(MAX_PENALTY);
            self.penalty = penalty;
            self.penalty_at = now;
            self.hold = self
                .params
                .hold_down
                .mul_f64(self.damping(now))
                .min(self.params.max_hold_down);
        }
        let e = &self.evidence;
        let (silent, icmp_errors, send_failures) = e.causes;
        let reason = Reason::Outage(OutageEvidence {
            targets: self.targets.len(),
            quorum: self.quorum,
            rounds: e.bad_streak,
            silent,
            icmp_errors,
            send_failures,
            evidence: e.cusum,
            threshold: self.params.down_evidence,
            baseline: e.p0(),
        });
        // The outage's rounds are not normal operation: never fold them into the baseline.
        self.evidence.uncommitted_bad = 0;
        self.evidence.cusum = 0.0;
        self.enter(now, LinkState::Down { since: now }, reason);
    }

    /// Flap damping factor (>= 1): how many times the base hold-down and good rounds a
    /// failed WAN must show before carrying traffic again.
    fn damping(&self, now: Instant) -> f64 {
        let cap =
            self.params.max_hold_down.as_secs_f64() / self.params.hold_down.as_secs_f64().max(1e-3);
        self.decayed_penalty(now).clamp(1.0, cap.max(1.0))
    }

    /// Good rounds needed to leave Down: `up_rounds`, scaled by the damping factor, so a WAN
    /// that keeps failing soon cannot even enter Recovering during its short good spells
    /// (which bounds the transitions a flapping link produces).
    fn rounds_to_recover(&self, now: Instant) -> u32 {
        (f64::from(self.params.up_rounds) * self.damping(now)).ceil() as u32
    }

    fn decayed_penalty(&self, now: Instant) -> f64 {
        if self.params.flap_penalty == 0.0 || self.params.flap_half_life.is_zero() {
            return 0.0;
        }
        let age = now.saturating_duration_since(self.penalty_at).as_secs_f64();
        self.penalty * 0.5f64.powf(age / self.params.flap_half_life.as_secs_f64())
    }

    /// The brown-out metrics that are enabled and judgeable now: the quorum-th best target's
    /// window, once that window is at least half full.
    fn brownout_checks(&self) -> Vec<Check> {
        let p = &self.params;
        let min_len = (self.targets.first().map_or(0, |t| t.window.capacity()) / 2).max(4);
        let usable = || {
            self.targets
                .iter()
                .filter(move |t| t.window.len() >= min_len)
        };
        let q = self.quorum;
        let mut checks = Vec::new();
        if let Some(levels) = p.brownout_loss
            && let Some(v) = quorum_best(usable().map(|t| t.window.loss_ratio()), q)
        {
            checks.push(Check::Loss {
                percent: v * 100.0,
                levels,
            });
        }
        if let Some(levels) = p.brownout_latency
            && let Some(value) = quorum_best_duration(usable().map(|t| t.window.mean_rtt()), q)
        {
            checks.push(Check::Latency { value, levels });
        }
        if let Some(levels) = p.brownout_jitter
            && let Some(value) = quorum_best_duration(usable().map(|t| t.window.jitter()), q)
        {
            checks.push(Check::Jitter { value, levels });
        }
        checks
    }

    /// The metrics at or above their fail level, when there are any (the WAN is browned out).
    fn brownout_failing(&self) -> Option<Vec<Check>> {
        let failing: Vec<Check> = self
            .brownout_checks()
            .into_iter()
            .filter(Check::failing)
            .collect();
        (!failing.is_empty()).then_some(failing)
    }

    /// Up ⇄ Degraded on the brown-out thresholds: degraded at a fail level, restored only when
    /// every enabled metric is judgeable and at or below its recover level.
    fn check_brownout(&mut self, now: Instant) {
        let p = &self.params;
        let enabled = [
            p.brownout_loss.is_some(),
            p.brownout_latency.is_some(),
            p.brownout_jitter.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if enabled == 0 {
            return;
        }
        match self.state {
            LinkState::Up => {
                if let Some(over) = self.brownout_failing() {
                    self.enter(
                        now,
                        LinkState::Degraded { since: now },
                        Reason::BrownOut { over },
                    );
                }
            }
            LinkState::Degraded { .. } => {
                let checks = self.brownout_checks();
                if checks.len() == enabled && checks.iter().all(Check::recovered) {
                    self.enter(now, LinkState::Up, Reason::BrownOutOver { within: checks });
                }
            }
            _ => {}
        }
    }

    /// Enters Up, or Degraded straight away when a brown-out threshold already fails (one
    /// edge, not two at the same instant).
    fn enter_usable(&mut self, now: Instant, reason: Reason) {
        match self.brownout_failing() {
            Some(over) => self.enter(
                now,
                LinkState::Degraded { since: now },
                Reason::DegradedOnEntry {
                    usable: Box::new(reason),
                    over,
                },
            ),
            None => self.enter(now, LinkState::Up, reason),
        }
    }

    /// Each target's smoothed RTT, where it has one.
    fn srtts(&self) -> Vec<(Ipv4Addr, Duration)> {
        self.targets
            .iter()
            .filter_map(|t| t.rtt.srtt().map(|s| (t.addr, s)))
            .collect()
    }

    fn enter(&mut self, now: Instant, to: LinkState, reason: Reason) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.transitions.push_back(Transition {
            link: self.id.clone(),
            at: now,
            from,
            to,
            reason,
        });
    }
}

/// For each metric the quorum-th best (lowest) value across targets: with quorum 1 the best
/// target speaks for the link. Missing values count as worst.
fn quorum_best(values: impl Iterator<Item = Option<f64>>, quorum: usize) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    v.sort_by(f64::total_cmp);
    v.get(quorum.saturating_sub(1)).copied()
}

/// [`quorum_best`] of durations.
fn quorum_best_duration(
    values: impl Iterator<Item = Option<Duration>>,
    quorum: usize,
) -> Option<Duration> {
    let mut v: Vec<Duration> = values.flatten().collect();
    v.sort();
    v.get(quorum.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// How a scripted network answers a probe sent at `t` (seconds since start) to a target.
    type Net = dyn Fn(f64, Ipv4Addr) -> ProbeResult;

    /// Drives `link` from its current time to `until` (seconds since `t0`) against `net`,
    /// delivering replies at send time + RTT; returns the transitions seen.
    fn drive(link: &mut Link, t0: Instant, until: f64, net: &Net) -> Vec<(f64, StateKind)> {
        drive_queued(link, t0, until, net, &|_, _| Duration::ZERO)
    }

    /// How long a probe sent at `t` to a target waits before it even starts (remote mode: for
    /// the REST session), on top of its own time.
    type Queue = dyn Fn(f64, Ipv4Addr) -> Duration;

    /// [`drive`], with every result delivered `queue` later than the probe itself ended.
    fn drive_queued(
        link: &mut Link,
        t0: Instant,
        until: f64,
        net: &Net,
        queue: &Queue,
    ) -> Vec<(f64, StateKind)> {
        let mut pending: Vec<(Instant, Ipv4Addr, u16, ProbeResult)> = Vec::new();
        let mut seen = Vec::new();
        let mut now = link.now;
        let end = t0 + Duration::from_secs_f64(until);
        while now <= end {
            pending.sort_by_key(|p| p.0);
            while pending.first().is_some_and(|p| p.0 <= now) {
                let (_, target, seq, result) = pending.remove(0);
                link.handle_result(now, target, seq, result);
            }
            link.handle_timeout(now);
            while let Some(req) = link.poll_probe(now) {
                let t = now.duration_since(t0).as_secs_f64();
                let result = net(t, req.target);
                let at = now
                    + queue(t, req.target)
                    + match result {
                        ProbeResult::Reply { rtt } => rtt,
                        ProbeResult::SendFailed | ProbeResult::NoEvidence => Duration::ZERO,
                        _ => link.max_wait(),
                    };
                pending.push((at, req.target, req.seq, result));
            }
            while let Some(tr) = link.poll_transition() {
                seen.push((tr.at.duration_since(t0).as_secs_f64(), tr.to.kind()));
            }
            let next = pending
                .iter()
                .map(|p| p.0)
                .chain(link.poll_timeout())
                .filter(|at| *at > now)
                .min();
            match next {
                Some(at) => now = at,
                None => break,
            }
        }
        seen
    }

    fn reply(ms: u64) -> ProbeResult {
        ProbeResult::Reply {
            rtt: Duration::from_millis(ms),
        }
    }

    fn link(targets: Vec<Ipv4Addr>, params: &Params) -> (Link, Instant) {
        let t0 = crate::clock::mono();
        (Link::new(LinkId::new("ISP1"), targets, params, t0), t0)
    }

    #[test]
    fn state_machine_table() {
        use StateKind::*;
        let p = Params::default();
        // (name, network, run until, expected kinds in order)
        type Row = (&'static str, Box<Net>, f64, &'static [StateKind]);
        let table: Vec<Row> = vec![
            (
                "clean link comes up",
                Box::new(|_, _| reply(20)),
                60.0,
                &[Up],
            ),
            (
                "outage at 60 s fails over",
                Box::new(|t, _| {
                    if t < 60.0 {
                        reply(20)
                    } else {
                        ProbeResult::NoReply
                    }
                }),
                70.0,
                &[Up, Down],
            ),
            (
                "outage 60-70 s comes back after the hold-down",
                Box::new(|t, _| {
                    if (60.0..70.0).contains(&t) {
                        ProbeResult::NoReply
                    } else {
                        reply(20)
                    }
                }),
                120.0,
                &[Up, Down, Recovering, Up],
            ),
            (
                "one dead target keeps it up (quorum 1)",
                Box::new(|t, ip| {
                    if ip == B && t > 10.0 {
                        ProbeResult::NoReply
                    } else {
                        reply(20)
                    }
                }),
                60.0,
                &[Up],
            ),
            (
                "dead from the start goes down only after the grace",
                Box::new(|_, _| ProbeResult::NoReply),
                10.0,
                &[Down],
            ),
            (
                "ICMP errors are failure evidence",
                Box::new(|t, _| {
                    if t < 30.0 {
                        reply(20)
                    } else {
                        ProbeResult::IcmpError
                    }
                }),
                40.0,
                &[Up, Down],
            ),
        ];
        for (name, net, until, want) in table {
            let (mut l, t0) = link(vec![A, B], &p);
            let got: Vec<StateKind> = drive(&mut l, t0, until, &*net)
                .into_iter()
                .map(|(_, k)| k)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn no_down_before_the_start_up_grace() {
        let p = Params {
            startup_grace: Duration::from_secs(5),
            ..Params::default()
        };
        let (mut l, t0) = link(vec![A, B], &p);
        let seen = drive(&mut l, t0, 10.0, &|_, _| ProbeResult::NoReply);
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].0 >= 5.0,
            "down at {} s, before the 5 s grace",
            seen[0].0
        );
        assert_eq!(seen[0].1, StateKind::Down);
    }

    #[test]
    fn quorum_two_fails_on_one_dead_target() {
        let p = Params {
            quorum: 2,
            ..Params::default()
        };
        let (mut l, t0) = link(vec![A, B], &p);
        let seen = drive(&mut l, t0, 60.0, &|t, ip| {
            if ip == B && t > 30.0 {
                ProbeResult::NoReply
            } else {
                reply(20)
            }
        });
        let kinds: Vec<StateKind> = seen.iter().map(|s| s.1).collect();
        assert_eq!(kinds, [StateKind::Up, StateKind::Down]);
    }

    #[test]
    fn send_failures_fail_over_within_a_second() {
        let (mut l, t0) = link(vec![A, B], &Params::default());
        let seen = drive(&mut l, t0, 70.0, &|t, _| {
            if t < 60.0 {
                reply(20)
            } else {
                ProbeResult::SendFailed
            }
        });
        let down = seen.iter().find(|s| s.1 == StateKind::Down).expect("down");
        // Virtual time: exact, not a wall-clock assertion.
        assert!(down.0 - 60.0 < 1.0, "{}", down.0);
    }

    #[test]
    fn late_replies_count_lost_but_teach_the_rtt() {
        let (mut l, t0) = link(vec![A], &Params::default());
        // 20 ms for a minute, then 400 ms: the first slow replies come after the 250 ms deadline.
        drive(&mut l, t0, 70.0, &|t, _| {
            if t < 60.0 { reply(20) } else { reply(400) }
        });
        let s = l.stats();
        let t = &s.targets[0];
        assert!(t.counters.late > 0, "{:?}", t.counters);
        assert!(
            t.srtt.unwrap() > Duration::from_millis(300),
            "srtt learnt the new RTT: {:?}",
            t.srtt
        );
        assert!(
            t.deadline > Duration::from_millis(400),
            "the deadline adapted: {:?}",
            t.deadline
        );
        assert_eq!(s.state, StateKind::Up, "slow is not dead");
    }

    #[test]
    fn stats_report_loss_and_rtt() {
        let (mut l, t0) = link(vec![A, B], &Params::default());
        drive(&mut l, t0, 30.0, &|_, ip| {
            if ip == B {
                ProbeResult::NoReply
            } else {
                reply(20)
            }
        });
        let s = l.stats();
        assert_eq!(s.targets[0].loss_ratio, Some(0.0));
        assert_eq!(s.targets[1].loss_ratio, Some(1.0));
        assert_eq!(
            s.loss_ratio,
            Some(0.0),
            "quorum 1: the best target speaks for the link"
        );
        assert_eq!(s.targets[0].rtt, Some(Duration::from_millis(20)));
        assert_eq!(s.rtt, Some(Duration::from_millis(20)));
        assert_eq!(s.state, StateKind::Up);
        assert_eq!(s.targets[1].target, B);
    }

    fn reported(max_pending: u64) -> Timing {
        Timing::Reported {
            max_pending: Duration::from_secs(max_pending),
        }
    }

    /// (replies, lost, late, no evidence) over the link's targets.
    fn tally(l: &Link) -> (u64, u64, u64, u64) {
        l.stats().targets.iter().fold((0, 0, 0, 0), |a, t| {
            let c = &t.counters;
            (
                a.0 + c.replies,
                a.1 + c.lost,
                a.2 + c.late,
                a.3 + c.no_evidence,
            )
        })
    }

    #[test]
    fn reported_timing_judges_the_probe_not_its_wait_for_the_session() {
        // Every 30 ms reply reaches the core 500 ms after the probe was asked for: it queued
        // behind another WAN's dead ping. By arrival that is past the 250 ms deadline, lost;
        // by the router's own RTT it is a good reply.
        let p = Params::default();
        let queue = |_: f64, _: Ipv4Addr| Duration::from_millis(500);
        let (mut by_arrival, t0) = link(vec![A, B], &p);
        let seen = drive_queued(&mut by_arrival, t0, 60.0, &|_, _| reply(30), &queue);
        let (_, lost, _, _) = tally(&by_arrival);
        assert!(lost > 0, "the queueing this test is about: {seen:?}");
        let (l, t0) = link(vec![A, B], &p);
        let mut by_report = l.with_timing(reported(15));
        let seen = drive_queued(&mut by_report, t0, 60.0, &|_, _| reply(30), &queue);
        let kinds: Vec<StateKind> = seen.iter().map(|s| s.1).collect();
        assert_eq!(kinds, [StateKind::Up]);
        let (replies, lost, late, none) = tally(&by_report);
        assert_eq!((lost, late, none), (0, 0, 0), "{:?}", by_report.stats());
        assert!(replies > 100, "{replies}");
        assert_eq!(by_report.stats().loss_ratio, Some(0.0));
    }

    #[test]
    fn reported_timing_still_fails_a_dead_wan_and_sees_a_slow_reply_as_late() {
        // Remote mode's shape: 2 s rounds, a prober that gives up after 500 ms.
        let remote = Params {
            interval: Duration::from_secs(2),
            max_deadline: Duration::from_millis(500),
            ..Params::default()
        };
        let queue = |_: f64, _: Ipv4Addr| Duration::from_millis(500);
        let (l, t0) = link(vec![A, B], &remote);
        let mut l = l.with_timing(reported(15));
        let seen = drive_queued(
            &mut l,
            t0,
            80.0,
            &|t, _| {
                if t < 60.0 {
                    reply(20)
                } else {
                    ProbeResult::NoReply
                }
            },
            &queue,
        );
        let kinds: Vec<StateKind> = seen.iter().map(|s| s.1).collect();
        assert_eq!(kinds, [StateKind::Up, StateKind::Down]);
        // An overloaded session: 200 ms rounds, but every result waits 1.5 s behind the other
        // probes and a dead one takes the prober's whole wait. Each target is probed far less
        // often than its rounds come; the rounds follow in order, each with a probe of both
        // targets, so the outage is still judged.
        let (l, t0) = link(vec![A, B], &Params::default());
        let mut l = l.with_timing(reported(15));
        let seen = drive_queued(
            &mut l,
            t0,
            150.0,
            &|t, _| {
                if t < 60.0 {
                    reply(20)
                } else {
                    ProbeResult::NoReply
                }
            },
            &|_, _| Duration::from_millis(1500),
        );
        let kinds: Vec<StateKind> = seen.iter().map(|s| s.1).collect();
        assert_eq!(kinds, [StateKind::Up, StateKind::Down]);
        let (_, lost, late, _) = tally(&l);
        assert_eq!(late, 0, "queueing made no reply late");
        assert!(lost > 0);
        // A reply the router timed at 400 ms is late (over the learnt 250 ms deadline), whenever
        // it arrives.
        let (l, t0) = link(vec![A], &Params::default());
        let mut l = l.with_timing(reported(15));
        drive_queued(
            &mut l,
            t0,
            70.0,
            &|t, _| if t < 60.0 { reply(20) } else { reply(400) },
            &|_, _| Duration::ZERO,
        );
        assert!(l.stats().targets[0].counters.late > 0);
    }

    #[test]
    fn an_outstanding_remote_probe_holds_its_target_and_is_never_lost() {
        let p = Params::default();
        let (l, t0) = link(vec![A, B], &p);
        let mut l = l.with_timing(reported(10));
        // From 20 s the session stalls for good: no result ever comes back.
        let stalled = |t: f64, _: Ipv4Addr| {
            if t < 20.0 {
                Duration::ZERO
            } else {
                Duration::from_secs(100_000)
            }
        };
        let seen = drive_queued(&mut l, t0, 120.0, &|_, _| reply(20), &stalled);
        let kinds: Vec<StateKind> = seen.iter().map(|s| s.1).collect();
        assert_eq!(kinds, [StateKind::Up], "a stalled prober is not an outage");
        let (_, lost, _, none) = tally(&l);
        assert_eq!(lost, 0);
        // One probe per target at a time: each stalled probe gives way to the next only after
        // max_pending, as no evidence (100 s / 10 s per target, give or take one).
        let sent: u64 = l.stats().targets.iter().map(|t| t.counters.sent).sum();
        let before: u64 = 2 * (20_000 / p.interval.as_millis() as u64);
        assert!(sent <= before + 2 * 11, "{sent} probes sent");
        assert!((2 * 9..=2 * 10).contains(&none), "{none} without evidence");
        // Nothing due while both targets wait but the give-up time.
        let next = l.poll_timeout().expect("a timer");
        assert!(next > l.now, "timer in the future");
        assert!(
            l.poll_probe(l.now).is_none(),
            "no second probe while one is out"
        );
    }

    #[test]
    fn a_reply_after_the_core_gave_up_on_it_is_neither_late_nor_counted_twice() {
        let (l, t0) = link(vec![A], &Params::default());
        let mut l = l.with_timing(reported(10));
        let req = l.poll_probe(t0).expect("first probe");
        l.handle_timeout(t0 + Duration::from_secs(11));
        let c = l.stats().targets[0].counters;
        assert_eq!((c.no_evidence, c.lost, c.late), (1, 0, 0));
        l.handle_result(t0 + Duration::from_secs(12), A, req.seq, reply(20));
        let s = l.stats();
        let c = s.targets[0].counters;
        assert_eq!((c.no_evidence, c.lost, c.late, c.replies), (1, 0, 0, 0));
        assert_eq!(
            s.targets[0].srtt,
            Some(Duration::from_millis(20)),
            "the RTT is still learnt"
        );
        assert_eq!(s.targets[0].window_len, 0);
    }

    #[test]
    fn no_evidence_is_neither_loss_nor_success_and_holds_the_state() {
        use StateKind::*;
        let p = Params::default();
        let rest_fault = |from: f64, to: f64, otherwise: ProbeResult| {
            move |t: f64, _: Ipv4Addr| {
                if (from..to).contains(&t) {
                    ProbeResult::NoEvidence
                } else {
                    otherwise
                }
            }
        };
        // (name, network, run until, expected kinds)
        type Row = (&'static str, Box<Net>, f64, &'static [StateKind]);
        let table: Vec<Row> = vec![
            (
                "an up link stays up through a minute of REST faults",
                Box::new(rest_fault(20.0, 80.0, reply(20))),
                100.0,
                &[Up],
            ),
            (
                "a link that only ever gets REST faults stays unknown (used), never down",
                Box::new(rest_fault(0.0, 100.0, reply(20))),
                60.0,
                &[],
            ),
            (
                "a down link is not brought back by REST faults",
                Box::new(|t: f64, _| {
                    if t < 10.0 {
                        reply(20)
                    } else if t < 20.0 {
                        ProbeResult::NoReply
                    } else {
                        ProbeResult::NoEvidence
                    }
                }),
                120.0,
                &[Up, Down],
            ),
        ];
        for (name, net, until, want) in table {
            for timing in [Timing::Arrival, reported(10)] {
                let (l, t0) = link(vec![A, B], &p);
                let mut l = l.with_timing(timing);
                let got: Vec<StateKind> = drive(&mut l, t0, until, &*net)
                    .into_iter()
                    .map(|(_, k)| k)
                    .collect();
                assert_eq!(got, want, "{name} ({timing:?})");
                let s = l.stats();
                assert!(s.no_evidence > 0, "{name}");
                for t in &s.targets {
                    // No evidence never enters the window: loss is the WAN's alone.
                    assert!(
                        t.window_len as u64 <= t.counters.replies + t.counters.lost,
                        "{name}: {t:?}"
                    );
                }
            }
        }
        // Up through the faults: its window holds only the replies.
        let (mut l, t0) = link(vec![A, B], &p);
        drive(&mut l, t0, 100.0, &rest_fault(20.0, 80.0, reply(20)));
        let (_, lost, _, none) = tally(&l);
        assert_eq!(lost, 0);
        assert!(none > 500, "{none}");
        assert_eq!(l.stats().loss_ratio, Some(0.0));
    }

    #[test]
    fn spurious_timeouts_are_harmless_and_timers_move_forward() {
        let (mut l, t0) = link(vec![A, B], &Params::default());
        for _ in 0..3 {
            l.handle_timeout(t0);
        }
        assert_eq!(l.poll_probe(t0).map(|r| r.target), Some(A));
        assert_eq!(
            l.poll_probe(t0),
            None,
            "B is staggered half an interval later"
        );
        let next = l.poll_timeout().unwrap();
        assert!(next > t0 && next <= t0 + Duration::from_millis(100));
        // Unknown results are ignored.
        l.handle_result(t0, B, 999, reply(1));
        assert_eq!(l.state(), LinkState::Unknown);
        assert!(l.poll_transition().is_none());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::health::{MAX_PROBE_DURATION, MAX_STATE_DURATION};

    /// One step of an arbitrary shell: advance time, then report something (possibly bogus).
    #[derive(Debug, Clone)]
    enum Step {
        Advance(Duration),
        Result {
            target: u8,
            seq_back: u8,
            kind: u8,
            rtt: Duration,
        },
    }

    fn step(
        advance: impl Strategy<Value = Duration>,
        rtt: impl Strategy<Value = Duration>,
    ) -> impl Strategy<Value = Step> {
        prop_oneof![
            advance.prop_map(Step::Advance),
            (0u8..3, 0u8..8, 0u8..5, rtt).prop_map(|(target, seq_back, kind, rtt)| {
                Step::Result {
                    target,
                    seq_back,
                    kind,
                    rtt,
                }
            }),
        ]
    }

    fn ordinary_step() -> impl Strategy<Value = Step> {
        step(
            (0u64..2000).prop_map(Duration::from_millis),
            (0u64..4000).prop_map(Duration::from_millis),
        )
    }

    /// Leaps of up to two days, and RTTs up to the largest a `Duration` holds (a router's
    /// `/ping` row is text; nothing bounds what it reports).
    fn extreme_step() -> impl Strategy<Value = Step> {
        step(
            prop_oneof![
                (0u64..2000).prop_map(Duration::from_millis),
                (0u64..2 * 86_400).prop_map(Duration::from_secs),
            ],
            prop_oneof![
                (0u64..4000).prop_map(Duration::from_millis),
                Just(MAX_PROBE_DURATION),
                Just(Duration::MAX),
                any::<u64>().prop_map(Duration::from_secs),
            ],
        )
    }

    /// A duration at either bound of `[lo, hi]` or anywhere between.
    fn bounded(lo: Duration, hi: Duration) -> impl Strategy<Value = Duration> {
        let (lo_ms, hi_ms) = (lo.as_millis() as u64, hi.as_millis() as u64);
        prop_oneof![Just(lo_ms), Just(hi_ms), lo_ms..=hi_ms].prop_map(Duration::from_millis)
    }

    /// Params at the edges of what `Params::validate` accepts (invalid combinations are
    /// filtered out by the caller).
    fn extreme_params() -> impl Strategy<Value = Params> {
        let ms = Duration::from_millis;
        let counts = || prop_oneof![Just(1u32), Just(u32::MAX), 1u32..20];
        (
            (
                bounded(ms(10), Duration::from_secs(60)),
                1usize..3,
                counts(),
                prop_oneof![Just(1.0f64), Just(100.0), 1.0f64..100.0],
                counts(),
            ),
            (
                bounded(Duration::ZERO, MAX_STATE_DURATION),
                bounded(Duration::ZERO, MAX_STATE_DURATION),
                prop_oneof![Just(0.0f64), Just(1e300), 0.0f64..100.0],
                bounded(ms(1), MAX_STATE_DURATION),
            ),
            (
                bounded(ms(1), MAX_PROBE_DURATION),
                bounded(ms(1), MAX_PROBE_DURATION),
                prop_oneof![Just(4u32), Just(10_000), 4u32..100],
                bounded(Duration::ZERO, MAX_STATE_DURATION),
                proptest::option::of(bounded(ms(1), MAX_PROBE_DURATION)),
            ),
        )
            .prop_map(
                |(
                    (interval, quorum, down_rounds, down_evidence, up_rounds),
                    (hold_down, max_hold_down, flap_penalty, flap_half_life),
                    (min_deadline, max_deadline, window, startup_grace, latency),
                )| Params {
                    interval,
                    quorum,
                    down_rounds,
                    down_evidence,
                    up_rounds,
                    hold_down,
                    max_hold_down,
                    flap_penalty,
                    flap_half_life,
                    min_deadline,
                    max_deadline,
                    window,
                    startup_grace,
                    brownout_loss: Some(super::super::LossLevels {
                        fail: 100.0,
                        recover: 0.0,
                    }),
                    brownout_latency: latency.map(|fail| super::super::DurationLevels {
                        fail,
                        recover: Duration::ZERO,
                    }),
                    brownout_jitter: latency.map(|fail| super::super::DurationLevels {
                        fail,
                        recover: fail / 2,
                    }),
                },
            )
    }

    /// Drives a link with `steps` and checks, after every step: transitions form a chain (each
    /// starts where the previous ended, never to the same state), the next timer is in the
    /// future, and the statistics serialize. Any panic fails the property.
    fn run(params: &Params, timing: Timing, steps: Vec<Step>) -> Result<(), TestCaseError> {
        let targets = vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)];
        let t0 = crate::clock::mono();
        let mut link = Link::new(LinkId::new("P"), targets.clone(), params, t0).with_timing(timing);
        let mut now = t0;
        let mut sent: Vec<ProbeRequest> = Vec::new();
        let mut last = LinkState::Unknown;
        for s in steps {
            match s {
                Step::Advance(d) => {
                    now += d;
                    link.handle_timeout(now);
                }
                Step::Result {
                    target,
                    seq_back,
                    kind,
                    rtt,
                } => {
                    let (ip, seq) = match sent.len().checked_sub(1 + seq_back as usize) {
                        Some(i) => (sent[i].target, sent[i].seq),
                        None => (
                            *targets.get(target as usize).unwrap_or(&Ipv4Addr::LOCALHOST),
                            7,
                        ),
                    };
                    let result = match kind {
                        0 => ProbeResult::Reply { rtt },
                        1 => ProbeResult::IcmpError,
                        2 => ProbeResult::SendFailed,
                        3 => ProbeResult::NoEvidence,
                        _ => ProbeResult::NoReply,
                    };
                    link.handle_result(now, ip, seq, result);
                }
            }
            while let Some(req) = link.poll_probe(now) {
                sent.push(req);
            }
            while let Some(tr) = link.poll_transition() {
                prop_assert_eq!(tr.from, last);
                prop_assert_ne!(tr.from, tr.to);
                last = tr.to;
            }
            prop_assert_eq!(link.state(), last);
            if let Some(at) = link.poll_timeout() {
                prop_assert!(at > now, "timer not in the future");
            }
            let stats = link.stats();
            for t in &stats.targets {
                prop_assert!(t.loss_ratio.is_none_or(|l| (0.0..=1.0).contains(&l)));
            }
        }
        Ok(())
    }

    fn timing(pending_ms: Option<u64>) -> Timing {
        match pending_ms {
            None => Timing::Arrival,
            Some(ms) => Timing::Reported {
                max_pending: Duration::from_millis(ms),
            },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever the shell reports, in whatever order, with either timing: the invariants
        /// of [`run`] hold.
        #[test]
        fn any_input_keeps_the_invariants(
            steps in proptest::collection::vec(ordinary_step(), 1..400),
            quorum in 1usize..3,
            pending_ms in proptest::option::of(0u64..5000),
        ) {
            let params = Params { quorum, startup_grace: Duration::from_millis(500), ..Params::default() };
            run(&params, timing(pending_ms), steps)?;
        }

        /// The same at the bounds of every parameter (durations at their limits, counts at 1 or
        /// u32::MAX, a flap penalty of 1e300), with leaps of days and absurd reported RTTs: the
        /// core's time arithmetic never overflows.
        #[test]
        fn extreme_parameters_keep_the_invariants(
            params in extreme_params(),
            steps in proptest::collection::vec(extreme_step(), 1..200),
            pending_ms in proptest::option::of(prop_oneof![Just(0u64), Just(u64::MAX / 2), 0u64..5000]),
        ) {
            prop_assume!(params.validate().is_ok());
            run(&params, timing(pending_ms), steps)?;
        }
    }
}
