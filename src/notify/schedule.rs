//! The alert schedule: a sans-IO state machine that turns link transitions, the passage of time
//! and `/system/resource` samples into alerts (at failure, reminders while down, at recovery,
//! every WAN down as critical, memory/CPU with hysteresis), plus the few log lines only it can
//! know (every WAN down, still down after 1h, high memory).
//!
//! `handle_*(now, ..)` in, `poll_*()` out; time is always an argument. It never sends anything,
//! never reads the clock and never sees a secret.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Alerts;
use crate::engine::OutageMark;
use crate::format::{self, LogLevel, LogLine};
use crate::health::{LinkStats, StateKind, Transition};
use crate::types::LinkId;

/// The seed repeats a reminder every 24 h after its last one; so do we (when reminders are on).
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(24 * 3600);
/// Resource alerts clear this many percentage points under the alert level (hysteresis).
pub const RESOURCE_CLEAR_MARGIN: u8 = 10;
/// Consecutive samples needed to raise or clear a resource alert (a single CPU spike is normal).
pub const RESOURCE_SAMPLES: u32 = 3;

/// Effective alert policy, resolved from [`Alerts`].
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Alert as soon as a WAN fails (the seed never did).
    pub on_failure: bool,
    /// Reminders while a WAN stays down, counted from the failure; sorted, no duplicates.
    pub reminders: Vec<Duration>,
    /// After the last reminder, repeat every this long (`None`: no repeats).
    pub repeat_every: Option<Duration>,
    /// Alert when a WAN whose outage was announced comes back.
    pub on_recovery: bool,
    pub memory: Option<ResourceThreshold>,
    pub cpu: Option<ResourceThreshold>,
}

/// When a resource alert is raised and when it clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceThreshold {
    /// Raise at or above this percentage...
    pub alert_at: u8,
    /// ...clear below this one...
    pub clear_below: u8,
    /// ...each after this many consecutive samples.
    pub samples: u32,
}

impl ResourceThreshold {
    /// Derived hysteresis: clear [`RESOURCE_CLEAR_MARGIN`] points lower, [`RESOURCE_SAMPLES`] each.
    pub fn derived(alert_at: u8) -> Self {
        Self {
            alert_at,
            clear_below: alert_at.saturating_sub(RESOURCE_CLEAR_MARGIN),
            samples: RESOURCE_SAMPLES,
        }
    }
}

impl Policy {
    pub fn from_config(alerts: &Alerts) -> Self {
        let mut reminders: Vec<Duration> = alerts
            .reminders
            .iter()
            .copied()
            .filter(|d| !d.is_zero())
            .collect();
        reminders.sort();
        reminders.dedup();
        let repeat_every = (!reminders.is_empty()).then_some(DEFAULT_REPEAT);
        Self {
            on_failure: alerts.on_failure,
            reminders,
            repeat_every,
            on_recovery: alerts.on_recovery,
            memory: alerts.memory_percent.map(ResourceThreshold::derived),
            cpu: alerts.cpu_percent.map(ResourceThreshold::derived),
        }
    }

    /// The effective values, one `key=value` each, for the start-up log line.
    pub fn summary(&self) -> String {
        let onoff = |b: bool| if b { "on" } else { "off" };
        let reminders = if self.reminders.is_empty() {
            "off".to_string()
        } else {
            self.reminders
                .iter()
                .map(|d| format::delay_label(*d))
                .collect::<Vec<_>>()
                .join(",")
        };
        let repeat = self
            .repeat_every
            .map_or("off".to_string(), format::delay_label);
        let res = |t: &Option<ResourceThreshold>| {
            t.map_or("off".to_string(), |t| {
                format!(
                    "{}%(clear<{}%,{}samples)",
                    t.alert_at, t.clear_below, t.samples
                )
            })
        };
        format!(
            "alerts: on_failure={} reminders={} repeat={} on_recovery={} memory={} cpu={}",
            onoff(self.on_failure),
            reminders,
            repeat,
            onoff(self.on_recovery),
            res(&self.memory),
            res(&self.cpu)
        )
    }

    /// Offset from the failure of the `k`-th reminder (0-based), if there is one.
    fn reminder_offset(&self, k: usize) -> Option<Duration> {
        let n = self.reminders.len();
        if k < n {
            return self.reminders.get(k).copied();
        }
        let last = *self.reminders.last()?;
        let every = self.repeat_every.filter(|d| !d.is_zero())?;
        let times = u32::try_from(k - n + 1).ok()?;
        every.checked_mul(times).and_then(|d| last.checked_add(d))
    }
}

/// How a link looked when it came back, measured by the health core (for the recovery alert).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkQuality {
    pub loss_ratio: Option<f64>,
    pub rtt: Option<Duration>,
}

impl LinkQuality {
    /// From the health core's statistics of the link.
    pub fn from_stats(stats: &LinkStats) -> Self {
        Self {
            loss_ratio: stats.loss_ratio,
            rtt: stats.rtt,
        }
    }
}

pub use crate::types::ResourceSample;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// Every WAN is down.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A watched router resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Memory,
    Cpu,
}

impl Resource {
    fn word(self) -> &'static str {
        match self {
            Resource::Memory => "Memory",
            Resource::Cpu => "CPU",
        }
    }
}

/// What an alert is about (kept structured for webhooks and the outbox file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    LinkDown {
        link: LinkId,
        reason: String,
    },
    /// The failure of `last` left no WAN up.
    AllDown {
        links: Vec<LinkId>,
        last: LinkId,
        reason: String,
    },
    StillDown {
        link: LinkId,
        after: String,
        down_for_secs: u64,
    },
    LinkUp {
        link: LinkId,
        outage_secs: u64,
        loss_ratio: Option<f64>,
        rtt_ms: Option<f64>,
    },
    ResourceHigh {
        resource: Resource,
        percent: f64,
        threshold: u8,
    },
    ResourceNormal {
        resource: Resource,
        percent: f64,
    },
}

/// A message for people: what the channels deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    pub event: Event,
    pub subject: String,
    pub body: String,
}

/// Where a link is, as far as alerts are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No verdict yet (start-up).
    Unknown,
    /// Up or degraded: it carries (or could carry) traffic.
    Up,
    /// Down or recovering; `next` is the index of the next reminder, `announced` whether an alert
    /// about this outage went out (a recovery is only announced for an announced outage).
    Down {
        since: Instant,
        next: usize,
        announced: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Normal,
    High,
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    level: Level,
    /// Consecutive samples on the other side of the threshold.
    streak: u32,
}

/// The alert schedule for a fixed set of WANs.
#[derive(Debug)]
pub struct Schedule {
    policy: Policy,
    links: BTreeMap<LinkId, Phase>,
    all_down: bool,
    resources: BTreeMap<Resource, Watch>,
    alerts: VecDeque<Alert>,
    lines: VecDeque<LogLine>,
}

impl Schedule {
    pub fn new(policy: Policy, links: impl IntoIterator<Item = LinkId>) -> Self {
        let watch = Watch {
            level: Level::Normal,
            streak: 0,
        };
        Self {
            policy,
            links: links.into_iter().map(|l| (l, Phase::Unknown)).collect(),
            all_down: false,
            resources: [(Resource::Memory, watch), (Resource::Cpu, watch)].into(),
            alerts: VecDeque::new(),
            lines: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A link changed state (`t.at` is now). `outage` is where the edge stands in the WAN's
    /// outage, from the engine's outage book (the one owner of "down since"); `quality` is the
    /// link's loss/RTT at that moment.
    /// The transition's own `[FAILOVER]` line is the caller's ([`format::transition_line`]);
    /// this only adds the lines the schedule alone knows (every WAN down, reminders).
    pub fn handle_transition(
        &mut self,
        t: &Transition,
        outage: OutageMark,
        quality: Option<LinkQuality>,
    ) {
        let now = t.at;
        // Start-up's Recovering is no outage in the book, but neither does the WAN carry yet:
        // its reminders count from the edge.
        let since = outage.since().unwrap_or(now);
        let prev = self.links.get(&t.link).copied().unwrap_or(Phase::Unknown);
        let reason = format::reason(&t.reason);
        let reason = reason.as_str();
        match (prev, t.to.kind()) {
            // Recovering fell back to Down, or hold-down entered: the same outage, no new alert.
            (Phase::Down { .. }, StateKind::Down | StateKind::Recovering) => {}
            (_, StateKind::Recovering) => {
                // Recovering without a known outage (start-up): not carrying traffic yet.
                self.links.insert(
                    t.link.clone(),
                    Phase::Down {
                        since,
                        next: 0,
                        announced: false,
                    },
                );
            }
            (_, StateKind::Down) => {
                self.links.insert(
                    t.link.clone(),
                    Phase::Down {
                        since,
                        next: 0,
                        announced: false,
                    },
                );
                let mut announced = false;
                if self.every_link_down() {
                    self.all_down = true;
                    let links: Vec<LinkId> = self.links.keys().cloned().collect();
                    self.log(LogLevel::Error, format::all_down(&links));
                    let text = format::alert_all_down(&links, &t.link, reason);
                    let event = Event::AllDown {
                        links,
                        last: t.link.clone(),
                        reason: reason.to_string(),
                    };
                    self.push(Severity::Critical, event, text);
                    announced = true;
                } else if self.policy.on_failure {
                    let text = format::alert_down(&t.link, reason, &self.links_up());
                    let event = Event::LinkDown {
                        link: t.link.clone(),
                        reason: reason.to_string(),
                    };
                    self.push(Severity::Warning, event, text);
                    announced = true;
                }
                self.links.insert(
                    t.link.clone(),
                    Phase::Down {
                        since,
                        next: 0,
                        announced,
                    },
                );
            }
            (Phase::Down { announced, .. }, StateKind::Up | StateKind::Degraded) => {
                let outage = outage.lasted().unwrap_or_default();
                self.links.insert(t.link.clone(), Phase::Up);
                let was_all_down = std::mem::replace(&mut self.all_down, false);
                if self.policy.on_recovery && announced {
                    let q = quality.unwrap_or_default();
                    let qtext = format::quality(q.loss_ratio, q.rtt);
                    let before = if was_all_down {
                        format::Connectivity::Lost
                    } else {
                        format::Connectivity::Kept
                    };
                    let text = format::alert_up(&t.link, outage, qtext.as_deref(), before);
                    let event = Event::LinkUp {
                        link: t.link.clone(),
                        outage_secs: outage.as_secs(),
                        loss_ratio: q.loss_ratio,
                        rtt_ms: q.rtt.map(|d| d.as_secs_f64() * 1000.0),
                    };
                    self.push(Severity::Info, event, text);
                }
            }
            (_, StateKind::Up | StateKind::Degraded) => {
                self.links.insert(t.link.clone(), Phase::Up);
            }
            (_, StateKind::Unknown) => {
                self.links.insert(t.link.clone(), Phase::Unknown);
            }
        }
    }

    /// Time passed: fire reminders that are due. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let links: Vec<(LinkId, Phase)> = self.links.iter().map(|(l, p)| (l.clone(), *p)).collect();
        for (link, phase) in links {
            let Phase::Down { since, next, .. } = phase else {
                continue;
            };
            let elapsed = now.saturating_duration_since(since);
            // After a long sleep only the latest due reminder is sent, not a burst of them.
            let mut k = next;
            let mut due = None;
            while let Some(off) = self.policy.reminder_offset(k) {
                if off > elapsed {
                    break;
                }
                due = Some((k, off));
                k += 1;
            }
            let Some((k, off)) = due else { continue };
            self.links.insert(
                link.clone(),
                Phase::Down {
                    since,
                    next: k + 1,
                    announced: true,
                },
            );
            let label = format::delay_label(off);
            let line = format::still_down(&link, &label, elapsed);
            self.log(LogLevel::Warning, line.clone());
            let (severity, now) = if self.all_down {
                (Severity::Critical, format::Connectivity::Lost)
            } else {
                (Severity::Warning, format::Connectivity::Kept)
            };
            let subject = format::alert_still_down(&link, &label, now);
            self.push(
                severity,
                Event::StillDown {
                    link,
                    after: label,
                    down_for_secs: elapsed.as_secs(),
                },
                format::AlertText {
                    subject,
                    body: line,
                },
            );
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if any reminder is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|p| match *p {
                Phase::Down { since, next, .. } => self
                    .policy
                    .reminder_offset(next)
                    .and_then(|off| since.checked_add(off)),
                _ => None,
            })
            .min()
    }

    /// A `/system/resource` reading.
    pub fn handle_resources(&mut self, sample: ResourceSample) {
        let checks = [
            (
                Resource::Memory,
                self.policy.memory,
                sample.memory_used_percent,
            ),
            (Resource::Cpu, self.policy.cpu, sample.cpu_load_percent),
        ];
        for (res, threshold, value) in checks {
            let (Some(th), Some(v)) = (threshold, value) else {
                continue;
            };
            let Some(watch) = self.resources.get_mut(&res) else {
                continue;
            };
            let crossing = match watch.level {
                Level::Normal => v >= f64::from(th.alert_at),
                Level::High => v < f64::from(th.clear_below),
            };
            watch.streak = if crossing { watch.streak + 1 } else { 0 };
            if watch.streak < th.samples.max(1) {
                continue;
            }
            watch.streak = 0;
            match watch.level {
                Level::Normal => {
                    watch.level = Level::High;
                    let line = format::resource_high(res.word(), v, th.alert_at);
                    self.log(LogLevel::Warning, line.clone());
                    self.push(
                        Severity::Warning,
                        Event::ResourceHigh {
                            resource: res,
                            percent: v,
                            threshold: th.alert_at,
                        },
                        format::AlertText {
                            subject: line.clone(),
                            body: line,
                        },
                    );
                }
                Level::High => {
                    watch.level = Level::Normal;
                    let line = format::resource_normal(res.word(), v);
                    self.log(LogLevel::Info, line.clone());
                    self.push(
                        Severity::Info,
                        Event::ResourceNormal {
                            resource: res,
                            percent: v,
                        },
                        format::AlertText {
                            subject: line.clone(),
                            body: line,
                        },
                    );
                }
            }
        }
    }

    /// The next alert to deliver.
    pub fn poll_alert(&mut self) -> Option<Alert> {
        self.alerts.pop_front()
    }

    /// The next line to log (stdout and the router's `/log`).
    pub fn poll_log(&mut self) -> Option<LogLine> {
        self.lines.pop_front()
    }

    fn every_link_down(&self) -> bool {
        !self.links.is_empty() && self.links.values().all(|p| matches!(p, Phase::Down { .. }))
    }

    fn links_up(&self) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, p)| **p == Phase::Up)
            .map(|(l, _)| l.clone())
            .collect()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        self.lines.push_back(LogLine::new(level, message));
    }

    fn push(&mut self, severity: Severity, event: Event, text: format::AlertText) {
        self.alerts.push_back(Alert {
            severity,
            event,
            subject: format::alert_subject(&text.subject),
            body: text.body,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outages;
    use crate::health::{LinkState, examples};

    const MIN: Duration = Duration::from_secs(60);

    fn policy() -> Policy {
        Policy::from_config(&Alerts {
            on_failure: true,
            reminders: vec![60 * MIN, 360 * MIN],
            on_recovery: true,
            memory_percent: Some(90),
            cpu_percent: None,
        })
    }

    use crate::health::examples::transition as tr;

    fn down(at: Instant) -> LinkState {
        LinkState::Down { since: at }
    }

    fn drain(s: &mut Fed) -> Vec<Alert> {
        std::iter::from_fn(|| s.poll_alert()).collect()
    }

    fn lines(s: &mut Fed) -> Vec<String> {
        std::iter::from_fn(|| s.poll_log())
            .map(|l| l.message)
            .collect()
    }

    /// A schedule fed as the alert service feeds it: each edge booked by the engine's outage
    /// book first, which tells the schedule when the outage began.
    struct Fed {
        schedule: Schedule,
        book: Outages,
    }

    impl Fed {
        fn new(p: Policy, links: &[&str]) -> Self {
            Self {
                schedule: Schedule::new(p, links.iter().map(|l| LinkId::new(*l))),
                book: Outages::default(),
            }
        }

        fn transition(&mut self, t: Transition, quality: Option<LinkQuality>) {
            let outage = self.book.handle(&t);
            self.schedule.handle_transition(&t, outage, quality);
        }
    }

    impl std::ops::Deref for Fed {
        type Target = Schedule;
        fn deref(&self) -> &Schedule {
            &self.schedule
        }
    }

    impl std::ops::DerefMut for Fed {
        fn deref_mut(&mut self) -> &mut Schedule {
            &mut self.schedule
        }
    }

    fn two_links(p: Policy, t0: Instant) -> Fed {
        let mut s = Fed::new(p, &["ISP1", "ISP2"]);
        for l in ["ISP1", "ISP2"] {
            s.transition(tr(l, t0, LinkState::Unknown, LinkState::Up), None);
        }
        drain(&mut s);
        lines(&mut s);
        s
    }

    #[test]
    fn alert_at_failure_reminders_and_recovery() {
        let t0 = crate::clock::mono();
        let mut s = two_links(policy(), t0);
        let tf = t0 + 10 * MIN;
        s.transition(tr("ISP1", tf, LinkState::Up, down(tf)), None);
        let a = drain(&mut s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].severity, Severity::Warning);
        assert_eq!(
            a[0].subject,
            format!("[uplinkd] ISP1 DOWN - {}", examples::OUTAGE)
        );
        assert!(a[0].body.contains("remaining WANs (ISP2)"), "{}", a[0].body);
        assert_eq!(s.poll_timeout(), Some(tf + 60 * MIN));

        // (time since failure, reminders expected) — each fires once
        let table: [(Duration, &[&str]); 6] = [
            (59 * MIN, &[]),
            (60 * MIN, &["[uplinkd] ISP1 still DOWN (1h)"]),
            (61 * MIN, &[]),
            (360 * MIN, &["[uplinkd] ISP1 still DOWN (6h)"]),
            (361 * MIN, &[]),
            (
                360 * MIN + DEFAULT_REPEAT,
                &["[uplinkd] ISP1 still DOWN (30h)"],
            ),
        ];
        for (after, want) in table {
            s.handle_timeout(tf + after);
            s.handle_timeout(tf + after); // spurious repeat: harmless
            let got: Vec<String> = drain(&mut s).into_iter().map(|a| a.subject).collect();
            assert_eq!(got, want, "at +{after:?}");
        }

        let tu = tf + 31 * 60 * MIN;
        let q = LinkQuality {
            loss_ratio: Some(0.0),
            rtt: Some(Duration::from_millis(12)),
        };
        s.transition(tr("ISP1", tu, down(tf), LinkState::Up), Some(q));
        let a = drain(&mut s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].severity, Severity::Info);
        assert_eq!(a[0].subject, "[uplinkd] ISP1 UP - recovered after 1d07h00m");
        assert_eq!(
            a[0].event,
            Event::LinkUp {
                link: LinkId::new("ISP1"),
                outage_secs: 31 * 3600,
                loss_ratio: Some(0.0),
                rtt_ms: Some(12.0)
            }
        );
        assert!(
            a[0].body.contains("(loss 0.0%, rtt 12.0 ms)"),
            "{}",
            a[0].body
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn recovering_and_falling_back_is_one_outage() {
        let t0 = crate::clock::mono();
        let mut s = two_links(policy(), t0);
        s.transition(tr("ISP1", t0, LinkState::Up, down(t0)), None);
        let t1 = t0 + 5 * MIN;
        s.transition(
            tr("ISP1", t1, down(t0), LinkState::Recovering { since: t1 }),
            None,
        );
        let t2 = t0 + 6 * MIN;
        s.transition(
            tr("ISP1", t2, LinkState::Recovering { since: t1 }, down(t2)),
            None,
        );
        assert_eq!(drain(&mut s).len(), 1, "one alert for one outage");
        // The reminder clock still counts from the first failure.
        assert_eq!(s.poll_timeout(), Some(t0 + 60 * MIN));
        let t3 = t0 + 8 * MIN;
        s.transition(tr("ISP1", t3, down(t2), LinkState::Up), None);
        let a = drain(&mut s);
        assert_eq!(a[0].subject, "[uplinkd] ISP1 UP - recovered after 8m00s");
        assert!(
            lines(&mut s).is_empty(),
            "transition lines are the caller's"
        );
    }

    #[test]
    fn every_wan_down_is_critical_even_without_failure_alerts() {
        let t0 = crate::clock::mono();
        let mut p = policy();
        p.on_failure = false;
        let mut s = two_links(p, t0);
        s.transition(tr("ISP1", t0, LinkState::Up, down(t0)), None);
        assert!(drain(&mut s).is_empty(), "on_failure off");
        let t1 = t0 + MIN;
        s.transition(tr("ISP2", t1, LinkState::Up, down(t1)), None);
        let a = drain(&mut s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].severity, Severity::Critical);
        assert_eq!(
            a[0].subject,
            "[uplinkd] CRITICAL: all WANs DOWN (ISP1, ISP2)"
        );
        let l = lines(&mut s);
        assert!(
            l.contains(
                &"[FAILOVER] CRITICAL: all WANs DOWN - no internet connectivity (ISP1, ISP2)"
                    .to_string()
            )
        );
        // ISP1's reminder while everything is down is critical too.
        s.handle_timeout(t0 + 60 * MIN);
        let a = drain(&mut s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].severity, Severity::Critical);
        // ISP2 comes back: announced outage → recovery alert saying connectivity is back.
        let t2 = t0 + 70 * MIN;
        s.transition(tr("ISP2", t2, down(t1), LinkState::Up), None);
        let a = drain(&mut s);
        assert_eq!(a.len(), 1);
        assert!(a[0].body.contains("connectivity is restored"));
        // ISP1's outage was announced by its reminder, so its recovery is announced too.
        s.transition(tr("ISP1", t2, down(t0), LinkState::Up), None);
        assert_eq!(drain(&mut s).len(), 1);
    }

    #[test]
    fn unannounced_outage_has_no_recovery_alert() {
        let t0 = crate::clock::mono();
        let mut p = policy();
        p.on_failure = false;
        let mut s = two_links(p, t0);
        s.transition(tr("ISP1", t0, LinkState::Up, down(t0)), None);
        s.transition(tr("ISP1", t0 + MIN, down(t0), LinkState::Up), None);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn long_sleep_sends_only_the_latest_reminder() {
        let t0 = crate::clock::mono();
        let mut s = two_links(policy(), t0);
        s.transition(tr("ISP1", t0, LinkState::Up, down(t0)), None);
        drain(&mut s);
        s.handle_timeout(t0 + 400 * MIN);
        let got: Vec<String> = drain(&mut s).into_iter().map(|a| a.subject).collect();
        assert_eq!(got, ["[uplinkd] ISP1 still DOWN (6h)"]);
    }

    #[test]
    fn no_reminders_means_no_repeats() {
        let p = Policy::from_config(&Alerts {
            on_failure: true,
            reminders: vec![],
            on_recovery: true,
            memory_percent: None,
            cpu_percent: None,
        });
        assert_eq!(p.repeat_every, None);
        let t0 = crate::clock::mono();
        let mut s = two_links(p, t0);
        s.transition(tr("ISP1", t0, LinkState::Up, down(t0)), None);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn resource_alerts_have_hysteresis() {
        let mut s = Fed::new(policy(), &["ISP1"]);
        let mem = |v: f64| ResourceSample {
            memory_used_percent: Some(v),
            cpu_load_percent: Some(100.0),
        };
        // (sample %, alert subject expected) — threshold 90, clear below 80, 3 samples each.
        let table: [(f64, Option<&str>); 10] = [
            (95.0, None),
            (95.0, None),
            (89.0, None), // streak broken
            (91.0, None),
            (92.0, None),
            (
                93.0,
                Some("[uplinkd] High Memory Usage: 93% (alert at 90%)"),
            ),
            (85.0, None), // under 90 but not under 80: still high
            (79.0, None),
            (70.0, None),
            (71.0, Some("[uplinkd] Memory Usage back to normal: 71%")),
        ];
        for (i, (v, want)) in table.into_iter().enumerate() {
            s.handle_resources(mem(v));
            let got: Vec<String> = drain(&mut s).into_iter().map(|a| a.subject).collect();
            assert_eq!(
                got,
                want.into_iter().map(String::from).collect::<Vec<_>>(),
                "sample {i} ({v}%)"
            );
        }
    }

    #[test]
    fn resource_sample_from_router_fields() {
        let r = ResourceSample::from_system_resource(1000, 250, Some(7));
        assert_eq!(r.memory_used_percent, Some(75.0));
        assert_eq!(r.cpu_load_percent, Some(7.0));
        assert_eq!(
            ResourceSample::from_system_resource(0, 0, None).memory_used_percent,
            None
        );
    }

    #[test]
    fn summary_lists_every_threshold() {
        assert_eq!(
            policy().summary(),
            "alerts: on_failure=on reminders=1h,6h repeat=24h on_recovery=on memory=90%(clear<80%,3samples) cpu=off"
        );
    }
}
