//! Policy: link states → the desired router state. Which WANs carry traffic (their routes and PCC
//! rules on), PCC buckets per WAN by weight, the preferred WAN, and backup tiers: a WAN of a
//! higher tier carries only while no WAN of the tiers below can. Never turns off the last WAN:
//! with every WAN down all are enabled, so the first that returns carries traffic at once. Pure:
//! no I/O, no clock, no knowledge of RouterOS objects (the reconciler maps roles to objects).

use std::collections::{BTreeMap, BTreeSet};

use crate::health::LinkState;
use crate::traffic::{Policy, PolicyKind};
use crate::types::{Handback, LinkId, Promotion, Tier};

/// What a WAN does in the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Its routes and PCC rules are on: it takes new connections.
    Active,
    /// A WAN of a tier above the carrying one that answers, with [`Handback::Drain`]: no new
    /// connections (PCC rules and main route off), but the route in its own table stays on, so
    /// the connections it has go on until they end: those it carried before a lower tier took
    /// traffic back, and those that came in through it (replies leave by the WAN they came in
    /// on). Decided from the states alone, so a restart of uplinkd does not flush them.
    Backup,
    /// Its routes and PCC rules are off (its buckets fall through to `main`); probing continues.
    Standby,
}

/// One WAN as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: LinkId,
    pub state: LinkState,
    /// Lower is preferred for the main table.
    pub priority: u32,
    pub tier: Tier,
}

/// How traffic moves between backup tiers (`[balance] promote_on`, `handback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tiering {
    pub promote_on: Promotion,
    pub handback: Handback,
}

/// Whether the desired state is the normal one or the every-WAN-down fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Normal,
    /// Every WAN is down (or recovering): all are Active, never none, so whichever returns
    /// first carries traffic without waiting for uplinkd.
    AllDown,
}

/// The desired router state derived from link states.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Desired {
    pub roles: BTreeMap<LinkId, Role>,
    /// The active WAN with the lowest priority value (main table, router-originated traffic);
    /// `None` only when there are no WANs.
    pub preferred: Option<LinkId>,
    pub mode: Mode,
    /// The tier whose WANs carry; `None` when none can ([`Mode::AllDown`]) or there are no WANs.
    pub carrying: Option<Tier>,
    /// Per named policy (`[[policy]]`), the WANs its rules' connections may take now; empty:
    /// none is usable, its last resort applies.
    pub steering: BTreeMap<String, BTreeSet<LinkId>>,
}

impl Desired {
    pub fn role(&self, wan: &LinkId) -> Option<Role> {
        self.roles.get(wan).copied()
    }

    pub fn active(&self) -> impl Iterator<Item = &LinkId> {
        self.roles
            .iter()
            .filter(|(_, r)| **r == Role::Active)
            .map(|(id, _)| id)
    }
}

pub use crate::traffic::{PccBucket, pcc_layout};

/// Link states → desired roles. `wans` is in configuration order.
///
/// The carrying tier is the lowest whose WANs can carry: one with an `Up` or `Unknown` WAN (no
/// failover without evidence), or, with [`Promotion::Down`], one with a `Degraded` WAN. If no
/// tier has an `Up`/`Unknown` WAN, the lowest tier with a `Degraded` one carries whatever the
/// promotion. In the carrying tier:
///
/// - `Up` and `Unknown` are Active;
/// - `Degraded` is Standby, unless no `Up`/`Unknown` WAN is left in the tier, then Active;
/// - `Down` and `Recovering` are Standby.
///
/// Every WAN of another tier is Standby, except, with [`Handback::Drain`], a WAN of a tier above
/// the carrying one that answers (`Up`, `Unknown` or `Degraded`): it is [`Role::Backup`], so its
/// connections go on. When every WAN is Down or Recovering, all are Active ([`Mode::AllDown`]). The preferred WAN is the Active one with the lowest priority value,
/// ties in configuration order.
pub fn decide(wans: &[Candidate], tiering: Tiering) -> Desired {
    decide_after(wans, tiering, None)
}

/// [`decide`], knowing the previous decision: a `Recovering` WAN that was Active stays Active
/// until it is `Up` (or fails again). That happens only after [`Mode::AllDown`], where every WAN
/// carries: when another WAN comes back first, switching a WAN that answers and carries
/// connections off would cost those connections (a route change strands a masqueraded
/// connection, so they are flushed) only to switch it on again at the end of its hold-down,
/// seconds later. A WAN recovering from a normal failover was Standby and stays Standby.
pub fn decide_after(wans: &[Candidate], tiering: Tiering, previous: Option<&Desired>) -> Desired {
    decide_all(wans, tiering, &[], previous)
}

/// [`decide_after`] with the named policies' [`Desired::steering`].
pub fn decide_all(
    wans: &[Candidate],
    tiering: Tiering,
    policies: &[Policy],
    previous: Option<&Desired>,
) -> Desired {
    let mut d = decide_now(wans, tiering);
    if let Some(prev) = previous {
        for w in wans {
            if matches!(w.state, LinkState::Recovering { .. })
                && prev.role(&w.id) == Some(Role::Active)
            {
                d.roles.insert(w.id.clone(), Role::Active);
            }
        }
    }
    d.steering = policies
        .iter()
        .map(|p| (p.name.clone(), steer(p, wans, tiering, d.mode)))
        .collect();
    d
}

/// The WANs a named policy's connections may take, from the link states:
///
/// - `balanced`: its usable WANs of its lowest usable tier, as the default policy chooses among
///   all WANs ([`decide`]), weight 0 excepted;
/// - `failover` and `only`: its `Up`/`Unknown` WANs, or, when none is, its `Degraded` ones (the
///   rendered picks are in the order written, so the first of these takes the connection).
///
/// With every WAN down ([`Mode::AllDown`]) every WAN of the policy may carry, as every WAN does
/// for the default policy: no failover without evidence of a WAN that works.
pub fn steer(
    policy: &Policy,
    wans: &[Candidate],
    tiering: Tiering,
    mode: Mode,
) -> BTreeSet<LinkId> {
    let members: Vec<Candidate> = policy
        .usable_wans()
        .filter_map(|id| wans.iter().find(|w| w.id == *id).cloned())
        .collect();
    if mode == Mode::AllDown {
        return members.into_iter().map(|c| c.id).collect();
    }
    let pick = |f: Usable| -> BTreeSet<LinkId> {
        members
            .iter()
            .filter(|c| f(&c.state))
            .map(|c| c.id.clone())
            .collect()
    };
    match policy.kind {
        PolicyKind::Balanced => match carrying(&members, tiering) {
            Some((tier, usable)) => members
                .iter()
                .filter(|c| c.tier == tier && usable(&c.state))
                .map(|c| c.id.clone())
                .collect(),
            None => BTreeSet::new(),
        },
        PolicyKind::Failover | PolicyKind::Only => {
            let healthy = pick(healthy);
            if healthy.is_empty() {
                pick(degraded)
            } else {
                healthy
            }
        }
    }
}

fn healthy(s: &LinkState) -> bool {
    matches!(s, LinkState::Up | LinkState::Unknown)
}

fn degraded(s: &LinkState) -> bool {
    matches!(s, LinkState::Degraded { .. })
}

/// Which WANs of a tier carry: [`healthy`] or [`degraded`] ones.
type Usable = fn(&LinkState) -> bool;

/// The carrying tier and which of its WANs carry, if any tier can.
fn carrying(wans: &[Candidate], tiering: Tiering) -> Option<(Tier, Usable)> {
    let mut tiers: Vec<Tier> = wans.iter().map(|w| w.tier).collect();
    tiers.sort();
    tiers.dedup();
    let has = |t: Tier, f: Usable| wans.iter().any(|w| w.tier == t && f(&w.state));
    for &t in &tiers {
        if has(t, healthy) {
            return Some((t, healthy));
        }
        if tiering.promote_on == Promotion::Down && has(t, degraded) {
            return Some((t, degraded));
        }
    }
    // Promotion on degraded, and no tier has a healthy WAN: the lowest degraded tier.
    tiers
        .into_iter()
        .find(|&t| has(t, degraded))
        .map(|t| (t, degraded as Usable))
}

fn decide_now(wans: &[Candidate], tiering: Tiering) -> Desired {
    let chosen = carrying(wans, tiering);
    let mode = if !wans.is_empty() && chosen.is_none() {
        Mode::AllDown
    } else {
        Mode::Normal
    };
    let roles: BTreeMap<LinkId, Role> = wans
        .iter()
        .map(|w| {
            let active = match chosen {
                Some((tier, usable)) => w.tier == tier && usable(&w.state),
                None => true,
            };
            let answers = matches!(
                w.state,
                LinkState::Up | LinkState::Unknown | LinkState::Degraded { .. }
            );
            let above = chosen.is_some_and(|(tier, _)| w.tier > tier);
            let role = if active {
                Role::Active
            } else if tiering.handback == Handback::Drain && answers && above {
                Role::Backup
            } else {
                Role::Standby
            };
            (w.id.clone(), role)
        })
        .collect();
    let preferred = wans
        .iter()
        .enumerate()
        .filter(|(_, w)| roles.get(&w.id) == Some(&Role::Active))
        .min_by_key(|(i, w)| (w.priority, *i))
        .map(|(_, w)| w.id.clone());
    Desired {
        roles,
        preferred,
        mode,
        carrying: chosen.map(|(t, _)| t),
        steering: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn id(s: &str) -> LinkId {
        LinkId::new(s)
    }

    fn tier(n: u8) -> Tier {
        Tier::new(n).unwrap()
    }

    /// A first-tier WAN.
    fn c(name: &str, state: LinkState, priority: u32) -> Candidate {
        Candidate {
            id: id(name),
            state,
            priority,
            tier: Tier::FIRST,
        }
    }

    fn decide(wans: &[Candidate]) -> Desired {
        super::decide(wans, Tiering::default())
    }

    fn decide_after(wans: &[Candidate], previous: Option<&Desired>) -> Desired {
        super::decide_after(wans, Tiering::default(), previous)
    }

    #[test]
    fn decide_table() {
        let t = crate::clock::mono();
        let up = LinkState::Up;
        let unk = LinkState::Unknown;
        let deg = LinkState::Degraded { since: t };
        let down = LinkState::Down { since: t };
        let rec = LinkState::Recovering { since: t };
        use Role::{Active as A, Standby as S};
        // (states of ISP1, ISP2, ISP3 with priorities 1, 2, 3) -> (roles, preferred, mode)
        type Row = ([LinkState; 3], [Role; 3], &'static str, Mode);
        let table: &[Row] = &[
            ([up, up, up], [A, A, A], "ISP1", Mode::Normal),
            ([down, up, up], [S, A, A], "ISP2", Mode::Normal),
            ([unk, up, down], [A, A, S], "ISP1", Mode::Normal),
            ([deg, up, up], [S, A, A], "ISP2", Mode::Normal),
            ([deg, down, deg], [A, S, A], "ISP1", Mode::Normal),
            ([down, deg, rec], [S, A, S], "ISP2", Mode::Normal),
            ([down, down, down], [A, A, A], "ISP1", Mode::AllDown),
            ([rec, down, rec], [A, A, A], "ISP1", Mode::AllDown),
            ([rec, down, up], [S, S, A], "ISP3", Mode::Normal),
            ([unk, unk, unk], [A, A, A], "ISP1", Mode::Normal),
        ];
        for (states, roles, preferred, mode) in table {
            let wans: Vec<Candidate> = ["ISP1", "ISP2", "ISP3"]
                .iter()
                .zip(states)
                .enumerate()
                .map(|(i, (n, s))| c(n, *s, i as u32 + 1))
                .collect();
            let d = decide(&wans);
            let got: Vec<Role> = ["ISP1", "ISP2", "ISP3"]
                .iter()
                .map(|n| d.roles[&id(n)])
                .collect();
            assert_eq!(got, roles.to_vec(), "{states:?}");
            assert_eq!(d.preferred, Some(id(preferred)), "{states:?}");
            assert_eq!(d.mode, *mode, "{states:?}");
            assert!(d.active().count() > 0, "never none active: {states:?}");
        }
    }

    #[test]
    fn a_wan_recovering_when_all_down_ends_keeps_carrying_until_up() {
        let t = crate::clock::mono();
        let rec = LinkState::Recovering { since: t };
        let down = LinkState::Down { since: t };
        let w = |a: LinkState, b: LinkState| vec![c("ISP1", a, 1), c("ISP2", b, 2)];
        // Every WAN down: all carry. ISP1 answers again (in its hold-down), still all-down mode.
        let all_down = decide(&w(down, down));
        let d = decide_after(&w(rec, down), Some(&all_down));
        assert_eq!(d.mode, Mode::AllDown);
        // ISP2 comes back first: ISP1 keeps carrying, not switched off for seconds.
        let d = decide_after(&w(rec, LinkState::Up), Some(&d));
        assert_eq!(d.mode, Mode::Normal);
        assert_eq!(d.role(&id("ISP1")), Some(Role::Active));
        assert_eq!(
            d.preferred,
            Some(id("ISP2")),
            "the WAN that is up is preferred"
        );
        // Still recovering at the next decision: still Active; up: Active; failing again: off.
        let d = decide_after(&w(rec, LinkState::Up), Some(&d));
        assert_eq!(d.role(&id("ISP1")), Some(Role::Active));
        let failed = decide_after(&w(down, LinkState::Up), Some(&d));
        assert_eq!(failed.role(&id("ISP1")), Some(Role::Standby));
        // A WAN recovering from a normal failover stays Standby through its hold-down.
        let normal = decide(&w(down, LinkState::Up));
        let d = decide_after(&w(rec, LinkState::Up), Some(&normal));
        assert_eq!(d.role(&id("ISP1")), Some(Role::Standby));
    }

    #[test]
    fn preferred_follows_priority_then_order() {
        let wans = [
            c("A", LinkState::Up, 5),
            c("B", LinkState::Up, 1),
            c("C", LinkState::Up, 1),
        ];
        assert_eq!(decide(&wans).preferred, Some(id("B")));
        assert_eq!(decide(&[]).preferred, None);
        assert_eq!(decide(&[]).mode, Mode::Normal);
    }

    #[test]
    fn pcc_layout_by_weight() {
        // (weights) -> owner of each bucket
        let table: &[(&[u32], &[&str])] = &[
            (&[1, 1], &["A", "B"]),
            (&[2, 2, 1], &["A", "A", "B", "B", "C"]),
            (&[3, 0, 1], &["A", "A", "A", "C"]),
            (&[0, 0], &[]),
        ];
        for (weights, owners) in table {
            let wans: Vec<(LinkId, u32, Tier)> = ["A", "B", "C"]
                .iter()
                .zip(weights.iter())
                .map(|(n, w)| (id(n), *w, Tier::FIRST))
                .collect();
            let layout = pcc_layout(&wans);
            let got: Vec<&str> = layout.iter().map(|b| b.wan.as_str()).collect();
            assert_eq!(got, owners.to_vec(), "{weights:?}");
            for (i, b) in layout.iter().enumerate() {
                assert_eq!(b.index, i as u32);
                assert_eq!(b.total, weights.iter().sum::<u32>());
            }
        }
    }

    #[test]
    fn each_tier_has_its_own_pcc_total() {
        let wans = [
            (id("fibre"), 2, tier(1)),
            (id("LTE"), 1, tier(2)),
            (id("cable"), 1, tier(1)),
            (id("LTE2"), 1, tier(2)),
        ];
        let layout = pcc_layout(&wans);
        let got: Vec<(&str, u32, u32)> = layout
            .iter()
            .map(|b| (b.wan.as_str(), b.index, b.total))
            .collect();
        assert_eq!(
            got,
            [
                ("fibre", 0, 3),
                ("fibre", 1, 3),
                ("cable", 2, 3),
                ("LTE", 0, 2),
                ("LTE2", 1, 2)
            ]
        );
    }

    /// fibre and cable in tier 1, LTE in tier 2.
    fn three(fibre: LinkState, cable: LinkState, lte: LinkState) -> Vec<Candidate> {
        let mut lte = c("LTE", lte, 3);
        lte.tier = tier(2);
        vec![c("fibre", fibre, 1), c("cable", cable, 2), lte]
    }

    #[test]
    fn a_backup_tier_carries_only_while_no_lower_tier_can() {
        let t = crate::clock::mono();
        let (up, unk) = (LinkState::Up, LinkState::Unknown);
        let deg = LinkState::Degraded { since: t };
        let down = LinkState::Down { since: t };
        let rec = LinkState::Recovering { since: t };
        use Role::{Active as A, Standby as S};
        // (fibre, cable, LTE), promotion -> roles, carrying tier, mode
        type Row = ([LinkState; 3], Promotion, [Role; 3], Option<u8>, Mode);
        let table: &[Row] = &[
            (
                [up, up, up],
                Promotion::Down,
                [A, A, S],
                Some(1),
                Mode::Normal,
            ),
            // Start-up: no evidence, tier 1 carries, the backup stays off.
            (
                [unk, unk, unk],
                Promotion::Down,
                [A, A, S],
                Some(1),
                Mode::Normal,
            ),
            (
                [down, up, up],
                Promotion::Down,
                [S, A, S],
                Some(1),
                Mode::Normal,
            ),
            (
                [down, rec, up],
                Promotion::Down,
                [S, S, A],
                Some(2),
                Mode::Normal,
            ),
            // A degraded tier-1 WAN still carries, unless promotion is on degraded.
            (
                [down, deg, up],
                Promotion::Down,
                [S, A, S],
                Some(1),
                Mode::Normal,
            ),
            (
                [down, deg, up],
                Promotion::Degraded,
                [S, S, A],
                Some(2),
                Mode::Normal,
            ),
            (
                [deg, deg, deg],
                Promotion::Degraded,
                [A, A, S],
                Some(1),
                Mode::Normal,
            ),
            (
                [down, deg, down],
                Promotion::Degraded,
                [S, A, S],
                Some(1),
                Mode::Normal,
            ),
            (
                [down, down, deg],
                Promotion::Down,
                [S, S, A],
                Some(2),
                Mode::Normal,
            ),
            // Nothing answers: everything carries, the backup too.
            (
                [down, rec, down],
                Promotion::Down,
                [A, A, A],
                None,
                Mode::AllDown,
            ),
        ];
        for (states, promote_on, roles, carrying, mode) in table {
            let tiering = Tiering {
                promote_on: *promote_on,
                handback: Handback::Flush,
            };
            let d = super::decide(&three(states[0], states[1], states[2]), tiering);
            let got: Vec<Role> = ["fibre", "cable", "LTE"]
                .iter()
                .map(|n| d.roles[&id(n)])
                .collect();
            assert_eq!(got, roles.to_vec(), "{states:?} {promote_on:?}");
            assert_eq!(d.carrying.map(Tier::get), *carrying, "{states:?}");
            assert_eq!(d.mode, *mode, "{states:?}");
        }
    }

    #[test]
    fn a_backup_handed_back_drains_or_goes_off_as_configured() {
        let t = crate::clock::mono();
        let down = LinkState::Down { since: t };
        let up = LinkState::Up;
        let drain = Tiering {
            promote_on: Promotion::Down,
            handback: Handback::Drain,
        };
        let flush = Tiering {
            handback: Handback::Flush,
            ..drain
        };
        let lte = id("LTE");
        // Both tier-1 WANs down: LTE carries and is the preferred WAN.
        let promoted = super::decide(&three(down, down, up), drain);
        assert_eq!(promoted.role(&lte), Some(Role::Active));
        assert_eq!(promoted.preferred, Some(lte.clone()));
        // Fibre returns: LTE drains (or goes off), fibre carries and is preferred.
        let back = three(up, down, up);
        let d = super::decide_after(&back, drain, Some(&promoted));
        assert_eq!(d.role(&lte), Some(Role::Backup));
        assert_eq!(d.role(&id("fibre")), Some(Role::Active));
        assert_eq!(d.preferred, Some(id("fibre")));
        assert_eq!(d.active().collect::<Vec<_>>(), [&id("fibre")]);
        let f = super::decide_after(&back, flush, Some(&promoted));
        assert_eq!(f.role(&lte), Some(Role::Standby));
        // It stays a backup while LTE answers; it goes off when LTE fails.
        let again = super::decide_after(&back, drain, Some(&d));
        assert_eq!(again.role(&lte), Some(Role::Backup));
        let failed = super::decide_after(&three(up, down, down), drain, Some(&again));
        assert_eq!(failed.role(&lte), Some(Role::Standby));
        // Tier 1 failing again while LTE drains: LTE carries again.
        let d = super::decide_after(&three(down, down, up), drain, Some(&again));
        assert_eq!(d.role(&lte), Some(Role::Active));
        // Decided from the states alone: the same after a restart (no previous decision), and
        // for a backup that never carried; a failed one is off.
        assert_eq!(super::decide(&back, drain).role(&lte), Some(Role::Backup));
        let unknown = LinkState::Unknown;
        let start = super::decide(&three(unknown, unknown, unknown), drain);
        assert_eq!(start.role(&lte), Some(Role::Backup));
        assert_eq!(start.active().count(), 2);
        assert_eq!(
            super::decide(&three(up, up, down), drain).role(&lte),
            Some(Role::Standby)
        );
    }

    fn named(kind: crate::traffic::PolicyKind, wans: &[&str]) -> Policy {
        Policy {
            name: "p".into(),
            kind,
            members: wans
                .iter()
                .map(|w| crate::traffic::Member {
                    wan: id(w),
                    weight: 1,
                })
                .collect(),
            last_resort: crate::traffic::LastResort::Drop,
        }
    }

    fn set(wans: &[&str]) -> BTreeSet<LinkId> {
        wans.iter().map(|w| id(w)).collect()
    }

    #[test]
    fn a_named_policy_uses_its_own_wans_by_its_kind() {
        use crate::traffic::PolicyKind::*;
        let t = crate::clock::mono();
        let degraded = LinkState::Degraded { since: t };
        let lte = Candidate {
            id: id("LTE"),
            state: LinkState::Up,
            priority: 3,
            tier: tier(2),
        };
        let wans = |a: LinkState, b: LinkState| vec![c("ISP1", a, 1), c("ISP2", b, 2), lte.clone()];
        let steer_of = |p: &Policy, w: &[Candidate]| {
            let d = decide_all(w, Tiering::default(), std::slice::from_ref(p), None);
            d.steering[&p.name].clone()
        };
        let down = || LinkState::Down { since: t };
        let all = named(Balanced, &["ISP1", "ISP2", "LTE"]);
        assert_eq!(
            steer_of(&all, &wans(LinkState::Up, LinkState::Up)),
            set(&["ISP1", "ISP2"])
        );
        assert_eq!(steer_of(&all, &wans(down(), LinkState::Up)), set(&["ISP2"]));
        assert_eq!(
            steer_of(&all, &wans(down(), down())),
            set(&["LTE"]),
            "tier 2 of the policy"
        );
        let order = named(Failover, &["ISP2", "ISP1"]);
        assert_eq!(
            steer_of(&order, &wans(LinkState::Up, degraded)),
            set(&["ISP1"]),
            "up before degraded"
        );
        assert_eq!(
            steer_of(&order, &wans(down(), degraded)),
            set(&["ISP2"]),
            "degraded before nothing"
        );
        let only = named(Only, &["ISP1"]);
        assert!(
            steer_of(&only, &wans(down(), LinkState::Up)).is_empty(),
            "its last resort applies"
        );
        // Every WAN down: every WAN of the policy is on, as for the default policy.
        let dead = vec![c("ISP1", down(), 1), c("ISP2", down(), 2)];
        assert_eq!(steer_of(&only, &dead), set(&["ISP1"]));
    }
}
