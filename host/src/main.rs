//! The `jitgate` command line. Each command, with its arguments, lives in
//! `cli/`; this file parses and dispatches.

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

mod cli;

use cli::{
    audit, bench, build, dev_idp, eval, explore, inspect, keygen, new, replay, report, serve, sign,
    test, verify,
};

#[derive(Parser)]
#[command(
    name = "jitgate",
    version,
    about = "Policy engine for just-in-time access"
)]
struct Cli {
    #[command(flatten)]
    engine: cli::EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one request and explain the decision.
    Eval(eval::EvalArgs),
    /// Run policy fixture files and report every failing case.
    Test(test::TestArgs),
    /// Generate requests over the policies' domain and check invariants from a properties file.
    Explore(explore::ExploreArgs),
    /// Time repeated decisions of one request and print a latency table.
    Bench(bench::BenchArgs),
    /// Run the HTTP service (with no config: example policies, ./jitgate.db, loopback).
    Serve(serve::ServeArgs),
    /// Read the audit log of a store.
    Audit(audit::AuditArgs),
    /// Re-decide recorded requests and dry runs against a candidate policy set; report what changes.
    Replay(replay::ReplayArgs),
    /// Access review: every elevated state in a window and why, with totals by task, from the audit chain (exit 1 when it is broken).
    Report(report::ReportArgs),
    /// Make an Ed25519 key pair (signs policy sets, audit checkpoints); refuses to overwrite.
    Keygen(keygen::KeygenArgs),
    /// Sign a folder of policy modules (writes policy-set.json and policy-set.sig).
    Sign(sign::SignArgs),
    /// Verify a signed policy set (exit 0 valid, 1 not).
    Verify(verify::VerifyArgs),
    /// Show a module's info, digest, size and imports.
    Inspect(inspect::InspectArgs),
    /// Scaffold a policy crate (Cargo.toml, src/lib.rs with unit tests, fixtures, properties) anywhere.
    New(new::NewArgs),
    /// Build a policy crate for wasm32-wasip2 into its target/policies/NAME.wasm.
    Build(build::BuildArgs),
    /// Mint identity-provider tokens for the example users (a development aid only).
    DevIdp(dev_idp::DevIdpArgs),
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /v1/openapi.json`
    /// serves; `jitgate openapi > docs/openapi.json` regenerates the
    /// committed copy).
    Openapi,
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on bad usage, which for `eval` means deny.
            let code = if e.use_stderr() && invoked_eval() {
                eval::EXIT_ERROR
            } else {
                e.exit_code() as u8
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // `eval`'s 2 means deny, so its errors exit 1; the other commands keep 2.
    let error_code = match cli.command {
        Command::Eval(_) => eval::EXIT_ERROR,
        _ => 2,
    };
    let config = cli.engine.config();
    let ran = match cli.command {
        Command::Eval(args) => eval::run(args, config),
        Command::Test(args) => test::run(args, config),
        Command::Explore(args) => explore::run(args, config),
        Command::Bench(args) => bench::run(args, config),
        Command::Serve(mut args) => {
            args.cache_dir = config.cache_dir;
            serve::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Audit(args) => audit::run(args),
        Command::Replay(args) => replay::run(args, config),
        Command::Report(args) => report::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args, config),
        Command::DevIdp(args) => dev_idp::run(args),
        Command::New(args) => new::run(args).map(|()| ExitCode::SUCCESS),
        Command::Build(args) => build::run(args).map(|_| ExitCode::SUCCESS),
        Command::Openapi => {
            print!("{}", jitgate::api::openapi::json());
            Ok(ExitCode::SUCCESS)
        }
    };
    ran.unwrap_or_else(|e| {
        eprintln!("error: {}", cli::chain(&e));
        ExitCode::from(error_code)
    })
}

/// Whether the (unparseable) command line names `eval`: parsed again
/// leniently, only to learn the subcommand.
fn invoked_eval() -> bool {
    Cli::command()
        .ignore_errors(true)
        .try_get_matches()
        .is_ok_and(|m| m.subcommand_name() == Some("eval"))
}
