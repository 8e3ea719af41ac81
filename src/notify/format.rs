//! The one formatter of everything uplinkd says about links: the `[FAILOVER] ...` log lines the
//! seed's users already filter on (`/log print where message~"FAILOVER"`), alert subjects and
//! bodies, durations (`4m12s`), and the script that mirrors a link's state into the seed's
//! `:global ISP1Status`. Pure: no I/O, no clock, no colour codes, and never a secret (nothing
//! here is given one).

use std::fmt::Write as _;
use std::time::Duration;

use crate::types::LinkId;

/// The prefix of every failover line, kept from the seed so existing filters keep working.
pub const PREFIX: &str = "[FAILOVER]";

/// RouterOS log topic a line is written to (`/log/info`, `/log/warning`, `/log/error`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

impl LogLevel {
    /// The RouterOS command word (`/log/<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// One event, one line: what goes to stdout (container log) and to the router's `/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

impl LogLine {
    pub fn new(level: LogLevel, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
        }
    }
}

/// A compact, unambiguous duration: `12s`, `4m12s`, `1h02m03s`, `2d03h04m`. Sub-second parts are
/// dropped (an outage is never reported with more precision than the probes give).
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d{hours:02}h{mins:02}m")
    } else if hours > 0 {
        format!("{hours}h{mins:02}m{secs:02}s")
    } else if mins > 0 {
        format!("{mins}m{secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// A reminder delay as people configure it: `60m` → `1h`, `360m` → `6h`, `90m` → `1h30m`.
pub fn delay_label(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if sec > 0 || out.is_empty() {
        let _ = write!(out, "{sec}s");
    }
    out
}

/// `0.123` → `12.3%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// `0.0123 s` → `12.3 ms`.
pub fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Loss and RTT of a link when it came back, for the recovery line and alert.
pub fn quality(loss_ratio: Option<f64>, rtt: Option<Duration>) -> Option<String> {
    match (loss_ratio, rtt) {
        (None, None) => None,
        (Some(l), None) => Some(format!("loss {}", percent(l))),
        (None, Some(r)) => Some(format!("rtt {}", millis(r))),
        (Some(l), Some(r)) => Some(format!("loss {}, rtt {}", percent(l), millis(r))),
    }
}

/// `[FAILOVER] ISP1 DOWN - all 2 targets lost`
pub fn link_down(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} DOWN - {}", or_dash(reason))
}

/// `[FAILOVER] ISP1 UP - recovered after 4m12s (loss 0.0%, rtt 12.3 ms)`
pub fn link_up(link: &LinkId, outage: Duration, quality: Option<&str>) -> String {
    let mut s = format!("{PREFIX} {link} UP - recovered after {}", duration(outage));
    if let Some(q) = quality {
        let _ = write!(s, " ({q})");
    }
    s
}

/// `[FAILOVER] ISP1 UP - <reason>`: first verdict after start, no outage to report.
pub fn link_up_initial(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} UP - {}", or_dash(reason))
}

/// `[FAILOVER] ISP1 RECOVERING - <reason>`: answering again, held by the hold-down.
pub fn link_recovering(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} RECOVERING - {}", or_dash(reason))
}

/// `[FAILOVER] ISP1 DEGRADED - <reason>`: up, but out of balancing (brown-out).
pub fn link_degraded(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} DEGRADED - {}", or_dash(reason))
}

/// `[FAILOVER] ISP1 RESTORED - <reason>`: back from a brown-out.
pub fn link_restored(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} RESTORED - {}", or_dash(reason))
}

/// `[FAILOVER] CRITICAL: all WANs DOWN - no internet connectivity (ISP1, ISP2)`
pub fn all_down(links: &[LinkId]) -> String {
    format!(
        "{PREFIX} CRITICAL: all WANs DOWN - no internet connectivity ({})",
        join(links)
    )
}

/// `[FAILOVER] ISP1 still DOWN after 1h (down for 1h00m07s)`
pub fn still_down(link: &LinkId, label: &str, down_for: Duration) -> String {
    format!(
        "{PREFIX} {link} still DOWN after {label} (down for {})",
        duration(down_for)
    )
}

/// `High Memory Usage: 93%` (the seed's wording) with the threshold.
pub fn resource_high(what: &str, percent: f64, threshold: u8) -> String {
    format!("High {what} Usage: {percent:.0}% (alert at {threshold}%)")
}

/// `Memory Usage back to normal: 71%`.
pub fn resource_normal(what: &str, percent: f64) -> String {
    format!("{what} Usage back to normal: {percent:.0}%")
}

/// The seed's per-WAN state variable: `ISP1` → `ISP1Status`. `None` when the name cannot be a
/// plain RouterOS variable name (only letters, digits and `_` are safe unquoted).
pub fn global_status_name(link: &LinkId) -> Option<String> {
    let name = link.as_str();
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then(|| format!("{name}Status"))
}

/// The value the seed keeps in `:global <WAN>Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalStatus {
    Up,
    Down,
}

/// The script that sets the seed's global (`:global ISP1Status "down"`), for `/execute`.
pub fn global_status_script(link: &LinkId, status: GlobalStatus) -> Option<String> {
    let value = match status {
        GlobalStatus::Up => "up",
        GlobalStatus::Down => "down",
    };
    global_status_name(link).map(|var| format!(":global {var} \"{value}\""))
}

fn join(links: &[LinkId]) -> String {
    links
        .iter()
        .map(LinkId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_dash(reason: &str) -> &str {
    if reason.trim().is_empty() {
        "-"
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (secs, want) in [
            (0, "0s"),
            (12, "12s"),
            (60, "1m00s"),
            (252, "4m12s"),
            (3600, "1h00m00s"),
            (3723, "1h02m03s"),
            (86_400 + 3 * 3600 + 4 * 60 + 5, "1d03h04m"),
        ] {
            assert_eq!(duration(Duration::from_secs(secs)), want, "{secs}s");
        }
        assert_eq!(duration(Duration::from_millis(252_900)), "4m12s");
    }

    #[test]
    fn delay_labels() {
        for (secs, want) in [
            (3600, "1h"),
            (21_600, "6h"),
            (5400, "1h30m"),
            (90, "1m30s"),
            (0, "0s"),
        ] {
            assert_eq!(delay_label(Duration::from_secs(secs)), want);
        }
    }

    #[test]
    fn lines_match_the_seed_filters() {
        let isp1 = LinkId::new("ISP1");
        assert_eq!(
            link_down(&isp1, "all 2 targets lost"),
            "[FAILOVER] ISP1 DOWN - all 2 targets lost"
        );
        assert_eq!(
            link_up(&isp1, Duration::from_secs(252), None),
            "[FAILOVER] ISP1 UP - recovered after 4m12s"
        );
        let q = quality(Some(0.0), Some(Duration::from_micros(12_340)));
        assert_eq!(
            link_up(&isp1, Duration::from_secs(252), q.as_deref()),
            "[FAILOVER] ISP1 UP - recovered after 4m12s (loss 0.0%, rtt 12.3 ms)"
        );
        assert_eq!(link_down(&isp1, " "), "[FAILOVER] ISP1 DOWN - -");
        assert_eq!(
            all_down(&[isp1.clone(), LinkId::new("ISP2")]),
            "[FAILOVER] CRITICAL: all WANs DOWN - no internet connectivity (ISP1, ISP2)"
        );
        assert_eq!(
            resource_high("Memory", 93.4, 90),
            "High Memory Usage: 93% (alert at 90%)"
        );
    }

    #[test]
    fn lines_have_no_control_characters() {
        let isp1 = LinkId::new("ISP1");
        for line in [
            link_down(&isp1, "x"),
            link_up(&isp1, Duration::from_secs(1), Some("loss 1.0%")),
            link_degraded(&isp1, "loss 20%"),
            still_down(&isp1, "1h", Duration::from_secs(3601)),
        ] {
            assert!(line.chars().all(|c| !c.is_control()), "{line:?}");
        }
    }

    #[test]
    fn global_status_scripts() {
        let isp1 = LinkId::new("ISP1");
        assert_eq!(
            global_status_script(&isp1, GlobalStatus::Down).as_deref(),
            Some(":global ISP1Status \"down\"")
        );
        assert_eq!(
            global_status_script(&isp1, GlobalStatus::Up).as_deref(),
            Some(":global ISP1Status \"up\"")
        );
        assert_eq!(
            global_status_script(&LinkId::new("wan-2"), GlobalStatus::Up),
            None
        );
        assert_eq!(
            global_status_script(&LinkId::new("x\";/system reboot"), GlobalStatus::Up),
            None
        );
    }
}
