//! The ticket registry behind the service: events from ticket systems
//! (and trusted pipelines), reading a ticket, and the ticket facts a
//! request is decided on.
//!
//! A request never decides its own ticket facts: a requester names the
//! ticket by id, and the host fills state, priority, assignee and opened-at
//! from the registry, recording where each came from. Only a pipeline whose
//! token says `trusted-context = true` may send facts; they are then an
//! event of that pipeline in the registry, which never reopens a ticket the
//! registry holds as resolved or closed, and never overrides a ticket
//! another source owns.
//!
//! One file past 500 lines: every way a ticket fact enters (webhook, trusted pipeline, request) and leaves (GET, a decision's facts) goes through the same registry rules, read together.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

use super::{Principal, Role, Service, ServiceError};
use crate::decision::Decision;
use crate::grant::{Grant, GrantEvent, Millis};
use crate::request::{Ticket, TicketState};
use crate::store::tickets::{self, Judged};
use crate::store::{GrantFilter, TicketChange, TicketFacts, TicketOutcome, TicketRecord};
use crate::store::{StoreError, UpdateError};

/// The ticket settings of a service: its sources and trusted pipelines.
#[derive(Default)]
pub(super) struct TicketSettings {
    /// `[[ticket-sources]]` by name.
    #[cfg(feature = "server")]
    pub(super) sources: std::collections::BTreeMap<String, crate::ticket::TicketSource>,
    /// Names of pipelines whose token says `trusted-context = true`.
    pub(super) trusted: BTreeSet<String>,
    /// Sources a request's unknown ticket is pulled from.
    #[cfg(feature = "server")]
    pub(super) pulls: Vec<super::reconcile::PullTarget>,
    /// The client those pulls use.
    #[cfg(feature = "server")]
    pub(super) client: Option<crate::outbound::Outbound>,
}

/// Priority assumed for a registry ticket whose system never sent one:
/// the lowest, so that a missing priority never earns what a high one does.
pub const DEFAULT_PRIORITY: u8 = 5;

/// Where the ticket facts of one decision came from: kept in its audit
/// record (and so in the grant's evidence) under `ticket-facts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TicketProvenance {
    /// The ticket the request named.
    pub ticket: String,
    /// Whether the registry knows it (else the request was decided as
    /// having no ticket).
    pub known: bool,
    /// The source that reported the facts used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The event whose facts were used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The ticket system's time of that event, Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
    /// When jitgate recorded it, Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Millis>,
    /// Facts filled in by the host because the source never sent them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defaulted: Vec<&'static str>,
    /// What became of the facts a trusted pipeline sent in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<&'static str>,
    /// Why the ticket was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TicketProvenance {
    /// Add the reason (if any) to a decision's explanation.
    pub fn explain(&self, mut d: Decision) -> Decision {
        if let Some(r) = &self.reason {
            d.reasons.push(r.clone());
        }
        d
    }
}

/// Longest ticket id looked up, bytes (the request's string bound).
const MAX_TICKET_ID: usize = 1024;

/// Whether a caller's string may be looked up and stored: bounded, no
/// control characters (a NUL fails a PostgreSQL query).
pub(super) fn storable(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TICKET_ID && !s.chars().any(char::is_control)
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest {
        field: field.into(),
        message: message.into(),
    }
}

fn update_error(e: UpdateError) -> ServiceError {
    match e {
        UpdateError::Store(e) => e.into(),
        UpdateError::Aborted => {
            ServiceError::from(StoreError::Backend("a ticket change was aborted".into()))
        }
    }
}

impl Service {
    /// Pipelines (by principal name) whose request bodies may carry ticket
    /// facts (`trusted-context = true` on their token).
    pub fn with_trusted_context(mut self, names: BTreeSet<String>) -> Self {
        self.tickets.trusted = names;
        self
    }

    fn trusted_context(&self, actor: &Principal) -> bool {
        actor.has(Role::Pipeline) && self.tickets.trusted.contains(&actor.name)
    }

    /// Apply one ticket event to the registry (one transaction with its
    /// audit record and the endings of the ticket's revoke-on-close
    /// grants when it ends them).
    pub fn apply_ticket_facts(
        &self,
        facts: &TicketFacts,
        actor: &str,
        may_reopen: bool,
        resolved_ends_grants: bool,
    ) -> Result<TicketOutcome, ServiceError> {
        let now = self.now();
        let change = TicketChange {
            event: facts,
            actor,
            at: now,
            may_reopen,
            resolved_ends_grants,
        };
        let by = format!("ticket {}", facts.ticket_id);
        let state = if facts.deleted {
            TicketState::Closed
        } else {
            facts.state
        };
        let outcome = self
            .store
            .apply_ticket_change(&change, &mut |g: &mut Grant| {
                let event = GrantEvent::TicketEnd {
                    ticket: facts.ticket_id.clone(),
                    state,
                };
                // Ended already, or not tied to its ticket: left alone.
                Ok(g.apply(event, &by, now).ok())
            })
            .map_err(update_error)?;
        let outcome = self.reverify_after(outcome, facts, actor)?;
        if matches!(&outcome, TicketOutcome::Applied { revoked, .. } if !revoked.is_empty()) {
            self.outbox_changed.notify_one();
        }
        Ok(outcome)
    }

    /// Continuous verification after a ticket event: when it changed what a
    /// decision may look at (state, assignee, priority), every live grant
    /// on the ticket is decided again on the new facts (see
    /// [`super::reverify`]); those no longer allowed are revoked and added
    /// to the outcome's `revoked`. A redelivered event that is the
    /// ticket's last does it again, so a ticket system retrying after a
    /// failure here still gets the grants re-verified.
    fn reverify_after(
        &self,
        outcome: TicketOutcome,
        facts: &TicketFacts,
        actor: &str,
    ) -> Result<TicketOutcome, ServiceError> {
        match outcome {
            TicketOutcome::Applied {
                before,
                after,
                mut revoked,
            } => {
                if super::reverify::facts_changed(before.as_ref(), &after) {
                    revoked.extend(self.reverify_ticket(&after, actor)?);
                }
                Ok(TicketOutcome::Applied {
                    before,
                    after,
                    revoked,
                })
            }
            TicketOutcome::Replayed { current: Some(c) }
                if facts.event_id.is_some() && c.last_event_id == facts.event_id =>
            {
                let again = self.reverify_ticket(&c, actor)?;
                if !again.is_empty() {
                    self.outbox_changed.notify_one();
                }
                Ok(TicketOutcome::Replayed { current: Some(c) })
            }
            other => Ok(other),
        }
    }

    /// A ticket changed state, as reported by `actor` (a pipeline or an
    /// admin) without the ticket system's signature: recorded in the
    /// registry as an event of `actor`, so it can neither override a
    /// ticket a ticket system owns nor reopen a finished one. Returns the
    /// ids of grants revoked.
    pub fn ticket_event(
        &self,
        actor: &Principal,
        ticket: &str,
        state: TicketState,
    ) -> Result<Vec<String>, ServiceError> {
        actor.require_any(&[Role::Pipeline, Role::Admin])?;
        let facts = TicketFacts {
            source: actor.name.clone(),
            event_id: None,
            ticket_id: ticket.to_string(),
            deleted: false,
            state,
            priority: None,
            assignee: None,
            opened_at: None,
            updated_at: self.now(),
        };
        match self.apply_ticket_facts(&facts, &actor.name, false, true)? {
            TicketOutcome::Applied { revoked, .. } => Ok(revoked),
            other => Err(ServiceError::Conflict(format!(
                "ticket {ticket}: event not applied ({})",
                other.as_str()
            ))),
        }
    }

    /// One ticket of the registry and its grants. A plain requester sees
    /// only tickets of its own grants, and only those grants.
    pub fn ticket(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<(TicketRecord, Vec<Grant>), ServiceError> {
        actor.require_any(&[
            Role::Requester,
            Role::Pipeline,
            Role::Approver,
            Role::Admin,
            Role::Auditor,
        ])?;
        let mut filter = GrantFilter {
            ticket: Some(id.to_string()),
            limit: 500,
            ..GrantFilter::default()
        };
        if actor.sees_only_own() {
            filter.subject = Some(actor.name.clone());
        }
        let grants = self.store.grants(&filter)?;
        // Checked before the look-up: a requester learns nothing about
        // tickets it holds no grant on, not even whether they exist.
        if actor.sees_only_own() && grants.is_empty() {
            return Err(ServiceError::Forbidden(
                "a requester may only see the tickets of its own grants".into(),
            ));
        }
        let t = self
            .store
            .ticket(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("ticket {id}")))?;
        Ok((t, grants))
    }

    /// Complete a requester's subject (see [`super::requester`]), then
    /// replace the request body's ticket with the registry's facts before
    /// it is parsed, and say where they came from. A requester (or an
    /// untrusted pipeline) may send only `ticket.id` and `ticket.source`;
    /// a trusted pipeline's facts are applied to the registry first (when
    /// `record`; a dry run only sees what they would do). A ticket the
    /// registry does not know is removed: the request is decided as having
    /// no ticket.
    pub(super) fn ticket_facts(
        &self,
        actor: &Principal,
        body: &mut Value,
        now: Millis,
        record: bool,
    ) -> Result<Option<TicketProvenance>, ServiceError> {
        // What a requester may say about itself is checked first: neither
        // its subject nor its ticket facts come from its body.
        super::requester::requester_subject(actor, body)?;
        let Some(obj) = body.as_object_mut() else {
            return Ok(None);
        };
        let Some(raw) = obj.get("ticket").filter(|t| !t.is_null()) else {
            return Ok(None);
        };
        let Some(t) = raw.as_object() else {
            return Err(bad("ticket", "must be an object: {\"id\": \"…\"}"));
        };
        let mut t: Map<String, Value> = t.clone();
        let source = match t.remove("source") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if storable(&s) => Some(s),
            Some(_) => return Err(bad("ticket.source", "must be a ticket source's name")),
        };
        let trusted = self.trusted_context(actor);
        let facts_sent = t.keys().find(|k| *k != "id").cloned();
        if let (Some(extra), false) = (&facts_sent, trusted) {
            return Err(bad(
                format!("ticket.{extra}"),
                "ticket facts come from the ticket registry; send only `ticket.id` (and `ticket.source`) \
                 — only a pipeline whose token has `trusted-context = true` may send them",
            ));
        }
        let id = match t.get("id") {
            Some(Value::String(s)) if storable(s) => s.clone(),
            // Not an id that can be looked up (or stored): left for the
            // request's validation to refuse, naming the field.
            _ => return Ok(None),
        };
        let request_id = obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|r| storable(r))
            .map(str::to_string);
        if facts_sent.is_some() && record && !self.valid_apart_from_registry(obj, &t, now) {
            // A request refused anyway records nothing in the registry; the
            // parser and validation name what is wrong.
            obj.insert("ticket".into(), Value::Object(t));
            return Ok(None);
        }
        let claimed = if facts_sent.is_some() {
            let ticket: Ticket = serde_path_to_error::deserialize(Value::Object(t.clone()))
                .map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." {
                        "ticket".to_string()
                    } else {
                        format!("ticket.{path}")
                    };
                    crate::request::RequestError::new(field, e.inner().to_string())
                })?;
            Some(ticket)
        } else {
            None
        };
        let (ticket, prov) = self.registry_ticket(
            actor,
            &id,
            source.as_deref(),
            claimed,
            request_id,
            now,
            record,
        )?;
        match ticket {
            Some(t) => obj.insert("ticket".into(), json!(t)),
            None => obj.remove("ticket"),
        };
        Ok(Some(prov))
    }
}

impl Service {
    /// The ticket facts a request naming ticket `id` is decided on, and
    /// where they came from. `claimed`: the facts a trusted pipeline sent,
    /// applied to the registry first as its event (when `record`; a dry
    /// run only sees what they would do). `None`: the registry does not
    /// know the ticket (or not from `source`), and the request is decided
    /// as having no ticket, for the provenance's reason.
    #[allow(clippy::too_many_arguments)]
    fn registry_ticket(
        &self,
        actor: &Principal,
        id: &str,
        source: Option<&str>,
        claimed: Option<Ticket>,
        request_id: Option<String>,
        now: Millis,
        record: bool,
    ) -> Result<(Option<Ticket>, TicketProvenance), ServiceError> {
        let mut claim = None;
        let mut judged = None;
        if let Some(ticket) = claimed {
            let facts = TicketFacts {
                source: actor.name.clone(),
                event_id: request_id,
                ticket_id: id.to_string(),
                deleted: false,
                state: ticket.state,
                priority: Some(ticket.priority),
                assignee: ticket.assignee,
                opened_at: Millis::try_from(ticket.opened_at)
                    .ok()
                    .and_then(|s| s.checked_mul(1000)),
                updated_at: now,
            };
            let outcome = if record {
                self.apply_ticket_facts(&facts, &actor.name, false, true)?
            } else {
                let current = self.store.ticket(id)?;
                let change = TicketChange {
                    event: &facts,
                    actor: &actor.name,
                    at: now,
                    may_reopen: false,
                    resolved_ends_grants: true,
                };
                match tickets::judge(current, false, &change) {
                    Judged::Apply { before, after } => TicketOutcome::Applied {
                        before,
                        after,
                        revoked: Vec::new(),
                    },
                    Judged::Unchanged(o) => o,
                }
            };
            claim = Some(outcome.as_str());
            judged = Some(outcome.current().cloned());
        }
        // A dry run's claim is not stored: decide on what it would leave.
        let stored = match judged {
            Some(current) => current,
            None => self.store.ticket(id)?,
        };
        let mut prov = TicketProvenance {
            ticket: id.to_string(),
            known: false,
            source: None,
            event_id: None,
            updated_at: None,
            recorded_at: None,
            defaulted: Vec::new(),
            claim,
            reason: None,
        };
        let known = match (stored, source) {
            (Some(rec), Some(s)) if rec.source != s => {
                prov.reason = Some(format!(
                    "ticket {id} is not known to ticket source {s} (it belongs to another source)"
                ));
                None
            }
            (Some(rec), _) => Some(rec),
            (None, Some(s)) => {
                prov.reason = Some(format!("ticket {id} is not known to ticket source {s}"));
                None
            }
            (None, None) => {
                prov.reason = Some(format!("ticket {id} is not known to any ticket source"));
                None
            }
        };
        let Some(rec) = known else {
            return Ok((None, prov));
        };
        if rec.priority.is_none() {
            prov.defaulted.push("priority");
        }
        if rec.opened_at.is_none() {
            prov.defaulted.push("opened-at");
        }
        let ticket = super::reverify::ticket_of(&rec);
        prov.known = true;
        prov.source = Some(rec.source);
        prov.event_id = rec.last_event_id;
        prov.updated_at = Some(rec.updated_at);
        prov.recorded_at = Some(rec.recorded_at);
        Ok((Some(ticket), prov))
    }

    /// The typed form of [`Service::ticket_facts`] (for
    /// [`Service::submit`] and [`Service::dry_run_request`]): a typed
    /// request always carries a whole ticket, so for a caller not trusted
    /// with ticket facts only its id is read and the facts are the
    /// registry's; a trusted pipeline's are applied to the registry first,
    /// as in a JSON body. `req` must already be valid (a refused request
    /// records nothing in the registry).
    pub(super) fn typed_ticket_facts(
        &self,
        actor: &Principal,
        req: &mut crate::request::Request,
        now: Millis,
        record: bool,
    ) -> Result<Option<TicketProvenance>, ServiceError> {
        let Some(sent) = req.ticket.take() else {
            return Ok(None);
        };
        if !storable(&sent.id) {
            // Left for the decision's validation to refuse, naming it.
            req.ticket = Some(sent);
            return Ok(None);
        }
        let id = sent.id.clone();
        let claimed = self.trusted_context(actor).then_some(sent);
        if claimed.is_some() && record {
            let engine = self.engine();
            let mut candidate = req.clone();
            candidate.ticket.clone_from(&claimed);
            if candidate
                .validate(&engine.config().request_limits, engine.known_tasks())
                .is_err()
            {
                req.ticket = claimed;
                return Ok(None);
            }
        }
        let request_id = Some(req.id.clone()).filter(|r| storable(r));
        let (ticket, prov) =
            self.registry_ticket(actor, &id, None, claimed, request_id, now, record)?;
        req.ticket = ticket;
        Ok(Some(prov))
    }

    /// Whether the request `body` (its ticket as `ticket`) parses and
    /// passes validation as it stands.
    fn valid_apart_from_registry(
        &self,
        body: &Map<String, Value>,
        ticket: &Map<String, Value>,
        now: Millis,
    ) -> bool {
        if body.contains_key("now") {
            return false;
        }
        let mut candidate = body.clone();
        candidate.insert("ticket".into(), Value::Object(ticket.clone()));
        candidate.insert("now".into(), json!(now / 1000));
        let engine = self.engine();
        crate::request::from_value(Value::Object(candidate)).is_ok_and(|req| {
            req.validate(&engine.config().request_limits, engine.known_tasks())
                .is_ok()
        })
    }
}

/// The JSON answer of `GET /v1/tickets/{id}`.
pub fn ticket_json(t: &TicketRecord, grants: &[Grant]) -> Value {
    crate::answer::ticket_with_grants(t, grants)
}

#[cfg(feature = "server")]
mod webhook {
    use super::*;
    use crate::ticket::{TicketError, TicketEvent, TicketEventKind, TicketSource};

    /// Why a ticket system's webhook was not applied.
    #[derive(Debug, thiserror::Error)]
    pub enum WebhookError {
        /// No `[[ticket-sources]]` of that name (404).
        #[error("no ticket source `{0}`")]
        UnknownSource(String),
        /// Not authentic (401), too large (413) or not understood (400).
        #[error(transparent)]
        Rejected(#[from] TicketError),
        /// The registry could not be written (503).
        #[error(transparent)]
        Service(#[from] ServiceError),
    }

    impl From<&TicketEvent> for TicketFacts {
        fn from(e: &TicketEvent) -> Self {
            let ms = |t: u64| Millis::try_from(t).unwrap_or(Millis::MAX);
            TicketFacts {
                source: e.source.clone(),
                event_id: e.event_id.clone(),
                ticket_id: e.ticket_id.clone(),
                deleted: e.kind == TicketEventKind::Deleted,
                state: e.state,
                priority: e.priority,
                assignee: e.assignee.clone(),
                opened_at: e.opened_at.map(ms),
                updated_at: ms(e.updated_at),
            }
        }
    }

    impl Service {
        /// Believe webhooks from these ticket sources.
        pub fn with_ticket_sources(mut self, sources: Vec<TicketSource>) -> Self {
            self.tickets.sources = sources.into_iter().map(|s| (s.name.clone(), s)).collect();
            self
        }

        /// The configured source `name`.
        pub fn ticket_source(&self, name: &str) -> Option<&TicketSource> {
            self.tickets.sources.get(name)
        }

        /// A ticket system's webhook: verified over the raw bytes with the
        /// source's scheme before anything is parsed, then applied to the
        /// registry (changing nothing if replayed, older than the stored
        /// ticket, or about a ticket another source owns — each audited).
        pub fn ticket_webhook(
            &self,
            source: &str,
            headers: &axum::http::HeaderMap,
            body: &[u8],
        ) -> Result<TicketOutcome, WebhookError> {
            let src = self
                .ticket_source(source)
                .ok_or_else(|| WebhookError::UnknownSource(source.to_string()))?;
            let now = u64::try_from(self.now()).unwrap_or(0);
            let event = src.verify_and_parse(headers, body, now)?;
            let facts = TicketFacts::from(&event);
            Ok(self.apply_ticket_facts(
                &facts,
                &format!("ticket-source:{}", src.name),
                true,
                src.resolved_revokes,
            )?)
        }
    }
}

#[cfg(feature = "server")]
pub use webhook::WebhookError;
