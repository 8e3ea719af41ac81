//! The engine: every WAN's health [`Link`], the policy decision and the outage book, as one
//! sans-IO state machine (in the manner of quinn-proto's `Connection`). It never touches a
//! socket or reads the clock: the caller passes `now` into every call, sends the probes it is
//! asked for and feeds their results back.
//!
//! It is the one driver of the health core: the daemon (`app::run`), `uplinkd simulate` and the
//! tests all call it the same way:
//!
//! 1. [`Engine::poll_probe`] until `None`, sending each probe;
//! 2. [`Engine::handle_result`] for each outcome, [`Engine::handle_timeout`] at
//!    [`Engine::poll_timeout`];
//! 3. [`Engine::poll_event`] until `None` after every call: one [`EngineEvent`] per state
//!    change of a WAN, with the outage it ends and the new decision when it changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::health::{Link, Params, ProbeRequest, ProbeResult, StateKind, Timing, Transition};
use crate::policy::{self, Candidate, Desired, Role, Tiering};
use crate::reconcile::plan::{GlobalStatus, Request, Target, Want};
use crate::traffic::Traffic;
use crate::types::{LinkId, Tier};

/// One WAN as the engine needs it.
#[derive(Debug, Clone)]
pub struct WanSpec {
    pub id: LinkId,
    pub monitors: Vec<Ipv4Addr>,
    /// Lower is preferred (see [`policy::decide`]).
    pub priority: u32,
    pub tier: Tier,
}

/// A state change of one WAN, with what it means for the router.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineEvent {
    pub transition: Transition,
    /// Where this edge stands in the WAN's outage (the outage book's view: its start, and its
    /// length when the edge ends it).
    pub outage: OutageMark,
    /// This WAN's failovers so far, this edge included.
    pub failovers: u64,
    /// The new decision, when this edge changed it.
    pub desired: Option<Desired>,
}

/// Where an edge stands in its WAN's outage, from the [`Outages`] book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMark {
    /// The WAN is not in an outage (an edge between usable states, or start-up).
    None,
    /// The edge is inside the outage that began at `since` (its first Down, or a Recovering or a
    /// fall back to Down after it).
    Ongoing { since: Instant },
    /// The edge ends the outage that began at `since` (the WAN is usable again) after `lasted`.
    Ended { since: Instant, lasted: Duration },
}

impl OutageMark {
    /// When the outage began, if the edge is in or ends one.
    pub fn since(self) -> Option<Instant> {
        match self {
            Self::None => None,
            Self::Ongoing { since } | Self::Ended { since, .. } => Some(since),
        }
    }

    /// The outage's length, if this edge ends one.
    pub fn lasted(self) -> Option<Duration> {
        match self {
            Self::Ended { lasted, .. } => Some(lasted),
            Self::None | Self::Ongoing { .. } => None,
        }
    }
}

/// The reconcile target of a decision: Active → carry, Backup → drain, Standby → standby,
/// except that a Standby WAN some traffic rule's policy may use drains (its own table stays on
/// for the rule's connections, which are never flushed); each rule's switched lines follow its
/// policy's usable WANs ([`Desired::steering`]).
pub fn target_of(desired: &Desired, traffic: &Traffic) -> Target {
    let steer: BTreeMap<String, BTreeSet<LinkId>> = traffic
        .rules
        .iter()
        .map(|r| {
            let wans = desired.steering.get(&r.policy).cloned().unwrap_or_default();
            (r.name.clone(), wans)
        })
        .collect();
    let used: BTreeSet<LinkId> = steer.values().flatten().cloned().collect();
    Target::new(desired.roles.iter().map(|(id, role)| {
        let want = match role {
            Role::Active => Want::Carry,
            Role::Backup => Want::Drain,
            Role::Standby if used.contains(id) => Want::Drain,
            Role::Standby => Want::Standby,
        };
        (id.clone(), want)
    }))
    .with_steer(steer)
}

/// The one owner of "down since" and of failover counts.
#[derive(Debug, Clone, Default)]
pub struct Outages {
    down_since: BTreeMap<LinkId, Instant>,
    failovers: BTreeMap<LinkId, u64>,
}

impl Outages {
    /// Books an edge; returns where it stands in the WAN's outage.
    ///
    /// An outage starts at the first `Down` and lasts through `Recovering` (and any fall back
    /// to `Down` from there) until the WAN is usable again. A failover is a `Down` entered from
    /// a usable state (or from start-up's `Unknown`), not a fall back from `Recovering`.
    pub fn handle(&mut self, tr: &Transition) -> OutageMark {
        match tr.to.kind() {
            StateKind::Down => {
                if !matches!(tr.from.kind(), StateKind::Recovering | StateKind::Down) {
                    *self.failovers.entry(tr.link.clone()).or_default() += 1;
                }
                let since = tr.to.since().unwrap_or(tr.at);
                let since = *self.down_since.entry(tr.link.clone()).or_insert(since);
                OutageMark::Ongoing { since }
            }
            StateKind::Up | StateKind::Degraded => match self.down_since.remove(&tr.link) {
                Some(since) => OutageMark::Ended {
                    since,
                    lasted: tr.at.saturating_duration_since(since),
                },
                None => OutageMark::None,
            },
            // Unknown again (probing stopped) leaves an outage open in the book, as Recovering does.
            StateKind::Recovering | StateKind::Unknown => self
                .down_since(&tr.link)
                .map_or(OutageMark::None, |since| OutageMark::Ongoing { since }),
        }
    }

    /// When the WAN's current outage began, if it is in one.
    pub fn down_since(&self, link: &LinkId) -> Option<Instant> {
        self.down_since.get(link).copied()
    }

    pub fn failovers(&self, link: &LinkId) -> u64 {
        self.failovers.get(link).copied().unwrap_or(0)
    }

    pub fn total_failovers(&self) -> u64 {
        self.failovers.values().sum()
    }
}

/// Every WAN's health, the decision and the outages.
#[derive(Debug)]
pub struct Engine {
    links: Vec<Link>,
    /// Priority and tier, in the order of `links`.
    ranks: Vec<(u32, Tier)>,
    tiering: Tiering,
    /// The traffic rules and their policies (`[[rule]]`, `[[policy]]`).
    traffic: Traffic,
    desired: Desired,
    outages: Outages,
    events: VecDeque<EngineEvent>,
}

impl Engine {
    pub fn new(wans: &[WanSpec], params: &Params, timing: Timing, now: Instant) -> Self {
        let links: Vec<Link> = wans
            .iter()
            .map(|w| Link::new(w.id.clone(), w.monitors.clone(), params, now).with_timing(timing))
            .collect();
        let ranks = wans.iter().map(|w| (w.priority, w.tier)).collect();
        let mut engine = Self {
            links,
            ranks,
            tiering: Tiering::default(),
            traffic: Traffic::default(),
            desired: policy::decide(&[], Tiering::default()),
            outages: Outages::default(),
            events: VecDeque::new(),
        };
        engine.desired = policy::decide(&engine.policy_input(), engine.tiering);
        engine
    }

    /// How traffic moves between backup tiers (the default: on down, draining).
    pub fn with_tiering(mut self, tiering: Tiering) -> Self {
        self.tiering = tiering;
        self.desired = self.decide(None);
        self
    }

    /// The traffic rules whose policies the decision also covers ([`Desired::steering`]).
    pub fn with_traffic(mut self, traffic: Traffic) -> Self {
        self.traffic = traffic;
        self.desired = self.decide(None);
        self
    }

    fn decide(&self, previous: Option<&Desired>) -> Desired {
        policy::decide_all(
            &self.policy_input(),
            self.tiering,
            &self.traffic.policies,
            previous,
        )
    }

    /// The engine of a configuration's WANs and `[health]`.
    pub fn from_config(config: &Config, timing: Timing, now: Instant) -> Self {
        let wans: Vec<WanSpec> = config
            .wans
            .iter()
            .map(|w| WanSpec {
                id: w.id.clone(),
                monitors: w.monitors.clone(),
                priority: w.priority,
                tier: w.tier,
            })
            .collect();
        Self::new(&wans, &config.health, timing, now)
            .with_tiering(Tiering {
                promote_on: config.balance.promote_on,
                handback: config.balance.handback,
            })
            .with_traffic(config.traffic.clone())
    }

    /// The links, in configuration order.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    pub fn outages(&self) -> &Outages {
        &self.outages
    }

    /// The reconcile request for the current decision ([`target_of`]); the seed's status
    /// globals say `down` while a WAN is down or recovering.
    pub fn request(&self) -> Request {
        let target = target_of(&self.desired, &self.traffic);
        let globals = self
            .links
            .iter()
            .map(|l| {
                let g = match l.state().kind() {
                    StateKind::Down | StateKind::Recovering => GlobalStatus::Down,
                    StateKind::Unknown | StateKind::Up | StateKind::Degraded => GlobalStatus::Up,
                };
                (l.id().clone(), g)
            })
            .collect();
        Request { target, globals }
    }

    /// How long a prober should wait for a reply: late replies still refine the RTT.
    pub fn max_wait(&self) -> Duration {
        self.links
            .iter()
            .map(Link::max_wait)
            .max()
            .unwrap_or_default()
    }

    /// The next probe to send now, if one is due. Call until `None`.
    pub fn poll_probe(&mut self, now: Instant) -> Option<(LinkId, ProbeRequest)> {
        self.links
            .iter_mut()
            .find_map(|l| l.poll_probe(now).map(|req| (l.id().clone(), req)))
    }

    /// Feeds the outcome of probe `seq` of `link` to `target`. Unknown links and probes are
    /// ignored.
    pub fn handle_result(
        &mut self,
        now: Instant,
        link: &LinkId,
        target: Ipv4Addr,
        seq: u16,
        result: ProbeResult,
    ) {
        if let Some(l) = self.links.iter_mut().find(|l| l.id() == link) {
            l.handle_result(now, target, seq, result);
        }
        self.collect();
    }

    /// Judges probes whose deadline passed and applies the time-based rules of every link.
    /// Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        for l in &mut self.links {
            l.handle_timeout(now);
        }
        self.collect();
    }

    /// When [`Engine::handle_timeout`] (or [`Engine::poll_probe`]) should next be called;
    /// `None` when no link has a timer (no targets).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links.iter().filter_map(Link::poll_timeout).min()
    }

    /// The next state change, oldest first.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }

    fn policy_input(&self) -> Vec<Candidate> {
        self.links
            .iter()
            .zip(&self.ranks)
            .map(|(l, (priority, tier))| Candidate {
                id: l.id().clone(),
                state: l.state(),
                priority: *priority,
                tier: *tier,
            })
            .collect()
    }

    /// Turns the links' transitions into events, one decision per edge (in link order, each
    /// link's edges oldest first), as if they had arrived one by one.
    fn collect(&mut self) {
        let mut states = self.policy_input();
        // The states the decision knew before these edges: each link's state before its first
        // pending edge.
        let mut pending: Vec<Vec<Transition>> = Vec::with_capacity(self.links.len());
        for (i, l) in self.links.iter_mut().enumerate() {
            let mut trs = Vec::new();
            while let Some(tr) = l.poll_transition() {
                trs.push(tr);
            }
            states[i].state = trs.first().map_or(l.state(), |t| t.from);
            pending.push(trs);
        }
        for (i, trs) in pending.into_iter().enumerate() {
            for tr in trs {
                states[i].state = tr.to;
                let outage = self.outages.handle(&tr);
                let decided = policy::decide_all(
                    &states,
                    self.tiering,
                    &self.traffic.policies,
                    Some(&self.desired),
                );
                let desired = (decided != self.desired).then(|| decided.clone());
                self.desired = decided;
                self.events.push_back(EngineEvent {
                    failovers: self.outages.failovers(&tr.link),
                    transition: tr,
                    outage,
                    desired,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::LinkState;

    use crate::health::examples::transition as tr;

    #[test]
    fn an_outage_lasts_from_the_first_down_until_usable_and_counts_once() {
        let t0 = crate::clock::mono();
        let s = Duration::from_secs;
        let (down, rec) = (
            LinkState::Down { since: t0 },
            LinkState::Recovering { since: t0 + s(10) },
        );
        let mut o = Outages::default();
        let isp1 = LinkId::new("ISP1");
        let ongoing = OutageMark::Ongoing { since: t0 };
        assert_eq!(o.handle(&tr("ISP1", t0, LinkState::Up, down)), ongoing);
        assert_eq!(o.down_since(&isp1), Some(t0));
        assert_eq!(o.handle(&tr("ISP1", t0 + s(10), down, rec)), ongoing);
        // Falls back from the hold-down: the same outage, no new failover.
        let again = LinkState::Down { since: t0 + s(20) };
        assert_eq!(o.handle(&tr("ISP1", t0 + s(20), rec, again)), ongoing);
        assert_eq!(o.failovers(&isp1), 1);
        assert_eq!(o.down_since(&isp1), Some(t0));
        let back = o.handle(&tr("ISP1", t0 + s(90), rec, LinkState::Up));
        assert_eq!(
            back,
            OutageMark::Ended {
                since: t0,
                lasted: s(90)
            }
        );
        assert_eq!(o.down_since(&isp1), None);
        // Found dead at start-up counts; a brown-out does not.
        let degraded = LinkState::Degraded { since: t0 };
        o.handle(&tr("ISP2", t0, LinkState::Unknown, down));
        o.handle(&tr("ISP1", t0, LinkState::Up, degraded));
        assert_eq!(o.failovers(&LinkId::new("ISP2")), 1);
        assert_eq!(o.total_failovers(), 2);
    }

    #[test]
    fn requests_follow_policy_and_the_globals_follow_the_states() {
        let t0 = crate::clock::mono();
        let config = Config::example();
        let e = Engine::from_config(&config, Timing::Arrival, t0);
        let r = e.request();
        assert!(r.target.wans.values().all(|w| *w == Want::Carry), "{r:?}");
        assert!(r.globals.values().all(|g| *g == GlobalStatus::Up));
        assert_eq!(e.desired().mode, policy::Mode::Normal);
        assert_eq!(e.poll_timeout().map(|t| t >= t0), Some(true));
    }

    /// Drives `e` in virtual time from `t0` until `until`: a probe of a WAN that is `alive`
    /// at its sending is answered after 20 ms, otherwise nothing comes back.
    fn drive(
        e: &mut Engine,
        t0: Instant,
        until: Duration,
        alive: impl Fn(&str, Duration) -> bool,
    ) -> Vec<EngineEvent> {
        let rtt = Duration::from_millis(20);
        let mut now = t0;
        let mut in_flight: Vec<(Instant, LinkId, ProbeRequest, ProbeResult)> = Vec::new();
        let mut out = Vec::new();
        loop {
            while let Some((id, req)) = e.poll_probe(now) {
                if alive(id.as_str(), now - t0) {
                    in_flight.push((now + rtt, id, req, ProbeResult::Reply { rtt }));
                } else {
                    in_flight.push((now + e.max_wait(), id, req, ProbeResult::NoReply));
                }
            }
            while let Some(ev) = e.poll_event() {
                out.push(ev);
            }
            let next = in_flight
                .iter()
                .map(|f| f.0)
                .chain(e.poll_timeout())
                .min()
                .map(|t| t.max(now + Duration::from_millis(1)));
            match next {
                Some(t) if t - t0 <= until => now = t,
                _ => return out,
            }
            let (due, rest): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|f| f.0 <= now);
            in_flight = rest;
            for (_, id, req, result) in due {
                e.handle_result(now, &id, req.target, req.seq, result);
            }
            e.handle_timeout(now);
        }
    }

    /// The engine remembers its last decision: a WAN still in its hold-down when every-WAN-down
    /// ends keeps carrying, rather than being switched off (and its connections flushed)
    /// seconds before it would come back on (issue 13).
    #[test]
    fn leaving_all_down_keeps_a_recovering_wan_on() {
        let t0 = crate::clock::mono();
        let config = Config::example();
        let mut e = Engine::from_config(&config, Timing::Arrival, t0);
        let s = Duration::from_secs;
        // Both WANs die at 10 s; ISP2 answers again at 40 s, ISP1 at 45 s.
        let events = drive(&mut e, t0, s(100), |wan, at| match wan {
            "ISP1" => at < s(10) || at >= s(45),
            _ => at < s(10) || at >= s(40),
        });
        let kinds: Vec<(String, StateKind)> = events
            .iter()
            .map(|ev| (ev.transition.link.to_string(), ev.transition.to.kind()))
            .collect();
        let isp = |n: &str, k: StateKind| (n.to_string(), k);
        let up2 = kinds
            .iter()
            .rposition(|k| *k == isp("ISP2", StateKind::Up))
            .expect("ISP2 comes back");
        let up1 = kinds
            .iter()
            .rposition(|k| *k == isp("ISP1", StateKind::Up))
            .expect("ISP1 comes back");
        assert!(up2 < up1, "{kinds:?}");
        let all_down = events
            .iter()
            .filter_map(|ev| ev.desired.as_ref())
            .any(|d| d.mode == policy::Mode::AllDown);
        assert!(all_down, "{events:?}");
        // When ISP2 is up again ISP1 is still in its hold-down, and keeps carrying.
        let decided = events[..=up2]
            .iter()
            .rev()
            .find_map(|ev| ev.desired.as_ref())
            .expect("a decision");
        assert_eq!(decided.role(&LinkId::new("ISP1")), Some(Role::Active));
        assert_eq!(decided.mode, policy::Mode::Normal);
        // One failover each, and the outage ends with its length.
        assert_eq!(events[up1].failovers, 1);
        let down_for = events[up1].outage.lasted().expect("an outage ends");
        assert!(down_for > s(60) && down_for < s(75), "{down_for:?}");
        assert!(e.request().target.wans.values().all(|w| *w == Want::Carry));
    }
}
