//! `jitgate explore`: check invariants over generated requests.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::EngineConfig;
use jitgate::explore::{Budget, Options, Report};
use jitgate::fixture::{ModuleSource, RunOptions};
use jitgate::text::terminal_safe;

/// Generate requests over the domain the policies and their fixtures span
/// and check the invariants of a properties file (docs/properties.md).
/// Exits 0 when every property held (and applied to some request), 1 when
/// one did not, 2 on an error.
#[derive(Args)]
pub struct ExploreArgs {
    /// Fixture files, or folders searched for `fixtures/*.yaml`: each
    /// distinct policy set they test is explored.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The properties file (YAML).
    #[arg(long)]
    properties: PathBuf,
    /// Where bare policy names in fixtures resolve.
    #[arg(long, env = "JITGATE_POLICY_DIR", default_value = "target/policies")]
    policy_dir: PathBuf,
    /// Seed of the request stream (default: random; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Requests to generate in all (default 20000 unless --seconds).
    #[arg(long, conflicts_with = "seconds", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Generate requests for this many seconds instead.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: Option<u64>,
    /// Threads that decide (default: one per CPU); the requests and the
    /// report do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Wall-clock deadline of one policy evaluation, milliseconds (as for
    /// `jitgate test`: a loaded machine must not turn slowness into denies).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// Config file: with a `[trust]` block, every policy must belong to a
    /// signed set that verifies.
    #[arg(long, env = "JITGATE_CONFIG")]
    config: Option<PathBuf>,
}

/// The largest properties file read (a properties file is written by hand).
const MAX_PROPERTIES_BYTES: u64 = 1 << 20;

pub fn run(args: ExploreArgs, mut engine: EngineConfig) -> Result<ExitCode> {
    engine.sandbox.timeout = std::time::Duration::from_millis(args.timeout_ms);
    let size = std::fs::metadata(&args.properties)
        .with_context(|| format!("reading {}", args.properties.display()))?
        .len();
    if size > MAX_PROPERTIES_BYTES {
        anyhow::bail!(
            "{}: {size} bytes; a properties file may hold at most {MAX_PROPERTIES_BYTES}",
            args.properties.display()
        );
    }
    let text = std::fs::read_to_string(&args.properties)
        .with_context(|| format!("reading {}", args.properties.display()))?;
    let props = jitgate::explore::properties::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", args.properties.display(), terminal_safe(&e.0)))?;
    let seed = args.seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        // A clock-derived seed would do as well; the seed is printed.
        let _ = getrandom_seed(&mut b);
        u64::from_le_bytes(b)
    });
    let budget = match (args.requests, args.seconds) {
        (_, Some(s)) => Budget::Time(std::time::Duration::from_secs(s)),
        (Some(n), None) => Budget::Requests(n),
        (None, None) => Budget::Requests(20_000),
    };
    let opts = Options {
        run: RunOptions {
            policy_dir: args.policy_dir,
            filter: None,
            engine,
            source: match super::trust_from(args.config.as_deref())? {
                Some((trust, floor)) => ModuleSource::Trusted(trust, floor),
                None => ModuleSource::Files,
            },
            coverage_modules: Default::default(),
        },
        seed,
        budget,
        shrink_checks: 2000,
        threads: match args.threads {
            Some(n) => usize::try_from(n).unwrap_or(1),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    };
    let report = jitgate::explore::explore(&args.paths, &props, &opts)
        .map_err(|e| anyhow::anyhow!("{}", terminal_safe(&e.0)))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&report))?);
    } else {
        print_text(&report);
    }
    Ok(if report.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn getrandom_seed(b: &mut [u8; 8]) -> Result<(), getrandom::Error> {
    getrandom::fill(b)
}

fn print_text(r: &Report) {
    for p in &r.properties {
        let name = terminal_safe(&p.name);
        if p.holds() {
            println!("holds  {} ({name}; applied to {})", p.kind, p.matched);
        } else if p.matched == 0 {
            println!(
                "FAIL   {} ({name}): no generated request matched its `when`; a typo, or a condition the fixtures' values never reach",
                p.kind
            );
        } else {
            println!(
                "FAIL   {} ({name}): broken by {} of {} requests it applied to",
                p.kind, p.violations, p.matched
            );
        }
        if let Some(c) = &p.counterexample {
            let set = &r.sets[c.set];
            println!(
                "       set [{}] of {}",
                terminal_safe(&set.policies.join(", ")),
                set.files
                    .first()
                    .map(|f| terminal_safe(&f.display().to_string()).into_owned())
                    .unwrap_or_default()
            );
            println!(
                "       smallest request found (shrunk in {} steps) is decided {} ttl={}",
                c.shrink_steps,
                c.observed.outcome.as_str(),
                c.observed.ttl
            );
            for reason in &c.observed.reasons {
                println!("         {}", terminal_safe(reason));
            }
            println!(
                "       as a fixture (the expect is what the policies answer now; paste it into a fixtures/*.yaml, then write what they should answer):"
            );
            for line in c.fixture.lines() {
                println!("         {}", terminal_safe(line));
            }
        }
    }
    let failed = r.properties.iter().filter(|p| !p.holds()).count();
    println!(
        "{} held, {} failed; seed {}, {} policy sets, {} requests in {:.1} s ({:.0} requests/minute)",
        r.properties.len() - failed,
        failed,
        r.seed,
        r.sets.len(),
        r.requests,
        r.elapsed.as_secs_f64(),
        r.rate_per_minute()
    );
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "seed": r.seed,
        "requests": r.requests,
        "seconds": r.elapsed.as_secs_f64(),
        "requests-per-minute": r.rate_per_minute().round(),
        "holds": r.holds(),
        "sets": r.sets.iter().map(|s| serde_json::json!({
            "policies": s.policies,
            "files": s.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "requests": s.requests,
        })).collect::<Vec<_>>(),
        "properties": r.properties.iter().map(|p| serde_json::json!({
            "name": p.name,
            "kind": p.kind,
            "holds": p.holds(),
            "matched": p.matched,
            "violations": p.violations,
            "counterexample": p.counterexample.as_ref().map(|c| serde_json::json!({
                "set": r.sets[c.set].policies,
                "request": c.request,
                "outcome": c.observed.outcome.as_str(),
                "ttl": c.observed.ttl,
                "reasons": c.observed.reasons,
                "shrink-steps": c.shrink_steps,
                "fixture": c.fixture,
            })),
        })).collect::<Vec<_>>(),
    })
}
