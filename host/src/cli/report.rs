//! `jitgate report`: the access review of a window, read from a store's
//! audit chain and verified on the way ([`jitgate::review`]).

use anyhow::{Result, bail};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

use jitgate::review::{self, ChainState};

/// Exit status when the report was printed but the audit chain is broken.
pub const EXIT_BROKEN: u8 = 1;

const EXIT_CODES: &str = "\
Exit status:
  0  the report, and the audit chain verified
  1  the report, but the audit chain is broken (edited, deleted or reordered records)
  2  error (unreadable store, bad --since/--until, bad usage)";

/// For a window, every elevated state that existed and why, with totals by
/// task, from the audit chain (which it verifies).
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct ReportArgs {
    /// The store: a SQLite file or a `postgres://` URL.
    #[arg(long)]
    store: String,
    /// Start of the window, inclusive (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long, value_name = "T", value_parser = since)]
    since: i64,
    /// End of the window, exclusive (RFC 3339).
    #[arg(long, value_name = "T", value_parser = until)]
    until: i64,
    /// Print CSV (states, totals by task, chain; cells made safe for
    /// spreadsheets and terminals).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print JSON (every string exactly as recorded).
    #[arg(long)]
    json: bool,
}

fn since(s: &str) -> Result<i64, String> {
    bound("since", s)
}

fn until(s: &str) -> Result<i64, String> {
    bound("until", s)
}

fn bound(field: &'static str, s: &str) -> Result<i64, String> {
    review::parse_time(field, s).map_err(|e| match e {
        review::ReviewError::Window { message, .. } => message,
        other => other.to_string(),
    })
}

/// Print the report; exit 1 when the chain is broken.
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if args.since >= args.until {
        bail!("--since must be before --until (the window [since, until) is empty)");
    }
    let store = super::audit::open(&args.store)?;
    let report = review::read(store.as_ref(), args.since, args.until)?;
    let out = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.csv {
        report.to_csv()
    } else {
        review::text(&report, &jitgate::store::redacted(&args.store))
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(match report.chain.state {
        ChainState::Verified => ExitCode::SUCCESS,
        ChainState::Broken => {
            eprintln!(
                "audit chain BROKEN: first bad record {}",
                report.chain.first_bad_seq.unwrap_or(0)
            );
            ExitCode::from(EXIT_BROKEN)
        }
    })
}
