//! Which rule of `/ip/firewall/filter` decides a new packet, and whether a service of
//! `/ip/service` answers it: the questions "can the admin still reach WinBox from where they
//! managed the router before" and "is DNS from the LAN accepted", asked of the configuration a
//! test imported. It walks the rules in print order as RouterOS does (first matching terminal
//! action wins, an empty chain accepts) and refuses a matcher it does not model rather than
//! guess: a test cannot pass on a rule the oracle skipped.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Emulator;
use super::store::Object;

/// A packet opening a new connection (no conntrack entry yet, so no connection mark, not
/// dst-NATed, no IPsec policy).
#[derive(Debug, Clone)]
pub struct Packet {
    /// `input` (to the router) or `forward` (through it).
    pub chain: &'static str,
    /// The layer-3 interface it arrives on: a bridge port's bridge (see
    /// [`Emulator::l3_interface`]).
    pub in_interface: String,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// `tcp`, `udp` or `icmp`.
    pub protocol: &'static str,
    pub dst_port: Option<u16>,
}

/// What the filter did with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted by the rule with this comment, or by the end of the chain (`None`).
    Accepted(Option<String>),
    /// Dropped (drop, reject, tarpit) by the rule with this comment.
    Dropped(String),
}

/// Whether a service answers a new connection from an address arriving on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Answers,
    ServiceDisabled,
    /// The service's `address` list does not hold the source.
    AddressNotAllowed(String),
    Filtered(String),
}

impl Emulator {
    /// The layer-3 interface of a port: its bridge when it is a bridge port, else itself.
    pub fn l3_interface(&self, port: &str) -> String {
        self.objects("/interface/bridge/port")
            .iter()
            .find(|p| p.get("interface") == Some(port) && p.get("disabled") != Some("true"))
            .and_then(|p| p.get("bridge"))
            .unwrap_or(port)
            .to_string()
    }

    /// The filter's verdict on a new packet; an error names a matcher or action not modelled.
    pub fn filter_verdict(&self, p: &Packet) -> Result<Verdict, String> {
        let rules = self.objects("/ip/firewall/filter");
        for rule in rules
            .iter()
            .filter(|r| r.get("chain") == Some(p.chain) && r.get("disabled") != Some("true"))
        {
            if !self.rule_matches(rule, p)? {
                continue;
            }
            let comment = rule.get("comment").unwrap_or("").to_string();
            match rule.get("action").unwrap_or("accept") {
                "accept" => return Ok(Verdict::Accepted(Some(comment))),
                "drop" | "reject" | "tarpit" => return Ok(Verdict::Dropped(comment)),
                "log" | "passthrough" | "add-src-to-address-list" | "add-dst-to-address-list" => {}
                // Only established/related connections are fast-tracked; a rule that matched a
                // new packet with it is a configuration this oracle does not understand.
                other => return Err(format!("firewall oracle: action {other} ({comment})")),
            }
        }
        Ok(Verdict::Accepted(None))
    }

    /// Whether `service` (`winbox`, `www`, `www-ssl`, `ssh`, ...) answers a new TCP connection
    /// from `src` arriving on `port` (a physical port: bridge ports resolve to their bridge) to
    /// `dst`, one of the router's addresses.
    pub fn reaches_service(
        &self,
        service: &str,
        port: &str,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Reach, String> {
        let services = self.objects("/ip/service");
        let s = services
            .iter()
            .find(|s| s.get("name") == Some(service))
            .ok_or_else(|| format!("no service {service}"))?;
        if s.get("disabled") == Some("true") {
            return Ok(Reach::ServiceDisabled);
        }
        let allowed = s.get("address").unwrap_or("");
        if !allowed.is_empty() {
            let nets = allowed
                .split(',')
                .map(parse_net)
                .collect::<Result<Vec<_>, _>>()?;
            if !nets.iter().any(|n| n.contains(&src)) {
                return Ok(Reach::AddressNotAllowed(allowed.to_string()));
            }
        }
        let dst_port = s
            .get("port")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("service {service} has no port"))?;
        let packet = Packet {
            chain: "input",
            in_interface: self.l3_interface(port),
            src,
            dst,
            protocol: "tcp",
            dst_port: Some(dst_port),
        };
        Ok(match self.filter_verdict(&packet)? {
            Verdict::Accepted(_) => Reach::Answers,
            Verdict::Dropped(rule) => Reach::Filtered(rule),
        })
    }

    fn rule_matches(&self, rule: &Object, p: &Packet) -> Result<bool, String> {
        for (key, value) in &rule.props {
            let (negated, v) = match value.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, value.as_str()),
            };
            let hit = match key.as_str() {
                "chain" | "action" | "comment" | "disabled" | "log" | "log-prefix"
                | "hw-offload" | "dynamic" | "invalid" | "bytes" | "packets" => continue,
                "connection-state" => v.split(',').any(|s| s == "new"),
                "connection-nat-state" => v.split(',').any(|s| s.is_empty()),
                "connection-mark" => v == "no-mark",
                "ipsec-policy" => v.ends_with(",none"),
                "in-interface" => v == p.in_interface,
                "in-interface-list" => self.list_holds(v, &p.in_interface)?,
                "protocol" => v == p.protocol,
                "dst-port" => match p.dst_port {
                    Some(port) => port_list_holds(v, port)?,
                    None => false,
                },
                "src-address" => parse_net(v)?.contains(&p.src),
                "dst-address" => parse_net(v)?.contains(&p.dst),
                "src-address-list" => self.address_list_holds(v, p.src)?,
                "dst-address-list" => self.address_list_holds(v, p.dst)?,
                other => {
                    return Err(format!(
                        "firewall oracle: matcher {other}={value} is not modelled ({})",
                        rule.get("comment").unwrap_or("")
                    ));
                }
            };
            if hit == negated {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn list_holds(&self, list: &str, interface: &str) -> Result<bool, String> {
        match list {
            "all" => return Ok(true),
            "none" => return Ok(false),
            _ => {}
        }
        let lists = self.objects("/interface/list");
        let l = lists
            .iter()
            .find(|l| l.get("name") == Some(list))
            .ok_or_else(|| format!("firewall oracle: no interface list {list}"))?;
        if l.get("include").is_some_and(|v| !v.is_empty())
            || l.get("exclude").is_some_and(|v| !v.is_empty())
        {
            return Err(format!("firewall oracle: include/exclude of list {list}"));
        }
        Ok(self.objects("/interface/list/member").iter().any(|m| {
            m.get("list") == Some(list)
                && m.get("interface") == Some(interface)
                && m.get("disabled") != Some("true")
        }))
    }

    pub(crate) fn address_list_holds(&self, list: &str, a: Ipv4Addr) -> Result<bool, String> {
        for e in self.objects("/ip/firewall/address-list") {
            if e.get("list") != Some(list) || e.get("disabled") == Some("true") {
                continue;
            }
            if parse_net(e.get("address").unwrap_or(""))?.contains(&a) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

pub(crate) fn parse_net(s: &str) -> Result<Ipv4Net, String> {
    s.parse::<Ipv4Net>()
        .or_else(|_| s.parse::<Ipv4Addr>().map(Ipv4Net::from))
        .map_err(|_| format!("firewall oracle: address {s:?} is not modelled"))
}

pub(crate) fn port_list_holds(list: &str, port: u16) -> Result<bool, String> {
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u16, u16) = match (lo.parse(), hi.parse()) {
            (Ok(l), Ok(h)) => (l, h),
            _ => return Err(format!("firewall oracle: port {part:?} is not modelled")),
        };
        if (lo..=hi).contains(&port) {
            return Ok(true);
        }
    }
    Ok(false)
}
