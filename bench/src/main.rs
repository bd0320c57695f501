//! `jitgate-bench`: the same access rules evaluated five ways, side by side,
//! and jitgate's start-up with 50 policies (issue 4).
//!
//! ```text
//! jitgate-bench compare --policies DIR [-n N]   the comparison table
//! jitgate-bench startup --modules DIR           cold/warm load of every module in DIR
//! jitgate-bench startup --module FILE --copies N the same over N renamed copies of FILE
//! jitgate-bench curves --module FILE [--quick] [--plot SVG]  cost curves (issue 17)
//! jitgate-bench loop --policies DIR [--composed] [--per-worker] [-n N]
//!                                               fresh decisions only, for `perf record`
//! jitgate-bench replicas [--secs S] [--rounds R] [--quota PCT]
//!                                               3 PostgreSQL replicas ÷ 1 (issue 17)
//! ```
//!
//! Before anything is timed, `compare` checks that the Cedar and Rego
//! versions of the rules (`bench/rules/`) give the wasm policies' verdicts on
//! every relevant fixture case; one mismatch aborts the run.

mod cedar;
mod corpus;
mod curves;
mod grants;
mod native;
mod rego;
mod replicas;
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
        "usage: jitgate-bench compare --policies DIR [-n N]\n       jitgate-bench startup (--modules DIR | --module FILE [--copies N]) [--cache DIR]\n       jitgate-bench curves --module FILE [--quick] [--plot SVG]\n       jitgate-bench loop --policies DIR [--composed] [--per-worker] [-n N]\n       jitgate-bench replicas [--secs S] [--rounds R] [--quota PCT]"
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
        Some("curves") => {
            let module = PathBuf::from(flag("--module").unwrap_or_else(|| usage()));
            let plot = match flag("--plot") {
                Some(p) => PathBuf::from(p),
                None => Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .context("bench/ has a parent")?
                    .join("docs/perf/curves.svg"),
            };
            curves::run(&module, args.iter().any(|a| a == "--quick"), &plot)
        }
        Some("loop") => {
            let dir = PathBuf::from(flag("--policies").unwrap_or_else(|| usage()));
            let n: usize = flag("-n")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(200_000);
            let rule = if args.iter().any(|a| a == "--composed") {
                Rule::Composed
            } else {
                Rule::FileRecovery
            };
            let isolation = if args.iter().any(|a| a == "--per-worker") {
                Isolation::PerWorker
            } else {
                Isolation::PerDecision
            };
            decide_loop(&dir, rule, isolation, n)
        }
        Some("replicas") => {
            let secs: f64 = flag("--secs")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(8.0);
            let rounds: usize = flag("--rounds")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(3);
            let quota: u32 = flag("--quota")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(25);
            replicas::run(secs, rounds, quota)
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

/// One way of deciding, as a closure over the corpus index.
type Way<'a> = Box<dyn FnMut(usize) -> Result<Answer> + 'a>;

/// Rounds the samples of every way are spread over (see [`time_interleaved`]).
const ROUNDS: usize = 20;

/// Time every way over the corpus, round robin, `n` samples each after a
/// warm-up, **interleaved**: `ROUNDS` rounds, each taking `n / ROUNDS`
/// samples of every way in turn. This VM's speed shifts by up to 1.5× from
/// one few-second stretch to the next; timed one after the other, two ways
/// could land in different stretches and their ratio would measure the
/// machine, not the ways. Interleaved, every way sees the same mix.
///
/// `batch` calls make one sample (their mean): a native call is shorter
/// than the clock's resolution, so it is timed in batches; everything else
/// is timed call by call (`batch` = 1).
fn time_interleaved(
    ways: Vec<(&'static str, usize, Way<'_>)>,
    corpus_len: usize,
    n: usize,
) -> Result<Vec<Row>> {
    let mut ways: Vec<_> = ways
        .into_iter()
        .map(|(way, batch, f)| (way, batch, f, 0usize, Vec::with_capacity(n)))
        .collect();
    for (_, batch, f, i, _) in &mut ways {
        for _ in 0..(n / 10).max(100) * *batch {
            std::hint::black_box(f(*i % corpus_len)?);
            *i += 1;
        }
    }
    let per_round = n.div_ceil(ROUNDS);
    for _ in 0..ROUNDS {
        for (_, batch, f, i, samples) in &mut ways {
            for _ in 0..per_round {
                let t = Instant::now();
                for _ in 0..*batch {
                    std::hint::black_box(f(*i % corpus_len)?);
                    *i += 1;
                }
                samples.push(t.elapsed().as_nanos() as f64 / *batch as f64);
            }
        }
    }
    Ok(ways
        .into_iter()
        .map(|(way, _, _, _, mut samples)| {
            samples.sort_by(f64::total_cmp);
            Row {
                way,
                median: percentile(&samples, 0.5),
                p99: percentile(&samples, 0.99),
            }
        })
        .collect())
}

/// `n` decisions of `rule` over the fixture corpus and nothing else: the
/// jitgate rows of `compare` alone, for a profiler (`perf record`).
fn decide_loop(dir: &Path, rule: Rule, isolation: Isolation, n: usize) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_path_buf();
    let reqs: Vec<jitgate::Request> = corpus::load(&root)?
        .into_iter()
        .map(|c| c.request)
        .collect();
    let e = engine(dir, rule, isolation)?;
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(jitgate_answer(&e, &reqs[i % reqs.len()])?);
    }
    let mean = started.elapsed().as_nanos() as f64 / n.max(1) as f64 / 1e3;
    println!(
        "{}, {isolation}: {n} decisions, mean {mean:.2} µs",
        rule.label()
    );
    Ok(())
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
        let (sdk_reqs, reqs, warm, fresh, cedar) = (&sdk_reqs, &reqs, &warm, &fresh, &cedar);
        let rego_engine = &mut rego_engine;
        let ways: Vec<(&'static str, usize, Way<'_>)> = vec![
            (
                "native Rust (floor)",
                1000,
                Box::new(move |i| Ok(native::answer(rule, &sdk_reqs[i]))),
            ),
            (
                "jitgate, warm instance (per-worker)",
                1,
                Box::new(move |i| jitgate_answer(warm, &reqs[i])),
            ),
            (
                "jitgate, fresh instance per decision (per-decision)",
                1,
                Box::new(move |i| jitgate_answer(fresh, &reqs[i])),
            ),
            (
                "cedar-policy",
                1,
                Box::new(move |i| cedar.answer(rule, &reqs[i])),
            ),
            (
                "regorus",
                1,
                Box::new(move |i| rego::answer(rego_engine, rule, &reqs[i])),
            ),
        ];
        let rows = time_interleaved(ways, len, n)?;
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
        "\n### {} ({} fixture requests round robin, {n} samples per way, interleaved over {ROUNDS} rounds)\n\n",
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
