//! Typed errors of the REST client. Every variant names the operation (HTTP method) and its
//! subject (the `/rest/...` path), so a log line alone says what failed where. This module only
//! describes failures; it decides nothing (the retry policy lives in the client).

use std::fmt;
use std::time::Duration;

/// The HTTP method of a REST call; RouterOS maps each to a console command (GET print, PUT add,
/// PATCH set, DELETE remove, POST any command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Put,
    Patch,
    Delete,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a REST call or building the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The REST settings cannot work (bad URL, plain HTTP without `Trust::PlainHttp`, ...).
    #[error("REST client setup: {what}")]
    Config { what: String },

    /// The trust material could not be loaded or the TLS configuration could not be built.
    #[error("REST TLS setup ({subject}): {what}")]
    Tls { subject: String, what: String },

    /// 401: wrong user or password, or the user's group lacks the `rest-api` policy. Never retried.
    #[error(
        "{method} {path}: 401 Unauthorized: check the REST user and password and that its group has the rest-api policy"
    )]
    Unauthorized { method: Method, path: String },

    /// 404: the menu, command or item does not exist.
    #[error("{method} {path}: 404 Not Found{}", detail_suffix(.detail))]
    NotFound {
        method: Method,
        path: String,
        detail: Option<String>,
    },

    /// Any other status ≥ 400, with RouterOS's `{error, message, detail}` body.
    #[error("{method} {path}: {status} {message}{}", detail_suffix(.detail))]
    Rejected {
        method: Method,
        path: String,
        status: u16,
        /// The reason phrase (`Bad Request`), from the body or the status line.
        message: String,
        /// RouterOS's own words (`no such item`, `expected end of command (line 3 column 7)`).
        detail: Option<String>,
    },

    /// No complete answer within the configured bound.
    #[error("{method} {path}: no answer within {after:?}")]
    Timeout {
        method: Method,
        path: String,
        after: Duration,
    },

    /// Connecting, the TLS handshake, or reading the answer failed. `cause` is the whole
    /// `source()` chain, because reqwest's own message hides it.
    #[error("{method} {path}: {cause}")]
    Transport {
        method: Method,
        path: String,
        cause: String,
    },

    /// The router answered 2xx but the body is not what this call expects.
    #[error("{method} {path}: cannot decode the answer: {what}")]
    Decode {
        method: Method,
        path: String,
        what: String,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

impl Error {
    /// RouterOS's `detail` text, when the router gave one (`/import` puts the failing line here).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::NotFound { detail, .. } | Error::Rejected { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status the router answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::NotFound { .. } => Some(404),
            Error::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the failure may be transient (transport, timeout, 5xx). Whether a retry is *safe*
    /// depends on the operation too; the client decides that.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Rejected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

pub(crate) use crate::types::error_chain as chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("invalid peer certificate: UnknownIssuer")]
    struct Inner;

    #[test]
    fn chain_walks_sources() {
        assert_eq!(
            chain(&Outer(Inner)),
            "outer: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn messages_name_operation_subject_and_detail() {
        let e = Error::Rejected {
            method: Method::Post,
            path: "/rest/import".into(),
            status: 400,
            message: "Bad Request".into(),
            detail: Some("expected end of command (line 3 column 7)".into()),
        };
        assert_eq!(
            e.to_string(),
            "POST /rest/import: 400 Bad Request: expected end of command (line 3 column 7)"
        );
        assert_eq!(
            e.detail(),
            Some("expected end of command (line 3 column 7)")
        );
        assert!(!e.is_transient());
        let u = Error::Unauthorized {
            method: Method::Get,
            path: "/rest/ip/route".into(),
        };
        assert!(u.to_string().starts_with("GET /rest/ip/route: 401"));
        let nf = Error::NotFound {
            method: Method::Get,
            path: "/rest/ip/route/*1".into(),
            detail: None,
        };
        assert_eq!(nf.to_string(), "GET /rest/ip/route/*1: 404 Not Found");
        let five = Error::Rejected {
            method: Method::Get,
            path: "/rest/ip/route".into(),
            status: 503,
            message: "Service Unavailable".into(),
            detail: None,
        };
        assert!(five.is_transient());
    }
}
