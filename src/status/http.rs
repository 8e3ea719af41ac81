//! The status endpoint (axum): `/status` serves the snapshot as JSON, `/history` the graphs'
//! history ([`super::history`]), `/metrics` Prometheus text, `/healthz` whether the daemon has
//! published a snapshot yet; `/` is the status page ([`page`]) for a browser (a request that
//! accepts `text/html`) and the JSON for anything else, as before the page; plus the client side
//! used by `uplinkd status`.
//!
//! It serves what its [`Source`] builds at request time; it never spawns (the app spawns the
//! service that runs [`serve`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Snapshot, metrics, page};

/// Where the endpoint gets the snapshot it serves (`None`: not ready yet, answered with 503).
pub trait Source: Send + Sync + 'static {
    fn snapshot(&self) -> Option<Snapshot>;

    /// The history as JSON (`None`: none kept, answered with 404).
    fn history_json(&self) -> Option<String> {
        None
    }
}

impl<F: Fn() -> Option<Snapshot> + Send + Sync + 'static> Source for F {
    fn snapshot(&self) -> Option<Snapshot> {
        self()
    }
}

type Feed = Arc<dyn Source>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("status endpoint: binding {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("status endpoint: serving: {0}")]
    Serve(std::io::Error),
    #[error(
        "status: the status endpoint is off in the config ([status] listen = \"off\"); pass --url"
    )]
    Off,
    #[error("status: fetching {url}: {cause}")]
    Fetch { url: String, cause: String },
    #[error("status: {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("status: {url} did not return a status snapshot: {cause}")]
    Decode { url: String, cause: String },
}

/// The routes, reading from `feed`.
pub fn router(feed: Arc<dyn Source>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/page.css", get(page::css))
        .route("/page.js", get(page::js))
        .route("/status", get(json))
        .route("/history", get(history))
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
    feed: Arc<dyn Source>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(listener, router(feed))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

fn current(feed: &Feed) -> Option<Snapshot> {
    feed.snapshot()
}

fn starting() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "starting: no status yet\n").into_response()
}

async fn json(State(feed): State<Feed>) -> Response {
    snapshot_json(&feed)
}

/// Not inlined into both handlers that serve it: the router build is size-bound.
#[inline(never)]
fn snapshot_json(feed: &Feed) -> Response {
    match current(feed) {
        Some(s) => ([(header::CONTENT_TYPE, "application/json")], s.to_json()).into_response(),
        None => starting(),
    }
}

/// The page for a browser, the JSON for scripts that asked `/` before there was a page.
async fn index(headers: HeaderMap, State(feed): State<Feed>) -> Response {
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if html {
        page::html()
    } else {
        snapshot_json(&feed)
    }
}

async fn history(State(feed): State<Feed>) -> Response {
    match feed.history_json() {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => (StatusCode::NOT_FOUND, "no history kept\n").into_response(),
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
        cause: crate::types::error_chain(&e.without_url()),
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

/// The address `uplinkd status` asks: `--url`, else the configured listen address (when a config
/// is given), else the default.
pub fn status_url(url: Option<&str>, listen: Option<Option<SocketAddr>>) -> Result<String, Error> {
    if let Some(u) = url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    match listen {
        None => Ok(format!("http://{}", crate::config::DEFAULT_STATUS_LISTEN)),
        Some(Some(addr)) if addr.ip().is_unspecified() => {
            Ok(format!("http://127.0.0.1:{}", addr.port()))
        }
        Some(Some(addr)) => Ok(format!("http://{addr}")),
        Some(None) => Err(Error::Off),
    }
}
