//! `jitgate inspect`: a module's info, digest, size and imports, and
//! whether it would load; or a policy set's manifest and signatures.

use anyhow::{Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jitgate::policy::escape as esc;
use jitgate::policy_set::{MANIFEST_FILE, Manifest, SIGNATURES_FILE, Signatures};
use jitgate::{Engine, EngineConfig};

/// Show a module's info, digest, size and imports, or a policy set (a folder).
#[derive(Args)]
pub struct InspectArgs {
    /// The .wasm file, or a signed policy set's folder.
    file: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Config file: with `[trust]`, the set is verified too.
    #[arg(long, env = "JITGATE_CONFIG")]
    config: Option<PathBuf>,
}

/// The manifest beside a module (or in a folder), read but not verified.
fn manifest_in(dir: &Path) -> Option<(Manifest, Vec<String>)> {
    let m = std::fs::read(dir.join(MANIFEST_FILE)).ok()?;
    let manifest = Manifest::parse(&dir.join(MANIFEST_FILE), &m).ok()?;
    let signed_by = std::fs::read(dir.join(SIGNATURES_FILE))
        .ok()
        .and_then(|b| Signatures::parse(&dir.join(SIGNATURES_FILE), &b).ok())
        .map(|s| s.signatures.into_iter().map(|e| e.key_id).collect())
        .unwrap_or_default();
    Some((manifest, signed_by))
}

/// Print the set in `dir`; verified against `[trust]` when configured.
fn inspect_set(args: &InspectArgs, config: &EngineConfig) -> Result<ExitCode> {
    let dir = &args.file;
    let Some((m, signed_by)) = manifest_in(dir) else {
        bail!(
            "{}: no readable {MANIFEST_FILE}: not a signed policy set",
            dir.display()
        );
    };
    let verified = super::trust_from(args.config.as_deref())?.map(|(trust, floor)| {
        jitgate::policy_set::verify(dir, &trust, floor, config.sandbox.max_module_bytes)
            .map(|s| s.signers)
            .map_err(|e| e.to_string())
    });
    if args.json {
        let v = serde_json::json!({
            "set": dir,
            "digest": m.digest(),
            "version": m.version,
            "sequence": m.sequence,
            "signer": m.signer,
            "issued-at": jitgate::timefmt::rfc3339_secs(m.issued_at),
            "signed-by": signed_by,
            "modules": m.modules,
            "verified": verified.as_ref().map(|v| v.is_ok()),
            "signers": verified.as_ref().and_then(|v| v.as_ref().ok()),
            "error": verified.as_ref().and_then(|v| v.as_ref().err()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("set:       {}", esc(&dir.display().to_string()));
        println!("digest:    {}", m.digest());
        println!("version:   {}", esc(&m.version));
        println!("sequence:  {}", m.sequence);
        println!("signer:    {}", m.signer);
        println!("issued-at: {}", jitgate::timefmt::rfc3339_secs(m.issued_at));
        println!("signed-by: {}", signed_by.join(", "));
        for e in &m.modules {
            println!(
                "module:    {}  {} bytes  sha256:{}",
                e.name, e.size, e.sha256
            );
        }
        match &verified {
            None => {
                println!("verified:  not checked (no [trust] in --config; see `jitgate verify`)")
            }
            Some(Ok(signers)) => println!("verified:  yes, by {}", signers.join(", ")),
            Some(Err(e)) => println!("verified:  NO: {}", esc(e)),
        }
    }
    if let Some(Err(e)) = verified {
        bail!("{e}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Print what the module is; an error when it would be refused at load.
pub fn run(args: InspectArgs, config: EngineConfig) -> Result<ExitCode> {
    if args.file.is_dir() {
        return inspect_set(&args, &config);
    }
    let file = &args.file;
    let engine = Engine::new(config)?;
    let i = engine.inspect(file)?;
    let set = manifest_in(file.parent().unwrap_or(Path::new(".")));
    let set_json = set.as_ref().map(|(m, _)| {
        serde_json::json!({
            "digest": m.digest(),
            "version": m.version,
            "sequence": m.sequence,
            "signer": m.signer,
            "listed": m.modules.iter().any(|e| {
                format!("sha256:{}", e.sha256) == i.digest
                    && file.file_name().is_some_and(|n| n.to_string_lossy() == e.name)
            }),
        })
    });
    if args.json {
        let v = serde_json::json!({
            "file": file,
            "digest": i.digest,
            "size": i.size,
            "imports": i.imports,
            "exports": i.exports,
            "info": i.load.as_ref().ok(),
            "error": i.load.as_ref().err().map(|e| e.to_string()),
            "set": set_json,
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
        if let Some(s) = &set_json {
            println!(
                "set:      {} version {} sequence {} signer {} (this module {}listed; not verified here)",
                s["digest"].as_str().unwrap_or(""),
                esc(s["version"].as_str().unwrap_or("")),
                s["sequence"],
                s["signer"].as_str().unwrap_or(""),
                if s["listed"] == true { "" } else { "NOT " }
            );
        }
    }
    if i.load.is_err() {
        bail!("{} would be refused at load", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
