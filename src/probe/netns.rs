//! Container networking: finds each WAN's probe interface by its source address (RouterOS names
//! the container's interfaces after the veths and truncates long names, so a fixed name cannot be
//! trusted), and makes sure this network namespace routes each WAN's probes out of its own veth:
//! per WAN a routing table holding one default route via the router's side of that WAN's veth,
//! and a rule "from <WAN source> lookup <that table>".
//!
//! The container's own traffic (mail, webhooks, DNS) is not touched here: the install script lists
//! the management veth `uplinkd-mgmt` first, RouterOS gives the container its default route from
//! it, and unbound sockets leave from its address, which no router rule pins to a WAN, so they
//! follow the router's `main` table and the failover. Only source-bound probes use the tables below.
//!
//! Why a rule and not just SO_BINDTODEVICE: RouterOS gives only the first veth a default route;
//! a socket bound to another veth with no route through it makes Linux treat every target as
//! on-link and ARP for it. The source rule also makes replies pass a strict rp_filter (the
//! reverse lookup from the WAN's address finds the same veth). Both topologies are served: a veth
//! per WAN, and one veth carrying one address per WAN.
//!
//! It talks rtnetlink directly (a FROM scratch image has no `ip`), through a handful of
//! hand-built messages. It must not touch any route or rule other than its own tables and rules.
//! Why not a netlink crate: `netlink-packet-route` + `netlink-sys` made the arm64 binary
//! 393,216 B larger and the armv5 one 440,696 B (measured, docs/decisions/netlink.md).

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::icmp::IcmpPath;
use crate::config::{ProbePath, Wan};
use crate::types::LinkId;

/// First routing table id and rule priority used for WAN probe paths (WAN i gets base + i + 1).
/// Below `main`'s 32766 so the rule is consulted first; far from the small ids people use.
pub const TABLE_BASE: u32 = 30000;

/// How the WANs' probe addresses are laid out on the container's interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Each WAN's source address is on its own interface (RouterOS 7.20+ multi-veth).
    VethPerWan,
    /// Several WANs' source addresses share one interface (one veth, one address per WAN).
    SharedVeth,
}

/// Where one WAN's probes leave this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub link: LinkId,
    /// The interface that holds `source` (its name inside this namespace).
    pub device: String,
    pub ifindex: u32,
    pub source: Ipv4Addr,
    /// The router's side of the veth.
    pub gateway: Ipv4Addr,
    /// Routing table (and rule priority) of this WAN's probes.
    pub table: u32,
}

impl Attachment {
    pub fn icmp_path(&self) -> IcmpPath {
        IcmpPath {
            link: self.link.clone(),
            device: self.device.clone(),
            source: self.source,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The OS error is in the message, not a `source`: an error chain would print it twice.
    #[error("netlink {op}: {err}")]
    Netlink { op: &'static str, err: io::Error },
    #[error(
        "WAN {link}: no interface in this namespace holds its probe source address {source_addr} (found: {found})"
    )]
    NoInterface {
        link: LinkId,
        source_addr: Ipv4Addr,
        found: String,
    },
    #[error(
        "WAN {link}: the router address {gateway} is not inside {device}'s subnet {source_addr}/{prefix_len}"
    )]
    GatewayOffLink {
        link: LinkId,
        gateway: Ipv4Addr,
        device: String,
        source_addr: Ipv4Addr,
        prefix_len: u8,
    },
    #[error("WAN {link}: cannot install its probe route or rule (table {table}): {err}")]
    Install {
        link: LinkId,
        table: u32,
        err: io::Error,
    },
}

/// An IPv4 address on an interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub ifindex: u32,
    pub device: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

/// Finds, installs and reports: what the daemon calls once at start in container mode.
pub fn prepare(wans: &[Wan]) -> Result<(Topology, Vec<Attachment>), Error> {
    let paths: Vec<(LinkId, ProbePath)> = wans
        .iter()
        .map(|w| (w.id.clone(), w.probe.clone()))
        .collect();
    prepare_paths(&paths)
}

/// [`prepare`] for bare probe paths.
pub fn prepare_paths(paths: &[(LinkId, ProbePath)]) -> Result<(Topology, Vec<Attachment>), Error> {
    let addresses = interface_addresses()?;
    let attachments = discover(paths, &addresses)?;
    ensure_routes(&attachments)?;
    let topology = topology(&attachments);
    for a in &attachments {
        tracing::info!(link = %a.link, device = %a.device, source = %a.source,
            gateway = %a.gateway, table = a.table, ?topology, "probe path ready");
    }
    Ok((topology, attachments))
}

/// Matches each WAN's configured source address to the interface holding it.
pub fn discover(
    paths: &[(LinkId, ProbePath)],
    addresses: &[InterfaceAddress],
) -> Result<Vec<Attachment>, Error> {
    paths
        .iter()
        .enumerate()
        .map(|(i, (link, path))| {
            let Some(held) = addresses.iter().find(|a| a.address == path.source) else {
                let found = addresses
                    .iter()
                    .map(|a| format!("{} {}/{}", a.device, a.address, a.prefix_len))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Error::NoInterface {
                    link: link.clone(),
                    source_addr: path.source,
                    found,
                });
            };
            if !same_subnet(held.address, path.router_address, held.prefix_len) {
                return Err(Error::GatewayOffLink {
                    link: link.clone(),
                    gateway: path.router_address,
                    device: held.device.clone(),
                    source_addr: held.address,
                    prefix_len: held.prefix_len,
                });
            }
            if held.device != path.veth {
                tracing::info!(link = %link, configured = %path.veth, found = %held.device,
                    "probe interface found by address under another name");
            }
            Ok(Attachment {
                link: link.clone(),
                device: held.device.clone(),
                ifindex: held.ifindex,
                source: path.source,
                gateway: path.router_address,
                table: TABLE_BASE + i as u32 + 1,
            })
        })
        .collect()
}

/// Whether the WANs share an interface.
pub fn topology(attachments: &[Attachment]) -> Topology {
    let mut devices: Vec<u32> = attachments.iter().map(|a| a.ifindex).collect();
    devices.sort_unstable();
    devices.dedup();
    if devices.len() == attachments.len() {
        Topology::VethPerWan
    } else {
        Topology::SharedVeth
    }
}

/// Installs (idempotently) each WAN's default route in its table and its source rule.
pub fn ensure_routes(attachments: &[Attachment]) -> Result<(), Error> {
    let nl = Netlink::open()?;
    for a in attachments {
        let install = |err| Error::Install {
            link: a.link.clone(),
            table: a.table,
            err,
        };
        nl.request(&msg::default_route(a.ifindex, a.gateway, a.table))
            .map_err(install)?;
        match nl.request(&msg::source_rule(a.source, a.table, a.table)) {
            Ok(()) => {}
            // The rule is already there (a restart): it is exactly ours, by priority and content.
            Err(e) if e.raw_os_error() == Some(EEXIST) => {}
            Err(e) => return Err(install(e)),
        }
    }
    Ok(())
}

/// Every IPv4 address in this namespace with its interface.
pub fn interface_addresses() -> Result<Vec<InterfaceAddress>, Error> {
    let nl = Netlink::open()?;
    let names = nl
        .dump(&msg::dump_links())
        .map_err(|err| Error::Netlink {
            op: "list interfaces",
            err,
        })?
        .iter()
        .filter_map(|m| msg::parse_link(m))
        .collect::<Vec<_>>();
    let addresses = nl
        .dump(&msg::dump_addresses())
        .map_err(|err| Error::Netlink {
            op: "list addresses",
            err,
        })?
        .iter()
        .filter_map(|m| msg::parse_address(m))
        .map(|(ifindex, address, prefix_len)| InterfaceAddress {
            ifindex,
            device: names
                .iter()
                .find(|(i, _)| *i == ifindex)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("if{ifindex}")),
            address,
            prefix_len,
        })
        .collect();
    Ok(addresses)
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

const EEXIST: i32 = 17;
const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;

/// A NETLINK_ROUTE socket: one request at a time, answered before the next.
struct Netlink {
    socket: Socket,
}

impl Netlink {
    fn open() -> Result<Self, Error> {
        let open = || -> io::Result<Socket> {
            let socket = Socket::new(
                Domain::from(AF_NETLINK),
                Type::RAW,
                Some(Protocol::from(NETLINK_ROUTE)),
            )?;
            // The kernel answers at once; a bound wait keeps a broken namespace from hanging us.
            socket.set_read_timeout(Some(Duration::from_secs(2)))?;
            Ok(socket)
        };
        open()
            .map(|socket| Self { socket })
            .map_err(|err| Error::Netlink {
                op: "open socket",
                err,
            })
    }

    /// Sends a request with NLM_F_ACK and returns the kernel's verdict.
    fn request(&self, message: &[u8]) -> io::Result<()> {
        self.socket.send(message)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = (&self.socket).read(&mut buf)?;
            for m in msg::split(&buf[..n]) {
                if let Some(code) = msg::error_code(m) {
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
            }
        }
    }

    /// Sends a dump request and collects every message until NLMSG_DONE.
    fn dump(&self, message: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.socket.send(message)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32768];
        loop {
            let n = (&self.socket).read(&mut buf)?;
            for m in msg::split(&buf[..n]) {
                match msg::kind(m) {
                    msg::NLMSG_DONE => return Ok(out),
                    msg::NLMSG_ERROR => {
                        let code = msg::error_code(m).unwrap_or(0);
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => out.push(m.to_vec()),
                }
            }
        }
    }
}

/// The few rtnetlink messages we need, built and parsed by hand (all native-endian, 4-aligned).
mod msg {
    use std::net::Ipv4Addr;

    pub(super) const NLMSG_ERROR: u16 = 2;
    pub(super) const NLMSG_DONE: u16 = 3;
    const RTM_NEWLINK: u16 = 16;
    const RTM_GETLINK: u16 = 18;
    const RTM_NEWADDR: u16 = 20;
    const RTM_GETADDR: u16 = 22;
    const RTM_NEWROUTE: u16 = 24;
    const RTM_NEWRULE: u16 = 32;

    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_ACK: u16 = 0x4;
    const NLM_F_DUMP: u16 = 0x300;
    const NLM_F_REPLACE: u16 = 0x100;
    const NLM_F_EXCL: u16 = 0x200;
    const NLM_F_CREATE: u16 = 0x400;

    const AF_UNSPEC: u8 = 0;
    const AF_INET: u8 = 2;
    const RTPROT_STATIC: u8 = 4;
    const RT_SCOPE_UNIVERSE: u8 = 0;
    const RTN_UNICAST: u8 = 1;
    const FR_ACT_TO_TBL: u8 = 1;

    const RTA_OIF: u16 = 4;
    const RTA_GATEWAY: u16 = 5;
    const RTA_TABLE: u16 = 15;
    const FRA_SRC: u16 = 2;
    const FRA_PRIORITY: u16 = 6;
    const FRA_TABLE: u16 = 15;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    const IFLA_IFNAME: u16 = 3;

    const HEADER: usize = 16;

    fn align(n: usize) -> usize {
        (n + 3) & !3
    }

    /// A message under construction: header first, length patched in `finish`.
    struct Builder(Vec<u8>);

    impl Builder {
        fn new(kind: u16, flags: u16) -> Self {
            let mut b = Vec::with_capacity(64);
            b.extend_from_slice(&0u32.to_ne_bytes()); // length, patched
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(&flags.to_ne_bytes());
            b.extend_from_slice(&1u32.to_ne_bytes()); // sequence: one request at a time
            b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
            Self(b)
        }

        fn bytes(mut self, data: &[u8]) -> Self {
            self.0.extend_from_slice(data);
            self
        }

        fn attr(mut self, kind: u16, data: &[u8]) -> Self {
            let len = 4 + data.len();
            self.0.extend_from_slice(&(len as u16).to_ne_bytes());
            self.0.extend_from_slice(&kind.to_ne_bytes());
            self.0.extend_from_slice(data);
            self.0.resize(align(self.0.len()), 0);
            self
        }

        fn finish(mut self) -> Vec<u8> {
            let len = self.0.len() as u32;
            self.0[..4].copy_from_slice(&len.to_ne_bytes());
            self.0
        }
    }

    /// `default via <gateway> dev <ifindex> table <table>`, replacing what is there.
    pub(super) fn default_route(ifindex: u32, gateway: Ipv4Addr, table: u32) -> Vec<u8> {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let rtmsg = [
            AF_INET,
            0,
            0,
            0,
            0, // table: RT_TABLE_UNSPEC, the real id is in RTA_TABLE
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        Builder::new(
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .bytes(&rtmsg)
        .attr(RTA_TABLE, &table.to_ne_bytes())
        .attr(RTA_GATEWAY, &gateway.octets())
        .attr(RTA_OIF, &ifindex.to_ne_bytes())
        .finish()
    }

    /// `from <source>/32 lookup <table> priority <priority>`; EEXIST when already present.
    pub(super) fn source_rule(source: Ipv4Addr, table: u32, priority: u32) -> Vec<u8> {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        let hdr = [AF_INET, 0, 32, 0, 0, 0, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
        Builder::new(
            RTM_NEWRULE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .bytes(&hdr)
        .attr(FRA_SRC, &source.octets())
        .attr(FRA_TABLE, &table.to_ne_bytes())
        .attr(FRA_PRIORITY, &priority.to_ne_bytes())
        .finish()
    }

    pub(super) fn dump_links() -> Vec<u8> {
        // struct ifinfomsg: family, pad, type, index, flags, change (16 bytes).
        Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP)
            .bytes(&[AF_UNSPEC; 16])
            .finish()
    }

    pub(super) fn dump_addresses() -> Vec<u8> {
        // struct ifaddrmsg: family, prefixlen, flags, scope, index (8 bytes).
        Builder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP)
            .bytes(&[AF_INET, 0, 0, 0, 0, 0, 0, 0])
            .finish()
    }

    /// Splits a datagram into its messages (stops at anything malformed).
    pub(super) fn split(mut buf: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while buf.len() >= HEADER {
            let len = u32_at(buf, 0) as usize;
            if len < HEADER || len > buf.len() {
                break;
            }
            out.push(&buf[..len]);
            buf = &buf[align(len).min(buf.len())..];
        }
        out
    }

    pub(super) fn kind(m: &[u8]) -> u16 {
        u16::from_ne_bytes([m[4], m[5]])
    }

    /// The (negative errno or 0) code of an NLMSG_ERROR message.
    pub(super) fn error_code(m: &[u8]) -> Option<i32> {
        (kind(m) == NLMSG_ERROR && m.len() >= HEADER + 4)
            .then(|| i32::from_ne_bytes([m[16], m[17], m[18], m[19]]))
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Attributes after a fixed header of `fixed` bytes: (type, payload).
    fn attrs(m: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut rest = m.get(HEADER + fixed..).unwrap_or(&[]);
        while rest.len() >= 4 {
            let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
            if len < 4 || len > rest.len() {
                break;
            }
            out.push((u16::from_ne_bytes([rest[2], rest[3]]), &rest[4..len]));
            rest = &rest[align(len).min(rest.len())..];
        }
        out
    }

    /// `(ifindex, name)` of an RTM_NEWLINK message.
    pub(super) fn parse_link(m: &[u8]) -> Option<(u32, String)> {
        if kind(m) != RTM_NEWLINK || m.len() < HEADER + 16 {
            return None;
        }
        let ifindex = u32_at(m, HEADER + 4);
        let name = attrs(m, 16)
            .into_iter()
            .find(|(t, _)| *t == IFLA_IFNAME)
            .map(|(_, v)| {
                let v = v.split(|b| *b == 0).next().unwrap_or(&[]);
                String::from_utf8_lossy(v).into_owned()
            })?;
        Some((ifindex, name))
    }

    /// `(ifindex, address, prefix_len)` of an RTM_NEWADDR message for IPv4.
    pub(super) fn parse_address(m: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
        if kind(m) != RTM_NEWADDR || m.len() < HEADER + 8 || m[HEADER] != AF_INET {
            return None;
        }
        let prefix_len = m[HEADER + 1];
        let ifindex = u32_at(m, HEADER + 4);
        let all = attrs(m, 8);
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
        // links and equal to IFA_LOCAL elsewhere.
        let pick = |want: u16| {
            all.iter()
                .find(|(t, v)| *t == want && v.len() == 4)
                .map(|(_, v)| Ipv4Addr::new(v[0], v[1], v[2], v[3]))
        };
        let address = pick(IFA_LOCAL).or_else(|| pick(IFA_ADDRESS))?;
        Some((ifindex, address, prefix_len))
    }

    #[cfg(test)]
    pub(super) fn attrs_of(m: &[u8], fixed: usize) -> Vec<(u16, Vec<u8>)> {
        attrs(m, fixed)
            .into_iter()
            .map(|(t, v)| (t, v.to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_message_carries_table_gateway_and_device() {
        let m = msg::default_route(7, Ipv4Addr::new(198, 18, 2, 1), 30002);
        assert_eq!(m.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        let attrs = msg::attrs_of(&m, 12);
        assert_eq!(
            attrs,
            vec![
                (15, 30002u32.to_ne_bytes().to_vec()),
                (5, vec![198, 18, 2, 1]),
                (4, 7u32.to_ne_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn rule_message_matches_the_source_host() {
        let m = msg::source_rule(Ipv4Addr::new(198, 18, 2, 2), 30002, 30002);
        // fib_rule_hdr: src_len 32, action "to table".
        assert_eq!(m[16 + 2], 32);
        assert_eq!(m[16 + 7], 1);
        let attrs = msg::attrs_of(&m, 12);
        assert_eq!(attrs[0], (2, vec![198, 18, 2, 2]));
    }

    #[test]
    fn split_stops_at_a_truncated_message() {
        let a = msg::dump_links();
        let mut two = a.clone();
        two.extend_from_slice(&a[..10]);
        assert_eq!(msg::split(&two).len(), 1);
    }

    #[test]
    fn subnets() {
        let a = Ipv4Addr::new(198, 18, 1, 2);
        assert!(same_subnet(a, Ipv4Addr::new(198, 18, 1, 1), 30));
        assert!(!same_subnet(a, Ipv4Addr::new(198, 18, 1, 5), 30));
        assert!(same_subnet(a, Ipv4Addr::new(10, 0, 0, 1), 0));
        assert!(same_subnet(a, a, 32));
    }

    #[test]
    fn this_namespace_lists_loopback() {
        // Every namespace has lo with 127.0.0.1 once it is up; the test runner's certainly does.
        let addrs = interface_addresses().expect("netlink dump");
        assert!(
            addrs
                .iter()
                .any(|a| a.address == Ipv4Addr::LOCALHOST && a.device == "lo"),
            "{addrs:?}"
        );
    }
}
