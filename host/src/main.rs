//! The `jitgate` command line: evaluate requests, test policies against
//! fixtures, inspect modules. Errors are reported with `anyhow` here, at the
//! edge; the library underneath uses typed errors.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jitgate::policy::sandbox::escape as esc;
use jitgate::{Decision, Engine, EngineConfig};

mod cli;

#[derive(Parser)]
#[command(
    name = "jitgate",
    version,
    about = "Policy engine for just-in-time access"
)]
struct Cli {
    /// Compiled-module cache folder (default: $XDG_CACHE_HOME/jitgate or ~/.cache/jitgate).
    #[arg(long, global = true, env = "JITGATE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every module on load instead of using the cache.
    #[arg(long, global = true)]
    no_cache: bool,
    /// `per-decision` (a fresh instance per policy evaluation, the default)
    /// or `per-worker` (one warm instance per policy per thread).
    #[arg(
        long,
        global = true,
        env = "JITGATE_ISOLATION",
        default_value = "per-decision"
    )]
    isolation: jitgate::Isolation,
    /// Allocate instances on demand instead of from wasmtime's pooling
    /// allocator (slower; for hosts short of virtual address space).
    #[arg(long, global = true)]
    no_pool: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one request and explain the decision.
    Eval {
        /// Folder of policy modules (or one .wasm file); repeatable.
        #[arg(long, default_value = "target/policies")]
        policies: Vec<PathBuf>,
        /// Request JSON file (`-` for stdin). `now` defaults to the current time.
        #[arg(long)]
        request: PathBuf,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run policy fixture files and report every failing case.
    Test {
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
    },
    /// Time repeated decisions of one request and print a latency table.
    Bench {
        /// Folder of policy modules (or one .wasm file); repeatable.
        #[arg(long, default_value = "target/policies")]
        policies: Vec<PathBuf>,
        /// Request JSON file.
        #[arg(long)]
        request: PathBuf,
        /// Decisions to time (after 10% warm-up).
        #[arg(short = 'n', long, default_value_t = 10_000)]
        iterations: usize,
    },
    /// Run the HTTP service (with no config: example policies, ./jitgate.db, loopback).
    Serve {
        /// Config file (jitgate.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding the config (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Read the audit log of a store.
    Audit {
        /// The store: a SQLite file or a `postgres://` URL (as in the config).
        #[arg(long, default_value = "jitgate.db")]
        store: String,
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Make an Ed25519 key pair (signs audit checkpoints); refuses to overwrite.
    Keygen {
        /// Secret key file to create, 0600 (PKCS#8 PEM).
        #[arg(long)]
        secret: PathBuf,
        /// Public key file to create (SPKI PEM).
        #[arg(long)]
        public: PathBuf,
    },
    /// Show a module's info, digest, size and imports.
    Inspect {
        /// The .wasm file.
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; names every bad record and exits non-zero if any.
    Verify {
        /// Folder of signed checkpoints the chain must still match
        /// (catches truncation and a rewritten, re-hashed chain).
        #[arg(long, requires = "pubkey")]
        checkpoints: Option<PathBuf>,
        /// Public key the checkpoints were signed with.
        #[arg(long, requires = "checkpoints")]
        pubkey: Option<PathBuf>,
    },
    /// Sign the chain head (seq, hash, time) into a checkpoint file kept
    /// outside the store.
    Checkpoint {
        /// Secret key (from `jitgate keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Folder to write the checkpoint into.
        #[arg(long, default_value = "checkpoints")]
        out: PathBuf,
    },
    /// Write every record as JSON lines to stdout.
    Export,
    /// Print the evidence view of one grant.
    Grant {
        /// Grant id.
        id: String,
    },
    /// List grant rows whose stored document did not parse (one JSON line
    /// each, with the original text); exits non-zero when there are any.
    Quarantine,
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("jitgate"))
}

// The service allocates and frees many small blocks per request (JSON
// values, audit evidence) on two or more threads, and the audit writer frees
// what the workers allocated: glibc's malloc spent a fifth of the server's
// CPU on that under load (perf, docs/performance.md §5); mimalloc's
// thread-local free lists are built for exactly this pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JITGATE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut config = EngineConfig {
        isolation: cli.isolation,
        ..EngineConfig::default()
    };
    if cli.no_pool {
        config.instance_pool = None;
    }
    if !cli.no_cache {
        config.cache_dir = cli.cache_dir.or_else(default_cache_dir);
    }
    if let Command::Serve {
        config: file,
        listen,
    } = cli.command
    {
        cli::serve::run(cli::serve::ServeArgs {
            config: file,
            listen,
            cache_dir: config.cache_dir,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    match cli.command {
        Command::Eval {
            policies,
            request,
            json,
        } => eval(config, &policies, &request, json),
        Command::Test {
            paths,
            policy_dir,
            filter,
            verbose,
        } => {
            let opts = jitgate::fixture::RunOptions {
                policy_dir,
                filter,
                engine: config,
            };
            test(&paths, &opts, verbose)
        }
        Command::Inspect { file, json } => inspect(config, &file, json),
        Command::Serve { .. } => Ok(ExitCode::SUCCESS),
        Command::Audit { store, what } => match what {
            AuditCommand::Verify {
                checkpoints,
                pubkey,
            } => Ok(
                if cli::audit::verify(&store, checkpoints.as_deref().zip(pubkey.as_deref()))? {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            ),
            AuditCommand::Checkpoint { key, out } => {
                cli::audit::checkpoint(&store, &key, &out)?;
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Export => {
                let mut out = std::io::stdout().lock();
                cli::audit::export(&store, &mut out)?;
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Grant { id } => {
                cli::audit::grant(&store, &id)?;
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Quarantine => {
                let mut out = std::io::stdout().lock();
                Ok(if cli::audit::quarantine(&store, &mut out)? == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        },
        Command::Keygen { secret, public } => {
            let key = jitgate::keys::keygen(&secret, &public)?;
            println!(
                "key {}: secret {} (keep it private), public {}",
                jitgate::keys::key_id(&key),
                secret.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            policies,
            request,
            iterations,
        } => bench(config, &policies, &request, iterations),
    }
}

fn read_request(path: &Path) -> Result<jitgate::Request> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading request from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    // The host owns the clock: a request without `now` is decided at the
    // current time; a pinned `now` replays a past decision exactly.
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if let Some(obj) = value.as_object_mut()
        && !obj.contains_key("now")
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        obj.insert("now".into(), now.into());
    }
    Ok(jitgate::request::from_json(&value.to_string())?)
}

fn eval(
    config: EngineConfig,
    policies: &[PathBuf],
    request: &Path,
    json: bool,
) -> Result<ExitCode> {
    let mut engine = Engine::new(config)?;
    for p in policies {
        engine.load_path(p)?;
    }
    let req = read_request(request)?;
    let decision = engine.decide(&req)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print_decision(&decision);
    }
    Ok(ExitCode::SUCCESS)
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

fn test(paths: &[PathBuf], opts: &jitgate::fixture::RunOptions, verbose: bool) -> Result<ExitCode> {
    let report = jitgate::fixture::run(paths, opts);
    for e in &report.file_errors {
        println!("ERROR {e}");
    }
    for c in &report.cases {
        if c.passed() {
            if verbose {
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

fn inspect(config: EngineConfig, file: &Path, json: bool) -> Result<ExitCode> {
    let engine = Engine::new(config)?;
    let i = engine.inspect(file)?;
    if json {
        let v = serde_json::json!({
            "file": file,
            "digest": i.digest,
            "size": i.size,
            "imports": i.imports,
            "exports": i.exports,
            "info": i.load.as_ref().ok(),
            "error": i.load.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_string()
            } else {
                v.iter().map(|s| esc(s)).collect::<Vec<_>>().join(", ")
            }
        };
        println!("file:     {}", esc(&file.display().to_string()));
        println!("digest:   {}", i.digest);
        println!("size:     {} bytes", i.size);
        println!("imports:  {}", list(&i.imports));
        println!("exports:  {}", list(&i.exports));
        match &i.load {
            Ok(m) => {
                println!("name:     {}", esc(&m.name));
                println!("version:  {}", esc(&m.version));
                println!("about:    {}", esc(&m.description));
                println!("tasks:    {}", list(&m.tasks));
                println!("max-ttl:  {} s", m.max_ttl);
                for w in &m.warnings {
                    println!("warning:  {}", esc(w));
                }
            }
            Err(e) => println!("refused:  {}", esc(&e.kind.to_string())),
        }
    }
    if i.load.is_err() {
        bail!("{} would be refused at load", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(
    config: EngineConfig,
    policies: &[PathBuf],
    request: &Path,
    iterations: usize,
) -> Result<ExitCode> {
    let mut engine = Engine::new(config)?;
    for p in policies {
        engine.load_path(p)?;
    }
    let req = read_request(request)?;
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
