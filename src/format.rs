//! The one formatter of everything uplinkd says about links: the `[FAILOVER] ...` log lines the
//! seed's users already filter on (`/log print where message~"FAILOVER"`), alert subjects and
//! bodies and durations (`4m12s`). Pure: no I/O, no clock, no colour codes, and never a secret (nothing
//! here is given one).

use std::fmt::Write as _;
use std::time::Duration;

use crate::health::{Check, OutageEvidence, Reason, StateKind, Transition};
use crate::types::LinkId;

/// The prefix of every failover line, kept from the seed so existing filters keep working.
pub const PREFIX: &str = "[FAILOVER]";

/// RouterOS log topic a line is written to (`/log/info`, `/log/warning`, `/log/error`).
pub use crate::types::LogLevel;

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

/// The `[FAILOVER]` line of a link transition, or `None` for edges that only matter to uplinkd
/// (the first verdict after start, entering the hold-down): those are logged as structured
/// fields by the caller. `down_for` is the outage length when the link comes back; `quality` its
/// loss/RTT then (see [`quality`]).
pub fn transition_line(
    tr: &Transition,
    down_for: Option<Duration>,
    quality: Option<&str>,
) -> Option<LogLine> {
    let (link, reason) = (&tr.link, reason(&tr.reason));
    let reason = reason.as_str();
    let line = match (tr.from.kind(), tr.to.kind()) {
        (_, StateKind::Down) => LogLine::new(LogLevel::Warning, link_down(link, reason)),
        (_, StateKind::Degraded) => LogLine::new(LogLevel::Warning, link_degraded(link, reason)),
        (StateKind::Down | StateKind::Recovering, StateKind::Up) => match down_for {
            Some(d) => LogLine::new(LogLevel::Info, link_up(link, d, quality)),
            None => LogLine::new(LogLevel::Info, format!("{PREFIX} {link} UP - recovered")),
        },
        (StateKind::Degraded, StateKind::Up) => {
            LogLine::new(LogLevel::Info, link_restored(link, reason))
        }
        _ => return None,
    };
    Some(line)
}

/// Why a WAN changed state, as one sentence (the core hands over the cause and its numbers):
/// `none of 2 targets answered in 3 consecutive rounds (6 silent); evidence 18.6 >= 18 against
/// a usual bad-round rate of 0.2%`.
pub fn reason(r: &Reason) -> String {
    match r {
        Reason::GoodRounds { rounds, srtt } => {
            format!("{rounds} consecutive good rounds{}", srtt_note(srtt))
        }
        Reason::Answering {
            rounds,
            down_for,
            hold_down,
        } => format!(
            "{rounds} consecutive good rounds after {} down; failback after a hold-down of {}",
            human(*down_for),
            human(*hold_down)
        ),
        Reason::HoldDownPassed {
            hold_down,
            rounds,
            srtt,
        } => format!(
            "hold-down of {} passed without a new outage ({rounds} consecutive good rounds{})",
            human(*hold_down),
            srtt_note(srtt)
        ),
        Reason::Outage(e) => outage(e),
        Reason::BrownOut { over } => brownout(over),
        Reason::BrownOutOver { within } => {
            let within: Vec<String> = within.iter().map(|c| check(c, Against::Recover)).collect();
            format!("brown-out over: {}", within.join(", "))
        }
        Reason::DegradedOnEntry { usable, over } => {
            format!("{}; {}", reason(usable), brownout(over))
        }
    }
}

fn outage(e: &OutageEvidence) -> String {
    let mut kinds = vec![format!("{} silent", e.silent)];
    if e.icmp_errors > 0 {
        kinds.push(format!("{} ICMP errors", e.icmp_errors));
    }
    if e.send_failures > 0 {
        kinds.push(format!("{} send failures", e.send_failures));
    }
    let n = e.targets;
    let who = if e.quorum == 1 {
        format!("none of {n} targets answered")
    } else {
        format!("fewer than {} of {n} targets answered", e.quorum)
    };
    format!(
        "{who} in {b} consecutive rounds ({k}); evidence {c:.1} >= {h} \
         against a usual bad-round rate of {p:.1}%",
        b = e.rounds,
        k = kinds.join(", "),
        c = e.evidence,
        h = e.threshold,
        p = e.baseline * 100.0,
    )
}

fn brownout(over: &[Check]) -> String {
    let over: Vec<String> = over.iter().map(|c| check(c, Against::Fail)).collect();
    format!("brown-out: {} over the window", over.join(", "))
}

/// Which level of a brown-out metric a sentence compares with.
#[derive(Clone, Copy)]
enum Against {
    Fail,
    Recover,
}

/// `loss 12.0% >= 10%`, `latency 80.2 ms <= 100 ms`: the value against its fail level (`>=`)
/// or its recover level (`<=`).
fn check(c: &Check, against: Against) -> String {
    let op = match against {
        Against::Fail => ">=",
        Against::Recover => "<=",
    };
    let (name, value, level, unit) = match *c {
        Check::Loss { percent, levels } => {
            let level = match against {
                Against::Fail => levels.fail,
                Against::Recover => levels.recover,
            };
            ("loss", percent, level, "%")
        }
        Check::Latency { value, levels } | Check::Jitter { value, levels } => {
            let level = match against {
                Against::Fail => levels.fail,
                Against::Recover => levels.recover,
            };
            let name = if matches!(c, Check::Latency { .. }) {
                "latency"
            } else {
                "jitter"
            };
            (name, ms(value), ms(level), " ms")
        }
    };
    format!("{name} {value:.1}{unit} {op} {level}{unit}")
}

fn srtt_note(srtt: &[(std::net::Ipv4Addr, Duration)]) -> String {
    if srtt.is_empty() {
        return String::new();
    }
    let each: Vec<String> = srtt
        .iter()
        .map(|(addr, s)| format!("{addr} {:.0} ms", ms(*s)))
        .collect();
    format!("; srtt {}", each.join(", "))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whole milliseconds in humantime's words (`1m 71ms`): virtual-time arithmetic would otherwise
/// print nanoseconds.
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Where a WAN's state line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A `[FAILOVER]` line: uplinkd's own log and the router's `/log`.
    Router,
    /// An edge that only matters to uplinkd (the first verdict after start, entering the
    /// hold-down): its own log only.
    Own,
}

/// The line of a WAN's state change and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLine {
    pub line: LogLine,
    pub scope: Scope,
}

/// The one line of every state change of a WAN: what the daemon logs and `uplinkd simulate`
/// prints. The `[FAILOVER]` line ([`transition_line`]) where the edge has one, otherwise
/// `ISP1 unknown -> up - <reason>`.
pub fn state_change(
    tr: &Transition,
    down_for: Option<Duration>,
    quality: Option<&str>,
) -> StateLine {
    match transition_line(tr, down_for, quality) {
        Some(line) => StateLine {
            line,
            scope: Scope::Router,
        },
        None => StateLine {
            line: LogLine::new(
                LogLevel::Info,
                format!(
                    "{} {} -> {} - {}",
                    tr.link,
                    tr.from,
                    tr.to,
                    or_dash(&reason(&tr.reason))
                ),
            ),
            scope: Scope::Own,
        },
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

/// `[FAILOVER] ISP1 DEGRADED - <reason>`: up, but out of balancing (brown-out).
pub fn link_degraded(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} DEGRADED - {}", or_dash(reason))
}

/// `[FAILOVER] ISP1 UP - <reason>`: back from a brown-out.
pub fn link_restored(link: &LinkId, reason: &str) -> String {
    format!("{PREFIX} {link} UP - {}", or_dash(reason))
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

/// An alert's subject (before [`alert_subject`] tags it) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    pub subject: String,
    pub body: String,
}

/// Whether a WAN's return (or a reminder) happens while every WAN is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    /// Other WANs carry traffic.
    Kept,
    /// Every WAN is (or was, until this one came back) down.
    Lost,
}

/// `[uplinkd] <subject>`: the tag mail filters and webhook receivers match on.
pub fn alert_subject(subject: &str) -> String {
    format!("[uplinkd] {subject}")
}

/// The last WAN failed: `CRITICAL: all WANs DOWN (ISP1, ISP2)`, the critical line and who
/// failed last.
pub fn alert_all_down(links: &[LinkId], last: &LinkId, reason: &str) -> AlertText {
    AlertText {
        subject: format!("CRITICAL: all WANs DOWN ({})", join_or_none(links)),
        body: format!(
            "{}\nThe last WAN to fail was {last}: {}.\nNo internet connectivity until one comes back.",
            all_down(links),
            or_dash(reason)
        ),
    }
}

/// A WAN failed while others carry its traffic.
pub fn alert_down(link: &LinkId, reason: &str, remaining: &[LinkId]) -> AlertText {
    AlertText {
        subject: format!("{link} DOWN - {}", or_dash(reason)),
        body: format!(
            "{}\nTraffic moved to the remaining WANs ({}).",
            link_down(link, reason),
            join_or_none(remaining)
        ),
    }
}

/// A WAN is back after `outage`, with its loss/RTT then ([`quality`]).
pub fn alert_up(
    link: &LinkId,
    outage: Duration,
    quality: Option<&str>,
    before: Connectivity,
) -> AlertText {
    let mut body = link_up(link, outage, quality);
    if before == Connectivity::Lost {
        body.push_str("\nInternet connectivity is restored.");
    }
    AlertText {
        subject: format!("{link} UP - recovered after {}", duration(outage)),
        body,
    }
}

/// A reminder's subject: `ISP1 still DOWN (6h)`.
pub fn alert_still_down(link: &LinkId, label: &str, now: Connectivity) -> String {
    match now {
        Connectivity::Lost => format!("CRITICAL: {link} still DOWN ({label}), all WANs DOWN"),
        Connectivity::Kept => format!("{link} still DOWN ({label})"),
    }
}

/// `High Memory Usage: 93%` (the seed's wording) with the threshold.
pub fn resource_high(what: &str, percent: f64, threshold: u8) -> String {
    format!("High {what} Usage: {percent:.0}% (alert at {threshold}%)")
}

/// `Memory Usage back to normal: 71%`.
pub fn resource_normal(what: &str, percent: f64) -> String {
    format!("{what} Usage back to normal: {percent:.0}%")
}

pub(super) fn join(links: &[LinkId]) -> String {
    links
        .iter()
        .map(LinkId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`join`], or `none` for no WAN.
fn join_or_none(links: &[LinkId]) -> String {
    if links.is_empty() {
        "none".to_string()
    } else {
        join(links)
    }
}

pub(super) fn or_dash(reason: &str) -> &str {
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
    fn transition_lines() {
        use crate::health::{LinkState, examples};
        let t = crate::clock::mono();
        let tr = |from, to| Transition {
            link: LinkId::new("ISP1"),
            at: t,
            from,
            to,
            reason: examples::edge(from, to),
        };
        let msg =
            |from, to, d| transition_line(&tr(from, to), d, None).map(|l| (l.level, l.message));
        let down = LinkState::Down { since: t };
        let rec = LinkState::Recovering { since: t };
        let deg = LinkState::Degraded { since: t };
        let d = Some(Duration::from_secs(252));
        assert_eq!(
            msg(LinkState::Up, down, None),
            Some((
                LogLevel::Warning,
                format!("[FAILOVER] ISP1 DOWN - {}", examples::OUTAGE)
            ))
        );
        assert_eq!(
            msg(rec, LinkState::Up, d),
            Some((
                LogLevel::Info,
                "[FAILOVER] ISP1 UP - recovered after 4m12s".into()
            ))
        );
        assert_eq!(
            msg(down, LinkState::Up, None),
            Some((LogLevel::Info, "[FAILOVER] ISP1 UP - recovered".into()))
        );
        assert_eq!(
            msg(LinkState::Up, deg, None),
            Some((
                LogLevel::Warning,
                "[FAILOVER] ISP1 DEGRADED - brown-out: loss 20.0% >= 10% over the window".into()
            ))
        );
        assert_eq!(
            msg(deg, LinkState::Up, None),
            Some((
                LogLevel::Info,
                "[FAILOVER] ISP1 UP - brown-out over: loss 2.0% <= 5%".into()
            ))
        );
        assert_eq!(msg(LinkState::Unknown, LinkState::Up, None), None);
        assert_eq!(msg(down, rec, None), None);
        let own = state_change(&tr(down, rec), None, None);
        assert_eq!(own.scope, Scope::Own);
        assert_eq!(
            own.line.message,
            "ISP1 down -> recovering - 5 consecutive good rounds after 1m down; \
             failback after a hold-down of 30s"
        );
        let router = state_change(&tr(LinkState::Up, down), None, None);
        assert_eq!(router.scope, Scope::Router);
        assert_eq!(
            router.line.message,
            format!("[FAILOVER] ISP1 DOWN - {}", examples::OUTAGE)
        );
    }

    /// Every cause the core gives, in the words the logs, alerts and docs have always used.
    #[test]
    fn reasons() {
        use crate::health::{Check, DurationLevels, OutageEvidence, examples};
        use std::net::Ipv4Addr;
        let ms = Duration::from_millis;
        let latency = Check::Latency {
            value: ms(180),
            levels: DurationLevels {
                fail: ms(150),
                recover: ms(100),
            },
        };
        let jitter = Check::Jitter {
            value: Duration::from_micros(20_250),
            levels: DurationLevels {
                fail: ms(30),
                recover: ms(25),
            },
        };
        let srtt = vec![
            (Ipv4Addr::new(198, 18, 1, 1), ms(20)),
            (Ipv4Addr::new(198, 18, 1, 2), Duration::from_micros(22_400)),
        ];
        let table: Vec<(Reason, &str)> = vec![
            (examples::outage(), examples::OUTAGE),
            (
                Reason::Outage(OutageEvidence {
                    targets: 3,
                    quorum: 2,
                    rounds: 4,
                    silent: 5,
                    icmp_errors: 2,
                    send_failures: 1,
                    evidence: 20.04,
                    threshold: 18.0,
                    baseline: 0.0104,
                }),
                "fewer than 2 of 3 targets answered in 4 consecutive rounds (5 silent, 2 ICMP \
                 errors, 1 send failures); evidence 20.0 >= 18 against a usual bad-round rate of 1.0%",
            ),
            (
                Reason::GoodRounds {
                    rounds: 5,
                    srtt: srtt.clone(),
                },
                "5 consecutive good rounds; srtt 198.18.1.1 20 ms, 198.18.1.2 22 ms",
            ),
            (
                Reason::Answering {
                    rounds: 5,
                    down_for: Duration::from_millis(60_071),
                    hold_down: Duration::from_secs(30),
                },
                "5 consecutive good rounds after 1m 71ms down; failback after a hold-down of 30s",
            ),
            (
                Reason::HoldDownPassed {
                    hold_down: Duration::from_secs(30),
                    rounds: 155,
                    srtt,
                },
                "hold-down of 30s passed without a new outage (155 consecutive good rounds; \
                 srtt 198.18.1.1 20 ms, 198.18.1.2 22 ms)",
            ),
            (
                Reason::BrownOut {
                    over: vec![latency],
                },
                "brown-out: latency 180.0 ms >= 150 ms over the window",
            ),
            (
                Reason::BrownOutOver {
                    within: vec![jitter],
                },
                "brown-out over: jitter 20.2 ms <= 25 ms",
            ),
            (
                Reason::DegradedOnEntry {
                    usable: Box::new(examples::good_rounds()),
                    over: vec![latency],
                },
                "5 consecutive good rounds; brown-out: latency 180.0 ms >= 150 ms over the window",
            ),
        ];
        for (r, want) in table {
            assert_eq!(reason(&r), want, "{r:?}");
        }
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
}
