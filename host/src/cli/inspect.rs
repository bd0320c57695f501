//! `jitgate inspect`: a module's info, digest, size and imports, and
//! whether it would load.

use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use jitgate::policy::escape as esc;
use jitgate::{Engine, EngineConfig};

/// Show a module's info, digest, size and imports.
#[derive(Args)]
pub struct InspectArgs {
    /// The .wasm file.
    file: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Print what the module is; an error when it would be refused at load.
pub fn run(args: InspectArgs, config: EngineConfig) -> Result<ExitCode> {
    let file = &args.file;
    let engine = Engine::new(config)?;
    let i = engine.inspect(file)?;
    if args.json {
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
