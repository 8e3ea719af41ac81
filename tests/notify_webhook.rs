//! Webhooks against a local HTTP receiver on 127.0.0.1: generic JSON, ntfy and Telegram-compatible
//! requests (path, headers, body); HTTP errors and refused connections reported without the token;
//! and the outbox retrying a webhook that failed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use uplinkd::config::{Webhook, WebhookKind};
use uplinkd::notify::outbox::{Channel, Notifier, Outbox};
use uplinkd::notify::schedule::{Alert, Event, Severity};
use uplinkd::notify::webhook::WebhookChannel;
use uplinkd::types::{LinkId, Secret};

const TOKEN: &str = "tok-9f8e7d6c5b4a";
const BOT_TOKEN: &str = "123456:ABC-botSECRET";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A receiver that records every request and answers with the next status of `answers` (200 when
/// they run out).
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Sends one alert of `severity` through webhook `index` and returns the one request the
/// receiver saw.
async fn send_one(r: &Receiver, index: usize, hook: &Webhook, severity: Severity) -> Seen {
    WebhookChannel::new(index, hook)
        .unwrap()
        .send(&alert(severity), created())
        .await
        .unwrap();
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one request per alert");
    seen.into_iter().next().unwrap()
}

async fn receiver(answers: Vec<u16>) -> Receiver {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let (s, a) = (seen.clone(), answers.clone());
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (s, a) = (s.clone(), a.clone());
            async move {
                s.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    headers,
                    body: body.to_vec(),
                });
                let code = a.lock().unwrap().next().unwrap_or(200);
                (StatusCode::from_u16(code).unwrap(), "{\"ok\":true}")
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, seen }
}

fn alert(severity: Severity) -> Alert {
    Alert {
        severity,
        event: Event::LinkDown {
            link: LinkId::new("ISP1"),
            reason: "all 2 targets lost".into(),
        },
        subject: "[uplinkd] ISP1 DOWN - all 2 targets lost".into(),
        body: "[FAILOVER] ISP1 DOWN - all 2 targets lost".into(),
    }
}

fn created() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_095_000)
}

fn header<'a>(s: &'a Seen, name: &str) -> &'a str {
    s.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn generic_json_posts_the_alert_with_a_bearer_token() {
    let r = receiver(vec![]).await;
    let hook = Webhook {
        kind: WebhookKind::Json,
        url: format!("{}/hooks/uplinkd", r.url),
        token: Some(Secret::new(TOKEN)),
    };
    let s = &send_one(&r, 1, &hook, Severity::Warning).await;
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.path, "/hooks/uplinkd");
    assert_eq!(header(s, "authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(header(s, "content-type"), "application/json");
    let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(v["source"], "uplinkd");
    assert_eq!(v["severity"], "warning");
    assert_eq!(v["subject"], "[uplinkd] ISP1 DOWN - all 2 targets lost");
    assert_eq!(v["time"], "2025-11-25T18:23:20Z");
    assert_eq!(v["event"]["kind"], "link_down");
    assert_eq!(v["event"]["link"], "ISP1");
    assert!(
        !String::from_utf8_lossy(&s.body).contains(TOKEN),
        "the token is a header, not in the body"
    );
}

#[tokio::test]
async fn ntfy_posts_text_with_title_priority_and_tags() {
    let r = receiver(vec![]).await;
    let hook = Webhook {
        kind: WebhookKind::Ntfy,
        url: format!("{}/uplinkd-alerts", r.url),
        token: Some(Secret::new(TOKEN)),
    };
    let s = &send_one(&r, 2, &hook, Severity::Critical).await;
    assert_eq!(
        (s.method.clone(), s.path.as_str()),
        (Method::POST, "/uplinkd-alerts")
    );
    assert_eq!(
        header(s, "title"),
        "[uplinkd] ISP1 DOWN - all 2 targets lost"
    );
    assert_eq!(header(s, "priority"), "urgent");
    assert_eq!(header(s, "tags"), "rotating_light");
    assert_eq!(header(s, "authorization"), format!("Bearer {TOKEN}"));
    let body = String::from_utf8(s.body.clone()).unwrap();
    assert_eq!(
        body,
        "[FAILOVER] ISP1 DOWN - all 2 targets lost\nTime: 2025-11-25T18:23:20Z"
    );
}

#[tokio::test]
async fn telegram_calls_send_message_with_the_chat_id() {
    let r = receiver(vec![]).await;
    let hook = Webhook {
        kind: WebhookKind::Telegram {
            chat_id: "-1001234567".into(),
        },
        url: r.url.clone(),
        token: Some(Secret::new(BOT_TOKEN)),
    };
    let s = &send_one(&r, 3, &hook, Severity::Info).await;
    assert_eq!(s.path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(
        header(s, "authorization"),
        "",
        "Telegram takes the token in the path only"
    );
    let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(v["chat_id"], "-1001234567");
    assert_eq!(
        v["text"],
        "[uplinkd] ISP1 DOWN - all 2 targets lost\n\n[FAILOVER] ISP1 DOWN - all 2 targets lost\nTime: 2025-11-25T18:23:20Z"
    );
}

#[tokio::test]
async fn errors_name_the_channel_but_never_the_token() {
    // An HTTP error answer.
    let r = receiver(vec![500]).await;
    let hook = Webhook {
        kind: WebhookKind::Telegram {
            chat_id: "42".into(),
        },
        url: r.url.clone(),
        token: Some(Secret::new(BOT_TOKEN)),
    };
    let e = WebhookChannel::new(1, &hook)
        .unwrap()
        .send(&alert(Severity::Info), created())
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("webhook1:telegram") && text.contains("500"),
        "{text}"
    );
    assert!(!text.contains(BOT_TOKEN), "{text}");

    // Nothing listening: a transport error (which reqwest would print with the URL).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = Webhook {
        url: format!("http://127.0.0.1:{port}"),
        ..hook
    };
    let e = WebhookChannel::new(1, &hook)
        .unwrap()
        .send(&alert(Severity::Info), created())
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("POST failed"), "{text}");
    assert!(!text.contains(BOT_TOKEN), "{text}");
    assert!(!text.contains("ABC-bot"), "{text}");
}

#[tokio::test]
async fn outbox_retries_a_failed_webhook_until_it_answers() {
    let r = receiver(vec![503, 502]).await;
    let hook = Webhook {
        kind: WebhookKind::Json,
        url: r.url.clone(),
        token: Some(Secret::new(TOKEN)),
    };
    let ch = vec![Channel::Webhook(WebhookChannel::new(1, &hook).unwrap())];
    let mut n = Notifier::new(Outbox::in_memory(10), ch).unwrap();
    let mut now = created();
    n.enqueue(alert(Severity::Warning), now).unwrap();
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let r = n.deliver_due(now).await.unwrap();
        rounds.push((r.delivered, r.failed));
        if let Some(t) = n.next_due() {
            now = t;
        }
    }
    assert_eq!(rounds, [(0, 1), (0, 1), (1, 0)]);
    assert_eq!(r.seen.lock().unwrap().len(), 3);
    let st = n.status();
    assert!(st.pending.is_empty());
    assert_eq!((st.sent_total, st.failed_attempts_total), (1, 2));
    let json = serde_json::to_string(&st).unwrap();
    assert!(!json.contains(TOKEN), "{json}");
}
