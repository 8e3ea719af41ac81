//! `uplinkd explain`: the command around [`crate::explain`]. Offline (the configuration only);
//! the sentences are written here, from the core's data.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::config::Config;
use crate::explain::{self, Exit, Explanation, Route, Stage};
use crate::traffic::{Connection, LastResort, Protocol};
use crate::types::LinkId;

/// What the command line asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: String,
    pub port: Option<u16>,
    pub in_interface: Option<String>,
    pub if_down: Vec<String>,
    pub json: bool,
}

/// A request the configuration cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("explain --if-down {0}: no such WAN in the configuration")]
    UnknownWan(String),
    #[error("explain --protocol {0}: expected tcp, udp or icmp")]
    Protocol(String),
    #[error("explain --port: icmp has no ports")]
    PortWithoutPorts,
}

/// The explanation now (every WAN up) and, with `--if-down`, with those WANs down: text or JSON.
pub fn main_explain(config: &Config, req: &Request) -> anyhow::Result<String> {
    let protocol = Protocol::parse(&req.protocol)
        .ok_or_else(|| ExplainError::Protocol(req.protocol.clone()))?;
    if protocol == Protocol::Icmp && req.port.is_some() {
        return Err(ExplainError::PortWithoutPorts.into());
    }
    let mut down = Vec::new();
    for name in &req.if_down {
        let wan = config
            .wans
            .iter()
            .find(|w| w.id.as_str() == name)
            .ok_or_else(|| ExplainError::UnknownWan(name.clone()))?;
        down.push(wan.id.clone());
    }
    let conn = Connection {
        in_interface: req.in_interface.clone().unwrap_or_else(|| {
            config
                .lan
                .as_ref()
                .map_or_else(|| "bridge".to_string(), |l| l.bridge.clone())
        }),
        src: req.src,
        dst: req.dst,
        protocol,
        dst_port: req.port,
    };
    let now_t = crate::clock::mono();
    let now = explain::explain(config, &explain::assume(config, &[], now_t), &conn);
    let failed = (!down.is_empty())
        .then(|| explain::explain(config, &explain::assume(config, &down, now_t), &conn));
    if req.json {
        let value = serde_json::json!({
            "now": now,
            "if_down": failed.as_ref().map(|e| serde_json::json!({ "wans": down, "explanation": e })),
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&value)?));
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", stage_line(&now.stage));
    let _ = writeln!(out, "now: {}", exits_line(&now));
    if let Some(f) = &failed {
        let names: Vec<&str> = down.iter().map(LinkId::as_str).collect();
        let verb = if names.len() == 1 { "is" } else { "are" };
        if !same_stage(&f.stage, &now.stage) {
            let _ = writeln!(
                out,
                "if {} {verb} down: {}",
                names.join(" and "),
                stage_line(&f.stage)
            );
        }
        let _ = writeln!(
            out,
            "if {} {verb} down: {}",
            names.join(" and "),
            exits_line(f)
        );
    }
    if let Some(s) = &now.sticky {
        let wans: Vec<&str> = s.wans.iter().map(LinkId::as_str).collect();
        let _ = writeln!(
            out,
            "sticky ({}, {}): a source already remembered on {} keeps that WAN; the above is for a new source",
            s.by,
            crate::traffic::ros_duration(std::time::Duration::from_secs(s.timeout_secs)),
            if wans.is_empty() {
                "no WAN".to_string()
            } else {
                wans.join(" or ")
            },
        );
    }
    Ok(out)
}

fn stage_line(stage: &Stage) -> String {
    match stage {
        Stage::Inbound { wan, interface } => format!(
            "inbound on {interface} ({wan}): marked for {wan}, its replies leave by {wan}; never balanced"
        ),
        Stage::ProbeBypass { source } => {
            format!(
                "probe source {source}: left alone by mangle (the probe routing rules steer it)"
            )
        }
        Stage::LocalBypass { subnet } => {
            let what = match &subnet.origin {
                crate::rsc::LocalOrigin::Lan => "the LAN".to_string(),
                crate::rsc::LocalOrigin::Wan { wan } => format!("{wan}'s subnet"),
                crate::rsc::LocalOrigin::Probe { wan } => format!("{wan}'s probe veth"),
                crate::rsc::LocalOrigin::Private => "a private range".to_string(),
            };
            format!("local bypass: {} ({what}) is never balanced", subnet.net)
        }
        Stage::Rule {
            name,
            matchers,
            policy,
            kind,
            wans,
            last_resort,
            ..
        } => {
            let m: Vec<String> = matchers
                .iter()
                .map(|m| format!("{} {}", m.key, m.value))
                .collect();
            let wans: Vec<&str> = wans.iter().map(LinkId::as_str).collect();
            let last = match last_resort {
                LastResort::Any => "else any",
                LastResort::Drop => "else drop",
            };
            format!(
                "rule {name} ({}) → policy {policy} ({}: {}; {last})",
                if m.is_empty() {
                    "every connection".to_string()
                } else {
                    m.join(", ")
                },
                kind.as_str(),
                wans.join(", ")
            )
        }
        Stage::Default => {
            "no rule matches → the default policy (PCC over the carrying WANs)".into()
        }
    }
}

/// The exits grouped by where they lead (a WAN reached through two tables is one WAN).
fn exits_line(e: &Explanation) -> String {
    let mut groups: Vec<(String, Vec<(f64, String)>)> = Vec::new();
    for s in &e.exits {
        let (what, how) = match &s.exit {
            Exit::Wan { wan, table, route } => (
                format!("leaves by {wan}"),
                match route {
                    Route::Main | Route::Own => table.clone(),
                    Route::Fallback => format!("{table}'s fallback"),
                    Route::Failsafe => format!("{table}'s failsafe"),
                },
            ),
            Exit::Connected => (
                "stays inside (a connected network)".to_string(),
                String::new(),
            ),
            Exit::Dropped => ("dropped (blackhole)".to_string(), String::new()),
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, v)) => v.push((s.percent, how)),
            None => groups.push((what, vec![(s.percent, how)])),
        }
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|(what, parts)| {
            let total: f64 = parts.iter().map(|(p, _)| p).sum();
            let hows: Vec<String> = parts
                .iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(p, h)| {
                    if parts.len() == 1 {
                        h.clone()
                    } else {
                        format!("{p:.1} % through {h}")
                    }
                })
                .collect();
            let detail = if hows.is_empty() {
                String::new()
            } else {
                format!(" ({})", hows.join(", "))
            };
            if single {
                format!("{what}{detail}")
            } else {
                format!("{total:.1} % {what}{detail}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether two stages are the same rule (or the same bypass), whatever WANs it may use.
fn same_stage(a: &Stage, b: &Stage) -> bool {
    match (a, b) {
        (Stage::Rule { name: x, .. }, Stage::Rule { name: y, .. }) => x == y,
        _ => a == b,
    }
}
