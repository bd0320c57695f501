//! `jitgate test`: run policy fixture files and report every failing case.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::EngineConfig;
use jitgate::fixture::{ModuleSource, RunOptions};

/// Run policy fixture files and report every failing case.
#[derive(Args)]
pub struct TestArgs {
    /// Fixture files, or folders searched for `fixtures/*.yaml`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where bare policy names in fixtures resolve.
    #[arg(long, env = "JITGATE_POLICY_DIR", default_value = "target/policies")]
    policy_dir: PathBuf,
    /// Only run cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Also list passing cases.
    #[arg(long, short)]
    verbose: bool,
    /// Wall-clock deadline of one policy evaluation, milliseconds. Fixtures
    /// check a policy's rules, not the speed of the machine they run on: a
    /// loaded build machine must not turn a slow evaluation into a deny, so
    /// the default is 1000 rather than the service's 50 (fuel still bounds
    /// every evaluation). Pass 50 to hold fixtures to the production deadline.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// Config file: with a `[trust]` block, every policy a fixture names
    /// must belong to a signed set that verifies.
    #[arg(long, env = "JITGATE_CONFIG")]
    config: Option<PathBuf>,
}

/// Exits 1 on any failing case or unreadable file, or when nothing ran.
pub fn run(args: TestArgs, mut engine: EngineConfig) -> Result<ExitCode> {
    engine.sandbox.timeout = std::time::Duration::from_millis(args.timeout_ms);
    let opts = RunOptions {
        policy_dir: args.policy_dir,
        filter: args.filter,
        engine,
        source: match super::trust_from(args.config.as_deref())? {
            Some((trust, floor)) => ModuleSource::Trusted(trust, floor),
            None => ModuleSource::Files,
        },
    };
    let report = jitgate::fixture::run(&args.paths, &opts);
    for e in &report.file_errors {
        println!("ERROR {e}");
    }
    for c in &report.cases {
        if c.passed() {
            if args.verbose {
                println!("ok    {}:{}: {}", c.file.display(), c.line, c.name);
            }
        } else {
            println!(
                "FAIL  {}:{}: {}: expected {}, got {} (differs in: {})",
                c.file.display(),
                c.line,
                c.name,
                c.expected,
                c.actual,
                c.mismatches.join(", ")
            );
        }
    }
    println!("{} passed, {} failed", report.passed(), report.failed());
    Ok(if report.failed() == 0 && !report.cases.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
