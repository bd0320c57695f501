//! What the console's forms do. Each POST checks the CSRF token first,
//! then calls the same [`Service`](crate::service::Service) method as the
//! JSON API (same role checks, same audit records), leaves a one-line
//! result for the next page and redirects back (303), so a reload never
//! repeats an action.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

use super::session::{self, Flash, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::{MIN_REJECT_REASON_CHARS, SignedIn, csrf_refusal, layout};
use crate::api::AppState;
use crate::service::{Principal, ServiceError};

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// POST `/console/sign-in`: the token is checked exactly as the API
/// checks a bearer token; a session is made for its holder.
pub async fn sign_in(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let bound = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if let Some(r) = csrf_refusal(bound, &f.csrf, &headers) {
        return r;
    }
    let token = f.token.trim().to_string();
    let principal = match crate::api::principal_for_token(&s, &token).await {
        Ok(p) => p,
        Err(message) => {
            return (
                StatusCode::UNAUTHORIZED,
                layout::bare_page("Sign in", &format!("Not signed in: {message}")),
            )
                .into_response();
        }
    };
    start_session(&s, principal, "token")
}

/// A new session for `principal`: its cookie, and the first page.
pub fn start_session(s: &AppState, principal: Principal, via: &str) -> Response {
    let now = s.service.now();
    let Some(cookie) = s.console.sessions.create(principal, via, now) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            layout::bare_page("Sign in", "no OS randomness: cannot make a session"),
        )
            .into_response();
    };
    let max_age = s.console.sessions.ttl_ms / 1000;
    let secure = s.console.secure_cookies;
    let mut resp = Redirect::to("/console/").into_response();
    let h = resp.headers_mut();
    for c in [
        session::set_cookie(SESSION_COOKIE, &cookie, max_age, secure),
        session::set_cookie(SIGN_IN_COOKIE, "", 0, secure),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// POST `/console/sign-out`.
pub async fn sign_out(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = csrf_refusal(&who.session.csrf, &f.csrf, &headers) {
        return r;
    }
    s.console.sessions.remove(&who.token);
    let gone = session::set_cookie(SESSION_COOKIE, "", 0, s.console.secure_cookies);
    (
        [(header::SET_COOKIE, gone)],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

/// The form of a grant action; `reason` for reject and revoke.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// POST `/console/grants/{id}/{approve|reject|release|revoke}`.
pub async fn grant_action(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&who.session.csrf, &f.csrf, &headers) {
        return r;
    }
    let back = match action.as_str() {
        "approve" | "reject" => "/console/approvals",
        "release" => "/console/requests",
        "revoke" => "/console/admin",
        _ => {
            return (
                StatusCode::NOT_FOUND,
                layout::bare_page("Not found", "no such grant action"),
            )
                .into_response();
        }
    };
    let reason = f.reason.trim().to_string();
    if action == "reject" && reason.chars().count() < MIN_REJECT_REASON_CHARS {
        return done(
            &s,
            &who,
            back,
            Err(ServiceError::BadRequest {
                field: "reason".into(),
                message: format!(
                    "a rejection needs a reason of at least {MIN_REJECT_REASON_CHARS} characters"
                ),
            }),
        );
    }
    if action == "revoke" && reason.is_empty() {
        return done(
            &s,
            &who,
            back,
            Err(ServiceError::BadRequest {
                field: "reason".into(),
                message: "a revocation needs a reason".into(),
            }),
        );
    }
    let p = who.session.principal.clone();
    let svc = s.service.clone();
    let act = action.clone();
    let result = tokio::task::spawn_blocking(move || match act.as_str() {
        "approve" => svc.approve(&p, &id),
        "reject" => svc.reject(&p, &id, Some(&reason)),
        "release" => svc.release(&p, &id),
        _ => svc.revoke(&p, &id, Some(&reason)),
    })
    .await
    .map_err(|e| ServiceError::Unavailable(e.to_string()))
    .and_then(|r| r);
    let result = result.map(|g| {
        let past = match action.as_str() {
            "approve" => "Approved",
            "reject" => "Rejected",
            "release" => "Released",
            _ => "Revoked",
        };
        format!("{past} {}: it is now {}.", g.id, g.state.as_str())
    });
    done(&s, &who, back, result)
}

/// The close-review form.
#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

/// POST `/console/reviews/{id}/close`.
pub async fn close_review(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CloseForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&who.session.csrf, &f.csrf, &headers) {
        return r;
    }
    let p = who.session.principal.clone();
    let svc = s.service.clone();
    let rid = id.clone();
    let result = tokio::task::spawn_blocking(move || svc.close_review(&p, &rid, f.note.trim()))
        .await
        .map_err(|e| ServiceError::Unavailable(e.to_string()))
        .and_then(|r| r)
        .map(|()| format!("Closed review {id}."));
    done(&s, &who, "/console/reviews", result)
}

/// Leave the outcome for the next page and go back there.
fn done(
    s: &AppState,
    who: &SignedIn,
    back: &str,
    result: Result<String, ServiceError>,
) -> Response {
    let flash = match result {
        Ok(text) => Flash { kind: "ok", text },
        Err(e) => Flash {
            kind: "error",
            text: e.to_string(),
        },
    };
    s.console.sessions.flash(&who.token, flash);
    Redirect::to(back).into_response()
}
