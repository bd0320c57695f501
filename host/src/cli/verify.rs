//! `jitgate verify`: check a signed policy set as a host would.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::policy_set::{self, Trust};

/// Verify a signed policy set (exit 0 valid, 1 not).
#[derive(Args)]
pub struct VerifyArgs {
    /// The folder holding the modules, policy-set.json and policy-set.sig.
    dir: PathBuf,
    /// A trusted public key (SPKI PEM); repeatable.
    #[arg(long, required = true)]
    pubkey: Vec<PathBuf>,
    /// Distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1)]
    min_signatures: usize,
    /// Refuse a sequence lower than this (a host's last accepted one).
    #[arg(long)]
    min_sequence: Option<u64>,
}

/// Exit 0 when the set verifies; 1, with the reason, when it does not or
/// cannot be checked (an unreadable key included).
pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let verified = Trust::from_files(&args.pubkey, args.min_signatures).and_then(|t| {
        policy_set::verify(
            &args.dir,
            &t,
            args.min_sequence,
            jitgate::SandboxLimits::default().max_module_bytes,
        )
    });
    match verified {
        Ok(set) => {
            let info = set.info();
            println!(
                "valid: {}: version {}, sequence {}, {} modules, set {}; signed by {}",
                args.dir.display(),
                jitgate::policy::escape(&set.manifest.version),
                set.manifest.sequence,
                set.modules.len(),
                info.digest,
                set.signers.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
