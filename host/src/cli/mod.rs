//! The `jitgate` commands, one module each with its clap arguments and its
//! body; `main.rs` only parses and dispatches. Errors are reported with
//! `anyhow` here, at the edge; the library underneath uses typed errors.

pub mod audit;
pub mod bench;
pub mod eval;
pub mod inspect;
pub mod keygen;
pub mod serve;
pub mod test;

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use jitgate::EngineConfig;

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
