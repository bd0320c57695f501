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

use super::session::{self, Flash, LOGIN_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE};
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

/// GET `/console/sign-in/{provider}`: begin the authorization-code flow
/// and send the browser to the provider.
pub async fn idp_sign_in(State(s): State<Arc<AppState>>, Path(provider): Path<String>) -> Response {
    let started = s
        .login
        .start(&provider)
        .and_then(|(url, pending)| Ok((url, s.pending_logins.put(pending)?)));
    match started {
        Ok((url, id)) => {
            let ttl = s.login.pending_ttl().as_secs() as i64;
            let cookie = session::set_lax_cookie(LOGIN_COOKIE, &id, ttl, s.console.secure_cookies);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            layout::bare_page("Sign in", &format!("Cannot sign in with `{provider}`: {e}")),
        )
            .into_response(),
    }
}

/// The provider's answer on `redirect-uri`.
#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// GET `/console/callback`: finish the flow begun in this browser (its
/// cookie names the pending sign-in, taken once) and start a session.
pub async fn idp_callback(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Query(cb): axum::extract::Query<Callback>,
) -> Response {
    let fail = |why: String| {
        let gone = session::set_lax_cookie(LOGIN_COOKIE, "", 0, s.console.secure_cookies);
        (
            StatusCode::UNAUTHORIZED,
            [(header::SET_COOKIE, gone)],
            layout::bare_page("Sign in", &format!("Not signed in: {why}")),
        )
            .into_response()
    };
    if let Some(e) = cb.error {
        let e: String = e.chars().filter(|c| !c.is_control()).take(100).collect();
        return fail(format!("the identity provider answered `{e}`"));
    }
    let Some(pending) =
        session::cookie(&headers, LOGIN_COOKIE).and_then(|id| s.pending_logins.take(id))
    else {
        return fail("no sign-in was begun in this browser, or it was already used".into());
    };
    let via = pending.provider.clone();
    match s.login.finish(&pending, &cb.code, &cb.state).await {
        Ok(principal) => {
            let mut resp = start_session(&s, principal, &via);
            let gone = session::set_lax_cookie(LOGIN_COOKIE, "", 0, s.console.secure_cookies);
            if let Ok(v) = gone.parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => fail(e.to_string()),
    }
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
    let result = super::pages::read(move || match act.as_str() {
        "approve" => svc.approve(&p, &id),
        "reject" => svc.reject(&p, &id, Some(&reason)),
        "release" => svc.release(&p, &id),
        _ => svc.revoke(&p, &id, Some(&reason)),
    })
    .await;
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
    let result = super::pages::read(move || svc.close_review(&p, &rid, f.note.trim()))
        .await
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
