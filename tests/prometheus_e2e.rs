//! Prometheus and Alertmanager for real (issue 14.2). The shipped rules pass `promtool check
//! rules` and their unit tests (`promtool test rules`), which show every alert firing and not
//! firing; the example configurations pass `promtool check config` and `amtool check-config`.
//! Then end to end: two daemons (the real `cmd::run::daemon_services`, so the real status listener and the
//! `/system/identity` read) against two emulated routers with different identities, scraped by
//! Debian's `prometheus` on loopback (the shipped example configuration and rules, with 1 s
//! intervals), alerts routed by `prometheus-alertmanager` (the shipped example with short
//! timings) to a webhook receiver in this test. A failover on one router reaches the webhook as
//! `UplinkdWanDown` with its router and WAN; its second WAN failing too brings
//! `UplinkdAllWansDown`, which inhibits that WAN's own alert; both resolve after recovery; the
//! other router raises nothing.
//!
//! Also: the identity read is retried when the router does not answer it at start, and a read
//! that hangs does not delay shutdown.
//!
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager` (skips without them;
//! `.ci/run` installs them and sets UPLINKD_TEST_STRICT=1, so CI fails instead). Real time: the
//! limits below are failure limits, not measurements (the elapsed times are printed).
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

#[path = "support/grafana.rs"]
mod grafana;
mod reconcile_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reconcile_support::{Daemon, router_named, wan_is};
use serde_json::Value;
use uplinkd_emulator::{Emulator, Fault, FaultKind, RunningEmulator};
use uplinkd_testkit::testenv::require;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const PROMTOOL: &str = "/usr/bin/promtool";
const AMTOOL: &str = "/usr/bin/amtool";

/// Router A fails over; router B's identity has the characters a label value must escape.
const ROUTER_A: &str = "gw-a";
const ROUTER_B: &str = r#"branch "B" \ lab"#;

fn installed(paths: &[&str]) -> Result<(), String> {
    match paths.iter().find(|p| !Path::new(p).is_file()) {
        None => Ok(()),
        Some(p) => Err(format!(
            "{p} not found (apt-get install prometheus prometheus-alertmanager)"
        )),
    }
}

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// Runs a tool to completion and returns its output; panics with it when it fails.
fn tool(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn shipped_rules_pass_promtool_and_their_unit_tests() {
    if !require("promtool", installed(&[PROMTOOL])) {
        return;
    }
    let dir = deploy("prometheus");
    let checked = tool(PROMTOOL, &["check", "rules", "uplinkd-rules.yml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = tool(PROMTOOL, &["test", "rules", "uplinkd-rules.test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let config = tool(PROMTOOL, &["check", "config", "prometheus.yml"], &dir);
    assert!(config.contains("SUCCESS"), "{config}");
}

#[test]
fn example_alertmanager_config_passes_amtool() {
    if !require("amtool", installed(&[AMTOOL])) {
        return;
    }
    let out = tool(
        AMTOOL,
        &["check-config", "alertmanager.yml"],
        &deploy("alertmanager"),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert of the rules file appears in the unit tests both firing and not firing.
#[test]
fn every_alert_is_unit_tested_firing_and_not_firing() {
    let rules = std::fs::read_to_string(deploy("prometheus/uplinkd-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(deploy("prometheus/uplinkd-rules.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 5, "{alerts:?}");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for (i, l) in lines.iter().enumerate() {
        if let Some(name) = l.strip_prefix("alertname: ") {
            let expected = lines.get(i + 1).copied().unwrap_or("");
            if expected == "exp_alerts: []" {
                silent.insert(name);
            } else if expected.starts_with("exp_alerts:") {
                fires.insert(name);
            }
        }
    }
    for a in &alerts {
        assert!(fires.contains(a), "{a} is never tested firing");
        assert!(silent.contains(a), "{a} is never tested not firing");
    }
}

// ------------------------------------------------------------------------------------------------
// End to end.

/// A child process killed (by its own handle) when dropped; its output goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(program: &str, args: &[String], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = uplinkd_testkit::testenv::without_runner_env(&mut Command::new(program))
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        Proc { child, log }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free right now (the daemon binds its own listener from the config).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One router: the emulator and the daemon watching it, with its status listener.
struct Site {
    emu: Emulator,
    _server: RunningEmulator,
    daemon: Daemon,
    status: SocketAddr,
    _state: tempfile::TempDir,
}

impl Site {
    async fn start(identity: &str) -> Site {
        Self::start_with_faults(identity, Vec::new()).await
    }

    /// With REST faults injected before the daemon starts.
    async fn start_with_faults(identity: &str, faults: Vec<Fault>) -> Site {
        let (emu, server) = router_named("demo", identity).await;
        for f in faults {
            emu.inject(f);
        }
        let state = tempfile::tempdir().unwrap();
        let status = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut config = reconcile_support::config(&server);
        config.status.listen = Some(status);
        config.state_dir = state.path().to_path_buf();
        // A short failback hold-down, so the recovery shows within the test.
        config.health.hold_down = Duration::from_secs(2);
        let daemon = Daemon::start_with_services(config).await;
        Site {
            emu,
            _server: server,
            daemon,
            status,
            _state: state,
        }
    }
}

/// What Alertmanager posted to the webhook receiver, in order.
type Inbox = Arc<Mutex<Vec<Value>>>;

async fn webhook_receiver() -> (SocketAddr, Inbox) {
    use axum::extract::State;
    let inbox: Inbox = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/alerts",
            axum::routing::post(
                |State(inbox): State<Inbox>, axum::Json(body): axum::Json<Value>| async move {
                    inbox.lock().unwrap().push(body);
                },
            ),
        )
        .with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, inbox)
}

/// Every alert of every notification: (notification status, alert status, labels).
fn notified(inbox: &Inbox) -> Vec<(String, Value)> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["status"].as_str().unwrap_or("").to_string(),
                a["labels"].clone(),
            )
        })
        .collect()
}

fn is_all_down(labels: &Value, router: &str) -> bool {
    labels["alertname"] == "UplinkdAllWansDown" && labels["router"] == router
}

fn is_wan_down(labels: &Value, router: &str, wan: &str) -> bool {
    labels["alertname"] == "UplinkdWanDown" && labels["router"] == router && labels["wan"] == wan
}

/// Prometheus's HTTP API: the `data` of a GET, or why not.
async fn api(http: &reqwest::Client, base: &str, path: &str) -> Result<Value, String> {
    let resp = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    match v["status"].as_str() {
        Some("success") => Ok(v["data"].clone()),
        _ => Err(v.to_string()),
    }
}

async fn query(http: &reqwest::Client, base: &str, promql: &str) -> Vec<Value> {
    let path = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(promql.as_bytes()).collect::<String>()
    );
    api(http, base, &path)
        .await
        .ok()
        .and_then(|d| d["result"].as_array().cloned())
        .unwrap_or_default()
}

/// Polls `cond` every 250 ms for at most `limit` (a failure limit, not a measurement).
async fn within<T>(limit: Duration, mut cond: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A shipped example with `edits` made (each must find its text: a changed example fails here
/// rather than testing something else).
fn shipped(rel: &str, edits: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(deploy(rel)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{rel} lost `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// The `router` label comes from `/system/identity`; when the router does not answer that read
/// at start, the daemon reads it again later (its metrics are served in the meantime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_is_read_again_when_the_router_does_not_answer_at_start() {
    // More 500s than the client's own three attempts: the first read fails.
    let fault = Fault::next(FaultKind::Status500, 3).path("/rest/system/identity");
    let site = Site::start_with_faults("gw-late", vec![fault]).await;
    let http = uplinkd::notify::webhook::http_client(Duration::from_secs(5)).unwrap();
    let labelled = within(Duration::from_secs(30), async || {
        let text = http
            .get(format!("http://{}/metrics", site.status))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .any(|l| l.starts_with("uplinkd_link_up{") && l.contains(r#"router="gw-late""#))
            .then_some(())
    })
    .await;
    let reads: Vec<u16> = site
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/rest/system/identity")
        .map(|r| r.status)
        .collect();
    site.daemon.stop().await;
    assert!(
        labelled.is_some(),
        "no router label; identity reads {reads:?}"
    );
    assert_eq!(reads, [500, 500, 500, 200]);
}

/// A router that never answers the identity read does not hold up the daemon's exit (tokio's
/// paused clock: the elapsed time is virtual, so the bound is exact, not a measurement).
#[tokio::test(start_paused = true)]
async fn a_hung_identity_read_does_not_delay_shutdown() {
    let hang = Fault::next(FaultKind::Hang(None), 10).path("/rest/system/identity");
    let site = Site::start_with_faults("gw-hung", vec![hang]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopping = tokio::time::Instant::now();
    site.daemon.stop().await;
    // The client would give up on the read only after its 5 s timeout.
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "shutdown waited {:?}",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_reaches_a_webhook_through_prometheus_and_alertmanager_and_resolves() {
    if !require(
        "prometheus and alertmanager",
        installed(&[PROMETHEUS, ALERTMANAGER]),
    ) {
        return;
    }
    let a = Site::start(ROUTER_A).await;
    let b = Site::start(ROUTER_B).await;
    let (webhook, inbox) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();

    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    // The shipped example with loopback timings and our receiver's URL.
    let am_text = shipped(
        "alertmanager/alertmanager.yml",
        &[
            ("group_wait: 30s", "group_wait: 1s".into()),
            ("group_interval: 5m", "group_interval: 1s".into()),
            (
                "http://127.0.0.1:5001/alerts",
                format!("http://{webhook}/alerts"),
            ),
        ],
    );
    std::fs::write(&am_config, am_text).unwrap();
    let am = Proc::spawn(
        ALERTMANAGER,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            // No cluster (it would listen on every address).
            "--cluster.listen-address=".into(),
        ],
        dir.path().join("alertmanager.log"),
    );

    let prom_port = free_port();
    let prom_config = dir.path().join("prometheus.yml");
    // The shipped example with 1 s intervals, the shipped rules, our Alertmanager and daemons.
    let prom_text = shipped(
        "prometheus/prometheus.yml",
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s".into()),
            ("evaluation_interval: 15s", "evaluation_interval: 1s".into()),
            (
                "- uplinkd-rules.yml",
                format!("- {}", deploy("prometheus/uplinkd-rules.yml").display()),
            ),
            ("127.0.0.1:9093", format!("127.0.0.1:{am_port}")),
            ("172.31.254.2:9180", a.status.to_string()),
            ("192.0.2.10:9180", b.status.to_string()),
        ],
    );
    std::fs::write(&prom_config, prom_text).unwrap();
    let prom = Proc::spawn(
        PROMETHEUS,
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        dir.path().join("prometheus.log"),
    );
    let base = format!("http://127.0.0.1:{prom_port}");
    let http = uplinkd::notify::webhook::http_client(Duration::from_secs(5)).unwrap();
    let logs = |what: &str| {
        format!(
            "{what}\n--- prometheus\n{}\n--- alertmanager\n{}\n--- webhook\n{:?}",
            prom.tail(),
            am.tail(),
            inbox.lock().unwrap()
        )
    };

    // Both daemons scraped, each series labelled with its router's identity as read over REST.
    let routers = within(Duration::from_secs(90), async || {
        let up = query(&http, &base, r#"uplinkd_link_state{state="up"} == 1"#).await;
        let routers: BTreeSet<String> = up
            .iter()
            .filter_map(|s| s["metric"]["router"].as_str().map(str::to_string))
            .collect();
        (up.len() == 4 && routers.len() == 2).then_some(routers)
    })
    .await
    .unwrap_or_else(|| panic!("{}", logs("both routers' WANs never showed up")));
    assert_eq!(
        routers,
        BTreeSet::from([ROUTER_A.to_string(), ROUTER_B.to_string()])
    );
    assert!(
        notified(&inbox).is_empty(),
        "{}",
        logs("alerts before any fault")
    );

    // ISP1 of router A dies: the daemon fails over, the alert reaches the webhook.
    let failed_at = Instant::now();
    a.daemon.fail(1);
    let fired = within(Duration::from_secs(120), async || {
        notified(&inbox)
            .into_iter()
            .find(|(status, l)| status == "firing" && is_wan_down(l, ROUTER_A, "ISP1"))
    })
    .await
    .unwrap_or_else(|| panic!("{}", logs("no firing UplinkdWanDown at the webhook")));
    let to_webhook = failed_at.elapsed();
    assert!(wan_is(&a.emu, "ISP1", false), "router A still routes ISP1");
    let labels = &fired.1;
    assert_eq!(labels["severity"], "warning", "{labels}");
    assert_eq!(labels["job"], "uplinkd", "{labels}");
    assert_eq!(labels["instance"], a.status.to_string(), "{labels}");

    // ISP2 dies too: every WAN of router A is down. UplinkdAllWansDown reaches the webhook, and
    // the shipped example's inhibition keeps ISP2's own UplinkdWanDown (firing in Prometheus)
    // from being notified.
    let both_at = Instant::now();
    a.daemon.fail(2);
    let all = within(Duration::from_secs(120), async || {
        notified(&inbox)
            .into_iter()
            .find(|(status, l)| status == "firing" && is_all_down(l, ROUTER_A))
    })
    .await
    .unwrap_or_else(|| panic!("{}", logs("no firing UplinkdAllWansDown at the webhook")));
    let to_all_down = both_at.elapsed();
    assert_eq!(all.1["severity"], "critical", "{}", all.1);
    let isp2_alert =
        r#"ALERTS{alertname="UplinkdWanDown", router="gw-a", wan="ISP2", alertstate="firing"}"#;
    within(Duration::from_secs(30), async || {
        (!query(&http, &base, isp2_alert).await.is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "{}",
            logs("ISP2's UplinkdWanDown never fired in Prometheus")
        )
    });

    // ISP2 answers again: all-down resolves, and ISP2's own alert with it (never notified).
    a.daemon.repair(2);
    within(Duration::from_secs(120), async || {
        notified(&inbox)
            .into_iter()
            .find(|(status, l)| status == "resolved" && is_all_down(l, ROUTER_A))
    })
    .await
    .unwrap_or_else(|| panic!("{}", logs("no resolved UplinkdAllWansDown at the webhook")));

    // ISP1 answers again: after the hold-down it carries again and the alert resolves.
    let repaired_at = Instant::now();
    a.daemon.repair(1);
    within(Duration::from_secs(120), async || {
        notified(&inbox)
            .into_iter()
            .find(|(status, l)| status == "resolved" && is_wan_down(l, ROUTER_A, "ISP1"))
    })
    .await
    .unwrap_or_else(|| panic!("{}", logs("no resolved UplinkdWanDown at the webhook")));
    let resolved = repaired_at.elapsed();
    assert!(wan_is(&a.emu, "ISP1", true), "router A did not fail back");

    // Nothing else was notified (ISP2's WAN-down stayed inhibited), and router B has no alert
    // even pending.
    for (status, l) in notified(&inbox) {
        assert!(
            is_wan_down(&l, ROUTER_A, "ISP1") || is_all_down(&l, ROUTER_A),
            "{}",
            logs(&format!("unexpected {status} notification {l}"))
        );
    }
    let pending = api(&http, &base, "/api/v1/alerts").await.unwrap();
    for alert in pending["alerts"].as_array().unwrap() {
        assert_ne!(alert["labels"]["router"], ROUTER_B, "{alert}");
    }
    assert!(wan_is(&b.emu, "ISP1", true) && wan_is(&b.emu, "ISP2", true));

    // Every query of the Grafana dashboard runs in this Prometheus and finds data ("All"
    // routers and WANs, a 5-minute range; the failover is less than 2 minutes old, so the
    // failover annotation's query finds it too).
    for q in grafana::queries(&grafana::dashboard()) {
        let promql = grafana::instantiate(&q.expr, "5m");
        let path = format!(
            "/api/v1/query?query={}",
            url::form_urlencoded::byte_serialize(promql.as_bytes()).collect::<String>()
        );
        let data = api(&http, &base, &path)
            .await
            .unwrap_or_else(|e| panic!("{}: {promql}: {e}", q.place));
        let result = data["result"].as_array().cloned().unwrap_or_default();
        assert!(!result.is_empty(), "{}: no data for {promql}", q.place);
        if let Some((_, label)) = &q.label_values {
            assert!(
                result.iter().all(|s| s["metric"][label].is_string()),
                "{}: {label} missing in {result:?}",
                q.place
            );
        }
    }

    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "prometheus_e2e: failure -> firing webhook {:.1}s (rule `for: 30s`, scrape/eval 1s, \
         group_wait 1s); second WAN down -> all-down webhook {:.1}s; repair -> resolved webhook \
         {:.1}s (hold-down 2s)",
        to_webhook.as_secs_f64(),
        to_all_down.as_secs_f64(),
        resolved.as_secs_f64()
    );
    a.daemon.stop().await;
    b.daemon.stop().await;
    drop(prom);
    drop(am);
}
