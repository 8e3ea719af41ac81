//! The status page: one HTML file, its stylesheet and its script, embedded in the binary (no CDN:
//! the router may be offline exactly when someone looks). The script polls `/status` and
//! `/history` and draws the graphs as inline SVG; nothing here is generated per request.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("index.html");
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Every asset changes only with the binary; a short cache keeps an upgrade visible.
const CACHE: &str = "max-age=60";

pub fn html() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        HTML,
    )
        .into_response()
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        JS,
    )
        .into_response()
}
