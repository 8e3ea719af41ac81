//! Email against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS and implicit TLS, AUTH
//! required): the received message's envelope, headers and body; trust; the never-lost queue
//! (server down during the failure, back later; a restart with a pending alert).
//! Skips without python3 + aiosmtpd, fails instead under UPLINKD_TEST_STRICT=1.

#[path = "support/smtp.rs"]
mod smtp;

use std::time::{Duration, SystemTime};

use smtp::{Certs, PASSWORD, SmtpServer, USER};
use uplinkd::config::{Email, EmailTls};
use uplinkd::notify::email::EmailChannel;
use uplinkd::notify::outbox::{Channel, Notifier, Outbox};
use uplinkd::notify::schedule::{Alert, Event, Severity};
use uplinkd::types::{LinkId, Secret};

fn have_server() -> bool {
    uplinkd_testkit::testenv::require("SMTP server (python3 + aiosmtpd)", smtp::available())
}

fn email(port: u16, tls: EmailTls, ca: Option<&Certs>) -> Email {
    Email {
        server: "127.0.0.1".into(),
        port,
        tls,
        user: Some(USER.into()),
        password: Some(Secret::new(PASSWORD)),
        from: "uplinkd on gw1 <router@example.net>".into(),
        to: vec![
            "ops@example.net".into(),
            "Night Shift <night@example.org>".into(),
        ],
        ca_file: ca.map(|c| c.ca.clone()),
    }
}

fn alert() -> Alert {
    Alert {
        severity: Severity::Warning,
        event: Event::LinkDown {
            link: LinkId::new("ISP1"),
            reason: "all 2 targets lost".into(),
        },
        subject: "[uplinkd] ISP1 DOWN - all 2 targets lost".into(),
        body:
            "[FAILOVER] ISP1 DOWN - all 2 targets lost\nTraffic moved to the remaining WANs (ISP2)."
                .into(),
    }
}

fn created() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_095_000)
}

fn assert_received(m: &serde_json::Value, listener: &str) {
    assert_eq!(m["listener"], listener);
    assert_eq!(
        m["auth_login"], USER,
        "AUTH happened with the configured user"
    );
    assert_eq!(m["ehlo"], "gw1.example.net", "EHLO name as configured");
    assert_eq!(m["mail_from"], "router@example.net");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.net", "night@example.org"])
    );
    let data = m["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [uplinkd] ISP1 DOWN - all 2 targets lost"),
        "{data}"
    );
    assert!(
        data.contains("From: \"uplinkd on gw1\" <router@example.net>"),
        "{data}"
    );
    assert!(
        data.contains("To: ops@example.net, \"Night Shift\" <night@example.org>"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Date: Tue, 25 Nov 2025 18:23:20 +0000"),
        "{data}"
    );
    assert!(
        data.contains("[FAILOVER] ISP1 DOWN - all 2 targets lost"),
        "{data}"
    );
    assert!(data.contains("Severity: warning"), "{data}");
    assert!(data.contains("Time: 2025-11-25T18:23:20Z"), "{data}");
    assert!(!data.contains(PASSWORD));
}

#[tokio::test]
async fn starttls_with_auth_delivers_headers_and_body_to_every_recipient() {
    if !have_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = smtp::make_certs(dir.path());
    let server = SmtpServer::start(dir.path(), &certs, Some(0), None);
    let ch = EmailChannel::new(
        &email(
            server.starttls_port.unwrap(),
            EmailTls::StartTls,
            Some(&certs),
        ),
        Some("gw1.example.net"),
    )
    .unwrap();
    ch.send(&alert(), created()).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_received(&got[0], "starttls");
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers() {
    if !have_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = smtp::make_certs(dir.path());
    let server = SmtpServer::start(dir.path(), &certs, None, Some(0));
    let ch = EmailChannel::new(
        &email(server.tls_port.unwrap(), EmailTls::Implicit, Some(&certs)),
        Some("gw1.example.net"),
    )
    .unwrap();
    ch.send(&alert(), created()).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_received(&got[0], "tls");
}

#[tokio::test]
async fn untrusted_certificate_and_wrong_password_are_refused_without_leaking_it() {
    if !have_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = smtp::make_certs(dir.path());
    let server = SmtpServer::start(dir.path(), &certs, Some(0), Some(0));

    // No CA file: the bundled public roots do not know our test CA.
    let ch = EmailChannel::new(
        &email(server.starttls_port.unwrap(), EmailTls::StartTls, None),
        None,
    )
    .unwrap();
    let e = ch.send(&alert(), created()).await.unwrap_err().to_string();
    assert!(
        e.contains("UnknownIssuer") || e.to_lowercase().contains("certificate"),
        "{e}"
    );

    // A wrong password over implicit TLS.
    let mut cfg = email(server.tls_port.unwrap(), EmailTls::Implicit, Some(&certs));
    cfg.password = Some(Secret::new("wrong-Pa55word-77"));
    let ch = EmailChannel::new(&cfg, None).unwrap();
    let e = ch.send(&alert(), created()).await.unwrap_err().to_string();
    assert!(e.contains("127.0.0.1"), "the error names the server: {e}");
    assert!(!e.contains("wrong-Pa55word-77"), "{e}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn server_down_during_the_failure_then_back_delivers_the_alert() {
    if !have_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = smtp::make_certs(dir.path());
    let port = smtp::free_port();
    let cfg = email(port, EmailTls::StartTls, Some(&certs));
    let state = dir.path().join("state");
    let channels = || {
        vec![Channel::Email(Box::new(
            EmailChannel::new(&cfg, Some("gw1.example.net")).unwrap(),
        ))]
    };
    let (outbox, _) = Outbox::open(&state, 10).unwrap();
    let mut n = Notifier::new(outbox, channels()).unwrap();

    let t0 = created();
    n.enqueue(alert(), t0).unwrap();
    let round = n.deliver_due(t0).await.unwrap();
    assert_eq!(
        (round.delivered, round.failed),
        (0, 1),
        "nothing listens yet"
    );
    let st = n.status();
    assert_eq!(st.pending.len(), 1);
    assert!(
        st.pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("email: "),
        "{:?}",
        st.pending[0].last_error
    );
    assert!(
        !st.pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains(PASSWORD)
    );
    let retry = n.next_due().unwrap();
    assert!(retry > t0, "backs off");
    // Before the backoff ends nothing is tried.
    assert_eq!(n.deliver_due(t0).await.unwrap(), Default::default());

    let server = SmtpServer::start(dir.path(), &certs, Some(port), None);
    let round = n.deliver_due(retry).await.unwrap();
    assert_eq!((round.delivered, round.failed), (1, 0));
    assert!(n.status().pending.is_empty());
    assert_eq!(n.status().sent_total, 1);
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_received(&got[0], "starttls");
}

#[tokio::test]
async fn pending_alert_survives_a_restart_and_is_delivered_after_it() {
    if !have_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = smtp::make_certs(dir.path());
    let port = smtp::free_port();
    let cfg = email(port, EmailTls::StartTls, Some(&certs));
    let state = dir.path().join("state");
    let channels = || {
        vec![Channel::Email(Box::new(
            EmailChannel::new(&cfg, Some("gw1.example.net")).unwrap(),
        ))]
    };

    // First life: the alert cannot be sent, then the daemon stops.
    {
        let (outbox, loaded) = Outbox::open(&state, 10).unwrap();
        assert_eq!(loaded.pending, 0);
        let mut n = Notifier::new(outbox, channels()).unwrap();
        n.enqueue(alert(), created()).unwrap();
        assert_eq!(n.deliver_due(created()).await.unwrap().failed, 1);
    }

    // Second life, server up: the carried-over alert goes out.
    let server = SmtpServer::start(dir.path(), &certs, Some(port), None);
    let (outbox, loaded) = Outbox::open(&state, 10).unwrap();
    assert_eq!(loaded.pending, 1);
    let mut n = Notifier::new(outbox, channels()).unwrap();
    let later = created() + Duration::from_secs(3600);
    assert_eq!(n.deliver_due(later).await.unwrap().delivered, 1);
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_received(&got[0], "starttls");
    // Delivered means gone from the file too.
    let (outbox, loaded) = Outbox::open(&state, 10).unwrap();
    assert_eq!((loaded.pending, outbox.len()), (0, 0));
}
