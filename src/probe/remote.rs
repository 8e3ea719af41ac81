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
//! It changes nothing on the router but that rule's `src-address`/`disabled`: it runs `/ping`
//! and reads `/ip/address` and `/routing/rule`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use super::Prober;
use crate::config::{Addressing, Wan};
use crate::health::ProbeResult;
use crate::routeros::model::{Menu, Props, Query, Record, RosId};
use crate::routeros::{Client, Error as RestError};
use crate::types::LinkId;

const PING: Menu = Menu::from_static("/ping");
/// RouterOS's lower bound of `/ping interval` (7.20 command tree: 10ms..5s).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Upper bound of the wait for one remote echo. A dead path holds the serialized REST session
/// for the whole wait, delaying every other WAN's probes and the failover writes behind it, so
/// the wait is kept well below the core's maximum (which only serves to catch late replies).
pub const REMOTE_MAX_WAIT: Duration = Duration::from_millis(500);

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
pub fn pin_action(rows: &[Record], source: Ipv4Addr) -> PinAction {
    let Some(rule) = rows.first() else {
        return PinAction::Missing;
    };
    let pins = rule
        .str("src-address")
        .and_then(|a| a.strip_suffix("/32").unwrap_or(a).parse::<Ipv4Addr>().ok())
        == Some(source);
    if pins && !rule.disabled().unwrap_or(true) {
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

    /// The router-side source address of a WAN's probes, if it has one now.
    async fn source(&self, link: &LinkId) -> Option<Ipv4Addr> {
        match &self.wans.get(link)?.source {
            Source::Fixed(a) => Some(*a),
            Source::Dynamic { interface, cached } => {
                if let Some(a) = *lock(cached) {
                    return Some(a);
                }
                let found = self.lookup_address(interface).await;
                *lock(cached) = found;
                found
            }
        }
    }

    async fn lookup_address(&self, interface: &str) -> Option<Ipv4Addr> {
        let query = Query::all()
            .eq("interface", interface)
            .proplist(&["address", "disabled", "invalid"]);
        match self.client.print(&Menu::IP_ADDRESS, &query).await {
            Ok(rows) => rows
                .iter()
                .filter(|r| !r.disabled().unwrap_or(true))
                .filter_map(|r| r.str("address"))
                .find_map(address_of),
            Err(e) => {
                tracing::debug!(interface, error = %e, "cannot read the WAN's address");
                None
            }
        }
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

    /// Makes sure the router's rule pins `source` to the WAN's probe table; `false` when it
    /// cannot (no rule, or the REST call failed), in which case the probe is not sent.
    async fn ensure_pinned(&self, link: &LinkId, source: Ipv4Addr) -> bool {
        let Some(wan) = self.wans.get(link) else {
            return false;
        };
        let before = *lock(&wan.pin);
        if before == PinState::Pinned(source) {
            return true;
        }
        let comment = pin_comment(link);
        let query =
            Query::all()
                .eq("comment", &comment)
                .proplist(&[".id", "src-address", "disabled"]);
        let rows = match self.client.print(&Menu::ROUTING_RULE, &query).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(link = %link, error = %e, "cannot read the WAN's probe rule");
                return false;
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
                        PinState::Unknown
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
        matches!(after, PinState::Pinned(_))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding a cached address; the value is
    // still a valid Option.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `203.0.113.5/24` → `203.0.113.5`.
fn address_of(s: &str) -> Option<Ipv4Addr> {
    s.split('/').next()?.parse().ok()
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
pub fn classify_rows(target: Ipv4Addr, rows: &[Props]) -> ProbeResult {
    // With count=1 there is one row per echo; a summary row may follow on some versions.
    let Some(row) = rows
        .iter()
        .find(|r| r.str("seq").is_some())
        .or(rows.first())
    else {
        return ProbeResult::NoReply;
    };
    match row.str("status") {
        None => {
            let from_target = row
                .str("host")
                .and_then(|h| h.parse::<Ipv4Addr>().ok())
                .is_none_or(|h| h == target);
            match (row.duration("time"), from_target) {
                (Ok(Some(rtt)), true) => ProbeResult::Reply { rtt },
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
        let Some(source) = self.source(link).await else {
            tracing::debug!(link = %link, "no router-side source address for the WAN's probes");
            return ProbeResult::SendFailed;
        };
        if !self.ensure_pinned(link, source).await {
            return ProbeResult::SendFailed;
        }
        match self
            .client
            .run_rows(&PING, &ping_args(target, source, max_wait))
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
            Err(e) => {
                // A rejected ping (the source address is gone) or an unreachable REST API: either
                // way this probe told us nothing good about the WAN.
                if matches!(e, RestError::Rejected { .. }) {
                    self.forget_source(link);
                }
                tracing::debug!(link = %link, %target, error = %e, "router-side ping failed");
                ProbeResult::SendFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    const T: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);

    #[test]
    fn the_pin_rule_is_set_only_when_it_does_not_pin_the_current_address() {
        let rule = |pairs: &[(&str, &str)]| Record {
            id: RosId::parse("*A").unwrap(),
            props: row(pairs),
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
    fn addresses_parse() {
        assert_eq!(
            address_of("198.18.11.2/30"),
            Some(Ipv4Addr::new(198, 18, 11, 2))
        );
        assert_eq!(address_of("bogus"), None);
    }
}
