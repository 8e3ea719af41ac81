//! The status endpoint (axum): `/status` (and `/`) serve the snapshot as JSON, `/metrics` as
//! Prometheus text, `/healthz` says whether the daemon has published a snapshot yet; plus the
//! client side used by `uplinkd status`.
//!
//! It serves whatever the app last published on a `watch` channel; it never builds a snapshot,
//! never reads the clock and never spawns (the app spawns [`serve`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::{Snapshot, metrics};

/// What the app publishes; `None` until the first snapshot.
pub type Feed = watch::Receiver<Option<Arc<Snapshot>>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("status endpoint: binding {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("status endpoint: serving: {0}")]
    Serve(std::io::Error),
    #[error("status: fetching {url}: {cause}")]
    Fetch { url: String, cause: String },
    #[error("status: {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("status: {url} did not return a status snapshot: {cause}")]
    Decode { url: String, cause: String },
}

/// The routes, reading from `feed`.
pub fn router(feed: Feed) -> Router {
    Router::new()
        .route("/", get(json))
        .route("/status", get(json))
        .route("/metrics", get(prometheus))
        .route("/healthz", get(healthz))
        .with_state(feed)
}

/// Binds the listener (separate from [`serve`] so a bad address fails at start-up).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| Error::Bind { addr, cause })
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    feed: Feed,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(listener, router(feed))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

fn current(feed: &Feed) -> Option<Arc<Snapshot>> {
    feed.borrow().clone()
}

fn starting() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "starting: no status yet\n").into_response()
}

async fn json(State(feed): State<Feed>) -> Response {
    match current(&feed) {
        Some(s) => ([(header::CONTENT_TYPE, "application/json")], s.to_json()).into_response(),
        None => starting(),
    }
}

async fn prometheus(State(feed): State<Feed>) -> Response {
    match current(&feed) {
        Some(s) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&s),
        )
            .into_response(),
        None => starting(),
    }
}

async fn healthz(State(feed): State<Feed>) -> Response {
    match current(&feed) {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => starting(),
    }
}

/// `uplinkd status`: fetches the snapshot from a running daemon. `base` is `http://host:port`.
pub async fn fetch(base: &str) -> Result<Snapshot, Error> {
    let url = format!("{}/status", base.trim_end_matches('/'));
    let client =
        crate::notify::webhook::http_client(Duration::from_secs(5)).map_err(|e| Error::Fetch {
            url: url.clone(),
            cause: e.to_string(),
        })?;
    let resp = client.get(&url).send().await.map_err(|e| Error::Fetch {
        url: url.clone(),
        cause: error_chain(&e.without_url()),
    })?;
    if !resp.status().is_success() {
        return Err(Error::Status {
            url,
            status: resp.status().as_u16(),
        });
    }
    let body = resp.text().await.map_err(|e| Error::Fetch {
        url: url.clone(),
        cause: e.to_string(),
    })?;
    serde_json::from_str(&body).map_err(|e| Error::Decode {
        url,
        cause: e.to_string(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}
