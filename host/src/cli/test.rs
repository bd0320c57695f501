//! `jitgate test`: run policy fixture files and report every failing case;
//! with `--coverage`, also which verdict constructors they never reached.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::coverage;

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
    /// Also report which `Verdict` constructor calls of each policy crate
    /// the cases reached (builds a coverage variant of every crate owning
    /// a fixture file, into its target folder's `jitgate-coverage/`).
    #[arg(long)]
    coverage: bool,
    /// With --coverage: exit 3 when the total coverage is below N percent.
    #[arg(long, value_name = "N", requires = "coverage", value_parser = parse_percent)]
    min: Option<f64>,
    /// With --coverage: write the report as JSON in `opa test --coverage`'s
    /// shape to FILE (`-`: stdout, and the text report goes to stderr).
    #[arg(long, value_name = "FILE", requires = "coverage")]
    coverage_json: Option<PathBuf>,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if (0.0..=100.0).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a percentage from 0 to 100")),
    }
}

/// Exit status when coverage is below `--min`.
pub const BELOW_MIN: u8 = 3;

/// The coverage builds of the crates owning the fixtures under `paths`.
fn coverage_builds(paths: &[PathBuf]) -> Result<Vec<(coverage::PolicyCrate, PathBuf)>> {
    let files = jitgate::fixture::find_fixture_files(paths).map_err(anyhow::Error::msg)?;
    let crates = coverage::crates_of(&files)?;
    if crates.is_empty() {
        bail!(
            "--coverage: no fixture file sits in a policy crate (<crate>/fixtures/*.yaml beside <crate>/Cargo.toml), so there are no sources to measure"
        );
    }
    crates
        .into_iter()
        .map(|c| {
            let module = coverage::build(&c)?;
            Ok((c, module))
        })
        .collect()
}

/// Exits 1 on any failing case or unreadable file, or when nothing ran.
/// Exits 3 (with --coverage --min) when the fixtures pass but coverage is
/// below the minimum.
pub fn run(args: TestArgs, mut engine: EngineConfig) -> Result<ExitCode> {
    engine.sandbox.timeout = std::time::Duration::from_millis(args.timeout_ms);
    let source = match super::trust_from(args.config.as_deref())? {
        Some(_) if args.coverage => bail!(
            "--coverage runs unsigned coverage builds of the policies, so it cannot run under a `[trust]` config: run it without --config"
        ),
        Some((trust, floor)) => ModuleSource::Trusted(trust, floor),
        None => ModuleSource::Files,
    };
    let builds = if args.coverage {
        coverage_builds(&args.paths)?
    } else {
        Vec::new()
    };
    let mut coverage_modules = BTreeMap::new();
    for (c, module) in &builds {
        for n in &c.names {
            coverage_modules
                .entry(n.clone())
                .or_insert_with(|| module.clone());
        }
    }
    engine.coverage = args.coverage;
    let opts = RunOptions {
        policy_dir: args.policy_dir,
        filter: args.filter,
        engine,
        source,
        coverage_modules,
    };
    let report = jitgate::fixture::run(&args.paths, &opts);
    // `--coverage-json -`: stdout is the JSON document's alone.
    let json_to_stdout = args.coverage_json.as_deref() == Some(Path::new("-"));
    let mut out: Box<dyn Write> = if json_to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    for e in &report.file_errors {
        writeln!(out, "ERROR {}", jitgate::text::terminal_safe(e))?;
    }
    for c in &report.cases {
        if c.passed() {
            if args.verbose {
                writeln!(out, "ok    {}:{}: {}", c.file.display(), c.line, c.name)?;
            }
        } else {
            writeln!(
                out,
                "FAIL  {}:{}: {}: expected {}, got {} (differs in: {})",
                c.file.display(),
                c.line,
                c.name,
                c.expected,
                c.actual,
                c.mismatches.join(", ")
            )?;
        }
    }
    writeln!(
        out,
        "{} passed, {} failed",
        report.passed(),
        report.failed()
    )?;
    let fixtures_ok = report.failed() == 0 && !report.cases.is_empty();
    if !args.coverage {
        return Ok(if fixtures_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut measured = Vec::new();
    for (c, module) in &builds {
        let sites = coverage::sites(c)?;
        let hits = report.coverage.get(module).cloned().unwrap_or_default();
        measured.push((sites, hits));
    }
    let cov = coverage::measure(&measured);
    write!(out, "{}", coverage::to_text(&cov))?;
    if let Some(path) = &args.coverage_json {
        let json = serde_json::to_string_pretty(&coverage::to_json(&cov))?;
        if json_to_stdout {
            println!("{json}");
        } else {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if !fixtures_ok {
        return Ok(ExitCode::FAILURE);
    }
    let wrong_notes = cov.unreachable.iter().filter(|u| u.2).count();
    if args.min.is_some() && wrong_notes > 0 {
        writeln!(
            out,
            "{wrong_notes} verdict(s) marked `{}` were reached: correct the note",
            coverage::UNREACHABLE
        )?;
        return Ok(ExitCode::from(BELOW_MIN));
    }
    if let Some(min) = args.min
        && cov.percent() < min
    {
        writeln!(out, "coverage {:.1} % is below --min {min}", cov.percent())?;
        return Ok(ExitCode::from(BELOW_MIN));
    }
    Ok(ExitCode::SUCCESS)
}
