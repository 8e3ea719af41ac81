//! Reconcile planner tables: idempotence over every combination of observed states and wants,
//! foreign objects untouched, stale objects removed once, missing objects reported not invented,
//! every WAN down → all enabled.

use std::collections::BTreeSet;

use uplinkd::reconcile::plan::{self, Action, Menu, Observed, RosId, Switch, Target, Want};
use uplinkd::types::LinkId;

fn rid(s: &str) -> RosId {
    RosId::parse(s).unwrap()
}

fn obj(menu: Menu, id: &str, comment: &str, state: Switch) -> Observed {
    Observed {
        menu,
        id: rid(id),
        comment: comment.into(),
        state,
    }
}

fn l(s: &str) -> LinkId {
    LinkId::new(s)
}

/// The switched objects of two WANs (2 routes + 2 PCC rules each, weight 2:2).
const SWITCHED: [(Menu, &str, &str); 8] = [
    (Menu::Route, "*10", "uplinkd:route:ISP1-main"),
    (Menu::Route, "*11", "uplinkd:route:ISP1-table"),
    (Menu::Route, "*20", "uplinkd:route:ISP2-main"),
    (Menu::Route, "*21", "uplinkd:route:ISP2-table"),
    (Menu::Mangle, "*A0", "uplinkd:pcc:ISP1-0"),
    (Menu::Mangle, "*A1", "uplinkd:pcc:ISP1-1"),
    (Menu::Mangle, "*B2", "uplinkd:pcc:ISP2-2"),
    (Menu::Mangle, "*B3", "uplinkd:pcc:ISP2-3"),
];

/// Objects that must never be planned: untagged, foreign tags, uplinkd objects of other
/// sections, the cross-WAN fallback routes, a tag in the wrong menu.
fn foreign() -> Vec<Observed> {
    vec![
        obj(Menu::Route, "*1", "", Switch::Disabled),
        obj(Menu::Route, "*2", "defconf", Switch::Enabled),
        obj(
            Menu::Route,
            "*3",
            "uplinkd:route:ISP1-fallback",
            Switch::Disabled,
        ),
        obj(
            Menu::Route,
            "*4",
            "uplinkd:probe:ISP1-main",
            Switch::Disabled,
        ),
        obj(Menu::Route, "*5", "Default: ISP1", Switch::Disabled),
        obj(
            Menu::Mangle,
            "*6",
            "uplinkd:mangle:ISP1-0",
            Switch::Disabled,
        ),
        obj(
            Menu::Mangle,
            "*7",
            "uplinkd:route:ISP1-main",
            Switch::Disabled,
        ),
        obj(Menu::Mangle, "*8", "ISP1 PCC", Switch::Enabled),
    ]
}

fn foreign_ids() -> BTreeSet<RosId> {
    foreign().into_iter().map(|o| o.id).collect()
}

fn wants() -> Vec<Target> {
    let mut out = Vec::new();
    for a in [Want::Carry, Want::Standby] {
        for b in [Want::Carry, Want::Standby] {
            out.push(Target::new([(l("ISP1"), a), (l("ISP2"), b)]));
        }
    }
    out
}

fn wan_of(comment: &str) -> &str {
    if comment.contains("ISP1") {
        "ISP1"
    } else {
        "ISP2"
    }
}

#[test]
fn every_combination_converges_in_one_pass_and_never_touches_foreign_objects() {
    let foreign_ids = foreign_ids();
    for bits in 0u32..(1 << SWITCHED.len()) {
        let mut observed = foreign();
        for (i, (menu, id, comment)) in SWITCHED.iter().enumerate() {
            let state = if bits & (1 << i) != 0 {
                Switch::Enabled
            } else {
                Switch::Disabled
            };
            observed.push(obj(*menu, id, comment, state));
        }
        for target in wants() {
            let p = plan::plan(&observed, &target);
            // At most one call per (menu, action), each with a non-empty id list.
            let mut seen = BTreeSet::new();
            for op in &p.ops {
                assert!(seen.insert((op.menu, op.action)), "{p:?}");
                assert!(!op.ids.is_empty());
                assert!(op.action != Action::Remove);
                for id in &op.ids {
                    assert!(!foreign_ids.contains(id), "foreign {id} planned: {p:?}");
                }
            }
            assert!(p.missing.is_empty());

            let after = plan::apply(&observed, &p);
            // Foreign objects are exactly as they were.
            let keep = |v: &[Observed]| -> Vec<Observed> {
                v.iter()
                    .filter(|o| foreign_ids.contains(&o.id))
                    .cloned()
                    .collect()
            };
            assert_eq!(keep(&observed), keep(&after));

            // The result is the desired state (all carry when none would).
            let none_carry = target.wans.values().all(|w| *w == Want::Standby);
            for o in after.iter().filter(|o| !foreign_ids.contains(&o.id)) {
                let want = target.wans[&l(wan_of(&o.comment))];
                let expect = if want == Want::Carry || none_carry {
                    Switch::Enabled
                } else {
                    Switch::Disabled
                };
                assert_eq!(o.state, expect, "{o:?} for {target:?}");
            }

            // Flush exactly the standby WANs that had something enabled, never when all carry.
            for wan in ["ISP1", "ISP2"] {
                let had_enabled = observed.iter().any(|o| {
                    !foreign_ids.contains(&o.id)
                        && wan_of(&o.comment) == wan
                        && o.state == Switch::Enabled
                });
                let standby = target.wans[&l(wan)] == Want::Standby && !none_carry;
                assert_eq!(
                    p.flush.contains(&l(wan)),
                    standby && had_enabled,
                    "{wan} {bits:b} {target:?}"
                );
            }

            // Idempotent: the second pass writes nothing and flushes nothing.
            let again = plan::plan(&after, &target);
            assert!(again.is_noop(), "second pass not empty: {again:?}");
        }
    }
}

#[test]
fn failover_is_two_grouped_calls() {
    let observed: Vec<Observed> = SWITCHED
        .iter()
        .map(|(m, id, c)| obj(*m, id, c, Switch::Enabled))
        .collect();
    let p = plan::plan(
        &observed,
        &Target::new([(l("ISP1"), Want::Standby), (l("ISP2"), Want::Carry)]),
    );
    assert_eq!(p.write_calls(), 2);
    assert_eq!(
        (p.ops[0].action, p.ops[0].menu),
        (Action::Disable, Menu::Route)
    );
    assert_eq!(p.ops[0].ids, vec![rid("*10"), rid("*11")]);
    assert_eq!(
        (p.ops[1].action, p.ops[1].menu),
        (Action::Disable, Menu::Mangle)
    );
    assert_eq!(p.ops[1].ids, vec![rid("*A0"), rid("*A1")]);
    assert_eq!(p.flush, vec![l("ISP1")]);
    let text = p.to_string();
    assert!(text.contains("disable /ip/route (2 object(s))"), "{text}");
    assert!(text.contains("connection-mark=conn-ISP1"), "{text}");
}

#[test]
fn switching_wans_enables_before_it_disables() {
    let observed: Vec<Observed> = SWITCHED
        .iter()
        .map(|(m, id, c)| {
            let state = if wan_of(c) == "ISP1" {
                Switch::Enabled
            } else {
                Switch::Disabled
            };
            obj(*m, id, c, state)
        })
        .collect();
    let p = plan::plan(
        &observed,
        &Target::new([(l("ISP1"), Want::Standby), (l("ISP2"), Want::Carry)]),
    );
    let actions: Vec<Action> = p.ops.iter().map(|o| o.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Enable,
            Action::Enable,
            Action::Disable,
            Action::Disable
        ]
    );
}

#[test]
fn stale_objects_are_removed_once() {
    let mut observed = foreign();
    observed.push(obj(
        Menu::Route,
        "*30",
        "uplinkd:route:ISP3-main",
        Switch::Enabled,
    ));
    observed.push(obj(
        Menu::Mangle,
        "*C4",
        "uplinkd:pcc:ISP3-4",
        Switch::Disabled,
    ));
    observed.extend(
        SWITCHED
            .iter()
            .map(|(m, id, c)| obj(*m, id, c, Switch::Enabled)),
    );
    let target = Target::new([(l("ISP1"), Want::Carry), (l("ISP2"), Want::Carry)]);
    let p = plan::plan(&observed, &target);
    let removes: Vec<_> = p
        .ops
        .iter()
        .filter(|o| o.action == Action::Remove)
        .collect();
    assert_eq!(removes.len(), 2);
    assert_eq!(removes[0].ids, vec![rid("*30")]);
    assert_eq!(removes[1].ids, vec![rid("*C4")]);
    assert!(p.flush.is_empty());
    // Once gone (or if it was already gone), nothing more is planned.
    let after = plan::apply(&observed, &p);
    assert!(plan::plan(&after, &target).is_noop());
}

#[test]
fn missing_objects_are_reported_not_invented() {
    let observed = vec![
        obj(
            Menu::Route,
            "*10",
            "uplinkd:route:ISP1-main",
            Switch::Disabled,
        ),
        obj(Menu::Mangle, "*A0", "uplinkd:pcc:ISP1-0", Switch::Disabled),
    ];
    let target = Target::new([(l("ISP1"), Want::Carry), (l("ISP2"), Want::Carry)]);
    let p = plan::plan(&observed, &target);
    let missing: Vec<&str> = p.missing.iter().map(|m| m.tag.as_str()).collect();
    assert_eq!(
        missing,
        vec![
            "uplinkd:route:ISP1-table",
            "uplinkd:route:ISP2-main",
            "uplinkd:route:ISP2-table",
            "uplinkd:pcc:ISP2-*"
        ]
    );
    // Only existing objects are written.
    let ids: Vec<&RosId> = p.ops.iter().flat_map(|o| &o.ids).collect();
    assert_eq!(ids, vec![&rid("*10"), &rid("*A0")]);
    assert!(
        p.to_string()
            .contains("missing on the router: uplinkd:route:ISP2-main")
    );
}

#[test]
fn every_wan_down_enables_all() {
    let observed: Vec<Observed> = SWITCHED
        .iter()
        .map(|(m, id, c)| obj(*m, id, c, Switch::Disabled))
        .collect();
    let p = plan::plan(
        &observed,
        &Target::new([(l("ISP1"), Want::Standby), (l("ISP2"), Want::Standby)]),
    );
    assert!(p.flush.is_empty());
    assert_eq!(p.ops.len(), 2);
    assert!(p.ops.iter().all(|o| o.action == Action::Enable));
    assert_eq!(p.ops.iter().map(|o| o.ids.len()).sum::<usize>(), 8);
}

#[test]
fn empty_router_and_empty_config() {
    assert!(plan::plan(&[], &Target::default()).is_noop());
    assert!(plan::plan(&foreign(), &Target::default()).is_noop());
}
