//! The alert and status services as the daemon runs them: transitions on the event stream become
//! delivered webhook alerts (one per failure, one critical when every WAN is down), the schedule's
//! own lines reach the router log, and the status endpoint shows the states, failovers and the
//! alert counters.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use tokio::sync::{broadcast, mpsc, watch};
use uplinkd::bus::{Event, LinkSnapshot, Service, ServiceContext, Shutdown};
use uplinkd::config::{Config, Env, Webhook, WebhookKind};
use uplinkd::engine::OutageMark;
use uplinkd::health::{Link, LinkState, Transition};
use uplinkd::notify::outbox::Notifier;
use uplinkd::notify::service::AlertService;
use uplinkd::reconciler::Request;
use uplinkd::router::RouterLog;
use uplinkd::routeros::Client;
use uplinkd::status::service::StatusService;
use uplinkd::types::LinkId;
use uplinkd_testkit::reasons;

const BASE: &str = r#"
[[wan]]
name = "ISP1"
interface = "ether1"
address = "192.168.0.3/24"
gateway = "192.168.0.1"
monitors = ["198.18.0.1"]

[[wan]]
name = "ISP2"
interface = "ether2"
address = "192.168.20.3/24"
gateway = "192.168.20.1"
monitors = ["198.18.0.1"]
"#;

fn context(
    events: &broadcast::Sender<Event>,
    links: &[(LinkId, watch::Receiver<LinkSnapshot>)],
    router_log: &mpsc::Sender<RouterLog>,
    shutdown: &Shutdown,
) -> ServiceContext {
    ServiceContext {
        events: events.subscribe(),
        links: links.to_vec(),
        desired: watch::channel(Request::default()).1,
        router_log: router_log.clone(),
        shutdown: shutdown.clone(),
    }
}

/// Polls `f` until it holds (bounded: this only avoids hanging, it asserts no timing).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn transitions_become_alerts_router_lines_and_status() {
    // Webhook receiver.
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let s = s.clone();
        async move {
            s.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            "ok"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        Config::from_toml_str(BASE, &Env::empty().with("UPLINKD_REST_PASSWORD", "pw")).unwrap();
    cfg.email = None;
    cfg.webhooks = vec![Webhook {
        kind: WebhookKind::Json,
        url: hook_url,
        token: None,
    }];
    cfg.state_dir = dir.path().join("state");
    let (notifier, _) = Notifier::from_config(&cfg).unwrap();

    let t0 = Instant::now();
    let mut link_tx = Vec::new();
    let mut links = Vec::new();
    for w in &cfg.wans {
        let stats = Link::new(w.id.clone(), w.monitors.clone(), &cfg.health, t0).stats();
        let (tx, rx) = watch::channel(LinkSnapshot {
            state: LinkState::Up,
            stats,
        });
        link_tx.push(tx);
        links.push((w.id.clone(), rx));
    }
    let (events, _) = broadcast::channel(64);
    let (trigger, shutdown) = Shutdown::new();

    // The router-log outbox reconcile drains in the daemon.
    let (router_log, mut outbox) = mpsc::channel(16);
    let (alerts_tx, alerts_rx) = watch::channel(notifier.status());
    let alerts = AlertService::new(&cfg, notifier, None::<Arc<Client>>, alerts_tx);
    let a = tokio::spawn(Box::new(alerts).run(context(&events, &links, &router_log, &shutdown)));

    let listener = uplinkd::status::http::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let status_url = format!("http://{}/status", listener.local_addr().unwrap());
    let rest = Arc::new(|| [("200".to_string(), 7u64)].into());
    let status = StatusService::new(&cfg, listener, alerts_rx, rest);
    let st = tokio::spawn(Box::new(status).run(context(&events, &links, &router_log, &shutdown)));
    tokio::task::yield_now().await;

    for (i, id) in ["ISP1", "ISP2"].into_iter().enumerate() {
        let tr = Transition {
            link: LinkId::new(id),
            at: t0,
            from: LinkState::Up,
            to: LinkState::Down { since: t0 },
            reason: reasons::lost(),
        };
        link_tx[i].send_modify(|s| s.state = tr.to);
        events
            .send(Event::Transition {
                transition: tr,
                wall: SystemTime::now(),
                outage: OutageMark::Ongoing { since: t0 },
                failovers: 1,
            })
            .unwrap();
    }

    eventually("two webhook alerts", || seen.lock().unwrap().len() == 2).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got[0]["subject"],
        format!("[uplinkd] ISP1 DOWN - {}", reasons::LOST)
    );
    assert_eq!(got[1]["severity"], "critical");
    assert_eq!(got[1]["event"]["kind"], "all_down");
    let mut lines = Vec::new();
    while let Ok(line) = outbox.try_recv() {
        lines.push(line.message);
    }
    assert_eq!(
        lines,
        ["[FAILOVER] CRITICAL: all WANs DOWN - no internet connectivity (ISP1, ISP2)"]
    );

    let client = uplinkd::notify::webhook::http_client(Duration::from_secs(5)).unwrap();
    let mut snap = serde_json::Value::Null;
    for _ in 0..200 {
        snap = client
            .get(&status_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if snap["alerts"]["sent_total"] == 2 && snap["links"][1]["failovers_total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(snap["links"][0]["state"], "down", "{snap}");
    assert_eq!(snap["links"][0]["reason"], reasons::LOST);
    assert_eq!(snap["links"][1]["failovers_total"], 1, "{snap}");
    assert_eq!(snap["alerts"]["sent_total"], 2, "{snap}");
    assert_eq!(snap["alerts"]["pending"], serde_json::json!([]));
    assert_eq!(snap["rest"]["requests_total"]["200"], 7);

    trigger.fire();
    a.await.unwrap();
    st.await.unwrap();
}
