//! The HTTP API (`jitgate serve`): JSON under `/v1`, bearer-token auth, one
//! error shape `{"error": {"code", "message", "field"?}}`.
//!
//! Handlers are thin: authenticate, read a size-limited body, call the
//! [`Service`] on a blocking thread (the store is synchronous), map the
//! result. Every authentication failure is counted and audited, per client
//! address per window, and rate-limited ([`guard`]); the server's
//! connection limits are in [`server`].

pub mod guard;
pub mod server;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::grant::GrantState;
use crate::request::TicketState;
use crate::service::{Principal, Role, Service, ServiceError, now_millis};
use crate::store::GrantFilter;

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
    /// Where `POST /v1/policies/reload` reads modules from, and with which
    /// engine settings; `None` disables reloading.
    pub reload: Option<(std::path::PathBuf, crate::EngineConfig)>,
    /// Rate limit and audit tallies of failed authentications.
    pub auth_guard: Arc<guard::AuthGuard>,
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
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(f) = self.field {
            e["field"] = json!(f);
        }
        let mut resp = (self.status, Json(json!({ "error": e }))).into_response();
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

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/decisions", post(decide))
        .route("/v1/requests", post(request))
        .route("/v1/grants", get(list_grants))
        .route("/v1/grants/{id}", get(get_grant))
        .route("/v1/grants/{id}/evidence", get(evidence))
        .route("/v1/grants/{id}/{action}", post(grant_action))
        .route("/v1/tickets/{id}/events", post(ticket_event))
        .route("/v1/audit", get(audit_page))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/policies", get(policies))
        .route("/v1/policies/reload", post(reload_policies))
        .route("/v1/reviews", get(reviews))
        .route("/v1/reviews/{id}/close", post(close_review))
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
    let actor = principal_of(&s, req.headers())
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "anonymous".into());
    let resp = next.run(req).await;
    if resp.status() == StatusCode::FORBIDDEN {
        let why = resp.extensions().get::<Refusal>().map(|r| r.0.clone());
        let draft = crate::audit::AuditDraft::new(
            now_millis(),
            crate::audit::kind::AUTH_FAILURE,
            &actor,
            json!({"status": 403, "method": method, "route": route, "path": path, "reason": why}),
        );
        if let Err(e) = s.service.append_async(draft).await {
            s.service
                .metrics
                .audit_failures
                .fetch_add(1, Ordering::Relaxed);
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
    let verdict = s
        .auth_guard
        .failure(peer, why, path, std::time::Instant::now(), now_millis());
    match verdict {
        guard::Verdict::Unauthorized => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            format!("{why}: send `Authorization: Bearer <token>`"),
        ),
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

async fn auth(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Principal, ApiError> {
    let token = bearer(headers);
    let found = token.and_then(|t| {
        state
            .principals
            .get(&hex::encode(Sha256::digest(t.as_bytes())))
    });
    match found {
        Some(p) => Ok(p.clone()),
        None => Err(refuse(
            state,
            server::peer().map(|a| a.ip()),
            token.is_some(),
            path,
        )),
    }
}

async fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let e = e.into_inner();
        if server::is_too_large(&*e) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("request body is larger than {MAX_BODY} bytes"),
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

async fn json_value(body: Body) -> Result<Value, ApiError> {
    let bytes = body_bytes(body).await?;
    crate::request::parse_json_strict(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-json", e.message).field(e.field))
}

/// Parse a typed body, naming the offending field.
async fn typed<T: DeserializeOwned>(body: Body, empty_ok: bool) -> Result<T, ApiError> {
    let bytes = body_bytes(body).await?;
    let text = if bytes.iter().all(u8::is_ascii_whitespace) && empty_ok {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            e.inner().to_string(),
        )
        .field(if field == "." { "body".into() } else { field })
    })
}

async fn decide(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> ApiResult {
    let who = auth(&s, &headers, "/v1/decisions").await?;
    let v = json_value(body).await?;
    // The decision runs on the service's evaluator: see `Service::dry_run_async`.
    let d = s.service.dry_run_async(&who, v).await?;
    Ok(Json(d).into_response())
}

async fn request(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> ApiResult {
    let who = auth(&s, &headers, "/v1/requests").await?;
    let v = json_value(body).await?;
    let svc = s.service.clone();
    let (g, created) = blocking(move || svc.request(&who, &v)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(g)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct GrantQuery {
    state: Option<String>,
    subject: Option<String>,
    ticket: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()).field("query")
    })
}

async fn list_grants(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<GrantQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/grants").await?;
    let q = query(q)?;
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
    Ok(Json(json!({"grants": grants, "next": next})).into_response())
}

async fn get_grant(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/grants/{id}").await?;
    let svc = s.service.clone();
    let g = blocking(move || svc.grant(&who, &id)).await?;
    Ok(Json(g).into_response())
}

async fn evidence(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/grants/{id}/evidence").await?;
    let svc = s.service.clone();
    let (g, records) = blocking(move || svc.evidence(&who, &id)).await?;
    Ok(Json(json!({"grant": g, "audit": records})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EmptyBody {}

async fn grant_action(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/grants/{id}/{action}").await?;
    let svc = s.service.clone();
    let g = match action.as_str() {
        "approve" => {
            let _: EmptyBody = typed(body, true).await?;
            blocking(move || svc.approve(&who, &id)).await?
        }
        "release" => {
            let _: EmptyBody = typed(body, true).await?;
            blocking(move || svc.release(&who, &id)).await?
        }
        "reject" | "revoke" => {
            let b: ReasonBody = typed(body, true).await?;
            let reason = b
                .reason
                .unwrap_or_else(|| format!("{action}ed by {}", who.name));
            if reason.len() > 1024 {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "at most 1024 bytes",
                )
                .field("reason"));
            }
            if action == "reject" {
                blocking(move || svc.reject(&who, &id, &reason)).await?
            } else {
                blocking(move || svc.revoke(&who, &id, &reason)).await?
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no grant action `{action}`"),
            ));
        }
    };
    Ok(Json(g).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TicketEvent {
    state: TicketState,
}

async fn ticket_event(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/tickets/{id}/events").await?;
    let ev: TicketEvent = typed(body, false).await?;
    let svc = s.service.clone();
    let ticket = id.clone();
    let revoked = blocking(move || svc.ticket_event(&who, &ticket, ev.state)).await?;
    Ok(Json(json!({"ticket": id, "revoked": revoked})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct AuditQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

async fn audit_page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/audit").await?;
    let q = query(q)?;
    who.require_any(&[Role::Auditor, Role::Admin])?;
    let svc = s.service.clone();
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records =
        blocking(move || Ok(svc.store().audit_page(q.after.unwrap_or(0), limit)?)).await?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({"records": records, "next": next})).into_response())
}

async fn audit_verify(State(s): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    let who = auth(&s, &headers, "/v1/audit/verify").await?;
    who.require_any(&[Role::Auditor, Role::Admin])?;
    let svc = s.service.clone();
    let r = blocking(move || svc.verify_audit()).await?;
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

async fn policies(State(s): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    let _who = auth(&s, &headers, "/v1/policies").await?;
    let engine = s.service.engine();
    let list: Vec<_> = engine.policies().cloned().collect();
    Ok(Json(json!({"policies": list})).into_response())
}

/// Load the policy folder afresh and swap it in (admin). All or nothing: a
/// folder that fails to load leaves the running policies in place.
async fn reload_policies(State(s): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    let who = auth(&s, &headers, "/v1/policies/reload").await?;
    who.require_any(&[Role::Admin])?;
    let Some((dir, config)) = s.reload.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "reloading is disabled",
        ));
    };
    let svc = s.service.clone();
    let loaded = blocking(move || {
        let mut engine =
            crate::Engine::new(config).map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        engine
            .load_path(&dir)
            .map_err(|e| ServiceError::BadRequest {
                field: "policies".into(),
                message: e.to_string(),
            })?;
        let list: Vec<_> = engine.policies().cloned().collect();
        svc.replace_engine(engine, &who.name)?;
        Ok(list)
    })
    .await?;
    Ok(Json(json!({"policies": loaded})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ReviewQuery {
    open: Option<bool>,
}

async fn reviews(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ReviewQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/reviews").await?;
    let q = query(q)?;
    let svc = s.service.clone();
    let list = blocking(move || svc.reviews(&who, q.open.unwrap_or(false))).await?;
    Ok(Json(json!({"reviews": list})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct CloseReview {
    note: String,
}

async fn close_review(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let who = auth(&s, &headers, "/v1/reviews/{id}/close").await?;
    let b: CloseReview = typed(body, false).await?;
    let svc = s.service.clone();
    blocking(move || svc.close_review(&who, &id, &b.note)).await?;
    Ok(Json(json!({"closed": true})).into_response())
}

async fn metrics(State(s): State<Arc<AppState>>) -> ApiResult {
    let svc = s.service.clone();
    let text = blocking(move || {
        let active = svc.store().count_active()?;
        let pending = svc.store().outbox_pending()?;
        let quarantined = svc.store().quarantine_count()?;
        let mut text = svc.metrics.render(active, pending);
        text.push_str(&crate::metrics::quarantine_gauge(quarantined));
        Ok(text)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn readyz(State(s): State<Arc<AppState>>) -> ApiResult {
    if s.ready.load(Ordering::Acquire) {
        Ok(Json(json!({"status": "ready", "at": now_millis()})).into_response())
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "ending overdue grants before serving",
        ))
    }
}
