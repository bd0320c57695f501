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

/// Most distinct copies [`copies`] can write (names of the template's length).
pub const MAX_COPIES: usize = 99 + 26 * 36;

/// The name of copy `i` (1..=[`MAX_COPIES`]): `bench-policy-01`…`99`, then
/// `bench-policy-a0`…`zz` (a letter first, so never one of the first 99),
/// always as long as [`TEMPLATE_NAME`].
pub fn copy_name(i: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if i <= 99 {
        return format!("bench-policy-{i:02}");
    }
    let j = i - 100;
    let (hi, lo) = (j / 36, j % 36);
    format!(
        "bench-policy-{}{}",
        char::from(b'a' + (hi % 26) as u8),
        char::from(DIGITS[lo])
    )
}

/// Write `n` (1..=[`MAX_COPIES`]) distinct copies of `module` into `out`:
/// the module built once with `JITGATE_BENCH_POLICY_NAME=bench-policy-00`,
/// its name bytes rewritten to [`copy_name`]`(1)`…`(n)` (same length, so
/// nothing else moves). Each copy is then byte for byte what a build under
/// that name would give, with its own digest, `info().name` and task, and
/// takes no compilation: 50 policy builds were a minute of `bench/run.sh`.
pub fn copies(module: &Path, n: usize, out: &Path) -> Result<()> {
    if !(1..=MAX_COPIES).contains(&n) {
        bail!("--copies must be 1 to {MAX_COPIES}, not {n}");
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
        let name = copy_name(i);
        let mut copy = bytes.clone();
        for &a in &at {
            copy[a..a + pat.len()].copy_from_slice(name.as_bytes());
        }
        std::fs::write(out.join(format!("{name}.wasm")), copy)?;
    }
    Ok(())
}

/// One cold and one warm start over the same modules.
pub struct Startup {
    /// Modules loaded.
    pub modules: usize,
    /// Cold: empty cache, every module compiled, ms.
    pub cold_ms: f64,
    /// Resident KiB before and after the cold start (same process).
    pub cold_rss_kib: (u64, u64),
    /// Warm: every module from the cache, in a new process, ms.
    pub warm_ms: f64,
    /// Of which creating the engine, ms.
    pub warm_engine_ms: f64,
    /// Resident KiB of the warm process before and after loading.
    pub warm_rss_kib: (f64, f64),
}

/// Cold then warm start over every module in `dir`, with the compile cache
/// in `cache` (emptied first).
pub fn measure(dir: &Path, cache: &Path) -> Result<Startup> {
    let _ = std::fs::remove_dir_all(cache);

    let rss_before = rss_kib()?;
    let t = Instant::now();
    let mut cold = engine(cache)?;
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
        .arg(cache)
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
    Ok(Startup {
        modules: n,
        cold_ms,
        cold_rss_kib: (rss_before, cold_rss),
        warm_ms: field("ms=")?,
        warm_engine_ms: field("engine_ms=")?,
        warm_rss_kib: (field("base_rss_kib=")?, field("rss_kib=")?),
    })
}

/// Cold then warm start over every module in `dir`, as a table.
pub fn run(dir: &Path, cache: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = cache.unwrap_or_else(|| tmp.path().join("cache"));
    let s = measure(dir, &cache)?;
    let n = s.modules;
    println!("\n### Start-up with {n} policy modules\n");
    println!("| start | time ms | resident memory MiB (VmRSS) |");
    println!("|---|---:|---:|");
    println!(
        "| cold: empty cache, compile all {n} | {:.0} | {:.1} (process, after compiling; {:.1} before) |",
        s.cold_ms,
        s.cold_rss_kib.1 as f64 / 1024.0,
        s.cold_rss_kib.0 as f64 / 1024.0
    );
    println!(
        "| warm: all {n} from the compile cache, in a new process | {:.1} (engine creation {:.1}) | {:.1} ({:.1} before loading) |",
        s.warm_ms,
        s.warm_engine_ms,
        s.warm_rss_kib.1 / 1024.0,
        s.warm_rss_kib.0 / 1024.0
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
