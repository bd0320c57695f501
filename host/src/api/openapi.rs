//! The OpenAPI 3.1 description of `/v1`, generated from the code: each
//! handler's `#[utoipa::path]` (method, path, roles, answers) registers the
//! handler on the router through utoipa-axum's `routes!`, so a documented
//! path is a served route; the schemas are derived on the types the
//! handlers answer with (`Grant`, `Decision`, …; behind the `openapi`
//! feature so engine-only embedders do not compile utoipa).
//!
//! `docs/openapi.json` is this document, committed; `jitgate openapi`
//! prints it, `GET /v1/openapi.json` serves it (no token: it describes the
//! interface, never data), and `tests/e2e/openapi.rs` fails when the file
//! and the code drift.

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::grant::Grant;
use crate::policy::PolicyMeta;
use crate::policy_set::SetInfo;
use crate::request::{SubjectKind, TicketState};
use crate::store::{Review, TicketRecord};

/// Extension naming the roles an operation admits (also in its description).
pub const ROLES: &str = "x-jitgate-roles";

/// The errors every route behind a bearer token can answer, whatever it
/// does: a malformed request, no or a refused token, too many failed
/// authentications, the store or the workers unavailable. Each route adds
/// its own (403 with the roles it admits, 404, 409, …).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum AuthErrors {
    /// 400.
    #[response(
        status = 400,
        description = "A malformed body, path or query (`bad-request`, `bad-json`, `bad-query`, `bad-body`), field named"
    )]
    BadRequest(ErrorBody),
    /// 401.
    #[response(
        status = 401,
        description = "No or unknown bearer token, or a refused identity-provider token (`unauthenticated`)"
    )]
    Unauthenticated(ErrorBody),
    /// 429.
    #[response(
        status = 429,
        description = "Too many failed authentications from this address (`rate-limited`, `Retry-After`)"
    )]
    RateLimited(ErrorBody),
    /// 503.
    #[response(
        status = 503,
        description = "The store or audit log is unavailable (`unavailable`), or every decision worker is busy (`busy`, `Retry-After: 1`)"
    )]
    Unavailable(ErrorBody),
}

/// [`AuthErrors`] of a route that takes no body, path or query to refuse.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum AuthErrorsNoBody {
    /// 401.
    #[response(
        status = 401,
        description = "No or unknown bearer token, or a refused identity-provider token (`unauthenticated`)"
    )]
    Unauthenticated(ErrorBody),
    /// 429.
    #[response(
        status = 429,
        description = "Too many failed authentications from this address (`rate-limited`, `Retry-After`)"
    )]
    RateLimited(ErrorBody),
    /// 503.
    #[response(
        status = 503,
        description = "The store or audit log is unavailable (`unavailable`), or every decision worker is busy (`busy`, `Retry-After: 1`)"
    )]
    Unavailable(ErrorBody),
}

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `bad-request`, `bad-json`, `bad-query`, `bad-body`,
    /// `bad-ticket-event`, `unauthenticated`, `forbidden`, `not-found`,
    /// `conflict`, `illegal-transition`, `invalid-request`, `too-large`,
    /// `body-timeout`, `rate-limited`, `unavailable`, `busy`, `timeout`,
    /// `starting`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The field at fault (a path such as `subject.id`, or `body`, `path`,
    /// `query`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A request body (`POST /v1/requests`, `POST /v1/decisions`). The server
/// sets `now` (a body holding it is refused); a requester's `subject.kind`
/// and `subject.mfa-at` come from its sign-in, not the body.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // a description only: the body is read as JSON and checked by the service
pub struct RequestBody {
    /// The caller's id for this request (idempotency key, per caller).
    id: String,
    /// Who asks; a requester only for itself.
    subject: SubjectBody,
    /// Kind of work (a task a loaded policy declares).
    task: String,
    /// Target system.
    resource: String,
    /// What to grant.
    entitlement: String,
    /// The requester's reason.
    justification: String,
    /// Requested duration, seconds.
    requested_ttl: u32,
    /// The ticket, named by id; its facts come from the ticket registry.
    ticket: Option<TicketRef>,
    /// Extra context, string to string, keys unique.
    attributes: Option<BTreeMap<String, String>>,
}

/// Who asks.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct SubjectBody {
    /// Stable identifier (a requester: its own principal name).
    id: String,
    /// Pipelines only; a requester's is taken from its sign-in.
    kind: Option<SubjectKind>,
    /// Job roles (pipelines; a requester's come from its token).
    roles: Option<Vec<String>>,
    /// Directory groups (pipelines; a requester's come from its token).
    groups: Option<Vec<String>>,
    /// Last MFA: Unix seconds or RFC 3339 (pipelines only).
    #[schema(value_type = Option<String>, format = DateTime)]
    mfa_at: Option<String>,
}

/// A ticket named by id. Only a pipeline whose token has
/// `trusted-context = true` may send its facts (`state`, `priority`,
/// `assignee`, `opened-at`); from anyone else they are refused (400).
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct TicketRef {
    /// The ticket's id.
    id: String,
    /// Which `[[ticket-sources]]` must know it.
    source: Option<String>,
    /// Trusted pipelines only.
    state: Option<TicketState>,
    /// Trusted pipelines only: 1 (highest) … 5.
    priority: Option<u8>,
    /// Trusted pipelines only.
    assignee: Option<String>,
    /// Trusted pipelines only: Unix seconds or RFC 3339.
    #[schema(value_type = Option<String>, format = DateTime)]
    opened_at: Option<String>,
}

/// `GET /v1/grants`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GrantPage {
    /// Newest first.
    grants: Vec<Grant>,
    /// Pass as `before` for the next page (opaque); null on the last.
    next: Option<String>,
}

/// One audit record as answered: stored `at` (Unix ms, hashed) and the same
/// time as `at-rfc3339`; `data` is the evidence as stored.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct AuditRecordAnswer {
    /// 1, 2, 3, … without gaps.
    seq: i64,
    /// Unix milliseconds, as stored (what the hash covers).
    at: i64,
    /// `at` in RFC 3339 UTC with milliseconds.
    #[serde(rename = "at-rfc3339")]
    #[schema(format = DateTime)]
    at_rfc3339: String,
    /// The kind of record (`request`, `decision`, `transition`, …).
    kind: String,
    /// The principal (or `scheduler`, `system`).
    actor: String,
    /// The grant concerned.
    grant_id: Option<String>,
    /// The client request id concerned.
    request_id: Option<String>,
    /// The evidence, as stored (times inside in Unix milliseconds).
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// The previous record's hash.
    prev_hash: String,
    /// sha256(prev-hash ‖ canonical bytes), hex.
    hash: String,
}

/// `GET /v1/grants/{id}/evidence`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Evidence {
    /// The grant.
    grant: Grant,
    /// Every audit record about it, in order.
    audit: Vec<AuditRecordAnswer>,
}

/// `GET /v1/audit`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditPage {
    /// Records in order.
    records: Vec<AuditRecordAnswer>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<i64>,
}

/// One bad record.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChainFault {
    /// Its seq.
    seq: i64,
    /// What is wrong.
    error: String,
}

/// `GET /v1/audit/verify`.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct VerifyReport {
    /// No bad record.
    ok: bool,
    /// Records checked.
    checked: u64,
    /// Bad records, all counted.
    bad_count: u64,
    /// Bad records (at most 1,000 listed).
    bad: Vec<ChainFault>,
    /// The first fault, when not ok.
    error: Option<String>,
}

/// `GET /v1/policies`.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct PolicyStatus {
    /// The loaded policies.
    policies: Vec<PolicyMeta>,
    /// The running set.
    set: SetInfo,
    /// The last refused reload candidate (`refused`, `path`, `trigger`,
    /// `running`, `at`), or null.
    #[schema(value_type = Option<Object>)]
    last_rejection: Option<serde_json::Value>,
    /// How many rollbacks are possible.
    rollback_depth: u64,
}

/// `POST /v1/policies/reload`, `POST /v1/policies/rollback`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PolicySetAnswer {
    /// The policies now running.
    policies: Vec<PolicyMeta>,
    /// The set now running.
    set: SetInfo,
}

/// `GET /v1/reviews`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Reviews {
    /// Break-glass review items.
    reviews: Vec<Review>,
}

/// `POST /v1/reviews/{id}/close`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Closed {
    /// Always true.
    closed: bool,
}

/// A grant that names a ticket, as `GET /v1/tickets/{id}` lists it.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct TicketGrant {
    /// The grant's id.
    id: String,
    /// Its state.
    state: crate::grant::GrantState,
    /// Its subject.
    subject: String,
    /// Its task.
    task: String,
    /// Ends when the ticket is resolved or closed.
    revoke_on_ticket_close: bool,
    /// Active until.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
}

/// `GET /v1/tickets/{id}`: the registry's ticket and its grants.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketAnswer {
    /// The ticket.
    #[serde(flatten)]
    ticket: TicketRecord,
    /// The grants that name it.
    grants: Vec<TicketGrant>,
}

/// `POST /v1/ticket-sources/{name}/events`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketEventAnswer {
    /// `applied`, `replayed`, `stale`, `foreign-source`, `reopen-refused`.
    result: String,
    /// The ticket as the registry now holds it.
    ticket: Option<TicketRecord>,
    /// Grants the event revoked (when applied).
    revoked: Option<Vec<String>>,
}

/// Adds the bearer scheme every `/v1` route but the webhook and this
/// document requires.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A configured token (`[[tokens]]`, kept as its sha256) or an \
                         identity provider's JWT (docs/identity.md).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jitgate",
        description = "Just-in-time access: decisions by sandboxed WebAssembly policies, time-boxed grants, approvals, a tamper-evident audit log. Prose reference: docs/api.md.\n\nEvery error answers `ErrorBody`. Every time in an answer is RFC 3339 UTC with milliseconds (`2026-12-06T14:03:11.123Z`), except an audit record's stored `at` (Unix ms, with `at-rfc3339` beside it). The roles an operation admits are in its description and in its `x-jitgate-roles` extension (`none`: no token; `any`: any authenticated caller)."
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    components(schemas(ErrorBody, RequestBody))
)]
struct ApiDoc;

/// The base document (info, security, shared schemas), before the routes
/// add their paths.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    super::routes().split_for_parts().1
}

/// The document as served and committed: pretty JSON, one trailing newline.
pub fn json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_else(|e| {
        // Only a bug (a schema that does not serialise) gets here.
        format!("{{\"error\": \"the OpenAPI document did not serialise: {e}\"}}")
    });
    s.push('\n');
    s
}
