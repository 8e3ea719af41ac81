//! The status page in a real browser: the daemon runs against the emulated router with its
//! status listener on loopback, ISP1 is failed, and headless Chromium (Debian's `chromium`) loads
//! `/`, runs the page's script and dumps the DOM it drew: ISP1 down with its reason, a failover
//! mark on ISP1's graphs, the event in the table. A screenshot is written for CI to keep. Then the
//! daemon restarts on the same state dir and `/history` still holds the failover.
//!
//! Real time (Chromium cannot follow a paused clock); skipped without Chromium unless
//! `UPLINKD_TEST_STRICT=1`.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

mod reconcile_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reconcile_support::{Daemon, config, router};

/// Debian's package installs `chromium`; the headless shell is the smaller alternative.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-headless-shell", "chromium-browser"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    let available = found
        .clone()
        .map(|_| ())
        .ok_or_else(|| "no chromium on PATH (apt-get install chromium)".to_string());
    uplinkd_testkit::testenv::require("headless Chromium", available).then(|| found.unwrap())
}

/// Says where a screenshot is, on the process's stderr (the harness captures `println!` of a
/// passing test, and CI keeps these files as artifacts).
macro_rules! artifact {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn get(url: &str, accept: &str) -> Option<(String, String)> {
    let http = uplinkd::notify::webhook::http_client(Duration::from_secs(5)).unwrap();
    let r = http.get(url).header("accept", accept).send().await.ok()?;
    let ct = r.headers().get("content-type")?.to_str().ok()?.to_string();
    Some((ct, r.text().await.ok()?))
}

async fn json(url: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&get(url, "application/json").await?.1).ok()
}

/// Polls `url` until `cond` holds on its JSON (a failure limit, not a measurement).
async fn wait_json(
    url: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(v) = json(url).await
            && cond(&v)
        {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{url}: never {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn link<'a>(status: &'a serde_json::Value, wan: &str) -> &'a serde_json::Value {
    status["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wan"] == wan)
        .unwrap()
}

/// Runs Chromium headless on `url` with `args`, after the page's script has had its fetches.
fn browse(bin: &Path, profile: &Path, url: &str, args: &[String]) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The HTML of the WAN card `wan` in a dumped DOM.
fn card<'a>(dom: &'a str, wan: &str) -> &'a str {
    let at = dom
        .find(&format!("data-wan=\"{wan}\" data-state="))
        .unwrap_or_else(|| panic!("no card for {wan} in the page:\n{dom}"));
    let start = dom[..at].rfind("<section").unwrap();
    let end = at + dom[at..].find("</section>").unwrap();
    &dom[start..end]
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_failover_with_its_reason_and_a_mark_on_the_graph() {
    let Some(bin) = chromium() else { return };
    let (_emu, server) = router("demo").await;
    let state = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut cfg = config(&server);
    cfg.status.listen = Some(addr);
    cfg.state_dir = state.path().to_path_buf();
    // A traffic rule (VoIP on ISP1, else ISP2): the page says which WANs it may use.
    cfg.traffic = uplinkd::traffic::Traffic {
        policies: vec![uplinkd::traffic::Policy {
            name: "voip".into(),
            kind: uplinkd::traffic::PolicyKind::Failover,
            members: ["ISP1", "ISP2"]
                .map(|w| uplinkd::traffic::Member {
                    wan: uplinkd::types::LinkId::new(w),
                    weight: 1,
                })
                .into(),
            last_resort: uplinkd::traffic::LastResort::Any,
        }],
        rules: vec![uplinkd::traffic::Rule {
            name: "voip".into(),
            matcher: Default::default(),
            policy: "voip".into(),
            sticky: Default::default(),
        }],
        ..Default::default()
    };
    let base = format!("http://{addr}");
    let daemon = Daemon::start_with_services(cfg.clone()).await;

    // `/` is the page for a browser and stays the JSON for a script.
    let up = |v: &serde_json::Value| {
        v["links"]
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|l| l["state"] == "up"))
    };
    wait_json(&format!("{base}/"), "all up", up).await;
    let (ct, html) = get(&format!("{base}/"), "text/html,*/*;q=0.8")
        .await
        .unwrap();
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.contains("<script src=\"page.js\">"), "{html}");
    let (ct, js) = get(&format!("{base}/page.js"), "*/*").await.unwrap();
    assert!(
        ct.starts_with("text/javascript") && js.contains("history"),
        "{ct}"
    );

    daemon.fail(1);
    let status = wait_json(&format!("{base}/status"), "ISP1 down", |v| {
        link(v, "ISP1")["state"] == "down"
    })
    .await;
    let reason = link(&status, "ISP1")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!reason.is_empty());
    // The history has points for ISP2's monitors and the failover as a mark.
    let history = wait_json(
        &format!("{base}/history"),
        "a point for every ISP2 monitor",
        |h| {
            h["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["wan"] == "ISP2")
                .all(|s| {
                    s["fine"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p[1].is_number())
                })
        },
    )
    .await;
    let marks = history["marks"].as_array().unwrap();
    assert!(
        marks.iter().any(|m| m["wan"] == "ISP1"
            && m["kind"] == "failover"
            && m["reason"] == reason.as_str()),
        "{marks:?}"
    );

    let dom = browse(
        &bin,
        profile.path(),
        &format!("{base}/"),
        &["--dump-dom".to_string()],
    );
    let isp1 = card(&dom, "ISP1");
    assert!(isp1.contains("data-state=\"down\""), "{isp1}");
    assert!(isp1.contains("<span class=\"state\">down</span>"), "{isp1}");
    // What the router is told: ISP1's routes and PCC rules off, ISP2 carrying.
    assert!(isp1.contains("data-traffic=\"standby\""), "{isp1}");
    assert!(
        isp1.contains(&escaped(&reason)),
        "reason {reason:?} not shown: {isp1}"
    );
    // A failover mark on each of ISP1's three graphs (RTT, loss, jitter).
    assert_eq!(
        isp1.matches("data-mark=\"failover\" data-wan=\"ISP1\"")
            .count(),
        3,
        "{isp1}"
    );
    let isp2 = card(&dom, "ISP2");
    assert!(isp2.contains("data-state=\"up\""), "{isp2}");
    assert!(isp2.contains("data-traffic=\"carrying\""), "{isp2}");
    assert!(
        isp2.contains("<polyline"),
        "ISP2's graphs have no line: {isp2}"
    );
    assert!(!isp2.contains("data-mark=\"failover\""), "{isp2}");
    assert!(
        dom.contains("<tr data-kind=\"failover\" data-wan=\"ISP1\">"),
        "the event table has no ISP1 failover:\n{dom}"
    );
    assert!(dom.contains("last reconcile"), "{dom}");
    assert!(
        dom.contains("<li data-rule=\"voip\" data-wans=\"ISP2\">rule voip: ISP2</li>"),
        "the rule's WANs after ISP1 failed:\n{dom}"
    );

    // The picture CI keeps (and the README's, copied from a run).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &bin,
        profile.path(),
        &format!("{base}/"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1000,1500".to_string(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    artifact!("status page screenshot: {}", shot.display());

    // Stopped, the history is in the state dir; a restarted daemon serves it again.
    daemon.stop().await;
    assert!(state.path().join("history.json").is_file());
    let daemon = Daemon::start_with_services(cfg).await;
    let kept = wait_json(
        &format!("{base}/history"),
        "served after the restart",
        |h| h["marks"].is_array(),
    )
    .await;
    assert!(
        kept["marks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["wan"] == "ISP1"
                && m["kind"] == "failover"
                && m["reason"] == reason.as_str()),
        "{kept}"
    );
    daemon.stop().await;
}

/// An hour as a daemon would have kept it: ISP1 failed for three minutes 40 minutes ago, ISP2
/// browned out 15 minutes ago. Built with the daemon's own history code.
fn kept_hour(cfg: &uplinkd::config::Config, now: u64) -> (String, u64, u64) {
    use std::time::Duration;
    use uplinkd::health::{Check, LinkState, LossLevels, Reason, Transition};
    use uplinkd::status::history::{History, Sample};
    let mut h = History::new(cfg.wans.iter().map(|w| (&w.id, &w.monitors[..])));
    let start = now - now % 10 - 3600;
    let (failover, brownout) = (start + 20 * 60, start + 45 * 60);
    for k in 0..360u64 {
        let t = start + 10 * k;
        let wave = (k as f64 / 17.0).sin();
        for (w, wan) in cfg.wans.iter().enumerate() {
            for (i, target) in wan.monitors.iter().enumerate() {
                let base = if w == 0 { 14.0 } else { 31.0 } + 2.5 * i as f64;
                let s = if w == 0 && (failover..failover + 180).contains(&t) {
                    Sample {
                        rtt_ms: None,
                        loss: Some(1.0),
                        jitter_ms: None,
                    }
                } else if w == 1 && (brownout..brownout + 300).contains(&t) {
                    Sample {
                        rtt_ms: Some(base + 60.0 + 9.0 * wave),
                        loss: Some(0.2),
                        jitter_ms: Some(14.0),
                    }
                } else {
                    Sample {
                        rtt_ms: Some(base + 3.0 * wave),
                        loss: Some(0.0),
                        jitter_ms: Some(1.0 + wave.abs()),
                    }
                };
                h.handle_sample(&wan.id, *target, s, t);
            }
        }
    }
    let at = std::time::Instant::now();
    let mut mark = |wan: usize, from: LinkState, to: LinkState, reason: Reason, t: u64| {
        let tr = Transition {
            link: cfg.wans[wan].id.clone(),
            at,
            from,
            to,
            reason,
        };
        h.handle_transition(&tr, t);
    };
    let (down, rec, deg) = (
        LinkState::Down { since: at },
        LinkState::Recovering { since: at },
        LinkState::Degraded { since: at },
    );
    let loss = |percent| Check::Loss {
        percent,
        levels: LossLevels {
            fail: 10.0,
            recover: 5.0,
        },
    };
    mark(
        0,
        LinkState::Up,
        down,
        uplinkd_testkit::reasons::lost(),
        failover,
    );
    let answering = Reason::Answering {
        rounds: 5,
        down_for: Duration::from_secs(180),
        hold_down: Duration::from_secs(30),
    };
    mark(0, down, rec, answering, failover + 180);
    let held = Reason::HoldDownPassed {
        hold_down: Duration::from_secs(30),
        rounds: 150,
        srtt: Vec::new(),
    };
    mark(0, rec, LinkState::Up, held, failover + 210);
    let over = Reason::BrownOut {
        over: vec![loss(20.0)],
    };
    mark(1, LinkState::Up, deg, over, brownout);
    let within = Reason::BrownOutOver {
        within: vec![loss(2.0)],
    };
    mark(1, deg, LinkState::Up, within, brownout + 300);
    (h.to_json(), failover, brownout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_hour_is_drawn_after_a_restart() {
    let Some(bin) = chromium() else { return };
    let (_emu, server) = router("demo").await;
    let state = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut cfg = config(&server);
    cfg.status.listen = Some(addr);
    cfg.state_dir = state.path().to_path_buf();
    let now = uplinkd::status::unix(std::time::SystemTime::now());
    let (kept, failover, brownout) = kept_hour(&cfg, now);
    std::fs::write(state.path().join("history.json"), kept).unwrap();
    let base = format!("http://{addr}");
    let daemon = Daemon::start_with_services(cfg).await;
    daemon.fail(1);
    wait_json(&format!("{base}/status"), "ISP1 down", |v| {
        link(v, "ISP1")["state"] == "down"
    })
    .await;

    let dom = browse(
        &bin,
        profile.path(),
        &format!("{base}/"),
        &["--dump-dom".to_string()],
    );
    let isp1 = card(&dom, "ISP1");
    // The kept failover and the one just now, on each of three graphs.
    let kept_mark = format!("data-mark=\"failover\" data-wan=\"ISP1\" data-t=\"{failover}\"");
    assert_eq!(isp1.matches(&kept_mark).count(), 3, "{isp1}");
    assert_eq!(isp1.matches("data-mark=\"failover\"").count(), 6, "{isp1}");
    assert!(
        isp1.contains("class=\"span-down\""),
        "the outage is not shaded: {isp1}"
    );
    let isp2 = card(&dom, "ISP2");
    let brown = format!("data-mark=\"brownout\" data-wan=\"ISP2\" data-t=\"{brownout}\"");
    assert_eq!(isp2.matches(&brown).count(), 3, "{isp2}");
    // ISP1's lines break for the outage: two runs per monitor on the RTT graph, over the kept
    // hour. (The restarted daemon may sample ISP1 once before its failure is scripted: on a
    // loaded machine a stub appears at the graph's right edge, x >= 590; it is not counted.)
    let rtt = &isp1[isp1.find("data-metric=\"rtt\"").unwrap()..];
    let rtt = &rtt[..rtt.find("</svg>").unwrap()];
    let kept_runs = rtt
        .split("<polyline points=\"")
        .skip(1)
        .filter(|p| {
            p.split(',')
                .next()
                .and_then(|x| x.parse::<f64>().ok())
                .is_some_and(|x| x < 590.0)
        })
        .count();
    assert_eq!(kept_runs, 4, "{rtt}");

    // The day view (#24h): the same marks on the 5-minute rings.
    let day = browse(
        &bin,
        profile.path(),
        &format!("{base}/#24h"),
        &["--dump-dom".to_string()],
    );
    let isp1 = card(&day, "ISP1");
    assert!(isp1.contains("<span>−24 h</span>"), "{isp1}");
    assert_eq!(isp1.matches(&kept_mark).count(), 3, "{isp1}");
    assert!(
        day.contains("<button type=\"button\" data-view=\"coarse\" class=\"on\">"),
        "{day}"
    );

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    // A phone's width, for a look.
    let phone = target.join("status-page-phone.png");
    browse(
        &bin,
        profile.path(),
        &format!("{base}/"),
        &[
            format!("--screenshot={}", phone.display()),
            "--window-size=390,2400".to_string(),
        ],
    );
    artifact!(
        "status page screenshot (a phone's width): {}",
        phone.display()
    );
    let shot = target.join("status-page-hour.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &bin,
        profile.path(),
        &format!("{base}/"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1000,1500".to_string(),
        ],
    );
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    artifact!("status page screenshot (a kept hour): {}", shot.display());
    daemon.stop().await;
}
