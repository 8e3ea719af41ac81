//! The email channel: lettre over rustls (ring), STARTTLS (587) or implicit TLS (465), AUTH,
//! several recipients, an optional CA file, a set EHLO name.
//!
//! One `send` is one SMTP session; retrying is the outbox's job. The password goes only into
//! lettre's AUTH: errors are scrubbed of it, and no field here prints it (`Secret`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::schedule::Alert;
use crate::config::{Email, EmailTls};
use crate::types::{Secret, error_chain};

/// Bound of one SMTP session step (lettre's default is 60 s).
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The outbox's name for this channel.
pub const CHANNEL: &str = "email";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("email: bad {what} address {value:?}: {cause}")]
    Address {
        what: &'static str,
        value: String,
        cause: String,
    },
    #[error("email: no recipient configured")]
    NoRecipient,
    #[error("email: reading CA file {path}: {cause}")]
    CaFile { path: PathBuf, cause: String },
    #[error("email: TLS set-up for {server}: {cause}")]
    Tls { server: String, cause: String },
    #[error("email: building the message: {0}")]
    Message(String),
    #[error("email: sending via {server}:{port}: {cause}")]
    Send {
        server: String,
        port: u16,
        cause: String,
    },
    #[error("email: {server}:{port} did not accept the message: {code}")]
    Rejected {
        server: String,
        port: u16,
        code: String,
    },
}

/// A configured mail relay and its recipients.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    port: u16,
    from: Mailbox,
    to: Vec<Mailbox>,
    password: Option<Secret>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Builds the transport (no connection yet). `hello_name` is the EHLO name; `None` uses the
    /// from-address's domain (servers that check EHLO want a domain, not `[127.0.0.1]`).
    pub fn new(cfg: &Email, hello_name: Option<&str>) -> Result<Self, Error> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| Error::Address {
                what: "from",
                value: cfg.from.clone(),
                cause: e.to_string(),
            })?;
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>().map_err(|e| Error::Address {
                    what: "to",
                    value: t.clone(),
                    cause: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(Error::NoRecipient);
        }
        let hello = hello_name
            .map(str::to_string)
            .unwrap_or_else(|| from.email.domain().to_string());

        let tls = match cfg.tls {
            EmailTls::None => Tls::None,
            EmailTls::StartTls | EmailTls::Implicit => {
                let mut b = TlsParameters::builder(cfg.server.clone());
                if let Some(path) = &cfg.ca_file {
                    // A CA file replaces the bundled roots: trust is explicit, not widened.
                    let pem = std::fs::read(path).map_err(|e| Error::CaFile {
                        path: path.clone(),
                        cause: e.to_string(),
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| Error::CaFile {
                        path: path.clone(),
                        cause: error_chain(&e),
                    })?;
                    b = b
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(cert);
                } else {
                    b = b.certificate_store(CertificateStore::WebpkiRoots);
                }
                let params = b.build_rustls().map_err(|e| Error::Tls {
                    server: cfg.server.clone(),
                    cause: error_chain(&e),
                })?;
                if cfg.tls == EmailTls::Implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.server.clone())
                .port(cfg.port)
                .tls(tls)
                .hello_name(ClientId::Domain(hello))
                .timeout(Some(TIMEOUT));
        if let (Some(user), Some(pass)) = (&cfg.user, &cfg.password) {
            // lettre only authenticates over TLS here (Tls::None never gets credentials: see
            // config::EmailTls::None), and refuses mechanisms the server offers in clear.
            if cfg.tls != EmailTls::None {
                builder =
                    builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
            }
        }
        Ok(Self {
            transport: builder.build(),
            server: cfg.server.clone(),
            port: cfg.port,
            from,
            to,
            password: cfg.password.clone(),
        })
    }

    pub fn name(&self) -> &str {
        CHANNEL
    }

    /// Builds the message for `alert` (raised at `created`) without sending it.
    pub fn message(&self, alert: &Alert, created: SystemTime) -> Result<Message, Error> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject.clone())
            .date(created);
        for to in &self.to {
            b = b.to(to.clone());
        }
        let body = format!(
            "{}\n\nSeverity: {}\nTime: {}\n-- \nuplinkd {}\n",
            alert.body,
            alert.severity.as_str(),
            humantime::format_rfc3339_seconds(created),
            env!("CARGO_PKG_VERSION")
        );
        b.header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| Error::Message(e.to_string()))
    }

    /// Delivers one alert to every recipient in one SMTP session.
    pub async fn send(&self, alert: &Alert, created: SystemTime) -> Result<(), Error> {
        let msg = self.message(alert, created)?;
        let resp = self.transport.send(msg).await.map_err(|e| Error::Send {
            server: self.server.clone(),
            port: self.port,
            cause: self.scrub(&error_chain(&e)),
        })?;
        if resp.is_positive() {
            Ok(())
        } else {
            Err(Error::Rejected {
                server: self.server.clone(),
                port: self.port,
                code: resp.code().to_string(),
            })
        }
    }

    fn scrub(&self, text: &str) -> String {
        match self.password.as_ref().filter(|p| !p.is_empty()) {
            Some(p) => text.replace(p.expose(), "***"),
            None => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::schedule::{Event, Severity};
    use crate::types::LinkId;

    fn cfg() -> Email {
        Email {
            server: "127.0.0.1".into(),
            port: 2587,
            tls: EmailTls::StartTls,
            user: Some("router".into()),
            password: Some(Secret::new("s3cret-pw")),
            from: "uplinkd <router@example.net>".into(),
            to: vec!["ops@example.net".into(), "Boss <boss@example.org>".into()],
            ca_file: None,
        }
    }

    #[test]
    fn message_has_every_recipient_and_the_alert() {
        let ch = EmailChannel::new(&cfg(), None).unwrap();
        let alert = Alert {
            severity: Severity::Warning,
            event: Event::LinkDown {
                link: LinkId::new("ISP1"),
                reason: "lost".into(),
            },
            subject: "[uplinkd] ISP1 DOWN - lost".into(),
            body: "[FAILOVER] ISP1 DOWN - lost".into(),
        };
        let raw = String::from_utf8(
            ch.message(&alert, SystemTime::UNIX_EPOCH)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(raw.contains("Subject: [uplinkd] ISP1 DOWN - lost"), "{raw}");
        assert!(
            raw.contains("To: ops@example.net, Boss <boss@example.org>"),
            "{raw}"
        );
        assert!(raw.contains("From: uplinkd <router@example.net>"), "{raw}");
        assert!(raw.contains("Time: 1970-01-01T00:00:00Z"), "{raw}");
        assert!(!raw.contains("s3cret-pw"));
        assert!(!format!("{ch:?}").contains("s3cret-pw"));
    }

    #[test]
    fn bad_addresses_and_missing_ca_are_named() {
        let mut c = cfg();
        c.from = "DualWAN-Router".into();
        assert!(matches!(
            EmailChannel::new(&c, None),
            Err(Error::Address { what: "from", .. })
        ));
        let mut c = cfg();
        c.to.clear();
        assert!(matches!(
            EmailChannel::new(&c, None),
            Err(Error::NoRecipient)
        ));
        let mut c = cfg();
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let e = EmailChannel::new(&c, None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
