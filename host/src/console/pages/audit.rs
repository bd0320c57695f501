//! The pages of those who check: grant search, the evidence of one grant
//! with the chain's verification state, break-glass reviews, the access
//! review, and the admin's view of the loaded policy set.

use axum::extract::{Path, Query, State};

use axum::response::Response;
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

use super::grant_card::{card, live_ticket};
use super::{answer, read, svc};
use crate::api::AppState;
use crate::console::{SignedIn, layout};
use crate::grant::GrantState;
use crate::service::{Role, ServiceError};
use crate::store::GrantFilter;

/// Grants one search shows at most; "Older" pages on from the last.
const SEARCH_LIMIT: usize = 100;
/// Grants read per store page when a filter the store cannot apply (task,
/// created since) is given, and how many such pages one search reads at
/// most: a search by task alone stays bounded on a large store.
const SCAN_PAGE: usize = 500;
const SCAN_PAGES: usize = 20;

/// The auditor's search form. Empty fields are no filter.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchQuery {
    subject: String,
    ticket: String,
    task: String,
    state: String,
    /// RFC 3339; grants created at or after.
    since: String,
    /// RFC 3339; grants created before.
    until: String,
    /// With `until`: the last grant shown, so "Older" goes on after it
    /// (grants created in the same millisecond are not skipped).
    #[serde(rename = "from-id")]
    from_id: String,
}

fn parse_time(field: &str, v: &str) -> Result<Option<i64>, ServiceError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    crate::timefmt::parse_rfc3339(v)
        .map(Some)
        .ok_or_else(|| ServiceError::BadRequest {
            field: field.into(),
            message: format!("`{v}` is not an RFC 3339 time (2026-12-06T09:00:00Z)"),
        })
}

/// `/console/audit`: search grants by subject, ticket, task, state and
/// creation time.
pub async fn audit(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    Query(q): Query<SearchQuery>,
) -> Response {
    let p = who.session.principal.clone();
    let svc = svc(&s);
    let body = read(move || {
        p.require_any(&[Role::Auditor, Role::Admin])?;
        let state = match q.state.trim() {
            "" => None,
            st => Some(GrantState::parse(st).ok_or_else(|| ServiceError::BadRequest {
                field: "state".into(),
                message: format!("unknown state `{st}`"),
            })?),
        };
        let since = parse_time("since", &q.since)?;
        let until = parse_time("until", &q.until)?;
        let nonempty = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        let task = nonempty(&q.task);
        let mut filter = GrantFilter {
            state,
            subject: nonempty(&q.subject),
            ticket: nonempty(&q.ticket),
            limit: if task.is_some() || since.is_some() {
                SCAN_PAGE
            } else {
                SEARCH_LIMIT
            },
            before: until.map(|u| (u, q.from_id.trim().to_string())),
        };
        // The store filters by state, subject, ticket and `until`; task and
        // `since` are applied here, page by page, newest first.
        let mut grants = Vec::new();
        let mut exhausted = false;
        let mut scanned = 0;
        for _ in 0..SCAN_PAGES {
            let page = svc.grants(&p, filter.clone())?;
            scanned += page.len();
            let full = page.len() == filter.limit;
            let mut older = false;
            if let Some(last) = page.last() {
                filter.before = Some((last.created_at, last.id.clone()));
                older = since.is_some_and(|s| last.created_at < s);
            }
            grants.extend(
                page.into_iter()
                    .filter(|g| task.as_ref().is_none_or(|t| g.request.task == *t))
                    .filter(|g| since.is_none_or(|s| g.created_at >= s)),
            );
            if !full || older {
                exhausted = true;
                break;
            }
            if grants.len() >= SEARCH_LIMIT {
                break;
            }
        }
        grants.truncate(SEARCH_LIMIT);
        let more = grants.len() == SEARCH_LIMIT || !exhausted;
        let older = grants.last().filter(|_| more).map(|g| {
            let until = crate::timefmt::rfc3339_ms(g.created_at);
            let pairs = [("subject", q.subject.as_str()), ("ticket", &q.ticket), ("task", &q.task), ("state", &q.state), ("since", &q.since), ("until", &until), ("from-id", &g.id)];
            let query: Vec<String> = pairs
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| format!("{k}={}", super::review::enc(v.trim())))
                .collect();
            format!("/console/audit?{}", query.join("&"))
        });
        Ok(html! {
            form.search method="get" action="/console/audit" role="search" {
                @for (name, label, value) in [("subject", "Subject", &q.subject), ("ticket", "Ticket", &q.ticket), ("task", "Task", &q.task), ("state", "State", &q.state), ("since", "Created since (RFC 3339)", &q.since), ("until", "Created before (RFC 3339)", &q.until)] {
                    div.field {
                        label for={ "q-" (name) } { (label) }
                        input id={ "q-" (name) } name=(name) value=(value);
                    }
                }
                button type="submit" { "Search" }
            }
            p.count {
                (grants.len()) " grant(s)"
                @if more { ", the newest first" @if grants.len() < SEARCH_LIMIT { " (" (scanned) " searched)" } }
            }
            table.results {
                thead { tr {
                    th scope="col" { "Grant" } th scope="col" { "Subject" } th scope="col" { "Task" }
                    th scope="col" { "Ticket" } th scope="col" { "State" } th scope="col" { "Created" }
                } }
                tbody {
                    @for g in &grants {
                        tr {
                            td { a href={ "/console/grants/" (g.id) } { (g.id) } }
                            td { (g.request.subject.id) }
                            td { (g.request.task) }
                            td { @if let Some(t) = &g.request.ticket { (t.id) } }
                            td { span class={ "state " (g.state.as_str()) } { (g.state.as_str()) } }
                            td { (layout::time(g.created_at)) }
                        }
                    }
                }
            }
            @if let Some(href) = &older {
                nav.pages aria-label="Older grants" { a rel="next" href=(href) { "Older →" } }
            }
        })
    })
    .await;
    answer(&who, "Audit", "/console/audit", body)
}

/// `?verify=chain` on the evidence page.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EvidenceQuery {
    verify: String,
}

/// `/console/grants/{id}` (where notifications link): for auditors and
/// admins the evidence — the grant and every audit record about it, each
/// record's hash recomputed, with `?verify=chain` the whole chain too; for
/// anyone else who may see the grant, the grant with what they may do.
pub async fn grant_evidence(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    let p = who.session.principal.clone();
    let svc = svc(&s);
    if !p.roles.contains(&Role::Auditor) && !p.roles.contains(&Role::Admin) {
        let csrf = who.session.csrf.clone();
        let title = format!("Grant {id}");
        let body = read(move || {
            let g = svc.grant(&p, &id)?;
            let ticket = live_ticket(&svc, &g);
            let blocker = svc.approval_blocker(&p, &g);
            Ok(html! {
                (card(&g, ticket.as_ref(), svc.now()))
                @if g.state == GrantState::Pending && p.roles.contains(&Role::Approver) {
                    (super::people::approval_actions(&csrf, &g.id, blocker.as_deref()))
                }
                @if g.request.subject.id == p.name {
                    (super::people::release_action(&csrf, &g))
                }
            })
        })
        .await;
        return answer(&who, &title, "", body);
    }
    let title = format!("Evidence of {id}");
    let body = read(move || {
        let (g, records) = svc.evidence(&p, &id)?;
        // The chain as followed (each record checked once, as it was
        // read); `?verify=chain` walks it from record 1 now.
        let chain = if q.verify == "chain" {
            svc.walk_chain(&p)?
        } else {
            svc.chain_status(&p)?
        };
        let walked = layout::time(chain.walked_at);
        let chain = chain.report;
        let ticket = live_ticket(&svc, &g);
        let intact = records.iter().filter(|r| r.recomputed_hash() == r.hash).count();
        Ok(html! {
            (card(&g, ticket.as_ref(), svc.now()))
            section aria-labelledby="chain" {
                h2 id="chain" { "Verification" }
                p.records-state {
                    @if intact == records.len() {
                        span.ok { "All " (records.len()) " records of this grant match their hashes." }
                    } @else {
                        span.bad { (records.len() - intact) " of " (records.len()) " records of this grant do not match their hashes: edited after they were written." }
                    }
                }
                @if chain.ok() {
                    p.chain-state { span.ok { "The whole chain verified: " (chain.checked) " records, head " @if let Some((seq, _)) = &chain.head { "#" (seq) } "." } }
                } @else {
                    p.chain-state { span.bad { "The chain is broken: " (chain.bad_count) " bad record(s) of " (chain.checked) "; first: " (chain.bad.first().map(|e| e.to_string()).unwrap_or_default()) } }
                }
                p.chain-walk {
                    "Walked from record 1 at " (walked) "; every record appended since was checked as it was read. "
                    a href={ "/console/grants/" (g.id) "?verify=chain" } { "Walk the whole chain now" }
                }
            }
            section aria-labelledby="records" {
                h2 id="records" { "Audit records" }
                table.records {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Kind" }
                        th scope="col" { "Actor" } th scope="col" { "Evidence" }
                    } }
                    tbody {
                        @for r in &records {
                            tr class=(if r.recomputed_hash() == r.hash { "" } else { "bad" }) {
                                td { (r.seq) }
                                td { (layout::time(r.draft.at)) }
                                td { (r.draft.kind) }
                                td { (r.draft.actor) }
                                td { code.evidence { (r.stored_data) } }
                            }
                        }
                    }
                }
            }
        })
    })
    .await;
    answer(&who, &title, "/console/audit", body)
}

/// `/console/reviews`: break-glass reviews, open first, each open one with
/// a form to close it with a note.
pub async fn reviews(State(s): State<Arc<AppState>>, who: SignedIn) -> Response {
    let p = who.session.principal.clone();
    let csrf = who.session.csrf.clone();
    let svc = svc(&s);
    let body = read(move || {
        let mut all = svc.reviews(&p, false)?;
        all.sort_by_key(|r| (r.closed_at.is_some(), -r.opened_at));
        let may_close = p.roles.contains(&Role::Auditor);
        Ok(html! {
            @if all.is_empty() { p.empty { "No break-glass grant has been issued." } }
            @for r in &all {
                article.review id={ "review-" (r.id) } aria-labelledby={ "h-" (r.id) } {
                    h2 id={ "h-" (r.id) } { "Review " (r.id) }
                    p { "Grant " a href={ "/console/grants/" (r.grant_id) } { (r.grant_id) } ", opened " (layout::time(r.opened_at)) }
                    @match (&r.closed_at, may_close) {
                        (Some(at), _) => p.closed { "Closed " (layout::time(*at)) " by " (r.closed_by.as_deref().unwrap_or("")) ": " (r.note.as_deref().unwrap_or("")) },
                        (None, true) => form method="post" action={ "/console/reviews/" (r.id) "/close" } {
                            input type="hidden" name="csrf" value=(csrf);
                            label for={ "note-" (r.id) } { "Note (what was done, and whether it was justified)" }
                            textarea id={ "note-" (r.id) } name="note" rows="2" required {}
                            button type="submit" { "Close review" }
                        },
                        (None, false) => p.open { "Open: an auditor closes it." },
                    }
                }
            }
        })
    })
    .await;
    answer(&who, "Break-glass reviews", "/console/reviews", body)
}

/// `/console/admin`: the loaded policy set, and revocation with a reason.
pub async fn admin(State(s): State<Arc<AppState>>, who: SignedIn) -> Response {
    let p = who.session.principal.clone();
    let csrf = who.session.csrf.clone();
    let svc = svc(&s);
    let body = read(move || {
        p.require_any(&[Role::Admin])?;
        let set = svc.policy_set(&p);
        let policies = svc.policies(&p);
        let active = svc.grants(
            &p,
            GrantFilter {
                state: Some(GrantState::Active),
                limit: 200,
                ..GrantFilter::default()
            },
        )?;
        Ok(html! {
            section aria-labelledby="set" {
                h2 id="set" { "Loaded policy set" }
                dl.facts {
                    dt { "Digest" } dd { code { (set.digest) } }
                    dt { "Signed" } dd { (if set.signed { "yes" } else { "no" }) }
                    dt { "Sequence" } dd { (set.sequence.map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                    dt { "Signer" } dd { (set.signer.clone().unwrap_or_else(|| "—".into())) }
                    dt { "Version" } dd { (set.version.clone().unwrap_or_else(|| "—".into())) }
                }
                table.policies {
                    caption { "Policies" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Tasks" } th scope="col" { "Max TTL" } th scope="col" { "Digest" } } }
                    tbody {
                        @for m in &policies {
                            tr { td { (m.name) } td { (m.version) } td { (m.tasks.join(", ")) } td { (layout::ttl(m.max_ttl)) } td { code { (m.digest) } } }
                        }
                    }
                }
            }
            section aria-labelledby="revoke" {
                h2 id="revoke" { "Active grants" }
                @if active.is_empty() { p.empty { "No grant is active." } }
                @for g in &active {
                    form.revoke method="post" action={ "/console/grants/" (g.id) "/revoke" } {
                        input type="hidden" name="csrf" value=(csrf);
                        span { (g.id) ": " (g.request.task) " for " (g.request.subject.id) " on " (g.request.resource) }
                        label for={ "why-" (g.id) } { "Reason" }
                        input id={ "why-" (g.id) } name="reason" required;
                        button.revoke type="submit" { "Revoke" }
                    }
                }
            }
        })
    })
    .await;
    answer(&who, "Admin", "/console/admin", body)
}
