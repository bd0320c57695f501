//! The pages of the people a grant is about: sign-in, the approver's
//! queue, and the requester's own grants.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;

use super::grant_card::{card, live_ticket};
use super::{answer, read, svc};
use crate::api::AppState;
use crate::console::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::console::{MIN_REJECT_REASON_CHARS, SignedIn, layout};
use crate::grant::GrantState;
use crate::service::Role;
use crate::store::GrantFilter;

/// Grants a queue or list shows at most (newest first).
const PAGE: usize = 200;

/// `/console/`: the first page the caller's roles give.
pub async fn home(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let now = s.service.now();
    let Some(sess) =
        session::cookie(&headers, SESSION_COOKIE).and_then(|t| s.console.sessions.get(t, now))
    else {
        return Redirect::to("/console/sign-in").into_response();
    };
    let roles = &sess.principal.roles;
    let to = if roles.contains(&Role::Approver) {
        "/console/approvals"
    } else if roles.contains(&Role::Auditor) {
        "/console/audit"
    } else if roles.contains(&Role::Admin) && !roles.contains(&Role::Requester) {
        "/console/admin"
    } else {
        "/console/requests"
    };
    Redirect::to(to).into_response()
}

/// `/console/sign-in`: a token (development, pipelines' people) or the
/// identity provider. The form is bound to a fresh double-submit cookie.
pub async fn sign_in(State(s): State<Arc<AppState>>) -> Response {
    let Some(nonce) = session::random_token() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            layout::bare_page("Sign in", "no OS randomness: cannot make a sign-in form"),
        )
            .into_response();
    };
    let providers: Vec<String> = s.login.providers().into_iter().map(String::from).collect();
    let body = html! {
        @if !providers.is_empty() {
            section aria-labelledby="idp" {
                h2 id="idp" { "With your identity provider" }
                ul.plain {
                    @for p in &providers {
                        li { a.button href={ "/console/sign-in/" (p) } { "Sign in with " (p) } }
                    }
                }
            }
        }
        section aria-labelledby="tok" {
            h2 id="tok" { "With a token" }
            p.hint { "An API token from jitgate.toml, or an identity provider's ID token (for development: "
                code { "jitgate dev-idp" } ")." }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(nonce);
                label for="token" { "Token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        }
    };
    let cookie = session::set_cookie(SIGN_IN_COOKIE, &nonce, 600, s.console.secure_cookies);
    (
        [(header::SET_COOKIE, cookie)],
        layout::bare("Sign in", body),
    )
        .into_response()
}

/// `/console/approvals`: every pending grant, each saying whether the
/// caller may approve it and, if not, why.
pub async fn approvals(State(s): State<Arc<AppState>>, who: SignedIn) -> Response {
    let p = who.session.principal.clone();
    let csrf = who.session.csrf.clone();
    let svc = svc(&s);
    let body = read(move || {
        let now = svc.now();
        let filter = GrantFilter {
            state: Some(GrantState::Pending),
            limit: PAGE,
            ..GrantFilter::default()
        };
        let grants = svc.grants(&p, filter)?;
        Ok(html! {
            @if grants.is_empty() {
                p.empty { "Nothing waits for an approval." }
            }
            @for g in &grants {
                @let blocker = svc.approval_blocker(&p, g);
                @let ticket = live_ticket(&svc, g);
                article.grant id={ "grant-" (g.id) } aria-labelledby={ "h-" (g.id) } {
                    h2 id={ "h-" (g.id) } { (g.request.task) " for " (g.request.subject.id) " " span.id { (g.id) } }
                    (card(g, ticket.as_ref(), now))
                    (approval_actions(&csrf, &g.id, blocker.as_deref()))
                }
            }
        })
    })
    .await;
    answer(&who, "Approvals", "/console/approvals", body)
}

/// Approve and reject forms, or why the caller cannot approve.
pub(super) fn approval_actions(csrf: &str, id: &str, blocker: Option<&str>) -> Markup {
    html! {
        @match blocker {
            Some(why) => p.cannot role="note" { "You cannot approve this: " (why) },
            None => div.actions {
                form method="post" action={ "/console/grants/" (id) "/approve" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button.approve type="submit" { "Approve" }
                }
                form.reject method="post" action={ "/console/grants/" (id) "/reject" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for={ "reason-" (id) } { "Reason for rejecting (at least " (MIN_REJECT_REASON_CHARS) " characters)" }
                    textarea id={ "reason-" (id) } name="reason" rows="2" {}
                    button.reject type="submit" { "Reject" }
                }
            },
        }
    }
}

/// The release button of an active grant (its holder's).
pub(super) fn release_action(csrf: &str, g: &crate::grant::Grant) -> Markup {
    html! {
        @if matches!(g.state, GrantState::Active | GrantState::Provisioning) {
            form method="post" action={ "/console/grants/" (g.id) "/release" } {
                input type="hidden" name="csrf" value=(csrf);
                button.release type="submit" { "Release now" }
            }
        }
    }
}

/// `/console/requests`: the caller's own grants, with expiry countdowns
/// and a release button on those still active.
pub async fn my_requests(State(s): State<Arc<AppState>>, who: SignedIn) -> Response {
    let p = who.session.principal.clone();
    let csrf = who.session.csrf.clone();
    let svc = svc(&s);
    let body = read(move || {
        let now = svc.now();
        let filter = GrantFilter {
            subject: Some(p.name.clone()),
            limit: PAGE,
            ..GrantFilter::default()
        };
        let grants = svc.grants(&p, filter)?;
        Ok(html! {
            @if grants.is_empty() {
                p.empty { "You have asked for nothing yet." }
            }
            @for g in &grants {
                @let ticket = live_ticket(&svc, g);
                article.grant id={ "grant-" (g.id) } aria-labelledby={ "h-" (g.id) } {
                    h2 id={ "h-" (g.id) } { (g.request.task) " on " (g.request.resource) " " span.id { (g.id) } }
                    (card(g, ticket.as_ref(), now))
                    @if !g.approvals.is_empty() {
                        p.approved-by { "Approved by "
                            @for (i, a) in g.approvals.iter().enumerate() {
                                @if i > 0 { ", " } (a.approver)
                            }
                        }
                    }
                    (release_action(&csrf, g))
                }
            }
        })
    })
    .await;
    answer(&who, "My requests", "/console/requests", body)
}
