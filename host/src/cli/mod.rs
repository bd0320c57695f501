//! The `jitgate` commands, one module each with its clap arguments and its
//! body; `main.rs` only parses and dispatches. Errors are reported with
//! `anyhow` here, at the edge; the library underneath uses typed errors.

pub mod audit;
pub mod bench;
pub mod build;
pub mod coverage;
pub mod dev_idp;
pub mod eval;
pub mod explore;
pub mod inspect;
pub mod keygen;
pub mod new;
pub mod replay;
pub mod report;
pub mod serve;
pub mod sign;
pub mod test;
pub mod verify;

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use jitgate::EngineConfig;
use jitgate::policy_set::Trust;

/// Engine options shared by every command (given before or after it).
#[derive(Args)]
pub struct EngineArgs {
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
}

impl EngineArgs {
    /// The engine configuration these options describe.
    pub fn config(self) -> EngineConfig {
        let mut config = EngineConfig {
            isolation: self.isolation,
            ..EngineConfig::default()
        };
        if self.no_pool {
            config.instance_pool = None;
        }
        if !self.no_cache {
            config.cache_dir = self.cache_dir.or_else(default_cache_dir);
        }
        config
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("jitgate"))
}

/// The request file was read but does not hold a valid request: `eval`
/// tells this apart (exit 4) from a file it could not read (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

/// Read a request file (`-` for stdin); an unreadable file is an error, a
/// file that is not a valid request is an [`InvalidRequest`] error.
pub fn read_request(path: &Path) -> Result<jitgate::Request> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading request from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    // The host owns the clock: a request without `now` is decided at the
    // current time; a pinned `now` replays a past decision exactly.
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        InvalidRequest(format!(
            "invalid request: {} is not JSON: {e}",
            path.display()
        ))
    })?;
    if let Some(obj) = value.as_object_mut()
        && !obj.contains_key("now")
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        obj.insert("now".into(), now.into());
    }
    Ok(jitgate::request::from_value(value).map_err(|e| InvalidRequest(e.to_string()))?)
}

/// The error and its causes, each cause shown once: an error that already
/// quotes its source (the store's "store unavailable: <driver message>")
/// does not have the source repeated after it.
pub fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// `[trust]` of the config file `path` (if any) and the last policy-set
/// sequence its store accepted (read only when the store already exists:
/// `eval` and `test` never create one). `None` without a `[trust]` block.
pub fn trust_from(path: Option<&Path>) -> Result<Option<(Trust, Option<u64>)>> {
    let Some(path) = path else { return Ok(None) };
    let config = jitgate::config::Config::load(path)?;
    let Some(trust) = config
        .trust()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    else {
        return Ok(None);
    };
    let exists = jitgate::store::is_postgres(&config.store) || Path::new(&config.store).exists();
    let floor = if exists {
        jitgate::store::open(&config.store)
            .and_then(|s| s.policy_set_sequence())
            .with_context(|| format!("store {}", jitgate::store::redacted(&config.store)))?
            .map(|s| s.max(0) as u64)
    } else {
        None
    };
    Ok(Some((trust, floor)))
}
