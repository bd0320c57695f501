//! What the service's records look like in an answer (HTTP and CLI JSON):
//! their stored serde form with every time made RFC 3339 UTC with
//! milliseconds ([`crate::timefmt`]).
//!
//! The stored forms are not changed: a grant document read by a replica
//! running an older build must still parse, and audit records and the
//! ticket snapshots inside them are hashed as stored. Each function names
//! the time fields of its type explicitly (from the typed value, not by
//! guessing at keys), so a new time field is added here too;
//! `tests/e2e/times.rs` walks a grant's whole life and fails on any
//! `*-at` field that is not in the answer format.

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::AuditRecord;
use crate::grant::{Grant, Millis};
use crate::policy_set::SetInfo;
use crate::store::{Quarantined, Review, TicketRecord};
use crate::timefmt::{rfc3339_ms, rfc3339_secs};

/// The audit record's own time as stored (Unix ms, hashed) is kept in
/// `at`; this key carries the same time in the answer format.
pub const AUDIT_AT_RFC3339: &str = "at-rfc3339";

fn value_of(v: &impl Serialize) -> Value {
    // These types serialise infallibly (no maps with non-string keys, no
    // failing Serialize impls); a failure would be a bug, shown as null
    // rather than a panic on a request path.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn set(v: &mut Value, key: &str, ms: Option<Millis>) {
    if let Some(obj) = v.as_object_mut()
        && obj.contains_key(key)
    {
        obj.insert(key.into(), ms.map_or(Value::Null, |m| rfc3339_ms(m).into()));
    }
}

/// A grant: `created-at`, `issued-at`, `expires-at`, `lapses-at`,
/// `ended-at`, each approval's `at`, provisioning's `applied-at` and
/// `removed-at` (the request's own times are RFC 3339 already).
pub fn grant(g: &Grant) -> Value {
    let mut v = value_of(g);
    set(&mut v, "created-at", Some(g.created_at));
    set(&mut v, "issued-at", g.issued_at);
    set(&mut v, "expires-at", g.expires_at);
    set(&mut v, "lapses-at", g.lapses_at);
    set(&mut v, "ended-at", g.ended_at);
    if let Some(list) = v.get_mut("approvals").and_then(Value::as_array_mut) {
        for (a, given) in list.iter_mut().zip(&g.approvals) {
            set(a, "at", Some(given.at));
        }
    }
    if let (Some(p), Some(given)) = (v.get_mut("provisioning"), &g.provisioning) {
        set(p, "applied-at", given.applied_at);
        set(p, "removed-at", given.removed_at);
    }
    v
}

/// Grants, in order.
pub fn grants(gs: &[Grant]) -> Vec<Value> {
    gs.iter().map(grant).collect()
}

/// An audit record: as stored (`at` in Unix ms, `data` verbatim: the
/// evidence is what the hash covers), plus [`AUDIT_AT_RFC3339`].
pub fn audit_record(r: &AuditRecord) -> Value {
    let mut v = value_of(r);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(AUDIT_AT_RFC3339.into(), rfc3339_ms(r.draft.at).into());
    }
    v
}

/// Audit records, in order.
pub fn audit_records(rs: &[AuditRecord]) -> Vec<Value> {
    rs.iter().map(audit_record).collect()
}

/// A break-glass review: `opened-at`, `closed-at`.
pub fn review(r: &Review) -> Value {
    let mut v = value_of(r);
    set(&mut v, "opened-at", Some(r.opened_at));
    set(&mut v, "closed-at", r.closed_at);
    v
}

/// A ticket as the registry holds it: `opened-at`, `updated-at`,
/// `recorded-at`.
pub fn ticket(t: &TicketRecord) -> Value {
    let mut v = value_of(t);
    set(&mut v, "opened-at", t.opened_at);
    set(&mut v, "updated-at", Some(t.updated_at));
    set(&mut v, "recorded-at", Some(t.recorded_at));
    v
}

/// A ticket with the grants that name it (`GET /v1/tickets/{id}`).
pub fn ticket_with_grants(t: &TicketRecord, gs: &[Grant]) -> Value {
    let mut v = ticket(t);
    v["grants"] = gs
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "state": g.state,
                "subject": g.request.subject.id,
                "task": g.request.task,
                "revoke-on-ticket-close": g.revoke_on_ticket_close,
                "expires-at": g.expires_at.map(rfc3339_ms),
            })
        })
        .collect();
    v
}

/// The running policy set: `issued-at` (Unix seconds in the manifest).
pub fn set_info(s: &SetInfo) -> Value {
    let mut v = value_of(s);
    if let (Some(obj), Some(secs)) = (v.as_object_mut(), s.issued_at) {
        obj.insert("issued-at".into(), rfc3339_secs(secs).into());
    }
    v
}

/// A quarantined grant row: `found-at`.
pub fn quarantined(q: &Quarantined) -> Value {
    let mut v = value_of(q);
    set(&mut v, "found-at", Some(q.found_at));
    v
}
