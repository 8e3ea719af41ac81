//! Prometheus/OpenMetrics text of a [`Snapshot`], with names a Grafana user can guess
//! (`uplinkd_link_up{wan="ISP1"}`, `uplinkd_probe_rtt_seconds{wan,target}`, ...). Every series
//! also carries `router` (the router's `/system/identity`, once read), so one Prometheus can
//! watch many routers and an alert says which one. Pure: a fresh registry per rendering, filled
//! from the snapshot; no global state, no clock.

use std::borrow::Cow;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{ReconcileOutcome, Snapshot};
use crate::health::StateKind;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

// Metric value widths. armv5te (the EN7562CT routers: hEX refresh, hEX S 2025) has no 64-bit
// atomics, and prometheus-client then offers only 32-bit values; one code path serves both, with
// the narrowing in the three converters below (saturating; f32 keeps ~7 significant digits).
#[cfg(target_has_atomic = "64")]
#[expect(
    clippy::disallowed_types,
    reason = "the 64-bit side of the split this module exists for"
)]
mod width {
    use std::sync::atomic::{AtomicI64, AtomicU64};
    pub(super) type Int = prometheus_client::metrics::gauge::Gauge<i64, AtomicI64>;
    pub(super) type Float = prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>;
    pub(super) type Count = prometheus_client::metrics::counter::Counter<u64, AtomicU64>;
    pub(super) fn int(v: i64) -> i64 {
        v
    }
    pub(super) fn float(v: f64) -> f64 {
        v
    }
    pub(super) fn count(v: u64) -> u64 {
        v
    }
}
#[cfg(not(target_has_atomic = "64"))]
mod width {
    use std::sync::atomic::{AtomicI32, AtomicU32};
    pub(super) type Int = prometheus_client::metrics::gauge::Gauge<i32, AtomicI32>;
    pub(super) type Float = prometheus_client::metrics::gauge::Gauge<f32, AtomicU32>;
    pub(super) type Count = prometheus_client::metrics::counter::Counter<u32, AtomicU32>;
    pub(super) fn int(v: i64) -> i32 {
        i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
    }
    pub(super) fn float(v: f64) -> f32 {
        v as f32
    }
    pub(super) fn count(v: u64) -> u32 {
        u32::try_from(v).unwrap_or(u32::MAX)
    }
}
use width::{Count, Float as GaugeF, Int as IntGauge, count, float, int};

/// Renders the snapshot as OpenMetrics text (which Prometheus scrapes as is).
pub fn render(s: &Snapshot) -> String {
    // Until the identity is read there is no `router` label rather than an empty one.
    let constant = (!s.router.is_empty())
        .then(|| (Cow::Borrowed("router"), Cow::Owned(escape_label(&s.router))));
    let mut r = Registry::with_labels(constant.into_iter());

    let info = Family::<Labels, IntGauge>::default();
    info.get_or_create(&vec![("version", s.version.clone())])
        .set(int(1));
    r.register(
        "uplinkd_build_info",
        "uplinkd's version (value is always 1)",
        info,
    );

    let up = Family::<Labels, IntGauge>::default();
    let state = Family::<Labels, IntGauge>::default();
    let since = Family::<Labels, IntGauge>::default();
    let failovers = Family::<Labels, Count>::default();
    let rtt = Family::<Labels, GaugeF>::default();
    let loss = Family::<Labels, GaugeF>::default();
    let jitter = Family::<Labels, GaugeF>::default();
    let no_evidence = Family::<Labels, Count>::default();
    let link_rtt = Family::<Labels, GaugeF>::default();
    let link_loss = Family::<Labels, GaugeF>::default();
    let carrying = Family::<Labels, IntGauge>::default();
    let tier = Family::<Labels, IntGauge>::default();
    for l in &s.links {
        let wan = || vec![("wan", l.wan.clone())];
        up.get_or_create(&wan())
            .set(int(i64::from(l.state.is_up())));
        for st in StateKind::ALL {
            let mut labels = wan();
            labels.push(("state", st.as_str().to_string()));
            state
                .get_or_create(&labels)
                .set(int(i64::from(st == l.state)));
        }
        if let Some(t) = l.since_unix {
            since
                .get_or_create(&wan())
                .set(int(i64::try_from(t).unwrap_or(i64::MAX)));
        }
        failovers
            .get_or_create(&wan())
            .inc_by(count(l.failovers_total));
        if let Some(t) = l.traffic {
            carrying
                .get_or_create(&wan())
                .set(int(i64::from(t == super::Traffic::Carrying)));
        }
        tier.get_or_create(&wan()).set(int(i64::from(l.tier)));
        if let Some(v) = l.rtt_seconds {
            link_rtt.get_or_create(&wan()).set(float(v));
        }
        if let Some(v) = l.loss_ratio {
            link_loss.get_or_create(&wan()).set(float(v));
        }
        for t in &l.targets {
            let labels = vec![("wan", l.wan.clone()), ("target", t.address.to_string())];
            if let Some(v) = t.rtt_seconds {
                rtt.get_or_create(&labels).set(float(v));
            }
            if let Some(v) = t.loss_ratio {
                loss.get_or_create(&labels).set(float(v));
            }
            if let Some(v) = t.jitter_seconds {
                jitter.get_or_create(&labels).set(float(v));
            }
            no_evidence
                .get_or_create(&labels)
                .inc_by(count(t.no_evidence));
        }
    }
    r.register(
        "uplinkd_link_up",
        "1 when the WAN is up (or degraded), 0 otherwise",
        up,
    );
    r.register("uplinkd_link_state", "1 for the WAN's current state", state);
    r.register(
        "uplinkd_link_carrying",
        "1 when the router sends new connections through the WAN (0: standby or a waiting backup)",
        carrying,
    );
    r.register(
        "uplinkd_link_tier",
        "The WAN's backup tier (1: the WANs that normally carry)",
        tier,
    );
    r.register(
        "uplinkd_link_state_since_timestamp_seconds",
        "When the WAN entered its state",
        since,
    );
    // prometheus-client appends `_total` to counters.
    r.register(
        "uplinkd_failovers",
        "Transitions of the WAN into down",
        failovers,
    );
    r.register(
        "uplinkd_link_rtt_seconds",
        "Round-trip time of the WAN (over its targets)",
        link_rtt,
    );
    r.register(
        "uplinkd_link_loss_ratio",
        "Probe loss of the WAN (over its targets), 0..1",
        link_loss,
    );
    r.register(
        "uplinkd_probe_rtt_seconds",
        "Round-trip time per target through the WAN",
        rtt,
    );
    r.register(
        "uplinkd_probe_loss_ratio",
        "Probe loss per target through the WAN, 0..1",
        loss,
    );
    r.register(
        "uplinkd_probe_jitter_seconds",
        "RTT jitter per target through the WAN",
        jitter,
    );
    // prometheus-client appends `_total`.
    r.register(
        "uplinkd_probe_no_evidence",
        "Probes per target that told nothing about the WAN (remote mode's REST faults), not loss",
        no_evidence,
    );

    let rest = Family::<Labels, Count>::default();
    for (status, n) in &s.rest.requests_total {
        rest.get_or_create(&vec![("status", status.clone())])
            .inc_by(count(*n));
    }
    r.register(
        "uplinkd_rest_requests",
        "REST requests to the router by HTTP status",
        rest,
    );

    if let Some(rc) = &s.reconcile {
        let runs: Count = Count::default();
        runs.inc_by(count(rc.runs_total));
        r.register("uplinkd_reconcile_runs", "Reconcile passes", runs);
        let errors: Count = Count::default();
        errors.inc_by(count(rc.errors_total));
        r.register(
            "uplinkd_reconcile_errors",
            "Reconcile passes that failed",
            errors,
        );
        let ok: IntGauge = IntGauge::default();
        ok.set(int(i64::from(rc.outcome == ReconcileOutcome::Ok)));
        r.register(
            "uplinkd_reconcile_last_ok",
            "1 when the last reconcile pass succeeded",
            ok,
        );
        let changes: IntGauge = IntGauge::default();
        changes.set(int(i64::try_from(rc.changes).unwrap_or(i64::MAX)));
        r.register(
            "uplinkd_reconcile_last_changes",
            "REST writes made by the last pass",
            changes,
        );
        if let Some(t) = rc.last_success_unix {
            let g: IntGauge = IntGauge::default();
            g.set(int(i64::try_from(t).unwrap_or(i64::MAX)));
            r.register(
                "uplinkd_reconcile_last_success_timestamp_seconds",
                "When a pass last succeeded",
                g,
            );
        }
    }

    let pending: IntGauge = IntGauge::default();
    pending.set(int(
        i64::try_from(s.alerts.pending.len()).unwrap_or(i64::MAX)
    ));
    r.register(
        "uplinkd_alerts_pending",
        "Alerts not yet delivered to every channel",
        pending,
    );
    let sent: Count = Count::default();
    sent.inc_by(count(s.alerts.sent_total));
    r.register(
        "uplinkd_alerts_sent",
        "Alerts delivered to every channel",
        sent,
    );
    let failed: Count = Count::default();
    failed.inc_by(count(s.alerts.failed_attempts_total));
    r.register(
        "uplinkd_alert_send_failures",
        "Failed delivery attempts (retried)",
        failed,
    );
    let dropped: Count = Count::default();
    dropped.inc_by(count(s.alerts.dropped_total));
    r.register(
        "uplinkd_alerts_dropped",
        "Alerts dropped because the queue was full",
        dropped,
    );

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

/// A label value as the exposition format quotes it: prometheus-client writes values as they
/// are, and a router's identity is free text (`"`, `\\` and line breaks would end the value).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    fn scrape(text: &str) -> prometheus_parse::Scrape {
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        s.samples
            .iter()
            .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    #[test]
    fn metrics_parse_back_with_the_snapshot_values() {
        let text = render(&sample::snapshot());
        let s = scrape(&text);
        let v = |n: &str, l: &[(&str, &str)]| {
            value(&s, n, l).unwrap_or_else(|| panic!("{n} {l:?} in\n{text}"))
        };
        assert_eq!(v("uplinkd_link_up", &[("wan", "ISP1")]), 1.0);
        assert_eq!(v("uplinkd_link_up", &[("wan", "ISP2")]), 0.0);
        assert_eq!(
            v("uplinkd_link_state", &[("wan", "ISP2"), ("state", "down")]),
            1.0
        );
        assert_eq!(
            v("uplinkd_link_state", &[("wan", "ISP2"), ("state", "up")]),
            0.0
        );
        assert_eq!(v("uplinkd_failovers_total", &[("wan", "ISP2")]), 3.0);
        assert_eq!(
            v(
                "uplinkd_probe_rtt_seconds",
                &[("wan", "ISP1"), ("target", "198.18.0.2")]
            ),
            0.0126
        );
        assert_eq!(
            v(
                "uplinkd_probe_loss_ratio",
                &[("wan", "ISP1"), ("target", "198.18.0.2")]
            ),
            0.05
        );
        assert_eq!(
            v(
                "uplinkd_probe_loss_ratio",
                &[("wan", "ISP2"), ("target", "198.18.1.1")]
            ),
            1.0
        );
        assert_eq!(
            value(&s, "uplinkd_probe_rtt_seconds", &[("wan", "ISP2")]),
            None,
            "no RTT without replies"
        );
        assert_eq!(
            v(
                "uplinkd_probe_jitter_seconds",
                &[("wan", "ISP1"), ("target", "198.18.0.1")]
            ),
            0.0007
        );
        assert_eq!(
            v("uplinkd_rest_requests_total", &[("status", "200")]),
            120.0
        );
        assert_eq!(v("uplinkd_rest_requests_total", &[("status", "400")]), 1.0);
        assert_eq!(v("uplinkd_reconcile_runs_total", &[]), 17.0);
        assert_eq!(v("uplinkd_reconcile_errors_total", &[]), 2.0);
        assert_eq!(v("uplinkd_alerts_pending", &[]), 1.0);
        assert_eq!(v("uplinkd_alerts_sent_total", &[]), 5.0);
        assert_eq!(v("uplinkd_build_info", &[("version", "0.1.0")]), 1.0);
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_series_names_the_router() {
        let text = render(&sample::snapshot());
        let s = scrape(&text);
        assert!(s.samples.len() > 20, "{text}");
        for x in &s.samples {
            assert_eq!(x.labels.get("router"), Some("gw-office"), "{}", x.metric);
        }
        // The per-WAN and per-target labels stay as they were.
        assert_eq!(
            value(
                &s,
                "uplinkd_probe_rtt_seconds",
                &[
                    ("router", "gw-office"),
                    ("wan", "ISP1"),
                    ("target", "198.18.0.1")
                ]
            ),
            Some(0.012)
        );
    }

    #[test]
    fn no_router_label_before_the_identity_is_read() {
        let mut snap = sample::snapshot();
        snap.router.clear();
        let text = render(&snap);
        assert!(!text.contains("router="), "{text}");
        assert_eq!(
            value(&scrape(&text), "uplinkd_link_up", &[("wan", "ISP1")]),
            Some(1.0)
        );
    }

    #[test]
    fn an_identity_with_quotes_stays_one_label_value() {
        let mut snap = sample::snapshot();
        snap.router = "lab \\ \"west\"\nrack".into();
        let text = render(&snap);
        let line = text
            .lines()
            .find(|l| l.starts_with("uplinkd_link_up{"))
            .unwrap();
        assert!(line.contains(r#"router="lab \\ \"west\"\nrack""#), "{line}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("uplinkd_link_up{"))
                .count(),
            2
        );
    }

    #[test]
    fn counters_are_typed_as_counters() {
        let text = render(&sample::snapshot());
        assert!(text.contains("# TYPE uplinkd_failovers counter"), "{text}");
        assert!(text.contains("# TYPE uplinkd_link_up gauge"), "{text}");
    }
}
