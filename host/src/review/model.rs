//! The report's types: what [`super::AccessReview`] holds, serialised
//! kebab-case with every time in the answer format (RFC 3339, ms).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::grant::Millis;
use crate::timefmt::{serialize_ms, serialize_opt_ms};

/// How an elevated state came to be.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewDecided))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decided {
    /// The policies allowed it at once.
    AllowedByPolicy,
    /// People approved it (the decision required approval).
    ApprovedByPeople,
    /// A break-glass task (reviewed afterwards).
    BreakGlass,
}

impl Decided {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::AllowedByPolicy => "allowed-by-policy",
            Decided::ApprovedByPeople => "approved-by-people",
            Decided::BreakGlass => "break-glass",
        }
    }
}

/// How an elevated state ended (as of `until`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewEnd))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// At its expiry.
    Expired,
    /// Its holder released it early.
    Released,
    /// Its ticket ended (closed or resolved): revoked with it.
    TicketClosed,
    /// Revoked by an admin (or re-verification).
    Revoked,
    /// The target refused the access; what was applied was removed.
    Failed,
    /// Not ended by `until`.
    StillActive,
}

impl End {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            End::Expired => "expired",
            End::Released => "released",
            End::TicketClosed => "ticket-closed",
            End::Revoked => "revoked",
            End::Failed => "failed",
            End::StillActive => "still-active",
        }
    }
}

/// The ticket a state was for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewTicket))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TicketRef {
    /// Its id.
    pub id: String,
    /// The ticket source whose facts the decision used (absent: not
    /// recorded, or the registry did not know the ticket).
    pub source: Option<String>,
}

/// One policy's part in the decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewPolicyPart))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyPart {
    /// The policy.
    pub name: String,
    /// Its verdict (`allow`, `deny`, `require-approval`, `not-applicable`, `error`).
    pub verdict: String,
    /// Its reason.
    pub reason: Option<String>,
}

/// One approval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewApprover))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Approver {
    /// Who approved.
    pub name: String,
    /// When.
    #[serde(serialize_with = "serialize_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
}

/// One elevated state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewRow))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Row {
    /// The grant.
    pub grant_id: String,
    /// The client's request id.
    pub request_id: Option<String>,
    /// Whom the access was for.
    pub subject: String,
    /// Who sent the request.
    pub requested_by: String,
    /// The task.
    pub task: String,
    /// The resource.
    pub resource: String,
    /// The entitlement, if any.
    pub entitlement: Option<String>,
    /// The ticket, if any.
    pub ticket: Option<TicketRef>,
    /// Why, in the requester's words.
    pub justification: String,
    /// Every policy that decided, in order, with its verdict and reason.
    pub policies: Vec<PolicyPart>,
    /// How it was decided.
    pub decided: Decided,
    /// Who approved, when.
    pub approvers: Vec<Approver>,
    /// When it became active.
    #[serde(serialize_with = "serialize_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub activated_at: Millis,
    /// When it was due to expire.
    #[serde(serialize_with = "serialize_opt_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Millis>,
    /// When it ended (absent: still active at `until`).
    #[serde(serialize_with = "serialize_opt_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Millis>,
    /// How long it lasted: to its end, or to `until` when still active.
    pub duration_ms: i64,
    /// How it ended.
    pub end: End,
    /// Who or what ended it (`scheduler`, `ticket INC-1`, a principal).
    pub ended_by: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// From when it was due to end (expiry, ticket event) to the record
    /// that ended it; absent when it was not due (released, revoked) or
    /// has not ended.
    pub revocation_lag_ms: Option<i64>,
    /// Every audit record it was built from matches its hash.
    pub records_intact: bool,
}

/// Totals over a set of elevated states.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewTotals))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Totals {
    /// Elevated states.
    pub states: u64,
    /// … allowed by policy at once.
    pub allowed_by_policy: u64,
    /// … approved by people.
    pub approved_by_people: u64,
    /// … break-glass.
    pub break_glass: u64,
    /// … ended by `until`.
    pub ended: u64,
    /// … still active at `until`.
    pub still_active: u64,
    /// Median duration of those ended (the mean of the middle two for an
    /// even count, rounded down).
    pub median_duration_ms: Option<i64>,
    /// Ended by their ticket.
    pub ended_by_ticket: u64,
    /// `ended-by-ticket / ended`.
    pub share_ended_by_ticket: Option<f64>,
    /// p99 (nearest rank) of the revocation lags.
    pub revocation_lag_p99_ms: Option<i64>,
}

/// Whether the chain verified.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewChainState))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainState {
    /// Every record matches its hash and follows its predecessor.
    Verified,
    /// Some do not.
    Broken,
}

/// The audit chain as read for the report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ReviewChain))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Chain {
    /// `verified` or `broken`.
    pub state: ChainState,
    /// The first bad record.
    pub first_bad_seq: Option<i64>,
    /// Its fault, in words.
    pub first_fault: Option<String>,
    /// Faults found.
    pub faults: u64,
    /// Records read (and checked): the whole chain.
    pub records_read: u64,
}

/// The access review of one window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccessReview {
    /// The window's start (inclusive).
    #[serde(serialize_with = "serialize_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub since: Millis,
    /// The window's end (exclusive).
    #[serde(serialize_with = "serialize_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub until: Millis,
    /// Every elevated state, by activation time (then grant id).
    pub rows: Vec<Row>,
    /// Totals by task.
    pub totals: BTreeMap<String, Totals>,
    /// Totals over every task.
    pub overall: Totals,
    /// Whether the chain verified.
    pub chain: Chain,
}
