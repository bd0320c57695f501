//! `jitgate replay`: re-decide recorded requests and dry runs against a
//! candidate policy set and report what would change
//! ([`jitgate::replay`]).

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::replay::{Options, replay, text};
use jitgate::{Engine, EngineConfig};

/// Exit status when `--fail-on-widening` is given and some change widens access.
pub const EXIT_WIDENING: u8 = 3;

const EXIT_CODES: &str = "\
Exit status:
  0  replayed (with --fail-on-widening: and no change widens access)
  2  error (unreadable store, a candidate that does not load or verify, bad usage)
  3  --fail-on-widening and some change widens access";

/// Re-decide recorded requests and dry runs against a candidate policy set.
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct ReplayArgs {
    /// The store whose audit log is replayed: a SQLite file or a `postgres://` URL.
    #[arg(long)]
    store: String,
    /// Folder of the candidate policy set.
    #[arg(long)]
    candidate: PathBuf,
    /// Only records at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    since: Option<u64>,
    /// Only records before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    until: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Exit 3 when any change widens access.
    #[arg(long)]
    fail_on_widening: bool,
    /// Config file: the candidate decides with its operator settings
    /// (global and task TTL caps, forced revoke-on-ticket-close, sandbox
    /// budget), as the service would; with a `[trust]` block the candidate
    /// must be a signed set that verifies.
    #[arg(long, env = "JITGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Wall-clock deadline of one policy evaluation, milliseconds. As for
    /// `jitgate test`: a replay judges rules, not the machine's speed, so a
    /// preempted evaluation must not read as a changed decision (fuel still
    /// bounds every evaluation). Pass 50 to hold it to the production deadline.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// Decision threads (default: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn rfc3339(s: &str) -> Result<u64, String> {
    jitgate::request::parse_rfc3339(s)
}

/// Replay and print; exits 3 on a widening change with `--fail-on-widening`.
pub fn run(args: ReplayArgs, mut config: EngineConfig) -> Result<ExitCode> {
    if let Some(path) = &args.config {
        let file = jitgate::config::Config::load(path)?;
        let cache = config.cache_dir.take();
        config = file.engine_config();
        if config.cache_dir.is_none() {
            config.cache_dir = cache;
        }
    }
    config.sandbox.timeout = std::time::Duration::from_millis(args.timeout_ms);
    let max_module = config.sandbox.max_module_bytes;
    let mut engine = Engine::new(config)?;
    match super::trust_from(args.config.as_deref())? {
        None => {
            engine
                .load_path(&args.candidate)
                .with_context(|| format!("candidate {}", args.candidate.display()))?;
        }
        Some((trust, floor)) => {
            let set = jitgate::policy_set::verify(&args.candidate, &trust, floor, max_module)
                .map_err(|e| anyhow::anyhow!("candidate policy set refused: {e}"))?;
            engine.load_set(&set)?;
        }
    }
    if engine.policies().count() == 0 {
        anyhow::bail!(
            "candidate {}: no policy module (*.wasm) to replay against",
            args.candidate.display()
        );
    }
    let store = super::audit::open(&args.store)?;
    let opts = Options {
        since: args.since.map(|s| s as i64 * 1000),
        until: args.until.map(|s| s as i64 * 1000),
        threads: args.threads,
    };
    let report = replay(store.as_ref(), &engine, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, &jitgate::store::redacted(&args.store)));
    }
    Ok(if args.fail_on_widening && report.widening > 0 {
        ExitCode::from(EXIT_WIDENING)
    } else {
        ExitCode::SUCCESS
    })
}
