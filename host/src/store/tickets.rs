//! The ticket registry's rules, shared by both backends: what a ticket
//! event does to the stored ticket ([`judge`]), and the audit record of
//! every event, applied or not ([`audit_draft`]).
//!
//! The backends only lock, read, write and call these, inside one
//! transaction with the record and the grant endings, so the rules cannot
//! drift apart between SQLite and PostgreSQL.

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, AuditDraft};
use crate::grant::Millis;
use crate::request::TicketState;

/// The columns selected for a ticket, in the order `rows::ticket` reads them in.
pub const TICKET_COLS: &str =
    "id, source, state, priority, assignee, opened_at, updated_at, last_event_id, recorded_at";

/// How long an event id is remembered to recognise a replay, Unix ms: a
/// day, far past the five minutes a signed timestamp (`zendesk`,
/// `generic`) is accepted for. Older ids are pruned as new events arrive,
/// so the table holds about a day of events, not every event ever. A
/// delivery replayed after that is refused as stale unless it carries the
/// same ticket-system time as the event the registry applied last.
pub const SEEN_EVENT_RETENTION_MS: Millis = 24 * 3600 * 1000;

/// One ticket as the registry holds it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TicketRecord {
    /// The ticket's id, unique across sources.
    pub id: String,
    /// The source that owns it (a `[[ticket-sources]]` name, or the name of
    /// a trusted pipeline whose request bodies reported it).
    pub source: String,
    /// Where it stands.
    pub state: TicketState,
    /// 1 (highest) … 5, if ever reported.
    pub priority: Option<u8>,
    /// The jitgate subject it is assigned to.
    pub assignee: Option<String>,
    /// When it was opened, Unix ms, if reported.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub opened_at: Option<Millis>,
    /// The ticket system's time of the change applied last, Unix ms.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
    /// The id of the event applied last.
    pub last_event_id: Option<String>,
    /// When jitgate applied it, Unix ms.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Millis,
}

/// One ticket event, whatever reported it (a ticket system's webhook, a
/// trusted pipeline's request body), normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    /// Who reports it: a `[[ticket-sources]]` name or a pipeline's name.
    pub source: String,
    /// The reporter's id for this event, to recognise a replay.
    pub event_id: Option<String>,
    /// The ticket's id.
    pub ticket_id: String,
    /// Deleted in the ticket system (stored as `closed`).
    pub deleted: bool,
    /// Where it stands.
    pub state: TicketState,
    /// 1 (highest) … 5, if sent.
    pub priority: Option<u8>,
    /// Its assignee; `None`: unassigned.
    pub assignee: Option<String>,
    /// When it was opened, Unix ms, if sent.
    pub opened_at: Option<Millis>,
    /// The reporter's time of this change, Unix ms: later wins.
    pub updated_at: Millis,
}

/// One event to apply, with what the caller decided about its source.
#[derive(Debug, Clone)]
pub struct TicketChange<'a> {
    /// The normalised event.
    pub event: &'a TicketFacts,
    /// Who reported it, for the audit record.
    pub actor: &'a str,
    /// jitgate's time, Unix ms.
    pub at: Millis,
    /// Whether it may move a resolved or closed ticket back to a live
    /// state: a ticket system may reopen a ticket; a request body never.
    pub may_reopen: bool,
    /// Whether a ticket turning `resolved` ends its grants (the source's
    /// `resolved-revokes`); `closed` and deleted always do.
    pub resolved_ends_grants: bool,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum TicketOutcome {
    /// The ticket now holds the event's facts.
    Applied {
        /// The ticket before, if it was known.
        before: Option<TicketRecord>,
        /// The ticket now.
        after: TicketRecord,
        /// Grants ended by this event.
        revoked: Vec<String>,
    },
    /// The source already sent this event id: nothing changed.
    Replayed {
        /// The ticket as stored.
        current: Option<TicketRecord>,
    },
    /// Older than what the registry holds: nothing changed.
    Stale {
        /// The ticket as stored.
        current: TicketRecord,
    },
    /// The ticket id belongs to another source: refused, nothing changed.
    ForeignSource {
        /// The ticket as stored.
        current: TicketRecord,
    },
    /// A request body tried to reopen a resolved or closed ticket.
    ReopenRefused {
        /// The ticket as stored.
        current: TicketRecord,
    },
}

impl TicketOutcome {
    /// The spelling in audit records and API answers.
    pub fn as_str(&self) -> &'static str {
        match self {
            TicketOutcome::Applied { .. } => "applied",
            TicketOutcome::Replayed { .. } => "replayed",
            TicketOutcome::Stale { .. } => "stale",
            TicketOutcome::ForeignSource { .. } => "foreign-source",
            TicketOutcome::ReopenRefused { .. } => "reopen-refused",
        }
    }

    /// The ticket as the registry holds it after this event.
    pub fn current(&self) -> Option<&TicketRecord> {
        match self {
            TicketOutcome::Applied { after, .. } => Some(after),
            TicketOutcome::Replayed { current } => current.as_ref(),
            TicketOutcome::Stale { current }
            | TicketOutcome::ForeignSource { current }
            | TicketOutcome::ReopenRefused { current } => Some(current),
        }
    }
}

/// The verdict on an event before any grant is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Store `after` (and the event id as seen), then end grants if
    /// [`ends_grants`].
    Apply {
        /// The ticket before.
        before: Option<TicketRecord>,
        /// The ticket to store.
        after: TicketRecord,
    },
    /// Nothing to store but the audit record.
    Unchanged(TicketOutcome),
}

/// What `change` does to `current` (the stored ticket), given whether the
/// source already sent the event's id.
pub fn judge(current: Option<TicketRecord>, seen: bool, change: &TicketChange<'_>) -> Judged {
    let ev = change.event;
    if seen {
        return Judged::Unchanged(TicketOutcome::Replayed { current });
    }
    let updated_at = ev.updated_at;
    if let Some(cur) = &current {
        if cur.source != ev.source {
            return Judged::Unchanged(TicketOutcome::ForeignSource {
                current: cur.clone(),
            });
        }
        if updated_at < cur.updated_at {
            return Judged::Unchanged(TicketOutcome::Stale {
                current: cur.clone(),
            });
        }
    }
    // A deleted ticket is as good as closed: its grants end.
    let state = if ev.deleted {
        TicketState::Closed
    } else {
        ev.state
    };
    if let Some(cur) = &current
        && cur.state.is_finished()
        && !state.is_finished()
        && !change.may_reopen
    {
        return Judged::Unchanged(TicketOutcome::ReopenRefused {
            current: cur.clone(),
        });
    }
    let after = TicketRecord {
        id: ev.ticket_id.clone(),
        source: ev.source.clone(),
        state,
        priority: ev
            .priority
            .or_else(|| current.as_ref().and_then(|c| c.priority)),
        // An event always says who the ticket is assigned to (`None`:
        // unassigned), except a delete, which keeps the last assignee.
        assignee: if ev.deleted {
            current.as_ref().and_then(|c| c.assignee.clone())
        } else {
            ev.assignee.clone()
        },
        opened_at: ev
            .opened_at
            .or_else(|| current.as_ref().and_then(|c| c.opened_at)),
        updated_at,
        last_event_id: ev.event_id.clone(),
        recorded_at: change.at,
    };
    Judged::Apply {
        before: current,
        after,
    }
}

/// Whether the stored ticket `after` ends its revoke-on-close grants.
pub fn ends_grants(after: &TicketRecord, change: &TicketChange<'_>) -> bool {
    match after.state {
        TicketState::Closed => true,
        TicketState::Resolved => change.resolved_ends_grants,
        _ => false,
    }
}

/// The audit record of one event, whatever it did: source, event id, the
/// facts it carried, and the ticket before and after.
pub fn audit_draft(change: &TicketChange<'_>, outcome: &TicketOutcome) -> AuditDraft {
    let ev = change.event;
    let mut data = json!({
        "source": ev.source,
        "event-id": ev.event_id,
        "ticket": ev.ticket_id,
        "result": outcome.as_str(),
        "event": {
            "kind": if ev.deleted { "deleted" } else { "upsert" },
            "state": ev.state,
            "priority": ev.priority,
            "assignee": ev.assignee,
            "opened-at": ev.opened_at,
            "updated-at": ev.updated_at,
        },
    });
    match outcome {
        TicketOutcome::Applied {
            before,
            after,
            revoked,
        } => {
            data["before"] = json!(before);
            data["after"] = json!(after);
            data["revoked"] = json!(revoked);
        }
        other => data["current"] = json!(other.current()),
    }
    AuditDraft::new(change.at, audit::kind::TICKET_EVENT, change.actor, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, id: &str, state: TicketState, updated_at: Millis) -> TicketFacts {
        TicketFacts {
            source: source.into(),
            event_id: Some(id.into()),
            ticket_id: "INC-1".into(),
            deleted: false,
            state,
            priority: Some(2),
            assignee: Some("alice".into()),
            opened_at: Some(1_000),
            updated_at,
        }
    }

    fn change<'a>(ev: &'a TicketFacts, may_reopen: bool) -> TicketChange<'a> {
        TicketChange {
            event: ev,
            actor: "jira",
            at: 99,
            may_reopen,
            resolved_ends_grants: true,
        }
    }

    fn applied(j: Judged) -> TicketRecord {
        match j {
            Judged::Apply { after, .. } => after,
            other => panic!("not applied: {other:?}"),
        }
    }

    #[test]
    fn an_older_event_a_replay_and_another_sources_event_change_nothing() {
        let first = event("jira", "e1", TicketState::Open, 2_000);
        let stored = applied(judge(None, false, &change(&first, true)));
        assert_eq!(stored.updated_at, 2_000);
        let older = event("jira", "e0", TicketState::Closed, 1_999);
        assert!(matches!(
            judge(Some(stored.clone()), false, &change(&older, true)),
            Judged::Unchanged(TicketOutcome::Stale { .. })
        ));
        assert!(matches!(
            judge(Some(stored.clone()), true, &change(&first, true)),
            Judged::Unchanged(TicketOutcome::Replayed { .. })
        ));
        let foreign = event("zendesk", "z1", TicketState::Closed, 3_000);
        assert!(matches!(
            judge(Some(stored), false, &change(&foreign, true)),
            Judged::Unchanged(TicketOutcome::ForeignSource { .. })
        ));
    }

    #[test]
    fn a_request_body_never_reopens_a_closed_ticket_but_the_system_may() {
        let closed = event("ci", "c1", TicketState::Closed, 2_000);
        let stored = applied(judge(None, false, &change(&closed, false)));
        let reopen = event("ci", "c2", TicketState::Open, 3_000);
        assert!(matches!(
            judge(Some(stored.clone()), false, &change(&reopen, false)),
            Judged::Unchanged(TicketOutcome::ReopenRefused { .. })
        ));
        let reopened = applied(judge(Some(stored), false, &change(&reopen, true)));
        assert_eq!(reopened.state, TicketState::Open);
    }

    #[test]
    fn a_deleted_ticket_is_closed_and_ends_grants() {
        let mut del = event("jira", "d1", TicketState::Open, 2_000);
        del.deleted = true;
        let c = change(&del, true);
        let after = applied(judge(None, false, &c));
        assert_eq!(after.state, TicketState::Closed);
        assert!(ends_grants(&after, &c));
        let resolved = event("jira", "r1", TicketState::Resolved, 2_000);
        let mut c = change(&resolved, true);
        c.resolved_ends_grants = false;
        let after = applied(judge(None, false, &c));
        assert!(!ends_grants(&after, &c));
    }
}
