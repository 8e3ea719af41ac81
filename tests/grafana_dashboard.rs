//! The Grafana dashboard (`deploy/grafana/uplinkd.json`, issue 14.3): the structure Grafana's
//! import reads (schemaVersion, uid, panels with a grid position, a datasource and targets,
//! templating with the datasource and router variables), and every metric name its queries use
//! is one a real daemon serves on `/metrics` (a daemon on the emulated router, scraped after its
//! first reconcile pass). That the queries run and return data in a real Prometheus is shown by
//! tests/prometheus_e2e.rs.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

#[path = "support/grafana.rs"]
mod grafana;
mod reconcile_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use grafana::{BUILTINS, dashboard, metric_names, panels, queries, variables};
use reconcile_support::{Daemon, router_named};

#[test]
fn dashboard_has_the_structure_grafana_imports() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    // 36 = Grafana 9.0 (datasource references by uid), 41 = Grafana 12.
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(!d["title"].as_str().unwrap_or("").is_empty(), "title");
    let uid = d["uid"].as_str().expect("uid");
    assert!(
        !uid.is_empty()
            && uid.len() <= 40
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "uid {uid:?}"
    );
    assert!(d["time"]["from"].is_string() && d["time"]["to"].is_string());

    // Variables: a Prometheus datasource picker and the router (and WAN) selectors.
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(
        names.len(),
        names.iter().collect::<BTreeSet<_>>().len(),
        "{names:?}"
    );
    let var = |n: &str| {
        vars.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("no ${n}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for n in ["router", "wan"] {
        let v = var(n);
        assert_eq!(v["type"], "query", "{v}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{v}");
        assert_eq!(v["multi"], true, "{v}");
        assert_eq!(v["includeAll"], true, "{v}");
    }
    for v in vars {
        assert!(
            matches!(
                v["type"].as_str(),
                Some("query" | "datasource" | "custom" | "interval" | "constant" | "textbox")
            ),
            "{v}"
        );
    }

    // Panels: unique ids, inside the 24-column grid without overlapping, each non-row panel
    // reading the chosen Prometheus with at least one query.
    let all = panels(&d);
    assert!(all.len() >= 8, "{} panels", all.len());
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    let mut types = BTreeSet::new();
    for p in &all {
        let title = p["title"].as_str().unwrap_or("").to_string();
        assert!(!title.is_empty(), "untitled panel {p}");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id in {title}"
        );
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(w >= 1 && h >= 1 && x + w <= 24, "{title}: {g}");
        for (bx, by, bw, bh, other) in &boxes {
            let apart = x + w <= *bx || *bx + bw <= x || y + h <= *by || *by + bh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title.clone()));
        let kind = p["type"].as_str().expect("type");
        types.insert(kind.to_string());
        if kind == "row" {
            continue;
        }
        assert!(
            matches!(
                kind,
                "timeseries" | "state-timeline" | "stat" | "bargauge" | "gauge" | "table"
            ),
            "{title}: panel type {kind}"
        );
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        let refs: BTreeSet<&str> = targets.iter().filter_map(|t| t["refId"].as_str()).collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds");
        for t in targets {
            assert!(!t["expr"].as_str().unwrap_or("").is_empty(), "{title}: {t}");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}: {t}");
        }
    }
    // What the issue asks for: a per-WAN state timeline, graphs, headline numbers.
    for kind in ["state-timeline", "timeseries", "stat"] {
        assert!(types.contains(kind), "no {kind} panel: {types:?}");
    }

    // Every variable a query uses is defined (or one of Grafana's own).
    for q in queries(&d) {
        for v in variables(&q.expr) {
            assert!(
                names.contains(&v.as_str()) || BUILTINS.contains(&v.as_str()),
                "{}: ${v} is not defined",
                q.place
            );
        }
    }
}

/// The sample names of a `/metrics` scrape.
async fn scraped_names(status: SocketAddr) -> Option<BTreeSet<String>> {
    let http = uplinkd::notify::webhook::http_client(Duration::from_secs(5)).unwrap();
    let text = http
        .get(format!("http://{status}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).ok()?;
    Some(scrape.samples.into_iter().map(|s| s.metric).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_one_the_daemon_exports() {
    let (_emu, server) = router_named("demo", "gw-dash").await;
    let state = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let status = listener.local_addr().unwrap();
    drop(listener);
    let mut config = reconcile_support::config(&server);
    config.status.listen = Some(status);
    config.state_dir = state.path().to_path_buf();
    let daemon = Daemon::start_with_services(config).await;

    // Some series exist only once there is something to say: RTTs after replies, the reconcile
    // series after the first pass. Wait for those (a failure limit, not a measurement).
    // Jitter needs two replies per target, so it appears a round after the first RTT.
    let ready = [
        "uplinkd_probe_rtt_seconds",
        "uplinkd_probe_jitter_seconds",
        "uplinkd_reconcile_last_success_timestamp_seconds",
    ];
    let start = Instant::now();
    let exported = loop {
        if let Some(names) = scraped_names(status).await
            && ready.iter().all(|n| names.contains(*n))
        {
            break names;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon's /metrics never had {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    daemon.stop().await;

    let d = dashboard();
    let mut used = BTreeSet::new();
    for q in queries(&d) {
        let names = metric_names(&q.expr);
        assert!(
            !names.is_empty(),
            "{}: selects no metric: {}",
            q.place,
            q.expr
        );
        for n in names {
            assert!(
                exported.contains(&n),
                "{}: {n} is not served by the daemon (it serves {exported:?})",
                q.place
            );
            used.insert(n);
        }
    }
    // The dashboard covers states, monitors, failovers and the REST API.
    for n in [
        "uplinkd_link_state",
        "uplinkd_probe_rtt_seconds",
        "uplinkd_probe_loss_ratio",
        "uplinkd_failovers_total",
        "uplinkd_rest_requests_total",
    ] {
        assert!(used.contains(n), "the dashboard does not show {n}");
    }
}
