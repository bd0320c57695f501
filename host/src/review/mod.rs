//! Access review: for a window of time, every elevated state that existed
//! and why (`jitgate report`, `GET /v1/reports/access-review`, the
//! console's page).
//!
//! Built from the audit chain alone, verified on the same walk
//! ([`crate::audit::walk_store`]), so the report is the record an auditor
//! asks for and says whether that record is intact. An *elevated state* is
//! a grant that became active (or, for a provisioned entitlement, started
//! provisioning: access was granted then) and overlaps the window
//! `[since, until)`: activated before `until`, and not ended by `since`.
//! Records at or after `until` are not read for the lifecycle, so a report
//! of a past window never changes (a state that ended later is
//! `still-active` at `until`).
//!
//! What each record contributes:
//! - `request` (grant-id set, outcome `allow` or `require-approval`):
//!   subject, task, resource, entitlement, ticket, justification, every
//!   policy's verdict and reason; the ticket's source from its
//!   `ticket-facts`.
//! - `approval`: who approved and when.
//! - `review` with `opened`: the grant is break-glass (a review is opened
//!   exactly when a break-glass task's grant activates).
//! - `transition` to `active`/`provisioning`: activated, and when it is
//!   due to expire; to `deprovisioning`: how it is ending (`ending-as`),
//!   by whom, why; to `expired`/`released`/`revoked`/`failed`: ended.
//! - `ticket-event` listing the grant under `revoked`: the ticket's end
//!   ended it (`ticket-closed`), and the event is when it was due to end.
//!
//! How a state was decided: `break-glass` when its task is a break-glass
//! one (whatever the policies said), else `approved-by-people` when the
//! decision required approval, else `allowed-by-policy`.
//!
//! Totals (by task and overall): the median duration is over the states
//! that ended by `until` (still-active ones are counted apart); the share
//! ended by the ticket is of those ended; the revocation lag (from when a
//! state was due to end — its expiry, or the ticket event — to the record
//! that ended it) p99 is nearest-rank over the states that have one
//! (expired or ended by the ticket; a release or an admin's revocation
//! was not due).

mod build;
mod csv;
mod live;
mod model;
mod render;

pub use live::{ChainStatus, DEFAULT_MAX_BYTES, Live};

pub use model::{
    AccessReview, Approver, Chain, ChainState, Decided, End, PolicyPart, Row, TicketRef, Totals,
};

pub use render::text;

use crate::audit::{self, AuditRecord};
use crate::grant::Millis;
use crate::store::{Store, StoreError};
use build::Builder;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bound of the window is wrong; `field` is `since` or `until`.
    #[error("{field}: {message}")]
    Window {
        /// `since` or `until`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Parse a window bound (`field`: `since` or `until`): RFC 3339 with any
/// offset and fraction, to Unix milliseconds (a finer fraction is cut).
pub fn parse_time(field: &'static str, s: &str) -> Result<Millis, ReviewError> {
    let bad = |message: String| ReviewError::Window { field, message };
    if s.len() > 64 {
        return Err(bad("not an RFC 3339 time (too long)".into()));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            bad(format!(
                "`{}` is not an RFC 3339 time ({e}); e.g. 2026-12-01T09:00:00Z",
                crate::text::terminal_safe(s)
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| bad("out of range".into()))
}

fn check_window(since: Millis, until: Millis) -> Result<(), ReviewError> {
    if since >= until {
        return Err(ReviewError::Window {
            field: "until",
            message: format!(
                "the window is empty: since ({}) must be before until ({})",
                crate::timefmt::rfc3339_ms(since),
                crate::timefmt::rfc3339_ms(until)
            ),
        });
    }
    Ok(())
}

impl AccessReview {
    /// The report of `[since, until)` from `records`: the whole chain, in
    /// order from record 1 (verified here, as [`read`] does).
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = &'a AuditRecord>,
        since: Millis,
        until: Millis,
    ) -> Result<AccessReview, ReviewError> {
        check_window(since, until)?;
        let mut b = Builder::new(since, until);
        let mut v = audit::Verifier::default();
        for r in records {
            let faults = v.check(r);
            b.push(r, &faults);
        }
        for f in v.finish() {
            b.fault(&f);
        }
        Ok(b.build(v.checked))
    }

    /// The report as CSV (see the `csv` section of docs/review.md): the
    /// states, a blank line, the totals by task (and `(all)`), a blank
    /// line, the chain.
    pub fn to_csv(&self) -> String {
        csv::write(self)
    }
}

/// Read `store`'s whole chain, verifying it, and report `[since, until)`.
pub fn read(store: &dyn Store, since: Millis, until: Millis) -> Result<AccessReview, ReviewError> {
    check_window(since, until)?;
    let mut b = Builder::new(since, until);
    let report = audit::walk_store(
        store,
        audit::Anchors::new(),
        &mut |r, faults| b.push(r, faults),
        &mut |_| {},
    )?;
    Ok(b.build(report.checked))
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
