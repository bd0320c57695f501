//! `jitgate audit verify | export | grant ID`: read the audit log of a store
//! directly (works while the service runs; SQLite readers do not block).

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::sync::Arc;

use jitgate::store::Store;

/// Open a SQLite path (which must exist: reading must not create one) or a
/// PostgreSQL URL.
fn open(store: &str) -> Result<Arc<dyn Store>> {
    if !jitgate::store::is_postgres(store) && !std::path::Path::new(store).exists() {
        bail!("{store}: no such store");
    }
    jitgate::store::open(store)
        .with_context(|| format!("opening {}", jitgate::store::redacted(store)))
}

/// Walk the chain; Ok(true) when intact.
pub fn verify(store: &str) -> Result<bool> {
    let s = open(store)?;
    match jitgate::service::verify_store(s.as_ref())? {
        Ok(n) => {
            println!("audit chain intact: {n} records verified");
            Ok(true)
        }
        Err(e) => {
            println!("audit chain BROKEN at {e}");
            Ok(false)
        }
    }
}

/// Write every record as one JSON line.
pub fn export(store: &str, out: &mut dyn Write) -> Result<u64> {
    let s = open(store)?;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = s.audit_page(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            serde_json::to_writer(&mut *out, r)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    Ok(n)
}

/// Write every quarantined grant row as one JSON line (escaped: the
/// original text may hold anything); returns how many.
pub fn quarantine(store: &str, out: &mut dyn Write) -> Result<usize> {
    let s = open(store)?;
    let rows = s.quarantined()?;
    for q in &rows {
        serde_json::to_writer(&mut *out, q)?;
        out.write_all(b"\n")?;
    }
    Ok(rows.len())
}

/// Print the evidence view of one grant.
pub fn grant(store: &str, id: &str) -> Result<()> {
    let s = open(store)?;
    let g = s.grant(id)?.with_context(|| format!("no grant {id}"))?;
    let records = s.audit_of_grant(id)?;
    let when = |ms: Option<i64>| {
        ms.map(|m| jitgate::request::format_rfc3339((m / 1000).max(0) as u64))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "grant {}  state {}  break-glass {}",
        g.id,
        g.state.as_str(),
        g.break_glass
    );
    println!(
        "request {} by {}: {} wants {} on {} for {} s (ticket {})",
        g.request.id,
        g.requested_by,
        g.request.subject.id,
        g.request.entitlement,
        g.request.resource,
        g.request.requested_ttl,
        g.ticket_id().unwrap_or("-")
    );
    println!("justification: {}", g.request.justification);
    println!(
        "decision: {}  ttl {} s  revoke-on-ticket-close {}",
        g.outcome.as_str(),
        g.ttl,
        g.revoke_on_ticket_close
    );
    if let Some(ps) = g.decision.get("policies").and_then(|p| p.as_array()) {
        for p in ps {
            println!(
                "  {} {} {} → {}: {}",
                p["name"].as_str().unwrap_or("?"),
                p["version"].as_str().unwrap_or("?"),
                p["digest"].as_str().unwrap_or("?"),
                p["verdict"].as_str().unwrap_or("?"),
                p["reason"].as_str().unwrap_or("")
            );
        }
    }
    for r in &g.required {
        println!(
            "requires: {} approval(s) from [{}] ({})",
            r.min,
            r.groups.join(", "),
            r.policy
        );
    }
    for a in &g.approvals {
        println!("approved by {} at {}", a.approver, when(Some(a.at)));
    }
    println!(
        "issued {}  expires {}",
        when(g.issued_at),
        when(g.expires_at)
    );
    if g.ended_at.is_some() {
        println!(
            "ended {} by {}: {}{}",
            when(g.ended_at),
            g.ended_by.as_deref().unwrap_or("-"),
            g.end_reason.as_deref().unwrap_or("-"),
            g.revocation_lag_ms
                .map(|l| format!(" (revocation lag {l} ms)"))
                .unwrap_or_default()
        );
    }
    println!("audit records:");
    for r in &records {
        println!(
            "  #{} {} {} by {}: {}",
            r.seq,
            when(Some(r.draft.at)),
            r.draft.kind,
            r.draft.actor,
            r.draft.data
        );
    }
    Ok(())
}
