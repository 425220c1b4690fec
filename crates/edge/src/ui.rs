//! The web UI: a chat widget and an agent console, plain HTML, CSS and JavaScript with no
//! build step, compiled into the binary.
//!
//! Every response carries the same guards: a Content-Security-Policy that lets the pages run
//! only the scripts and styles served here (nothing inline, no `eval`) and connect only back
//! to this origin; `X-Content-Type-Options: nosniff`; `Referrer-Policy: no-referrer`. The
//! agent pages may be framed only by this origin (`frame-ancestors 'self'`); the widget by
//! this origin and the sites of `edge.widget_frame_ancestors`. (A page does not know its tenant
//! when it is served — the token stays in the URL fragment — so the list is the instance's.)

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::EdgeConfig;
use crate::server::{EdgeError, Shared};

const INDEX: &str = include_str!("../static/index.html");
const WIDGET: &str = include_str!("../static/widget.html");
const CONSOLE: &str = include_str!("../static/console.html");
const CLIENT: &str = include_str!("../static/switchboard.js");
const WIDGET_JS: &str = include_str!("../static/widget.js");
const CONSOLE_JS: &str = include_str!("../static/console.js");
const WIDGET_CSS: &str = include_str!("../static/widget.css");
const CONSOLE_CSS: &str = include_str!("../static/console.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// What every page allows but framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'";

pub(crate) fn routes<H: Send + Sync + 'static>(
    config: &EdgeConfig,
) -> Result<Router<Arc<Shared<H>>>, EdgeError> {
    let agent = policy(&[])?;
    let widget = policy(&config.widget_frame_ancestors)?;
    let serve = |policy: &HeaderValue, kind: &'static str, body: &'static str| {
        let policy = policy.clone();
        get(move || async move { guarded(&policy, kind, body) })
    };
    Ok(Router::new()
        .route("/", serve(&agent, HTML, INDEX))
        .route("/console", serve(&agent, HTML, CONSOLE))
        .route("/console.js", serve(&agent, JS, CONSOLE_JS))
        .route("/console.css", serve(&agent, CSS, CONSOLE_CSS))
        .route("/widget", serve(&widget, HTML, WIDGET))
        .route("/widget.js", serve(&widget, JS, WIDGET_JS))
        .route("/widget.css", serve(&widget, CSS, WIDGET_CSS))
        .route("/switchboard.js", serve(&agent, JS, CLIENT)))
}

/// The Content-Security-Policy with `frame-ancestors 'self'` and `ancestors`. An ancestor
/// is a CSP source expression (`https://shop.example`, `https://*.example`); one that could
/// change the policy's meaning is refused.
fn policy(ancestors: &[String]) -> Result<HeaderValue, EdgeError> {
    let mut value = format!("{POLICY}; frame-ancestors 'self'");
    for ancestor in ancestors {
        let safe = !ancestor.is_empty()
            && !ancestor.contains(['\'', ';', ',', '"'])
            && !ancestor
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !safe {
            return Err(EdgeError::Config(format!(
                "edge.widget_frame_ancestors: {ancestor:?} is not a CSP source"
            )));
        }
        value.push(' ');
        value.push_str(ancestor);
    }
    HeaderValue::try_from(value).map_err(|e| EdgeError::Config(e.to_string()))
}

fn guarded(policy: &HeaderValue, kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_SECURITY_POLICY, policy.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_may_be_framed_by_the_configured_sites_and_nothing_else_by_others() {
        let agent = policy(&[]).unwrap();
        assert!(agent.to_str().unwrap().ends_with("frame-ancestors 'self'"));
        let widget = policy(&["https://shop.example".to_owned()]).unwrap();
        assert!(
            widget
                .to_str()
                .unwrap()
                .ends_with("frame-ancestors 'self' https://shop.example")
        );
        for bad in ["x; script-src *", "'unsafe-inline'", "a b", ""] {
            assert!(policy(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_page_carries_an_inline_script_style_or_handler() {
        for page in [INDEX, WIDGET, CONSOLE] {
            assert!(!page.contains("<script>"), "{page}");
            assert!(!page.contains("<style"), "{page}");
            assert!(!page.contains(" style="), "{page}");
            let handler = page.split(" on").skip(1).any(|rest| {
                let name = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
                name.len() < rest.len() && name.starts_with('=')
            });
            assert!(!handler, "an inline event handler in {page}");
        }
    }
}
