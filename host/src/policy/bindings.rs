//! Host-side bindings of world `jitgate:policy/policy-module`, generated from
//! `wit/` at compile time so the host and the SDK cannot drift apart, plus the
//! one-way conversion of a [`crate::Request`] into the WIT record.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "policy-module",
    // Parameters borrow: the request is lowered into each instance straight
    // from the host's own strings, with no owned copy per decision.
    ownership: Borrowing { duplicate_if_necessary: false },
    // `log` may trap: it enforces the deadline itself (guest code sees the
    // epoch only between host calls).
    imports: { "jitgate:policy/host.log": trappable },
});

pub use self::jitgate::policy::host;
pub use self::jitgate::policy::types as wit;

use crate::request::{Request, SubjectKind, TicketState};

/// The lists a borrowed WIT request points into: the request's own strings,
/// gathered as slices of `&str`. Three small vectors per decision, instead
/// of a copy of every string.
pub struct Lists<'a> {
    roles: Vec<&'a str>,
    groups: Vec<&'a str>,
    attributes: Vec<(&'a str, &'a str)>,
}

/// Gather `r`'s lists for [`to_wit`].
pub fn lists(r: &Request) -> Lists<'_> {
    Lists {
        roles: r.subject.roles.iter().map(String::as_str).collect(),
        groups: r.subject.groups.iter().map(String::as_str).collect(),
        attributes: r
            .attributes
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    }
}

/// Build the WIT request once per decision, borrowing `r`; every policy
/// lowers it from the same value.
pub fn to_wit<'a>(r: &'a Request, lists: &'a Lists<'a>) -> wit::Request<'a> {
    wit::Request {
        id: &r.id,
        subject: wit::Subject {
            id: &r.subject.id,
            kind: match r.subject.kind {
                SubjectKind::Human => wit::SubjectKind::Human,
                SubjectKind::Service => wit::SubjectKind::Service,
            },
            roles: &lists.roles,
            groups: &lists.groups,
            mfa_at: r.subject.mfa_at,
        },
        task: &r.task,
        resource: &r.resource,
        entitlement: &r.entitlement,
        justification: &r.justification,
        requested_ttl: r.requested_ttl,
        ticket: r.ticket.as_ref().map(|t| wit::Ticket {
            id: &t.id,
            state: match t.state {
                TicketState::Open => wit::TicketState::Open,
                TicketState::InProgress => wit::TicketState::InProgress,
                TicketState::OnHold => wit::TicketState::OnHold,
                TicketState::Resolved => wit::TicketState::Resolved,
                TicketState::Closed => wit::TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee.as_deref(),
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: &lists.attributes,
    }
}
