//! Grant rows whose stored document no longer parses.
//!
//! One bad row must never stop a sweep, a listing or start-up: an expiry
//! sweep that aborts its batch on it keeps every other grant alive. So a
//! row whose document does not parse is *quarantined*: its original text is
//! copied to the `quarantine` table (nothing stored is lost), it is logged
//! and counted, and the caller goes on with a grant salvaged from the
//! row's indexed columns (id, request id, subject, ticket, state, expiry,
//! lapse) and whatever fields of the document still parse. The salvaged
//! grant carries [`Grant::quarantined`], which the lifecycle uses to allow only
//! ending it (expiry, lapse, revocation, ticket close), never approving it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::grant::{Grant, GrantState, Millis};
use crate::request::{Attributes, Request, Subject, SubjectKind, Ticket, TicketState};

/// A quarantined grant row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Quarantined {
    /// The grant.
    pub grant_id: String,
    /// When the damage was first seen.
    pub found_at: Millis,
    /// Why the document did not parse.
    pub reason: String,
    /// The document as it was stored.
    pub doc: String,
}

/// The indexed columns of a grant row: readable even when its document is not.
#[derive(Debug, Clone)]
pub struct GrantColumns {
    /// `id`.
    pub id: String,
    /// `request_id`.
    pub request_id: String,
    /// `subject`.
    pub subject: String,
    /// `ticket_id`.
    pub ticket_id: Option<String>,
    /// `state`.
    pub state: String,
    /// `expires_at`.
    pub expires_at: Option<Millis>,
    /// `lapses_at`.
    pub lapses_at: Option<Millis>,
    /// `revoke_on_ticket_close`.
    pub revoke_on_ticket_close: bool,
    /// `created_at`.
    pub created_at: Millis,
}

/// The columns a store selects to decode a grant row, in
/// [`GrantColumns`] order followed by `doc`.
pub const GRANT_COLS: &str = "id, request_id, subject, ticket_id, state, expires_at, lapses_at, revoke_on_ticket_close, created_at, doc";

/// Decode a grant row: its document, or — if that does not parse — a
/// grant salvaged from the columns, with the parse error to quarantine it by.
pub fn decode(cols: &GrantColumns, doc: &str) -> (Grant, Option<String>) {
    match serde_json::from_str::<Grant>(doc) {
        Ok(g) => (g, None),
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(grant = %cols.id, error = %reason, "grant document does not parse; quarantined");
            (salvage(cols, doc, &reason), Some(reason))
        }
    }
}

fn field<T: DeserializeOwned>(v: &Value, key: &str) -> Option<T> {
    v.get(key)
        .and_then(|x| serde_json::from_value(x.clone()).ok())
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn salvage(cols: &GrantColumns, doc: &str, reason: &str) -> Grant {
    let v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let r = v.get("request").cloned().unwrap_or(Value::Null);
    let request = serde_json::from_value::<Request>(r.clone()).unwrap_or_else(|_| {
        let s = r.get("subject").cloned().unwrap_or(Value::Null);
        let t = r.get("ticket").cloned().unwrap_or(Value::Null);
        Request {
            id: cols.request_id.clone(),
            subject: Subject {
                id: cols.subject.clone(),
                kind: field(&s, "kind").unwrap_or(SubjectKind::Human),
                roles: field(&s, "roles").unwrap_or_default(),
                groups: field(&s, "groups").unwrap_or_default(),
                mfa_at: None,
            },
            task: text(&r, "task"),
            resource: text(&r, "resource"),
            entitlement: text(&r, "entitlement"),
            justification: text(&r, "justification"),
            requested_ttl: field(&r, "requested-ttl").unwrap_or(0),
            // The ticket id is kept whatever else is lost: ticket close
            // must still find and end this grant.
            ticket: cols.ticket_id.clone().map(|id| Ticket {
                id,
                state: field(&t, "state").unwrap_or(TicketState::Open),
                priority: field(&t, "priority").unwrap_or(5),
                assignee: field(&t, "assignee"),
                opened_at: 0,
            }),
            now: 0,
            attributes: Attributes::default(),
        }
    });
    Grant {
        id: cols.id.clone(),
        body_hash: text(&v, "body-hash"),
        requested_by: text(&v, "requested-by"),
        // An unknown state column is treated as ended: nothing acts on it.
        state: GrantState::parse(&cols.state).unwrap_or(GrantState::Denied),
        outcome: field(&v, "outcome").unwrap_or(crate::decision::Outcome::Deny),
        required: field(&v, "required").unwrap_or_default(),
        decision: v.get("decision").cloned().unwrap_or(Value::Null),
        approvals: field(&v, "approvals").unwrap_or_default(),
        ttl: field(&v, "ttl").unwrap_or(0),
        revoke_on_ticket_close: cols.revoke_on_ticket_close,
        break_glass: field(&v, "break-glass").unwrap_or(false),
        created_at: cols.created_at,
        issued_at: field(&v, "issued-at"),
        expires_at: cols.expires_at,
        lapses_at: cols.lapses_at,
        ended_at: field(&v, "ended-at"),
        ended_by: field(&v, "ended-by"),
        end_reason: field(&v, "end-reason"),
        revocation_lag_ms: field(&v, "revocation-lag-ms"),
        // Kept when it parses: a damaged grant must still be removable at its target.
        provisioning: field(&v, "provisioning"),
        quarantined: Some(reason.to_string()),
        ..Grant::of(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> GrantColumns {
        GrantColumns {
            id: "g-1".into(),
            request_id: "r-1".into(),
            subject: "alice".into(),
            ticket_id: Some("INC-1".into()),
            state: "active".into(),
            expires_at: Some(5_000),
            lapses_at: None,
            revoke_on_ticket_close: true,
            created_at: 1_000,
        }
    }

    #[test]
    fn a_document_that_does_not_parse_is_salvaged_from_its_columns() {
        let doc = r#"{"id":"g-1","request":{"ticket":{"opened-at":"18446744073709551615"},"task":"file-recovery"},"requested-by":"alice"}"#;
        let (g, reason) = decode(&cols(), doc);
        let reason = reason.expect("quarantined");
        assert_eq!(g.state, GrantState::Active);
        assert_eq!(g.expires_at, Some(5_000));
        assert_eq!(g.ticket_id(), Some("INC-1"));
        assert_eq!(g.request.subject.id, "alice");
        assert_eq!(g.request.task, "file-recovery");
        assert_eq!(g.requested_by, "alice");
        assert_eq!(g.quarantined.as_deref(), Some(reason.as_str()));
        // The salvaged grant itself is a well-formed document.
        let again: Grant = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(again, g);
    }

    #[test]
    fn text_that_is_not_json_is_salvaged_too() {
        let (g, reason) = decode(&cols(), "\u{0}garbage");
        assert!(reason.is_some());
        assert_eq!(g.id, "g-1");
        assert_eq!(g.request.id, "r-1");
        let mut c = cols();
        c.state = "???".into();
        let (g, _) = decode(&c, "garbage");
        assert!(g.state.is_final());
    }
}

#[cfg(test)]
mod round_trip {
    #[test]
    fn a_document_that_parses_is_not_quarantined() {
        let cols = super::tests_support_cols();
        let (g, _) = super::decode(&cols, "garbage");
        let doc = serde_json::to_string(&g).expect("doc");
        let (again, reason) = super::decode(&cols, &doc);
        assert!(reason.is_none());
        assert_eq!(again, g);
    }
}

#[cfg(test)]
fn tests_support_cols() -> GrantColumns {
    GrantColumns {
        id: "g-2".into(),
        request_id: "r-2".into(),
        subject: "bob".into(),
        ticket_id: None,
        state: "pending".into(),
        expires_at: None,
        lapses_at: Some(9),
        revoke_on_ticket_close: false,
        created_at: 3,
    }
}
