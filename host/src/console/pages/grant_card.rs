//! One grant as an approver, requester or auditor reads it: who asks what,
//! for how long, on which ticket (its live state from the registry), why,
//! what every policy said, and how far the approvals are.

use maud::{Markup, html};
use serde_json::Value;

use super::super::layout;
use crate::grant::{Grant, GrantState, Millis};
use crate::service::Service;

/// The ticket as the registry knows it now, and where to open it.
pub struct LiveTicket {
    /// The registry's record, if the ticket is known.
    pub record: Option<crate::store::TicketRecord>,
    /// A link into the ticket system, when its `base-url` is configured.
    pub link: Option<String>,
}

/// The registry's view of `g`'s ticket.
pub fn live_ticket(svc: &Service, g: &Grant) -> Option<LiveTicket> {
    let t = g.request.ticket.as_ref()?;
    let record = svc.store().ticket(&t.id).ok().flatten();
    let link = record
        .as_ref()
        .and_then(|r| svc.ticket_source(&r.source))
        .and_then(|src| src.browse_url(&t.id));
    Some(LiveTicket { record, link })
}

/// The grant's facts, for every page that shows one.
pub fn card(g: &Grant, ticket: Option<&LiveTicket>, now: Millis) -> Markup {
    let r = &g.request;
    html! {
        dl.facts {
            dt { "Requester" }
            dd {
                (r.subject.id)
                @if g.requested_by != r.subject.id { " (sent by " (g.requested_by) ")" }
            }
            dt { "Task" } dd { (r.task) }
            dt { "Resource" } dd { (r.resource) }
            @if !r.entitlement.is_empty() {
                dt { "Entitlement" } dd { (r.entitlement) }
            }
            dt { "Duration" }
            dd {
                "requested " (layout::ttl(r.requested_ttl)) ", granted " (layout::ttl(g.ttl))
                @if g.state == GrantState::Pending {
                    " — the clock starts when the grant is activated, not now"
                }
            }
            dt { "State" }
            dd {
                span class={ "state " (g.state.as_str()) } { (g.state.as_str()) }
                @if let (GrantState::Active | GrantState::Provisioning, Some(exp)) = (g.state, g.expires_at) {
                    ", expires " (layout::time(exp)) " (" (layout::countdown(now, exp)) ")"
                }
                @if let (GrantState::Pending, Some(lapse)) = (g.state, g.lapses_at) {
                    ", lapses unless approved by " (layout::time(lapse))
                }
            }
            dt { "Ticket" }
            dd { (ticket_facts(g, ticket)) }
            dt { "Justification" } dd.justification { (r.justification) }
        }
        (policies(&g.decision))
        @if !g.required.is_empty() { (approvals(g)) }
        @if let Some(by) = &g.ended_by {
            p.ended {
                "Ended " (layout::maybe_time(g.ended_at)) " by " (by)
                @if let Some(why) = &g.end_reason { ": " (why) }
            }
        }
    }
}

fn ticket_facts(g: &Grant, ticket: Option<&LiveTicket>) -> Markup {
    let Some(t) = &g.request.ticket else {
        return html! { "none" };
    };
    let live = ticket.and_then(|l| l.record.as_ref());
    html! {
        @if let Some(link) = ticket.and_then(|l| l.link.as_deref()) {
            a href=(link) rel="noopener noreferrer" { (t.id) }
        } @else {
            (t.id)
        }
        @match live {
            Some(rec) => {
                " — " span class={ "ticket " (rec.state.as_str()) } { (rec.state.as_str()) }
                " in " (rec.source)
                @if let Some(a) = &rec.assignee { ", assigned to " (a) }
                ", as of " (layout::time(rec.updated_at))
            }
            None => { " — not in the ticket registry (the request said: " (t.state.as_str()) ")" }
        }
    }
}

/// Every selected policy's verdict and reason, from the stored decision.
fn policies(decision: &Value) -> Markup {
    let list = decision
        .get("policies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    html! {
        table.policies {
            caption { "What the policies said" }
            thead { tr { th scope="col" { "Policy" } th scope="col" { "Verdict" } th scope="col" { "Reason" } } }
            tbody {
                @for p in &list {
                    tr {
                        td { (text(p, "name")) " " span.version { (text(p, "version")) } }
                        td { span class={ "verdict " (text(p, "verdict")) } { (text(p, "verdict")) } }
                        td { (text(p, "reason")) }
                    }
                }
            }
        }
    }
}

/// Each requirement as "n of m", with who approved so far.
fn approvals(g: &Grant) -> Markup {
    html! {
        table.approvals {
            caption { "Approvals" }
            thead { tr { th scope="col" { "Required by" } th scope="col" { "From groups" } th scope="col" { "Approved" } } }
            tbody {
                @for req in &g.required {
                    @let by: Vec<&crate::grant::Approval> = g.approvals.iter()
                        .filter(|a| a.groups.iter().any(|ag| req.groups.contains(ag)))
                        .collect();
                    tr {
                        td { (req.policy) }
                        td { (req.groups.join(", ")) }
                        td {
                            (by.len().min(req.min as usize)) " of " (req.min)
                            @for a in &by {
                                br; (a.approver) " at " (layout::time(a.at))
                            }
                        }
                    }
                }
            }
        }
    }
}
