//! The report as CSV, hand-written (RFC 4180: every field quoted, `"`
//! doubled, CRLF between records): three small tables one after another,
//! each with its own header line, separated by an empty line — the
//! states, the totals by task (and `(all)`), the chain. Quoting every
//! field is the whole of RFC 4180 a writer needs; the `csv` crate would
//! add a dependency for those ten lines.
//!
//! Cells come from requesters (justifications, ids) and policies
//! (reasons), and CSV files are opened in spreadsheets and printed to
//! terminals. So every cell is first made terminal-safe
//! ([`crate::text::terminal_safe`]: control and bidi characters written
//! as visible escapes, so a newline reads `\n`), then neutralised against
//! formula injection (OWASP): a cell that would begin with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'`, which spreadsheets
//! show as text. The JSON form keeps every string exactly as recorded.

use std::borrow::Cow;
use std::fmt::Write;

use super::{AccessReview, ChainState, Row, Totals};
use crate::timefmt::rfc3339_ms;

/// Header of the states table.
pub const STATE_HEADER: [&str; 22] = [
    "grant-id",
    "request-id",
    "subject",
    "requested-by",
    "task",
    "resource",
    "entitlement",
    "ticket-id",
    "ticket-source",
    "justification",
    "decided",
    "policies",
    "approvers",
    "activated-at",
    "expires-at",
    "ended-at",
    "duration-ms",
    "end",
    "ended-by",
    "end-reason",
    "revocation-lag-ms",
    "records-intact",
];

/// Header of the totals table.
pub const TOTALS_HEADER: [&str; 11] = [
    "task",
    "states",
    "allowed-by-policy",
    "approved-by-people",
    "break-glass",
    "ended",
    "still-active",
    "median-duration-ms",
    "ended-by-ticket",
    "share-ended-by-ticket",
    "revocation-lag-p99-ms",
];

/// Header of the chain table.
pub const CHAIN_HEADER: [&str; 7] = [
    "since",
    "until",
    "chain",
    "first-bad-seq",
    "faults",
    "records-read",
    "first-fault",
];

/// One cell as written: terminal-safe, formula-neutralised, quoted.
pub fn cell(out: &mut String, raw: &str) {
    let safe = crate::text::terminal_safe(raw);
    out.push('"');
    if safe.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    if safe.contains('"') {
        out.push_str(&safe.replace('"', "\"\""));
    } else {
        out.push_str(&safe);
    }
    out.push('"');
}

fn line<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, c.as_ref());
    }
    out.push_str("\r\n");
}

fn opt_num(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn opt(v: &Option<String>) -> Cow<'_, str> {
    v.as_deref().unwrap_or_default().into()
}

/// One state's cells, borrowed where the row holds them as they are.
fn state(r: &Row) -> [Cow<'_, str>; 22] {
    let policies: Vec<String> = r
        .policies
        .iter()
        .map(|p| match &p.reason {
            Some(why) => format!("{}: {}: {}", p.name, p.verdict, why),
            None => format!("{}: {}", p.name, p.verdict),
        })
        .collect();
    let approvers: Vec<String> = r
        .approvers
        .iter()
        .map(|a| format!("{} at {}", a.name, rfc3339_ms(a.at)))
        .collect();
    [
        r.grant_id.as_str().into(),
        opt(&r.request_id),
        r.subject.as_str().into(),
        r.requested_by.as_str().into(),
        r.task.as_str().into(),
        r.resource.as_str().into(),
        opt(&r.entitlement),
        r.ticket.as_ref().map_or("", |t| t.id.as_str()).into(),
        r.ticket
            .as_ref()
            .and_then(|t| t.source.as_deref())
            .unwrap_or_default()
            .into(),
        r.justification.as_str().into(),
        r.decided.as_str().into(),
        policies.join(" | ").into(),
        approvers.join(" | ").into(),
        rfc3339_ms(r.activated_at).into(),
        r.expires_at.map(rfc3339_ms).unwrap_or_default().into(),
        r.ended_at.map(rfc3339_ms).unwrap_or_default().into(),
        r.duration_ms.to_string().into(),
        r.end.as_str().into(),
        opt(&r.ended_by),
        opt(&r.end_reason),
        opt_num(r.revocation_lag_ms).into(),
        (if r.records_intact { "true" } else { "false" }).into(),
    ]
}

fn totals(task: &str, t: &Totals) -> [String; 11] {
    let mut share = String::new();
    if let Some(s) = t.share_ended_by_ticket {
        let _ = write!(share, "{s:.3}");
    }
    [
        task.to_string(),
        t.states.to_string(),
        t.allowed_by_policy.to_string(),
        t.approved_by_people.to_string(),
        t.break_glass.to_string(),
        t.ended.to_string(),
        t.still_active.to_string(),
        opt_num(t.median_duration_ms),
        t.ended_by_ticket.to_string(),
        share,
        opt_num(t.revocation_lag_p99_ms),
    ]
}

/// The whole report.
pub fn write(r: &AccessReview) -> String {
    let mut out = String::with_capacity(256 + r.rows.len() * 400);
    line(&mut out, &STATE_HEADER);
    for row in &r.rows {
        line(&mut out, &state(row));
    }
    out.push_str("\r\n");
    line(&mut out, &TOTALS_HEADER);
    for (task, t) in &r.totals {
        line(&mut out, &totals(task, t));
    }
    line(&mut out, &totals("(all)", &r.overall));
    out.push_str("\r\n");
    line(&mut out, &CHAIN_HEADER);
    let c = &r.chain;
    line(
        &mut out,
        &[
            rfc3339_ms(r.since),
            rfc3339_ms(r.until),
            match c.state {
                ChainState::Verified => "verified".to_string(),
                ChainState::Broken => "broken".to_string(),
            },
            opt_num(c.first_bad_seq),
            c.faults.to_string(),
            c.records_read.to_string(),
            c.first_fault.clone().unwrap_or_default(),
        ],
    );
    out
}
