//! A traffic rule's mangle line (`traffic::Line`) as the RouterOS command the base config
//! prints: one formatter, so the template only lays the lines out.

use std::fmt::Write as _;

use crate::naming;
use crate::traffic::{Action, BLOCKED, Line, ProtocolSplit, ros_duration};

/// The RouterOS `add` command of this line (in `/ip firewall mangle`).
pub fn steer_line(line: &Line) -> String {
    let mut s = String::from("add chain=prerouting");
    let mut arg = |k: &str, v: &str| {
        let _ = write!(s, " {k}={}", super::word(v));
    };
    // Connections from a WAN are inbound and keep that WAN's mark.
    arg("in-interface-list", &format!("!{}", naming::WAN_LIST));
    for (k, v) in line.matcher.rsc_args() {
        arg(k, &v);
    }
    arg("connection-state", "new");
    match &line.marked {
        None => arg("connection-mark", "no-mark"),
        Some(w) => arg("connection-mark", &naming::conn_mark(w)),
    }
    if let Some((src, dst)) = &line.sticky_lists {
        arg("src-address-list", src);
        if let Some(d) = dst {
            arg("dst-address-list", d);
        }
    }
    if let Some(p) = &line.pcc {
        match p.protocols {
            ProtocolSplit::All => {}
            ProtocolSplit::Tcp => arg("protocol", "tcp"),
            ProtocolSplit::NotTcp => arg("protocol", "!tcp"),
        }
        arg(
            "per-connection-classifier",
            &format!("{}:{}/{}", p.classifier, p.total, p.index),
        );
    }
    match &line.action {
        Action::Mark(w) => {
            arg("action", "mark-connection");
            arg("new-connection-mark", &naming::conn_mark(w));
            arg("passthrough", "yes");
        }
        Action::Accept => arg("action", "accept"),
        Action::Block => {
            arg("action", "mark-connection");
            arg("new-connection-mark", BLOCKED);
            arg("passthrough", "yes");
        }
        Action::Remember { list, dst, timeout } => {
            arg(
                "action",
                if *dst {
                    "add-dst-to-address-list"
                } else {
                    "add-src-to-address-list"
                },
            );
            arg("address-list", list);
            arg("address-list-timeout", &ros_duration(*timeout));
        }
    }
    let _ = write!(s, " comment={}", super::quote(&line.comment));
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::traffic::{
        Classifier, LastResort, Match, Member, Policy, PolicyKind, PortRange, Protocol, Rule,
        Sticky, Traffic, lines,
    };
    use crate::types::LinkId;

    fn id(s: &str) -> LinkId {
        LinkId::new(s)
    }

    fn traffic(kind: PolicyKind, last: LastResort, sticky: Sticky) -> Traffic {
        Traffic {
            lists: BTreeMap::new(),
            policies: vec![Policy {
                name: "p".into(),
                kind,
                members: vec![
                    Member {
                        wan: id("ISP2"),
                        weight: 1,
                    },
                    Member {
                        wan: id("ISP1"),
                        weight: 2,
                    },
                ],
                last_resort: last,
            }],
            rules: vec![Rule {
                name: "voip".into(),
                matcher: Match {
                    protocol: Some(Protocol::Udp),
                    dst_ports: vec![PortRange {
                        first: 5060,
                        last: 5061,
                    }],
                    ..Match::default()
                },
                policy: "p".into(),
                sticky,
            }],
        }
    }

    #[test]
    fn a_failover_rule_is_one_pick_per_wan_in_order_then_its_last_resort() {
        let t = traffic(PolicyKind::Failover, LastResort::Drop, Sticky::Off);
        let rsc: Vec<String> = lines(&t, Classifier::Hybrid, &BTreeMap::new())
            .iter()
            .map(steer_line)
            .collect();
        assert_eq!(
            rsc,
            [
                "add chain=prerouting in-interface-list=!uplinkd-wan protocol=udp dst-port=5060-5061 connection-state=new connection-mark=no-mark action=mark-connection new-connection-mark=conn-ISP2 passthrough=yes comment=\"uplinkd:steer:voip.ISP2-pick\"",
                "add chain=prerouting in-interface-list=!uplinkd-wan protocol=udp dst-port=5060-5061 connection-state=new connection-mark=no-mark action=mark-connection new-connection-mark=conn-ISP1 passthrough=yes comment=\"uplinkd:steer:voip.ISP1-pick\"",
                "add chain=prerouting in-interface-list=!uplinkd-wan protocol=udp dst-port=5060-5061 connection-state=new connection-mark=no-mark action=mark-connection new-connection-mark=blocked-by-uplinkd passthrough=yes comment=\"uplinkd:rule:voip-drop\"",
            ]
        );
    }

    #[test]
    fn a_sticky_balanced_rule_has_sticky_pcc_spill_remember_and_accept_in_that_order() {
        let t = traffic(
            PolicyKind::Balanced,
            LastResort::Any,
            Sticky::Src {
                timeout: Duration::from_secs(600),
            },
        );
        let tags: Vec<String> = lines(&t, Classifier::Hybrid, &BTreeMap::new())
            .iter()
            .map(|l| l.comment.clone())
            .collect();
        assert_eq!(
            tags,
            [
                "uplinkd:steer:voip.ISP2-sticky",
                "uplinkd:steer:voip.ISP1-sticky",
                "uplinkd:steer:voip.ISP2-0",
                "uplinkd:steer:voip.ISP1-1",
                "uplinkd:steer:voip.ISP1-2",
                "uplinkd:steer:voip.ISP2-pick",
                "uplinkd:steer:voip.ISP1-pick",
                "uplinkd:rule:voip.ISP2-remember",
                "uplinkd:rule:voip.ISP1-remember",
                "uplinkd:rule:voip-anywan",
            ]
        );
        let all = lines(&t, Classifier::Hybrid, &BTreeMap::new());
        // UDP only: the hybrid classifier's src-address half, one rule per bucket.
        assert!(steer_line(&all[2]).contains("per-connection-classifier=src-address:3/0"));
        assert!(steer_line(&all[0]).contains("src-address-list=uplinkd.sticky.voip.ISP2"));
        assert!(
            steer_line(&all[7])
                .contains("connection-mark=conn-ISP2 action=add-src-to-address-list address-list=uplinkd.sticky.voip.ISP2 address-list-timeout=10m")
        );
    }
}
