//! Names shared by the daemon's reconcile, the rendered `.rsc` scripts and the emulator: comment
//! tags, connection marks, routing tables, veth names. One place, so the script that creates an
//! object and the daemon that later finds it can never disagree. Pure functions, no I/O.
//!
//! Tag grammar: every object uplinkd owns has a comment `uplinkd:<section>:<name>`. `section` is a
//! base-config section (`lan`, `dhcp`, `firewall`, `nat`, `mangle`, `route`, `pcc`, ...) or
//! `probe` for the install script's probe plumbing. The daemon's reconcile toggles only objects in
//! the sections [`SECTION_ROUTE`] and [`SECTION_PCC`]; a name there starts with the WAN's name.

use crate::types::LinkId;

/// Every uplinkd comment starts with this; nothing without it is ever touched.
pub const TAG_PREFIX: &str = "uplinkd:";
/// Default routes per WAN (main table by preference, and each WAN's own table) toggled on failover.
pub const SECTION_ROUTE: &str = "route";
/// PCC mangle rules (one per bucket) toggled on failover.
pub const SECTION_PCC: &str = "pcc";

/// Interface list of the WAN interfaces (uplinkd's own, so a defconf `WAN` list is never
/// touched); mangle rules for connections from inside match `in-interface-list=!` it.
pub const WAN_LIST: &str = "uplinkd-wan";

/// The longest veth name that survives unchanged inside the container (RouterOS 7.20 truncates
/// longer names to 14 characters: routeros-facts A4).
pub const MAX_VETH_NAME: usize = 14;

/// The container's management veth: its own traffic (mail, webhooks, DNS) leaves through it and
/// follows the router's `main` table (and so the failover); the per-WAN veths carry only the
/// source-bound probes. Listed first on the container, so it holds the container's default route.
pub const MGMT_VETH: &str = "uplinkd-mgmt";
/// The management veth's /30: the router holds [`MGMT_ROUTER`], the container [`MGMT_CONTAINER`].
/// Next to the probe veths' default 172.31.255.0/24, outside it.
pub const MGMT_SUBNET: &str = "172.31.254.0/30";
pub const MGMT_ROUTER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(172, 31, 254, 1);
pub const MGMT_CONTAINER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(172, 31, 254, 2);
pub const MGMT_PREFIX_LEN: u8 = 30;

/// `uplinkd:<section>:<name>`.
pub fn tag(section: &str, name: &str) -> String {
    format!("{TAG_PREFIX}{section}:{name}")
}

/// Splits a comment into `(section, name)` when it is an uplinkd tag.
pub fn parse_tag(comment: &str) -> Option<(&str, &str)> {
    comment.strip_prefix(TAG_PREFIX)?.split_once(':')
}

/// Connection mark of connections pinned to a WAN (PCC, inbound, outage-opened).
pub fn conn_mark(wan: &LinkId) -> String {
    format!("conn-{wan}")
}

/// Routing table (and routing mark) carrying a WAN's marked connections.
pub fn route_table(wan: &LinkId) -> String {
    format!("to-{wan}")
}

/// Probe routing table of a WAN: holds one default route via that WAN that uplinkd never toggles.
pub fn probe_table(wan: &LinkId) -> String {
    format!("uplinkd-{wan}")
}

/// Name of the `index`-th (0-based) WAN's veth, at most [`MAX_VETH_NAME`] characters.
pub fn veth_name(index: usize) -> String {
    format!("uplinkd-wan{}", index + 1)
}

/// A WAN name must fit in marks, tables and tags: 1-16 of `[A-Za-z0-9_-]`.
pub fn validate_wan_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 16 {
        return Err("1 to 16 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("only letters, digits, '-' and '_'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let t = tag(SECTION_ROUTE, "ISP1-main");
        assert_eq!(t, "uplinkd:route:ISP1-main");
        assert_eq!(parse_tag(&t), Some(("route", "ISP1-main")));
        assert_eq!(parse_tag("defconf: drop all"), None);
        assert_eq!(parse_tag("uplinkd:"), None);
    }

    #[test]
    fn veth_names_fit() {
        assert!(veth_name(9).len() <= MAX_VETH_NAME);
        assert!(validate_wan_name("ISP1").is_ok());
        assert!(validate_wan_name("ISP 1").is_err());
        assert!(validate_wan_name("").is_err());
    }
}
