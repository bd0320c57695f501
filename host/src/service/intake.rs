//! Intake: requests and dry runs. The typed core ([`Service::submit`],
//! [`Service::dry_run_request`] and their async forms) is what an embedder
//! calls; the JSON forms ([`Service::request`], [`Service::dry_run`],
//! [`Service::dry_run_async`]) are the HTTP edge: they parse (naming the
//! JSON path of a bad field, auditing a body that does not parse) and then
//! take the same steps as the typed core.
//!
//! One file past 500 lines: the typed core and its JSON edge take the same steps in the same order; side by side, a step added to one is seen missing from the other.

use serde_json::{Value, json};
use std::sync::Arc;

use super::tickets::TicketProvenance;
use super::{Principal, Role, Service, ServiceError, body_hash, bounded, new_id};
use crate::audit::{self, AuditDraft};
use crate::decision::{Decision, Outcome};
use crate::grant::{Grant, GrantEvent, GrantState, Millis};
use crate::request::{Request, RequestError};
use crate::store::{Effects, StoreError};

impl Service {
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
        // The caller's credential knows its kind: the body need not say it.
        if let (Some(kind), Some(subject)) = (actor.kind, with_now["subject"].as_object_mut()) {
            subject.entry("kind").or_insert(json!(kind));
        }
        let mut req = crate::request::from_value(with_now)?;
        actor.authorize_subject(&mut req)?;
        Ok(req)
    }

    // ---- The typed core: what an embedder calls. ----

    /// Request access with a typed [`Request`]: decide, and store the
    /// resulting grant (active, pending or denied). Returns the grant and
    /// whether it was new.
    ///
    /// The service decides at its own clock's time: `req.now` is replaced
    /// (build requests with [`Request::builder`], which leaves it 0). The
    /// same `req.id` with the same request (compared in its canonical
    /// JSON form without `now`, see [`request_hash`]) returns the stored
    /// grant; with a different one it is [`ServiceError::Conflict`].
    ///
    /// Blocks the calling thread (decision, then the store's commit) and
    /// never panics inside a tokio runtime; from async code prefer
    /// [`Service::submit_async`], which holds no async worker.
    pub fn submit(&self, actor: &Principal, req: Request) -> Result<(Grant, bool), ServiceError> {
        let now = self.intake_now(actor)?;
        let (req, hash, tickets) = self.admit_typed(actor, req, now, true)?;
        self.submit_admitted(actor, req, hash, now, tickets)
    }

    /// [`Service::submit`] for async callers: the decision runs on the
    /// service's evaluator threads and the store's work on tokio's blocking
    /// pool, so no async worker is held.
    pub async fn submit_async(
        self: &Arc<Self>,
        actor: &Principal,
        req: Request,
    ) -> Result<(Grant, bool), ServiceError> {
        let now = self.intake_now(actor)?;
        let (req, hash, tickets) = self.admit_typed_async(actor, req, now, true).await?;
        self.submit_admitted_async(actor, req, hash, now, tickets)
            .await
    }

    /// Decide `req` without granting (dry run) at the service's time
    /// (`req.now` is replaced). Only the audit record is stored; if it
    /// cannot be, the answer is an error, never a decision.
    ///
    /// Blocks the calling thread and never panics inside a tokio runtime;
    /// from async code prefer [`Service::dry_run_request_async`].
    pub fn dry_run_request(
        &self,
        actor: &Principal,
        req: Request,
    ) -> Result<Decision, ServiceError> {
        let now = self.intake_now(actor)?;
        let (req, _, tickets) = self.admit_typed(actor, req, now, false)?;
        self.dry_run_admitted(actor, req, now, tickets)
    }

    /// [`Service::dry_run_request`] for async callers; holds no async
    /// worker.
    pub async fn dry_run_request_async(
        self: &Arc<Self>,
        actor: &Principal,
        req: Request,
    ) -> Result<Decision, ServiceError> {
        let now = self.intake_now(actor)?;
        let (req, _, tickets) = self.admit_typed_async(actor, req, now, false).await?;
        self.dry_run_admitted_async(actor, req, now, tickets).await
    }

    // ---- The JSON edge: what the HTTP API calls. ----

    /// Decide the JSON request `body` without granting (dry run). Field
    /// errors name the JSON path; a client-set `now` is refused. Blocks the
    /// calling thread (never panics inside a runtime); async callers use
    /// [`Service::dry_run_async`].
    pub fn dry_run(&self, actor: &Principal, body: &Value) -> Result<Decision, ServiceError> {
        let (req, now, tickets) = self.dry_run_parse(actor, body.clone())?;
        self.dry_run_admitted(actor, req, now, tickets)
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
        #[cfg(feature = "server")]
        self.pull_unknown_ticket(actor, &body).await;
        // A named ticket is looked up in the store: off the async workers,
        // unless the store answers reads in process without waiting (then
        // the hand-off to a blocking thread and back cost more than the
        // read: two wake-ups, docs/performance.md §5b).
        let (req, now, tickets) =
            if body.get("ticket").is_some_and(|t| !t.is_null()) && !self.store.reads_in_process() {
                let (svc, who) = (self.clone(), actor.clone());
                blocking(move || svc.dry_run_parse(&who, body)).await?
            } else {
                self.dry_run_parse(actor, body)?
            };
        self.dry_run_admitted_async(actor, req, now, tickets).await
    }

    /// Request access with the JSON request `body`, as [`Service::submit`]
    /// does with a typed one. Field errors name the JSON path; a body that
    /// does not parse is audited (its sha256, size and an escaped excerpt)
    /// and stored nowhere else. Idempotency compares the body as sent.
    pub fn request(&self, actor: &Principal, body: &Value) -> Result<(Grant, bool), ServiceError> {
        let now = self.intake_now(actor)?;
        let (req, hash, tickets) = self.admit_json(actor, body, now)?;
        self.submit_admitted(actor, req, hash, now, tickets)
    }

    /// [`Service::request`] for async callers; holds no async worker.
    pub async fn request_async(
        self: &Arc<Self>,
        actor: &Principal,
        body: Value,
    ) -> Result<(Grant, bool), ServiceError> {
        let now = self.intake_now(actor)?;
        #[cfg(feature = "server")]
        self.pull_unknown_ticket(actor, &body).await;
        let (svc, who) = (self.clone(), actor.clone());
        // Parsing is quick, but an invalid body is audited: a store write.
        let (req, hash, tickets) = blocking(move || svc.admit_json(&who, &body, now)).await?;
        self.submit_admitted_async(actor, req, hash, now, tickets)
            .await
    }

    // ---- Shared steps. ----

    /// Who may ask, and the time the request is decided at.
    fn intake_now(&self, actor: &Principal) -> Result<Millis, ServiceError> {
        actor.require_any(&[Role::Requester, Role::Pipeline, Role::Admin])?;
        Ok(self.now())
    }

    /// A typed request at `now`, once its sender may ask for its subject,
    /// with its idempotency hash and its ticket's facts from the registry
    /// (see [`Service::typed_ticket_facts`]; recorded when `record`).
    fn admit_typed(
        &self,
        actor: &Principal,
        mut req: Request,
        now: Millis,
        record: bool,
    ) -> Result<(Request, String, Option<TicketProvenance>), ServiceError> {
        let hash = request_hash(&req);
        req.now = (now / 1000).max(0) as u64;
        actor.authorize_subject(&mut req)?;
        let tickets = self.typed_ticket_facts(actor, &mut req, now, record)?;
        Ok((req, hash, tickets))
    }

    /// [`Service::admit_typed`] for async callers: a named ticket is
    /// looked up in the store off the async workers.
    async fn admit_typed_async(
        self: &Arc<Self>,
        actor: &Principal,
        req: Request,
        now: Millis,
        record: bool,
    ) -> Result<(Request, String, Option<TicketProvenance>), ServiceError> {
        if req.ticket.is_none() {
            return self.admit_typed(actor, req, now, record);
        }
        let (svc, who) = (self.clone(), actor.clone());
        blocking(move || svc.admit_typed(&who, req, now, record)).await
    }

    /// A JSON request at `now`, with the hash of the body as sent and its
    /// ticket's facts filled from the registry (see
    /// [`Service::ticket_facts`]). A body that does not parse is audited
    /// before the error is returned.
    fn admit_json(
        &self,
        actor: &Principal,
        body: &Value,
        now: Millis,
    ) -> Result<(Request, String, Option<TicketProvenance>), ServiceError> {
        let hash = body_hash(body);
        let mut filled = body.clone();
        let tickets = self.ticket_facts(actor, &mut filled, now, true)?;
        match self.parse(actor, filled, now) {
            Ok(r) => Ok((r, hash, tickets)),
            Err(ServiceError::Invalid(e)) => {
                self.store.append_audit(vec![AuditDraft::new(
                    now,
                    audit::kind::REQUEST,
                    &actor.name,
                    json!({"body": bounded::body_evidence(body, self.config.invalid_body_excerpt_bytes), "invalid": {"field": e.field, "message": e.message}}),
                )])?;
                Err(e.into())
            }
            Err(other) => Err(other),
        }
    }

    /// The stored grant of a request id already used by `actor`: the
    /// same grant for the same hash, a conflict for another.
    fn lookup(
        &self,
        actor: &Principal,
        req: &Request,
        hash: &str,
    ) -> Result<Option<(Grant, bool)>, ServiceError> {
        // An id that cannot be stored cannot have been: no look-up (a NUL
        // in a PostgreSQL query parameter fails the query); the decision
        // refuses it naming `id`.
        if storable_id(&req.id)
            && let Some(existing) = self.store.grant_by_request(&actor.name, &req.id)?
        {
            return self.replay(existing, hash).map(Some);
        }
        Ok(None)
    }

    /// Look up, decide, record: the path shared by the typed and JSON forms.
    fn submit_admitted(
        &self,
        actor: &Principal,
        req: Request,
        hash: String,
        now: Millis,
        tickets: Option<TicketProvenance>,
    ) -> Result<(Grant, bool), ServiceError> {
        if let Some(replayed) = self.lookup(actor, &req, &hash)? {
            return Ok(replayed);
        }
        let (req, decided) = self.decide(req)?;
        self.record_request(actor, req, decided, hash, now, tickets)
    }

    /// `submit_admitted` for async callers: the lookup and the
    /// record on the blocking pool, the decision on the evaluator.
    async fn submit_admitted_async(
        self: &Arc<Self>,
        actor: &Principal,
        req: Request,
        hash: String,
        now: Millis,
        tickets: Option<TicketProvenance>,
    ) -> Result<(Grant, bool), ServiceError> {
        let (svc, who) = (self.clone(), actor.clone());
        let (found, req, hash) = blocking(move || {
            let found = svc.lookup(&who, &req, &hash)?;
            Ok((found, req, hash))
        })
        .await?;
        if let Some(replayed) = found {
            return Ok(replayed);
        }
        let (req, decided) = self.decide_async(req).await?;
        let (svc, who) = (self.clone(), actor.clone());
        blocking(move || svc.record_request(&who, req, decided, hash, now, tickets)).await
    }

    fn dry_run_admitted(
        &self,
        actor: &Principal,
        req: Request,
        now: Millis,
        tickets: Option<TicketProvenance>,
    ) -> Result<Decision, ServiceError> {
        let (req, result) = self.decide(req)?;
        let whole = result.is_err().then(|| self.replayable(&req)).flatten();
        let (draft, result) = dry_run_record(
            &req,
            now,
            actor,
            result,
            tickets,
            self.config.invalid_body_excerpt_bytes,
            whole,
        );
        self.append_one(draft)?;
        Ok(result?)
    }

    async fn dry_run_admitted_async(
        self: &Arc<Self>,
        actor: &Principal,
        req: Request,
        now: Millis,
        tickets: Option<TicketProvenance>,
    ) -> Result<Decision, ServiceError> {
        let (req, result) = self.decide_async(req).await?;
        let whole = result.is_err().then(|| self.replayable(&req)).flatten();
        let (draft, result) = dry_run_record(
            &req,
            now,
            actor,
            result,
            tickets,
            self.config.invalid_body_excerpt_bytes,
            whole,
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
                    .map_err(|e| StoreError::Backend(format!("audit append: {e}").into()))??
            }
        }
        Ok(())
    }

    /// A dry run's request, once its sender may ask.
    fn dry_run_parse(
        &self,
        actor: &Principal,
        mut body: Value,
    ) -> Result<(Request, Millis, Option<TicketProvenance>), ServiceError> {
        let now = self.intake_now(actor)?;
        let tickets = self.ticket_facts(actor, &mut body, now, false)?;
        Ok((self.parse(actor, body, now)?, now, tickets))
    }

    /// Store a decided request's grant (or, for an invalid request, only
    /// its audit record).
    fn record_request(
        &self,
        actor: &Principal,
        req: Request,
        decided: Result<Decision, RequestError>,
        hash: String,
        now: Millis,
        tickets: Option<TicketProvenance>,
    ) -> Result<(Grant, bool), ServiceError> {
        let decision = match decided {
            Ok(d) => match &tickets {
                Some(t) => t.explain(d),
                None => d,
            },
            Err(e) => {
                let mut data = json!({"request": bounded::body_evidence(&json!(req), self.config.invalid_body_excerpt_bytes), "invalid": {"field": e.field, "message": e.message}});
                if let Some(whole) = self.replayable(&req) {
                    data["decided-request"] = whole;
                }
                let mut draft = AuditDraft::new(now, audit::kind::REQUEST, &actor.name, data);
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
            ttl: decision.ttl,
            revoke_on_ticket_close: decision.revoke_on_ticket_close,
            break_glass,
            created_at: now,
            ..Grant::of(req)
        };
        let credential = self.attach_provisioning(&mut grant);
        let mut effects = Effects::default();
        effects.audit.push(
            AuditDraft::new(
                now,
                audit::kind::REQUEST,
                &actor.name,
                json!({"request": grant.request, "decision": decision, "ticket-facts": tickets}),
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
        if matches!(grant.state, GrantState::Active | GrantState::Provisioning) {
            self.outbox_changed.notify_one();
        }
        if !grant.state.is_final() {
            self.deadline_changed.notify_one();
        }
        // Shown in this answer only: the stored grant has the verifier.
        grant.credential = credential;
        Ok((grant, true))
    }

    /// An invalid request whole, for `jitgate replay`, when only the
    /// policy set refused it (its task is one no loaded policy declares):
    /// another set may decide it, so its record must carry what to decide.
    /// A request past the size bounds stays an excerpt (the bounded
    /// evidence exists so a client cannot fill the log), and is invalid
    /// whatever the set.
    fn replayable(&self, req: &Request) -> Option<Value> {
        req.validate_shape(&self.engine().config().request_limits)
            .is_ok()
            .then(|| json!(req))
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
}

/// The idempotency hash of a typed request: sha256 of its canonical JSON
/// form (sorted keys, see [`crate::audit::canonical`]) without `now`, which
/// the service sets. A JSON body written exactly in that form (what
/// serialising a [`Request`] gives, minus `now`) hashes the same through
/// [`Service::request`].
pub fn request_hash(req: &Request) -> String {
    let mut v = json!(req);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("now");
    }
    body_hash(&v)
}

/// Run a blocking service step on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Unavailable(format!("a blocking service task failed: {e}")))?
}

/// Whether a request id may go into the audit record's indexed
/// `request-id` column. An invalid request's id is still evidence (it stays
/// in the record's JSON, escaped), but a control character in a column
/// fails the write — with PostgreSQL, a NUL failed the whole group-commit
/// batch, refusing other clients' decisions.
fn storable_id(id: &str) -> bool {
    !id.chars().any(char::is_control)
}

/// A decided dry run's evidence: written straight to its canonical text
/// ([`AuditDraft::of_evidence`]), the same text `json!` of these fields gave.
#[derive(serde::Serialize)]
struct DryRunEvidence<'a> {
    request: &'a Request,
    decision: &'a Decision,
    #[serde(rename = "ticket-facts", skip_serializing_if = "Option::is_none")]
    ticket_facts: Option<&'a TicketProvenance>,
}

/// The dry run's record, which must be stored before its decision may be
/// given, and the decision (its ticket's reason added, when facts came
/// from the registry).
fn dry_run_record(
    req: &Request,
    now: Millis,
    actor: &Principal,
    result: Result<Decision, RequestError>,
    tickets: Option<TicketProvenance>,
    excerpt_bytes: usize,
    replayable: Option<Value>,
) -> (AuditDraft, Result<Decision, RequestError>) {
    let result = match &tickets {
        Some(t) => result.map(|d| t.explain(d)),
        None => result,
    };
    let mut draft = match &result {
        Ok(d) => {
            let evidence = DryRunEvidence {
                request: req,
                decision: d,
                ticket_facts: tickets.as_ref(),
            };
            AuditDraft::of_evidence(now, audit::kind::DECISION, &actor.name, &evidence)
                .unwrap_or_else(|| {
                    AuditDraft::new(now, audit::kind::DECISION, &actor.name, json!(evidence))
                })
        }
        Err(e) => {
            let mut data = json!({"request": bounded::body_evidence(&json!(req), excerpt_bytes), "invalid": {"field": e.field, "message": e.message}});
            if let Some(obj) = data.as_object_mut() {
                if let Some(whole) = replayable {
                    obj.insert("decided-request".into(), whole);
                }
                if let Some(t) = &tickets {
                    obj.insert("ticket-facts".into(), json!(t));
                }
            }
            AuditDraft::new(now, audit::kind::DECISION, &actor.name, data)
        }
    };
    if storable_id(&req.id) {
        draft = draft.request(&req.id);
    }
    (draft, result)
}
