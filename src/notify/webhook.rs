//! Webhook channels over reqwest + rustls (explicitly trusted Mozilla roots, so it works in a
//! FROM-scratch image): generic JSON, ntfy, and Telegram-compatible `sendMessage`.
//!
//! One `send` is one HTTP request; retrying is the outbox's job. Tokens go only into the request
//! (a header, or the Telegram URL path) and never into an error, a log line or a status field:
//! errors are built without the URL and scrubbed of the token.

use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::json;

use super::schedule::{Alert, Severity};
use crate::config::{Webhook, WebhookKind};
use crate::types::{Secret, error_chain};

/// Bound of one webhook request.
pub const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the HTTP client for {channel}: {cause}")]
    Client { channel: String, cause: String },
    #[error("{channel}: a Telegram webhook needs a bot token")]
    MissingToken { channel: String },
    #[error("{channel}: POST failed: {cause}")]
    Send { channel: String, cause: String },
    #[error("{channel}: answered HTTP {status}")]
    Status { channel: String, status: u16 },
}

/// Installs ring as the process's rustls provider (reqwest is built without one). Idempotent:
/// a second call, or one after another module installed it, changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client that trusts the bundled Mozilla roots (no OS store in a scratch image).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("uplinkd/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One configured webhook.
#[derive(Debug)]
pub struct WebhookChannel {
    name: String,
    kind: WebhookKind,
    url: String,
    token: Option<Secret>,
    client: reqwest::Client,
}

impl WebhookChannel {
    /// `index` is the webhook's 1-based position in the config; it names the channel
    /// (`webhook1:ntfy`), which is how the outbox remembers where an alert still has to go.
    pub fn new(index: usize, cfg: &Webhook) -> Result<Self, Error> {
        let name = channel_name(index, &cfg.kind);
        if matches!(cfg.kind, WebhookKind::Telegram { .. })
            && cfg.token.as_ref().is_none_or(Secret::is_empty)
        {
            return Err(Error::MissingToken { channel: name });
        }
        let client = http_client(TIMEOUT).map_err(|e| Error::Client {
            channel: name.clone(),
            cause: chain(&e),
        })?;
        Ok(Self {
            name,
            kind: cfg.kind.clone(),
            url: cfg.url.trim_end_matches('/').to_string(),
            token: cfg.token.clone(),
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Delivers one alert; `created` is when it was raised (shown to the reader).
    pub async fn send(&self, alert: &Alert, created: SystemTime) -> Result<(), Error> {
        let time = humantime::format_rfc3339_seconds(created).to_string();
        let req = match &self.kind {
            WebhookKind::Json => {
                let body = json!({
                    "source": "uplinkd",
                    "severity": alert.severity.as_str(),
                    "subject": alert.subject,
                    "body": alert.body,
                    "time": time,
                    "event": alert.event,
                });
                self.with_bearer(self.client.post(&self.url).json(&body))
            }
            WebhookKind::Ntfy => {
                let (priority, tags) = match alert.severity {
                    Severity::Critical => ("urgent", "rotating_light"),
                    Severity::Warning => ("high", "warning"),
                    Severity::Info => ("default", "white_check_mark"),
                };
                let req = self
                    .client
                    .post(&self.url)
                    .header("Title", header_text(&alert.subject))
                    .header("Priority", priority)
                    .header("Tags", tags)
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(format!("{}\nTime: {time}", alert.body));
                self.with_bearer(req)
            }
            WebhookKind::Telegram { chat_id } => {
                let token = self.token.as_ref().map(Secret::expose).unwrap_or_default();
                let url = format!("{}/bot{token}/sendMessage", self.url);
                let text = format!("{}\n\n{}\nTime: {time}", alert.subject, alert.body);
                self.client.post(url).json(&json!({
                    "chat_id": chat_id,
                    "text": text,
                    "disable_web_page_preview": true,
                }))
            }
        };
        let resp = req.send().await.map_err(|e| Error::Send {
            channel: self.name.clone(),
            cause: self.scrub(&chain(&e.without_url())),
        })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::Status {
                channel: self.name.clone(),
                status: status.as_u16(),
            })
        }
    }

    fn with_bearer(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token.as_ref().filter(|t| !t.is_empty()) {
            Some(t) => match HeaderValue::from_str(&format!("Bearer {}", t.expose())) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    req.header(AUTHORIZATION, v)
                }
                // A token with characters a header cannot carry; sent without, the server says 401.
                Err(_) => req,
            },
            None => req,
        }
    }

    /// Belt and braces: whatever an error says, it never carries the token.
    fn scrub(&self, text: &str) -> String {
        match self.token.as_ref().filter(|t| !t.is_empty()) {
            Some(t) => text.replace(t.expose(), "***"),
            None => text.to_string(),
        }
    }
}

/// `webhook1:json`, `webhook2:ntfy`, `webhook3:telegram`.
pub fn channel_name(index: usize, kind: &WebhookKind) -> String {
    let k = match kind {
        WebhookKind::Json => "json",
        WebhookKind::Ntfy => "ntfy",
        WebhookKind::Telegram { .. } => "telegram",
    };
    format!("webhook{index}:{k}")
}

/// A reqwest error with its causes, without the URL (which may hold a token).
fn chain(e: &reqwest::Error) -> String {
    let out = error_chain(e);
    // reqwest prints "... for url (<url>)" on the top error; cut it.
    match out.find(" for url (") {
        Some(i) => {
            let rest = out[i..].find(')').map(|j| &out[i + j + 1..]).unwrap_or("");
            format!("{}{}", &out[..i], rest)
        }
        None => out,
    }
}

/// Header values carry visible ASCII only; anything else becomes `?`.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            channel_name(
                2,
                &WebhookKind::Telegram {
                    chat_id: "1".into()
                }
            ),
            "webhook2:telegram"
        );
    }

    #[test]
    fn header_text_is_visible_ascii() {
        assert_eq!(header_text("ISP1 DOWN – lost\n"), "ISP1 DOWN ? lost?");
    }

    #[test]
    fn telegram_without_token_is_refused() {
        let cfg = Webhook {
            kind: WebhookKind::Telegram {
                chat_id: "42".into(),
            },
            url: "http://127.0.0.1:1".into(),
            token: None,
        };
        assert!(matches!(
            WebhookChannel::new(1, &cfg),
            Err(Error::MissingToken { .. })
        ));
    }
}
