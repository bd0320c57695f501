//! Notifications: telling people that a request waits for them, or that
//! their grant was approved, rejected, activated, is about to expire, or
//! ended (issue 16).
//!
//! **Durable, never blocking.** A notice is an outbox event queued in the
//! same transaction as the transition that caused it, exactly like a
//! provisioning event, and delivered by the same dispatcher with the same
//! backoff ([`crate::provision::dispatch`]). A Slack or mail server that is
//! down therefore costs a retry later, never a decision now.
//!
//! **How notices are queued.** [`NotifyingStore`] wraps the store: every
//! grant change that commits effects is compared before/after, and the
//! notices the transition calls for are added to its effects. The grant
//! lifecycle itself knows nothing about notifications.
//!
//! **Their own queue per channel.** A notice's outbox `grant_id` key is
//! `<grant>#notify:<channel>` (events are ordered per key), so a channel
//! that is down delays neither the grant's provisioning events nor the
//! other channels. `grant-expiring` is queued at activation, due at
//! `expires-at − expiring-lead`, under its own key so that it never holds
//! back the grant's `grant-ended`; when it comes due the grant is read
//! again and the notice dropped if the grant is no longer active.
//!
//! **Routing.** The dispatcher has one [`Provisioner`]; [`Router`] hands
//! events whose kind starts with `notify:` to the channels and everything
//! else to the configured provisioner.
//!
//! **Hostile text.** Justifications, task and resource names come from
//! clients; every such field passes through [`clean`] (no control, bidi or
//! zero-width characters, bounded length) and, for Slack, [`slack_literal`]
//! (no mentions, links or formatting can be smuggled in).

mod channels;
mod config;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::{AuditDraft, AuditRecord};
use crate::grant::{Grant, Millis};
use crate::provision::{Delivery, Provisioner};
use crate::store::{
    AcceptedPolicySet, Change, Effects, GrantFilter, OutboxEvent, Quarantined, Review, Store,
    StoreError, TicketChange, TicketOutcome, TicketRecord, UpdateError,
};

pub use channels::Channel;
pub use config::{ChannelConfig, ChannelKind, NotifySettings, SmtpTls};

/// The notice kinds, as they appear in configuration and payloads.
pub const KINDS: [&str; 6] = [
    APPROVAL_REQUESTED,
    GRANT_APPROVED,
    GRANT_REJECTED,
    GRANT_ACTIVATED,
    GRANT_EXPIRING,
    GRANT_ENDED,
];
/// A pending grant waits for the approver groups.
pub const APPROVAL_REQUESTED: &str = "approval-requested";
/// People approved the grant (the requester is told).
pub const GRANT_APPROVED: &str = "grant-approved";
/// An approver rejected the grant.
pub const GRANT_REJECTED: &str = "grant-rejected";
/// The grant is in force.
pub const GRANT_ACTIVATED: &str = "grant-activated";
/// The grant ends within the configured lead time.
pub const GRANT_EXPIRING: &str = "grant-expiring";
/// The grant ended (expired, released, revoked, lapsed).
pub const GRANT_ENDED: &str = "grant-ended";

/// Outbox kinds of notices start with this; [`Router`] routes on it.
pub const OUTBOX_PREFIX: &str = "notify:";

/// Longest client-controlled text put into a notice, characters.
pub const MAX_FIELD: usize = 300;

/// The configured channels and settings, ready to send.
pub struct Notifier {
    channels: Vec<Channel>,
    settings: NotifySettings,
    /// The store without the wrapper: read when a `grant-expiring` comes due.
    store: Arc<dyn Store>,
}

impl Notifier {
    /// Build the channels; `env` reads `*-env` secrets. `Ok(None)` when no
    /// channel is configured. Errors name the offending key
    /// (`notifications[1].smtp-host: …`).
    pub fn from_config(
        settings: &NotifySettings,
        channels: &[ChannelConfig],
        env: &dyn Fn(&str) -> Option<String>,
        store: Arc<dyn Store>,
    ) -> Result<Option<Arc<Notifier>>, String> {
        if channels.is_empty() {
            return Ok(None);
        }
        settings.check()?;
        let mut names = BTreeSet::new();
        let mut built = Vec::with_capacity(channels.len());
        for (i, c) in channels.iter().enumerate() {
            let ch = Channel::build(c, settings, env)
                .map_err(|(key, msg)| format!("notifications[{i}].{key}: {msg}"))?;
            if !names.insert(ch.name().to_string()) {
                return Err(format!(
                    "notifications[{i}].name: `{}` is used twice",
                    ch.name()
                ));
            }
            built.push(ch);
        }
        Ok(Some(Arc::new(Notifier {
            channels: built,
            settings: settings.clone(),
            store,
        })))
    }

    /// The notices a transition calls for, one outbox event per channel
    /// that subscribes to its kind. `before` is `None` for a new grant.
    pub fn notices(&self, before: Option<&str>, g: &Grant, now: Millis) -> Vec<OutboxEvent> {
        let after = g.state.as_str();
        if before == Some(after) {
            return Vec::new();
        }
        let was_pending = before == Some("pending");
        let mut kinds: Vec<&str> = Vec::new();
        match after {
            "pending" if before.is_none() => kinds.push(APPROVAL_REQUESTED),
            "active" => {
                if was_pending {
                    kinds.push(GRANT_APPROVED);
                }
                kinds.push(GRANT_ACTIVATED);
            }
            "rejected" => kinds.push(GRANT_REJECTED),
            "expired" | "revoked" | "released" | "lapsed" if before.is_some() => {
                kinds.push(GRANT_ENDED)
            }
            _ => {}
        }
        let mut out = Vec::new();
        for kind in kinds {
            for ch in &self.channels {
                if ch.wants(kind) {
                    out.push(event(ch.name(), kind, g, now, now, &self.settings));
                }
            }
            if kind == GRANT_ACTIVATED
                && let Some(expires) = g.expires_at
            {
                let lead = i64::from(self.settings.expiring_lead_seconds) * 1000;
                let due = expires - lead;
                // A grant shorter than the lead time is told nothing extra.
                if due > now {
                    for ch in &self.channels {
                        if ch.wants(GRANT_EXPIRING) {
                            out.push(event(
                                ch.name(),
                                GRANT_EXPIRING,
                                g,
                                now,
                                due,
                                &self.settings,
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    async fn deliver(&self, ev: &OutboxEvent) -> Result<(), String> {
        let channel = ev.payload["channel"].as_str().unwrap_or_default();
        let Some(ch) = self.channels.iter().find(|c| c.name() == channel) else {
            // Queued under a configuration that had this channel; it is
            // gone now, and retrying cannot bring it back.
            tracing::warn!(event = %ev.id, channel, "notice for a channel no longer configured; dropped");
            return Ok(());
        };
        if ev.payload["kind"] == GRANT_EXPIRING && !self.still_expiring(ev).await? {
            return Ok(());
        }
        ch.send(ev).await
    }

    /// A `grant-expiring` is only worth sending while its grant is active
    /// with the expiry it was queued for.
    async fn still_expiring(&self, ev: &OutboxEvent) -> Result<bool, String> {
        let id = ev.payload["grant-id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let store = self.store.clone();
        let g = tokio::task::spawn_blocking(move || store.grant(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(g.is_some_and(|g| {
            g.state.as_str() == "active"
                && g.expires_at.is_some()
                && g.expires_at.map(Value::from) == Some(ev.payload["expires-at"].clone())
        }))
    }
}

/// One notice for `channel`. The outbox `created_at` is when it comes due
/// (the store starts `next_at` there), which is `now` except for
/// `grant-expiring`.
fn event(
    channel: &str,
    kind: &str,
    g: &Grant,
    _now: Millis,
    due: Millis,
    settings: &NotifySettings,
) -> OutboxEvent {
    let id = format!("{}:{OUTBOX_PREFIX}{channel}:{kind}", g.id);
    let key = if kind == GRANT_EXPIRING {
        format!("{}#{OUTBOX_PREFIX}{channel}:expiring", g.id)
    } else {
        format!("{}#{OUTBOX_PREFIX}{channel}", g.id)
    };
    let groups: BTreeSet<&str> = g
        .required
        .iter()
        .flat_map(|r| r.groups.iter().map(String::as_str))
        .collect();
    let (audience, groups): (&str, Vec<&str>) = if kind == APPROVAL_REQUESTED {
        ("approvers", groups.into_iter().collect())
    } else {
        ("requester", Vec::new())
    };
    let link = settings
        .console_url
        .as_deref()
        .map(|base| format!("{}/grants/{}", base.trim_end_matches('/'), g.id));
    OutboxEvent {
        payload: json!({
            "event-id": id,
            "kind": kind,
            "channel": channel,
            "audience": audience,
            "approver-groups": groups,
            "grant-id": g.id,
            "state": g.state.as_str(),
            "subject": g.request.subject.id,
            "requested-by": g.requested_by,
            "task": g.request.task,
            "resource": g.request.resource,
            "entitlement": g.request.entitlement,
            "justification": g.request.justification,
            "ticket": g.ticket_id(),
            "approved-by": g.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>(),
            "ttl-seconds": g.ttl,
            "expires-at": g.expires_at,
            "ended-at": g.ended_at,
            "end-reason": g.end_reason,
            "link": link,
        }),
        id,
        grant_id: key,
        kind: format!("{OUTBOX_PREFIX}{kind}"),
        created_at: due,
        attempts: 0,
        sequence: 0,
    }
}

/// Client-controlled text made safe to show anywhere: control characters
/// (newlines included), bidi overrides and zero-width characters become
/// spaces or vanish, runs of spaces collapse, and the result is cut at
/// [`MAX_FIELD`] characters (marked with `…`).
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FIELD * 4));
    let mut chars = 0;
    let mut last_space = true;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else if matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
        {
            continue;
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if chars == MAX_FIELD {
            out.push('…');
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.trim_end().to_string()
}

/// [`clean`] text as a Slack inline-code literal: `&`, `<`, `>` escaped as
/// Slack requires (so no `<!channel>`, `<@U…>` or `<url|label>` can form),
/// backticks replaced (so the literal cannot be closed early), and `@`
/// replaced by the full-width `＠` so `@here` or `@channel` stays text.
pub fn slack_literal(s: &str) -> String {
    let cleaned = clean(s);
    let mut out = String::with_capacity(cleaned.len() + 2);
    out.push('`');
    for c in cleaned.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            '@' => out.push('＠'),
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// Routes notices to the channels and every other event to `inner`.
pub struct Router {
    inner: Arc<dyn Provisioner>,
    notifier: Arc<Notifier>,
}

impl Router {
    /// `inner` keeps getting the provisioning events.
    pub fn new(inner: Arc<dyn Provisioner>, notifier: Arc<Notifier>) -> Self {
        Router { inner, notifier }
    }
}

impl Provisioner for Router {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> Delivery<'a> {
        if event.kind.starts_with(OUTBOX_PREFIX) {
            Box::pin(self.notifier.deliver(event))
        } else {
            self.inner.deliver(event)
        }
    }
}

/// A store that adds the notices each committed grant transition calls for
/// to that transition's effects (same transaction). Every other call goes
/// straight through.
pub struct NotifyingStore {
    inner: Arc<dyn Store>,
    notifier: Arc<Notifier>,
}

impl NotifyingStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, notifier: Arc<Notifier>) -> Self {
        NotifyingStore { inner, notifier }
    }

    fn wrap<'c>(
        &'c self,
        change: &'c mut Change<'_>,
    ) -> impl FnMut(&mut Grant) -> Result<Option<Effects>, crate::store::Abort> + 'c {
        move |g: &mut Grant| {
            let before = g.state.as_str();
            let fx = change(g)?;
            Ok(fx.map(|mut fx| {
                let now = fx
                    .audit
                    .first()
                    .map_or_else(crate::service::now_millis, |a| a.at);
                fx.outbox
                    .extend(self.notifier.notices(Some(before), g, now));
                fx
            }))
        }
    }
}

impl Store for NotifyingStore {
    fn create_grant(&self, grant: &Grant, mut effects: Effects) -> Result<(), StoreError> {
        let now = effects.audit.first().map_or(grant.created_at, |a| a.at);
        effects
            .outbox
            .extend(self.notifier.notices(None, grant, now));
        self.inner.create_grant(grant, effects)
    }
    fn update_grant_with(&self, id: &str, change: &mut Change<'_>) -> Result<Grant, UpdateError> {
        self.inner.update_grant_with(id, &mut self.wrap(change))
    }
    fn update_grants_with(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
    ) -> Result<Vec<Grant>, UpdateError> {
        self.inner.update_grants_with(ids, &mut self.wrap(change))
    }
    fn apply_ticket_change(
        &self,
        t: &TicketChange<'_>,
        change: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError> {
        self.inner.apply_ticket_change(t, &mut self.wrap(change))
    }
    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant(id)
    }
    fn grant_by_request(&self, by: &str, id: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant_by_request(by, id)
    }
    fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants(f)
    }
    fn open_grants_of_ticket(&self, t: &str) -> Result<Vec<String>, StoreError> {
        self.inner.open_grants_of_ticket(t)
    }
    fn due(&self, now: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner.due(now, limit)
    }
    fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        self.inner.next_deadline()
    }
    fn policy_set_sequence(&self) -> Result<Option<i64>, StoreError> {
        self.inner.policy_set_sequence()
    }
    fn accept_policy_set(
        &self,
        set: &AcceptedPolicySet,
        audit: Vec<AuditDraft>,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.accept_policy_set(set, audit)
    }
    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.inner.quarantined()
    }
    fn quarantine_count(&self) -> Result<u64, StoreError> {
        self.inner.quarantine_count()
    }
    fn count_active(&self) -> Result<u64, StoreError> {
        self.inner.count_active()
    }
    fn append_audit(&self, records: Vec<AuditDraft>) -> Result<(), StoreError> {
        self.inner.append_audit(records)
    }
    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_page(after, limit)
    }
    fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.inner.audit_head()
    }
    fn audit_of_grant(&self, g: &str) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_of_grant(g)
    }
    fn outbox_claim(
        &self,
        now: Millis,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.inner.outbox_claim(now, lease, limit)
    }
    fn outbox_delivered(&self, id: &str, at: Millis) -> Result<(), StoreError> {
        self.inner.outbox_delivered(id, at)
    }
    fn outbox_failed(&self, id: &str, next: Millis, e: &str) -> Result<(), StoreError> {
        self.inner.outbox_failed(id, next, e)
    }
    fn outbox_pending(&self) -> Result<u64, StoreError> {
        self.inner.outbox_pending()
    }
    fn ticket(&self, id: &str) -> Result<Option<TicketRecord>, StoreError> {
        self.inner.ticket(id)
    }
    fn reads_in_process(&self) -> bool {
        self.inner.reads_in_process()
    }
    fn reviews(&self, open: bool) -> Result<Vec<Review>, StoreError> {
        self.inner.reviews(open)
    }
    fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: Millis,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        self.inner.close_review(id, by, note, at, audit)
    }
}

#[cfg(test)]
mod tests;
