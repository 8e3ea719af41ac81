//! Policy: link states → the desired router state. Which WANs carry traffic (their routes and PCC
//! rules on), PCC buckets per WAN by weight, the preferred WAN. Never turns off the last WAN: with
//! every WAN down all are enabled, so the first that returns carries traffic at once. Pure: no
//! I/O, no clock, no knowledge of RouterOS objects (the reconciler maps roles to objects).

use std::collections::BTreeMap;

use crate::health::LinkState;
use crate::types::LinkId;

/// What a WAN does in the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Its routes and PCC rules are on: it takes new connections.
    Active,
    /// Its routes and PCC rules are off (its buckets go to active WANs); probing continues.
    Standby,
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

/// One PCC bucket: `per-connection-classifier=...:total/index` marks connections for `wan`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PccBucket {
    pub index: u32,
    pub total: u32,
    pub wan: LinkId,
}

/// Link states → desired roles. `wans` is `(id, state, priority)` in configuration order;
/// lower priority values are preferred, ties keep configuration order.
///
/// - `Up` and `Unknown` are Active (no failover without evidence);
/// - `Degraded` is Standby, unless no `Up`/`Unknown` WAN is left, then Active;
/// - `Down` and `Recovering` are Standby, unless every WAN is Down or Recovering: then all
///   are Active ([`Mode::AllDown`]).
pub fn decide(wans: &[(LinkId, LinkState, u32)]) -> Desired {
    decide_after(wans, None)
}

/// [`decide`], knowing the previous decision: a `Recovering` WAN that was Active stays Active
/// until it is `Up` (or fails again). That happens only after [`Mode::AllDown`], where every WAN
/// carries: when another WAN comes back first, switching a WAN that answers and carries
/// connections off would cost those connections (a route change strands a masqueraded
/// connection, so they are flushed) only to switch it on again at the end of its hold-down,
/// seconds later. A WAN recovering from a normal failover was Standby and stays Standby.
pub fn decide_after(wans: &[(LinkId, LinkState, u32)], previous: Option<&Desired>) -> Desired {
    let mut d = decide_now(wans);
    if let Some(prev) = previous {
        for (id, s, _) in wans {
            if matches!(s, LinkState::Recovering { .. }) && prev.role(id) == Some(Role::Active) {
                d.roles.insert(id.clone(), Role::Active);
            }
        }
    }
    d
}

fn decide_now(wans: &[(LinkId, LinkState, u32)]) -> Desired {
    let healthy = |s: &LinkState| matches!(s, LinkState::Up | LinkState::Unknown);
    let degraded = |s: &LinkState| matches!(s, LinkState::Degraded { .. });
    let usable: fn(&LinkState) -> bool = if wans.iter().any(|(_, s, _)| healthy(s)) {
        |s| matches!(s, LinkState::Up | LinkState::Unknown)
    } else if wans.iter().any(|(_, s, _)| degraded(s)) {
        |s| matches!(s, LinkState::Degraded { .. })
    } else {
        |_| true
    };
    let mode = if !wans.is_empty() && wans.iter().all(|(_, s, _)| !healthy(s) && !degraded(s)) {
        Mode::AllDown
    } else {
        Mode::Normal
    };
    let roles: BTreeMap<LinkId, Role> = wans
        .iter()
        .map(|(id, s, _)| {
            (
                id.clone(),
                if usable(s) {
                    Role::Active
                } else {
                    Role::Standby
                },
            )
        })
        .collect();
    let preferred = wans
        .iter()
        .enumerate()
        .filter(|(_, (_, s, _))| usable(s))
        .min_by_key(|(i, (_, _, prio))| (*prio, *i))
        .map(|(_, (id, _, _))| id.clone());
    Desired {
        roles,
        preferred,
        mode,
    }
}

/// PCC buckets by weight, in configuration order: weights 2:2:1 give 5 buckets, indices 0-1 to
/// the first WAN, 2-3 to the second, 4 to the third. Weight 0 gets no bucket.
pub fn pcc_layout(wans: &[(LinkId, u32)]) -> Vec<PccBucket> {
    let total: u32 = wans.iter().map(|(_, w)| *w).sum();
    let mut index = 0;
    let mut out = Vec::with_capacity(total as usize);
    for (wan, weight) in wans {
        for _ in 0..*weight {
            out.push(PccBucket {
                index,
                total,
                wan: wan.clone(),
            });
            index += 1;
        }
    }
    out
}

/// The layout with each Standby WAN's buckets handed to Active WANs, keeping `total` (so a
/// failover rewrites only the failed WAN's rules, and existing connections of healthy WANs
/// keep their hash). Each orphaned bucket goes to the Active WAN with the fewest buckets per
/// unit of weight (ties: configuration order). With no Active WAN the layout is unchanged.
pub fn pcc_assign(layout: &[PccBucket], desired: &Desired) -> Vec<PccBucket> {
    // Weights and order as they appear in the layout.
    let mut order: Vec<(LinkId, u32)> = Vec::new();
    for b in layout {
        match order.iter_mut().find(|(id, _)| *id == b.wan) {
            Some((_, w)) => *w += 1,
            None => order.push((b.wan.clone(), 1)),
        }
    }
    let active: Vec<(LinkId, u32)> = order
        .iter()
        .filter(|(id, _)| desired.role(id) == Some(Role::Active))
        .cloned()
        .collect();
    if active.is_empty() {
        return layout.to_vec();
    }
    let mut count: Vec<u32> = active.iter().map(|(_, w)| *w).collect();
    layout
        .iter()
        .map(|b| {
            if desired.role(&b.wan) == Some(Role::Active) {
                return b.clone();
            }
            // Fewest buckets per weight: compare count_i/w_i without floats.
            let pick = (0..active.len())
                .min_by(|&a, &c| {
                    (u64::from(count[a]) * u64::from(active[c].1))
                        .cmp(&(u64::from(count[c]) * u64::from(active[a].1)))
                        .then(a.cmp(&c))
                })
                .unwrap_or(0); // invariant: `active` is not empty (checked above)
            count[pick] += 1;
            PccBucket {
                index: b.index,
                total: b.total,
                wan: active[pick].0.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn id(s: &str) -> LinkId {
        LinkId::new(s)
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
            let wans: Vec<(LinkId, LinkState, u32)> = ["ISP1", "ISP2", "ISP3"]
                .iter()
                .zip(states)
                .enumerate()
                .map(|(i, (n, s))| (id(n), *s, i as u32 + 1))
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
        let w = |a: LinkState, b: LinkState| vec![(id("ISP1"), a, 1), (id("ISP2"), b, 2)];
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
            (id("A"), LinkState::Up, 5),
            (id("B"), LinkState::Up, 1),
            (id("C"), LinkState::Up, 1),
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
            let wans: Vec<(LinkId, u32)> = ["A", "B", "C"]
                .iter()
                .zip(weights.iter())
                .map(|(n, w)| (id(n), *w))
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
    fn pcc_assign_hands_standby_buckets_to_active_wans() {
        let t = crate::clock::mono();
        let down = LinkState::Down { since: t };
        // (weights, states) -> owners after assignment
        type Row = (&'static [u32], [LinkState; 3], &'static [&'static str]);
        let table: &[Row] = &[
            (&[1, 1, 1], [LinkState::Up; 3], &["A", "B", "C"]),
            (
                &[1, 1, 0],
                [down, LinkState::Up, LinkState::Up],
                &["B", "B"],
            ),
            (
                &[2, 2, 1],
                [down, LinkState::Up, LinkState::Up],
                &["B", "C", "B", "B", "C"],
            ),
            (
                &[2, 2, 1],
                [LinkState::Up, down, down],
                &["A", "A", "A", "A", "A"],
            ),
            // all down: everything active, layout unchanged
            (&[2, 1, 1], [down, down, down], &["A", "A", "B", "C"]),
        ];
        for (weights, states, owners) in table {
            let names = ["A", "B", "C"];
            let wans: Vec<(LinkId, u32)> = names
                .iter()
                .zip(weights.iter())
                .map(|(n, w)| (id(n), *w))
                .collect();
            let layout = pcc_layout(&wans);
            let desired = decide(
                &names
                    .iter()
                    .zip(states.iter())
                    .map(|(n, s)| (id(n), *s, 1))
                    .collect::<Vec<_>>(),
            );
            let assigned = pcc_assign(&layout, &desired);
            let got: Vec<&str> = assigned.iter().map(|b| b.wan.as_str()).collect();
            assert_eq!(got, owners.to_vec(), "{weights:?} {states:?}");
            let same: Vec<(u32, u32)> = assigned.iter().map(|b| (b.index, b.total)).collect();
            let orig: Vec<(u32, u32)> = layout.iter().map(|b| (b.index, b.total)).collect();
            assert_eq!(same, orig, "indices and total are kept");
        }
    }
}
