//! Resolution: the file layer (all `Option`, strings) becomes the plain [`Config`], with every
//! default applied and every value parsed and cross-checked. The first problem found is
//! returned, naming its key. Reads only the secret files the configuration points to.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;

use super::error::{ConfigError, KeyPath, Origins};
use super::file::{self, FileConfig};
use super::health::HealthFile;
use super::*;
use crate::naming;
use crate::types::{LinkId, Secret};

/// Default REST call bound: RouterOS answers a print of a few tagged objects in milliseconds; a
/// call that takes seconds is a stuck session (one per user and address), better retried.
pub const DEFAULT_REST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one remote probe may hold the router's REST session: `/ping interval=` of an echo
/// that gets no answer (the remote prober's wait). Every WAN's pings share that one session.
pub const REMOTE_PROBE_WAIT: Duration = Duration::from_millis(500);
/// Remote mode's default probe interval is never below this, however few the monitors.
pub const REMOTE_MIN_DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default status endpoint: loopback only, so it is reached from `uplinkd status` in the same
/// container and exposed to the LAN only on purpose.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:9180";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/uplinkd";
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(60);
pub const DEFAULT_REST_USER: &str = "uplinkd";
/// The seed's reminders: 60 and 360 minutes after a failure.
pub const DEFAULT_REMINDERS: [Duration; 2] =
    [Duration::from_secs(60 * 60), Duration::from_secs(360 * 60)];
/// The seed's memory alarm level (its hourly `check-memory`).
pub const DEFAULT_MEMORY_PERCENT: u8 = 90;
/// Highest weight of one WAN: each PCC bucket is one mangle rule, so the sum of weights is the
/// number of rules; 100 keeps it readable and still expresses any useful ratio.
pub const MAX_WEIGHT: i64 = 100;
/// Largest secret file read: a password is short; this bounds a mistaken path (a log, a device).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Names keys the way the user wrote them (file key or environment variable).
struct Ctx<'a> {
    origins: &'a Origins,
    secrets: Secrets,
}

impl Ctx<'_> {
    fn name(&self, key: &KeyPath) -> String {
        self.origins.describe(key)
    }

    fn missing(&self, key: &KeyPath, expected: &str) -> ConfigError {
        let expected = if expected.contains("UPLINKD_") {
            expected.to_string()
        } else {
            format!("{expected} (in the file, or as {})", key.env_var())
        };
        ConfigError::Missing {
            key: key.to_string(),
            expected,
        }
    }

    /// A required secret that was not given: an error, unless secrets are not needed.
    fn needed_secret(&self, key: &KeyPath, expected: &str) -> Result<Secret, ConfigError> {
        match self.secrets {
            Secrets::Required => Err(self.missing(key, expected)),
            Secrets::NotNeeded => Ok(Secret::new("")),
        }
    }

    fn invalid(&self, key: &KeyPath, expected: &str, got: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            key: self.name(key),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    fn conflict(&self, key: &KeyPath, problem: impl Into<String>) -> ConfigError {
        ConfigError::Conflict {
            key: self.name(key),
            problem: problem.into(),
        }
    }

    fn required<'v>(
        &self,
        key: &KeyPath,
        v: &'v Option<String>,
        expected: &str,
    ) -> Result<&'v str, ConfigError> {
        match v.as_deref() {
            Some(s) => Ok(s),
            None => Err(self.missing(key, expected)),
        }
    }

    fn ipv4(&self, key: &KeyPath, s: &str) -> Result<Ipv4Addr, ConfigError> {
        s.trim()
            .parse()
            .map_err(|_| self.invalid(key, "an IPv4 address like 192.168.0.1", format!("{s:?}")))
    }

    fn ipv4_net(&self, key: &KeyPath, s: &str) -> Result<Ipv4Net, ConfigError> {
        s.trim().parse().map_err(|_| {
            self.invalid(
                key,
                "an IPv4 address with prefix length like 192.168.0.3/24",
                format!("{s:?}"),
            )
        })
    }

    fn duration(&self, key: &KeyPath, s: &str) -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(s.trim()).map_err(|_| {
            self.invalid(
                key,
                "a duration like \"500ms\", \"10s\" or \"60m\"",
                format!("{s:?}"),
            )
        })?;
        if d.is_zero() {
            return Err(self.invalid(key, "a duration greater than zero", format!("{s:?}")));
        }
        Ok(d)
    }

    fn int_in(&self, key: &KeyPath, v: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(self.invalid(key, &format!("a whole number from {lo} to {hi}"), v))
        }
    }

    /// A RouterOS object name (interface, bridge, user): it ends up quoted in scripts and REST
    /// bodies, so quotes, backslashes, `$` and control characters are refused outright.
    fn ros_name(&self, key: &KeyPath, s: &str, what: &str) -> Result<String, ConfigError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.trim() == s
            && !s
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '\\' | '$' | '?'));
        if ok {
            Ok(s.to_string())
        } else {
            Err(self.invalid(
                key,
                &format!("{what}: 1 to 64 characters without quotes, backslash, $, ? or surrounding spaces"),
                format!("{s:?}"),
            ))
        }
    }

    /// Plain text that goes into logs and scripts (labels, users, addresses): no control
    /// characters or quotes.
    fn text(&self, key: &KeyPath, s: &str, what: &str) -> Result<String, ConfigError> {
        if s.trim().is_empty()
            || s.len() > 256
            || s.chars().any(|c| c.is_control() || matches!(c, '"' | '\\'))
        {
            return Err(self.invalid(
                key,
                &format!(
                    "{what}: 1 to 256 characters without quotes, backslash or control characters"
                ),
                format!("{s:?}"),
            ));
        }
        Ok(s.to_string())
    }

    /// A secret given inline or as a file: exactly one source; the file is read now.
    fn secret(
        &self,
        parent: &KeyPath,
        inline_key: &str,
        inline: Option<Secret>,
        file_key: &str,
        file: Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        let inline_path = parent.field(inline_key);
        let file_path = parent.field(file_key);
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.conflict(
                &inline_path,
                format!(
                    "give either {} or {}, not both",
                    self.name(&inline_path),
                    self.name(&file_path)
                ),
            )),
            (Some(s), None) if s.is_empty() => {
                Err(self.invalid(&inline_path, "a non-empty secret", "an empty value"))
            }
            (Some(s), None) => Ok(Some(s)),
            // A command that needs no secret (`render`, `status`) does not open the file: it
            // may exist only on the router, inside the container.
            (None, Some(_)) if self.secrets == Secrets::NotNeeded => Ok(Some(Secret::new(""))),
            (None, Some(path)) => read_secret(&self.name(&file_path), &path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn read_secret(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let err = |problem: String| ConfigError::SecretFile {
        key: key.to_string(),
        path: path.to_path_buf(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(err(format!(
            "larger than {MAX_SECRET_FILE} bytes: not a secret file"
        )));
    }
    // Files written by `echo` or an editor end in a newline that is not part of the secret.
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(Secret::new(value))
}

/// Resolves the (environment-overlaid) file layer into a [`Config`].
pub(crate) fn resolve(
    f: FileConfig,
    origins: &Origins,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    let cx = Ctx { origins, secrets };
    let root = KeyPath::root();

    let router_file = f.router.unwrap_or_default();
    let mode = resolve_mode(
        &cx,
        &root.field("router").field("mode"),
        router_file.mode.as_deref(),
    )?;
    let version = resolve_version(
        &cx,
        &root.field("router").field("version"),
        router_file.version.as_deref(),
    )?;
    let apply_base = resolve_apply_base(
        &cx,
        &root.field("router").field("apply_base"),
        router_file.apply_base.as_deref(),
    )?;

    let watchdog = resolve_watchdog(
        &cx,
        &root.field("router").field("watchdog"),
        router_file.watchdog.as_deref(),
    )?;

    let wans = resolve_wans(&cx, f.wan.unwrap_or_default())?;
    let health = resolve_health(&cx, f.health.unwrap_or_default(), &wans, mode)?;
    let balance = resolve_balance(&cx, f.balance.unwrap_or_default(), &wans)?;
    let rest = resolve_rest(&cx, f.rest.unwrap_or_default(), mode, &wans)?;
    let (lan, sections) = resolve_lan(&cx, f.lan, f.sections.unwrap_or_default())?;
    check_names_and_subnets(&cx, lan.as_ref(), &wans, mode)?;
    let alerts = resolve_alerts(&cx, f.alerts.unwrap_or_default())?;
    let email = match f.email {
        Some(e) => Some(resolve_email(&cx, e)?),
        None => None,
    };
    let webhooks = f
        .webhook
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, w)| resolve_webhook(&cx, &root.field("webhook").index(i), w))
        .collect::<Result<Vec<_>, _>>()?;
    let status = resolve_status(&cx, f.status.unwrap_or_default())?;
    let traffic = resolve_traffic(&cx, f.lists, f.policy, f.rule, &wans)?;
    let state_dir = f
        .state_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if !state_dir.is_absolute() {
        return Err(cx.invalid(
            &root.field("state_dir"),
            "an absolute directory path",
            state_dir.display(),
        ));
    }
    let reconcile_file = f.reconcile.unwrap_or_default();
    let resync_key = root.field("reconcile").field("resync_interval");
    let resync_interval = match reconcile_file.resync_interval.as_deref() {
        Some(s) => cx.duration(&resync_key, s)?,
        None => DEFAULT_RESYNC,
    };
    if resync_interval < Duration::from_secs(1) {
        return Err(cx.invalid(
            &resync_key,
            "a duration of at least 1s",
            humantime::format_duration(resync_interval),
        ));
    }

    Ok(Config {
        wans,
        health,
        balance,
        router: Router {
            rest,
            version,
            mode,
            apply_base,
            watchdog,
        },
        lan,
        sections,
        alerts,
        email,
        webhooks,
        status,
        state_dir,
        reconcile: Reconcile { resync_interval },
        traffic,
    })
}

/// Default `sticky_timeout`: long enough for a banking or shop session.
pub const DEFAULT_STICKY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Longest `sticky_timeout`: RouterOS address-list timeouts end below 35 weeks; a day is more
/// than any session needs.
pub const MAX_STICKY_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

fn resolve_traffic(
    cx: &Ctx,
    lists: Option<std::collections::BTreeMap<String, Vec<String>>>,
    policies: Option<Vec<file::PolicyFile>>,
    rules: Option<Vec<file::RuleFile>>,
    wans: &[Wan],
) -> Result<crate::traffic::Traffic, ConfigError> {
    use crate::traffic::Traffic;
    let root = KeyPath::root();
    let mut out = Traffic::default();
    for (name, entries) in lists.unwrap_or_default() {
        let key = root.field("lists").field(&name);
        naming::validate_wan_name(&name).map_err(|why| {
            cx.invalid(&key, &format!("a list name of {why}"), format!("{name:?}"))
        })?;
        if entries.is_empty() {
            return Err(cx.invalid(&key, "one or more addresses or prefixes", "an empty list"));
        }
        let nets = entries
            .iter()
            .enumerate()
            .map(|(i, e)| net_or_host(cx, &key.index(i), e))
            .collect::<Result<Vec<_>, _>>()?;
        out.lists.insert(name, nets);
    }
    let members: Vec<(LinkId, u32)> = wans.iter().map(|w| (w.id.clone(), w.weight)).collect();
    out.policies = resolve_policy_list(cx, policies.unwrap_or_default(), &members)?;
    for (i, r) in rules.unwrap_or_default().into_iter().enumerate() {
        let key = root.field("rule").index(i);
        out.rules.push(resolve_rule(cx, &key, r, &out)?);
    }
    Ok(out)
}

/// Resolves `[[policy]]` tables against the WANs (name, weight) they may name.
fn resolve_policy_list(
    cx: &Ctx,
    policies: Vec<file::PolicyFile>,
    wans: &[(LinkId, u32)],
) -> Result<Vec<crate::traffic::Policy>, ConfigError> {
    use crate::traffic::{LastResort, Member, Policy, PolicyKind};
    let root = KeyPath::root();
    let mut out: Vec<Policy> = Vec::new();
    let wan_names = || {
        wans.iter()
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find_wan = |key: &KeyPath, name: &str| {
        wans.iter().find(|w| w.0.as_str() == name).ok_or_else(|| {
            cx.invalid(
                key,
                &format!("the name of a WAN: {}", wan_names()),
                format!("{name:?}"),
            )
        })
    };
    for (i, p) in policies.into_iter().enumerate() {
        let key = root.field("policy").index(i);
        let name = cx
            .required(&key.field("name"), &p.name, "a policy name")?
            .to_string();
        naming::validate_wan_name(&name).map_err(|why| {
            cx.invalid(
                &key.field("name"),
                &format!("a policy name of {why}"),
                format!("{name:?}"),
            )
        })?;
        if out.iter().any(|x: &Policy| x.name == name) {
            return Err(cx.conflict(
                &key.field("name"),
                format!("two policies are named {name:?}"),
            ));
        }
        let kind = match p.kind.as_deref() {
            Some("balanced") => PolicyKind::Balanced,
            Some("failover") => PolicyKind::Failover,
            Some("only") => PolicyKind::Only,
            Some(other) => {
                return Err(cx.invalid(
                    &key.field("kind"),
                    "\"balanced\", \"failover\" or \"only\"",
                    format!("{other:?}"),
                ));
            }
            None => {
                return Err(
                    cx.missing(&key.field("kind"), "\"balanced\", \"failover\" or \"only\"")
                );
            }
        };
        let names = p.wans.unwrap_or_default();
        let mut members: Vec<Member> = Vec::new();
        for (j, n) in names.iter().enumerate() {
            let wkey = key.field("wans").index(j);
            let w = find_wan(&wkey, n)?;
            if members.iter().any(|m| m.wan == w.0) {
                return Err(cx.conflict(&wkey, format!("{n} is listed twice")));
            }
            members.push(Member {
                wan: w.0.clone(),
                weight: w.1,
            });
        }
        let wanted = match kind {
            PolicyKind::Only => (1, 1, "exactly one WAN"),
            PolicyKind::Failover => (2, usize::MAX, "two or more WANs, in failover order"),
            PolicyKind::Balanced => (1, usize::MAX, "one or more WANs"),
        };
        if members.len() < wanted.0 || members.len() > wanted.1 {
            return Err(cx.invalid(
                &key.field("wans"),
                wanted.2,
                format!("{} WAN(s)", members.len()),
            ));
        }
        if let Some(weights) = p.weights {
            let wkey = key.field("weights");
            if kind != PolicyKind::Balanced {
                return Err(cx.conflict(&wkey, "weights apply to a balanced policy only"));
            }
            for (n, v) in weights {
                let k = wkey.field(&n);
                let Some(m) = members.iter_mut().find(|m| m.wan.as_str() == n) else {
                    return Err(cx.invalid(
                        &k,
                        "the name of one of the policy's wans",
                        format!("{n:?}"),
                    ));
                };
                m.weight = cx.int_in(&k, v, 0, MAX_WEIGHT)? as u32;
            }
        }
        if kind == PolicyKind::Balanced && members.iter().all(|m| m.weight == 0) {
            return Err(cx.invalid(
                &key.field("weights"),
                "at least one WAN with a weight above 0",
                "every weight 0",
            ));
        }
        let last_resort = match p.last_resort.as_deref() {
            None | Some("any") => LastResort::Any,
            Some("drop") => LastResort::Drop,
            Some(other) => {
                return Err(cx.invalid(
                    &key.field("last_resort"),
                    "\"any\" or \"drop\"",
                    format!("{other:?}"),
                ));
            }
        };
        out.push(Policy {
            name,
            kind,
            members,
            last_resort,
        });
    }
    Ok(out)
}

/// `[[policy]]` tables outside a configuration (`uplinkd simulate` scenarios), against the WANs
/// (name, weight) they may name: the same checks and errors as in a configuration.
pub fn resolve_policies(
    policies: Vec<file::PolicyFile>,
    wans: &[(LinkId, u32)],
) -> Result<Vec<crate::traffic::Policy>, ConfigError> {
    let origins = Origins::default();
    let cx = Ctx {
        origins: &origins,
        secrets: Secrets::NotNeeded,
    };
    resolve_policy_list(&cx, policies, wans)
}

/// `192.168.88.10` (a host) or `192.168.88.0/24`.
fn net_or_host(cx: &Ctx, key: &KeyPath, s: &str) -> Result<Ipv4Net, ConfigError> {
    let t = s.trim();
    if let Ok(a) = t.parse::<Ipv4Addr>() {
        return Ok(Ipv4Net::new(a, 32).expect("/32 is a valid prefix"));
    }
    let n: Ipv4Net = t.parse().map_err(|_| {
        cx.invalid(
            key,
            "an IPv4 address or prefix like 192.168.88.10 or 192.168.88.0/24",
            format!("{s:?}"),
        )
    })?;
    if n.trunc() != n {
        return Err(cx.invalid(
            key,
            &format!("a prefix without host bits ({})", n.trunc()),
            format!("{s:?}"),
        ));
    }
    Ok(n)
}

fn resolve_rule(
    cx: &Ctx,
    key: &KeyPath,
    r: file::RuleFile,
    traffic: &crate::traffic::Traffic,
) -> Result<crate::traffic::Rule, ConfigError> {
    use crate::traffic::{Match, PortRange, Protocol, Rule, Sticky};
    let name = cx
        .required(&key.field("name"), &r.name, "a rule name")?
        .to_string();
    naming::validate_wan_name(&name).map_err(|why| {
        cx.invalid(
            &key.field("name"),
            &format!("a rule name of {why}"),
            format!("{name:?}"),
        )
    })?;
    if traffic.rules.iter().any(|x| x.name == name) {
        return Err(cx.conflict(&key.field("name"), format!("two rules are named {name:?}")));
    }
    let policy = cx
        .required(&key.field("policy"), &r.policy, "the name of a [[policy]]")?
        .to_string();
    if traffic.policy(&policy).is_none() {
        let names: Vec<&str> = traffic.policies.iter().map(|p| p.name.as_str()).collect();
        let expected = if names.is_empty() {
            "the name of a [[policy]] (none is defined)".to_string()
        } else {
            format!("the name of a [[policy]]: {}", names.join(", "))
        };
        return Err(cx.invalid(&key.field("policy"), &expected, format!("{policy:?}")));
    }
    let list = |field: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
        match v {
            None => Ok(None),
            Some(l) if traffic.lists.contains_key(&l) => Ok(Some(l)),
            Some(l) => {
                let names: Vec<&str> = traffic.lists.keys().map(String::as_str).collect();
                Err(cx.invalid(
                    &key.field(field),
                    &format!(
                        "the name of a [lists] entry{}",
                        if names.is_empty() {
                            " (none is defined)".to_string()
                        } else {
                            format!(": {}", names.join(", "))
                        }
                    ),
                    format!("{l:?}"),
                ))
            }
        }
    };
    let net = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| net_or_host(cx, &key.field(field), s))
            .transpose()
    };
    let protocol = match r.protocol.as_deref() {
        None => None,
        Some(p) => Some(Protocol::parse(p).ok_or_else(|| {
            cx.invalid(
                &key.field("protocol"),
                "\"tcp\", \"udp\" or \"icmp\"",
                format!("{p:?}"),
            )
        })?),
    };
    let pkey = key.field("dst_port");
    let dst_ports = match r.dst_port {
        None => Vec::new(),
        Some(file::PortsFile::One(n)) => {
            let p = cx.int_in(&pkey, n, 1, 65535)? as u16;
            vec![PortRange { first: p, last: p }]
        }
        Some(file::PortsFile::Text(t)) => {
            let bad = || {
                cx.invalid(
                    &pkey,
                    "ports and ranges like \"443\" or \"80,443,10000-20000\"",
                    format!("{t:?}"),
                )
            };
            let mut out = Vec::new();
            for part in t.split(',') {
                let part = part.trim();
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let a: u16 = a.trim().parse().map_err(|_| bad())?;
                let b: u16 = b.trim().parse().map_err(|_| bad())?;
                if a == 0 || b < a {
                    return Err(bad());
                }
                out.push(PortRange { first: a, last: b });
            }
            if out.is_empty() || out.len() > 15 {
                return Err(cx.invalid(
                    &pkey,
                    "1 to 15 ports or ranges (RouterOS's limit per rule)",
                    format!("{t:?}"),
                ));
            }
            out
        }
    };
    if !dst_ports.is_empty() && !matches!(protocol, Some(Protocol::Tcp | Protocol::Udp)) {
        return Err(cx.conflict(
            &pkey,
            "a destination port needs protocol = \"tcp\" or \"udp\"",
        ));
    }
    let in_interface = r
        .in_interface
        .as_deref()
        .map(|s| cx.ros_name(&key.field("in_interface"), s, "an interface name"))
        .transpose()?;
    let timeout = match r.sticky_timeout.as_deref() {
        None => DEFAULT_STICKY_TIMEOUT,
        Some(s) => {
            let tkey = key.field("sticky_timeout");
            let d = cx.duration(&tkey, s)?;
            if d < Duration::from_secs(1) || d > MAX_STICKY_TIMEOUT {
                return Err(cx.invalid(&tkey, "a duration from 1s to 7d", format!("{s:?}")));
            }
            d
        }
    };
    let sticky = match r.sticky.as_deref() {
        None | Some("off") => {
            if r.sticky_timeout.is_some() {
                return Err(cx.conflict(
                    &key.field("sticky_timeout"),
                    "sticky_timeout needs sticky = \"src\" or \"src+dst\"",
                ));
            }
            Sticky::Off
        }
        Some("src") => Sticky::Src { timeout },
        Some("src+dst") => Sticky::SrcDst { timeout },
        Some(other) => {
            return Err(cx.invalid(
                &key.field("sticky"),
                "\"off\", \"src\" or \"src+dst\"",
                format!("{other:?}"),
            ));
        }
    };
    if sticky != Sticky::Off && traffic.policy(&policy).is_some_and(|p| p.members.len() < 2) {
        return Err(cx.conflict(
            &key.field("sticky"),
            format!("policy {policy} has one WAN: there is nothing to stick to"),
        ));
    }
    Ok(Rule {
        name,
        matcher: Match {
            src: net("src_address", &r.src_address)?,
            src_list: list("src_address_list", r.src_address_list)?,
            in_interface,
            dst: net("dst_address", &r.dst_address)?,
            dst_list: list("dst_address_list", r.dst_address_list)?,
            protocol,
            dst_ports,
        },
        policy,
        sticky,
    })
}

fn resolve_mode(cx: &Ctx, key: &KeyPath, v: Option<&str>) -> Result<Mode, ConfigError> {
    match v {
        None | Some("container") => Ok(Mode::Container),
        Some("remote") => Ok(Mode::Remote),
        Some(other) => Err(cx.invalid(key, "\"container\" or \"remote\"", format!("{other:?}"))),
    }
}

fn resolve_apply_base(cx: &Ctx, key: &KeyPath, v: Option<&str>) -> Result<ApplyBase, ConfigError> {
    match v {
        None | Some("manual") => Ok(ApplyBase::Manual),
        Some("auto") => Ok(ApplyBase::Auto),
        Some(other) => Err(cx.invalid(key, "\"manual\" or \"auto\"", format!("{other:?}"))),
    }
}

/// Default of `[router] watchdog`: long enough for a crashed daemon to be restarted
/// (`auto-restart-interval=10s`) and resume, short enough that a dead one does not pin a stale
/// failover for long.
pub(super) const DEFAULT_WATCHDOG: Duration = Duration::from_secs(60);

fn resolve_watchdog(
    cx: &Ctx,
    key: &KeyPath,
    v: Option<&str>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(v) = v else {
        return Ok(Some(DEFAULT_WATCHDOG));
    };
    if v == "off" {
        return Ok(None);
    }
    let d = cx.duration(key, v)?;
    if d < Duration::from_secs(10) || d > Duration::from_secs(3600) || d.subsec_nanos() != 0 {
        return Err(cx.invalid(
            key,
            "whole seconds from 10s to 1h, or \"off\"",
            humantime::format_duration(d),
        ));
    }
    Ok(Some(d))
}

fn resolve_version(
    cx: &Ctx,
    key: &KeyPath,
    v: Option<&str>,
) -> Result<RouterOsVersion, ConfigError> {
    match v {
        None | Some("7.20") => Ok(RouterOsVersion::V7_20),
        Some("7.21") => Ok(RouterOsVersion::V7_21),
        Some(other) => Err(cx.invalid(
            key,
            "\"7.20\" or \"7.21\" (the RouterOS release on the router)",
            format!("{other:?}"),
        )),
    }
}

fn resolve_wans(cx: &Ctx, files: Vec<file::WanFile>) -> Result<Vec<Wan>, ConfigError> {
    let list = KeyPath::root().field("wan");
    if files.is_empty() {
        return Err(cx.missing(
            &list.index(0).field("name"),
            "at least one [[wan]] table with name, interface, address, gateway and monitors",
        ));
    }
    let mut wans: Vec<Wan> = Vec::with_capacity(files.len());
    for (i, w) in files.into_iter().enumerate() {
        let wan = resolve_wan(cx, &list.index(i), i, w)?;
        check_against_earlier(cx, &list.index(i), &wan, &wans)?;
        wans.push(wan);
    }
    Ok(wans)
}

fn resolve_wan(
    cx: &Ctx,
    key: &KeyPath,
    index: usize,
    w: file::WanFile,
) -> Result<Wan, ConfigError> {
    let name_key = key.field("name");
    let name = cx.required(&name_key, &w.name, "a short unique name like \"ISP1\"")?;
    naming::validate_wan_name(name).map_err(|why| {
        cx.invalid(
            &name_key,
            &format!("a WAN name of {why}"),
            format!("{name:?}"),
        )
    })?;
    let label = match &w.label {
        Some(l) => cx.text(&key.field("label"), l, "a label")?,
        None => name.to_string(),
    };
    let iface_key = key.field("interface");
    let interface = cx.required(
        &iface_key,
        &w.interface,
        "the RouterOS interface of this WAN, like \"ether1\"",
    )?;
    let interface = cx.ros_name(&iface_key, interface, "a RouterOS interface name")?;

    let addressing = resolve_addressing(cx, key, &w)?;

    let mon_key = key.field("monitors");
    let monitors_raw = match &w.monitors {
        Some(m) if !m.is_empty() => m,
        Some(_) => {
            return Err(cx.invalid(&mon_key, "at least one monitor IP address", "an empty list"));
        }
        None => {
            return Err(cx.missing(
                &mon_key,
                "one or more IP addresses probed through this WAN, like [\"9.9.9.9\", \"4.2.2.2\"]",
            ));
        }
    };
    let mut monitors: Vec<Ipv4Addr> = Vec::with_capacity(monitors_raw.len());
    for (j, m) in monitors_raw.iter().enumerate() {
        let k = mon_key.index(j);
        let ip = cx.ipv4(&k, m)?;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return Err(cx.invalid(
                &k,
                "a unicast IPv4 address beyond the WAN to probe (not loopback)",
                ip,
            ));
        }
        if let Some(first) = monitors.iter().position(|x| *x == ip) {
            return Err(cx.conflict(
                &k,
                format!(
                    "{ip} is already monitor {} of this WAN; each monitor once",
                    first + 1
                ),
            ));
        }
        monitors.push(ip);
    }

    let weight = match w.weight {
        Some(v) => cx.int_in(&key.field("weight"), v, 1, MAX_WEIGHT)?,
        None => 1,
    } as u32;
    let priority = match w.priority {
        Some(v) => cx.int_in(&key.field("priority"), v, 0, 1000)? as u32,
        // Configuration order: the first WAN is preferred unless told otherwise.
        None => (index + 1) as u32,
    };
    let tier = match w.tier {
        Some(v) => Tier::new(cx.int_in(&key.field("tier"), v, 1, i64::from(Tier::MAX))? as u8)
            .unwrap_or(Tier::FIRST), // invariant: checked in range above
        None => Tier::FIRST,
    };
    let probe = resolve_probe(cx, key, index, &w)?;

    Ok(Wan {
        id: LinkId::new(name),
        label,
        interface,
        addressing,
        monitors,
        weight,
        priority,
        tier,
        probe,
    })
}

fn resolve_addressing(
    cx: &Ctx,
    key: &KeyPath,
    w: &file::WanFile,
) -> Result<Addressing, ConfigError> {
    let kind_key = key.field("addressing");
    let kind = match w.addressing.as_deref() {
        Some(k @ ("static" | "dhcp" | "pppoe")) => k,
        Some(other) => {
            return Err(cx.invalid(
                &kind_key,
                "\"static\", \"dhcp\" or \"pppoe\"",
                format!("{other:?}"),
            ));
        }
        // Without an explicit kind, an address means static; nothing at all is asked for.
        None => "static",
    };
    let forbid = |field: &str, present: bool| -> Result<(), ConfigError> {
        if present {
            Err(cx.conflict(
                &key.field(field),
                format!("only with addressing = \"static\"; this WAN uses \"{kind}\""),
            ))
        } else {
            Ok(())
        }
    };
    let pppoe_given = w.pppoe_user.is_some()
        || w.pppoe_password.is_some()
        || w.pppoe_password_file.is_some()
        || w.pppoe_service.is_some();
    match kind {
        "static" => {
            let addr_key = key.field("address");
            let Some(addr) = w.address.as_deref() else {
                return Err(cx.missing(
                    &addr_key,
                    "the WAN's static address with prefix length, like \"192.168.0.3/24\", or addressing = \"dhcp\" or \"pppoe\"",
                ));
            };
            let address = cx.ipv4_net(&addr_key, addr)?;
            if address.prefix_len() < 31
                && (address.addr() == address.network() || address.addr() == address.broadcast())
            {
                return Err(cx.invalid(
                    &addr_key,
                    "a host address inside the subnet (not its network or broadcast address)",
                    address,
                ));
            }
            let gw_key = key.field("gateway");
            let gw = cx.required(
                &gw_key,
                &w.gateway,
                "the ISP's gateway address, like \"192.168.0.1\"",
            )?;
            let gateway = cx.ipv4(&gw_key, gw)?;
            let edge = address.prefix_len() < 31
                && (gateway == address.network() || gateway == address.broadcast());
            if gateway == address.addr() || !address.contains(&gateway) || edge {
                return Err(cx.invalid(
                    &gw_key,
                    &format!(
                        "another host address inside {} (not its network or broadcast address)",
                        address.trunc()
                    ),
                    gateway,
                ));
            }
            if pppoe_given {
                return Err(
                    cx.conflict(&key.field("pppoe_user"), "only for addressing = \"pppoe\"")
                );
            }
            Ok(Addressing::Static { address, gateway })
        }
        "dhcp" => {
            forbid("address", w.address.is_some())?;
            forbid("gateway", w.gateway.is_some())?;
            if pppoe_given {
                return Err(
                    cx.conflict(&key.field("pppoe_user"), "only for addressing = \"pppoe\"")
                );
            }
            Ok(Addressing::Dhcp)
        }
        _ => {
            forbid("address", w.address.is_some())?;
            forbid("gateway", w.gateway.is_some())?;
            let user_key = key.field("pppoe_user");
            let user = cx.required(&user_key, &w.pppoe_user, "the PPPoE user name from the ISP")?;
            let user = cx.text(&user_key, user, "a PPPoE user name")?;
            let password = cx
                .secret(
                    key,
                    "pppoe_password",
                    w.pppoe_password.clone(),
                    "pppoe_password_file",
                    w.pppoe_password_file.clone(),
                )?
                .map_or_else(
                    || {
                        cx.needed_secret(
                            &key.field("pppoe_password"),
                            "the PPPoE password, best from the environment or pppoe_password_file",
                        )
                    },
                    Ok,
                )?;
            let service = match &w.pppoe_service {
                Some(s) => Some(cx.text(&key.field("pppoe_service"), s, "a PPPoE service name")?),
                None => None,
            };
            Ok(Addressing::Pppoe {
                user,
                password,
                service,
            })
        }
    }
}

fn resolve_probe(
    cx: &Ctx,
    key: &KeyPath,
    index: usize,
    w: &file::WanFile,
) -> Result<ProbePath, ConfigError> {
    let veth_key = key.field("probe_veth");
    let veth = match &w.probe_veth {
        Some(v) => {
            let ok = !v.is_empty()
                && v.len() <= naming::MAX_VETH_NAME
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(cx.invalid(
                    &veth_key,
                    &format!("a veth name of 1 to {} letters, digits, '-' or '_' (RouterOS 7.20 cuts longer names inside the container)", naming::MAX_VETH_NAME),
                    format!("{v:?}"),
                ));
            }
            v.clone()
        }
        None => naming::veth_name(index),
    };
    let plen_key = key.field("probe_prefix_len");
    let prefix_len = match w.probe_prefix_len {
        Some(p) => cx.int_in(&plen_key, p, 8, 30)? as u8,
        None => 30,
    };
    // Default: the index-th /30 of 172.31.255.0/24, the router .1 and the container .2 of it.
    let default_base = (index < 64).then(|| Ipv4Addr::new(172, 31, 255, (4 * index) as u8));
    let router_key = key.field("probe_router_address");
    let router_address = match &w.probe_router_address {
        Some(s) => cx.ipv4(&router_key, s)?,
        None => match default_base {
            Some(b) => Ipv4Addr::from(u32::from(b) + 1),
            None => {
                return Err(cx.missing(
                    &router_key,
                    "the router's address on this WAN's veth (no default past 64 WANs)",
                ));
            }
        },
    };
    let source_key = key.field("probe_source");
    let source = match &w.probe_source {
        Some(s) => cx.ipv4(&source_key, s)?,
        None => match default_base {
            Some(b) => Ipv4Addr::from(u32::from(b) + 2),
            None => {
                return Err(cx.missing(
                    &source_key,
                    "uplinkd's address on this WAN's veth (no default past 64 WANs)",
                ));
            }
        },
    };
    let subnet = Ipv4Net::new(router_address, prefix_len)
        .map_err(|_| cx.invalid(&plen_key, "a prefix length from 8 to 30", prefix_len))?
        .trunc();
    for (k, addr) in [(&router_key, router_address), (&source_key, source)] {
        if addr == subnet.network() || addr == subnet.broadcast() {
            return Err(cx.invalid(
                k,
                &format!("a host address of {subnet}, not its network or broadcast address"),
                addr,
            ));
        }
    }
    if !subnet.contains(&source) {
        return Err(cx.invalid(
            &source_key,
            &format!("an address inside {subnet}, the subnet of probe_router_address"),
            source,
        ));
    }
    if source == router_address {
        return Err(cx.conflict(
            &source_key,
            "must differ from probe_router_address (each end of the veth has its own address)",
        ));
    }
    Ok(ProbePath {
        veth,
        router_address,
        source,
        prefix_len,
    })
}

/// Uniqueness and topology checks of a WAN against the ones before it.
fn check_against_earlier(
    cx: &Ctx,
    key: &KeyPath,
    wan: &Wan,
    earlier: &[Wan],
) -> Result<(), ConfigError> {
    for (j, e) in earlier.iter().enumerate() {
        let other = format!("wan[{}] ({})", j + 1, e.id);
        if e.id.as_str().eq_ignore_ascii_case(wan.id.as_str()) {
            return Err(cx.conflict(
                &key.field("name"),
                format!(
                    "{:?} is already the name of {other}; every WAN needs its own name",
                    wan.id.as_str()
                ),
            ));
        }
        if e.interface == wan.interface {
            return Err(cx.conflict(
                &key.field("interface"),
                format!("{} is already the interface of {other}", wan.interface),
            ));
        }
        if e.probe.source == wan.probe.source {
            return Err(cx.conflict(
                &key.field("probe_source"),
                format!(
                    "{} is already the probe source of {other}; each WAN needs its own",
                    wan.probe.source
                ),
            ));
        }
        let (a, b) = (&e.probe, &wan.probe);
        if a.veth == b.veth {
            // One veth carrying one source address per WAN: same router end, same subnet.
            if a.router_address != b.router_address || a.prefix_len != b.prefix_len {
                return Err(cx.conflict(
                    &key.field("probe_router_address"),
                    format!(
                        "{other} uses the same veth {:?} with router address {}/{}; WANs sharing a veth must share its router address and prefix (and have distinct probe_source)",
                        a.veth, a.router_address, a.prefix_len
                    ),
                ));
            }
        } else {
            let na = Ipv4Net::new(a.router_address, a.prefix_len).map(|n| n.trunc());
            let nb = Ipv4Net::new(b.router_address, b.prefix_len).map(|n| n.trunc());
            if let (Ok(na), Ok(nb)) = (na, nb)
                && (na.contains(&nb.network()) || nb.contains(&na.network()))
            {
                return Err(cx.conflict(
                    &key.field("probe_router_address"),
                    format!("veth subnet {nb} overlaps {na} of {other}'s veth {:?}; each veth needs its own subnet", a.veth),
                ));
            }
        }
    }
    Ok(())
}

/// What must not collide across sections, each named at the key that collides: a LAN port that
/// is a WAN; a bridge or veth named like an interface uplinkd uses otherwise; a LAN that
/// overlaps a WAN's subnet, a veth or the management veth.
fn check_names_and_subnets(
    cx: &Ctx,
    lan: Option<&Lan>,
    wans: &[Wan],
    mode: Mode,
) -> Result<(), ConfigError> {
    let wan_key = |i: usize| KeyPath::root().field("wan").index(i);
    let lan_key = KeyPath::root().field("lan");
    let container = mode == Mode::Container;
    // Names of ports uplinkd expects to exist already: WAN interfaces and LAN ports.
    let mut ports: Vec<(String, String)> = wans
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                w.interface.clone(),
                format!("the interface of wan[{}] ({})", i + 1, w.id),
            )
        })
        .collect();
    if let Some(l) = lan {
        for (i, p) in l.ports.iter().enumerate() {
            if let Some((_, what)) = ports.iter().find(|(n, _)| n == p) {
                return Err(cx.conflict(
                    &lan_key.field("ports").index(i),
                    format!("{p} is {what}; a WAN port cannot be a LAN bridge port"),
                ));
            }
        }
        ports.extend(l.ports.iter().map(|p| (p.clone(), format!("LAN port {p}"))));
        if let Some((_, what)) = ports.iter().find(|(n, _)| *n == l.bridge) {
            return Err(cx.conflict(
                &lan_key.field("bridge"),
                format!(
                    "{:?} is {what}; the bridge needs a name of its own",
                    l.bridge
                ),
            ));
        }
    }
    if container {
        for (i, w) in wans.iter().enumerate() {
            let veth = &w.probe.veth;
            let clash = ports
                .iter()
                .find(|(n, _)| n == veth)
                .map(|(_, what)| what.clone())
                .or_else(|| (veth == naming::MGMT_VETH).then(|| "the management veth".into()))
                .or_else(|| {
                    lan.filter(|l| l.bridge == *veth)
                        .map(|_| "the LAN bridge".to_string())
                });
            if let Some(what) = clash {
                return Err(cx.conflict(
                    &wan_key(i).field("probe_veth"),
                    format!("{veth:?} is {what}; each veth needs a name of its own"),
                ));
            }
        }
    }
    let Some(l) = lan else {
        return Ok(());
    };
    let lan_net = l.address.trunc();
    let overlaps = |n: Ipv4Net| lan_net.contains(&n.network()) || n.contains(&lan_net.network());
    for (i, w) in wans.iter().enumerate() {
        if let Addressing::Static { address, .. } = &w.addressing
            && overlaps(address.trunc())
        {
            return Err(cx.conflict(
                &lan_key.field("address"),
                format!(
                    "the LAN {lan_net} overlaps {} of wan[{}] ({}); the LAN needs its own subnet",
                    address.trunc(),
                    i + 1,
                    w.id
                ),
            ));
        }
        if container
            && let Ok(veth) = Ipv4Net::new(w.probe.router_address, w.probe.prefix_len)
            && overlaps(veth.trunc())
        {
            return Err(cx.conflict(
                &lan_key.field("address"),
                format!(
                    "the LAN {lan_net} overlaps veth subnet {} of wan[{}] ({})",
                    veth.trunc(),
                    i + 1,
                    w.id
                ),
            ));
        }
    }
    if container
        && let Ok(mgmt) = naming::MGMT_SUBNET.parse::<Ipv4Net>()
        && overlaps(mgmt)
    {
        return Err(cx.conflict(
            &lan_key.field("address"),
            format!("the LAN {lan_net} overlaps the management veth's subnet {mgmt}"),
        ));
    }
    Ok(())
}

fn resolve_health(
    cx: &Ctx,
    file: HealthFile,
    wans: &[Wan],
    mode: Mode,
) -> Result<HealthParams, ConfigError> {
    let key = KeyPath::root().field("health");
    // Remote mode: one REST session carries every WAN's pings, and a ping that gets no answer
    // holds it for the whole wait. An interval shorter than all monitors' waits in a row would
    // queue probes without end while the monitors are dead.
    let session_round = remote_session_round(wans);
    let mut base = HealthParams::default();
    if mode == Mode::Remote && file.interval.is_none() {
        base.interval = session_round.max(REMOTE_MIN_DEFAULT_INTERVAL);
    }
    let params = file.over(&base);
    if let Err(errors) = params.validate() {
        // One error: the first the health core reports.
        if let Some((name, expected)) = errors.into_iter().next() {
            let mut k = key.clone();
            for part in name.split('.') {
                k = k.field(part);
            }
            let got = HealthFile::value_of(&params, name).unwrap_or_else(|| "another value".into());
            return Err(cx.invalid(&k, &expected, got));
        }
    }
    if params.interval.is_zero() {
        return Err(cx.invalid(&key.field("interval"), "a duration greater than zero", "0s"));
    }
    check_quorum(cx, &key, params.quorum, wans)?;
    if mode == Mode::Remote && params.interval < session_round {
        let monitors: usize = wans.iter().map(|w| w.monitors.len()).sum();
        return Err(cx.invalid(
            &key.field("interval"),
            &format!(
                "at least {} in remote mode: the router's one REST session carries every ping, \
                 and {monitors} monitors of all WANs may each hold it for {} when they time out \
                 (leave it unset for remote mode's default, docs/probing.md)",
                humantime::format_duration(session_round),
                humantime::format_duration(REMOTE_PROBE_WAIT),
            ),
            humantime::format_duration(params.interval),
        ));
    }
    Ok(params)
}

/// How long one round of every WAN's remote pings may hold the REST session: each monitor of
/// each WAN, [`REMOTE_PROBE_WAIT`] apiece when none answers.
fn remote_session_round(wans: &[Wan]) -> Duration {
    let monitors: usize = wans.iter().map(|w| w.monitors.len()).sum();
    REMOTE_PROBE_WAIT.saturating_mul(u32::try_from(monitors).unwrap_or(u32::MAX))
}

/// The quorum counts answering monitors of one WAN, so no WAN may have fewer monitors.
fn check_quorum(
    cx: &Ctx,
    health: &KeyPath,
    quorum: usize,
    wans: &[Wan],
) -> Result<(), ConfigError> {
    if let Some((i, w)) = wans
        .iter()
        .enumerate()
        .min_by_key(|(_, w)| w.monitors.len())
        && quorum > w.monitors.len()
    {
        return Err(cx.invalid(
            &health.field("quorum"),
            &format!(
                "at most {} (wan[{}] ({}) has {} monitor{}; the quorum is how many must answer)",
                w.monitors.len(),
                i + 1,
                w.id,
                w.monitors.len(),
                if w.monitors.len() == 1 { "" } else { "s" }
            ),
            quorum,
        ));
    }
    Ok(())
}

fn resolve_balance(cx: &Ctx, b: file::BalanceFile, wans: &[Wan]) -> Result<Balance, ConfigError> {
    let key = KeyPath::root().field("balance");
    let pcc = match b.pcc.as_deref() {
        None | Some("both-addresses-and-ports") => PccClassifier::BothAddressesAndPorts,
        Some("src-address") => PccClassifier::SrcAddress,
        Some("both-addresses") => PccClassifier::BothAddresses,
        Some("hybrid") => PccClassifier::Hybrid,
        Some(other) => {
            return Err(cx.invalid(
                &key.field("pcc"),
                "\"both-addresses-and-ports\", \"both-addresses\", \"src-address\" or \"hybrid\"",
                format!("{other:?}"),
            ));
        }
    };
    let preferred = match b.preferred.as_deref() {
        Some(name) => match wans.iter().find(|w| w.id.as_str() == name) {
            Some(w) => w.id.clone(),
            None => {
                let names: Vec<&str> = wans.iter().map(|w| w.id.as_str()).collect();
                return Err(cx.invalid(
                    &key.field("preferred"),
                    &format!("the name of a WAN: {}", names.join(", ")),
                    format!("{name:?}"),
                ));
            }
        },
        // The lowest priority value; on a tie, the first in the file.
        None => match wans.iter().min_by_key(|w| w.priority) {
            Some(w) => w.id.clone(),
            None => {
                return Err(cx.missing(&KeyPath::root().field("wan"), "at least one [[wan]] table"));
            }
        },
    };
    let promote_on = match b.promote_on.as_deref() {
        None | Some("down") => Promotion::Down,
        Some("degraded") => Promotion::Degraded,
        Some(other) => {
            return Err(cx.invalid(
                &key.field("promote_on"),
                "\"down\" or \"degraded\"",
                format!("{other:?}"),
            ));
        }
    };
    let handback = match b.handback.as_deref() {
        None | Some("drain") => Handback::Drain,
        Some("flush") => Handback::Flush,
        Some(other) => {
            return Err(cx.invalid(
                &key.field("handback"),
                "\"drain\" or \"flush\"",
                format!("{other:?}"),
            ));
        }
    };
    Ok(Balance {
        pcc,
        preferred,
        promote_on,
        handback,
    })
}

fn resolve_rest(
    cx: &Ctx,
    r: file::RestFile,
    mode: Mode,
    wans: &[Wan],
) -> Result<Rest, ConfigError> {
    let key = KeyPath::root().field("rest");
    let url_key = key.field("url");
    let url = match (&r.url, mode) {
        (Some(u), _) => u.trim().trim_end_matches('/').to_string(),
        // In the container the router is the far end of the first veth.
        (None, Mode::Container) => match wans.first() {
            Some(w) => format!("https://{}", w.probe.router_address),
            None => {
                return Err(cx.missing(
                    &url_key,
                    "the router's REST address, like \"https://192.168.88.1\"",
                ));
            }
        },
        (None, Mode::Remote) => {
            return Err(cx.missing(&url_key, "the router's REST address, like \"https://192.168.88.1\" (required in remote mode)"));
        }
    };
    use crate::types::{RestUrl, RestUrlError as E};
    let parsed = RestUrl::parse(&url).map_err(|e| match e {
        E::NotAUrl => cx.invalid(
            &url_key,
            "a URL like \"https://172.31.255.1\" or \"https://router.lan:8443\"",
            format!("{url:?}"),
        ),
        E::Scheme => cx.invalid(
            &url_key,
            "an https:// URL (or http:// with trust = \"plain-http\")",
            format!("{url:?}"),
        ),
        E::HostOrCredentials => cx.invalid(&url_key, "a URL with a host and no user or password in it (those go in rest.user and the password variable)", "another URL"),
        E::QueryOrFragment => cx.invalid(
            &url_key,
            "a URL without ?query or #fragment",
            format!("{url:?}"),
        ),
        E::RestSuffix => cx.invalid(
            &url_key,
            "the router's address without the /rest suffix (uplinkd adds it)",
            format!("{url:?}"),
        ),
        E::Path => cx.invalid(
            &url_key,
            "the router's address without a path: scheme, host and port (uplinkd adds /rest)",
            format!("{url:?}"),
        ),
    })?;
    let scheme = if parsed.is_https() { "https" } else { "http" };
    let url = parsed;

    let user_key = key.field("user");
    let user = match &r.user {
        Some(u) => cx.text(&user_key, u, "a RouterOS user name")?,
        None => DEFAULT_REST_USER.to_string(),
    };
    let password = cx
        .secret(&key, "password", r.password.clone(), "password_file", r.password_file.clone())?
        .map_or_else(|| cx.needed_secret(&key.field("password"), "the REST user's password: set UPLINKD_REST_PASSWORD or UPLINKD_REST_PASSWORD_FILE (keep it out of the file)"), Ok)?;

    let trust = resolve_trust(cx, &key, &r, scheme)?;
    let timeout = match r.timeout.as_deref() {
        Some(s) => cx.duration(&key.field("timeout"), s)?,
        None => DEFAULT_REST_TIMEOUT,
    };
    Ok(Rest {
        url,
        user,
        password,
        trust,
        timeout,
    })
}

fn resolve_trust(
    cx: &Ctx,
    key: &KeyPath,
    r: &file::RestFile,
    scheme: &str,
) -> Result<Trust, ConfigError> {
    let trust_key = key.field("trust");
    let pin_key = key.field("pin_sha256");
    let ca_key = key.field("ca_file");
    let chosen = match r.trust.as_deref() {
        Some(t @ ("pin-sha256" | "ca-file" | "webpki" | "plain-http")) => Some(t),
        Some(other) => {
            return Err(cx.invalid(
                &trust_key,
                "\"pin-sha256\", \"ca-file\", \"webpki\" or \"plain-http\"",
                format!("{other:?}"),
            ));
        }
        None => None,
    };
    let trust = match (chosen, &r.pin_sha256, &r.ca_file) {
        (_, Some(_), Some(_)) => {
            return Err(cx.conflict(
                &pin_key,
                format!(
                    "give either {} or {}, not both",
                    cx.name(&pin_key),
                    cx.name(&ca_key)
                ),
            ));
        }
        (None | Some("pin-sha256"), Some(pin), None) => {
            Trust::PinnedSha256(parse_pin(cx, &pin_key, pin)?)
        }
        (None | Some("ca-file"), None, Some(ca)) => Trust::CaFile(ca.clone()),
        // The pin exists only once the install script made the certificate, and that script is
        // rendered from this very config: `render` must work without it, `check` and the
        // daemon (which talk to the router) cannot.
        (Some("pin-sha256"), None, None) => match cx.secrets {
            Secrets::NotNeeded => Trust::PinPending,
            Secrets::Required => {
                return Err(cx.missing(
                    &pin_key,
                    "the SHA-256 fingerprint of the router's certificate, which the install \
                     script prints; `uplinkd pin --url https://ROUTER --write CONFIG` reads it \
                     from the router and writes it here (docs/install.md, step 7)",
                ));
            }
        },
        (Some("ca-file"), _, None) => {
            return Err(cx.missing(
                &ca_key,
                "the path of a PEM file with the CA that signed the router's certificate",
            ));
        }
        (Some(t), Some(_), None) => {
            return Err(cx.conflict(
                &pin_key,
                format!("only with trust = \"pin-sha256\", not {t:?}"),
            ));
        }
        (Some(t), None, Some(_)) => {
            return Err(cx.conflict(&ca_key, format!("only with trust = \"ca-file\", not {t:?}")));
        }
        (Some("plain-http"), None, None) => Trust::PlainHttp,
        (None | Some(_), None, None) => {
            if scheme == "http" {
                return Err(cx.conflict(
                    &key.field("url"),
                    "plain http:// sends the password unencrypted; use https:// or set trust = \"plain-http\" explicitly (UPLINKD_REST_TRUST=plain-http)",
                ));
            }
            Trust::WebPki
        }
    };
    match (&trust, scheme) {
        (Trust::PlainHttp, "https") => Err(cx.conflict(&trust_key, "\"plain-http\" needs an http:// URL; this one is https://")),
        (
            Trust::PinnedSha256(_) | Trust::PinPending | Trust::CaFile(_) | Trust::WebPki,
            "http",
        ) => Err(cx.conflict(
            &key.field("url"),
            "an http:// URL has no certificate to check; use https:// or set trust = \"plain-http\" explicitly",
        )),
        _ => Ok(trust),
    }
}

/// `AB:CD:...` or `abcd...`: 32 bytes of SHA-256, as RouterOS's `/certificate print` shows it.
fn parse_pin(cx: &Ctx, key: &KeyPath, s: &str) -> Result<[u8; 32], ConfigError> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bad = || {
        cx.invalid(
            key,
            "a SHA-256 fingerprint: 64 hex digits, colons allowed (AB:CD:...)",
            format!("{s:?}"),
        )
    };
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn resolve_lan(
    cx: &Ctx,
    lan: Option<file::LanFile>,
    s: file::SectionsFile,
) -> Result<(Option<Lan>, Sections), ConfigError> {
    let skey = KeyPath::root().field("sections");
    let has_lan = lan.is_some();
    // The LAN-side sections follow the presence of [lan]: a router whose LAN is managed by hand
    // gets only the WAN side unless it asks for more.
    let sections = Sections {
        lan: s.lan.unwrap_or(has_lan),
        dhcp: s.dhcp.unwrap_or(has_lan),
        dns: s.dns.unwrap_or(has_lan),
        firewall: s.firewall.unwrap_or(true),
        hardening: s.hardening.unwrap_or(false),
        ipv6_off: s.ipv6_off.unwrap_or(false),
        mss_clamp: s.mss_clamp.unwrap_or(true),
        ntp: s.ntp.unwrap_or(true),
    };
    for (name, on) in [
        ("lan", sections.lan),
        ("dhcp", sections.dhcp),
        ("dns", sections.dns),
    ] {
        if on && !has_lan {
            return Err(cx.conflict(&skey.field(name), format!("sections.{name} = true needs a [lan] table (bridge, ports, address, dhcp_pool, dns_servers)")));
        }
    }
    let Some(l) = lan else {
        return Ok((None, sections));
    };
    let key = KeyPath::root().field("lan");
    let bridge = cx.ros_name(
        &key.field("bridge"),
        l.bridge.as_deref().unwrap_or("bridge-lan"),
        "a bridge name",
    )?;
    let ports_key = key.field("ports");
    let mut ports = Vec::new();
    for (i, p) in l.ports.unwrap_or_default().iter().enumerate() {
        let name = cx.ros_name(&ports_key.index(i), p, "an interface name")?;
        if ports.contains(&name) {
            return Err(cx.conflict(&ports_key.index(i), format!("{name} is listed twice")));
        }
        ports.push(name);
    }
    let addr_key = key.field("address");
    let address = cx.ipv4_net(
        &addr_key,
        cx.required(
            &addr_key,
            &l.address,
            "the router's LAN address with prefix length, like \"192.168.100.1/24\"",
        )?,
    )?;
    if address.prefix_len() < 31
        && (address.addr() == address.network() || address.addr() == address.broadcast())
    {
        return Err(cx.invalid(
            &addr_key,
            "a host address inside the subnet (not its network or broadcast address)",
            address,
        ));
    }
    let pool_key = key.field("dhcp_pool");
    let dhcp_pool = match l.dhcp_pool.as_deref() {
        Some(p) => {
            let expected = "a range of the LAN subnet like \"192.168.100.100-192.168.100.200\"";
            let (a, b) = p
                .split_once('-')
                .ok_or_else(|| cx.invalid(&pool_key, expected, format!("{p:?}")))?;
            let (a, b) = (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>());
            let (Ok(a), Ok(b)) = (a, b) else {
                return Err(cx.invalid(&pool_key, expected, format!("{p:?}")));
            };
            let net = address.trunc();
            if u32::from(a) > u32::from(b)
                || !net.contains(&a)
                || !net.contains(&b)
                || a == net.network()
                || b == net.broadcast()
            {
                return Err(cx.invalid(
                    &pool_key,
                    &format!("{expected}, first address not after the last, inside {net}"),
                    format!("{p:?}"),
                ));
            }
            if (u32::from(a)..=u32::from(b)).contains(&u32::from(address.addr())) {
                return Err(cx.conflict(
                    &pool_key,
                    format!(
                        "the pool contains the router's own address {}",
                        address.addr()
                    ),
                ));
            }
            (a, b)
        }
        None if sections.dhcp => return Err(cx.missing(
            &pool_key,
            "the DHCP pool, like \"192.168.100.100-192.168.100.200\" (or sections.dhcp = false)",
        )),
        // Unused with DHCP off; an empty range says so to whoever prints it.
        None => (address.addr(), address.addr()),
    };
    let dns_key = key.field("dns_servers");
    let mut dns_servers = Vec::new();
    for (i, d) in l.dns_servers.unwrap_or_default().iter().enumerate() {
        dns_servers.push(cx.ipv4(&dns_key.index(i), d)?);
    }
    if sections.dns && dns_servers.is_empty() {
        return Err(cx.missing(&dns_key, "the router's upstream DNS servers, like [\"1.1.1.1\", \"8.8.8.8\"] (or sections.dns = false)"));
    }
    Ok((
        Some(Lan {
            bridge,
            ports,
            address,
            dhcp_pool,
            dns_servers,
        }),
        sections,
    ))
}

fn resolve_alerts(cx: &Ctx, a: file::AlertsFile) -> Result<Alerts, ConfigError> {
    let key = KeyPath::root().field("alerts");
    let reminders = match &a.reminders {
        None => DEFAULT_REMINDERS.to_vec(),
        Some(list) => {
            let mut out: Vec<Duration> = Vec::new();
            for (i, s) in list.iter().enumerate() {
                let k = key.field("reminders").index(i);
                let d = cx.duration(&k, s)?;
                if let Some(prev) = out.last()
                    && d <= *prev
                {
                    return Err(cx.invalid(
                        &k,
                        &format!(
                            "a delay after the previous reminder ({})",
                            humantime::format_duration(*prev)
                        ),
                        format!("{s:?}"),
                    ));
                }
                out.push(d);
            }
            out
        }
    };
    let percent =
        |name: &str, v: Option<i64>, default: Option<u8>| -> Result<Option<u8>, ConfigError> {
            match v {
                None => Ok(default),
                Some(0) => Ok(None),
                Some(p) => cx
                    .int_in(&key.field(name), p, 0, 100)
                    .map(|p| Some(p as u8)),
            }
        };
    Ok(Alerts {
        on_failure: a.on_failure.unwrap_or(true),
        reminders,
        on_recovery: a.on_recovery.unwrap_or(true),
        memory_percent: percent(
            "memory_percent",
            a.memory_percent,
            Some(DEFAULT_MEMORY_PERCENT),
        )?,
        cpu_percent: percent("cpu_percent", a.cpu_percent, None)?,
    })
}

fn mail_address(cx: &Ctx, key: &KeyPath, s: &str) -> Result<String, ConfigError> {
    let s = cx.text(key, s, "an e-mail address")?;
    match s.split_once('@') {
        Some((l, d))
            if !l.is_empty()
                && !d.is_empty()
                && !d.contains('@')
                && !s.contains(char::is_whitespace) =>
        {
            Ok(s)
        }
        _ => Err(cx.invalid(
            key,
            "an e-mail address like admin@example.com",
            format!("{s:?}"),
        )),
    }
}

fn resolve_email(cx: &Ctx, e: file::EmailFile) -> Result<Email, ConfigError> {
    let key = KeyPath::root().field("email");
    let server_key = key.field("server");
    let server = cx.required(
        &server_key,
        &e.server,
        "the SMTP server's host name, like \"smtp.gmail.com\"",
    )?;
    let server = cx.text(&server_key, server, "a host name")?;
    let tls = match e.tls.as_deref() {
        None | Some("starttls") => EmailTls::StartTls,
        Some("implicit") => EmailTls::Implicit,
        Some("none") => EmailTls::None,
        Some(other) => {
            return Err(cx.invalid(
                &key.field("tls"),
                "\"starttls\" (port 587), \"implicit\" (port 465) or \"none\"",
                format!("{other:?}"),
            ));
        }
    };
    let port = match e.port {
        Some(p) => cx.int_in(&key.field("port"), p, 1, 65535)? as u16,
        None => match tls {
            EmailTls::StartTls => 587,
            EmailTls::Implicit => 465,
            EmailTls::None => 25,
        },
    };
    let user = match &e.user {
        Some(u) => Some(cx.text(&key.field("user"), u, "an SMTP user name")?),
        None => None,
    };
    let password = cx.secret(
        &key,
        "password",
        e.password,
        "password_file",
        e.password_file,
    )?;
    match (&user, &password) {
        (Some(_), None) => return Err(cx.missing(&key.field("password"), "the SMTP password for email.user: set UPLINKD_EMAIL_PASSWORD or UPLINKD_EMAIL_PASSWORD_FILE")),
        (None, Some(_)) => return Err(cx.missing(&key.field("user"), "the SMTP user name that goes with the password")),
        _ => {}
    }
    if tls == EmailTls::None && user.is_some() {
        return Err(cx.conflict(
            &key.field("tls"),
            "\"none\" would send the SMTP password in clear; use starttls or implicit, or no user",
        ));
    }
    let from_key = key.field("from");
    let from = mail_address(
        cx,
        &from_key,
        cx.required(&from_key, &e.from, "the sender address of alerts")?,
    )?;
    let to_key = key.field("to");
    let to_raw = match &e.to {
        Some(t) if !t.is_empty() => t,
        _ => {
            return Err(cx.missing(
                &to_key,
                "one or more recipient addresses, like [\"admin@example.com\"]",
            ));
        }
    };
    let to = to_raw
        .iter()
        .enumerate()
        .map(|(i, t)| mail_address(cx, &to_key.index(i), t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Email {
        server,
        port,
        tls,
        user,
        password,
        from,
        to,
        ca_file: e.ca_file,
    })
}

fn resolve_webhook(cx: &Ctx, key: &KeyPath, w: file::WebhookFile) -> Result<Webhook, ConfigError> {
    let kind_key = key.field("kind");
    let kind_name = cx.required(&kind_key, &w.kind, "\"json\", \"ntfy\" or \"telegram\"")?;
    let kind = match kind_name {
        "json" => WebhookKind::Json,
        "ntfy" => WebhookKind::Ntfy,
        "telegram" => {
            let chat_key = key.field("chat_id");
            let chat = cx.required(&chat_key, &w.chat_id, "the Telegram chat id to post to")?;
            WebhookKind::Telegram {
                chat_id: cx.text(&chat_key, chat, "a chat id")?,
            }
        }
        other => {
            return Err(cx.invalid(
                &kind_key,
                "\"json\", \"ntfy\" or \"telegram\"",
                format!("{other:?}"),
            ));
        }
    };
    if w.chat_id.is_some() && !matches!(kind, WebhookKind::Telegram { .. }) {
        return Err(cx.conflict(&key.field("chat_id"), "only for kind = \"telegram\""));
    }
    let url_key = key.field("url");
    let url = match (&w.url, &kind) {
        (Some(u), _) => u.trim().to_string(),
        (None, WebhookKind::Telegram { .. }) => "https://api.telegram.org".to_string(),
        (None, _) => {
            return Err(cx.missing(
                &url_key,
                "the URL to post alerts to, like \"https://ntfy.sh/my-topic\"",
            ));
        }
    };
    match url::Url::parse(&url) {
        Ok(u)
            if (u.scheme() == "https" || u.scheme() == "http")
                && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => return Err(cx.invalid(&url_key, "an http:// or https:// URL", format!("{url:?}"))),
    }
    let mut token = cx.secret(key, "token", w.token, "token_file", w.token_file)?;
    if matches!(kind, WebhookKind::Telegram { .. }) && token.is_none() {
        token = Some(cx.needed_secret(
            &key.field("token"),
            &format!(
                "the Telegram bot token: set {} or {}_FILE",
                key.field("token").env_var(),
                key.field("token").env_var()
            ),
        )?);
    }
    Ok(Webhook { kind, url, token })
}

fn resolve_status(cx: &Ctx, s: file::StatusFile) -> Result<Status, ConfigError> {
    let key = KeyPath::root().field("status").field("listen");
    let text = s.listen.as_deref().unwrap_or(DEFAULT_STATUS_LISTEN).trim();
    if text == "off" {
        return Ok(Status { listen: None });
    }
    let listen: SocketAddr = text.parse().map_err(|_| {
        cx.invalid(
            &key,
            "an address:port like \"127.0.0.1:9180\", or \"off\"",
            format!("{text:?}"),
        )
    })?;
    Ok(Status {
        listen: Some(listen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_bounded_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; (MAX_SECRET_FILE + 10) as usize]).unwrap();
        let e = read_secret("K", &big).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let crlf = dir.path().join("crlf");
        std::fs::write(&crlf, "pw \r\n").unwrap();
        assert_eq!(
            read_secret("K", &crlf).unwrap().expose(),
            "pw ",
            "only line ends are dropped"
        );
    }

    #[test]
    fn pins_parse_in_both_spellings() {
        let origins = Origins::default();
        let cx = Ctx {
            origins: &origins,
            secrets: Secrets::Required,
        };
        let k = KeyPath::root().field("rest").field("pin_sha256");
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let colons: Vec<String> = hex
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let a = parse_pin(&cx, &k, hex).unwrap();
        assert_eq!(a, parse_pin(&cx, &k, &colons.join(":")).unwrap());
        assert_eq!(a[1], 0x11);
        for bad in [
            "",
            "00",
            &hex[..62],
            &format!("{hex}00"),
            &hex.replace('0', "g"),
        ] {
            assert!(parse_pin(&cx, &k, bad).is_err(), "{bad}");
        }
        // Multi-byte characters never reach the byte slicing.
        assert!(parse_pin(&cx, &k, &"é".repeat(32)).is_err());
    }
}
