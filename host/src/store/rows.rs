//! Row mapping shared by both backends: a grant row's columns and a stored
//! audit record read the same way whichever database they come from, and a
//! grant's document is written the same way.

use super::StoreError;
use super::quarantine::GrantColumns;
use super::tickets::TicketRecord;
use crate::audit::{AuditDraft, AuditRecord};
use crate::grant::Grant;
use crate::request::TicketState;

/// The columns selected for an audit record, in [`record`]'s order.
pub const RECORD_COLS: &str = "seq, at, kind, actor, grant_id, request_id, data, prev_hash, hash";

/// One result row, read by column position. Each backend implements it over
/// its driver's row type so the mappings below are written once.
pub(crate) trait Row {
    /// The driver's error for a missing column or a type mismatch.
    type Error;
    /// A text column.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A boolean column.
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// A grant row as selected with [`GRANT_COLS`](super::quarantine::GRANT_COLS):
/// its indexed columns and its document.
pub(crate) fn grant_columns<R: Row + ?Sized>(r: &R) -> Result<(GrantColumns, String), R::Error> {
    Ok((
        GrantColumns {
            id: r.text(0)?,
            request_id: r.text(1)?,
            subject: r.text(2)?,
            ticket_id: r.opt_text(3)?,
            state: r.text(4)?,
            expires_at: r.opt_int(5)?,
            lapses_at: r.opt_int(6)?,
            revoke_on_ticket_close: r.flag(7)?,
            created_at: r.int(8)?,
        },
        r.text(9)?,
    ))
}

/// An audit record as selected with [`RECORD_COLS`].
pub(crate) fn record<R: Row + ?Sized>(r: &R) -> Result<AuditRecord, R::Error> {
    // The evidence text is kept as stored (the hash covers those bytes); a
    // text that is not JSON is left for verify to report, not an error here.
    Ok(AuditRecord::from_stored(
        r.int(0)?,
        AuditDraft {
            at: r.int(1)?,
            kind: r.text(2)?,
            actor: r.text(3)?,
            grant_id: r.opt_text(4)?,
            request_id: r.opt_text(5)?,
            data: serde_json::Value::Null,
            text: None,
        },
        r.text(6)?,
        r.text(7)?,
        r.text(8)?,
    ))
}

/// A ticket as selected with [`TICKET_COLS`](super::tickets::TICKET_COLS).
pub(crate) fn ticket<R: Row + ?Sized>(r: &R) -> Result<TicketRecord, StoreError>
where
    R::Error: std::error::Error + Send + Sync + 'static,
{
    let be = |e: R::Error| StoreError::Backend(Box::new(e));
    let id = r.text(0).map_err(be)?;
    let state = r.text(2).map_err(be)?;
    let priority = r.opt_int(3).map_err(be)?;
    Ok(TicketRecord {
        source: r.text(1).map_err(be)?,
        state: parse_ticket_state(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("ticket {id}: unknown state `{state}`")))?,
        priority: priority
            .map(|p| {
                u8::try_from(p)
                    .map_err(|_| StoreError::Corrupt(format!("ticket {id}: priority {p}")))
            })
            .transpose()?,
        assignee: r.opt_text(4).map_err(be)?,
        opened_at: r.opt_int(5).map_err(be)?,
        updated_at: r.int(6).map_err(be)?,
        last_event_id: r.opt_text(7).map_err(be)?,
        recorded_at: r.int(8).map_err(be)?,
        id,
    })
}

/// A ticket state as stored (its contract spelling).
pub(crate) fn ticket_state_str(s: TicketState) -> &'static str {
    match s {
        TicketState::Open => "open",
        TicketState::InProgress => "in-progress",
        TicketState::OnHold => "on-hold",
        TicketState::Resolved => "resolved",
        TicketState::Closed => "closed",
    }
}

fn parse_ticket_state(s: &str) -> Option<TicketState> {
    [
        TicketState::Open,
        TicketState::InProgress,
        TicketState::OnHold,
        TicketState::Resolved,
        TicketState::Closed,
    ]
    .into_iter()
    .find(|t| ticket_state_str(*t) == s)
}

/// The document stored for a grant. A grant that does not serialise is
/// refused (nothing is written), never stored as an empty document.
pub(crate) fn grant_doc(g: &Grant) -> Result<String, StoreError> {
    serde_json::to_string(g).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Row for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> Result<String, Self::Error> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error> {
        self.get(i)
    }
    fn int(&self, i: usize) -> Result<i64, Self::Error> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, Self::Error> {
        self.get(i)
    }
}

#[cfg(feature = "postgres")]
impl Row for tokio_postgres::Row {
    type Error = tokio_postgres::Error;
    fn text(&self, i: usize) -> Result<String, Self::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, Self::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, Self::Error> {
        self.try_get(i)
    }
}
