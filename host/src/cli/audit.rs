//! `jitgate audit verify | checkpoint | export | grant ID`: read the audit
//! log of a store directly (works while the service runs; SQLite readers do
//! not block). Text output passes every stored string through
//! [`terminal_safe`]: they come from requesters and must not be able to
//! forge lines or drive the auditor's terminal.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use jitgate::audit;
use jitgate::store::Store;
use jitgate::text::terminal_safe;
use jitgate::{Decision, PolicyTrace};

/// Read the audit log of a store.
#[derive(Args)]
pub struct AuditArgs {
    /// The store: a SQLite file or a `postgres://` URL (as in the config).
    /// Given before or after the subcommand.
    #[arg(long, global = true, default_value = "jitgate.db")]
    store: String,
    #[command(subcommand)]
    what: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; names every bad record and exits non-zero if any.
    Verify {
        /// Folder of signed checkpoints the chain must still match
        /// (catches truncation and a rewritten, re-hashed chain).
        #[arg(long, requires = "pubkey")]
        checkpoints: Option<PathBuf>,
        /// Public key the checkpoints were signed with.
        #[arg(long, requires = "checkpoints")]
        pubkey: Option<PathBuf>,
    },
    /// Sign the chain head (seq, hash, time) into a checkpoint file kept
    /// outside the store.
    Checkpoint {
        /// Secret key (from `jitgate keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Folder to write the checkpoint into.
        #[arg(long, default_value = "checkpoints")]
        out: PathBuf,
    },
    /// Write every record as JSON lines to stdout.
    Export,
    /// Print the evidence view of one grant.
    Grant {
        /// Grant id.
        id: String,
    },
    /// List grant rows whose stored document did not parse (one JSON line
    /// each, with the original text); exits non-zero when there are any.
    Quarantine,
}

/// Run one audit subcommand.
pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let store = &args.store;
    let ok = match args.what {
        AuditCommand::Verify {
            checkpoints,
            pubkey,
        } => verify(store, checkpoints.as_deref().zip(pubkey.as_deref()))?,
        AuditCommand::Checkpoint { key, out } => {
            checkpoint(store, &key, &out)?;
            true
        }
        AuditCommand::Export => {
            export(store, &mut std::io::stdout().lock())?;
            true
        }
        AuditCommand::Grant { id } => {
            grant(store, &id)?;
            true
        }
        AuditCommand::Quarantine => quarantine(store, &mut std::io::stdout().lock())? == 0,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Open a SQLite path (which must exist: reading must not create one) or a
/// PostgreSQL URL.
pub fn open(store: &str) -> Result<Arc<dyn Store>> {
    if !jitgate::store::is_postgres(store) && !std::path::Path::new(store).exists() {
        bail!("{store}: no such store");
    }
    jitgate::store::open(store)
        .with_context(|| format!("opening {}", jitgate::store::redacted(store)))
}

/// Walk the chain, printing every bad record as it is found (and every
/// checkpoint in `anchors` = (folder, public key) that does not hold);
/// Ok(true) when intact.
pub fn verify(store: &str, anchors: Option<(&Path, &Path)>) -> Result<bool> {
    let s = open(store)?;
    let mut bad = 0u64;
    let mut report_bad = |e: &audit::ChainError| {
        bad += 1;
        println!("{}", terminal_safe(&e.to_string()));
    };
    let mut loaded = audit::Anchors::new();
    if let Some((dir, pubkey)) = anchors {
        let key = jitgate::keys::read_public(pubkey)?;
        let (a, faults) = audit::checkpoint::load(dir, &key)?;
        faults.iter().for_each(&mut report_bad);
        if a.is_empty() && faults.is_empty() {
            bail!(
                "{}: no checkpoints (*.json) to verify against",
                dir.display()
            );
        }
        loaded = a;
    }
    let anchored = loaded.last_key_value().map(|(seq, _)| *seq);
    let n_anchors = loaded.len();
    let report = audit::verify_store(s.as_ref(), loaded, &mut report_bad)?;
    if bad == 0 {
        print!("audit chain intact: {} records verified", report.checked);
        match anchored {
            Some(seq) => println!(", matching {n_anchors} signed checkpoint(s) up to record {seq}"),
            None => println!(),
        }
        Ok(true)
    } else {
        println!(
            "audit chain BROKEN: {bad} fault(s) among {} records",
            report.checked
        );
        Ok(false)
    }
}

/// Sign the chain head into a checkpoint file in `out`.
pub fn checkpoint(store: &str, key: &Path, out: &Path) -> Result<()> {
    let key = jitgate::keys::read_secret(key)?;
    let s = open(store)?;
    let (cp, path) = audit::checkpoint::write(s.as_ref(), &key, out, now_secs())?;
    println!(
        "checkpoint: record {} hash {} at {} -> {}",
        cp.seq,
        cp.hash,
        cp.time,
        terminal_safe(&path.display().to_string())
    );
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Write every record as one JSON line, its evidence as stored.
pub fn export(store: &str, out: &mut dyn Write) -> Result<u64> {
    let s = open(store)?;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = s.audit_page(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            out.write_all(&audit::export_line(r))?;
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
        serde_json::to_writer(&mut *out, &jitgate::answer::quarantined(q))?;
        out.write_all(b"\n")?;
    }
    Ok(rows.len())
}

/// Print the evidence view of one grant.
pub fn grant(store: &str, id: &str) -> Result<()> {
    let s = open(store)?;
    let g = s.grant(id)?.with_context(|| format!("no grant {id}"))?;
    let records = s.audit_of_grant(id)?;
    // Every line is built whole and then made terminal-safe, so no field
    // (ids, names, justification, reasons, evidence) can be printed raw.
    macro_rules! say {
        ($($arg:tt)*) => {
            println!("{}", terminal_safe(&format!($($arg)*)))
        };
    }
    let when = |ms: Option<i64>| {
        ms.map(jitgate::timefmt::rfc3339_ms)
            .unwrap_or_else(|| "-".into())
    };
    say!(
        "grant {}  state {}  break-glass {}",
        g.id,
        g.state.as_str(),
        g.break_glass
    );
    say!(
        "request {} by {}: {} wants {} on {} for {} s (ticket {})",
        g.request.id,
        g.requested_by,
        g.request.subject.id,
        g.request.entitlement,
        g.request.resource,
        g.request.requested_ttl,
        g.ticket_id().unwrap_or("-")
    );
    say!("justification: {}", g.request.justification);
    say!(
        "decision: {}  ttl {} s  revoke-on-ticket-close {}",
        g.outcome.as_str(),
        g.ttl,
        g.revoke_on_ticket_close
    );
    match serde_json::from_value::<Decision>(g.decision.clone()) {
        Ok(d) => d.policies.iter().for_each(|p: &PolicyTrace| {
            say!(
                "  {} {} {} → {}: {}",
                p.name,
                p.version,
                p.digest,
                p.verdict,
                p.reason.as_deref().unwrap_or("")
            )
        }),
        // Shown, not fatal: the rest of the evidence is still worth reading.
        Err(e) => say!("  (the stored explanation does not read as a decision: {e})"),
    }
    for r in &g.required {
        say!(
            "requires: {} approval(s) from [{}] ({})",
            r.min,
            r.groups.join(", "),
            r.policy
        );
    }
    for a in &g.approvals {
        let via = a
            .sign_in
            .as_ref()
            .map(|s| {
                format!(
                    " (identity provider {}, jti {}, session {})",
                    s.identity_provider,
                    s.jti.as_deref().unwrap_or("-"),
                    s.session.as_deref().unwrap_or("-")
                )
            })
            .unwrap_or_default();
        say!(
            "approved by {} at {} as [{}]{via}",
            a.approver,
            when(Some(a.at)),
            a.groups.join(", ")
        );
    }
    say!(
        "issued {}  expires {}",
        when(g.issued_at),
        when(g.expires_at)
    );
    if g.ended_at.is_some() {
        say!(
            "ended {} by {}: {}{}",
            when(g.ended_at),
            g.ended_by.as_deref().unwrap_or("-"),
            g.end_reason.as_deref().unwrap_or("-"),
            g.revocation_lag_ms
                .map(|l| format!(" (revocation lag {l} ms)"))
                .unwrap_or_default()
        );
    }
    say!("audit records:");
    for r in &records {
        say!(
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
