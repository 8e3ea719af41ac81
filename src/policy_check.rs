//! The static policy check of `uplinkd check`: what a configuration that resolves still gets
//! wrong about its traffic rules, policies and tiers, as [`Finding`]s (data; the sentences are
//! written by `uplinkd check`, in `cmd::check`). Pure: no I/O, and it never fails, since
//! whatever would stop the daemon (an unknown WAN, policy or list) is already a config error.
//!
//! Not checked, because a configuration that resolves cannot have it: two WANs on one RouterOS
//! interface (the interface of each WAN is unique), a WAN of weight 0 (weights are 1 or more;
//! only a balanced policy's own `weights` may be 0, and not all of them), a WAN that can never
//! be judged down (every WAN has a monitor, and the quorum is at most its number of monitors).

use std::collections::BTreeSet;

use crate::config::Config;
use crate::traffic::{LastResort, Policy, PolicyKind, Rule};
use crate::types::Tier;

/// How bad a finding is: an error fails `uplinkd check`, a warning only with `--strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Probably a mistake, but the traffic still goes where the file says, or nowhere harmful.
    Warning,
    /// The configuration says one thing and the router will do another.
    Error,
}

/// What a shadowed rule would have done differently from the rule that shadows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shadowing {
    /// The earlier rule has the same policy and stickiness: the later one is only redundant.
    Redundant,
    /// The earlier rule sends the connections elsewhere (another policy) or remembers them
    /// differently (another stickiness): the later rule's intent is lost.
    Overridden,
}

/// Why no new connection from inside ever leaves by a tier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum NeverUsed {
    /// `rule` matches every connection (an empty match) and, with every rule before it, sends
    /// connections only to policies without a WAN of the tier that drop when none is usable:
    /// nothing falls through to the default policy, which alone would use the tier.
    CatchAll { rule: String, policy: String },
}

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// Every connection `rule` matches is matched by the earlier rule `by`
    /// ([`crate::traffic::Match::covered_by`]), so `rule` never applies. A rule with an empty
    /// match matches everything and shadows every rule after it.
    Shadowed {
        rule: String,
        by: String,
        effect: Shadowing,
    },
    /// A `balanced` or `failover` policy none of whose WANs (weight 0 excepted in a balanced
    /// policy, as [`crate::policy::steer`] never picks those) is in the lowest configured tier:
    /// its connections leave by a backup tier (a data-capped LTE) while the lowest tier works.
    /// `tier` is the lowest tier the policy uses, `lowest` the lowest configured. An `only`
    /// policy names its one WAN on purpose and is not flagged.
    OnlyBackupTier {
        policy: String,
        tier: Tier,
        lowest: Tier,
    },
    /// No new connection from inside ever leaves by `tier` (the router's own traffic still may).
    TierNeverUsed { tier: Tier, reason: NeverUsed },
    /// A `[[policy]]` no rule uses.
    UnusedPolicy { policy: String },
    /// A `[lists]` entry no rule matches on.
    UnusedList { list: String },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::Shadowed {
                effect: Shadowing::Overridden,
                ..
            } => Severity::Error,
            Finding::Shadowed {
                effect: Shadowing::Redundant,
                ..
            }
            | Finding::OnlyBackupTier { .. }
            | Finding::TierNeverUsed { .. }
            | Finding::UnusedPolicy { .. }
            | Finding::UnusedList { .. } => Severity::Warning,
        }
    }
}

/// Every finding of `config`: shadowed rules in rule order, then policies in the order
/// written, tiers from the lowest, unused policies and unused lists.
pub fn check(config: &Config) -> Vec<Finding> {
    let traffic = &config.traffic;
    let mut out = Vec::new();
    for (i, rule) in traffic.rules.iter().enumerate() {
        let earlier = traffic.rules[..i]
            .iter()
            .find(|e| rule.matcher.covered_by(&e.matcher, &traffic.lists));
        if let Some(by) = earlier {
            let effect = if by.policy == rule.policy && by.sticky == rule.sticky {
                Shadowing::Redundant
            } else {
                Shadowing::Overridden
            };
            out.push(Finding::Shadowed {
                rule: rule.name.clone(),
                by: by.name.clone(),
                effect,
            });
        }
    }
    let tier_of = |p: &Policy| -> Option<Tier> {
        p.usable_wans()
            .filter_map(|w| config.wans.iter().find(|c| c.id == *w).map(|c| c.tier))
            .min()
    };
    let tiers: BTreeSet<Tier> = config.wans.iter().map(|w| w.tier).collect();
    if let Some(&lowest) = tiers.first() {
        for p in &traffic.policies {
            if p.kind == PolicyKind::Only {
                continue;
            }
            if let Some(tier) = tier_of(p).filter(|t| *t > lowest) {
                out.push(Finding::OnlyBackupTier {
                    policy: p.name.clone(),
                    tier,
                    lowest,
                });
            }
        }
    }
    if let Some(catch_all) = traffic
        .rules
        .iter()
        .position(|r| r.matcher == Default::default())
    {
        let decided: &[Rule] = &traffic.rules[..=catch_all];
        for &tier in &tiers {
            let excluded = decided.iter().all(|r| {
                traffic.policy(&r.policy).is_some_and(|p| {
                    p.last_resort == LastResort::Drop
                        && !p
                            .usable_wans()
                            .any(|w| config.wans.iter().any(|c| c.id == *w && c.tier == tier))
                })
            });
            if excluded {
                let rule = &traffic.rules[catch_all];
                out.push(Finding::TierNeverUsed {
                    tier,
                    reason: NeverUsed::CatchAll {
                        rule: rule.name.clone(),
                        policy: rule.policy.clone(),
                    },
                });
            }
        }
    }
    for p in &traffic.policies {
        if !traffic.rules.iter().any(|r| r.policy == p.name) {
            out.push(Finding::UnusedPolicy {
                policy: p.name.clone(),
            });
        }
    }
    for name in traffic.lists.keys() {
        let used = traffic.rules.iter().any(|r| {
            r.matcher.src_list.as_ref() == Some(name) || r.matcher.dst_list.as_ref() == Some(name)
        });
        if !used {
            out.push(Finding::UnusedList { list: name.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    /// Three WANs (fibre and cable in tier 1 on ether1 and ether2, LTE in tier 2) plus `extra`.
    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
[rest]
trust = "pin-sha256"
[[wan]]
name = "fibre"
interface = "ether1"
address = "198.18.1.2/30"
gateway = "198.18.1.1"
monitors = ["198.18.0.1"]
[[wan]]
name = "cable"
interface = "ether2"
address = "198.18.2.2/30"
gateway = "198.18.2.1"
monitors = ["198.18.0.1"]
[[wan]]
name = "LTE"
interface = "lte1"
addressing = "dhcp"
monitors = ["198.18.0.1"]
tier = 2
{extra}
"#
        );
        let env = Env::empty()
            .with("UPLINKD_REST_PASSWORD", "x")
            .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
        Config::from_toml_str(&text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    const POLICIES: &str = r#"
[lists]
servers = ["192.168.88.10", "192.168.88.11"]
both = ["192.168.88.0/24"]
[[policy]]
name = "main"
kind = "balanced"
wans = ["fibre", "cable"]
[[policy]]
name = "voip"
kind = "failover"
wans = ["cable", "fibre"]
"#;

    fn findings(extra: &str) -> Vec<Finding> {
        check(&config(&format!("{POLICIES}{extra}")))
    }

    fn shadowed(rule: &str, by: &str, effect: Shadowing) -> Finding {
        Finding::Shadowed {
            rule: rule.into(),
            by: by.into(),
            effect,
        }
    }

    #[test]
    fn no_rules_no_findings() {
        assert_eq!(check(&config("")), []);
        assert_eq!(check(&Config::example()), []);
    }

    #[test]
    fn a_narrower_rule_after_a_wider_one_is_shadowed() {
        let got = findings(
            r#"
[[rule]]
name = "lan"
src_address = "192.168.88.0/24"
policy = "main"
[[rule]]
name = "phone"
src_address = "192.168.88.20"
protocol = "udp"
dst_port = 5060
policy = "voip"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "voip"
[[rule]]
name = "lan-again"
src_address_list = "both"
policy = "main"
"#,
        );
        assert_eq!(got, [shadowed("phone", "lan", Shadowing::Overridden)]);
        assert_eq!(got[0].severity(), Severity::Error);
    }

    #[test]
    fn a_rule_within_an_earlier_list_or_with_the_same_policy_is_flagged_by_kind() {
        let got = findings(
            r#"
[[rule]]
name = "all-lan"
src_address_list = "both"
policy = "voip"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "voip"
"#,
        );
        assert_eq!(
            got,
            [
                shadowed("servers", "all-lan", Shadowing::Redundant),
                Finding::UnusedPolicy {
                    policy: "main".into()
                }
            ]
        );
        assert_eq!(got[0].severity(), Severity::Warning);
    }

    #[test]
    fn an_empty_match_shadows_every_later_rule() {
        let got = findings(
            r#"
[[rule]]
name = "everything"
policy = "main"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "voip"
[[rule]]
name = "guests"
in_interface = "vlan-guest"
policy = "main"
"#,
        );
        let shadows: Vec<&Finding> = got
            .iter()
            .filter(|f| matches!(f, Finding::Shadowed { .. }))
            .collect();
        assert_eq!(
            shadows,
            [
                &shadowed("servers", "everything", Shadowing::Overridden),
                &shadowed("guests", "everything", Shadowing::Redundant),
            ]
        );
    }

    #[test]
    fn rules_that_only_overlap_are_not_shadowed() {
        let got = findings(
            r#"
[[rule]]
name = "phone"
src_address = "192.168.88.20"
protocol = "udp"
policy = "voip"
[[rule]]
name = "lan"
src_address = "192.168.88.0/24"
policy = "main"
[[rule]]
name = "servers"
src_address_list = "servers"
protocol = "tcp"
dst_port = "443"
policy = "voip"
[[rule]]
name = "servers-web"
src_address_list = "servers"
protocol = "tcp"
dst_port = "80,443"
policy = "main"
[[rule]]
name = "guests"
in_interface = "vlan-guest"
policy = "main"
[[rule]]
name = "guests-lte"
in_interface = "vlan-lte"
policy = "voip"
"#,
        );
        assert!(
            !got.iter().any(|f| matches!(f, Finding::Shadowed { .. })),
            "{got:?}"
        );
    }

    #[test]
    fn a_policy_only_of_backup_tier_wans_is_flagged_but_not_an_only_policy_or_a_mixed_one() {
        let got = findings(
            r#"
[[policy]]
name = "lte-first"
kind = "failover"
wans = ["LTE", "fibre"]
[[policy]]
name = "lte"
kind = "only"
wans = ["LTE"]
[[policy]]
name = "metered"
kind = "balanced"
wans = ["LTE", "cable"]
weights = { cable = 0 }
[[rule]]
name = "a"
src_address = "192.168.88.1"
policy = "lte-first"
[[rule]]
name = "b"
src_address = "192.168.88.2"
policy = "lte"
[[rule]]
name = "c"
src_address = "192.168.88.3"
policy = "metered"
[[rule]]
name = "d"
src_address = "192.168.88.4"
policy = "main"
[[rule]]
name = "e"
src_address = "192.168.88.5"
policy = "voip"
"#,
        );
        let t = |n| Tier::new(n).unwrap();
        assert_eq!(
            got,
            [
                Finding::OnlyBackupTier {
                    policy: "metered".into(),
                    tier: t(2),
                    lowest: t(1),
                },
                Finding::UnusedList {
                    list: "both".into()
                },
                Finding::UnusedList {
                    list: "servers".into()
                },
            ]
        );
    }

    #[test]
    fn a_failover_policy_of_backup_wans_only_is_flagged() {
        let text = r#"
[[wan]]
name = "LTE2"
interface = "lte2"
addressing = "dhcp"
monitors = ["198.18.0.1"]
tier = 3
[[policy]]
name = "lte"
kind = "failover"
wans = ["LTE", "LTE2"]
[[rule]]
name = "cams"
src_address = "192.168.88.0/28"
policy = "lte"
"#;
        let got = check(&config(text));
        assert_eq!(
            got,
            [Finding::OnlyBackupTier {
                policy: "lte".into(),
                tier: Tier::new(2).unwrap(),
                lowest: Tier::FIRST,
            }]
        );
        assert_eq!(got[0].severity(), Severity::Warning);
    }

    #[test]
    fn a_catch_all_rule_that_drops_without_the_tier_leaves_the_tier_unused() {
        let got = findings(
            r#"
[[policy]]
name = "no-lte"
kind = "balanced"
wans = ["fibre", "cable"]
last_resort = "drop"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "no-lte"
[[rule]]
name = "everyone"
policy = "no-lte"
"#,
        );
        assert!(
            got.contains(&Finding::TierNeverUsed {
                tier: Tier::new(2).unwrap(),
                reason: NeverUsed::CatchAll {
                    rule: "everyone".into(),
                    policy: "no-lte".into(),
                },
            }),
            "{got:?}"
        );
        assert!(
            !got.iter()
                .any(|f| matches!(f, Finding::TierNeverUsed { tier, .. } if *tier == Tier::FIRST)),
            "{got:?}"
        );
    }

    #[test]
    fn a_tier_is_used_when_a_catch_all_falls_back_to_any_or_an_earlier_rule_uses_it() {
        let any = findings(
            r#"
[[rule]]
name = "everyone"
policy = "main"
"#,
        );
        assert!(
            !any.iter()
                .any(|f| matches!(f, Finding::TierNeverUsed { .. })),
            "last resort any leaves by main, whose preferred WAN may be LTE: {any:?}"
        );
        let earlier = findings(
            r#"
[[policy]]
name = "no-lte"
kind = "balanced"
wans = ["fibre", "cable"]
last_resort = "drop"
[[policy]]
name = "backup"
kind = "failover"
wans = ["fibre", "LTE"]
last_resort = "drop"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "backup"
[[rule]]
name = "everyone"
policy = "no-lte"
"#,
        );
        assert!(
            !earlier
                .iter()
                .any(|f| matches!(f, Finding::TierNeverUsed { .. })),
            "{earlier:?}"
        );
        // Without a catch-all, the default policy takes what no rule matches.
        let none = findings(
            r#"
[[policy]]
name = "no-lte"
kind = "balanced"
wans = ["fibre", "cable"]
last_resort = "drop"
[[rule]]
name = "servers"
src_address_list = "servers"
policy = "no-lte"
"#,
        );
        assert!(
            !none
                .iter()
                .any(|f| matches!(f, Finding::TierNeverUsed { .. })),
            "{none:?}"
        );
    }

    #[test]
    fn unused_policies_and_lists_are_warnings_and_used_ones_are_not_flagged() {
        let got = findings(
            r#"
[[rule]]
name = "servers"
dst_address_list = "servers"
policy = "voip"
"#,
        );
        assert_eq!(
            got,
            [
                Finding::UnusedPolicy {
                    policy: "main".into()
                },
                Finding::UnusedList {
                    list: "both".into()
                },
            ]
        );
        assert!(got.iter().all(|f| f.severity() == Severity::Warning));
    }

    /// The cases the module documents as impossible are config errors, not findings.
    #[test]
    fn what_the_check_leaves_out_does_not_resolve() {
        let env = Env::empty()
            .with("UPLINKD_REST_PASSWORD", "x")
            .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
        let two = |second: &str| {
            format!(
                r#"
[[wan]]
name = "a"
interface = "ether1"
address = "198.18.1.2/30"
gateway = "198.18.1.1"
monitors = ["198.18.0.1"]
[[wan]]
name = "b"
address = "198.18.2.2/30"
gateway = "198.18.2.1"
{second}
"#
            )
        };
        for (second, key) in [
            (
                "interface = \"ether1\"\nmonitors = [\"198.18.0.1\"]",
                "wan[2].interface",
            ),
            (
                "interface = \"ether2\"\nmonitors = [\"198.18.0.1\"]\nweight = 0",
                "wan[2].weight",
            ),
            ("interface = \"ether2\"\nmonitors = []", "wan[2].monitors"),
        ] {
            let err = Config::from_toml_str(&two(second), &env)
                .expect_err(second)
                .to_string();
            assert!(err.contains(key), "{second}: {err}");
        }
    }
}
