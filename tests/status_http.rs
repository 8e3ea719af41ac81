//! The status endpoint on 127.0.0.1: `/status` JSON, `/metrics` parsed back by a Prometheus
//! parser with the values asserted, `/healthz`; the `uplinkd status --url` table from the real
//! binary; and no secret (SMTP password, webhook tokens) in logs, JSON, metrics or the table.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uplinkd::config::{Email, EmailTls, Webhook, WebhookKind};
use uplinkd::health::{LinkState, LinkStats, Reason, StateKind, TargetStats, Transition};
use uplinkd::notify::email::EmailChannel;
use uplinkd::notify::outbox::{Channel, Notifier, Outbox};
use uplinkd::notify::schedule::{Alert, Event, Severity};
use uplinkd::notify::webhook::WebhookChannel;
use uplinkd::status::http::{self, Source};
use uplinkd::status::{AlertsStatus, LinkInput, Snapshot, Tracker, Traffic, metrics, table};
use uplinkd::types::{LinkId, Secret};
use uplinkd_testkit::reasons;

const PASSWORD: &str = "smtp-Pa55-never-shown";
const TOKEN: &str = "ntfy-tok-never-shown";
const BOT_TOKEN: &str = "777:bot-never-shown";

fn wall(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_095_000 + s)
}

fn stats(link: &str, state: StateKind, loss: f64, rtt: Option<Duration>) -> LinkStats {
    let ms = Duration::from_millis;
    let target = |ip: Ipv4Addr| TargetStats {
        target: ip,
        loss_ratio: Some(loss),
        rtt,
        srtt: rtt,
        rttvar: rtt.map(|_| ms(1)),
        jitter: rtt.map(|_| Duration::from_micros(500)),
        deadline: ms(250),
        last_reply_age: None,
        window_len: 20,
        // Remote mode's REST faults, shown apart from the loss.
        counters: uplinkd::health::Counters {
            no_evidence: 7,
            ..Default::default()
        },
    };
    LinkStats {
        link: LinkId::new(link),
        state,
        loss_ratio: Some(loss),
        rtt,
        jitter: rtt.map(|_| Duration::from_micros(500)),
        no_evidence: 0,
        evidence: 0.0,
        evidence_threshold: 1.0,
        baseline_round_loss: 0.0,
        good_streak: 0,
        bad_streak: 0,
        hold_down: Duration::from_secs(30),
        flap_penalty: 0.0,
        targets: vec![
            target(Ipv4Addr::new(198, 18, 0, 1)),
            target(Ipv4Addr::new(198, 18, 0, 2)),
        ],
    }
}

/// ISP1 up (12 ms), ISP2 down since +100 s after one failover; one reconcile pass; one pending alert.
fn snapshot(alerts: AlertsStatus) -> Snapshot {
    let t = Instant::now();
    let (isp1, isp2) = (LinkId::new("ISP1"), LinkId::new("ISP2"));
    let tr = |link: &LinkId, from, to, reason: Reason| Transition {
        link: link.clone(),
        at: t,
        from,
        to,
        reason,
    };
    let mut k = Tracker::default();
    k.handle_transition(
        &tr(&isp1, LinkState::Unknown, LinkState::Up, reasons::good()),
        wall(0),
        0,
    );
    k.handle_transition(
        &tr(&isp2, LinkState::Unknown, LinkState::Up, reasons::good()),
        wall(0),
        0,
    );
    k.handle_transition(
        &tr(
            &isp2,
            LinkState::Up,
            LinkState::Down { since: t },
            reasons::lost(),
        ),
        wall(100),
        1,
    );
    let (s1, s2) = (
        stats("ISP1", StateKind::Up, 0.0, Some(Duration::from_millis(12))),
        stats("ISP2", StateKind::Down, 1.0, None),
    );
    let input = [
        LinkInput {
            id: &isp1,
            label: "Primary-ISP",
            state: LinkState::Up,
            stats: Some(&s1),
            traffic: Some(Traffic::Carrying),
            tier: 1,
        },
        LinkInput {
            id: &isp2,
            label: "Backup-ISP",
            state: LinkState::Down { since: t },
            stats: Some(&s2),
            traffic: Some(Traffic::Standby),
            tier: 2,
        },
    ];
    k.build(
        &input,
        alerts,
        [("200".to_string(), 42), ("transport".to_string(), 2)].into(),
        wall(352),
    )
}

async fn serve(source: Arc<dyn Source>) -> String {
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(http::serve(listener, source, std::future::pending()));
    url
}

async fn get(url: &str) -> (u16, String, String) {
    let r = uplinkd::notify::webhook::http_client(Duration::from_secs(5))
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

fn sample(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let x = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match x.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn endpoint_serves_json_metrics_and_health() {
    let snap = snapshot(AlertsStatus::default());
    let served = snap.clone();
    let url = serve(Arc::new(move || Some(served.clone()))).await;

    let (code, ct, body) = get(&format!("{url}/status")).await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let back: Snapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(back, snap);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["links"][1]["wan"], "ISP2");
    assert_eq!(v["links"][1]["state"], "down");
    assert_eq!(v["links"][1]["since_unix"], 1_764_095_100u64);
    assert_eq!(v["links"][1]["reason"], reasons::LOST);
    assert_eq!(v["links"][0]["targets"][0]["rtt_seconds"], 0.012);
    assert_eq!(v["links"][0]["targets"][0]["no_evidence"], 7);

    let (code, ct, text) = get(&format!("{url}/metrics")).await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(sample(&s, "uplinkd_link_up", &[("wan", "ISP1")]), 1.0);
    assert_eq!(sample(&s, "uplinkd_link_up", &[("wan", "ISP2")]), 0.0);
    assert_eq!(
        sample(&s, "uplinkd_failovers_total", &[("wan", "ISP2")]),
        1.0
    );
    assert_eq!(
        sample(&s, "uplinkd_failovers_total", &[("wan", "ISP1")]),
        0.0
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_probe_rtt_seconds",
            &[("wan", "ISP1"), ("target", "198.18.0.2")]
        ),
        0.012
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_probe_loss_ratio",
            &[("wan", "ISP2"), ("target", "198.18.0.1")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_probe_jitter_seconds",
            &[("wan", "ISP1"), ("target", "198.18.0.1")]
        ),
        0.0005
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_probe_no_evidence_total",
            &[("wan", "ISP2"), ("target", "198.18.0.2")]
        ),
        7.0
    );
    assert_eq!(
        sample(&s, "uplinkd_rest_requests_total", &[("status", "200")]),
        42.0
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_rest_requests_total",
            &[("status", "transport")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &s,
            "uplinkd_link_state_since_timestamp_seconds",
            &[("wan", "ISP2")]
        ),
        1_764_095_100.0
    );

    assert_eq!(get(&format!("{url}/healthz")).await.0, 200);
}

#[tokio::test]
async fn before_the_first_snapshot_everything_says_starting() {
    let url = serve(Arc::new(|| None)).await;
    for path in ["/status", "/metrics", "/healthz"] {
        let (code, _, body) = get(&format!("{url}{path}")).await;
        assert_eq!(code, 503, "{path}");
        assert!(body.starts_with("starting"), "{path}: {body}");
    }
}

#[tokio::test]
async fn status_command_prints_the_table() {
    let snap = snapshot(AlertsStatus::default());
    let url = serve(Arc::new(move || Some(snap.clone()))).await;
    let bin = env!("CARGO_BIN_EXE_uplinkd");
    let out = tokio::task::spawn_blocking(move || {
        uplinkd_testkit::testenv::without_runner_env(&mut std::process::Command::new(bin))
            .args(["status", "--url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            " interface ISP1 (Primary-ISP) is up for 5m52s, carrying - {}\n",
            reasons::GOOD
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            " interface ISP2 (Backup-ISP) is down for 4m12s, standby (tier 2) - {}\n",
            reasons::LOST
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(" ISP1  198.18.0.1  0.0%    12.0ms  0.5ms"),
        "{stdout}"
    );
    assert!(stdout.contains("Alerts: 0 pending"), "{stdout}");

    // Nothing listening: a clear error and a failing exit code.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = uplinkd_testkit::testenv::without_runner_env(&mut std::process::Command::new(bin))
        .args(["status", "--url", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fetching http://127.0.0.1:"), "{err}");
}

/// A `tracing` writer into a shared buffer, to search the log output.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_status_metrics_or_table() {
    let logs = Buf::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Every channel fails: nothing listens on these ports.
    let closed = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let email = Email {
        server: "127.0.0.1".into(),
        port: closed(),
        tls: EmailTls::StartTls,
        user: Some("router@example.net".into()),
        password: Some(Secret::new(PASSWORD)),
        from: "router@example.net".into(),
        to: vec!["ops@example.net".into()],
        ca_file: None,
    };
    let ntfy = Webhook {
        kind: WebhookKind::Ntfy,
        url: format!("http://127.0.0.1:{}/t", closed()),
        token: Some(Secret::new(TOKEN)),
    };
    let tg = Webhook {
        kind: WebhookKind::Telegram {
            chat_id: "1".into(),
        },
        url: format!("http://127.0.0.1:{}", closed()),
        token: Some(Secret::new(BOT_TOKEN)),
    };
    let channels = vec![
        Channel::Email(Box::new(EmailChannel::new(&email, None).unwrap())),
        Channel::Webhook(WebhookChannel::new(1, &ntfy).unwrap()),
        Channel::Webhook(WebhookChannel::new(2, &tg).unwrap()),
    ];
    let mut n = Notifier::new(Outbox::in_memory(10), channels).unwrap();
    let alert = Alert {
        severity: Severity::Critical,
        event: Event::AllDown {
            links: vec![LinkId::new("ISP1")],
            last: LinkId::new("ISP1"),
            reason: "lost".into(),
        },
        subject: "[uplinkd] CRITICAL: all WANs DOWN (ISP1)".into(),
        body: "x".into(),
    };
    n.enqueue(alert, wall(0)).unwrap();
    let round = n.deliver_due(wall(0)).await.unwrap();
    assert_eq!(round.failed, 3);

    let snap = snapshot(n.status());
    let outputs = [
        (
            "log",
            String::from_utf8(logs.0.lock().unwrap().clone()).unwrap(),
        ),
        ("json", snap.to_json()),
        ("metrics", metrics::render(&snap)),
        ("table", table::render(&snap)),
        ("debug", format!("{n:?} {email:?} {ntfy:?} {tg:?}")),
    ];
    assert!(
        outputs[0].1.contains("alert delivery failed"),
        "the failures were logged: {}",
        outputs[0].1
    );
    assert!(
        outputs[1].1.contains("webhook2:telegram"),
        "the pending channels are shown: {}",
        outputs[1].1
    );
    for (what, text) in &outputs {
        for secret in [PASSWORD, TOKEN, BOT_TOKEN, "bot-never"] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
    std::io::stdout().flush().unwrap();
}
