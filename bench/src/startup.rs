//! Start-up with many policies: every module in a folder loaded into one
//! engine from an empty compile cache (cold: Cranelift compiles each), then
//! again in a fresh process from the now warm cache, with that process's
//! resident memory once all are loaded.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jitgate::{Engine, EngineConfig};

fn engine(cache: &Path) -> Result<Engine> {
    Ok(Engine::new(EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    })?)
}

/// `VmRSS` of this process, KiB.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// The name `bench-policy` is built with for [`copies`].
pub const TEMPLATE_NAME: &str = "bench-policy-00";

/// Write `n` (1..=99) distinct copies of `module` into `out`: the module
/// built once with `JITGATE_BENCH_POLICY_NAME=bench-policy-00`, its name
/// bytes rewritten to `bench-policy-01`…`NN` (same length, so nothing else
/// moves). Each copy is then byte for byte what a build under that name
/// would give, with its own digest and `info().name`, and takes no
/// compilation: 50 policy builds were a minute of `bench/run.sh`.
pub fn copies(module: &Path, n: usize, out: &Path) -> Result<()> {
    if !(1..=99).contains(&n) {
        bail!("--copies must be 1 to 99, not {n}");
    }
    let bytes = std::fs::read(module).with_context(|| format!("{}", module.display()))?;
    let pat = TEMPLATE_NAME.as_bytes();
    let at: Vec<usize> = bytes
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| i)
        .collect();
    if at.is_empty() {
        bail!(
            "{} does not contain {TEMPLATE_NAME:?}: build it with JITGATE_BENCH_POLICY_NAME={TEMPLATE_NAME}",
            module.display()
        );
    }
    std::fs::create_dir_all(out)?;
    for i in 1..=n {
        let name = format!("bench-policy-{i:02}");
        let mut copy = bytes.clone();
        for &a in &at {
            copy[a..a + pat.len()].copy_from_slice(name.as_bytes());
        }
        std::fs::write(out.join(format!("{name}.wasm")), copy)?;
    }
    Ok(())
}

/// Cold then warm start over every module in `dir`.
pub fn run(dir: &Path, cache: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = cache.unwrap_or_else(|| tmp.path().join("cache"));
    let _ = std::fs::remove_dir_all(&cache);

    let rss_before = rss_kib()?;
    let t = Instant::now();
    let mut cold = engine(&cache)?;
    let n = cold.load_dir(dir)?;
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let stats = cold.load_stats();
    if stats.compiled != n {
        bail!("cold start compiled {} of {n} modules", stats.compiled);
    }
    let cold_rss = rss_kib()?;
    drop(cold);

    // The warm start runs in a child process of its own, so its resident
    // memory counts only what a server that just started would hold.
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["startup-warm", "--modules"])
        .arg(dir)
        .arg("--cache")
        .arg(&cache)
        .output()?;
    if !out.status.success() {
        bail!(
            "warm start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let warm = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Result<f64> {
        warm.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("warm child said {warm:?}"))
    };
    let (warm_ms, warm_engine_ms, warm_rss, base_rss) = (
        field("ms=")?,
        field("engine_ms=")?,
        field("rss_kib=")?,
        field("base_rss_kib=")?,
    );

    println!("\n### Start-up with {n} policy modules\n");
    println!("| start | time ms | resident memory MiB (VmRSS) |");
    println!("|---|---:|---:|");
    println!(
        "| cold: empty cache, compile all {n} | {cold_ms:.0} | {:.1} (process, after compiling; {:.1} before) |",
        cold_rss as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!(
        "| warm: all {n} from the compile cache, in a new process | {warm_ms:.1} (engine creation {warm_engine_ms:.1}) | {:.1} ({:.1} before loading) |",
        warm_rss / 1024.0,
        base_rss / 1024.0
    );
    Ok(())
}

/// The warm start: a new engine loads every module of `dir` from `cache`.
pub fn warm_child(dir: &Path, cache: &Path) -> Result<()> {
    let base = rss_kib()?;
    let t = Instant::now();
    let mut e = engine(cache)?;
    let engine_ms = t.elapsed().as_secs_f64() * 1e3;
    let n = e.load_dir(dir)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let stats = e.load_stats();
    if stats.cache_hits != n {
        bail!(
            "warm start: only {} of {n} modules came from the cache",
            stats.cache_hits
        );
    }
    println!(
        "ms={ms:.2} engine_ms={engine_ms:.2} rss_kib={} base_rss_kib={base}",
        rss_kib()?
    );
    Ok(())
}
