//! The replay report as text for a terminal. Request ids, subjects,
//! tickets, tasks and policy names were chosen by requesters and policy
//! authors: every line is built whole and passed through
//! [`terminal_safe`], so none can forge a line or drive the terminal.

use std::fmt::Write;

use super::{Answer, Change, Report};
use crate::text::terminal_safe;

/// Changes other than widening ones listed in the text (all are in the
/// JSON); widening changes are always listed whole.
const MAX_OTHER_LISTED: usize = 200;

/// Records not replayed listed per reason in the text.
const MAX_SKIPPED_LISTED: usize = 10;

/// The report as text; `store` names where it was read (shown redacted).
pub fn text(report: &Report, store: &str) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&terminal_safe(&s));
        out.push('\n');
    };
    let w = &report.window;
    line(format!("replay of {store}"));
    line(format!(
        "window: {} .. {} (records from {} to {})",
        w.since.as_deref().unwrap_or("start"),
        w.until.as_deref().unwrap_or("end"),
        w.first.as_deref().unwrap_or("-"),
        w.last.as_deref().unwrap_or("-"),
    ));
    line(format!(
        "records: {} in the window, {} replayed, {} not replayed; {} changed, {} widen access",
        report.records, report.replayed, report.not_replayed, report.changed, report.widening
    ));
    line(format!("candidate set: {}", report.candidate_set));
    for (digest, n) in &report.baseline_sets {
        line(format!("baseline set:  {digest} ({n} records)"));
    }
    if report.chain.fault_count > 0 {
        line(format!(
            "AUDIT CHAIN BROKEN: {} fault(s) among {} records (edited records are not replayed)",
            report.chain.fault_count, report.chain.checked
        ));
        for f in &report.chain.faults {
            line(format!("  {f}"));
        }
    }
    line(format!(
        "took {} ms ({:.0} records/s)",
        report.elapsed_ms, report.records_per_second
    ));
    line(String::new());
    line("transitions (rows: recorded, columns: candidate):".into());
    let mut head = format!("  {:<18}", "");
    for a in Answer::ALL {
        let _ = write!(head, "{:>18}", a.as_str());
    }
    line(head);
    for old in Answer::ALL {
        let mut row = format!("  {:<18}", old.as_str());
        for new in Answer::ALL {
            let _ = write!(row, "{:>18}", report.cell(old, new));
        }
        line(row);
    }
    let (widening, other): (Vec<&Change>, Vec<&Change>) =
        report.changes.iter().partition(|c| c.widening);
    line(String::new());
    if widening.is_empty() {
        line("WIDENING: none".into());
    } else {
        line(format!(
            "WIDENING ({}): more access than was given",
            widening.len()
        ));
        for c in &widening {
            change(&mut line, c);
        }
    }
    if !other.is_empty() {
        line(String::new());
        line(format!("other changes ({}):", other.len()));
        for c in other.iter().take(MAX_OTHER_LISTED) {
            change(&mut line, c);
        }
        if other.len() > MAX_OTHER_LISTED {
            line(format!(
                "  … and {} more (all are in --json)",
                other.len() - MAX_OTHER_LISTED
            ));
        }
    }
    let changed_tasks: Vec<_> = report
        .by_task
        .iter()
        .filter(|(_, t)| t.changed > 0)
        .collect();
    if !changed_tasks.is_empty() {
        line(String::new());
        line("by task:".into());
        for (name, t) in changed_tasks {
            let transitions: Vec<String> = t
                .transitions
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            line(format!(
                "  {name}: {} of {} changed, {} widening; outcome [{}]; ttl longer {} shorter {}; approvals changed {} (loosened {})",
                t.changed,
                t.replayed,
                t.widening,
                transitions.join(", "),
                t.ttl_longer,
                t.ttl_shorter,
                t.approvals_changed,
                t.approvals_loosened
            ));
        }
    }
    let changed_policies: Vec<_> = report
        .by_policy
        .iter()
        .filter(|(_, p)| {
            !p.verdicts.is_empty() || p.ttl_longer + p.ttl_shorter + p.approvals_changed > 0
        })
        .collect();
    if !changed_policies.is_empty() {
        line(String::new());
        line("by policy:".into());
        for (name, p) in changed_policies {
            let verdicts: Vec<String> = p
                .verdicts
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            line(format!(
                "  {name}: in {} changed decision(s) ({} widening); verdicts [{}]; ttl longer {} shorter {}; approvals changed {}",
                p.changed,
                p.widening,
                verdicts.join(", "),
                p.ttl_longer,
                p.ttl_shorter,
                p.approvals_changed
            ));
        }
    }
    if report.not_replayed > 0 {
        line(String::new());
        line(format!("not replayed ({}):", report.not_replayed));
        for (why, n) in &report.not_replayed_by_reason {
            let those: Vec<_> = report
                .not_replayed_list
                .iter()
                .filter(|s| &s.reason == why)
                .collect();
            line(format!("  {why} ×{n}"));
            for s in those.iter().take(MAX_SKIPPED_LISTED) {
                line(format!(
                    "    #{} {} {} {}: {}",
                    s.seq,
                    s.at,
                    s.kind,
                    s.request_id.as_deref().unwrap_or("-"),
                    s.detail
                ));
            }
            if those.len() > MAX_SKIPPED_LISTED {
                line(format!(
                    "    … and {} more",
                    those.len() - MAX_SKIPPED_LISTED
                ));
            }
        }
    }
    out
}

fn change(line: &mut impl FnMut(String), c: &Change) {
    let aspects: Vec<String> = c
        .aspects
        .iter()
        .map(|a| format!("{} {}", a.what, a.change))
        .collect();
    line(format!(
        "  #{} {} {} request {} subject {} ticket {} task {}: {}",
        c.seq,
        c.at,
        c.kind,
        c.request_id,
        c.subject,
        c.ticket.as_deref().unwrap_or("-"),
        c.task,
        aspects.join("; ")
    ));
    for p in &c.policies {
        let v = |v: Option<crate::decision::TraceVerdict>| v.map_or("absent", |v| v.as_str());
        let ttl = |t: Option<u32>| t.map(|t| format!(" ttl {t}")).unwrap_or_default();
        line(format!(
            "      {}: {}{} → {}{}",
            p.name,
            v(p.recorded),
            ttl(p.recorded_ttl),
            v(p.candidate),
            ttl(p.candidate_ttl)
        ));
    }
}
