//! The ticket reconciler: every `reconcile-interval` it asks each pullable
//! ticket source for the current facts of the tickets that live grants
//! (active, pending or provisioning) were decided on, and applies them to the registry
//! exactly as a webhook would — so a ticket closed in its system without a
//! webhook (lost, misconfigured, never sent) still ends its grants. A
//! ticket the system no longer has counts as closed. A system that is down
//! changes nothing (grants stay as they are, never granted because of it)
//! and is counted in `jitgate_ticket_pull_failures_total`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::intake::blocking;
use super::{Service, ServiceError};
use crate::grant::GrantState;
use crate::outbound::Outbound;
use crate::request::TicketState;
use crate::store::{GrantFilter, TicketFacts, TicketOutcome};
use crate::ticket::{PullError, Pulled, TicketSourceKind};

/// A ticket source the reconciler pulls from.
#[derive(Clone)]
pub struct PullTarget {
    /// The `[[ticket-sources]]` name.
    pub source: String,
    /// Its API root (`base-url`).
    pub base_url: String,
    /// `user:secret` for HTTP basic auth (from `credentials-env`).
    pub credentials: String,
    /// Between passes (`reconcile-interval`).
    pub every: Duration,
}

impl std::fmt::Debug for PullTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credentials stay out of logs.
        f.debug_struct("PullTarget")
            .field("source", &self.source)
            .field("base_url", &self.base_url)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Tickets asked about.
    pub checked: usize,
    /// Tickets whose pulled facts changed the registry.
    pub applied: usize,
    /// Grants ended by those changes.
    pub revoked: Vec<String>,
    /// Tickets the system could not answer for.
    pub unavailable: usize,
}

/// Grants listed per page while collecting live tickets.
const PAGE: usize = 500;

impl Service {
    /// The ids of tickets owned by `source` that a live (active, pending or
    /// provisioning) grant was decided on.
    fn live_tickets_of(&self, source: &str) -> Result<BTreeSet<String>, ServiceError> {
        let mut ids = BTreeSet::new();
        // A provisioning grant is access on its way to being applied: its
        // ticket closing must end it as much as an active one's.
        for state in [
            GrantState::Active,
            GrantState::Pending,
            GrantState::Provisioning,
        ] {
            let mut before = None;
            loop {
                let page = self.store.grants(&GrantFilter {
                    state: Some(state),
                    subject: None,
                    ticket: None,
                    limit: PAGE,
                    before: before.clone(),
                })?;
                for g in &page {
                    if let Some(t) = &g.request.ticket {
                        ids.insert(t.id.clone());
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => {
                        before = Some((last.created_at, last.id.clone()));
                    }
                    _ => break,
                }
            }
        }
        let mut owned = BTreeSet::new();
        for id in ids {
            if self
                .store
                .ticket(&id)?
                .is_some_and(|record| record.source == source)
            {
                owned.insert(id);
            }
        }
        Ok(owned)
    }

    /// One pass over `target`'s live tickets.
    pub async fn reconcile_once(
        self: &Arc<Self>,
        target: &PullTarget,
        client: &Outbound,
    ) -> Result<ReconcileReport, ServiceError> {
        let source = self
            .ticket_source(&target.source)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("ticket source {}", target.source)))?;
        let svc = self.clone();
        let name = target.source.clone();
        let tickets = blocking(move || svc.live_tickets_of(&name)).await?;
        let mut report = ReconcileReport::default();
        let actor = format!("ticket-source:{} (reconcile)", source.name);
        for id in tickets {
            report.checked += 1;
            let now = self.now();
            let pulled = source
                .pull(
                    client,
                    &target.base_url,
                    &target.credentials,
                    &id,
                    u64::try_from(now).unwrap_or(0),
                )
                .await;
            let facts = match pulled {
                Ok(Pulled::Found(event)) => {
                    let mut facts = TicketFacts::from(&event);
                    if source.kind == TicketSourceKind::Zendesk
                        && facts.assignee.is_none()
                        && source.assignee_field != "assignee_id"
                    {
                        // Zendesk's ticket API names the assignee by id
                        // only: keep what the webhooks reported rather
                        // than read "unassigned" into the registry.
                        let (svc, id) = (self.clone(), id.clone());
                        let stored = blocking(move || Ok(svc.store.ticket(&id)?)).await?;
                        facts.assignee = stored.and_then(|t| t.assignee);
                    }
                    facts
                }
                Ok(Pulled::Gone) => TicketFacts {
                    source: source.name.clone(),
                    event_id: None,
                    ticket_id: id.clone(),
                    deleted: true,
                    state: TicketState::Closed,
                    priority: None,
                    assignee: None,
                    opened_at: None,
                    updated_at: now,
                },
                Err(e) => {
                    report.unavailable += 1;
                    self.metrics.ticket_pull_failures.inc();
                    log_pull_failure(&source.name, &id, &e);
                    continue;
                }
            };
            let (svc, actor, revokes) = (self.clone(), actor.clone(), source.resolved_revokes);
            let outcome =
                blocking(move || svc.apply_ticket_facts(&facts, &actor, true, revokes)).await?;
            if let TicketOutcome::Applied { revoked, .. } = outcome {
                report.applied += 1;
                report.revoked.extend(revoked);
            }
        }
        if !report.revoked.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(report)
    }
}

impl Service {
    /// Let a request name a ticket the registry does not know yet: the
    /// pullable sources in `targets` are asked for it (with `client`)
    /// before it is decided (see [`Service::pull_unknown_ticket`]).
    pub fn with_pull_targets(mut self, targets: Vec<PullTarget>, client: Outbound) -> Self {
        self.tickets.pulls = targets;
        self.tickets.client = Some(client);
        self
    }

    /// When request `body` names (by `ticket.id`, and optionally
    /// `ticket.source`) a ticket the registry does not know, ask the
    /// pullable sources for it and apply what one knows, as a webhook of
    /// that source would be: the request is then decided on the ticket
    /// system's facts. A system that does not know it, or does not answer
    /// (counted in `jitgate_ticket_pull_failures_total`), adds nothing, and
    /// the request is decided as having no ticket. Errors are logged, never
    /// returned: the request is decided either way.
    ///
    /// A Zendesk source is asked only when its `assignee-field` is
    /// `assignee_id`: Zendesk's ticket API names the assignee by id, and a
    /// ticket read as unassigned would be someone else's ticket judged as
    /// nobody's.
    pub async fn pull_unknown_ticket(
        self: &Arc<Self>,
        actor: &super::Principal,
        body: &serde_json::Value,
    ) {
        use super::Role;
        // Only those who may ask for access make jitgate ask a ticket system.
        if actor
            .require_any(&[Role::Requester, Role::Pipeline, Role::Admin])
            .is_err()
        {
            return;
        }
        // Nothing to pull from: no look-up either (it cost every request
        // naming a ticket a hand-off to a blocking thread and back).
        if self.tickets.pulls.is_empty() {
            return;
        }
        let Some(client) = self.tickets.client.clone() else {
            return;
        };
        let Some(t) = body.get("ticket").and_then(serde_json::Value::as_object) else {
            return;
        };
        let Some(id) = t
            .get("id")
            .and_then(serde_json::Value::as_str)
            .filter(|id| super::tickets::storable(id))
            .map(str::to_string)
        else {
            return;
        };
        let named = t.get("source").and_then(serde_json::Value::as_str);
        let known = if self.store.reads_in_process() {
            self.store
                .ticket(&id)
                .map(|t| t.is_some())
                .map_err(ServiceError::from)
        } else {
            let (svc, key) = (self.clone(), id.clone());
            blocking(move || Ok(svc.store.ticket(&key)?.is_some())).await
        };
        match known {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(ticket = %id, error = %e, "ticket look-up before a pull failed");
                return;
            }
        }
        for target in &self.tickets.pulls {
            if named.is_some_and(|n| n != target.source) {
                continue;
            }
            let Some(source) = self.ticket_source(&target.source).cloned() else {
                continue;
            };
            if source.kind == TicketSourceKind::Zendesk && source.assignee_field != "assignee_id" {
                continue;
            }
            let now = u64::try_from(self.now()).unwrap_or(0);
            let pulled = source
                .pull(&client, &target.base_url, &target.credentials, &id, now)
                .await;
            let event = match pulled {
                Ok(Pulled::Found(event)) => event,
                Ok(Pulled::Gone) => continue,
                Err(e) => {
                    self.metrics.ticket_pull_failures.inc();
                    log_pull_failure(&source.name, &id, &e);
                    continue;
                }
            };
            let facts = TicketFacts::from(&event);
            let actor = format!("ticket-source:{} (pull)", source.name);
            let (svc, revokes) = (self.clone(), source.resolved_revokes);
            if let Err(e) =
                blocking(move || svc.apply_ticket_facts(&facts, &actor, true, revokes)).await
            {
                tracing::warn!(ticket = %id, error = %e, "a pulled ticket could not be recorded");
            }
            return;
        }
    }
}

fn log_pull_failure(source: &str, ticket: &str, e: &PullError) {
    tracing::warn!(source, ticket, error = %e, "ticket pull failed; grants left as they are");
}

/// Reconcile `target` every `target.every` until dropped (a background
/// task of `Server::start`).
pub async fn reconcile_every(service: Arc<Service>, target: PullTarget, client: Outbound) {
    let every = target.every.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match service.reconcile_once(&target, &client).await {
            Ok(r) if !r.revoked.is_empty() || r.unavailable > 0 => {
                tracing::info!(source = %target.source, checked = r.checked, applied = r.applied,
                    revoked = r.revoked.len(), unavailable = r.unavailable, "tickets reconciled");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %target.source, error = %e, "ticket reconcile failed")
            }
        }
    }
}
