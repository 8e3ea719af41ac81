//! History for the status page: per monitor (WAN × target) two rings of RTT, loss and jitter
//! (the last hour at [`FINE`], the last day at [`COARSE`]), the WANs' transitions as marks on
//! the time axis (failover, recovery, brown-out...), and what the router was last told.
//!
//! Bounded by construction: the series are fixed at creation (one per configured WAN and
//! monitor), each ring holds at most its capacity, the marks at most [`MARKS_MAX`] of the last
//! day. Pure: every input carries its wall time as Unix seconds; the shell samples, serves the
//! JSON ([`History::to_json`], also the file kept in the state dir) and writes the file.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use crate::health::{LinkState, LinkStats, StateKind, Transition};
use crate::reconciler::Report;
use crate::types::LinkId;

/// The format of the JSON (served and kept); a file of another version is ignored.
pub const VERSION: u32 = 1;

/// A ring's resolution and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// Seconds per point.
    pub step: u64,
    /// Points kept.
    pub points: usize,
}

/// The last hour at 10 s.
pub const FINE: Resolution = Resolution {
    step: 10,
    points: 360,
};
/// The last day at 5 min.
pub const COARSE: Resolution = Resolution {
    step: 300,
    points: 288,
};
/// Transitions kept (and only those of the last day).
pub const MARKS_MAX: usize = 256;
/// Lines of the last plan kept.
pub const TOLD_MAX: usize = 32;

/// A running mean of one metric within a point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }

    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }

    /// A loaded value counts as one sample.
    fn of(v: Option<f64>) -> Self {
        let mut m = Mean::default();
        m.add(v);
        m
    }
}

/// One point: the means of the samples taken in `[t, t + step)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t: u64,
    rtt_ms: Mean,
    loss: Mean,
    jitter_ms: Mean,
}

/// A point as JSON: `[t, rtt_ms, loss_ratio, jitter_ms]`, `null` where nothing was measured
/// (no reply: no RTT). Rounded to what a graph shows.
type PointJson = (u64, Option<f64>, Option<f64>, Option<f64>);

/// The points of a kept series (`[t, rtt_ms, loss_ratio, jitter_ms]` each).
fn points(v: &Value) -> Vec<PointJson> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_u64()?, p[1].as_f64(), p[2].as_f64(), p[3].as_f64())))
        .collect()
}

fn round(v: Option<f64>, places: i32) -> Option<f64> {
    let k = 10f64.powi(places);
    v.map(|v| (v * k).round() / k)
}

impl From<&Point> for PointJson {
    fn from(p: &Point) -> Self {
        (
            p.t,
            round(p.rtt_ms.get(), 2),
            round(p.loss.get(), 3),
            round(p.jitter_ms.get(), 2),
        )
    }
}

/// One metric sample of a monitor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub rtt_ms: Option<f64>,
    pub loss: Option<f64>,
    pub jitter_ms: Option<f64>,
}

/// A ring of points at one resolution.
#[derive(Debug, Clone, PartialEq)]
struct Ring {
    res: Resolution,
    points: VecDeque<Point>,
}

impl Ring {
    fn new(res: Resolution) -> Self {
        Self {
            res,
            points: VecDeque::with_capacity(res.points),
        }
    }

    /// Adds a sample at `now`: into the current point, or a new one. A sample older than the
    /// newest point (a wall clock stepped back) is dropped rather than reorder the ring.
    fn add(&mut self, now: u64, s: Sample) {
        let t = now - now % self.res.step;
        match self.points.back_mut() {
            Some(p) if p.t == t => {
                p.rtt_ms.add(s.rtt_ms);
                p.loss.add(s.loss);
                p.jitter_ms.add(s.jitter_ms);
                return;
            }
            Some(p) if p.t > t => return,
            _ => {}
        }
        self.points.push_back(Point {
            t,
            rtt_ms: Mean::of(s.rtt_ms),
            loss: Mean::of(s.loss),
            jitter_ms: Mean::of(s.jitter_ms),
        });
        self.expire(now);
    }

    /// Drops points beyond the capacity or older than the ring's span.
    fn expire(&mut self, now: u64) {
        let span = self.res.step * self.res.points as u64;
        while self.points.len() > self.res.points
            || self.points.front().is_some_and(|p| p.t + span <= now)
        {
            self.points.pop_front();
        }
    }

    fn to_json(&self) -> Vec<PointJson> {
        self.points.iter().map(PointJson::from).collect()
    }

    /// Points loaded from a file: kept when on this ring's grid, in order, and not in the future.
    fn load(&mut self, points: &[PointJson], now: u64) {
        for &(t, rtt, loss, jitter) in points {
            let in_order = self.points.back().is_none_or(|p| p.t < t);
            if t % self.res.step == 0 && t <= now && in_order {
                self.points.push_back(Point {
                    t,
                    rtt_ms: Mean::of(rtt),
                    loss: Mean::of(loss),
                    jitter_ms: Mean::of(jitter),
                });
            }
        }
        self.expire(now);
    }
}

/// One monitor's rings.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    wan: LinkId,
    target: Ipv4Addr,
    fine: Ring,
    coarse: Ring,
}

/// What a transition was, for the marks on the graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkKind {
    /// The first verdict after start that lets the WAN carry (unknown → up or degraded).
    Start,
    /// Into down (also the first verdict): traffic moved off the WAN.
    Failover,
    /// Into degraded: out of balancing, still up.
    Brownout,
    /// Down → answering again, held by the hold-down.
    Recovering,
    /// Back to up.
    Recovery,
}

impl MarkKind {
    pub const ALL: [MarkKind; 5] = [
        MarkKind::Start,
        MarkKind::Failover,
        MarkKind::Brownout,
        MarkKind::Recovering,
        MarkKind::Recovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::Start => "start",
            MarkKind::Failover => "failover",
            MarkKind::Brownout => "brownout",
            MarkKind::Recovering => "recovering",
            MarkKind::Recovery => "recovery",
        }
    }

    /// The kind of an edge.
    pub fn of(from: &LinkState, to: &LinkState) -> Self {
        match (from.kind(), to.kind()) {
            (_, StateKind::Down) => MarkKind::Failover,
            (StateKind::Unknown, _) => MarkKind::Start,
            (_, StateKind::Degraded) => MarkKind::Brownout,
            (_, StateKind::Recovering) => MarkKind::Recovering,
            (_, StateKind::Up | StateKind::Unknown) => MarkKind::Recovery,
        }
    }
}

/// A transition on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// Unix seconds.
    pub t: u64,
    pub wan: String,
    pub kind: MarkKind,
    pub from: StateKind,
    pub to: StateKind,
    pub reason: String,
}

/// The last pass that wrote to the router.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Told {
    /// Unix seconds.
    pub t: u64,
    /// The plan as `uplinkd plan` prints it, one line each (at most [`TOLD_MAX`]).
    pub lines: Vec<String>,
}

/// The history of every monitor of the configured WANs.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    series: Vec<Series>,
    marks: VecDeque<Mark>,
    told: Option<Told>,
}

/// The JSON of [`History`]: what `/history` serves and the state-dir file holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryJson {
    pub version: u32,
    /// Seconds per point of `fine` and of `coarse`.
    pub fine_step: u64,
    pub coarse_step: u64,
    pub series: Vec<SeriesJson>,
    pub marks: Vec<Mark>,
    pub told: Option<Told>,
}

/// One monitor's points, oldest first: `[t, rtt_ms, loss_ratio, jitter_ms]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesJson {
    pub wan: String,
    pub target: Ipv4Addr,
    pub fine: Vec<PointJson>,
    pub coarse: Vec<PointJson>,
}

/// Why a kept file was not used (the history starts empty).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("history file is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("history file is not version {VERSION} of the format")]
    Version,
}

impl History {
    /// Empty rings for each WAN and each of its monitors, in that order.
    pub fn new<'a>(monitors: impl IntoIterator<Item = (&'a LinkId, &'a [Ipv4Addr])>) -> Self {
        let series = monitors
            .into_iter()
            .flat_map(|(wan, targets)| {
                targets.iter().map(move |&target| Series {
                    wan: wan.clone(),
                    target,
                    fine: Ring::new(FINE),
                    coarse: Ring::new(COARSE),
                })
            })
            .collect();
        Self {
            series,
            marks: VecDeque::new(),
            told: None,
        }
    }

    /// One probe-statistics reading of a WAN at `now` (Unix seconds): a sample per monitor.
    pub fn handle_stats(&mut self, stats: &LinkStats, now: u64) {
        for t in &stats.targets {
            let sample = Sample {
                rtt_ms: t.rtt.map(|d| d.as_secs_f64() * 1000.0),
                loss: t.loss_ratio,
                jitter_ms: t.jitter.map(|d| d.as_secs_f64() * 1000.0),
            };
            self.handle_sample(&stats.link, t.target, sample, now);
        }
    }

    /// One sample of one monitor (ignored when the monitor is not configured).
    pub fn handle_sample(&mut self, wan: &LinkId, target: Ipv4Addr, s: Sample, now: u64) {
        if let Some(series) = self
            .series
            .iter_mut()
            .find(|x| &x.wan == wan && x.target == target)
        {
            series.fine.add(now, s);
            series.coarse.add(now, s);
        }
    }

    /// A WAN's transition, as a mark at `now`.
    pub fn handle_transition(&mut self, t: &Transition, now: u64) {
        self.marks.push_back(Mark {
            t: now,
            wan: t.link.to_string(),
            kind: MarkKind::of(&t.from, &t.to),
            from: t.from.kind(),
            to: t.to.kind(),
            reason: crate::format::reason(&t.reason),
        });
        self.expire_marks(now);
    }

    /// A reconcile pass: one that wrote something becomes what the router was last told.
    pub fn handle_report(&mut self, r: &Report, now: u64) {
        if let Report::Applied(p) = r
            && !p.plan.is_noop()
        {
            let lines = p
                .plan
                .to_string()
                .lines()
                .take(TOLD_MAX)
                .map(str::to_string)
                .collect();
            self.told = Some(Told { t: now, lines });
        }
    }

    fn expire_marks(&mut self, now: u64) {
        let day = COARSE.step * COARSE.points as u64;
        while self.marks.len() > MARKS_MAX || self.marks.front().is_some_and(|m| m.t + day <= now) {
            self.marks.pop_front();
        }
    }

    /// The marks, oldest first.
    pub fn marks(&self) -> impl Iterator<Item = &Mark> {
        self.marks.iter()
    }

    /// The JSON view.
    pub fn view(&self) -> HistoryJson {
        HistoryJson {
            version: VERSION,
            fine_step: FINE.step,
            coarse_step: COARSE.step,
            series: self
                .series
                .iter()
                .map(|s| SeriesJson {
                    wan: s.wan.to_string(),
                    target: s.target,
                    fine: s.fine.to_json(),
                    coarse: s.coarse.to_json(),
                })
                .collect(),
            marks: self.marks.iter().cloned().collect(),
            told: self.told.clone(),
        }
    }

    /// The JSON text (compact: the page polls it).
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(&self.view()).unwrap_or_default()
    }

    /// Takes what a kept file holds into the configured series (a monitor no longer configured
    /// is dropped) as of `now`: points and marks older than their span expire. Read through
    /// `serde_json::Value`, whose decoder the REST client already brings (typed decoders for
    /// these structs cost the router build 10 KB); an entry that does not fit is skipped.
    pub fn load(&mut self, json: &str, now: u64) -> Result<(), LoadError> {
        let kept: Value = serde_json::from_str(json)?;
        if kept["version"].as_u64() != Some(u64::from(VERSION)) {
            return Err(LoadError::Version);
        }
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        for k in list(&kept["series"]) {
            let target = k["target"]
                .as_str()
                .and_then(|t| t.parse::<Ipv4Addr>().ok());
            if let Some(s) = self
                .series
                .iter_mut()
                .find(|s| Some(s.wan.as_str()) == k["wan"].as_str() && Some(s.target) == target)
            {
                s.fine.load(&points(&k["fine"]), now);
                s.coarse.load(&points(&k["coarse"]), now);
            }
        }
        let state = |v: &Value| {
            StateKind::ALL
                .into_iter()
                .find(|s| v.as_str() == Some(s.as_str()))
        };
        self.marks = list(&kept["marks"])
            .iter()
            .filter_map(|m| {
                Some(Mark {
                    t: m["t"].as_u64().filter(|&t| t <= now)?,
                    wan: m["wan"].as_str()?.to_string(),
                    kind: MarkKind::ALL
                        .into_iter()
                        .find(|k| m["kind"].as_str() == Some(k.as_str()))?,
                    from: state(&m["from"])?,
                    to: state(&m["to"])?,
                    reason: m["reason"].as_str()?.to_string(),
                })
            })
            .collect();
        self.expire_marks(now);
        let told = &kept["told"];
        self.told = told["t"].as_u64().map(|t| Told {
            t,
            lines: list(&told["lines"])
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_000_000; // on both grids
    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn isp(n: u8) -> LinkId {
        LinkId::new(format!("ISP{n}"))
    }

    fn history() -> History {
        let (i1, i2) = (isp(1), isp(2));
        let t1 = [A, B];
        let t2 = [A];
        History::new([(&i1, &t1[..]), (&i2, &t2[..])])
    }

    fn rtt(ms: f64) -> Sample {
        Sample {
            rtt_ms: Some(ms),
            loss: Some(0.0),
            jitter_ms: Some(1.0),
        }
    }

    const LOST: Sample = Sample {
        rtt_ms: None,
        loss: Some(1.0),
        jitter_ms: None,
    };

    fn series<'a>(v: &'a HistoryJson, wan: &str, target: Ipv4Addr) -> &'a SeriesJson {
        v.series
            .iter()
            .find(|s| s.wan == wan && s.target == target)
            .unwrap()
    }

    #[test]
    fn samples_in_one_step_are_averaged_and_a_lost_round_has_no_rtt() {
        let mut h = history();
        h.handle_sample(&isp(1), A, rtt(10.0), T0 + 1);
        h.handle_sample(&isp(1), A, rtt(20.0), T0 + 9);
        h.handle_sample(&isp(1), A, LOST, T0 + 10);
        let v = h.view();
        let s = series(&v, "ISP1", A);
        assert_eq!(
            s.fine,
            vec![
                (T0, Some(15.0), Some(0.0), Some(1.0)),
                (T0 + 10, None, Some(1.0), None)
            ]
        );
        // The coarse ring holds all three in one point; the loss mean is 1/3.
        assert_eq!(s.coarse, vec![(T0, Some(15.0), Some(0.333), Some(1.0))]);
        // Other monitors stay empty; an unconfigured one is ignored.
        h.handle_sample(&isp(3), A, rtt(1.0), T0);
        assert!(series(&h.view(), "ISP1", B).fine.is_empty());
        assert_eq!(h.view().series.len(), 3);
    }

    #[test]
    fn rings_keep_their_span_and_no_more() {
        let mut h = history();
        // Two days at one sample per 10 s.
        for i in 0..(2u32 * 24 * 360) {
            h.handle_sample(&isp(2), A, rtt(f64::from(i % 7)), T0 + 10 * u64::from(i));
        }
        let now = T0 + 10 * (2 * 24 * 360 - 1);
        let v = h.view();
        let s = series(&v, "ISP2", A);
        assert_eq!(s.fine.len(), FINE.points);
        assert_eq!(s.coarse.len(), COARSE.points);
        assert_eq!(s.fine.last().unwrap().0, now);
        assert!(s.fine.first().unwrap().0 > now - 3600);
        assert!(s.coarse.first().unwrap().0 > now - 86_400);
        // A gap longer than the span empties the ring but the newest point.
        h.handle_sample(&isp(2), A, rtt(5.0), now + 7200);
        assert_eq!(series(&h.view(), "ISP2", A).fine.len(), 1);
        // Two hours on: the 23 oldest of the day's points leave and one joins.
        assert_eq!(
            series(&h.view(), "ISP2", A).coarse.len(),
            COARSE.points - 23
        );
    }

    #[test]
    fn a_full_day_of_six_monitors_stays_small() {
        // The worst case the page polls and the state dir keeps: every ring full, every value
        // present, the marks at their bound.
        let wans: Vec<LinkId> = (1..=2).map(isp).collect();
        let targets = [A, B, Ipv4Addr::new(198, 18, 0, 3)];
        let mut h = History::new(wans.iter().map(|w| (w, &targets[..])));
        for i in 0..(24u32 * 360) {
            let s = Sample {
                rtt_ms: Some(10.0 + f64::from(i % 97) / 7.0),
                loss: Some(f64::from(i % 13) / 13.0),
                jitter_ms: Some(f64::from(i % 31) / 11.0),
            };
            for w in &wans {
                for t in targets {
                    h.handle_sample(w, t, s, T0 + 10 * u64::from(i));
                }
            }
        }
        let t = crate::clock::mono();
        for i in 0..MARKS_MAX as u64 {
            h.handle_transition(
                &tr(LinkState::Up, LinkState::Down { since: t }),
                T0 + 86_000 + i,
            );
        }
        let bytes = h.to_json().len();
        eprintln!("history JSON, 2 WANs x 3 monitors, full: {bytes} bytes");
        assert!(bytes < 200_000, "{bytes}");
    }

    #[test]
    fn a_clock_stepped_back_drops_the_sample() {
        let mut h = history();
        h.handle_sample(&isp(1), A, rtt(10.0), T0 + 100);
        h.handle_sample(&isp(1), A, rtt(99.0), T0 + 50);
        let v = h.view();
        assert_eq!(
            series(&v, "ISP1", A).fine,
            vec![(T0 + 100, Some(10.0), Some(0.0), Some(1.0))]
        );
    }

    fn tr(from: LinkState, to: LinkState) -> Transition {
        Transition {
            link: isp(1),
            at: crate::clock::mono(),
            from,
            to,
            reason: crate::health::examples::edge(from, to),
        }
    }

    #[test]
    fn transitions_become_marks_of_their_kind() {
        let t = crate::clock::mono();
        let (down, rec, deg) = (
            LinkState::Down { since: t },
            LinkState::Recovering { since: t },
            LinkState::Degraded { since: t },
        );
        let mut h = history();
        h.handle_transition(&tr(LinkState::Unknown, LinkState::Up), T0);
        h.handle_transition(&tr(LinkState::Up, deg), T0 + 5);
        h.handle_transition(&tr(deg, down), T0 + 10);
        h.handle_transition(&tr(down, rec), T0 + 20);
        h.handle_transition(&tr(rec, LinkState::Up), T0 + 50);
        let kinds: Vec<_> = h.marks().map(|m| (m.t - T0, m.kind, m.to)).collect();
        assert_eq!(
            kinds,
            vec![
                (0, MarkKind::Start, StateKind::Up),
                (5, MarkKind::Brownout, StateKind::Degraded),
                (10, MarkKind::Failover, StateKind::Down),
                (20, MarkKind::Recovering, StateKind::Recovering),
                (50, MarkKind::Recovery, StateKind::Up),
            ]
        );
        assert_eq!(
            h.marks().nth(2).unwrap().reason,
            crate::health::examples::OUTAGE
        );
        // A WAN found down at start is a failover too (the tracker counts it as one).
        assert_eq!(MarkKind::of(&LinkState::Unknown, &down), MarkKind::Failover);
        assert_eq!(MarkKind::of(&LinkState::Unknown, &deg), MarkKind::Start);
        // Bounded in number and to the last day.
        for i in 0..(MARKS_MAX as u64 + 10) {
            h.handle_transition(&tr(LinkState::Up, down), T0 + 100 + i);
        }
        assert_eq!(h.marks().count(), MARKS_MAX);
        // The oldest kept is at +110: a mark a day after +114 expires five.
        h.handle_transition(&tr(down, LinkState::Up), T0 + 114 + 86_400);
        assert_eq!(h.marks().count(), MARKS_MAX - 4);
    }

    #[test]
    fn the_file_round_trips_and_a_bad_or_old_one_is_refused() {
        let mut h = history();
        h.handle_sample(&isp(1), A, rtt(12.5), T0);
        h.handle_sample(&isp(2), A, LOST, T0 + 300);
        let t = crate::clock::mono();
        h.handle_transition(&tr(LinkState::Up, LinkState::Down { since: t }), T0 + 300);
        let json = h.to_json();
        let mut back = history();
        back.load(&json, T0 + 301).unwrap();
        assert_eq!(back.view(), h.view());
        // A later sample in the same step merges with the loaded point as one more sample.
        back.handle_sample(&isp(1), A, rtt(7.5), T0 + 5);
        assert_eq!(series(&back.view(), "ISP1", A).fine[0].1, Some(10.0));

        // Loaded a day later: everything has expired.
        let mut late = history();
        late.load(&json, T0 + 2 * 86_400).unwrap();
        assert!(
            late.view()
                .series
                .iter()
                .all(|s| s.fine.is_empty() && s.coarse.is_empty())
        );
        assert_eq!(late.marks().count(), 0);

        // A monitor that is no longer configured is dropped.
        let i1 = isp(1);
        let only_b = [B];
        let mut fewer = History::new([(&i1, &only_b[..])]);
        fewer.load(&json, T0 + 301).unwrap();
        assert!(fewer.view().series[0].fine.is_empty());

        let mut fresh = history();
        assert!(matches!(
            fresh.load("{\"version\":1,", T0),
            Err(LoadError::Corrupt(_))
        ));
        assert!(matches!(
            fresh.load(&json.replace("\"version\":1", "\"version\":0"), T0),
            Err(LoadError::Version)
        ));
        assert_eq!(fresh, history());
    }
}
