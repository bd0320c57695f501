//! Greedy shrinking: simplify a violating request one step at a time,
//! keeping a step only when the property still fails, until no step
//! applies. What is left is the smallest request this search finds: no
//! attribute, role, group, MFA time, ticket or assignee it can do
//! without, the smallest TTL and priority, and the fixtures' own time,
//! names and texts wherever they still show the violation.

use crate::request::{Request, SubjectKind, TicketState};

/// Every simplification of `r`, simplest first.
fn candidates(r: &Request, default: Option<&Request>) -> Vec<Request> {
    let mut out = Vec::new();
    let mut with = |f: &dyn Fn(&mut Request)| {
        let mut c = r.clone();
        f(&mut c);
        if c != *r {
            out.push(c);
        }
    };
    with(&|c| c.attributes.0.clear());
    for i in 0..r.attributes.0.len() {
        with(&|c| {
            c.attributes.0.remove(i);
        });
    }
    with(&|c| c.ticket = None);
    with(&|c| c.subject.mfa_at = None);
    with(&|c| c.subject.roles.clear());
    with(&|c| c.subject.groups.clear());
    for i in 0..r.subject.roles.len() {
        with(&|c| {
            c.subject.roles.remove(i);
        });
    }
    for i in 0..r.subject.groups.len() {
        with(&|c| {
            c.subject.groups.remove(i);
        });
    }
    with(&|c| c.subject.kind = SubjectKind::Human);
    // Round times: on the hour, on the minute.
    with(&|c| c.now -= c.now % 3600);
    with(&|c| c.now -= c.now % 60);
    if let Some(t) = &r.ticket {
        with(&|c| {
            if let Some(t) = c.ticket.as_mut() {
                t.assignee = None;
            }
        });
        with(&|c| {
            if let Some(t) = c.ticket.as_mut() {
                t.state = TicketState::Open;
            }
        });
        for p in 1..t.priority {
            with(&|c| {
                if let Some(t) = c.ticket.as_mut() {
                    t.priority = p;
                }
            });
        }
    }
    if let Some(d) = default {
        // The fixtures' own values: the default time (and the ticket and
        // MFA times moved with it), names and texts.
        let shift = |c: &mut Request| {
            let delta = d.now as i64 - c.now as i64;
            let move_by = |t: u64| u64::try_from(t as i64 + delta).unwrap_or(t);
            c.now = d.now;
            c.subject.mfa_at = c.subject.mfa_at.map(move_by);
            if let Some(t) = c.ticket.as_mut() {
                t.opened_at = move_by(t.opened_at);
            }
        };
        with(&shift);
        with(&|c| c.subject.id = d.subject.id.clone());
        with(&|c| {
            let old = c.subject.id.clone();
            c.subject.id = d.subject.id.clone();
            if let Some(t) = c.ticket.as_mut()
                && t.assignee.as_ref() == Some(&old)
            {
                t.assignee = Some(d.subject.id.clone());
            }
        });
        with(&|c| c.resource = d.resource.clone());
        with(&|c| c.entitlement = d.entitlement.clone());
        with(&|c| c.justification = d.justification.clone());
        if let (Some(t), Some(dt)) = (&r.ticket, &d.ticket) {
            let _ = t;
            with(&|c| {
                if let Some(t) = c.ticket.as_mut() {
                    t.id = dt.id.clone();
                    t.opened_at = dt.opened_at.min(c.now);
                }
            });
        }
    }
    out
}

/// The smallest TTL in `1..=r.requested_ttl` that still violates, by
/// bisection (kept only if it really violates: the property need not be
/// monotone in the TTL).
fn smallest_ttl(r: &Request, violates: &mut dyn FnMut(&Request) -> bool) -> Option<Request> {
    let (mut lo, mut hi) = (1u32, r.requested_ttl);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let mut c = r.clone();
        c.requested_ttl = mid;
        if violates(&c) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if hi == r.requested_ttl {
        return None;
    }
    let mut c = r.clone();
    c.requested_ttl = hi;
    violates(&c).then_some(c)
}

/// Shrink `r` while `violates` holds; returns the result and the number of
/// steps kept. At most `budget` re-checks.
pub fn shrink(
    r: &Request,
    default: Option<&Request>,
    violates: &mut dyn FnMut(&Request) -> bool,
    budget: usize,
) -> (Request, usize) {
    let mut best = r.clone();
    let mut steps = 0;
    let mut checks = 0;
    loop {
        let mut progressed = false;
        for c in candidates(&best, default) {
            if checks >= budget {
                return (best, steps);
            }
            checks += 1;
            if violates(&c) {
                best = c;
                steps += 1;
                progressed = true;
                break;
            }
        }
        if !progressed {
            if checks >= budget {
                return (best, steps);
            }
            let mut check = |c: &Request| {
                checks += 1;
                violates(c)
            };
            if let Some(c) = smallest_ttl(&best, &mut check) {
                best = c;
                steps += 1;
                continue;
            }
            return (best, steps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Attributes, Subject, Ticket};

    fn big() -> Request {
        Request {
            id: "explore".into(),
            subject: Subject {
                id: "mallory".into(),
                kind: SubjectKind::Service,
                roles: vec!["sre".into(), "helpdesk".into(), "it-admin".into()],
                groups: vec!["oncall".into(), "break-glass".into()],
                mfa_at: Some(1000),
            },
            task: "file-recovery".into(),
            resource: "r2".into(),
            entitlement: "e2".into(),
            justification: "j2 long enough".into(),
            requested_ttl: 27_345,
            ticket: Some(Ticket {
                id: "INC-9".into(),
                state: TicketState::Closed,
                priority: 4,
                assignee: Some("bob".into()),
                opened_at: 500,
            }),
            now: 2000,
            attributes: Attributes(vec![("tz".into(), "60".into())]),
        }
    }

    #[test]
    fn shrinks_to_what_the_property_needs_and_the_smallest_ttl() {
        // "Violates" when the helpdesk role asks for more than 3600 s on a
        // closed ticket: everything else must go.
        let mut violates = |r: &Request| {
            r.subject.roles.contains(&"helpdesk".to_string())
                && r.requested_ttl > 3600
                && r.ticket
                    .as_ref()
                    .is_some_and(|t| t.state == TicketState::Closed)
        };
        let (small, steps) = shrink(&big(), None, &mut violates, 10_000);
        assert!(steps > 0);
        assert_eq!(small.subject.roles, ["helpdesk"]);
        assert!(small.subject.groups.is_empty());
        assert_eq!(small.subject.mfa_at, None);
        assert_eq!(small.subject.kind, SubjectKind::Human);
        assert_eq!(small.requested_ttl, 3601);
        assert!(small.attributes.is_empty());
        let t = small.ticket.expect("the ticket is needed");
        assert_eq!(
            (t.state, t.priority, t.assignee),
            (TicketState::Closed, 1, None)
        );
    }

    #[test]
    fn moves_to_the_default_time_and_texts_when_they_still_violate() {
        let mut default = big();
        default.now = 7200;
        default.resource = "r1".into();
        default.subject.id = "alice".into();
        let mut violates = |r: &Request| r.task == "file-recovery";
        let (small, _) = shrink(&big(), Some(&default), &mut violates, 10_000);
        assert_eq!(small.now, 7200);
        assert_eq!(small.resource, "r1");
        assert_eq!(small.subject.id, "alice");
        assert_eq!(small.requested_ttl, 1);
        assert_eq!(small.ticket, None);
    }

    #[test]
    fn the_check_budget_is_respected() {
        let mut n = 0;
        let mut violates = |_: &Request| {
            n += 1;
            true
        };
        let _ = shrink(&big(), None, &mut violates, 5);
        assert!(n <= 5, "{n}");
    }
}
