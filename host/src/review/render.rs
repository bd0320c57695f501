//! The access review as text for a terminal. Subjects, justifications,
//! tickets and policy reasons were chosen by requesters and policy
//! authors: every line is built whole and passed through
//! [`terminal_safe`], so none can forge a line or drive the terminal.

use std::fmt::Write;

use super::{AccessReview, ChainState, Row, Totals};
use crate::text::terminal_safe;
use crate::timefmt::rfc3339_ms;

/// A duration in words: `15m 0s`, `2h 3m 4.5s`, `750ms`.
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let secs = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let frac = format!("{:03}", rest % 1000);
        format!("{}.{}s", rest / 1000, frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m {secs}"),
        (h, m) => format!("{h}h {m}m {secs}"),
    }
}

/// The report as text; `store` names where it was read (shown redacted).
pub fn text(r: &AccessReview, store: &str) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&terminal_safe(&s));
        out.push('\n');
    };
    line(format!(
        "access review of {store}: {} .. {}",
        rfc3339_ms(r.since),
        rfc3339_ms(r.until)
    ));
    let c = &r.chain;
    match c.state {
        ChainState::Verified => line(format!(
            "audit chain: verified ({} records read)",
            c.records_read
        )),
        ChainState::Broken => line(format!(
            "audit chain: BROKEN at record {} ({} fault(s) among {} records read): {}",
            c.first_bad_seq.unwrap_or(0),
            c.faults,
            c.records_read,
            c.first_fault.as_deref().unwrap_or("")
        )),
    }
    line(format!("elevated states: {}", r.rows.len()));
    for row in &r.rows {
        line(String::new());
        state(&mut line, row);
    }
    line(String::new());
    line("totals by task:".into());
    line(format!(
        "  {:<20} {:>6} {:>7} {:>7} {:>11} {:>7} {:>12} {:>10} {:>10}",
        "task",
        "states",
        "policy",
        "people",
        "break-glass",
        "active",
        "median",
        "by-ticket",
        "lag-p99"
    ));
    for (task, t) in &r.totals {
        line(totals(task, t));
    }
    line(totals("(all)", &r.overall));
    out
}

fn totals(task: &str, t: &Totals) -> String {
    let share = t
        .share_ended_by_ticket
        .map(|s| format!("{:.1}%", s * 100.0))
        .unwrap_or_else(|| "-".into());
    format!(
        "  {:<20} {:>6} {:>7} {:>7} {:>11} {:>7} {:>12} {:>10} {:>10}",
        task,
        t.states,
        t.allowed_by_policy,
        t.approved_by_people,
        t.break_glass,
        t.still_active,
        t.median_duration_ms
            .map(duration)
            .unwrap_or_else(|| "-".into()),
        share,
        t.revocation_lag_p99_ms
            .map(duration)
            .unwrap_or_else(|| "-".into()),
    )
}

fn state(line: &mut impl FnMut(String), r: &Row) {
    let mut head = format!(
        "{}  {}  {} on {}",
        r.grant_id, r.task, r.subject, r.resource
    );
    if let Some(e) = &r.entitlement {
        let _ = write!(head, " ({e})");
    }
    if !r.records_intact {
        head.push_str("  [EDITED RECORDS]");
    }
    line(head);
    let ticket = match &r.ticket {
        Some(t) => match &t.source {
            Some(s) => format!("{} (from {s})", t.id),
            None => t.id.clone(),
        },
        None => "none".into(),
    };
    line(format!(
        "  requested by {}, request {}, ticket {ticket}",
        r.requested_by,
        r.request_id.as_deref().unwrap_or("-")
    ));
    line(format!("  justification: {}", r.justification));
    line(format!("  decided: {}", r.decided.as_str()));
    for p in &r.policies {
        line(match &p.reason {
            Some(why) => format!("    {} → {}: {why}", p.name, p.verdict),
            None => format!("    {} → {}", p.name, p.verdict),
        });
    }
    for a in &r.approvers {
        line(format!("  approved by {} at {}", a.name, rfc3339_ms(a.at)));
    }
    let until = match r.ended_at {
        Some(t) => rfc3339_ms(t),
        None => "still active".into(),
    };
    line(format!(
        "  active {} .. {until} ({})",
        rfc3339_ms(r.activated_at),
        duration(r.duration_ms)
    ));
    let mut end = format!("  end: {}", r.end.as_str());
    if let Some(by) = &r.ended_by {
        let _ = write!(end, " by {by}");
    }
    if let Some(why) = &r.end_reason {
        let _ = write!(end, " ({why})");
    }
    if let Some(lag) = r.revocation_lag_ms {
        let _ = write!(end, "; revocation lag {}", duration(lag));
    }
    line(end);
}
