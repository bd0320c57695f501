//! The floor: the policy crates' own Rust functions, called natively (they
//! are rlibs), combined as the host combines them.

use jitgate_sdk::{Policy, Verdict};

use crate::{Answer, Rule};

/// The host's request as the SDK's plain struct (built once, outside the
/// timed loop: the floor is the rule itself).
pub fn to_sdk(r: &jitgate::Request) -> jitgate_sdk::Request {
    use jitgate::request::{SubjectKind, TicketState};
    jitgate_sdk::Request {
        id: r.id.clone(),
        subject: jitgate_sdk::Subject {
            id: r.subject.id.clone(),
            kind: match r.subject.kind {
                SubjectKind::Human => jitgate_sdk::SubjectKind::Human,
                SubjectKind::Service => jitgate_sdk::SubjectKind::Service,
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
        ticket: r.ticket.as_ref().map(|t| jitgate_sdk::Ticket {
            id: t.id.clone(),
            state: match t.state {
                TicketState::Open => jitgate_sdk::TicketState::Open,
                TicketState::InProgress => jitgate_sdk::TicketState::InProgress,
                TicketState::OnHold => jitgate_sdk::TicketState::OnHold,
                TicketState::Resolved => jitgate_sdk::TicketState::Resolved,
                TicketState::Closed => jitgate_sdk::TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee.clone(),
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: r.attributes.0.clone(),
    }
}

/// Evaluate `rule` natively.
pub fn answer(rule: Rule, req: &jitgate_sdk::Request) -> Answer {
    match rule {
        Rule::FileRecovery => match file_recovery::FileRecovery::evaluate(req) {
            Verdict::Allow(t) => Answer {
                outcome: "allow",
                ttl: Some(t.ttl),
            },
            _ => Answer::DENY,
        },
        Rule::Composed => {
            let verdicts = [
                (baseline::Baseline::evaluate(req), baseline::CAP),
                (
                    file_recovery::FileRecovery::evaluate(req),
                    file_recovery::CAP,
                ),
                (
                    business_hours::BusinessHours::evaluate(req),
                    business_hours::MAX_TTL,
                ),
            ];
            combine(req.requested_ttl, &verdicts)
        }
    }
}

/// Deny overrides, then require-approval, then allow; default deny. TTL is
/// the least of every grant's, the request's and each policy's max-ttl
/// (the host's global cap, 8 h, is never the binding one here).
fn combine(requested: u32, verdicts: &[(Verdict, u32)]) -> Answer {
    let mut ttl = requested;
    let (mut allow, mut approval) = (false, false);
    for (v, max_ttl) in verdicts {
        ttl = ttl.min(*max_ttl);
        match v {
            Verdict::Deny(_) => return Answer::DENY,
            Verdict::Allow(t) => {
                allow = true;
                ttl = ttl.min(t.ttl);
            }
            Verdict::RequireApproval(t) => {
                approval = true;
                ttl = ttl.min(t.ttl);
            }
            Verdict::NotApplicable => {}
        }
    }
    let outcome = if approval {
        "require-approval"
    } else if allow {
        "allow"
    } else {
        return Answer::DENY;
    };
    if ttl == 0 {
        return Answer::DENY;
    }
    Answer {
        outcome,
        ttl: Some(ttl),
    }
}
