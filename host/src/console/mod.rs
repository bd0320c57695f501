//! The web console `jitgate serve` answers at `/`: approvers approve,
//! requesters follow and release their grants, auditors search, read the
//! evidence, close break-glass reviews and take the access review, admins
//! see the policy set and revoke.
//!
//! Server-rendered HTML (maud escapes every interpolated value), one
//! stylesheet and one small script, both embedded in the binary and
//! served from here: the content security policy allows no inline script
//! or style and no other origin. Every action is a plain form POST that
//! carries the session's CSRF token and ends in a redirect (so reloading
//! a page never repeats an action); every action goes through the same
//! [`Service`](crate::service::Service) calls, role checks and audit
//! records as the JSON API.

mod actions;
mod layout;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use crate::api::AppState;
pub use session::{Flash, Session, Sessions};

/// Longest a console session lasts unless configured (`[console]
/// session-minutes`).
pub const DEFAULT_SESSION_MINUTES: i64 = 8 * 60;
/// Shortest reason a rejection needs, in characters.
pub const MIN_REJECT_REASON_CHARS: usize = 10;

/// The console's own state: its sessions and whether cookies are `Secure`.
pub struct Console {
    /// Signed-in sessions.
    pub sessions: Sessions,
    /// Cookies carry `Secure` (the service speaks TLS, or sits behind a
    /// proxy that does).
    pub secure_cookies: bool,
}

impl Console {
    /// A console whose sessions last `session_minutes`.
    pub fn new(session_minutes: i64, secure_cookies: bool) -> Self {
        Console {
            sessions: Sessions::new(session_minutes.saturating_mul(60_000)),
            secure_cookies,
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new(DEFAULT_SESSION_MINUTES, false)
    }
}

/// The console's routes (merged into the service's router).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(pages::sign_in).post(actions::sign_in),
        )
        .route("/console/sign-in/{provider}", get(actions::idp_sign_in))
        .route("/console/callback", get(actions::idp_callback))
        .route("/console/sign-out", post(actions::sign_out))
        .route("/console/approvals", get(pages::approvals))
        .route("/console/requests", get(pages::my_requests))
        .route("/console/audit", get(pages::audit))
        .route("/console/grants/{id}", get(pages::grant_evidence))
        .route("/console/grants/{id}/{action}", post(actions::grant_action))
        .route("/console/reviews", get(pages::reviews))
        .route("/console/reviews/{id}/close", post(actions::close_review))
        .route("/console/admin", get(pages::admin))
        .route("/console/access-review", get(pages::access_review))
        .route("/console/access-review.csv", get(pages::access_review_csv))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/assets/icon.svg", get(icon))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every console answer: no inline script or style, no framing, no other
/// origin, no caching of pages that show who may do what.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
    // `Origin: null` on the console's own form posts, which the origin
    // check must refuse (an attacker's sandboxed frame sends it too).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

async fn icon() -> Response {
    asset("image/svg+xml", include_str!("assets/icon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A signed-in caller: their session and its cookie value. Pages that
/// need one send everybody else to the sign-in page.
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// The cookie value (to leave a flash message).
    pub token: String,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let now = state.service.now();
        session::cookie(&parts.headers, session::SESSION_COOKIE)
            .and_then(|t| {
                state.console.sessions.get(t, now).map(|s| SignedIn {
                    session: s,
                    token: t.to_string(),
                })
            })
            .ok_or_else(|| Redirect::to("/console/sign-in").into_response())
    }
}

/// The refusal of a state-changing POST whose form lacks this session's
/// CSRF token, or that says it comes from another origin; `None` lets it
/// through.
fn csrf_refusal(expected: &str, sent: &str, headers: &HeaderMap) -> Option<Response> {
    if !same_origin(headers) {
        return Some(refused("this form was sent from another site"));
    }
    if !session::same_secret(expected, sent) {
        return Some(refused(
            "the form's CSRF token is missing or wrong: reload the page and try again",
        ));
    }
    None
}

/// `Origin` (sent by browsers on every POST) names this host, or is
/// absent (a non-browser client; the CSRF token still decides).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

fn refused(why: &str) -> Response {
    (StatusCode::FORBIDDEN, layout::bare_page("Refused", why)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_name_this_host_when_sent() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h), "no Origin: a non-browser client");
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:9999".parse().unwrap());
        assert!(!same_origin(&h), "another port is another origin");
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h), "an opaque origin is refused");
    }
}
