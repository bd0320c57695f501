//! The HTTP API (`jitgate serve`): JSON under `/v1`, bearer-token auth, one
//! error shape `{"error": {"code", "message", "field"?}}`.
//!
//! Handlers are thin: authenticate, read a size-limited body, call the
//! [`Service`] on a blocking thread (the store is synchronous), map the
//! result. Every authentication failure is counted and audited, per client
//! address per window, and rate-limited (`guard`); the server's
//! connection limits are in `server` ([`HttpLimits`]).
//!
//! One file past 500 lines: the route table and its handlers, each a few lines of translation; the table is only checkable beside them.

mod app;
mod extract;
pub(crate) mod guard;
pub mod openapi;
pub(crate) mod server;
pub mod tls;

pub use app::{Running, Server, ServerError};
pub(crate) use extract::principal_for_token;
use extract::{JsonBody, JsonValue, OptionalJsonBody, QueryOf};
pub use guard::AuthLimits;
pub use server::HttpLimits;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::answer;
use crate::decision::Decision;
use crate::grant::{Grant, GrantState};
use crate::service::{Principal, Service, ServiceError};
use crate::store::GrantFilter;
use openapi::{
    AuditPage, AuthErrors, AuthErrorsNoBody, Closed, ErrorBody, ErrorDetail, Evidence, GrantPage,
    PolicySetAnswer, PolicyStatus, RequestBody, Reviews, TicketAnswer, TicketEventAnswer,
    VerifyReport,
};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of the HTTP layer.
pub struct AppState {
    /// The service.
    pub service: Arc<Service>,
    /// sha256(token) hex → principal.
    pub principals: BTreeMap<String, Principal>,
    /// Set once start-up (overdue sweep) is done.
    pub ready: AtomicBool,
    /// Rate limit and audit tallies of failed authentications.
    pub auth_guard: Arc<guard::AuthGuard>,
    /// `[[identity-providers]]`: bearer JWTs of people.
    pub identities: Arc<crate::identity::IdentityProviders>,
    /// The web console's sessions and settings.
    pub console: Arc<crate::console::Console>,
    /// Console sign-in (authorization code + PKCE) through the
    /// `[[identity-providers]]` that configure it; disabled when none does.
    pub login: Arc<crate::identity::LoginFlow>,
    /// Begun console sign-ins awaiting their callback.
    pub pending_logins: Arc<crate::identity::PendingLogins>,
    /// Whether the server speaks HTTPS (`[http] tls-cert` and `tls-key`):
    /// the console marks its cookies `Secure` when it does.
    pub tls: bool,
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn field(mut self, f: impl Into<String>) -> Self {
        self.field = Some(f.into());
        self
    }
}

/// Why a request was refused with 403, for the audit middleware.
#[derive(Debug, Clone)]
struct Refusal(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refusal = (self.status == StatusCode::FORBIDDEN).then(|| Refusal(self.message.clone()));
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        if let Some(r) = refusal {
            resp.extensions_mut().insert(r);
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let msg = e.to_string();
        match e {
            ServiceError::Invalid(r) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                r.message,
            )
            .field(r.field),
            ServiceError::BadRequest { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message).field(field)
            }
            ServiceError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not-found", m),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::IllegalTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "illegal-transition", msg)
            }
            ServiceError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            ServiceError::Busy(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", m).retry_after(1)
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// The documented `/v1` routes: each handler registered from its
/// `#[utoipa::path]`, so the OpenAPI document and the router share one
/// source ([`openapi`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(decide))
        .routes(routes!(request))
        .routes(routes!(list_grants))
        .routes(routes!(get_grant))
        .routes(routes!(evidence))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(revoke))
        .routes(routes!(release))
        .routes(routes!(get_ticket))
        .routes(routes!(ticket_source_event))
        .routes(routes!(audit_page))
        .routes(routes!(audit_verify))
        .routes(routes!(access_review))
        .routes(routes!(policies))
        .routes(routes!(reload_policies))
        .routes(routes!(rollback_policies))
        .routes(routes!(reviews))
        .routes(routes!(close_review))
        .routes(routes!(openapi_document))
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    let (documented, _) = routes().split_for_parts();
    documented
        .merge(crate::console::router())
        .route("/v1/grants/{id}/{action}", post(unknown_action))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_refusals,
        ))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
        })
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .with_state(state)
}

/// This API's OpenAPI 3.1 document, made once (it is the same for the
/// whole life of the binary).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    description = "This document (OpenAPI 3.1), as committed in docs/openapi.json. No token needed: it describes the interface, never data. Roles: none.",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")),
    extensions(("x-jitgate-roles" = json!(["none"])))
)]
async fn openapi_document() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOC.get_or_init(openapi::json).clone(),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The principal a request's bearer token names, if any.
fn principal_of<'a>(state: &'a AppState, headers: &HeaderMap) -> Option<&'a Principal> {
    let token = bearer(headers)?;
    state
        .principals
        .get(&hex::encode(Sha256::digest(token.as_bytes())))
}

/// The name of an already verified identity-provider token's holder (from
/// the verified-token cache only: no signature check, no JWKS fetch).
fn verified_name(state: &AppState, token: &str) -> Option<String> {
    let key = crate::identity::VerifiedTokens::key(token);
    let now = jsonwebtoken::get_current_timestamp();
    state.identities.cache().get(&key, now).map(|id| id.subject)
}

/// Every 403 is audited (who, what, why), through group commit: a refused
/// attempt by an authenticated caller is evidence, like an unknown token.
/// A route layer, so the matched route (not only the raw path) is known.
async fn audit_refusals(
    State(s): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().to_string();
    // The raw path carries caller-chosen ids: bounded, and JSON-escaped in
    // the record like every other string.
    let path: String = req.uri().path().chars().take(256).collect();
    // A console page is asked for with a session cookie, not a token.
    let actor = principal_of(&s, req.headers())
        .map(|p| p.name.clone())
        .or_else(|| {
            let cookie = crate::console::session::cookie(
                req.headers(),
                crate::console::session::SESSION_COOKIE,
            )?;
            s.console.sessions.holder(cookie, s.service.now())
        });
    // An identity-provider caller is known once its token was verified,
    // which happens inside the handler; a refusal reads it from the cache.
    let token = match actor {
        None if !s.identities.is_empty() => bearer(req.headers()).map(str::to_string),
        _ => None,
    };
    let resp = next.run(req).await;
    if resp.status() == StatusCode::FORBIDDEN {
        let actor = actor
            .or_else(|| token.and_then(|t| verified_name(&s, &t)))
            .unwrap_or_else(|| "anonymous".into());
        // Bounded per caller: past its allowance a refusal is only counted
        // into the window's record for it (guard.rs).
        let own_record = s.auth_guard.refusal(
            &actor,
            route.as_deref().unwrap_or(&path),
            std::time::Instant::now(),
            s.service.now(),
        );
        if !own_record {
            return resp;
        }
        let why = resp.extensions().get::<Refusal>().map(|r| r.0.clone());
        let draft = crate::audit::AuditDraft::new(
            s.service.now(),
            crate::audit::kind::AUTH_FAILURE,
            &actor,
            json!({"status": 403, "method": method, "route": route, "path": path, "reason": why}),
        );
        if let Err(e) = s.service.append_async(draft).await {
            s.service.metrics.audit_failures.inc();
            tracing::warn!(error = %e, "could not audit a 403 refusal");
        }
    }
    resp
}

/// Paths and query strings carry ids, ticket ids and filters into the
/// store, logs and audit records; a control character in one (a NUL cannot
/// even be stored by PostgreSQL) is refused before any handler runs.
async fn refuse_control_characters(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = req.uri();
    for (field, raw) in [("path", uri.path()), ("query", uri.query().unwrap_or(""))] {
        if percent_encoding::percent_decode_str(raw).any(|b| b < 0x20 || b == 0x7f) {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("the {field} contains a control character"),
            )
            .field(field)
            .into_response();
        }
    }
    next.run(req).await
}

/// The answer to a failed authentication, counted and tallied.
fn refuse(s: &AppState, peer: Option<std::net::IpAddr>, had_token: bool, path: &str) -> ApiError {
    let why = if had_token {
        "unknown token"
    } else {
        "no bearer token"
    };
    refuse_because(
        s,
        peer,
        why,
        format!("{why}: send `Authorization: Bearer <token>`"),
        path,
    )
}

/// [`refuse`] with the tally's `reason` and the 401's `message` given (an
/// identity-provider token's refusal says what was wrong with it).
fn refuse_because(
    s: &AppState,
    peer: Option<std::net::IpAddr>,
    why: &'static str,
    message: String,
    path: &str,
) -> ApiError {
    let verdict = s
        .auth_guard
        .failure(peer, why, path, std::time::Instant::now(), s.service.now());
    match verdict {
        guard::Verdict::Unauthorized => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
        guard::Verdict::Limited(secs) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many failed authentications from this address; retry in {secs} s"),
            );
            e.retry_after = Some(secs);
            e
        }
    }
}

/// Run `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(ApiError::from)
}

async fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    body_within(body, MAX_BODY, "request body").await
}

/// Read `body` up to `limit` bytes (`what` names it in the 413), under the
/// server's body deadline.
async fn body_within(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if server::is_too_large(&*e) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("{what} is larger than {limit} bytes"),
            )
        } else if server::is_body_timeout(&*e) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "the request body did not arrive within http.body-read-timeout-ms",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad-body", e.to_string()).field("body")
        }
    })
}

#[utoipa::path(
    post,
    path = "/v1/decisions",
    tag = "decisions",
    description = "Dry run: decide and explain; nothing is stored but the decision's audit record. Roles: requester (self), pipeline, admin.",
    request_body = RequestBody,
    responses(
        (status = 200, description = "The decision, every policy's verdict and reason", body = Decision),
        (status = 403, description = "`forbidden`: another subject, or a role that may not ask (audited)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`too-large`)", body = ErrorBody),
        (status = 422, description = "`invalid-request`: the request breaks a rule (field named)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["requester (self)", "pipeline", "admin"])))
)]
async fn decide(
    State(s): State<Arc<AppState>>,
    who: Principal,
    JsonValue(v): JsonValue,
) -> ApiResult {
    // The decision runs on the service's evaluator: see `Service::dry_run_async`.
    let d = s.service.dry_run_async(&who, v).await?;
    Ok(Json(d).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/requests",
    tag = "grants",
    description = "Decide and store a grant: `active`, `pending` (needs approvals), `denied`, or `provisioning`. The same id and body again answers the same grant (200); the same id with another body is 409. Roles: requester (self), pipeline, admin.",
    request_body = RequestBody,
    responses(
        (status = 201, description = "Decided and stored (`credential` once, for a dynamic database login)", body = Grant),
        (status = 200, description = "A replay: the grant stored for this id and body", body = Grant),
        (status = 403, description = "`forbidden`: another subject, or a role that may not ask (audited)", body = ErrorBody),
        (status = 409, description = "`conflict`: the id was used with another body", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`too-large`)", body = ErrorBody),
        (status = 422, description = "`invalid-request`: the request breaks a rule (field named)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["requester (self)", "pipeline", "admin"])))
)]
async fn request(
    State(s): State<Arc<AppState>>,
    who: Principal,
    JsonValue(v): JsonValue,
) -> ApiResult {
    // A ticket the registry does not know is asked of its system first.
    s.service.pull_unknown_ticket(&who, &v).await;
    let svc = s.service.clone();
    let (g, created) = blocking(move || svc.request(&who, &v)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer::grant(&g))).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GrantQuery {
    /// Only grants in this state (`pending`, `active`, `expired`, …).
    state: Option<String>,
    /// Only grants of this subject.
    subject: Option<String>,
    /// Only grants naming this ticket.
    ticket: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<usize>,
    /// The previous page's `next` (opaque).
    before: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/grants",
    tag = "grants",
    description = "Grants, newest first, filtered; `next` is the cursor for `before`. Roles: any (requesters: own grants only).",
    params(GrantQuery),
    responses(
        (status = 200, description = "A page of grants", body = GrantPage),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["any (requesters: own grants only)"])))
)]
async fn list_grants(
    State(s): State<Arc<AppState>>,
    who: Principal,
    QueryOf(q): QueryOf<GrantQuery>,
) -> ApiResult {
    let state = match &q.state {
        None => None,
        Some(st) => Some(GrantState::parse(st).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                format!("unknown state `{st}`"),
            )
            .field("state")
        })?),
    };
    let before = match &q.before {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad-query", "malformed cursor")
                        .field("before")
                })?,
        ),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = GrantFilter {
        state,
        subject: q.subject,
        ticket: q.ticket,
        limit,
        before,
    };
    let svc = s.service.clone();
    let grants = blocking(move || svc.grants(&who, filter)).await?;
    let next = (grants.len() == limit)
        .then(|| grants.last().map(|g| format!("{}_{}", g.created_at, g.id)))
        .flatten();
    Ok(Json(json!({"grants": answer::grants(&grants), "next": next})).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/grants/{id}",
    tag = "grants",
    description = "One grant. Roles: any (requesters: own grants only).",
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant", body = Grant),
        (status = 403, description = "`forbidden`: not the caller's grant (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["any (requesters: own grants only)"])))
)]
async fn get_grant(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let svc = s.service.clone();
    let g = blocking(move || svc.grant(&who, &id)).await?;
    Ok(Json(answer::grant(&g)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/grants/{id}/evidence",
    tag = "grants",
    description = "The grant and every audit record about it. Roles: auditor, admin.",
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The evidence", body = Evidence),
        (status = 403, description = "`forbidden`: not an auditor or admin (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["auditor", "admin"])))
)]
async fn evidence(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let svc = s.service.clone();
    let (g, records) = blocking(move || svc.evidence(&who, &id)).await?;
    Ok(
        Json(json!({"grant": answer::grant(&g), "audit": answer::audit_records(&records)}))
            .into_response(),
    )
}

/// The body of reject and revoke.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ReasonBody {
    /// Why (recorded with the grant and in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

/// The (optional) body of approve and release: nothing.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EmptyBody {}

/// Run one grant action on a blocking thread; answer the grant.
async fn act(
    s: &AppState,
    f: impl FnOnce(&Service) -> Result<crate::grant::Grant, ServiceError> + Send + 'static,
) -> ApiResult {
    let svc = s.service.clone();
    let g = blocking(move || f(&svc)).await?;
    Ok(Json(answer::grant(&g)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/grants/{id}/approve",
    tag = "grants",
    description = "Approve a pending grant: counts toward every requirement whose groups the approver is in; activates when all are met. After `lapses-at` the grant lapses instead (409). The body is empty or `{}`. Roles: approver in a required group, neither the subject nor the sender of the request.",
    request_body = Option<EmptyBody>,
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant, `pending`, `active` or `provisioning`", body = Grant),
        (status = 403, description = "`forbidden`: own request, or not in a required group (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        (status = 409, description = "`illegal-transition` or `conflict`: not pending, lapsed, or already approved by the caller", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["approver in a required group, neither the subject nor the sender of the request"])))
)]
async fn approve(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
    OptionalJsonBody(EmptyBody {}): OptionalJsonBody<EmptyBody>,
) -> ApiResult {
    act(&s, move |svc| svc.approve(&who, &id)).await
}

#[utoipa::path(
    post,
    path = "/v1/grants/{id}/release",
    tag = "grants",
    description = "End an active grant early. The body is empty or `{}`. Roles: the holder (requester), pipeline.",
    request_body = Option<EmptyBody>,
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant, `released` or `deprovisioning`", body = Grant),
        (status = 403, description = "`forbidden`: not the holder (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        (status = 409, description = "`illegal-transition`: not active", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["the holder (requester)", "pipeline"])))
)]
async fn release(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
    OptionalJsonBody(EmptyBody {}): OptionalJsonBody<EmptyBody>,
) -> ApiResult {
    act(&s, move |svc| svc.release(&who, &id)).await
}

#[utoipa::path(
    post,
    path = "/v1/grants/{id}/reject",
    tag = "grants",
    description = "Reject a pending grant. Roles: same as approve.",
    request_body = Option<ReasonBody>,
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant, `rejected`", body = Grant),
        (status = 403, description = "`forbidden`: own request, or not in a required group (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        (status = 409, description = "`illegal-transition`: not pending", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["same as approve"])))
)]
async fn reject(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
    OptionalJsonBody(b): OptionalJsonBody<ReasonBody>,
) -> ApiResult {
    act(&s, move |svc| svc.reject(&who, &id, b.reason.as_deref())).await
}

#[utoipa::path(
    post,
    path = "/v1/grants/{id}/revoke",
    tag = "grants",
    description = "End an active or pending grant (a provisioned one: `deprovisioning` until its removal reads back). Roles: admin.",
    request_body = Option<ReasonBody>,
    params(("id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant, `revoked` or `deprovisioning`", body = Grant),
        (status = 403, description = "`forbidden`: not an admin (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such grant", body = ErrorBody),
        (status = 409, description = "`illegal-transition`: already ended", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["admin"])))
)]
async fn revoke(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
    OptionalJsonBody(b): OptionalJsonBody<ReasonBody>,
) -> ApiResult {
    act(&s, move |svc| svc.revoke(&who, &id, b.reason.as_deref())).await
}

/// Any other action: authenticated first, like every route, then 404.
async fn unknown_action(_who: Principal, Path((_, action)): Path<(String, String)>) -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no grant action `{action}`"),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/tickets/{id}",
    tag = "tickets",
    description = "The ticket registry's ticket and the grants that name it. Roles: any (requesters: tickets of their own grants; else 403 whether or not it exists).",
    params(("id" = String, Path, description = "The ticket's id")),
    responses(
        (status = 200, description = "The ticket", body = TicketAnswer),
        (status = 403, description = "`forbidden`: not a ticket of the caller's grants (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: unknown ticket", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["any (requesters: tickets of their own grants; else 403 whether or not it exists)"])))
)]
async fn get_ticket(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let svc = s.service.clone();
    let (t, grants) = blocking(move || svc.ticket(&who, &id)).await?;
    Ok(Json(crate::service::ticket_json(&t, &grants)).into_response())
}

/// A ticket system's webhook. No bearer token: the source's own signature
/// scheme, checked by the service over the raw bytes before any parsing.
/// Its body limit is the ticket module's, not [`MAX_BODY`] (Jira issue
/// payloads are larger than API requests).
#[utoipa::path(
    post,
    path = "/v1/ticket-sources/{name}/events",
    tag = "tickets",
    description = "A ticket system's webhook, applied to the ticket registry; a ticket turning closed (or resolved, per source) revokes the grants that end with it. The body is the ticket system's own (Jira, ServiceNow, Zendesk, or the generic shape). Roles: none: the source's own signature over the raw body (docs/tickets.md).",
    params(("name" = String, Path, description = "The `[[ticket-sources]]` name")),
    security(()),
    responses(
        (status = 200, description = "What the event did", body = TicketEventAnswer),
        (status = 400, description = "A shape not understood (`bad-ticket-event`, field named)", body = ErrorBody),
        (status = 401, description = "A bad or missing signature (`unauthenticated`, counted with failed authentications)", body = ErrorBody),
        (status = 404, description = "`not-found`: no such ticket source", body = ErrorBody),
        (status = 413, description = "Over 1 MiB (`too-large`)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`rate-limited`, `Retry-After`)", body = ErrorBody),
        (status = 503, description = "The store or audit log is unavailable (`unavailable`), or every decision worker is busy (`busy`, `Retry-After: 1`)", body = ErrorBody)
    ),
    extensions(("x-jitgate-roles" = json!(["none: the source's own signature over the raw body (docs/tickets.md)"])))
)]
async fn ticket_source_event(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    use crate::service::WebhookError;
    use crate::ticket::{MAX_EVENT_BYTES, TicketError};
    // An unknown source is answered before its body is read.
    if s.service.ticket_source(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no ticket source `{name}`"),
        ));
    }
    let bytes = body_within(body, MAX_EVENT_BYTES, "ticket event").await?;
    let svc = s.service.clone();
    let source = name.clone();
    let answer = tokio::task::spawn_blocking(move || svc.ticket_webhook(&source, &headers, &bytes))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match answer {
        Ok(outcome) => {
            let mut body = json!({"result": outcome.as_str(), "ticket": outcome.current().map(answer::ticket)});
            if let crate::store::TicketOutcome::Applied { revoked, .. } = &outcome {
                body["revoked"] = json!(revoked);
            }
            Ok(Json(body).into_response())
        }
        Err(WebhookError::UnknownSource(n)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no ticket source `{n}`"),
        )),
        Err(WebhookError::Rejected(TicketError::Auth(e))) => Err(refuse_because(
            &s,
            server::peer().map(|a| a.ip()),
            "ticket source signature refused",
            format!("ticket source `{name}`: {e}"),
            "/v1/ticket-sources/{name}/events",
        )),
        Err(WebhookError::Rejected(e @ TicketError::TooLarge { .. })) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            e.to_string(),
        )),
        Err(WebhookError::Rejected(TicketError::Event(e))) => {
            Err(
                ApiError::new(StatusCode::BAD_REQUEST, "bad-ticket-event", e.message)
                    .field(e.field),
            )
        }
        Err(WebhookError::Service(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Records after this seq (the previous page's `next`; default 0).
    after: Option<i64>,
    /// Page size, 1–1,000 (default 100).
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    description = "Audit records in order, a page at a time. Roles: auditor, admin.",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 403, description = "`forbidden`: not an auditor or admin (audited)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["auditor", "admin"])))
)]
async fn audit_page(
    State(s): State<Arc<AppState>>,
    who: Principal,
    QueryOf(q): QueryOf<AuditQuery>,
) -> ApiResult {
    let svc = s.service.clone();
    let limit = q
        .limit
        .unwrap_or(100)
        .clamp(1, crate::service::MAX_AUDIT_PAGE);
    let records = blocking(move || svc.audit_page(&who, q.after.unwrap_or(0), limit)).await?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({"records": answer::audit_records(&records), "next": next})).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    description = "Walk the whole hash chain; every bad record is reported. Roles: auditor, admin.",
    responses(
        (status = 200, description = "The report", body = VerifyReport),
        (status = 403, description = "`forbidden`: not an auditor or admin (audited)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["auditor", "admin"])))
)]
async fn audit_verify(State(s): State<Arc<AppState>>, who: Principal) -> ApiResult {
    let svc = s.service.clone();
    let r = blocking(move || svc.audit_verify(&who)).await?;
    // `error` (the first fault) is kept for existing clients; `bad` lists
    // every fault (up to audit::MAX_LISTED; `bad-count` counts them all).
    let mut body = json!({
        "ok": r.ok(),
        "checked": r.checked,
        "bad-count": r.bad_count,
        "bad": r.bad.iter().map(|e| json!({"seq": e.seq(), "error": e.to_string()})).collect::<Vec<_>>(),
    });
    if let Some(first) = r.bad.first() {
        body["error"] = json!(first.to_string());
    }
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AccessReviewQuery {
    /// Start of the window, inclusive (RFC 3339).
    since: Option<String>,
    /// End of the window, exclusive (RFC 3339).
    until: Option<String>,
    /// `json` (the default) or `csv` (states, totals by task, chain; cells
    /// made safe for spreadsheets and terminals).
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/reports/access-review",
    tag = "audit",
    description = "Access review: every elevated state in `[since, until)` and why (subject, task, resource, ticket, justification, the policies' verdicts, approvers, activation, duration, how it ended, revocation lag), totals by task, and whether the audit chain verified; built from the chain, read whole. Roles: auditor, admin.",
    params(AccessReviewQuery),
    responses(
        (status = 200, description = "The report (a broken chain is reported in `chain`, not as an error)",
            content((crate::review::AccessReview = "application/json"), (String = "text/csv"))),
        (status = 400, description = "`since` or `until` missing, not RFC 3339, or not in order; `format` not `json` or `csv` (`bad-request`, field named)", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an auditor or admin (audited)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["auditor", "admin"])))
)]
async fn access_review(
    State(s): State<Arc<AppState>>,
    who: Principal,
    QueryOf(q): QueryOf<AccessReviewQuery>,
) -> ApiResult {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            // A caller without the role learns only that (403, audited).
            who.require_any(&[crate::service::Role::Auditor, crate::service::Role::Admin])?;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "must be `json` or `csv`",
            )
            .field("format"));
        }
    };
    let svc = s.service.clone();
    let report =
        blocking(move || svc.access_review(&who, q.since.as_deref(), q.until.as_deref())).await?;
    if csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"access-review.csv\"",
                ),
            ],
            report.to_csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/policies",
    tag = "policies",
    description = "The loaded policies, the running set, the last refused reload candidate. Roles: any.",
    responses(
        (status = 200, description = "The policy status", body = PolicyStatus),
        (status = 400, description = "A malformed body, path or query (`bad-request`, `bad-json`, `bad-query`, `bad-body`), field named", body = ErrorBody),
        (status = 401, description = "No or unknown bearer token, or a refused identity-provider token (`unauthenticated`)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`rate-limited`, `Retry-After`)", body = ErrorBody)
    ),
    extensions(("x-jitgate-roles" = json!(["any"])))
)]
async fn policies(State(s): State<Arc<AppState>>, who: Principal) -> ApiResult {
    let mut v = s.service.policy_status(&who);
    v["policies"] = json!(s.service.policies(&who));
    Ok(Json(v).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/policies/reload",
    tag = "policies",
    description = "Load the policy folder afresh and swap it in (audited); a set that fails to load, verify, or pass its fixtures is refused and the running set stays. Roles: admin.",
    responses(
        (status = 200, description = "The set now running", body = PolicySetAnswer),
        (status = 400, description = "The candidate was refused (`bad-request`, field `policies`)", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (audited)", body = ErrorBody),
        AuthErrorsNoBody
    ),
    extensions(("x-jitgate-roles" = json!(["admin"])))
)]
async fn reload_policies(State(s): State<Arc<AppState>>, who: Principal) -> ApiResult {
    let svc = s.service.clone();
    let set_of = svc.clone();
    let loaded = blocking(move || svc.reload_policies(&who)).await?;
    let set = set_of.engine().policy_set().clone();
    Ok(Json(json!({"policies": loaded, "set": answer::set_info(&set)})).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/policies/rollback",
    tag = "policies",
    description = "Return to the set that ran before the last accepted reload (in memory; audited). Roles: admin.",
    responses(
        (status = 200, description = "The set now running", body = PolicySetAnswer),
        (status = 403, description = "`forbidden`: not an admin (audited)", body = ErrorBody),
        (status = 409, description = "`conflict`: nothing to roll back to", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["admin"])))
)]
async fn rollback_policies(State(s): State<Arc<AppState>>, who: Principal) -> ApiResult {
    let svc = s.service.clone();
    let set = blocking(move || svc.rollback_policies(&who)).await?;
    let policies: Vec<_> = s.service.engine().policies().cloned().collect();
    Ok(Json(json!({"policies": policies, "set": answer::set_info(&set)})).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReviewQuery {
    /// Only reviews still open.
    open: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    description = "Break-glass review items. Roles: auditor, admin.",
    params(ReviewQuery),
    responses(
        (status = 200, description = "The reviews", body = Reviews),
        (status = 403, description = "`forbidden`: not an auditor or admin (audited)", body = ErrorBody),
        AuthErrors
    ),
    extensions(("x-jitgate-roles" = json!(["auditor", "admin"])))
)]
async fn reviews(
    State(s): State<Arc<AppState>>,
    who: Principal,
    QueryOf(q): QueryOf<ReviewQuery>,
) -> ApiResult {
    let svc = s.service.clone();
    let list = blocking(move || svc.reviews(&who, q.open.unwrap_or(false))).await?;
    Ok(
        Json(json!({"reviews": list.iter().map(answer::review).collect::<Vec<_>>()}))
            .into_response(),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct CloseReview {
    /// The auditor's note (not empty).
    note: String,
}

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/close",
    tag = "reviews",
    description = "Close a break-glass review with a note (audited). Roles: auditor.",
    request_body = CloseReview,
    params(("id" = String, Path, description = "The review's id")),
    responses(
        (status = 200, description = "Closed", body = Closed),
        (status = 400, description = "An empty note (`bad-request`, field `note`) or a malformed body", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an auditor (audited)", body = ErrorBody),
        (status = 404, description = "`not-found`: no open review of that id", body = ErrorBody),
        AuthErrorsNoBody
    ),
    extensions(("x-jitgate-roles" = json!(["auditor"])))
)]
async fn close_review(
    State(s): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CloseReview>,
) -> ApiResult {
    let svc = s.service.clone();
    blocking(move || svc.close_review(&who, &id, &b.note)).await?;
    Ok(Json(json!({"closed": true})).into_response())
}

async fn metrics(State(s): State<Arc<AppState>>) -> ApiResult {
    let svc = s.service.clone();
    let text = blocking(move || svc.metrics_text()).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

async fn readyz(State(s): State<Arc<AppState>>) -> ApiResult {
    if s.ready.load(Ordering::Acquire) {
        Ok(
            Json(json!({"status": "ready", "at": crate::timefmt::rfc3339_ms(s.service.now())}))
                .into_response(),
        )
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "ending overdue grants before serving",
        ))
    }
}
