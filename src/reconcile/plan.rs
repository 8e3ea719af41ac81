//! The pure reconcile planner: observed `uplinkd:`-tagged objects + which WANs should carry
//! traffic → the smallest set of grouped REST writes, the WANs whose connections must be flushed
//! afterwards, and what is missing (for the bootstrap to re-import).
//!
//! It must not do I/O, read the clock, or ever plan anything for an object whose comment is not an
//! uplinkd tag of the sections [`SECTION_ROUTE`] / [`SECTION_PCC`]; objects it does not recognise
//! are left alone, never "fixed". A missing object is reported, never invented.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::naming::{self, SECTION_PCC, SECTION_ROUTE};
pub use crate::routeros::model::RosId;
use crate::traffic::SteerKind;
use crate::types::LinkId;

/// A RouterOS menu that reconcile reads and writes. Nothing outside these two is ever touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Menu {
    /// `/ip/route`: each WAN's default route in `main` (`<WAN>-main`) and in `to-<WAN>` (`<WAN>-table`).
    Route,
    /// `/ip/firewall/mangle`: each WAN's PCC rules (`<WAN>-<k>`).
    Mangle,
}

impl Menu {
    pub const ALL: [Menu; 2] = [Menu::Route, Menu::Mangle];

    /// REST path of the menu (without the `/rest` prefix).
    pub fn path(self) -> &'static str {
        match self {
            Menu::Route => "/ip/route",
            Menu::Mangle => "/ip/firewall/mangle",
        }
    }

    /// The REST client's name of the menu.
    pub fn rest_menu(self) -> crate::routeros::Menu {
        match self {
            Menu::Route => crate::routeros::Menu::IP_ROUTE,
            Menu::Mangle => crate::routeros::Menu::IP_FIREWALL_MANGLE,
        }
    }

    /// The tag section whose objects live in this menu.
    pub fn section(self) -> &'static str {
        match self {
            Menu::Route => SECTION_ROUTE,
            Menu::Mangle => SECTION_PCC,
        }
    }
}

impl fmt::Display for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Whether a RouterOS object is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Switch {
    Enabled,
    Disabled,
}

/// One object as read from the router (`.proplist=.id,comment,disabled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub menu: Menu,
    pub id: RosId,
    /// Empty when the object has no comment.
    pub comment: String,
    pub state: Switch,
}

/// What reconcile wants for one configured WAN's switched objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Want {
    /// Routes and PCC rules enabled: the WAN takes its share of new connections.
    Carry,
    /// A backup tier's WAN that answers (`policy::Role::Backup`): PCC rules and the main route
    /// disabled (no new connections), the route in its own table kept on so the connections it
    /// has go on until they end; no flush.
    Drain,
    /// Routes and PCC rules disabled: its buckets fall through to `main`; its connections flushed.
    Standby,
}

/// The seed's `:global <WAN>Status` value, kept in sync for scripts that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GlobalStatus {
    Up,
    Down,
}

impl GlobalStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GlobalStatus::Up => "up",
            GlobalStatus::Down => "down",
        }
    }
}

/// What the reconcile task is asked to converge to (the latest value wins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub target: Target,
    /// `:global <WAN>Status` values; written (with the flush, in one `/execute`) when changed.
    pub globals: BTreeMap<LinkId, GlobalStatus>,
}

/// The desired state as the planner needs it: every configured WAN and what it should do. Built
/// from `policy::Desired`; a WAN absent here is not configured (its tagged objects are stale).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub wans: BTreeMap<LinkId, Want>,
    /// Per traffic rule (`[[rule]]`, by name), the WANs its policy may use now: its switched
    /// lines (`uplinkd:steer:<rule>.<WAN>-*`) are on exactly for these. A rule absent here is not
    /// configured (its lines are stale).
    pub steer: BTreeMap<String, BTreeSet<LinkId>>,
}

impl Target {
    pub fn new(wans: impl IntoIterator<Item = (LinkId, Want)>) -> Self {
        Self {
            wans: wans.into_iter().collect(),
            steer: BTreeMap::new(),
        }
    }

    /// With the traffic rules' usable WANs.
    pub fn with_steer(mut self, steer: BTreeMap<String, BTreeSet<LinkId>>) -> Self {
        self.steer = steer;
        self
    }

    /// The wants actually applied. Never none: if no WAN should carry (a policy bug or an empty
    /// decision) every WAN carries, so the first WAN that works takes traffic at once.
    pub fn effective(&self) -> BTreeMap<LinkId, Want> {
        if self.wans.values().any(|w| *w == Want::Carry) {
            self.wans.clone()
        } else {
            self.wans.keys().map(|k| (k.clone(), Want::Carry)).collect()
        }
    }
}

/// Which switched object of a WAN a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `uplinkd:route:<WAN>-main`: the WAN's default route in the main table.
    MainRoute,
    /// `uplinkd:route:<WAN>-table`: the WAN's default route in its own table `to-<WAN>`.
    TableRoute,
    /// `uplinkd:pcc:<WAN>-<k>`: one of the WAN's PCC mangle rules.
    Pcc(u32),
}

impl Kind {
    fn menu(self) -> Menu {
        match self {
            Kind::MainRoute | Kind::TableRoute => Menu::Route,
            Kind::Pcc(_) => Menu::Mangle,
        }
    }
}

/// Recognises a switched object: the right section for its menu and a name `<WAN>-main`,
/// `<WAN>-table` or `<WAN>-<k>`. Anything else (a cross-WAN fallback route, the probe routes, a
/// foreign comment) is `None` and is never touched.
pub fn classify(menu: Menu, comment: &str) -> Option<(LinkId, Kind)> {
    // RouterOS keeps the comment verbatim; tolerate a human note after the tag.
    let tag = comment.split_whitespace().next()?;
    let (section, name) = naming::parse_tag(tag)?;
    if section != menu.section() {
        return None;
    }
    // The suffix never contains '-', so the last '-' splits even WAN names that contain one.
    let (wan, suffix) = name.rsplit_once('-')?;
    naming::validate_wan_name(wan).ok()?;
    let kind = match (menu, suffix) {
        (Menu::Route, "main") => Kind::MainRoute,
        (Menu::Route, "table") => Kind::TableRoute,
        (Menu::Mangle, k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
            Kind::Pcc(k.parse().ok()?)
        }
        _ => return None,
    };
    debug_assert_eq!(kind.menu(), menu);
    Some((LinkId::new(wan), kind))
}

/// A write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Enable,
    Disable,
    /// The object belongs to a WAN that is no longer configured.
    Remove,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Remove => "remove",
        })
    }
}

/// One REST call: an action on a list of objects of one menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub menu: Menu,
    pub action: Action,
    /// Sorted, never empty.
    pub ids: Vec<RosId>,
    /// The objects' tags, in the order of `ids` (for logs and `uplinkd plan`).
    pub tags: Vec<String>,
}

/// An expected switched object that the router does not have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    pub wan: LinkId,
    /// What is missing: `uplinkd:route:ISP1-main`, `uplinkd:route:ISP1-table`, or
    /// `uplinkd:pcc:ISP1-*` when the WAN has no PCC rule at all.
    pub tag: String,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Writes in the order to apply them: enables first (so some WAN always carries), then
    /// disables, then removals of stale objects. At most one op per (menu, action).
    pub ops: Vec<Op>,
    /// WANs whose connections must be removed (by `conn-<WAN>`) AFTER `ops` are applied: those
    /// whose objects were carrying and now go to standby.
    pub flush: Vec<LinkId>,
    /// Sticky memories to forget after `ops`: (rule, WAN) whose sticky line was switched off
    /// because the rule's policy may no longer use the WAN, so its sources choose again.
    pub release: Vec<(String, LinkId)>,
    /// Expected objects the router lacks; reconcile does not create them (the bootstrap does).
    pub missing: Vec<Missing>,
}

impl Plan {
    /// Nothing to write and nothing to flush.
    pub fn is_noop(&self) -> bool {
        self.ops.is_empty() && self.flush.is_empty() && self.release.is_empty()
    }

    /// Number of REST write calls `ops` costs.
    pub fn write_calls(&self) -> usize {
        self.ops.len()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            writeln!(f, "no changes: the router matches the desired state")?;
        }
        for op in &self.ops {
            writeln!(f, "{} {} ({} object(s)):", op.action, op.menu, op.ids.len())?;
            for (id, tag) in op.ids.iter().zip(&op.tags) {
                writeln!(f, "    {id}  {tag}")?;
            }
        }
        for wan in &self.flush {
            writeln!(
                f,
                "then remove connections with connection-mark={} (background job)",
                naming::conn_mark(wan)
            )?;
        }
        for (rule, wan) in &self.release {
            writeln!(
                f,
                "then forget the sources rule {rule} kept on {wan} (address list {})",
                crate::traffic::sticky_src_list(rule, wan)
            )?;
        }
        for m in &self.missing {
            writeln!(
                f,
                "missing on the router: {} (WAN {}; the base config must be re-imported)",
                m.tag, m.wan
            )?;
        }
        Ok(())
    }
}

/// Plans the writes that bring `observed` to `target`. Idempotent: planning again against the
/// state after applying the result yields a plan with [`Plan::is_noop`].
pub fn plan(observed: &[Observed], target: &Target) -> Plan {
    let wants = target.effective();
    let mut groups: BTreeMap<(Action, Menu), Vec<(RosId, String)>> = BTreeMap::new();
    let mut flush = BTreeSet::new();
    let mut seen: BTreeMap<&LinkId, BTreeSet<SeenKind>> = BTreeMap::new();
    let mut release = BTreeSet::new();

    for obj in observed {
        if let Some((rule, wan, kind)) = classify_steer(obj.menu, &obj.comment) {
            let usable = match (target.steer.get(rule), wants.contains_key(&wan)) {
                (Some(set), true) => set.contains(&wan),
                // A rule or WAN that is no longer configured: its lines are stale.
                _ => {
                    groups
                        .entry((Action::Remove, obj.menu))
                        .or_default()
                        .push((obj.id.clone(), obj.comment.clone()));
                    continue;
                }
            };
            let Some(action) = switch_to(usable, obj.state) else {
                continue;
            };
            if action == Action::Disable && kind == SteerKind::Sticky {
                release.insert((rule.to_string(), wan));
            }
            groups
                .entry((action, obj.menu))
                .or_default()
                .push((obj.id.clone(), obj.comment.clone()));
            continue;
        }
        let Some((wan, kind)) = classify(obj.menu, &obj.comment) else {
            continue;
        };
        let Some((wan, want)) = wants.get_key_value(&wan) else {
            groups
                .entry((Action::Remove, obj.menu))
                .or_default()
                .push((obj.id.clone(), obj.comment.clone()));
            continue;
        };
        seen.entry(wan).or_default().insert(SeenKind::of(kind));
        let on = match (want, kind) {
            (Want::Carry, _) | (Want::Drain, Kind::TableRoute) => true,
            (Want::Drain, Kind::MainRoute | Kind::Pcc(_)) | (Want::Standby, _) => false,
        };
        let Some(action) = switch_to(on, obj.state) else {
            continue;
        };
        // Only a WAN going to standby loses its connections; a draining one keeps them.
        if action == Action::Disable && *want == Want::Standby {
            flush.insert(wan.clone());
        }
        groups
            .entry((action, obj.menu))
            .or_default()
            .push((obj.id.clone(), obj.comment.clone()));
    }

    // BTreeMap order of (Action, Menu) is already enable → disable → remove, route → mangle.
    let ops = groups
        .into_iter()
        .map(|((action, menu), mut objs)| {
            objs.sort();
            objs.dedup_by(|a, b| a.0 == b.0);
            let (ids, tags) = objs.into_iter().unzip();
            Op {
                menu,
                action,
                ids,
                tags,
            }
        })
        .collect();

    let mut missing = Vec::new();
    for wan in wants.keys() {
        let have = seen.get(wan);
        for (kind, tag) in [
            (
                SeenKind::Main,
                naming::tag(SECTION_ROUTE, &format!("{wan}-main")),
            ),
            (
                SeenKind::Table,
                naming::tag(SECTION_ROUTE, &format!("{wan}-table")),
            ),
            (SeenKind::Pcc, naming::tag(SECTION_PCC, &format!("{wan}-*"))),
        ] {
            if !have.is_some_and(|h| h.contains(&kind)) {
                missing.push(Missing {
                    wan: wan.clone(),
                    tag,
                });
            }
        }
    }

    Plan {
        ops,
        flush: flush.into_iter().collect(),
        release: release.into_iter().collect(),
        missing,
    }
}

/// The write that makes an object `on` (or off), if it is not already.
fn switch_to(on: bool, state: Switch) -> Option<Action> {
    match (on, state) {
        (true, Switch::Disabled) => Some(Action::Enable),
        (false, Switch::Enabled) => Some(Action::Disable),
        (true, Switch::Enabled) | (false, Switch::Disabled) => None,
    }
}

/// Recognises a traffic rule's switched line: `uplinkd:steer:<rule>.<WAN>-<kind>` in mangle.
pub fn classify_steer(menu: Menu, comment: &str) -> Option<(&str, LinkId, SteerKind)> {
    if menu != Menu::Mangle {
        return None;
    }
    let tag = comment.split_whitespace().next()?;
    let (section, name) = naming::parse_tag(tag)?;
    if section != crate::traffic::SECTION_STEER {
        return None;
    }
    crate::traffic::parse_steer_name(name)
}

/// Presence classes used for the missing-object report (any PCC rule counts for the WAN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SeenKind {
    Main,
    Table,
    Pcc,
}

impl SeenKind {
    fn of(kind: Kind) -> Self {
        match kind {
            Kind::MainRoute => SeenKind::Main,
            Kind::TableRoute => SeenKind::Table,
            Kind::Pcc(_) => SeenKind::Pcc,
        }
    }
}

/// Applies `plan` to `observed` as the router would: what a second read returns after a
/// successful apply. Used by tests and by `uplinkd plan` to show the state after the change.
pub fn apply(observed: &[Observed], plan: &Plan) -> Vec<Observed> {
    let mut out: Vec<Observed> = observed.to_vec();
    for op in &plan.ops {
        let ids: BTreeSet<&RosId> = op.ids.iter().collect();
        match op.action {
            Action::Remove => out.retain(|o| !(o.menu == op.menu && ids.contains(&o.id))),
            Action::Enable | Action::Disable => {
                let state = if op.action == Action::Enable {
                    Switch::Enabled
                } else {
                    Switch::Disabled
                };
                for o in out
                    .iter_mut()
                    .filter(|o| o.menu == op.menu && ids.contains(&o.id))
                {
                    o.state = state;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RosId {
        RosId::parse(s).unwrap()
    }

    fn obj(menu: Menu, id_s: &str, comment: &str, state: Switch) -> Observed {
        Observed {
            menu,
            id: id(id_s),
            comment: comment.into(),
            state,
        }
    }

    fn l(s: &str) -> LinkId {
        LinkId::new(s)
    }

    fn two_wans(state: Switch) -> Vec<Observed> {
        vec![
            obj(Menu::Route, "*1", "uplinkd:route:ISP1-main", state),
            obj(Menu::Route, "*2", "uplinkd:route:ISP1-table", state),
            obj(Menu::Route, "*3", "uplinkd:route:ISP2-main", state),
            obj(Menu::Route, "*4", "uplinkd:route:ISP2-table", state),
            obj(
                Menu::Route,
                "*5",
                "uplinkd:route:ISP1-fallback",
                Switch::Enabled,
            ),
            obj(Menu::Mangle, "*A", "uplinkd:pcc:ISP1-0", state),
            obj(Menu::Mangle, "*B", "uplinkd:pcc:ISP2-1", state),
            obj(Menu::Mangle, "*C", "defconf: fasttrack", Switch::Disabled),
        ]
    }

    type Case = (Menu, &'static str, Option<(&'static str, Kind)>);

    #[test]
    fn classify_table() {
        let cases: &[Case] = &[
            (
                Menu::Route,
                "uplinkd:route:ISP1-main",
                Some(("ISP1", Kind::MainRoute)),
            ),
            (
                Menu::Route,
                "uplinkd:route:ISP-1-table",
                Some(("ISP-1", Kind::TableRoute)),
            ),
            (
                Menu::Mangle,
                "uplinkd:pcc:ISP2-3",
                Some(("ISP2", Kind::Pcc(3))),
            ),
            (
                Menu::Mangle,
                "uplinkd:pcc:ISP2-3 note",
                Some(("ISP2", Kind::Pcc(3))),
            ),
            (Menu::Route, "uplinkd:route:ISP1-fallback", None),
            (Menu::Route, "uplinkd:pcc:ISP1-0", None),
            (Menu::Mangle, "uplinkd:route:ISP1-main", None),
            (Menu::Mangle, "uplinkd:pcc:ISP1-", None),
            (Menu::Mangle, "uplinkd:pcc:-1", None),
            (Menu::Route, "uplinkd:probe:ISP1-main", None),
            (Menu::Route, "route:ISP1-main", None),
            (Menu::Route, "", None),
        ];
        for (menu, comment, want) in cases {
            let got = classify(*menu, comment);
            let want = want.map(|(w, k)| (l(w), k));
            assert_eq!(got, want, "{menu} {comment:?}");
        }
    }

    #[test]
    fn isp1_down_disables_its_objects_and_flushes_once() {
        let observed = two_wans(Switch::Enabled);
        let target = Target::new([(l("ISP1"), Want::Standby), (l("ISP2"), Want::Carry)]);
        let p = plan(&observed, &target);
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.ops[0].action, Action::Disable);
        assert_eq!(p.ops[0].menu, Menu::Route);
        assert_eq!(p.ops[0].ids, vec![id("*1"), id("*2")]);
        assert_eq!(p.ops[1].menu, Menu::Mangle);
        assert_eq!(p.ops[1].ids, vec![id("*A")]);
        assert_eq!(p.flush, vec![l("ISP1")]);
        assert!(p.missing.is_empty());

        let after = apply(&observed, &p);
        let again = plan(&after, &target);
        assert!(again.is_noop(), "{again:?}");
    }

    #[test]
    fn a_draining_wan_takes_no_new_connections_and_keeps_its_own() {
        // ISP2 carried (a promoted backup) and is handed back: its PCC rule and main route go
        // off, its table route stays on for the connections it has, and nothing is flushed.
        let observed = two_wans(Switch::Enabled);
        let target = Target::new([(l("ISP1"), Want::Carry), (l("ISP2"), Want::Drain)]);
        let p = plan(&observed, &target);
        let disabled: Vec<&str> = p
            .ops
            .iter()
            .filter(|o| o.action == Action::Disable)
            .flat_map(|o| o.tags.iter().map(String::as_str))
            .collect();
        assert_eq!(disabled, ["uplinkd:route:ISP2-main", "uplinkd:pcc:ISP2-1"]);
        assert!(p.ops.iter().all(|o| o.action == Action::Disable));
        assert!(p.flush.is_empty(), "{p:?}");
        let drained = apply(&observed, &p);
        assert!(plan(&drained, &target).is_noop());

        // It fails while draining: the table route goes off and only then are its connections
        // flushed.
        let off = Target::new([(l("ISP1"), Want::Carry), (l("ISP2"), Want::Standby)]);
        let p = plan(&drained, &off);
        assert_eq!(p.ops.len(), 1);
        assert_eq!(p.ops[0].tags, ["uplinkd:route:ISP2-table"]);
        assert_eq!(p.flush, vec![l("ISP2")]);

        // From standby (after a restart) to draining: its table route comes on, nothing else
        // of it.
        let standby = two_wans(Switch::Disabled);
        let p = plan(&standby, &target);
        assert!(p.flush.is_empty());
        let enabled: Vec<&str> = p
            .ops
            .iter()
            .flat_map(|o| o.tags.iter().map(String::as_str))
            .collect();
        assert_eq!(
            enabled,
            [
                "uplinkd:route:ISP1-main",
                "uplinkd:route:ISP1-table",
                "uplinkd:route:ISP2-table",
                "uplinkd:pcc:ISP1-0"
            ]
        );
    }

    #[test]
    fn all_standby_means_all_carry() {
        let observed = two_wans(Switch::Disabled);
        let target = Target::new([(l("ISP1"), Want::Standby), (l("ISP2"), Want::Standby)]);
        let p = plan(&observed, &target);
        assert!(p.flush.is_empty());
        assert!(p.ops.iter().all(|o| o.action == Action::Enable));
        let enabled: usize = p.ops.iter().map(|o| o.ids.len()).sum();
        assert_eq!(enabled, 6);
    }

    #[test]
    fn untagged_and_unrecognised_objects_never_planned() {
        let observed = two_wans(Switch::Disabled);
        let p = plan(&observed, &Target::new([(l("ISP1"), Want::Carry)]));
        for op in &p.ops {
            assert!(!op.ids.contains(&id("*5")));
            assert!(!op.ids.contains(&id("*C")));
        }
    }

    #[test]
    fn stale_wan_removed_missing_reported() {
        let observed = vec![
            obj(Menu::Route, "*1", "uplinkd:route:OLD-main", Switch::Enabled),
            obj(Menu::Mangle, "*2", "uplinkd:pcc:OLD-0", Switch::Disabled),
        ];
        let p = plan(&observed, &Target::new([(l("ISP1"), Want::Carry)]));
        assert_eq!(
            p.ops.iter().map(|o| (o.action, o.menu)).collect::<Vec<_>>(),
            vec![
                (Action::Remove, Menu::Route),
                (Action::Remove, Menu::Mangle)
            ]
        );
        assert_eq!(p.missing.len(), 3);
        assert!(p.missing.iter().all(|m| m.wan == l("ISP1")));
    }

    fn steer_router() -> Vec<Observed> {
        let mut v = two_wans(Switch::Enabled);
        for (i, tag) in [
            "uplinkd:steer:voip.ISP2-pick",
            "uplinkd:steer:voip.ISP1-pick",
            "uplinkd:steer:bank.ISP1-sticky",
            "uplinkd:steer:bank.ISP2-sticky",
            "uplinkd:steer:bank.ISP1-0 tcp",
            "uplinkd:steer:gone.ISP1-pick",
            "uplinkd:rule:voip-anywan",
        ]
        .iter()
        .enumerate()
        {
            v.push(obj(Menu::Mangle, &format!("*1{i}"), tag, Switch::Enabled));
        }
        v
    }

    fn steer_target(voip: &[&str], bank: &[&str]) -> Target {
        let set = |w: &[&str]| w.iter().map(|x| l(x)).collect::<BTreeSet<_>>();
        Target::new([(l("ISP1"), Want::Drain), (l("ISP2"), Want::Carry)]).with_steer(
            [
                ("voip".to_string(), set(voip)),
                ("bank".to_string(), set(bank)),
            ]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn a_rules_lines_follow_its_policys_usable_wans_and_stale_rules_go() {
        let observed = steer_router();
        let p = plan(&observed, &steer_target(&["ISP2"], &["ISP2"]));
        let tags = |a: Action| -> BTreeSet<String> {
            p.ops
                .iter()
                .filter(|o| o.action == a && o.menu == Menu::Mangle)
                .flat_map(|o| o.tags.clone())
                .collect()
        };
        assert_eq!(
            tags(Action::Disable),
            [
                "uplinkd:pcc:ISP1-0",
                "uplinkd:steer:voip.ISP1-pick",
                "uplinkd:steer:bank.ISP1-sticky",
                "uplinkd:steer:bank.ISP1-0 tcp",
            ]
            .map(String::from)
            .into()
        );
        assert_eq!(
            tags(Action::Remove),
            ["uplinkd:steer:gone.ISP1-pick".to_string()].into()
        );
        // Only a sticky line going off forgets its sources; a drained WAN is not flushed.
        assert_eq!(p.release, [("bank".to_string(), l("ISP1"))]);
        assert!(p.flush.is_empty());
        // The static lines (`uplinkd:rule:*`) are never planned, and the plan is idempotent.
        let after = apply(&observed, &p);
        assert!(plan(&after, &steer_target(&["ISP2"], &["ISP2"])).is_noop());
        // The WAN usable again: its lines come back on, nothing is released.
        let back = plan(&after, &steer_target(&["ISP2", "ISP1"], &["ISP1", "ISP2"]));
        assert!(back.release.is_empty());
        assert!(back.ops.iter().all(|o| o.action == Action::Enable));
        // Its three rule lines; its default-policy PCC rule stays off (ISP1 still drains).
        assert_eq!(back.ops.iter().map(|o| o.ids.len()).sum::<usize>(), 3);
    }
}
