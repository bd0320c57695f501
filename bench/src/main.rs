//! `jitgate-bench`: the same access rules evaluated five ways, side by side,
//! and jitgate's start-up with 50 policies (issue 4).
//!
//! ```text
//! jitgate-bench compare --policies DIR [-n N]   the comparison table
//! jitgate-bench startup --modules DIR           cold/warm load of every module in DIR
//! jitgate-bench startup --module FILE --copies N the same over N renamed copies of FILE
//! ```
//!
//! Before anything is timed, `compare` checks that the Cedar and Rego
//! versions of the rules (`bench/rules/`) give the wasm policies' verdicts on
//! every relevant fixture case; one mismatch aborts the run.

mod cedar;
mod corpus;
mod native;
mod rego;
mod startup;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jitgate::{Engine, EngineConfig, Isolation};

/// What a rule answered, reduced to what all five ways can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// `allow`, `deny` or `require-approval`.
    pub outcome: &'static str,
    /// Granted (or, with approval, grantable) seconds; `None` on deny.
    pub ttl: Option<u32>,
}

impl Answer {
    /// Refused.
    pub const DENY: Answer = Answer {
        outcome: "deny",
        ttl: None,
    };
}

/// Which rule a row evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `file-recovery` alone.
    FileRecovery,
    /// `baseline` + `file-recovery` + `business-hours`, deny overrides.
    Composed,
}

impl Rule {
    fn label(self) -> &'static str {
        match self {
            Rule::FileRecovery => "file-recovery rule",
            Rule::Composed => "composed decision (3 policies)",
        }
    }

    fn policies(self) -> &'static [&'static str] {
        match self {
            Rule::FileRecovery => &["file-recovery"],
            Rule::Composed => &["baseline", "file-recovery", "business-hours"],
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: jitgate-bench compare --policies DIR [-n N]\n       jitgate-bench startup (--modules DIR | --module FILE [--copies N]) [--cache DIR]"
    );
    std::process::exit(2)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    match args.first().map(String::as_str) {
        Some("compare") => {
            let dir = PathBuf::from(flag("--policies").unwrap_or_else(|| usage()));
            let n: usize = flag("-n").map(|s| s.parse()).transpose()?.unwrap_or(20_000);
            compare(&dir, n)
        }
        Some("startup") => {
            let cache = flag("--cache").map(PathBuf::from);
            if let Some(module) = flag("--module") {
                let n: usize = flag("--copies")
                    .map(|s| s.parse())
                    .transpose()?
                    .unwrap_or(50);
                let tmp = tempfile::tempdir()?;
                startup::copies(Path::new(&module), n, tmp.path())?;
                return startup::run(tmp.path(), cache);
            }
            let dir = PathBuf::from(flag("--modules").unwrap_or_else(|| usage()));
            startup::run(&dir, cache)
        }
        // Internal: the warm start, in a process of its own so its resident
        // memory is not inflated by the cold start's compilations.
        Some("startup-warm") => {
            let dir = PathBuf::from(flag("--modules").unwrap_or_else(|| usage()));
            let cache = PathBuf::from(flag("--cache").unwrap_or_else(|| usage()));
            startup::warm_child(&dir, &cache)
        }
        _ => usage(),
    }
}

/// Load `rule`'s policies from `dir` into an engine with `isolation`.
fn engine(dir: &Path, rule: Rule, isolation: Isolation) -> Result<Engine> {
    let mut e = Engine::new(EngineConfig {
        isolation,
        ..EngineConfig::default()
    })?;
    for p in rule.policies() {
        e.load_file(&dir.join(format!("{p}.wasm")))?;
    }
    Ok(e)
}

/// A jitgate decision reduced to an [`Answer`].
fn jitgate_answer(e: &Engine, req: &jitgate::Request) -> Result<Answer> {
    let d = e.decide(req)?;
    Ok(match d.outcome {
        jitgate::Outcome::Deny => Answer::DENY,
        jitgate::Outcome::Allow => Answer {
            outcome: "allow",
            ttl: Some(d.ttl),
        },
        jitgate::Outcome::RequireApproval => Answer {
            outcome: "require-approval",
            ttl: Some(d.ttl),
        },
    })
}

/// Latencies of one row, nanoseconds per decision.
struct Row {
    way: &'static str,
    median: f64,
    p99: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Time `f` over the corpus, round robin, `n` samples after a warm-up.
/// `batch` calls make one sample (their mean): a native call is shorter
/// than the clock's resolution, so it is timed in batches; everything else
/// is timed call by call (`batch` = 1).
fn time<F: FnMut(usize) -> Result<Answer>>(
    way: &'static str,
    corpus_len: usize,
    n: usize,
    batch: usize,
    mut f: F,
) -> Result<Row> {
    let mut i = 0usize;
    for _ in 0..(n / 10).max(100) * batch {
        std::hint::black_box(f(i % corpus_len)?);
        i += 1;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f(i % corpus_len)?);
            i += 1;
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(Row {
        way,
        median: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
    })
}

fn compare(dir: &Path, n: usize) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_path_buf();
    let cases = corpus::load(&root)?;
    let reqs: Vec<jitgate::Request> = cases.iter().map(|c| c.request.clone()).collect();
    let sdk_reqs: Vec<jitgate_sdk::Request> = reqs.iter().map(native::to_sdk).collect();
    let cedar = cedar::Rules::load(&root.join("bench/rules"))?;
    let rego = rego::Rules::load(&root.join("bench/rules/jitgate.rego"))?;

    let mut out = String::new();
    for rule in [Rule::FileRecovery, Rule::Composed] {
        let fresh = engine(dir, rule, Isolation::PerDecision)?;
        let warm = engine(dir, rule, Isolation::PerWorker)?;
        let mut rego_engine = rego.engine();

        // Verdicts first: every way must agree with the wasm policies.
        let mut mismatches = Vec::new();
        for (c, sdk) in cases.iter().zip(&sdk_reqs) {
            let want = jitgate_answer(&fresh, &c.request)?;
            let got = [
                ("native", native::answer(rule, sdk)),
                ("jitgate per-worker", jitgate_answer(&warm, &c.request)?),
                ("cedar", cedar.answer(rule, &c.request)?),
                ("regorus", rego::answer(&mut rego_engine, rule, &c.request)?),
            ];
            for (way, a) in got {
                if a != want {
                    mismatches.push(format!(
                        "{}: {} case `{}`: wasm says {want:?}, {way} says {a:?}",
                        rule.label(),
                        c.file,
                        c.name
                    ));
                }
            }
        }
        if !mismatches.is_empty() {
            bail!(
                "the rules disagree; nothing was timed:\n  {}",
                mismatches.join("\n  ")
            );
        }
        eprintln!(
            "{}: cedar, regorus and native agree with the wasm policies on all {} fixture cases",
            rule.label(),
            cases.len()
        );

        let len = reqs.len();
        let rows = [
            time("native Rust (floor)", len, n, 1000, |i| {
                Ok(native::answer(rule, &sdk_reqs[i]))
            })?,
            time("jitgate, warm instance (per-worker)", len, n, 1, |i| {
                jitgate_answer(&warm, &reqs[i])
            })?,
            time(
                "jitgate, fresh instance per decision (per-decision)",
                len,
                n,
                1,
                |i| jitgate_answer(&fresh, &reqs[i]),
            )?,
            time("cedar-policy", len, n, 1, |i| cedar.answer(rule, &reqs[i]))?,
            time("regorus", len, n, 1, |i| {
                rego::answer(&mut rego_engine, rule, &reqs[i])
            })?,
        ];
        out.push_str(&table(rule, &rows, len, n));
    }
    println!("{out}");
    Ok(())
}

fn table(rule: Rule, rows: &[Row], cases: usize, n: usize) -> String {
    let floor = rows.first().map(|r| r.median).unwrap_or(1.0).max(1e-9);
    let cedar = rows
        .iter()
        .find(|r| r.way == "cedar-policy")
        .map(|r| r.median)
        .unwrap_or(f64::NAN);
    let mut s = format!(
        "\n### {} ({} fixture requests round robin, {n} samples)\n\n",
        rule.label(),
        cases
    );
    s.push_str("| way | median µs | p99 µs | × native (median) | × cedar (median) |\n");
    s.push_str("|---|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.1} | {:.2} |\n",
            r.way,
            r.median / 1e3,
            r.p99 / 1e3,
            r.median / floor,
            r.median / cedar
        ));
    }
    s
}
