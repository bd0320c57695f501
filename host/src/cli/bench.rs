//! `jitgate bench`: time repeated decisions of one request.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::{Engine, EngineConfig};

/// Time repeated decisions of one request and print a latency table.
#[derive(Args)]
pub struct BenchArgs {
    /// Folder of policy modules (or one .wasm file); repeatable.
    #[arg(long, default_value = "target/policies")]
    policies: Vec<PathBuf>,
    /// Request JSON file.
    #[arg(long)]
    request: PathBuf,
    /// Decisions to time (after 10% warm-up).
    #[arg(short = 'n', long, default_value_t = 10_000)]
    iterations: usize,
}

/// Print the whole-decision latency table, then the per-policy one.
pub fn run(args: BenchArgs, config: EngineConfig) -> Result<ExitCode> {
    let iterations = args.iterations;
    let mut engine = Engine::new(config)?;
    for p in &args.policies {
        engine.load_path(p)?;
    }
    let req = super::read_request(&args.request)?;
    let first = engine.decide(&req)?;
    for _ in 0..iterations / 10 {
        engine.decide(&req)?;
    }
    let mut total = Vec::with_capacity(iterations);
    let mut per_policy: Vec<Vec<u64>> = vec![Vec::with_capacity(iterations); first.policies.len()];
    let started = std::time::Instant::now();
    for _ in 0..iterations.max(1) {
        let t = std::time::Instant::now();
        let d = engine.decide(&req)?;
        total.push(t.elapsed().as_nanos() as u64);
        for (slot, p) in per_policy.iter_mut().zip(&d.policies) {
            slot.push(p.micros);
        }
    }
    let wall = started.elapsed();
    total.sort_unstable();
    let pct = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "decision: {} ({} policies: {})",
        first.outcome,
        first.policies.len(),
        first
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| decisions | mean µs | p50 µs | p90 µs | p99 µs | max µs | decisions/s (1 thread) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mean = total.iter().sum::<u64>() as f64 / total.len() as f64;
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        total.len(),
        mean / 1e3,
        pct(&total, 0.5) as f64 / 1e3,
        pct(&total, 0.9) as f64 / 1e3,
        pct(&total, 0.99) as f64 / 1e3,
        *total.last().unwrap_or(&0) as f64 / 1e3,
        total.len() as f64 / wall.as_secs_f64()
    );
    println!();
    println!("| policy | verdict | mean µs (instantiate + evaluate) | fuel |");
    println!("|---|---|---|---|");
    for (p, times) in first.policies.iter().zip(&per_policy) {
        let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64;
        println!("| {} | {} | {:.1} | {} |", p.name, p.verdict, mean, p.fuel);
    }
    Ok(ExitCode::SUCCESS)
}
