//! Remote-mode prober, for routers that cannot run containers (MMIPS: RB750Gr3, old hEX): uplinkd
//! runs on another host and asks the router to send each probe itself, over REST:
//! `POST /rest/ping {address, src-address=<WAN address>, count=1, interval=<max wait>}`. The
//! router's rule "src-address=<WAN address> lookup-only-in-table uplinkd-<WAN>" (install script)
//! makes the echo leave through that WAN, so the same monitors serve every WAN, as in container
//! mode. The health core, policy and reconcile are the same.
//!
//! The rule must pin the WAN's *current* address: before the first probe through a WAN (and
//! again whenever its address changes: a new DHCP lease or PPPoE session) the prober reads the
//! rule tagged `uplinkd:probe:<WAN>-pin` and sets its `src-address` (and enables it) when it
//! differs. Without that rule a probe is not sent at all (reported as a send failure): an
//! unpinned echo could leave through another WAN and answer for a dead one.
//!
//! Costs: RouterOS serializes a client's REST calls (one session per user and source address),
//! so every probe occupies the session for its round trip, and a probe on a dead path for the
//! whole `interval` (RouterOS has no other per-echo timeout). docs/probing.md gives the measured
//! call rate and what follows for the probe interval.
//!
//! Judging: a probe may wait for the session behind another WAN's dead ping, an import or a
//! stalled call, so its result is timed by the RTT the router reports ([`Timing::Reported`]),
//! never by when it arrives here. A REST fault (5xx, 401, a timeout, a refused connection, an
//! unreadable WAN address) is [`ProbeResult::NoEvidence`]: the router did not tell us anything
//! about the WAN, so it must never count as the WAN's loss.
//!
//! It changes nothing on the router but that rule's `src-address`/`disabled`: it runs `/ping`
//! and reads `/ip/address` and `/routing/rule`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::Prober;
use crate::config::{Addressing, Wan};
use crate::health::{ProbeResult, Timing};
use crate::routeros::model::{Menu, Props, Query, RosId};
use crate::routeros::rows::{Enabled, InterfaceAddress, PingRow, RoutingRule};
use crate::routeros::{Client, Error as RestError};
use crate::types::LinkId;

const PING: Menu = Menu::from_static("/ping");
/// RouterOS's lower bound of `/ping interval` (7.20 command tree: 10ms..5s).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Upper bound of the wait for one remote echo. A dead path holds the serialized REST session
/// for the whole wait, delaying every other WAN's probes and the failover writes behind it, so
/// the wait is kept well below the core's maximum (which only serves to catch late replies).
pub const REMOTE_MAX_WAIT: Duration = crate::config::REMOTE_PROBE_WAIT;
/// How many REST call bounds a probe may stay outstanding before the core gives up on it (as no
/// evidence): its own call, and calls queued ahead of it on the session.
const PENDING_CALLS: u32 = 3;

/// Where a WAN's echoes come from on the router.
#[derive(Debug)]
enum Source {
    /// A static WAN's configured address.
    Fixed(Ipv4Addr),
    /// A DHCP or PPPoE WAN: read from `/ip/address` on the WAN's interface, cached until a probe
    /// fails (the address may have changed).
    Dynamic {
        interface: String,
        cached: Mutex<Option<Ipv4Addr>>,
    },
}

/// What the router's pin rule of a WAN was last seen to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinState {
    /// Not checked yet (or the address changed since).
    Unknown,
    /// The rule pins this address and is enabled.
    Pinned(Ipv4Addr),
    /// No rule with the WAN's tag: probes are held back until the install script adds it.
    Missing,
}

/// One WAN as the remote prober sees it.
#[derive(Debug)]
struct RemoteWan {
    source: Source,
    pin: Mutex<PinState>,
}

/// What to do about a WAN's pin rule, from the rows tagged with its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinAction {
    /// The rule pins `source` and is enabled.
    InPlace,
    /// The rule exists but pins another address (or none) or is disabled: set it.
    Set(RosId),
    /// No such rule.
    Missing,
}

/// Decides [`PinAction`] for `source` from the `/routing/rule` rows carrying the WAN's tag.
pub fn pin_action(rows: &[RoutingRule], source: Ipv4Addr) -> PinAction {
    let Some(rule) = rows.first() else {
        return PinAction::Missing;
    };
    let pins = rule.src_address == Some(Ipv4Net::from(source));
    if pins && rule.enabled == Enabled::Yes {
        PinAction::InPlace
    } else {
        PinAction::Set(rule.id.clone())
    }
}

/// The tag of a WAN's pin rule (the install script's `uplinkd:probe:<WAN>-pin`).
pub fn pin_comment(link: &LinkId) -> String {
    crate::naming::tag("probe", &format!("{link}-pin"))
}

/// The remote prober: the router pings, we read the answer.
pub struct RemoteProber {
    client: Client,
    wans: HashMap<LinkId, RemoteWan>,
}

impl RemoteProber {
    pub fn new(client: Client, wans: &[Wan]) -> Self {
        let wans = wans
            .iter()
            .map(|w| {
                let source = match &w.addressing {
                    Addressing::Static { address, .. } => Source::Fixed(address.addr()),
                    Addressing::Dhcp | Addressing::Pppoe { .. } => Source::Dynamic {
                        interface: w.interface.clone(),
                        cached: Mutex::new(None),
                    },
                };
                let wan = RemoteWan {
                    source,
                    pin: Mutex::new(PinState::Unknown),
                };
                (w.id.clone(), wan)
            })
            .collect();
        Self { client, wans }
    }

    /// The router-side source address of a WAN's probes: `Ok(None)` when the WAN has none now
    /// (a WAN fault), `Err` when it could not be read (a REST fault).
    async fn source(&self, link: &LinkId) -> Result<Option<Ipv4Addr>, RestError> {
        let Some(wan) = self.wans.get(link) else {
            return Ok(None);
        };
        match &wan.source {
            Source::Fixed(a) => Ok(Some(*a)),
            Source::Dynamic { interface, cached } => {
                if let Some(a) = *lock(cached) {
                    return Ok(Some(a));
                }
                let found = self.lookup_address(interface).await?;
                *lock(cached) = found;
                Ok(found)
            }
        }
    }

    async fn lookup_address(&self, interface: &str) -> Result<Option<Ipv4Addr>, RestError> {
        let query = Query::all().eq("interface", interface);
        let rows: Vec<InterfaceAddress> = self.client.items(&Menu::IP_ADDRESS, query).await?;
        Ok(rows
            .iter()
            .find(|r| r.enabled == Enabled::Yes && r.valid)
            .map(|r| r.address.addr()))
    }

    fn forget_source(&self, link: &LinkId) {
        if let Some(RemoteWan {
            source: Source::Dynamic { cached, .. },
            ..
        }) = self.wans.get(link)
        {
            *lock(cached) = None;
        }
    }

    /// Makes sure the router's rule pins `source` to the WAN's probe table. Anything but
    /// [`Pinned::Yes`] means the probe is not sent.
    async fn ensure_pinned(&self, link: &LinkId, source: Ipv4Addr) -> Pinned {
        let Some(wan) = self.wans.get(link) else {
            return Pinned::No;
        };
        let before = *lock(&wan.pin);
        if before == PinState::Pinned(source) {
            return Pinned::Yes;
        }
        let comment = pin_comment(link);
        let query = Query::all().eq("comment", &comment);
        let rows: Vec<RoutingRule> = match self.client.items(&Menu::ROUTING_RULE, query).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(link = %link, error = %e, "cannot read the WAN's probe rule");
                return Pinned::Unknown;
            }
        };
        let after = match pin_action(&rows, source) {
            PinAction::InPlace => PinState::Pinned(source),
            PinAction::Set(id) => {
                let props = Props::new()
                    .with("src-address", format!("{source}/32"))
                    .with("disabled", false);
                match self.client.set(&Menu::ROUTING_RULE, &id, &props).await {
                    Ok(()) => {
                        tracing::info!(link = %link, %source, rule = %comment,
                            "probe rule now pins the WAN's address");
                        PinState::Pinned(source)
                    }
                    Err(e) => {
                        tracing::warn!(link = %link, %source, error = %e,
                            "cannot set the WAN's probe rule");
                        *lock(&wan.pin) = PinState::Unknown;
                        return if is_rest_fault(&e) {
                            Pinned::Unknown
                        } else {
                            Pinned::No
                        };
                    }
                }
            }
            PinAction::Missing => {
                if before != PinState::Missing {
                    tracing::warn!(link = %link, rule = %comment,
                        "no probe rule on the router: probes through this WAN are held back \
                         (an unpinned echo could leave through another WAN); import the remote \
                         install script (`uplinkd render install`)");
                }
                PinState::Missing
            }
        };
        *lock(&wan.pin) = after;
        match after {
            PinState::Pinned(_) => Pinned::Yes,
            PinState::Unknown | PinState::Missing => Pinned::No,
        }
    }
}

/// Whether a WAN's probes may be sent, as [`RemoteProber::ensure_pinned`] found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pinned {
    /// The rule pins the WAN's current address.
    Yes,
    /// The rule is missing or the router refused to set it: a fault of this WAN's setup.
    No,
    /// The rule could not be read or written for a REST fault: nothing known about the WAN.
    Unknown,
}

/// Whether a REST error says nothing about the WAN's path: the API itself failed (5xx, 401, a
/// timeout, a broken connection, an undecodable answer), as opposed to the router refusing the
/// call's content (4xx, such as a ping from an address that is gone).
pub fn is_rest_fault(e: &RestError) -> bool {
    match e {
        RestError::Unauthorized { .. }
        | RestError::Timeout { .. }
        | RestError::Transport { .. }
        | RestError::Decode { .. }
        | RestError::Config { .. }
        | RestError::Tls { .. } => true,
        RestError::Rejected { status, .. } => *status >= 500,
        RestError::NotFound { .. } => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding a cached address; the value is
    // still a valid Option.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `/ping` arguments of one probe.
pub fn ping_args(target: Ipv4Addr, source: Ipv4Addr, max_wait: Duration) -> Props {
    let interval = max_wait.clamp(MIN_INTERVAL, REMOTE_MAX_WAIT);
    Props::new()
        .with("address", target.to_string())
        .with("src-address", source.to_string())
        .with("count", "1")
        .with("interval", format!("{}ms", interval.as_millis()))
}

/// Reads `/ping`'s answer for one echo.
pub fn classify_rows(target: Ipv4Addr, rows: &[PingRow]) -> ProbeResult {
    // With count=1 there is one row per echo; a summary row may follow on some versions.
    let Some(row) = rows.iter().find(|r| r.seq.is_some()).or(rows.first()) else {
        return ProbeResult::NoReply;
    };
    match row.status.as_deref() {
        None => {
            let from_target = row.host.is_none_or(|h| h == target);
            match (row.time, from_target) {
                (Some(rtt), true) => ProbeResult::Reply { rtt },
                _ => ProbeResult::NoReply,
            }
        }
        Some(s) if s.contains("timeout") => ProbeResult::NoReply,
        // "net unreachable", "host unreachable", "TTL exceeded", ...: an ICMP error came back.
        Some(_) => ProbeResult::IcmpError,
    }
}

impl Prober for RemoteProber {
    async fn probe(
        &self,
        link: &LinkId,
        target: Ipv4Addr,
        _seq: u16,
        max_wait: Duration,
    ) -> ProbeResult {
        let source = match self.source(link).await {
            Ok(Some(source)) => source,
            Ok(None) => {
                tracing::debug!(link = %link, "no router-side source address for the WAN's probes");
                return ProbeResult::SendFailed;
            }
            Err(e) => {
                tracing::debug!(link = %link, error = %e, "cannot read the WAN's address");
                return ProbeResult::NoEvidence;
            }
        };
        match self.ensure_pinned(link, source).await {
            Pinned::Yes => {}
            Pinned::No => return ProbeResult::SendFailed,
            Pinned::Unknown => return ProbeResult::NoEvidence,
        }
        match self
            .client
            .run::<PingRow>(&PING, &ping_args(target, source, max_wait))
            .await
        {
            Ok(rows) => {
                let result = classify_rows(target, &rows);
                // A leased address may have changed under a failing WAN (a router may time the
                // old source out rather than reject it): read it again before the next probe.
                if !matches!(result, ProbeResult::Reply { .. }) {
                    self.forget_source(link);
                }
                result
            }
            Err(e) if is_rest_fault(&e) => {
                // The REST API failed, not the WAN: no evidence either way.
                tracing::debug!(link = %link, %target, error = %e, "router-side ping not answered");
                ProbeResult::NoEvidence
            }
            Err(e) => {
                // The router refused this ping (the source address is gone): the WAN's fault.
                self.forget_source(link);
                tracing::debug!(link = %link, %target, error = %e, "router-side ping refused");
                ProbeResult::SendFailed
            }
        }
    }

    /// The router's reported RTT judges each probe, and a probe may stay outstanding for a few
    /// REST call bounds (queued behind other calls) before it counts as no evidence.
    fn timing(&self) -> Timing {
        Timing::Reported {
            max_pending: self.client.timeout().saturating_mul(PENDING_CALLS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::routeros::rows::Attrs as _;
    use crate::routeros::rows::Item as _;

    fn row(pairs: &[(&str, &str)]) -> PingRow {
        PingRow::decode(&pairs.iter().copied().collect()).expect("a ping row")
    }

    const T: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);

    #[test]
    fn the_pin_rule_is_set_only_when_it_does_not_pin_the_current_address() {
        let rule = |pairs: &[(&str, &str)]| {
            RoutingRule::decode(
                RosId::parse("*A").unwrap(),
                &pairs.iter().copied().collect(),
            )
            .expect("a routing rule")
        };
        let src = Ipv4Addr::new(198, 18, 11, 2);
        let set = PinAction::Set(RosId::parse("*A").unwrap());
        assert_eq!(pin_action(&[], src), PinAction::Missing);
        for (pairs, want) in [
            (
                &[("src-address", "198.18.11.2/32"), ("disabled", "false")][..],
                PinAction::InPlace,
            ),
            (
                &[("src-address", "198.18.11.2"), ("disabled", "false")][..],
                PinAction::InPlace,
            ),
            // A new lease: the rule still pins the old address.
            (
                &[("src-address", "198.18.11.9/32"), ("disabled", "false")][..],
                set.clone(),
            ),
            // The install script's placeholder for a DHCP/PPPoE WAN: disabled, no address.
            (&[("disabled", "true")][..], set.clone()),
            (
                &[("src-address", "198.18.11.2/32"), ("disabled", "true")][..],
                set.clone(),
            ),
        ] {
            assert_eq!(pin_action(&[rule(pairs)], src), want, "{pairs:?}");
        }
        assert_eq!(pin_comment(&LinkId::new("ISP1")), "uplinkd:probe:ISP1-pin");
    }

    #[test]
    fn rows_are_classified() {
        let ok = row(&[
            ("seq", "0"),
            ("host", "198.18.100.1"),
            ("time", "12ms345us"),
            ("sent", "1"),
            ("received", "1"),
        ]);
        assert_eq!(
            classify_rows(T, &[ok]),
            ProbeResult::Reply {
                rtt: Duration::from_micros(12_345)
            }
        );
        let timeout = row(&[
            ("seq", "0"),
            ("host", "198.18.100.1"),
            ("status", "timeout"),
        ]);
        assert_eq!(classify_rows(T, &[timeout]), ProbeResult::NoReply);
        let unreachable = row(&[
            ("seq", "0"),
            ("host", "198.18.11.1"),
            ("status", "net unreachable"),
        ]);
        assert_eq!(classify_rows(T, &[unreachable]), ProbeResult::IcmpError);
        assert_eq!(classify_rows(T, &[]), ProbeResult::NoReply);
        // A reply from somewhere else is not the target answering.
        let other = row(&[("seq", "0"), ("host", "198.18.100.9"), ("time", "1ms")]);
        assert_eq!(classify_rows(T, &[other]), ProbeResult::NoReply);
    }

    #[test]
    fn ping_is_bounded() {
        let a = ping_args(T, Ipv4Addr::new(198, 18, 11, 2), Duration::from_secs(30));
        assert_eq!(a.str("count"), Some("1"));
        assert_eq!(a.str("interval"), Some("500ms"));
        assert_eq!(a.str("src-address"), Some("198.18.11.2"));
        let a = ping_args(T, Ipv4Addr::new(198, 18, 11, 2), Duration::from_millis(1));
        assert_eq!(a.str("interval"), Some("10ms"));
    }

    #[test]
    fn only_the_api_failing_is_a_rest_fault() {
        use crate::routeros::Method;
        let path = || "/rest/ping".to_string();
        let rejected = |status| RestError::Rejected {
            method: Method::Post,
            path: path(),
            status,
            message: "x".into(),
            detail: None,
        };
        let table = [
            (rejected(500), true),
            (rejected(503), true),
            // The router refused this ping (a source address it no longer has): the WAN's.
            (rejected(400), false),
            (
                RestError::NotFound {
                    method: Method::Post,
                    path: path(),
                    detail: None,
                },
                false,
            ),
            (
                RestError::Unauthorized {
                    method: Method::Post,
                    path: path(),
                },
                true,
            ),
            (
                RestError::Timeout {
                    method: Method::Post,
                    path: path(),
                    after: Duration::from_secs(5),
                },
                true,
            ),
            (
                RestError::Transport {
                    method: Method::Post,
                    path: path(),
                    cause: "connection refused".into(),
                },
                true,
            ),
            (
                RestError::Decode {
                    method: Method::Post,
                    path: path(),
                    what: "x".into(),
                },
                true,
            ),
        ];
        for (e, want) in table {
            assert_eq!(is_rest_fault(&e), want, "{e}");
        }
    }
}
