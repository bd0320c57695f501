//! Host-side bindings of world `jitgate:policy/policy-module`, generated from
//! `wit/` at compile time so the host and the SDK cannot drift apart, plus the
//! one-way conversion of a [`crate::Request`] into the WIT record.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "policy-module",
});

pub use exports::jitgate::policy::policy as exported;
pub use jitgate::policy::host;
pub use jitgate::policy::types as wit;

use crate::request::{Request, SubjectKind, TicketState};

/// Build the WIT request once per decision; every policy lowers it from the
/// same value.
pub fn to_wit(r: &Request) -> wit::Request {
    wit::Request {
        id: r.id.clone(),
        subject: wit::Subject {
            id: r.subject.id.clone(),
            kind: match r.subject.kind {
                SubjectKind::Human => wit::SubjectKind::Human,
                SubjectKind::Service => wit::SubjectKind::Service,
            },
            roles: r.subject.roles.clone(),
            groups: r.subject.groups.clone(),
            mfa_at: r.subject.mfa_at,
        },
        task: r.task.clone(),
        resource: r.resource.clone(),
        entitlement: r.entitlement.clone(),
        justification: r.justification.clone(),
        requested_ttl: r.requested_ttl,
        ticket: r.ticket.as_ref().map(|t| wit::Ticket {
            id: t.id.clone(),
            state: match t.state {
                TicketState::Open => wit::TicketState::Open,
                TicketState::InProgress => wit::TicketState::InProgress,
                TicketState::OnHold => wit::TicketState::OnHold,
                TicketState::Resolved => wit::TicketState::Resolved,
                TicketState::Closed => wit::TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee.clone(),
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: r.attributes.0.clone(),
    }
}
