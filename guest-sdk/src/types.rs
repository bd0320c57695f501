//! Plain Rust mirrors of the WIT contract's records.
//!
//! They are the SDK's own types rather than the `wit-bindgen` output so that a
//! policy compiles and runs natively (no bindings there) and so that the
//! helpers below have a stable home. Converting from the bindings moves the
//! strings; nothing is copied.

use alloc::string::String;
use alloc::vec::Vec;

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = u64;

/// Where a ticket stands in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketState {
    /// Created, nobody has started on it.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Parked, waiting on someone.
    OnHold,
    /// Work done.
    Resolved,
    /// Finished and archived.
    Closed,
}

impl TicketState {
    /// `open` or `in-progress`: the ticket can justify access right now.
    pub fn is_active(self) -> bool {
        matches!(self, TicketState::Open | TicketState::InProgress)
    }

    /// `resolved` or `closed`: access for this ticket should end.
    pub fn is_finished(self) -> bool {
        matches!(self, TicketState::Resolved | TicketState::Closed)
    }
}

/// The ticket the access is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticketing system's identifier.
    pub id: String,
    /// Its current state.
    pub state: TicketState,
    /// 1 is the highest priority, 5 the lowest.
    pub priority: u8,
    /// Who the ticket is assigned to, if anyone.
    pub assignee: Option<String>,
    /// When it was opened.
    pub opened_at: Timestamp,
}

impl Ticket {
    /// `open` or `in-progress`.
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }
}

/// A person or a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A person.
    Human,
    /// A non-human identity.
    Service,
}

/// Who asks for access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Stable identifier.
    pub id: String,
    /// Person or workload.
    pub kind: SubjectKind,
    /// Job roles.
    pub roles: Vec<String>,
    /// Directory groups.
    pub groups: Vec<String>,
    /// Last multi-factor authentication.
    pub mfa_at: Option<Timestamp>,
}

impl Subject {
    /// The subject holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The subject holds at least one of `roles`.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.has_role(r))
    }

    /// The subject is a member of `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The subject is a workload, not a person.
    pub fn is_service(&self) -> bool {
        self.kind == SubjectKind::Service
    }
}

/// One request for elevated access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller's identifier of this request.
    pub id: String,
    /// Who asks.
    pub subject: Subject,
    /// The kind of work, e.g. `file-recovery`.
    pub task: String,
    /// The target system.
    pub resource: String,
    /// What to grant on the resource.
    pub entitlement: String,
    /// Why the access is needed.
    pub justification: String,
    /// Requested duration in seconds.
    pub requested_ttl: u32,
    /// The ticket, if any.
    pub ticket: Option<Ticket>,
    /// Decision time chosen by the host.
    pub now: Timestamp,
    /// Extra key/value context.
    pub attributes: Vec<(String, String)>,
}

impl Request {
    /// There is a ticket and it is `open` or `in-progress`.
    pub fn ticket_active(&self) -> bool {
        self.ticket.as_ref().is_some_and(Ticket::is_active)
    }

    /// There is a ticket and it is `resolved` or `closed`.
    pub fn ticket_finished(&self) -> bool {
        self.ticket.as_ref().is_some_and(|t| t.state.is_finished())
    }

    /// The first value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The justification without surrounding whitespace.
    pub fn trimmed_justification(&self) -> &str {
        self.justification.trim()
    }

    /// Length in characters (not bytes) of the trimmed justification.
    pub fn justification_chars(&self) -> usize {
        self.trimmed_justification().chars().count()
    }
}

/// The terms of an immediate grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms {
    /// Seconds the access may last.
    pub ttl: u32,
    /// Why the policy allows it.
    pub reason: String,
    /// End the grant when its ticket is resolved or closed.
    pub revoke_on_ticket_close: bool,
}

/// What approval a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTerms {
    /// An approver must belong to one of these groups.
    pub approver_groups: Vec<String>,
    /// Distinct approvers needed (at least 1).
    pub min_approvals: u8,
    /// Seconds the access may last once approved.
    pub ttl: u32,
    /// Why approval is needed.
    pub reason: String,
    /// End the grant, once approved, when its ticket is resolved or closed
    /// (contract 0.2.0).
    pub revoke_on_ticket_close: bool,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grant now on these terms.
    Allow(GrantTerms),
    /// Refuse, with the reason.
    Deny(String),
    /// Grant only after these approvals.
    RequireApproval(ApprovalTerms),
    /// No opinion.
    NotApplicable,
}

impl Verdict {
    /// Allow for `ttl` seconds; the grant outlives its ticket's closing.
    pub fn allow(ttl: u32, reason: impl Into<String>) -> Self {
        Verdict::Allow(GrantTerms {
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: false,
        })
    }

    /// Allow for `ttl` seconds, and end the grant when its ticket closes.
    pub fn allow_until_ticket_closed(ttl: u32, reason: impl Into<String>) -> Self {
        Verdict::Allow(GrantTerms {
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: true,
        })
    }

    /// Refuse.
    pub fn deny(reason: impl Into<String>) -> Self {
        Verdict::Deny(reason.into())
    }

    /// Require `min` distinct approvers from any of `groups`; once
    /// approved, the grant outlives its ticket's closing.
    pub fn require_approval(groups: &[&str], min: u8, ttl: u32, reason: impl Into<String>) -> Self {
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups: groups.iter().map(|g| String::from(*g)).collect(),
            min_approvals: min,
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: false,
        })
    }

    /// Require `min` distinct approvers from any of `groups`, and end the
    /// approved grant when its ticket closes.
    pub fn require_approval_until_ticket_closed(
        groups: &[&str],
        min: u8,
        ttl: u32,
        reason: impl Into<String>,
    ) -> Self {
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups: groups.iter().map(|g| String::from(*g)).collect(),
            min_approvals: min,
            ttl,
            reason: reason.into(),
            revoke_on_ticket_close: true,
        })
    }

    /// No opinion on this request.
    pub fn not_applicable() -> Self {
        Verdict::NotApplicable
    }

    /// The verdict's reason text, if it has one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Allow(t) => Some(&t.reason),
            Verdict::Deny(r) => Some(r),
            Verdict::RequireApproval(t) => Some(&t.reason),
            Verdict::NotApplicable => None,
        }
    }

    /// The TTL an allow or approval carries.
    pub fn ttl(&self) -> Option<u32> {
        match self {
            Verdict::Allow(t) => Some(t.ttl),
            Verdict::RequireApproval(t) => Some(t.ttl),
            _ => None,
        }
    }

    /// Is this a deny?
    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny(_))
    }
}

/// What a policy says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Unique name within a policy set.
    pub name: String,
    /// The policy's own version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// Tasks judged; `*` means every task.
    pub tasks: Vec<String>,
    /// Longest grant this policy will allow, in seconds.
    pub max_ttl: u32,
}

impl PolicyInfo {
    /// Build the info from borrowed parts.
    pub fn new(name: &str, version: &str, description: &str, tasks: &[&str], max_ttl: u32) -> Self {
        PolicyInfo {
            name: String::from(name),
            version: String::from(version),
            description: String::from(description),
            tasks: tasks.iter().map(|t| String::from(*t)).collect(),
            max_ttl,
        }
    }
}
