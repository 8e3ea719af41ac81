//! Container-mode prober: ICMP echo through one socket per WAN, bound to that WAN's device
//! (SO_BINDTODEVICE) and source address, so a probe leaves through its WAN's path and a reply is
//! only ever counted for the WAN whose socket it arrived on. It never decides what to send or
//! when (the health core does) and never changes routes (see [`super::netns`]).
//!
//! Two traps of surge-ping 0.9.1 are handled here (research/rust-stack.md §3.1, §6):
//! - an ICMP error quoting our request (destination unreachable, TTL exceeded) is delivered to
//!   the waiting `ping()` as `Ok`, so the reply's type is checked: only type 0 counts as a reply;
//! - an unbound RAW socket receives a copy of every ICMP reply in the namespace, so two clients
//!   using the same identifier answer each other's waiters. Every WAN's socket is bound to its
//!   device and address, and on RAW each WAN gets its own identifier on top.
//!
//! A datagram ("ping") socket is tried first, a RAW one second; the kernel owns the identifier of
//! a datagram socket and delivers only that socket's replies to it. A datagram socket does not
//! see ICMP errors (Linux queues them on the error queue only with IP_RECVERR, which surge-ping
//! does not read), so there an unreachable path shows as [`ProbeResult::NoReply`]: slower to
//! judge than an error, never mistaken for a reply.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

use super::Prober;
use super::netns::{self, Attachment};
use crate::config::Wan;
use crate::health::ProbeResult;
use crate::types::LinkId;

/// ICMP Echo Reply.
const ECHO_REPLY: u8 = 0;
/// Payload of every echo: recognisable in a capture.
const PAYLOAD: &[u8] = b"uplinkd-probe\0\0\0";

/// The kind of ICMP socket that was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP` ("ping socket"): allowed by `net.ipv4.ping_group_range`.
    Datagram,
    /// `SOCK_RAW` + `IPPROTO_ICMP`: needs CAP_NET_RAW.
    Raw,
}

impl SocketKind {
    fn socket_type(self) -> Type {
        match self {
            SocketKind::Datagram => Type::DGRAM,
            SocketKind::Raw => Type::RAW,
        }
    }
}

/// Which kinds may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindPreference {
    /// Datagram first, RAW if the datagram socket is refused.
    Auto,
    /// Only this kind (tests, or a container known to allow only one).
    Only(SocketKind),
}

/// One WAN's probe path as the socket sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpPath {
    pub link: LinkId,
    /// Interface the socket is bound to (SO_BINDTODEVICE).
    pub device: String,
    /// Source address the socket is bound to.
    pub source: Ipv4Addr,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot open an ICMP socket: datagram refused ({dgram}; {dgram_hint}), raw refused ({raw}; {raw_hint})"
    )]
    NoIcmpSocket {
        dgram: io::Error,
        dgram_hint: String,
        raw: io::Error,
        raw_hint: String,
    },
    #[error("cannot open a {kind:?} ICMP socket ({hint}): {source}")]
    KindRefused {
        kind: SocketKind,
        hint: String,
        source: io::Error,
    },
    #[error(
        "cannot open the ICMP socket of WAN {link} on device {device} from {source_addr}: {err}"
    )]
    Bind {
        link: LinkId,
        device: String,
        source_addr: Ipv4Addr,
        err: io::Error,
    },
    #[error("WAN {0} is listed twice")]
    DuplicateLink(LinkId),
    /// The container's probe routes could not be prepared (the message names WAN and cause).
    #[error(transparent)]
    Netns(#[from] netns::Error),
}

/// One WAN's socket and its echo identifier (used on RAW only; the kernel picks it on DGRAM).
struct WanSocket {
    client: Client,
    ident: u16,
    /// The route and rule behind the socket, re-installed after a failed send (a veth that went
    /// down and up again loses its routes); `None` when the caller manages routing.
    attachment: Option<Attachment>,
}

/// The ICMP prober: one bound socket per WAN.
pub struct IcmpProber {
    kind: SocketKind,
    wans: HashMap<LinkId, WanSocket>,
}

impl IcmpProber {
    /// Opens one socket per WAN. Must run inside a tokio runtime (surge-ping spawns a receive task
    /// per socket), in the network namespace the probes leave from.
    pub fn new(paths: &[IcmpPath], preference: KindPreference) -> Result<Self, Error> {
        let kind = usable_kind(preference)?;
        let idents = identifiers(paths.len(), fastrand::u16(..));
        let mut wans = HashMap::with_capacity(paths.len());
        for (path, ident) in paths.iter().zip(idents) {
            let config = Config::builder()
                .kind(ICMP::V4)
                .sock_type_hint(kind.socket_type())
                .bind(SocketAddr::new(IpAddr::V4(path.source), 0))
                .interface(&path.device)
                .build();
            let bind_error = |err| Error::Bind {
                link: path.link.clone(),
                device: path.device.clone(),
                source_addr: path.source,
                err,
            };
            let client = Client::new(&config).map_err(bind_error)?;
            // surge-ping silently falls back to the other kind; we already know which one the
            // namespace allows, so a different kind here means the permission changed under us.
            let opened = client.get_socket().get_type();
            if opened != kind.socket_type() {
                return Err(bind_error(io::Error::other(format!(
                    "expected a {kind:?} socket, got {opened:?}"
                ))));
            }
            let socket = WanSocket {
                client,
                ident,
                attachment: None,
            };
            if wans.insert(path.link.clone(), socket).is_some() {
                return Err(Error::DuplicateLink(path.link.clone()));
            }
        }
        tracing::info!(kind = ?kind, wans = paths.len(), "ICMP probe sockets open");
        Ok(Self { kind, wans })
    }

    /// Container mode: finds each WAN's veth by its source address, installs the per-WAN routes
    /// and rules ([`netns::prepare`]), then opens the sockets.
    pub fn for_container(wans: &[Wan], preference: KindPreference) -> Result<Self, Error> {
        let (_topology, attachments) = netns::prepare(wans)?;
        Self::with_attachments(attachments, preference)
    }

    /// Opens the sockets for attachments already prepared, keeping them for repairs.
    pub fn with_attachments(
        attachments: Vec<Attachment>,
        preference: KindPreference,
    ) -> Result<Self, Error> {
        let paths: Vec<IcmpPath> = attachments.iter().map(Attachment::icmp_path).collect();
        let mut prober = Self::new(&paths, preference)?;
        for a in attachments {
            if let Some(wan) = prober.wans.get_mut(&a.link) {
                wan.attachment = Some(a);
            }
        }
        Ok(prober)
    }

    /// The kind of socket in use.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }
}

impl Prober for IcmpProber {
    async fn probe(
        &self,
        link: &LinkId,
        target: Ipv4Addr,
        seq: u16,
        max_wait: Duration,
    ) -> ProbeResult {
        let Some(wan) = self.wans.get(link) else {
            tracing::warn!(link = %link, "probe for a WAN without a socket");
            return ProbeResult::SendFailed;
        };
        let mut pinger = wan
            .client
            .pinger(IpAddr::V4(target), PingIdentifier(wan.ident))
            .await;
        pinger.timeout(max_wait);
        let outcome = pinger.ping(PingSequence(seq), PAYLOAD).await;
        let result = classify(link, target, outcome);
        if !matches!(result, ProbeResult::Reply { .. })
            && let Some(attachment) = &wan.attachment
        {
            // A veth that went down lost its routes; when it comes back, sends succeed but go
            // nowhere. Idempotent and one netlink round trip: cheap enough for every failed probe.
            if let Err(e) = netns::ensure_routes(std::slice::from_ref(attachment)) {
                tracing::debug!(link = %link, error = %e, "probe route not restored yet");
            }
        }
        result
    }
}

/// Maps surge-ping's outcome to what the health core counts.
fn classify(
    link: &LinkId,
    target: Ipv4Addr,
    outcome: Result<(IcmpPacket, Duration), SurgeError>,
) -> ProbeResult {
    match outcome {
        Ok((IcmpPacket::V4(packet), rtt)) => {
            let icmp_type = packet.get_icmp_type().0;
            if icmp_type == ECHO_REPLY && packet.get_source() == target {
                ProbeResult::Reply { rtt }
            } else {
                tracing::debug!(link = %link, %target, icmp_type, code = packet.get_icmp_code().0,
                    from = %packet.get_source(), "ICMP error for a probe");
                ProbeResult::IcmpError
            }
        }
        // We only ever send IPv4; an IPv6 packet cannot answer it.
        Ok((IcmpPacket::V6(_), _)) => ProbeResult::IcmpError,
        Err(SurgeError::Timeout { .. }) => ProbeResult::NoReply,
        Err(err) => {
            tracing::debug!(link = %link, %target, error = %err, "probe send failed");
            ProbeResult::SendFailed
        }
    }
}

/// `n` distinct echo identifiers starting at `base`: each WAN's RAW socket must answer only its
/// own waiters even if a reply reached the wrong socket.
fn identifiers(n: usize, base: u16) -> Vec<u16> {
    (0..n).map(|i| base.wrapping_add(i as u16)).collect()
}

/// Finds the kind of ICMP socket this namespace allows, or says exactly what is missing.
pub fn usable_kind(preference: KindPreference) -> Result<SocketKind, Error> {
    let try_open = |kind: SocketKind| {
        Socket::new(Domain::IPV4, kind.socket_type(), Some(Protocol::ICMPV4)).map(drop)
    };
    match preference {
        KindPreference::Only(kind) => match try_open(kind) {
            Ok(()) => Ok(kind),
            Err(source) => Err(Error::KindRefused {
                kind,
                hint: hint(kind),
                source,
            }),
        },
        KindPreference::Auto => {
            let dgram = match try_open(SocketKind::Datagram) {
                Ok(()) => return Ok(SocketKind::Datagram),
                Err(e) => e,
            };
            match try_open(SocketKind::Raw) {
                Ok(()) => Ok(SocketKind::Raw),
                Err(raw) => Err(Error::NoIcmpSocket {
                    dgram,
                    dgram_hint: hint(SocketKind::Datagram),
                    raw,
                    raw_hint: hint(SocketKind::Raw),
                }),
            }
        }
    }
}

/// What the kernel wants for a kind of ICMP socket, with the values read from this namespace.
fn hint(kind: SocketKind) -> String {
    match kind {
        SocketKind::Datagram => {
            let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            format!(
                "needs our group inside net.ipv4.ping_group_range, which is `{range}`; \
                 set it to `0 2147483647` in the container's namespace or run as root"
            )
        }
        SocketKind::Raw => {
            "needs CAP_NET_RAW: run the container as root (user=0:0) or grant the capability"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_distinct_even_when_wrapping() {
        let ids = identifiers(4, u16::MAX - 1);
        assert_eq!(ids, vec![u16::MAX - 1, u16::MAX, 0, 1]);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn timeouts_and_send_errors_are_told_apart() {
        let link = LinkId::new("ISP1");
        let target = Ipv4Addr::new(198, 18, 100, 1);
        assert_eq!(
            classify(
                &link,
                target,
                Err(SurgeError::Timeout {
                    seq: PingSequence(1)
                })
            ),
            ProbeResult::NoReply
        );
        assert_eq!(
            classify(
                &link,
                target,
                Err(SurgeError::IOError(io::Error::from_raw_os_error(101)))
            ),
            ProbeResult::SendFailed
        );
    }

    #[test]
    fn hints_name_what_is_missing() {
        assert!(hint(SocketKind::Datagram).contains("ping_group_range"));
        assert!(hint(SocketKind::Raw).contains("CAP_NET_RAW"));
    }
}
