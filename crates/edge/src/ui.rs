//! The web UI: a chat widget and an agent console, plain HTML and JavaScript with no build
//! step, compiled into the binary.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::server::{Shared, html};

const INDEX: &str = include_str!("../static/index.html");
const WIDGET: &str = include_str!("../static/widget.html");
const CONSOLE: &str = include_str!("../static/console.html");
const CLIENT: &str = include_str!("../static/switchboard.js");

pub(crate) fn routes<H: Send + Sync + 'static>() -> Router<Arc<Shared<H>>> {
    Router::new()
        .route("/", get(|| async { html(INDEX) }))
        .route("/widget", get(|| async { html(WIDGET) }))
        .route("/console", get(|| async { html(CONSOLE) }))
        .route("/switchboard.js", get(|| async { script() }))
}

fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CLIENT,
    )
}
