//! The one pass over the chain: each record adds to what is known of its
//! grant ([`Builder::push`]); [`Builder::build`] keeps the grants whose
//! elevated state overlaps the window and totals them.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::{
    AccessReview, Approver, Chain, ChainState, Decided, End, PolicyPart, Row, TicketRef, Totals,
};
use crate::audit::{self, AuditRecord, ChainError};
use crate::grant::Millis;

/// What is known of one grant so far.
#[derive(Default)]
struct Entry {
    request: Option<Arc<Requested>>,
    approvers: Vec<Approver>,
    break_glass: bool,
    activated_at: Option<Millis>,
    expires_at: Option<Millis>,
    ending: Option<(End, String, String)>,
    ended_at: Option<Millis>,
    intact: bool,
}

#[derive(Clone)]
pub(super) struct Requested {
    request_id: Option<String>,
    subject: String,
    requested_by: String,
    task: String,
    resource: String,
    entitlement: Option<String>,
    ticket: Option<TicketRef>,
    justification: String,
    policies: Vec<PolicyPart>,
    needed_approval: bool,
}

/// What one audit record adds to a review, read out of it once: the
/// review of any window is these, applied in chain order
/// ([`Builder::apply`]). [`super::Live`] keeps them instead of the
/// records, so a window is built without reading or hashing the chain again.
pub(super) struct Event {
    at: Millis,
    /// The record does not match its hash.
    edited: bool,
    what: What,
}

pub(super) enum What {
    /// A ticket event that ended these grants.
    TicketEnded {
        grants: Vec<Arc<str>>,
    },
    /// A request; `None` when it was denied (or is unreadable).
    Request {
        grant: Arc<str>,
        req: Option<Arc<Requested>>,
    },
    Approval {
        grant: Arc<str>,
        approver: String,
    },
    /// A break-glass review was opened.
    BreakGlass {
        grant: Arc<str>,
    },
    Transition {
        grant: Arc<str>,
        to: String,
        expires_at: Option<Millis>,
        ending_as: Option<End>,
        actor: String,
        reason: String,
    },
}

impl What {
    /// The grant the record is about (none for a ticket event).
    fn grant(&self) -> Option<&Arc<str>> {
        match self {
            What::TicketEnded { .. } => None,
            What::Request { grant, .. }
            | What::Approval { grant, .. }
            | What::BreakGlass { grant }
            | What::Transition { grant, .. } => Some(grant),
        }
    }
}

impl Event {
    /// Bytes this event holds on the heap (an estimate: string capacities
    /// and the structs behind pointers, not the allocator's slack; the
    /// event itself is counted by whoever holds it).
    pub(super) fn footprint(&self) -> usize {
        let s = |v: &String| v.capacity();
        let o = |v: &Option<String>| v.as_ref().map_or(0, String::capacity);
        match &self.what {
            What::TicketEnded { grants } => grants.iter().map(|g| g.len() + 16).sum(),
            What::Request { grant, req } => {
                grant.len()
                    + 16
                    + req.as_ref().map_or(0, |r| {
                        std::mem::size_of::<Requested>()
                            + o(&r.request_id)
                            + s(&r.subject)
                            + s(&r.requested_by)
                            + s(&r.task)
                            + s(&r.resource)
                            + o(&r.entitlement)
                            + r.ticket.as_ref().map_or(0, |t| s(&t.id) + o(&t.source))
                            + s(&r.justification)
                            + r.policies
                                .iter()
                                .map(|p| {
                                    std::mem::size_of::<PolicyPart>()
                                        + s(&p.name)
                                        + s(&p.verdict)
                                        + o(&p.reason)
                                })
                                .sum::<usize>()
                    })
            }
            What::Approval { grant, approver } => grant.len() + 16 + s(approver),
            What::BreakGlass { grant } => grant.len() + 16,
            What::Transition {
                grant,
                to,
                actor,
                reason,
                ..
            } => grant.len() + 16 + s(to) + s(actor) + s(reason),
        }
    }

    /// What `r` (with `faults`) adds; `None` for a record no review reads.
    pub(super) fn of(r: &AuditRecord, faults: &[ChainError]) -> Option<Event> {
        let data = &r.draft.data;
        let edited = faults
            .iter()
            .any(|f| matches!(f, ChainError::Edited { .. }));
        let ev = |what| {
            Some(Event {
                at: r.draft.at,
                edited,
                what,
            })
        };
        if r.draft.kind == audit::kind::TICKET_EVENT {
            let grants = data
                .get("revoked")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(Arc::from)
                .collect::<Vec<_>>();
            if grants.is_empty() {
                return None;
            }
            return ev(What::TicketEnded { grants });
        }
        let grant: Arc<str> = Arc::from(r.draft.grant_id.as_deref()?);
        match r.draft.kind.as_str() {
            audit::kind::REQUEST => ev(What::Request {
                grant,
                req: requested(r).map(Arc::new),
            }),
            audit::kind::APPROVAL => ev(What::Approval {
                grant,
                approver: str_of(data, "approver").unwrap_or_else(|| r.draft.actor.clone()),
            }),
            audit::kind::REVIEW if data.get("opened") == Some(&Value::Bool(true)) => {
                ev(What::BreakGlass { grant })
            }
            audit::kind::TRANSITION => ev(What::Transition {
                grant,
                to: str_of(data, "to").unwrap_or_default(),
                expires_at: data.get("expires-at").and_then(Value::as_i64),
                ending_as: data
                    .get("ending-as")
                    .and_then(Value::as_str)
                    .and_then(end_of),
                actor: r.draft.actor.clone(),
                reason: str_of(data, "reason").unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

pub(super) struct Builder {
    since: Millis,
    until: Millis,
    // Hashed, not ordered: a report applies every record of the chain
    // (42,000 lookups at 10,000 grants); rows are sorted once at the end.
    grants: HashMap<Arc<str>, Entry>,
    /// Grants ended by a ticket event, and when the event was recorded.
    ticket_ends: HashMap<Arc<str>, Millis>,
    /// Grants already settled as outside the report (never active, or
    /// ended by `since`): later records about them are ignored.
    settled: HashSet<Arc<str>>,
    first_fault: Option<ChainError>,
    faults: u64,
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn end_of(state: &str) -> Option<End> {
    Some(match state {
        "expired" => End::Expired,
        "released" => End::Released,
        "revoked" => End::Revoked,
        "failed" => End::Failed,
        _ => return None,
    })
}

impl Builder {
    pub(super) fn new(since: Millis, until: Millis) -> Builder {
        Builder {
            since,
            until,
            grants: HashMap::new(),
            ticket_ends: HashMap::new(),
            settled: HashSet::new(),
            first_fault: None,
            faults: 0,
        }
    }

    /// The chain's faults as already counted elsewhere (a [`super::Live`]
    /// verified the records when it read them).
    pub(super) fn faults_found(&mut self, first: Option<&ChainError>, count: u64) {
        self.first_fault = first.cloned();
        self.faults = count;
    }

    pub(super) fn fault(&mut self, f: &ChainError) {
        self.faults += 1;
        if self.first_fault.is_none() {
            self.first_fault = Some(f.clone());
        }
    }

    /// Add one record of the chain, with its faults (empty when sound).
    pub(super) fn push(&mut self, r: &AuditRecord, faults: &[ChainError]) {
        for f in faults {
            self.fault(f);
        }
        if let Some(ev) = Event::of(r, faults) {
            self.apply(&ev);
        }
    }

    /// Add what one record says ([`Event::of`]), in chain order.
    pub(super) fn apply(&mut self, ev: &Event) {
        if ev.at >= self.until {
            return;
        }
        let edited = ev.edited;
        if let What::TicketEnded { grants } = &ev.what {
            for id in grants {
                if let Some(e) = self.grants.get_mut(id) {
                    e.intact &= !edited;
                    self.ticket_ends.insert(Arc::clone(id), ev.at);
                }
            }
            return;
        }
        let Some(id) = ev.what.grant() else {
            return;
        };
        if self.settled.contains(id) {
            return;
        }
        match &ev.what {
            What::TicketEnded { .. } => {}
            What::Request { req, .. } => {
                let Some(req) = req else {
                    // A denied request is no elevated state; an edited one
                    // may have been something else.
                    if edited {
                        self.entry(id).intact = false;
                    }
                    return;
                };
                let e = self.entry(id);
                e.request = Some(Arc::clone(req));
                e.intact &= !edited;
            }
            What::Approval { approver, .. } => {
                let e = self.entry(id);
                e.approvers.push(Approver {
                    name: approver.clone(),
                    at: ev.at,
                });
                e.intact &= !edited;
            }
            What::BreakGlass { .. } => {
                let e = self.entry(id);
                e.break_glass = true;
                e.intact &= !edited;
            }
            What::Transition { .. } => self.transition(id, ev),
        }
    }

    fn entry(&mut self, id: &Arc<str>) -> &mut Entry {
        self.grants.entry(Arc::clone(id)).or_insert_with(|| Entry {
            intact: true,
            ..Entry::default()
        })
    }

    fn transition(&mut self, id: &Arc<str>, ev: &Event) {
        let What::Transition {
            to,
            expires_at,
            ending_as,
            actor,
            reason,
            ..
        } = &ev.what
        else {
            return;
        };
        let to = to.as_str();
        let at = ev.at;
        let by = actor.clone();
        let why = reason.clone();
        let since = self.since;
        let e = self.entry(id);
        e.intact &= !ev.edited;
        match to {
            "active" | "provisioning" => {
                if e.activated_at.is_none() {
                    e.activated_at = Some(at);
                    e.expires_at = *expires_at;
                }
                return;
            }
            "deprovisioning" => {
                let ending = ending_as.unwrap_or(End::Revoked);
                e.ending.get_or_insert((ending, by, why));
                return;
            }
            _ => {}
        }
        let ended = end_of(to);
        let settled = match (e.activated_at, ended) {
            // Ended (or refused) before it was ever active: no elevated state.
            (None, _) => !matches!(to, "pending" | ""),
            (Some(_), Some(end)) => {
                e.ended_at = Some(at);
                e.ending.get_or_insert((end, by, why));
                at <= since
            }
            (Some(_), None) => false,
        };
        if settled {
            self.grants.remove(id);
            self.ticket_ends.remove(id);
            self.settled.insert(Arc::clone(id));
        }
    }

    pub(super) fn build(self, records_read: u64) -> AccessReview {
        let Builder {
            since,
            until,
            grants,
            ticket_ends,
            first_fault,
            faults,
            ..
        } = self;
        let mut rows: Vec<Row> = grants
            .into_iter()
            .filter_map(|(id, e)| {
                let activated_at = e.activated_at?;
                let ended = e.ended_at.filter(|t| *t > since);
                if e.ended_at.is_some() && ended.is_none() {
                    return None;
                }
                Some(row(
                    id.to_string(),
                    e,
                    activated_at,
                    until,
                    ticket_ends.get(&id),
                ))
            })
            .collect();
        rows.sort_by(|a, b| (a.activated_at, &a.grant_id).cmp(&(b.activated_at, &b.grant_id)));
        let mut by_task: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in &rows {
            by_task.entry(r.task.as_str()).or_default().push(r);
        }
        let task_totals = by_task
            .iter()
            .map(|(task, rs)| (task.to_string(), totals(rs)))
            .collect();
        let overall = totals(&rows.iter().collect::<Vec<_>>());
        AccessReview {
            since,
            until,
            rows,
            totals: task_totals,
            overall,
            chain: Chain {
                state: if faults == 0 {
                    ChainState::Verified
                } else {
                    ChainState::Broken
                },
                first_bad_seq: first_fault.as_ref().map(ChainError::seq),
                first_fault: first_fault.map(|f| f.to_string()),
                faults,
                records_read,
            },
        }
    }
}

/// What a request record says of a grant that was not denied.
fn requested(r: &AuditRecord) -> Option<Requested> {
    let data = &r.draft.data;
    let decision = data.get("decision")?;
    let outcome = decision.get("outcome").and_then(Value::as_str)?;
    if outcome != "allow" && outcome != "require-approval" {
        return None;
    }
    let req = data.get("request").unwrap_or(&Value::Null);
    let subject = req.get("subject").unwrap_or(&Value::Null);
    let ticket = req
        .get("ticket")
        .and_then(|t| str_of(t, "id"))
        .map(|id| TicketRef {
            id,
            source: data.get("ticket-facts").and_then(|f| str_of(f, "source")),
        });
    let policies = decision
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| PolicyPart {
            name: str_of(p, "name").unwrap_or_default(),
            verdict: str_of(p, "verdict").unwrap_or_default(),
            reason: str_of(p, "reason"),
        })
        .collect();
    Some(Requested {
        request_id: str_of(req, "id").or_else(|| r.draft.request_id.clone()),
        subject: str_of(subject, "id").unwrap_or_default(),
        requested_by: r.draft.actor.clone(),
        task: str_of(req, "task").unwrap_or_default(),
        resource: str_of(req, "resource").unwrap_or_default(),
        entitlement: str_of(req, "entitlement"),
        ticket,
        justification: str_of(req, "justification").unwrap_or_default(),
        policies,
        needed_approval: outcome == "require-approval",
    })
}

fn row(
    id: String,
    e: Entry,
    activated_at: Millis,
    until: Millis,
    ticket_end: Option<&Millis>,
) -> Row {
    let (mut end, ended_by, end_reason) = match (e.ended_at, e.ending) {
        (Some(_), Some((end, by, why))) => (end, Some(by), Some(why)),
        _ => (End::StillActive, None, None),
    };
    if end == End::Revoked && ticket_end.is_some() {
        end = End::TicketClosed;
    }
    let revocation_lag_ms = match (end, e.ended_at) {
        (End::Expired, Some(at)) => e.expires_at.map(|due| (at - due).max(0)),
        (End::TicketClosed, Some(at)) => ticket_end.map(|due| (at - due).max(0)),
        _ => None,
    };
    // The last holder (a report built straight from records) takes it;
    // a follower's kept events keep theirs, so a row copies.
    let req = e.request.map(Arc::unwrap_or_clone);
    let decided = if e.break_glass {
        Decided::BreakGlass
    } else if req.as_ref().is_some_and(|r| r.needed_approval) || !e.approvers.is_empty() {
        Decided::ApprovedByPeople
    } else {
        Decided::AllowedByPolicy
    };
    let (ended_by, end_reason) = if e.ended_at.is_some() {
        (ended_by, end_reason)
    } else {
        (None, None)
    };
    let req = req.unwrap_or(Requested {
        request_id: None,
        subject: String::new(),
        requested_by: String::new(),
        task: String::new(),
        resource: String::new(),
        entitlement: None,
        ticket: None,
        justification: String::new(),
        policies: Vec::new(),
        needed_approval: false,
    });
    Row {
        grant_id: id,
        request_id: req.request_id,
        subject: req.subject,
        requested_by: req.requested_by,
        task: req.task,
        resource: req.resource,
        entitlement: req.entitlement,
        ticket: req.ticket,
        justification: req.justification,
        policies: req.policies,
        decided,
        approvers: e.approvers,
        activated_at,
        expires_at: e.expires_at,
        ended_at: e.ended_at,
        duration_ms: (e.ended_at.unwrap_or(until) - activated_at).max(0),
        end,
        ended_by,
        end_reason,
        revocation_lag_ms,
        records_intact: e.intact,
    }
}

/// The median of `v` (sorted here): the middle value, or the mean of the
/// middle two rounded down.
pub(super) fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(((i128::from(v[n / 2 - 1]) + i128::from(v[n / 2])).div_euclid(2)) as i64),
    }
}

/// The nearest-rank p99 of `v` (sorted here): the value at rank
/// ⌈0.99·n⌉.
pub(super) fn p99(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let rank = (n * 99).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

fn totals(rows: &[&Row]) -> Totals {
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count() as u64;
    let ended: Vec<&&Row> = rows.iter().filter(|r| r.end != End::StillActive).collect();
    let by_ticket = count(&|r| r.end == End::TicketClosed);
    Totals {
        states: rows.len() as u64,
        allowed_by_policy: count(&|r| r.decided == Decided::AllowedByPolicy),
        approved_by_people: count(&|r| r.decided == Decided::ApprovedByPeople),
        break_glass: count(&|r| r.decided == Decided::BreakGlass),
        ended: ended.len() as u64,
        still_active: count(&|r| r.end == End::StillActive),
        median_duration_ms: median(ended.iter().map(|r| r.duration_ms).collect()),
        ended_by_ticket: by_ticket,
        share_ended_by_ticket: (!ended.is_empty()).then(|| by_ticket as f64 / ended.len() as f64),
        revocation_lag_p99_ms: p99(rows.iter().filter_map(|r| r.revocation_lag_ms).collect()),
    }
}
