//! `jitgate eval`: decide one request and explain the decision. The exit
//! status carries the outcome, so scripts need not parse the output.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::policy::escape as esc;
use jitgate::{Decision, Engine, EngineConfig, Outcome};

use super::InvalidRequest;

/// Exit status of an allow.
pub const EXIT_ALLOW: u8 = 0;
/// Exit status of an operational error: unreadable file, policy that does
/// not load, misused command line.
pub const EXIT_ERROR: u8 = 1;
/// Exit status of a deny.
pub const EXIT_DENY: u8 = 2;
/// Exit status of a require-approval.
pub const EXIT_REQUIRE_APPROVAL: u8 = 3;
/// Exit status of a request that is not valid (not JSON, a wrong or
/// missing field, an unknown task): nothing was decided.
pub const EXIT_INVALID: u8 = 4;

const EXIT_CODES: &str = "\
Exit status:
  0  allow
  1  error (unreadable file, a policy that does not load, bad usage)
  2  deny
  3  require-approval
  4  invalid request (not JSON, a bad or missing field, an unknown task)";

/// Decide one request and explain the decision.
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct EvalArgs {
    /// Folder of policy modules (or one .wasm file); repeatable.
    #[arg(long, default_value = "target/policies")]
    policies: Vec<PathBuf>,
    /// Request JSON file (`-` for stdin). `now` defaults to the current time.
    #[arg(long)]
    request: PathBuf,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    /// Config file: with a `[trust]` block, only signed policy sets that
    /// verify are used (each `--policies` must then be a set's folder).
    #[arg(long, env = "JITGATE_CONFIG")]
    config: Option<PathBuf>,
}

/// Decide and print; the exit status is the outcome (`EXIT_*`).
pub fn run(args: EvalArgs, config: EngineConfig) -> Result<ExitCode> {
    let max_module = config.sandbox.max_module_bytes;
    let mut engine = Engine::new(config)?;
    match super::trust_from(args.config.as_deref())? {
        None => {
            for p in &args.policies {
                engine.load_path(p)?;
            }
        }
        Some((trust, floor)) => {
            for p in &args.policies {
                if !p.is_dir() {
                    anyhow::bail!(
                        "{}: [trust] is configured, so --policies must name a signed policy set's folder",
                        p.display()
                    );
                }
                let set = jitgate::policy_set::verify(p, &trust, floor, max_module)
                    .map_err(|e| anyhow::anyhow!("policy set refused: {e}"))?;
                engine.load_set(&set)?;
            }
        }
    }
    let decided = super::read_request(&args.request).and_then(|req| {
        engine
            .decide(&req)
            .map_err(|e| InvalidRequest(e.to_string()).into())
    });
    let decision = match decided {
        Ok(d) => d,
        Err(e) if e.is::<InvalidRequest>() => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e),
    };
    // A busy host decided nothing about the request (the service answers
    // "retry" and records nothing); reporting it as a deny would be a lie.
    if let Some(f) = decision
        .policies
        .iter()
        .filter_map(|p| p.failure.as_ref())
        .find(|f| f.is_overload())
    {
        anyhow::bail!("{f}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print_decision(&decision);
    }
    Ok(ExitCode::from(match decision.outcome {
        Outcome::Allow => EXIT_ALLOW,
        Outcome::Deny => EXIT_DENY,
        Outcome::RequireApproval => EXIT_REQUIRE_APPROVAL,
    }))
}

/// Text for a terminal: every string a policy or a request chose is printed
/// through `esc`, so none can move the cursor, clear the screen or start a
/// line of its own.
fn print_decision(d: &Decision) {
    let ttl = if d.ttl > 0 {
        format!(
            "  ttl {} s ({})  revoke-on-ticket-close: {}",
            d.ttl,
            esc(d.ttl_bound.as_deref().unwrap_or("-")),
            if d.revoke_on_ticket_close {
                "yes"
            } else {
                "no"
            }
        )
    } else {
        String::new()
    };
    println!("decision: {}{ttl}", d.outcome.as_str().to_uppercase());
    println!(
        "request:  {}  task {}  ({} µs)",
        esc(&d.request_id),
        esc(&d.task),
        d.micros
    );
    for a in &d.approvals {
        let groups: Vec<_> = a.groups.iter().map(|g| esc(g)).collect();
        println!(
            "needs:    {} approval(s) from [{}] (asked by {})",
            a.min,
            groups.join(", "),
            esc(&a.policy)
        );
    }
    println!("reasons:");
    for r in &d.reasons {
        println!("  - {}", esc(r));
    }
    println!("policies:");
    for p in &d.policies {
        let digest = p.digest.get(..19).unwrap_or(&p.digest);
        let ttl = p.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
        println!(
            "  {:<18} {:<8} {}  {:<16}{ttl}  {} µs  fuel {}",
            esc(&p.name),
            esc(&p.version),
            esc(digest),
            p.verdict,
            p.micros,
            p.fuel
        );
        if let Some(r) = &p.reason {
            println!("      {}", esc(r));
        }
        for l in &p.logs {
            println!("      [{}] {}", l.level, esc(&l.message));
        }
    }
}
