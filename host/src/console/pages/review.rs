//! The access review as a page and as CSV: every elevated state of a
//! period and why, with totals by task and the chain's verification state
//! ([`crate::review`] builds it from the audit chain).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

use super::{answer, read, svc};
use crate::api::AppState;
use crate::console::{SignedIn, layout};
use crate::review::{AccessReview, ChainState, Totals};
use crate::timefmt::rfc3339_ms;

/// The period asked for; empty means the last 30 days.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PeriodQuery {
    since: String,
    until: String,
    /// Which page of rows (1-based; empty means 1).
    page: String,
    /// Rows a page (1 to [`ROWS_PER_PAGE`], the default).
    #[serde(rename = "per-page")]
    per_page: String,
    /// `chain`: walk the audit chain from record 1 first.
    verify: String,
}

/// Rows one page of the review shows at most: the totals cover every row;
/// the CSV has them all. (10,000 rows as HTML are 3.7 MB, too much for a
/// page.)
const ROWS_PER_PAGE: usize = 500;

/// A positive number from the query, `default` when empty, at most `max`.
fn number(
    field: &str,
    v: &str,
    default: usize,
    max: usize,
) -> Result<usize, crate::service::ServiceError> {
    match v.trim() {
        "" => Ok(default),
        p => p
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| crate::service::ServiceError::BadRequest {
                field: field.into(),
                message: format!(
                    "`{}` is not a number from 1 to {max}",
                    crate::text::terminal_safe(p)
                ),
            }),
    }
}

const DAY_MS: i64 = 86_400_000;

/// The bounds as the service's access review takes them.
fn bounds(q: &PeriodQuery, now: i64) -> (String, String) {
    let until = match q.until.trim() {
        "" => rfc3339_ms(now),
        u => u.to_string(),
    };
    let since = match q.since.trim() {
        "" => rfc3339_ms(crate::timefmt::parse_rfc3339(&until).unwrap_or(now) - 30 * DAY_MS),
        s => s.to_string(),
    };
    (since, until)
}

/// The review of the period asked for, with its bounds as shown.
fn review_of(
    svc: &crate::service::Service,
    p: &crate::service::Principal,
    q: &PeriodQuery,
) -> Result<(String, String, AccessReview), crate::service::ServiceError> {
    let (since, until) = bounds(q, svc.now());
    if q.verify == "chain" {
        svc.walk_chain(p)?;
    }
    let review = svc.access_review_followed(p, Some(&since), Some(&until))?;
    Ok((since, until, review))
}

/// `/console/access-review`.
pub async fn access_review(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = who.session.principal.clone();
    let svc = svc(&s);
    let body = read(move || {
        let page = number("page", &q.page, 1, usize::MAX)?;
        let per_page = number("per-page", &q.per_page, ROWS_PER_PAGE, ROWS_PER_PAGE)?;
        let (since, until, review) = review_of(&svc, &p, &q)?;
        let period = format!("since={}&until={}", enc(&since), enc(&until));
        let rows = Rows { page, per_page, period: &period };
        let walked = layout::time(svc.chain_status(&p)?.walked_at);
        let csv = format!("/console/access-review.csv?{period}");
        Ok(html! {
            form.search method="get" action="/console/access-review" {
                div.field { label for="since" { "Since (RFC 3339)" } input id="since" name="since" value=(since); }
                div.field { label for="until" { "Until (RFC 3339)" } input id="until" name="until" value=(until); }
                button type="submit" { "Show" }
            }
            p { a href=(csv) { "Download as CSV" } }
            p.chain-walk {
                "The chain was walked from record 1 at " (walked) "; every record appended since was checked as it was read. "
                a href={ "/console/access-review?" (period) "&verify=chain" } { "Walk the whole chain now" }
            }
            (render(&review, &rows))
        })
    })
    .await;
    answer(&who, "Access review", "/console/access-review", body)
}

/// `/console/access-review.csv`.
pub async fn access_review_csv(
    State(s): State<Arc<AppState>>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = who.session.principal.clone();
    let svc = svc(&s);
    let csv = read(move || Ok(review_of(&svc, &p, &q)?.2.to_csv())).await;
    match csv {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"access-review.csv\"",
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => answer(&who, "Access review", "/console/access-review", Err(e)),
    }
}

/// `s` percent-encoded for a query string.
pub(super) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn share(v: Option<f64>) -> String {
    v.map(|f| format!("{:.0} %", f * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn ms(v: Option<i64>) -> String {
    v.map(layout::duration).unwrap_or_else(|| "—".into())
}

fn totals_row(task: &str, t: &Totals) -> Markup {
    html! {
        tr {
            th scope="row" { (task) }
            td { (t.states) }
            td { (t.allowed_by_policy) }
            td { (t.approved_by_people) }
            td { (t.break_glass) }
            td { (ms(t.median_duration_ms)) }
            td { (share(t.share_ended_by_ticket)) }
            td { (ms(t.revocation_lag_p99_ms)) }
        }
    }
}

/// Which rows of the review a page shows.
struct Rows<'a> {
    /// 1-based.
    page: usize,
    per_page: usize,
    /// The period's query string, for the links to other pages.
    period: &'a str,
}

/// The review as HTML: the chain's state first, then totals, then one page
/// of rows with links to the others.
fn render(r: &AccessReview, rows: &Rows<'_>) -> Markup {
    let (page, per_page) = (rows.page, rows.per_page);
    let pages = r.rows.len().div_ceil(per_page).max(1);
    let first = (page - 1).saturating_mul(per_page);
    let shown = r.rows.iter().skip(first).take(per_page);
    let link = |n: usize| {
        format!(
            "/console/access-review?{}&page={n}&per-page={per_page}",
            rows.period
        )
    };
    html! {
        p.chain-state {
            @match r.chain.state {
                ChainState::Verified => span.ok { "The audit chain verified: " (r.chain.records_read) " records read." },
                _ => span.bad { "The audit chain is broken: " (r.chain.faults) " fault(s), first at #"
                    (r.chain.first_bad_seq.map(|s| s.to_string()).unwrap_or_default()) ": "
                    (r.chain.first_fault.clone().unwrap_or_default()) ". Rows built from edited records are marked." },
            }
        }
        table.totals {
            caption { "Totals by task, " (rfc3339_ms(r.since)) " to " (rfc3339_ms(r.until)) }
            thead { tr {
                th scope="col" { "Task" } th scope="col" { "States" } th scope="col" { "Allowed by policy" }
                th scope="col" { "Approved by people" } th scope="col" { "Break-glass" } th scope="col" { "Median duration" }
                th scope="col" { "Ended by ticket" } th scope="col" { "Revocation lag p99" }
            } }
            tbody {
                @for (task, t) in &r.totals { (totals_row(task, t)) }
                (totals_row("all", &r.overall))
            }
        }
        table.rows {
            caption {
                (r.rows.len()) " elevated state(s)"
                @if pages > 1 { ", page " (page) " of " (pages) " (" (per_page) " a page; the CSV has all)" }
            }
            thead { tr {
                th scope="col" { "Grant" } th scope="col" { "Subject" } th scope="col" { "Task" } th scope="col" { "Resource" }
                th scope="col" { "Ticket" } th scope="col" { "Justification" } th scope="col" { "Policies" }
                th scope="col" { "Decided" } th scope="col" { "Approved by" } th scope="col" { "Lasted" } th scope="col" { "Ended" }
            } }
            tbody {
                @for row in shown {
                    tr class=(if row.records_intact { "" } else { "bad" }) {
                        td { a href={ "/console/grants/" (row.grant_id) } { (row.grant_id) } }
                        td { (row.subject) }
                        td { (row.task) }
                        td { (row.resource) @if let Some(e) = &row.entitlement { " (" (e) ")" } }
                        td { @if let Some(t) = &row.ticket { (t.id) } }
                        td { (row.justification) }
                        td { @for p in &row.policies { (p.name) ": " (p.verdict) br; } }
                        td { (row.decided.as_str()) }
                        td { @for a in &row.approvers { (a.name) br; } }
                        td { (layout::duration(row.duration_ms)) }
                        td {
                            (row.end.as_str())
                            @if let Some(by) = &row.ended_by { " by " (by) }
                            @if let Some(lag) = row.revocation_lag_ms { " (lag " (layout::duration(lag)) ")" }
                        }
                    }
                }
            }
        }
        @if pages > 1 {
            nav.pages aria-label="Pages of rows" {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } " " }
                @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}
