//! `jitgate sign`: sign a folder of policy modules as a policy set.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::policy_set::{self, SignOptions};

/// Sign a folder of policy modules (writes policy-set.json and policy-set.sig).
///
/// A second key signing the same, unchanged set adds its signature beside
/// the first (for `min-signatures` > 1); changed modules make a new manifest
/// with the next sequence, and drop the old signatures.
#[derive(Args)]
pub struct SignArgs {
    /// The folder of .wasm modules.
    dir: PathBuf,
    /// Secret key (PKCS#8 PEM, from `jitgate keygen --secret`).
    #[arg(long)]
    key: PathBuf,
    /// The set's version (default: its sequence).
    #[arg(long)]
    version: Option<String>,
    /// The set's sequence (default: one more than the folder's current
    /// manifest's, or 1). Hosts refuse a sequence lower than the last they
    /// accepted.
    #[arg(long)]
    sequence: Option<u64>,
}

/// Sign and say what was signed.
pub fn run(args: SignArgs) -> Result<ExitCode> {
    let key = jitgate::keys::read_secret(&args.key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let opts = SignOptions {
        version: args.version,
        sequence: args.sequence,
        now,
    };
    let s = policy_set::sign(&args.dir, &key, &opts)?;
    println!(
        "{} {}: version {}, sequence {}, {} modules, set {}; key {} ({} signature(s))",
        if s.cosigned { "co-signed" } else { "signed" },
        args.dir.display(),
        jitgate::policy::escape(&s.manifest.version),
        s.manifest.sequence,
        s.manifest.modules.len(),
        s.manifest.digest(),
        s.key_id,
        s.signatures
    );
    Ok(ExitCode::SUCCESS)
}
