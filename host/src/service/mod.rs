//! [`Service`]: grants, approvals, revocation and audit over an [`Engine`]
//! and a [`Store`] — the library an approval pipeline embeds, and what the
//! HTTP API calls.
//!
//! Invariants kept here:
//! * a state change, its audit records and its provisioning event commit
//!   together (the store's transactions), or not at all;
//! * if the audit record cannot be written, nothing is granted (the caller
//!   sees [`ServiceError::Unavailable`]);
//! * the server chooses `now`; a client-supplied `now` is refused;
//! * the same request id with the same body returns the same grant; with a
//!   different body it is a conflict.

pub mod bounded;
pub mod clock;
pub mod evaluator;
pub mod group_commit;
pub mod principal;
pub mod scheduler;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

pub use clock::{Clock, ManualClock, SystemClock};

use crate::audit::{self, AuditDraft, AuditRecord};
use crate::decision::{Decision, Outcome};
use crate::engine::Engine;
pub use crate::grant::identity_key;
use crate::grant::{Grant, GrantEvent, GrantState, IllegalTransition, Millis};
use crate::metrics::Metrics;
use crate::request::{Request, RequestError, TicketState};
use crate::store::{Effects, GrantFilter, Review, Store, StoreError};
pub use principal::{Principal, Role};

/// Why a service call failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request failed validation (422), naming the field.
    #[error("{0}")]
    Invalid(#[from] RequestError),
    /// Malformed input (400), naming the field.
    #[error("{field}: {message}")]
    BadRequest {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The caller may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such thing (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with stored state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The lifecycle does not allow this change (409).
    #[error("grant {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        /// The grant.
        id: String,
        /// Its state.
        from: &'static str,
        /// The refused target.
        to: &'static str,
    },
    /// The store (and so the audit log) is unavailable (503): fail closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many decisions in flight (503 with `Retry-After`); nothing was
    /// decided and nothing stored.
    #[error("busy: {0}")]
    Busy(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ServiceError::NotFound(format!("grant {id}")),
            StoreError::DuplicateRequest(id) => {
                ServiceError::Conflict(format!("request id already used by grant {id}"))
            }
            other => ServiceError::Unavailable(other.to_string()),
        }
    }
}

impl From<IllegalTransition> for ServiceError {
    fn from(e: IllegalTransition) -> Self {
        match e {
            IllegalTransition::State { id, from, to } => {
                ServiceError::IllegalTransition { id, from, to }
            }
            IllegalTransition::NotEligible(why) => ServiceError::Forbidden(why),
            e @ (IllegalTransition::Quarantined { .. }
            | IllegalTransition::AlreadyApproved { .. }) => ServiceError::Conflict(e.to_string()),
        }
    }
}

/// Service settings (from `jitgate.toml`).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// A pending grant lapses after this many seconds. Default 3600.
    pub approval_timeout_secs: u32,
    /// Tasks flagged break-glass: every grant opens a review item.
    pub break_glass_tasks: BTreeSet<String>,
    /// Bytes of an invalid body kept (escaped) in its audit record, beside
    /// its sha256 and size. Default 256.
    pub invalid_body_excerpt_bytes: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            approval_timeout_secs: 3600,
            break_glass_tasks: BTreeSet::new(),
            invalid_body_excerpt_bytes: 256,
        }
    }
}

/// Grants ended per transaction by a sweep: one fsync for the batch. Larger
/// batches cut commit overhead in bursts (10,000 expiring in one second).
pub const SWEEP_BATCH: usize = 2000;

/// Current time, Unix milliseconds.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        // getrandom failing means no OS entropy; a time-based id is still
        // unique enough for an id (never a secret).
        b[..8].copy_from_slice(&now_millis().to_le_bytes());
    }
    format!("{prefix}-{}", hex::encode(b))
}

/// sha256 of a JSON value's canonical (sorted-key) form, which does not
/// depend on how serde_json was built (see [`audit::canonical`]).
pub fn body_hash(v: &Value) -> String {
    hex::encode(Sha256::digest(audit::canonical::to_vec(v)))
}

/// The grants service.
pub struct Service {
    engine: RwLock<Arc<Engine>>,
    store: Arc<dyn Store>,
    config: ServiceConfig,
    /// Poked when a nearer deadline may exist (new or activated grant).
    pub deadline_changed: tokio::sync::Notify,
    /// Poked when provisioning events were queued.
    pub outbox_changed: tokio::sync::Notify,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Batches audit records of dry runs and auth failures.
    group_commit: Option<group_commit::GroupCommit>,
    /// Runs decisions off the async workers, bounded.
    evaluator: evaluator::Evaluator,
    /// Where every time the service records or compares comes from.
    clock: Arc<dyn Clock>,
}

impl Service {
    /// A service over `engine` and `store`.
    pub fn new(engine: Engine, store: Arc<dyn Store>, config: ServiceConfig) -> Self {
        Self::with_clock(engine, store, config, Arc::new(SystemClock))
    }

    /// A service that reads the time from `clock` (a [`ManualClock`] in
    /// tests).
    pub fn with_clock(
        engine: Engine,
        store: Arc<dyn Store>,
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (workers, queue) = evaluator::size(engine.config(), engine.policies().count());
        Service {
            evaluator: evaluator::Evaluator::start(workers, queue),
            engine: RwLock::new(Arc::new(engine)),
            config,
            deadline_changed: tokio::sync::Notify::new(),
            outbox_changed: tokio::sync::Notify::new(),
            metrics: Metrics::default(),
            group_commit: group_commit::GroupCommit::start(store.clone())
                .map_err(
                    |e| tracing::warn!(error = %e, "no group-commit writer; appending directly"),
                )
                .ok(),
            store,
            clock,
        }
    }

    /// The service's current time, Unix milliseconds.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Append one record that changes no grant, through group commit.
    fn append_one(&self, d: AuditDraft) -> Result<(), StoreError> {
        match &self.group_commit {
            Some(gc) => gc.append(d),
            None => self.store.append_audit(vec![d]),
        }
    }

    /// Queue a record that changes no grant for group commit; the future
    /// resolves once it is committed. Holds no thread while waiting.
    pub fn submit_audit(
        &self,
        d: AuditDraft,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>> {
        match &self.group_commit {
            Some(gc) => Box::pin(gc.submit(d)),
            None => {
                let store = self.store.clone();
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || store.append_audit(vec![d]))
                        .await
                        .map_err(|e| StoreError::Backend(format!("audit append: {e}")))?
                })
            }
        }
    }

    /// The current engine (policies can be swapped by [`Service::replace_engine`]).
    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swap in a newly loaded engine (policy reload), audited.
    pub fn replace_engine(&self, engine: Engine, actor: &str) -> Result<(), ServiceError> {
        let drafts = engine
            .policies()
            .map(|p| AuditDraft::new(self.now(), audit::kind::POLICY_LOAD, actor, json!(p)))
            .collect();
        self.store.append_audit(drafts)?;
        match self.engine.write() {
            Ok(mut e) => *e = Arc::new(engine),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(engine),
        }
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Audit something that changes no grant (config/policy load, auth failure).
    pub fn audit(&self, kind: &str, actor: &str, data: Value) -> Result<(), ServiceError> {
        Ok(self
            .store
            .append_audit(vec![AuditDraft::new(self.now(), kind, actor, data)])?)
    }

    /// Parse a request body sent by `actor`, with the server's `now`, after
    /// checking who may ask for whom.
    fn parse(&self, actor: &Principal, body: Value, now: Millis) -> Result<Request, ServiceError> {
        let obj = body.as_object().ok_or_else(|| ServiceError::BadRequest {
            field: "request".into(),
            message: "must be a JSON object".into(),
        })?;
        if obj.contains_key("now") {
            return Err(ServiceError::BadRequest {
                field: "now".into(),
                message: "is set by the server; remove it".into(),
            });
        }
        let mut with_now = body;
        with_now["now"] = json!(now / 1000);
        let mut req = crate::request::from_value(with_now)?;
        actor.authorize_subject(&mut req)?;
        Ok(req)
    }

    /// Decide without granting (dry run). Only the audit record is stored;
    /// if it cannot be, the answer is an error, never a decision. Blocks
    /// until the record is committed: call it from a blocking thread, or use
    /// [`Service::dry_run_async`].
    pub fn dry_run(&self, actor: &Principal, body: &Value) -> Result<Decision, ServiceError> {
        let (req, now) = self.dry_run_parse(actor, body.clone())?;
        let (req, result) = self.decide(req)?;
        let (draft, result) = dry_run_record(
            &req,
            now,
            actor,
            result,
            self.config.invalid_body_excerpt_bytes,
        );
        self.append_one(draft)?;
        Ok(result?)
    }

    /// [`Service::dry_run`] for async callers: the decision runs on the
    /// evaluator's threads (never on the async workers: a hostile policy's
    /// budget is milliseconds, enough to stall every other endpoint), and
    /// neither that wait nor the one for the group-committed record holds
    /// a thread.
    pub async fn dry_run_async(
        self: &Arc<Self>,
        actor: &Principal,
        body: Value,
    ) -> Result<Decision, ServiceError> {
        let (req, now) = self.dry_run_parse(actor, body)?;
        let (req, result) = self.decide_async(req).await?;
        let (draft, result) = dry_run_record(
            &req,
            now,
            actor,
            result,
            self.config.invalid_body_excerpt_bytes,
        );
        self.append_async(draft).await?;
        Ok(result?)
    }

    /// Append one record that changes no grant, through group commit,
    /// without holding a thread while it waits.
    pub async fn append_async(self: &Arc<Self>, draft: AuditDraft) -> Result<(), ServiceError> {
        match &self.group_commit {
            Some(gc) => gc.submit(draft).await?,
            None => {
                let svc = self.clone();
                tokio::task::spawn_blocking(move || svc.store.append_audit(vec![draft]))
                    .await
                    .map_err(|e| StoreError::Backend(format!("audit append: {e}")))??
            }
        }
        Ok(())
    }

    /// A dry run's request, once its sender may ask.
    fn dry_run_parse(
        &self,
        actor: &Principal,
        body: Value,
    ) -> Result<(Request, Millis), ServiceError> {
        actor.require_any(&[Role::Requester, Role::Pipeline, Role::Admin])?;
        let now = self.now();
        Ok((self.parse(actor, body, now)?, now))
    }

    /// Request access: decide, and store the resulting grant (active,
    /// pending or denied). Returns the grant and whether it was new.
    pub fn request(&self, actor: &Principal, body: &Value) -> Result<(Grant, bool), ServiceError> {
        actor.require_any(&[Role::Requester, Role::Pipeline, Role::Admin])?;
        let now = self.now();
        let hash = body_hash(body);
        let req = match self.parse(actor, body.clone(), now) {
            Ok(r) => r,
            Err(ServiceError::Invalid(e)) => {
                self.store.append_audit(vec![AuditDraft::new(
                    now,
                    audit::kind::REQUEST,
                    &actor.name,
                    json!({"body": bounded::body_evidence(body, self.config.invalid_body_excerpt_bytes), "invalid": {"field": e.field, "message": e.message}}),
                )])?;
                return Err(e.into());
            }
            Err(other) => return Err(other),
        };
        // An id that cannot be stored cannot have been: no look-up (a NUL
        // in a PostgreSQL query parameter fails the query); the decision
        // below refuses it naming `id`.
        if storable_id(&req.id)
            && let Some(existing) = self.store.grant_by_request(&actor.name, &req.id)?
        {
            return self.replay(existing, &hash);
        }
        let (req, decided) = self.decide(req)?;
        let decision = match decided {
            Ok(d) => d,
            Err(e) => {
                let mut draft = AuditDraft::new(
                    now,
                    audit::kind::REQUEST,
                    &actor.name,
                    json!({"request": bounded::body_evidence(&json!(req), self.config.invalid_body_excerpt_bytes), "invalid": {"field": e.field, "message": e.message}}),
                );
                if storable_id(&req.id) {
                    draft = draft.request(&req.id);
                }
                self.store.append_audit(vec![draft])?;
                return Err(e.into());
            }
        };
        let break_glass = self.config.break_glass_tasks.contains(&req.task);
        let mut grant = Grant {
            id: new_id("g"),
            body_hash: hash.clone(),
            requested_by: actor.name.clone(),
            state: GrantState::Denied,
            outcome: decision.outcome,
            required: decision.approvals.clone(),
            decision: Value::Null,
            approvals: Vec::new(),
            ttl: decision.ttl,
            revoke_on_ticket_close: decision.revoke_on_ticket_close,
            break_glass,
            created_at: now,
            issued_at: None,
            expires_at: None,
            lapses_at: None,
            ended_at: None,
            ended_by: None,
            end_reason: None,
            revocation_lag_ms: None,
            quarantined: None,
            request: req,
        };
        let mut effects = Effects::default();
        effects.audit.push(
            AuditDraft::new(
                now,
                audit::kind::REQUEST,
                &actor.name,
                json!({"request": grant.request, "decision": decision}),
            )
            .grant(&grant.id)
            .request(&grant.request.id),
        );
        let review_id = (break_glass && decision.outcome == Outcome::Allow).then(|| new_id("rv"));
        let decided = grant.apply(
            GrantEvent::Decided {
                decision: json!(decision),
                approval_timeout_ms: self.config.approval_timeout_secs as i64 * 1000,
                review_id,
            },
            &actor.name,
            now,
        )?;
        effects.audit.extend(decided.audit);
        effects.outbox.extend(decided.outbox);
        effects.review = decided.review;
        match self.store.create_grant(&grant, effects) {
            Ok(()) => {}
            Err(StoreError::DuplicateRequest(_)) => {
                // Lost a race with the same id: answer as a replay.
                let existing = self
                    .store
                    .grant_by_request(&actor.name, &grant.request.id)?
                    .ok_or_else(|| ServiceError::Unavailable("grant vanished".into()))?;
                return self.replay(existing, &hash);
            }
            Err(e) => return Err(e.into()),
        }
        if grant.state == GrantState::Active {
            self.outbox_changed.notify_one();
        }
        if !grant.state.is_final() {
            self.deadline_changed.notify_one();
        }
        Ok((grant, true))
    }

    fn replay(&self, existing: Grant, hash: &str) -> Result<(Grant, bool), ServiceError> {
        if existing.body_hash == hash {
            Ok((existing, false))
        } else {
            Err(ServiceError::Conflict(format!(
                "request id `{}` was already used with a different body (grant {})",
                existing.request.id, existing.id
            )))
        }
    }

    /// One grant, if `actor` may see it.
    pub fn grant(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        let g = self
            .store
            .grant(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("grant {id}")))?;
        actor.may_see(&g)?;
        Ok(g)
    }

    /// Grants matching `filter` that `actor` may see (requesters: their own).
    pub fn grants(
        &self,
        actor: &Principal,
        mut filter: GrantFilter,
    ) -> Result<Vec<Grant>, ServiceError> {
        if actor.sees_only_own() {
            match &filter.subject {
                Some(s) if *s != actor.name => {
                    return Err(ServiceError::Forbidden(
                        "a requester may only list their own grants".into(),
                    ));
                }
                _ => filter.subject = Some(actor.name.clone()),
            }
        }
        Ok(self.store.grants(&filter)?)
    }

    /// Approve a pending grant.
    pub fn approve(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Approver])?;
        let now = self.now();
        let g = self.store.update_grant(id, &mut |g| {
            let review_id = g.break_glass.then(|| new_id("rv"));
            let event = GrantEvent::Approve {
                groups: actor.groups.clone(),
                review_id,
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        // Applied after `lapses-at`: the grant lapsed instead.
        let lapsed = g.state == GrantState::Lapsed;
        if lapsed {
            return Err(lapsed_error(&g));
        }
        if g.state == GrantState::Active {
            self.outbox_changed.notify_one();
            self.deadline_changed.notify_one();
        }
        Ok(g)
    }

    /// Reject a pending grant (any eligible approver).
    pub fn reject(&self, actor: &Principal, id: &str, reason: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Approver])?;
        let now = self.now();
        let g = self.store.update_grant(id, &mut |g| {
            let event = GrantEvent::Reject {
                groups: actor.groups.clone(),
                reason: reason.to_string(),
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        // Applied after `lapses-at`: the grant lapsed instead.
        let lapsed = g.state == GrantState::Lapsed;
        if lapsed {
            return Err(lapsed_error(&g));
        }
        Ok(g)
    }

    /// Revoke an active or pending grant (admin).
    pub fn revoke(&self, actor: &Principal, id: &str, reason: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Admin])?;
        let now = self.now();
        let g = self.store.update_grant(id, &mut |g| {
            let event = GrantEvent::Revoke {
                reason: reason.to_string(),
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        self.outbox_changed.notify_one();
        Ok(g)
    }

    /// Release an active grant early (its holder, or a pipeline for them).
    pub fn release(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Requester, Role::Pipeline])?;
        let now = self.now();
        let g = self.store.update_grant(id, &mut |g| {
            if !actor.has(Role::Pipeline) && g.request.subject.id != actor.name {
                return Err(ServiceError::Forbidden(
                    "only the grant's holder may release it".into(),
                ));
            }
            Ok(Some(g.apply(GrantEvent::Release, &actor.name, now)?))
        })?;
        self.outbox_changed.notify_one();
        Ok(g)
    }

    /// A ticket changed state; `resolved`/`closed` revokes its grants that
    /// asked for it. Returns the ids revoked.
    pub fn ticket_event(
        &self,
        actor: &Principal,
        ticket: &str,
        state: TicketState,
    ) -> Result<Vec<String>, ServiceError> {
        actor.require_any(&[Role::Pipeline, Role::Admin])?;
        let now = self.now();
        self.store.append_audit(vec![AuditDraft::new(
            now,
            audit::kind::TICKET_EVENT,
            &actor.name,
            json!({"ticket": ticket, "state": state}),
        )])?;
        if !state.is_finished() {
            return Ok(Vec::new());
        }
        let by = format!("ticket {ticket}");
        let mut revoked = Vec::new();
        for id in self.store.open_grants_of_ticket(ticket)? {
            let g = self.store.update_grant(&id, &mut |g| {
                let event = GrantEvent::TicketEnd {
                    ticket: ticket.to_string(),
                    state,
                };
                // Ended already, or not tied to its ticket: left alone.
                Ok(g.apply(event, &by, now).ok())
            })?;
            if g.state == GrantState::Revoked && g.ended_by.as_deref() == Some(by.as_str()) {
                revoked.push(id);
            }
        }
        if !revoked.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(revoked)
    }

    /// End every grant whose expiry or approval deadline is at or before
    /// `now`; returns how many ended. Safe to run concurrently: each grant is
    /// re-checked under the store's lock.
    pub fn end_due(&self, now: Millis) -> Result<usize, ServiceError> {
        let mut ended = 0;
        loop {
            let ids = self.store.due(now, SWEEP_BATCH)?;
            if ids.is_empty() {
                break;
            }
            let batch = ids.len();
            let mut lags = Vec::new();
            let mut changed = 0;
            self.store.update_grants(&ids, &mut |g| {
                let t = self.now();
                let event = match g.state {
                    GrantState::Active => GrantEvent::Expire { due_by: now },
                    GrantState::Pending => GrantEvent::Lapse { due_by: now },
                    // Someone else ended it first: nothing to do.
                    _ => return Ok(None),
                };
                // Not due (changed since listed): nothing to do.
                let Ok(fx) = g.apply(event, "scheduler", t) else {
                    return Ok(None);
                };
                lags.extend(
                    g.revocation_lag_ms
                        .filter(|_| g.state == GrantState::Expired),
                );
                changed += 1;
                Ok(Some(fx))
            })?;
            // Lags count only once the batch committed.
            for lag in lags {
                self.metrics.revocation_lag(lag);
            }
            ended += changed;
            if batch < SWEEP_BATCH {
                break;
            }
        }
        if ended > 0 {
            self.outbox_changed.notify_one();
        }
        Ok(ended)
    }

    /// Break-glass reviews (auditor, admin).
    pub fn reviews(&self, actor: &Principal, open_only: bool) -> Result<Vec<Review>, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        Ok(self.store.reviews(open_only)?)
    }

    /// Close a review with a note (auditor).
    pub fn close_review(
        &self,
        actor: &Principal,
        id: &str,
        note: &str,
    ) -> Result<(), ServiceError> {
        actor.require_any(&[Role::Auditor])?;
        if note.trim().is_empty() {
            return Err(ServiceError::BadRequest {
                field: "note".into(),
                message: "must not be empty".into(),
            });
        }
        let now = self.now();
        let d = AuditDraft::new(
            now,
            audit::kind::REVIEW,
            &actor.name,
            json!({"review": id, "closed": true, "note": note}),
        );
        if self.store.close_review(id, &actor.name, note, now, d)? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("open review {id}")))
        }
    }

    /// The evidence view of one grant: the grant (request, decision with
    /// every policy's verdict and digest, approvals, issuance, end) and
    /// every audit record about it.
    pub fn evidence(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<(Grant, Vec<AuditRecord>), ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        let g = self
            .store
            .grant(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("grant {id}")))?;
        let records = self.store.audit_of_grant(id)?;
        Ok((g, records))
    }

    /// Walk the whole audit chain, reporting every bad record.
    pub fn verify_audit(&self) -> Result<audit::Report, ServiceError> {
        Ok(audit::verify_store(
            self.store.as_ref(),
            audit::Anchors::new(),
            &mut |_| {},
        )?)
    }
}

/// Walk a store's whole audit chain page by page; the first bad record
/// ([`audit::verify_store`] reports them all).
pub fn verify_store(store: &dyn Store) -> Result<Result<u64, audit::ChainError>, ServiceError> {
    let report = audit::verify_store(store, audit::Anchors::new(), &mut |_| {})?;
    Ok(match report.bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(report.checked),
    })
}

/// Whether a request id may go into the audit record's indexed
/// `request-id` column. An invalid request's id is still evidence (it stays
/// in the record's JSON, escaped), but a control character in a column
/// fails the write — with PostgreSQL, a NUL failed the whole group-commit
/// batch, refusing other clients' decisions.
fn storable_id(id: &str) -> bool {
    !id.chars().any(char::is_control)
}

/// The dry run's record, which must be stored before its decision may be
/// given.
fn dry_run_record(
    req: &Request,
    now: Millis,
    actor: &Principal,
    result: Result<Decision, RequestError>,
    excerpt_bytes: usize,
) -> (AuditDraft, Result<Decision, RequestError>) {
    let data = match &result {
        Ok(d) => json!({"request": req, "decision": d}),
        Err(e) => {
            json!({"request": bounded::body_evidence(&json!(req), excerpt_bytes), "invalid": {"field": e.field, "message": e.message}})
        }
    };
    let mut draft = AuditDraft::new(now, audit::kind::DECISION, &actor.name, data);
    if storable_id(&req.id) {
        draft = draft.request(&req.id);
    }
    (draft, result)
}

fn lapsed_error(g: &Grant) -> ServiceError {
    ServiceError::IllegalTransition {
        id: g.id.clone(),
        from: g.state.as_str(),
        to: GrantState::Active.as_str(),
    }
}

#[cfg(test)]
mod tests;
