//! `jitgate keygen`: an Ed25519 key pair for signing policy sets and audit
//! checkpoints.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Make an Ed25519 key pair (signs policy sets, audit checkpoints); refuses to overwrite.
#[derive(Args)]
pub struct KeygenArgs {
    /// Secret key file to create, 0600 (PKCS#8 PEM).
    #[arg(long)]
    secret: PathBuf,
    /// Public key file to create (SPKI PEM).
    #[arg(long)]
    public: PathBuf,
}

/// Write both files and name the key.
pub fn run(args: KeygenArgs) -> Result<ExitCode> {
    let key = jitgate::keys::keygen(&args.secret, &args.public)?;
    println!(
        "key {}: secret {} (keep it private), public {}",
        jitgate::keys::key_id(&key),
        args.secret.display(),
        args.public.display()
    );
    Ok(ExitCode::SUCCESS)
}
