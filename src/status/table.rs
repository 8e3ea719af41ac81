//! The `uplinkd status` text, in the spirit of `mwan3 status`: one line per WAN, then the probe
//! statistics per target, the last reconcile and the alert queue. Pure: snapshot in, text out.

use std::fmt::Write as _;
use std::time::Duration;

use super::{ReconcileOutcome, Snapshot};
use crate::format;

/// Renders the snapshot for people (no colour; fixed-width columns).
pub fn render(s: &Snapshot) -> String {
    let now = s.generated_unix;
    let ago = |t: u64| format::duration(Duration::from_secs(now.saturating_sub(t)));
    let mut out = String::new();

    let _ = writeln!(out, "Interface status:");
    for l in &s.links {
        let label = if l.label.is_empty() || l.label == l.wan {
            String::new()
        } else {
            format!(" ({})", l.label)
        };
        let since = l
            .since_unix
            .map_or(String::new(), |t| format!(" for {}", ago(t)));
        let traffic = match (l.traffic, l.tier) {
            (Some(t), 1) => format!(", {}", t.as_str()),
            (Some(t), tier) => format!(", {} (tier {tier})", t.as_str()),
            (None, 1) => String::new(),
            (None, tier) => format!(" (tier {tier})"),
        };
        let _ = writeln!(
            out,
            " interface {}{label} is {}{since}{traffic} - {}",
            l.wan,
            l.state.as_str(),
            l.reason
        );
    }

    if !s.rules.is_empty() {
        let _ = writeln!(out, "\nTraffic rules:");
        for r in &s.rules {
            let _ = if r.wans.is_empty() {
                writeln!(
                    out,
                    " rule {}: no WAN usable, its last resort applies",
                    r.rule
                )
            } else {
                writeln!(out, " rule {} may use {}", r.rule, r.wans.join(", "))
            };
        }
    }

    let _ = writeln!(out, "\nProbe targets:");
    let rows: Vec<[String; 6]> = s
        .links
        .iter()
        .flat_map(|l| {
            l.targets.iter().map(|t| {
                [
                    l.wan.clone(),
                    t.address.to_string(),
                    opt_pct(t.loss_ratio),
                    opt_ms(t.rtt_seconds),
                    opt_ms(t.jitter_seconds),
                    // Remote mode's REST faults: probes that said nothing about the WAN.
                    t.no_evidence.to_string(),
                ]
            })
        })
        .collect();
    let header = ["WAN", "TARGET", "LOSS", "RTT", "JITTER", "NO-EVIDENCE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, " {}", cells.join("  ").trim_end());
    }

    let _ = writeln!(out);
    match &s.reconcile {
        None => {
            let _ = writeln!(out, "Last reconcile: none yet");
        }
        Some(r) => {
            let outcome = match r.outcome {
                ReconcileOutcome::Ok => format!("ok, {} changes", r.changes),
                ReconcileOutcome::Error => format!("error: {}", r.error.as_deref().unwrap_or("-")),
            };
            let _ = writeln!(
                out,
                "Last reconcile: {} ago, {outcome} ({} runs, {} errors)",
                ago(r.last_unix),
                r.runs_total,
                r.errors_total
            );
        }
    }

    let a = &s.alerts;
    let _ = writeln!(
        out,
        "Alerts: {} pending, {} sent, {} failed attempts, {} dropped",
        a.pending.len(),
        a.sent_total,
        a.failed_attempts_total,
        a.dropped_total
    );
    for p in &a.pending {
        let next = if p.next_attempt_unix > now {
            format!(
                "next try in {}",
                format::duration(Duration::from_secs(p.next_attempt_unix - now))
            )
        } else {
            "next try now".to_string()
        };
        let err = p
            .last_error
            .as_deref()
            .map_or(String::new(), |e| format!(", last error: {e}"));
        let _ = writeln!(
            out,
            " {} [{}] to {} ({} attempts, {next}{err})",
            p.subject,
            p.severity,
            p.channels.join(","),
            p.attempts
        );
    }
    out
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), format::percent)
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |s| format!("{:.1}ms", s * 1000.0))
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn table_like_mwan3_status() {
        let text = render(&sample::snapshot());
        let want = "\
Interface status:
 interface ISP1 (Primary-ISP) is up for 1h02m05s, carrying - 2/2 targets answer
 interface ISP2 (Backup-ISP) is down for 4m12s, standby (tier 2) - all 2 targets lost

Traffic rules:
 rule guests: no WAN usable, its last resort applies
 rule voip may use ISP1

Probe targets:
 WAN   TARGET      LOSS    RTT     JITTER  NO-EVIDENCE
 ISP1  198.18.0.1  0.0%    12.0ms  0.7ms   0
 ISP1  198.18.0.2  5.0%    12.6ms  0.9ms   3
 ISP2  198.18.1.1  100.0%  -       -       0

Last reconcile: 10s ago, ok, 4 changes (17 runs, 2 errors)
Alerts: 1 pending, 5 sent, 2 failed attempts, 0 dropped
 [uplinkd] ISP2 DOWN - all 2 targets lost [warning] to email (2 attempts, next try in 30s, last error: email: connection refused)
";
        assert_eq!(text, want);
    }
}
