//! Helpers for unit-testing a policy natively with `cargo test`.
//!
//! [`RequestBuilder`] starts from a plausible request (a human helpdesk
//! engineer, an open priority-3 ticket assigned to them, fresh MFA, a
//! Wednesday at 10:00 UTC) so that each test states only what it varies;
//! [`expect_allow`], [`expect_deny`] and [`expect_approval`] unwrap the
//! verdict so the test can assert on its terms, and [`take_logs`] returns what
//! the policy logged.
//!
//! A policy crate's unit test usually looks like this:
//!
//! ```
//! use jitgate_sdk::prelude::*;
//! use jitgate_sdk::testing::{RequestBuilder, expect_allow, expect_deny};
//!
//! struct OnlyHelpdesk;
//! impl Policy for OnlyHelpdesk {
//!     fn info() -> PolicyInfo {
//!         PolicyInfo::new("only-helpdesk", "1.0.0", "helpdesk may recover files", &["file-recovery"], 3600)
//!     }
//!     fn evaluate(req: &Request) -> Verdict {
//!         if !req.subject.has_role("helpdesk") {
//!             return Verdict::deny("only the helpdesk role may recover files");
//!         }
//!         Verdict::allow(clamp_ttl(req.requested_ttl, 3600), "helpdesk file recovery")
//!     }
//! }
//!
//! // #[test] fn helpdesk_is_allowed_for_at_most_an_hour()
//! let req = RequestBuilder::new("file-recovery").requested_ttl(7200).build();
//! assert_eq!(expect_allow(OnlyHelpdesk::evaluate(&req)).ttl, 3600);
//!
//! // #[test] fn other_roles_are_denied()
//! let req = RequestBuilder::new("file-recovery").roles(&["sales"]).build();
//! assert!(expect_deny(OnlyHelpdesk::evaluate(&req)).contains("helpdesk"));
//! ```

use crate::types::{Request, Subject, SubjectKind, Ticket, TicketState, Timestamp};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// 2026-11-25T10:00:00Z, a Wednesday: the default `now` of [`RequestBuilder`].
///
/// Local 07:00 to 18:59, inside business hours, in every offset from UTC−03:00
/// up to (not including) UTC+09:00, so a default request is not an
/// out-of-hours one by accident.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC};
///
/// assert_eq!(RequestBuilder::new("file-recovery").build().now, WEDNESDAY_10_UTC);
/// let t = LocalTime::at(WEDNESDAY_10_UTC, 0);
/// assert_eq!((t.weekday, t.hour, t.minute), (Weekday::Wednesday, 10, 0));
/// // Saturday 10:00 UTC, three days later:
/// let saturday = RequestBuilder::new("file-recovery").now(WEDNESDAY_10_UTC + 3 * 86_400).build();
/// assert!(LocalTime::at(saturday.now, 0).weekday.is_weekend());
/// ```
pub const WEDNESDAY_10_UTC: Timestamp = 1_795_600_800;

/// Builds a [`Request`] for tests.
///
/// [`RequestBuilder::new`]`(task)` (and [`Default`], with task
/// `file-recovery`) starts from this request; each method replaces one part:
///
/// | field | default |
/// |---|---|
/// | `id` | `"req-1"` |
/// | `subject.id` | `"alice"` ([`subject`](Self::subject)) |
/// | `subject.kind` | [`SubjectKind::Human`] ([`kind`](Self::kind)) |
/// | `subject.roles` | `["helpdesk"]` ([`roles`](Self::roles)) |
/// | `subject.groups` | none ([`groups`](Self::groups)) |
/// | `subject.mfa_at` | `now - 60`: MFA a minute ago ([`mfa_at`](Self::mfa_at)) |
/// | `task` | the `task` argument |
/// | `resource` | `"fileserver-01"` (no setter) |
/// | `entitlement` | `"backup-operator"` ([`entitlement`](Self::entitlement)) |
/// | `justification` | `"restore deleted finance share for INC-1"` ([`justification`](Self::justification)) |
/// | `requested_ttl` | `1800` seconds ([`requested_ttl`](Self::requested_ttl)) |
/// | `ticket` | `INC-1`, [`TicketState::Open`], priority 3, assigned to `alice`, opened at `now - 3600` ([`ticket`](Self::ticket), [`no_ticket`](Self::no_ticket)) |
/// | `now` | [`WEDNESDAY_10_UTC`] ([`now`](Self::now)) |
/// | `attributes` | none ([`attribute`](Self::attribute)) |
///
/// The default MFA and ticket times are computed from the default `now`:
/// [`now`](Self::now) moves only `now`, so set `mfa_at` (and call
/// [`ticket`](Self::ticket) after `now`) when the test depends on them.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC};
///
/// let req = RequestBuilder::default().build();
/// assert_eq!(req.task, "file-recovery");
/// assert_eq!(req.subject.id, "alice");
/// assert_eq!(req.subject.roles, ["helpdesk"]);
/// assert!(req.subject.groups.is_empty());
/// assert_eq!(req.subject.kind, SubjectKind::Human);
/// assert_eq!(req.mfa_age(), MfaAge::Age(60));
/// assert_eq!(req.requested_ttl, 1800);
/// assert_eq!(req.now, WEDNESDAY_10_UTC);
/// let ticket = req.ticket.as_ref().unwrap();
/// assert_eq!((ticket.id.as_str(), ticket.state, ticket.priority), ("INC-1", TicketState::Open, 3));
/// assert_eq!(ticket.assignee.as_deref(), Some("alice"));
/// assert!(req.attributes.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    req: Request,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        Self::new("file-recovery")
    }
}

impl RequestBuilder {
    /// A valid request for `task`, with the defaults listed on [`RequestBuilder`].
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("saas-admin").build();
    /// assert_eq!(req.task, "saas-admin");
    /// assert_eq!(req.entitlement, "backup-operator");
    /// ```
    pub fn new(task: &str) -> Self {
        let now = WEDNESDAY_10_UTC;
        RequestBuilder {
            req: Request {
                id: "req-1".to_string(),
                subject: Subject {
                    id: "alice".to_string(),
                    kind: SubjectKind::Human,
                    roles: Vec::from(["helpdesk".to_string()]),
                    groups: Vec::new(),
                    mfa_at: Some(now - 60),
                },
                task: task.to_string(),
                resource: "fileserver-01".to_string(),
                entitlement: "backup-operator".to_string(),
                justification: "restore deleted finance share for INC-1".to_string(),
                requested_ttl: 1800,
                ticket: Some(Ticket {
                    id: "INC-1".to_string(),
                    state: TicketState::Open,
                    priority: 3,
                    assignee: Some("alice".to_string()),
                    opened_at: now - 3600,
                }),
                now,
                attributes: Vec::new(),
            },
        }
    }

    /// Replace the subject's roles (default `["helpdesk"]`).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").roles(&["dba", "oncall"]).build();
    /// assert!(!req.subject.has_role("helpdesk"));
    /// assert!(req.subject.has_any_role(&["oncall"]));
    /// let nobody = RequestBuilder::new("file-recovery").roles(&[]).build();
    /// assert!(nobody.subject.roles.is_empty());
    /// ```
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.req.subject.roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Replace the subject's groups (default none).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").groups(&["tier2", "emea"]).build();
    /// assert_eq!(req.subject.groups, ["tier2", "emea"]);
    /// ```
    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.req.subject.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    /// Set the subject's id (default `"alice"`). The ticket's assignee is
    /// not changed.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").subject("bob").build();
    /// assert_eq!(req.subject.id, "bob");
    /// // The default ticket is still assigned to alice.
    /// assert_eq!(req.ticket.unwrap().assignee.as_deref(), Some("alice"));
    /// ```
    pub fn subject(mut self, id: &str) -> Self {
        self.req.subject.id = id.to_string();
        self
    }

    /// Set the subject's kind (default [`SubjectKind::Human`]).
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").kind(SubjectKind::Service).build();
    /// assert!(req.subject.is_service());
    /// ```
    pub fn kind(mut self, kind: SubjectKind) -> Self {
        self.req.subject.kind = kind;
        self
    }

    /// Set the MFA time (default a minute before the default `now`); `None`
    /// means the identity provider reported no MFA.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC};
    ///
    /// let req = RequestBuilder::new("file-recovery").mfa_at(None).build();
    /// assert_eq!(req.mfa_age(), MfaAge::Missing);
    /// let req = RequestBuilder::new("file-recovery").mfa_at(Some(WEDNESDAY_10_UTC - 1800)).build();
    /// assert_eq!(req.mfa_age(), MfaAge::Age(1800));
    /// ```
    pub fn mfa_at(mut self, at: Option<Timestamp>) -> Self {
        self.req.subject.mfa_at = at;
        self
    }

    /// Set the entitlement (default `"backup-operator"`).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("saas-admin").entitlement("global-admin").build();
    /// assert_eq!(req.entitlement, "global-admin");
    /// ```
    pub fn entitlement(mut self, e: &str) -> Self {
        self.req.entitlement = e.to_string();
        self
    }

    /// Set the justification (default `"restore deleted finance share for INC-1"`).
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").justification("   ").build();
    /// assert_eq!(req.justification_chars(), 0);
    /// ```
    pub fn justification(mut self, j: &str) -> Self {
        self.req.justification = j.to_string();
        self
    }

    /// Set the requested TTL in seconds (default 1800).
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").requested_ttl(86_400).build();
    /// assert_eq!(clamp_ttl(req.requested_ttl, 28_800), 28_800);
    /// ```
    pub fn requested_ttl(mut self, ttl: u32) -> Self {
        self.req.requested_ttl = ttl;
        self
    }

    /// Set `now` (default [`WEDNESDAY_10_UTC`]). Only `now` moves: the default
    /// MFA and ticket times stay where they were.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC};
    ///
    /// // Wednesday 22:00 UTC.
    /// let req = RequestBuilder::new("file-recovery").now(WEDNESDAY_10_UTC + 12 * 3600).build();
    /// assert_eq!(LocalTime::at(req.now, 0).hour, 22);
    /// // The default MFA (a minute before 10:00) is now 12 hours old.
    /// assert_eq!(req.mfa_age(), MfaAge::Age(12 * 3600 + 60));
    /// ```
    pub fn now(mut self, now: Timestamp) -> Self {
        self.req.now = now;
        self
    }

    /// Remove the ticket.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery").no_ticket().build();
    /// assert!(req.ticket.is_none() && !req.ticket_active());
    /// ```
    pub fn no_ticket(mut self) -> Self {
        self.req.ticket = None;
        self
    }

    /// Set the ticket's state, priority and assignee.
    ///
    /// Replaces the ticket with `INC-1` in these terms, opened an hour before
    /// the `now` set so far; after [`no_ticket`](Self::no_ticket) it adds one
    /// again.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery")
    ///     .ticket(TicketState::Resolved, 1, None)
    ///     .build();
    /// let ticket = req.ticket.as_ref().unwrap();
    /// assert_eq!((ticket.state, ticket.priority, ticket.assignee.clone()), (TicketState::Resolved, 1, None));
    /// assert_eq!(req.now - ticket.opened_at, 3600);
    /// assert!(req.ticket_finished());
    /// ```
    pub fn ticket(mut self, state: TicketState, priority: u8, assignee: Option<&str>) -> Self {
        let opened_at = self.req.now.saturating_sub(3600);
        self.req.ticket = Some(Ticket {
            id: "INC-1".to_string(),
            state,
            priority,
            assignee: assignee.map(String::from),
            opened_at,
        });
        self
    }

    /// Add an attribute (default none). Adding a key twice keeps both;
    /// [`Request::attribute`] returns the first.
    ///
    /// ```
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req = RequestBuilder::new("file-recovery")
    ///     .attribute("tz-offset-minutes", "60")
    ///     .attribute("site", "lyon")
    ///     .build();
    /// assert_eq!(req.attribute("site"), Some("lyon"));
    /// assert_eq!(req.attributes.len(), 2);
    /// ```
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.req
            .attributes
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The request.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::RequestBuilder;
    ///
    /// let req: Request = RequestBuilder::new("file-recovery").build();
    /// assert_eq!(req.id, "req-1");
    /// ```
    pub fn build(self) -> Request {
        self.req
    }
}

/// Take (and clear) the log lines this thread's policy code wrote.
///
/// Lines are kept per thread, so tests running in parallel do not see each
/// other's lines.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::take_logs;
///
/// log(LogLevel::Warn, "ticket INC-1 is on hold");
/// log(LogLevel::Info, "asking helpdesk-leads");
/// let lines = take_logs();
/// assert_eq!(lines.len(), 2);
/// assert_eq!(lines[0], (LogLevel::Warn, "ticket INC-1 is on hold".to_string()));
/// assert!(take_logs().is_empty()); // taken, so cleared
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(crate::LogLevel, String)> {
    crate::logging::imp::CAPTURED.with(|c| core::mem::take(&mut *c.borrow_mut()))
}

/// The reason of a deny; panics (failing the test) on any other verdict.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_deny;
///
/// let reason = expect_deny(Verdict::deny("MFA older than 15 minutes"));
/// assert!(reason.contains("MFA"));
/// ```
///
/// ```should_panic
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_deny;
///
/// expect_deny(Verdict::allow(60, "ok")); // panics: "expected a deny, got Allow(..)"
/// ```
pub fn expect_deny(v: crate::Verdict) -> String {
    match v {
        crate::Verdict::Deny(r) => r,
        other => panic!("expected a deny, got {other:?}"),
    }
}

/// The terms of an allow; panics (failing the test) on any other verdict.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_allow;
///
/// let terms = expect_allow(Verdict::allow_until_ticket_closed(1800, "INC-1"));
/// assert_eq!((terms.ttl, terms.revoke_on_ticket_close), (1800, true));
/// ```
///
/// ```should_panic
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_allow;
///
/// expect_allow(Verdict::not_applicable()); // panics: "expected an allow, got NotApplicable"
/// ```
pub fn expect_allow(v: crate::Verdict) -> crate::GrantTerms {
    match v {
        crate::Verdict::Allow(t) => t,
        other => panic!("expected an allow, got {other:?}"),
    }
}

/// The terms of a require-approval; panics (failing the test) on any other
/// verdict.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_approval;
///
/// let terms = expect_approval(Verdict::require_approval(&["helpdesk-leads"], 1, 3600, "out of hours"));
/// assert_eq!(terms.approver_groups, ["helpdesk-leads"]);
/// assert_eq!(terms.min_approvals, 1);
/// ```
///
/// ```should_panic
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::expect_approval;
///
/// expect_approval(Verdict::deny("no ticket")); // panics: "expected require-approval, got Deny(..)"
/// ```
pub fn expect_approval(v: crate::Verdict) -> crate::ApprovalTerms {
    match v {
        crate::Verdict::RequireApproval(t) => t,
        other => panic!("expected require-approval, got {other:?}"),
    }
}
