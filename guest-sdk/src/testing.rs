//! Helpers for unit-testing a policy natively with `cargo test`.
//!
//! [`RequestBuilder`] starts from a plausible request (a human helpdesk
//! engineer, an open priority-3 ticket assigned to them, fresh MFA, a
//! Wednesday at 10:00 UTC) so that each test states only what it varies.

use crate::types::{Request, Subject, SubjectKind, Ticket, TicketState, Timestamp};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// 2026-11-25T10:00:00Z, a Wednesday: the default `now` of [`RequestBuilder`].
pub const WEDNESDAY_10_UTC: Timestamp = 1_795_600_800;

/// Builds a [`Request`] for tests.
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
    /// A valid request for `task`.
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

    /// Set the subject's roles.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.req.subject.roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Set the subject's groups.
    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.req.subject.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    /// Set the subject's id.
    pub fn subject(mut self, id: &str) -> Self {
        self.req.subject.id = id.to_string();
        self
    }

    /// Set the subject's kind.
    pub fn kind(mut self, kind: SubjectKind) -> Self {
        self.req.subject.kind = kind;
        self
    }

    /// Set the MFA time.
    pub fn mfa_at(mut self, at: Option<Timestamp>) -> Self {
        self.req.subject.mfa_at = at;
        self
    }

    /// Set the entitlement.
    pub fn entitlement(mut self, e: &str) -> Self {
        self.req.entitlement = e.to_string();
        self
    }

    /// Set the justification.
    pub fn justification(mut self, j: &str) -> Self {
        self.req.justification = j.to_string();
        self
    }

    /// Set the requested TTL.
    pub fn requested_ttl(mut self, ttl: u32) -> Self {
        self.req.requested_ttl = ttl;
        self
    }

    /// Set `now`.
    pub fn now(mut self, now: Timestamp) -> Self {
        self.req.now = now;
        self
    }

    /// Remove the ticket.
    pub fn no_ticket(mut self) -> Self {
        self.req.ticket = None;
        self
    }

    /// Change the ticket's state, priority or assignee (the ticket must exist).
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

    /// Add an attribute.
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.req
            .attributes
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The request.
    pub fn build(self) -> Request {
        self.req
    }
}

/// Take (and clear) the log lines this thread's policy code wrote.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(crate::LogLevel, String)> {
    crate::logging::imp::CAPTURED.with(|c| core::mem::take(&mut *c.borrow_mut()))
}

/// The reason of a deny; panics (failing the test) on any other verdict.
pub fn expect_deny(v: crate::Verdict) -> String {
    match v {
        crate::Verdict::Deny(r) => r,
        other => panic!("expected a deny, got {other:?}"),
    }
}

/// The terms of an allow; panics on any other verdict.
pub fn expect_allow(v: crate::Verdict) -> crate::GrantTerms {
    match v {
        crate::Verdict::Allow(t) => t,
        other => panic!("expected an allow, got {other:?}"),
    }
}

/// The terms of a require-approval; panics on any other verdict.
pub fn expect_approval(v: crate::Verdict) -> crate::ApprovalTerms {
    match v {
        crate::Verdict::RequireApproval(t) => t,
        other => panic!("expected require-approval, got {other:?}"),
    }
}
