//! [`EngineBuilder`]: an [`Engine`] configured and loaded in one
//! expression, every knob defaulting to [`EngineConfig::default`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Engine, EngineConfig, EngineError, Isolation};
use crate::policy::LoadError;
use crate::policy::sandbox::SandboxLimits;
use crate::request::RequestLimits;

/// Builds an [`Engine`]; start with [`Engine::builder`].
#[derive(Debug, Clone, Default)]
pub struct EngineBuilder {
    config: EngineConfig,
    policies: Vec<PathBuf>,
}

/// Why [`EngineBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The engine itself could not be made.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A policy path did not load (names the file and why).
    #[error("loading policies from {}: {source}", path.display())]
    Policies {
        /// The path given to [`EngineBuilder::policies`].
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
}

impl Engine {
    /// An engine built step by step:
    /// `Engine::builder().policies("target/policies").build()?`.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }
}

impl EngineBuilder {
    /// Load the policies at `path` (a `.wasm` file, or a directory of
    /// them) when building. May be called again to add more.
    pub fn policies(mut self, path: impl AsRef<Path>) -> Self {
        self.policies.push(path.as_ref().to_path_buf());
        self
    }

    /// Start from a whole configuration (`jitgate.toml`'s engine part).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Replace every sandbox limit at once.
    pub fn sandbox(mut self, limits: SandboxLimits) -> Self {
        self.config.sandbox = limits;
        self
    }

    /// Wall-clock bound per policy evaluation. Default 50 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.sandbox.timeout = timeout;
        self
    }

    /// Instruction budget per policy evaluation. Default 10,000,000.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.config.sandbox.fuel = fuel;
        self
    }

    /// Linear memory cap per policy instance, bytes. Default 16 MiB.
    pub fn max_memory_bytes(mut self, bytes: usize) -> Self {
        self.config.sandbox.max_memory_bytes = bytes;
        self
    }

    /// Largest module file accepted, bytes. Default 4 MiB.
    pub fn max_module_bytes(mut self, bytes: usize) -> Self {
        self.config.sandbox.max_module_bytes = bytes;
        self
    }

    /// Bounds on requests. Default [`RequestLimits::default`].
    pub fn request_limits(mut self, limits: RequestLimits) -> Self {
        self.config.request_limits = limits;
        self
    }

    /// Fresh instance per decision (default) or a warm one per thread.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.config.isolation = isolation;
        self
    }

    /// Pooled instance slots (`Some(n)`, default 1000) or allocation on
    /// demand (`None`). See [`EngineConfig::instance_pool`].
    pub fn instance_pool(mut self, slots: Option<u32>) -> Self {
        self.config.instance_pool = slots;
        self
    }

    /// Cache compiled modules in `dir` (default: compile on every load).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.config.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Longest grant, seconds. Default 28,800 (8 h).
    pub fn global_ttl_cap(mut self, secs: u32) -> Self {
        self.config.global_ttl_cap = secs;
        self
    }

    /// Longest grant for `task`, seconds (default: only the global cap).
    pub fn task_cap(mut self, task: impl Into<String>, secs: u32) -> Self {
        self.config.task_caps.insert(task.into(), secs);
        self
    }

    /// Decision threads of a service over this engine (default one per
    /// two CPUs) and how many decisions may wait (default 64 per thread).
    pub fn workers(mut self, workers: usize, queue: usize) -> Self {
        self.config.workers = Some(workers);
        self.config.queue = Some(queue);
        self
    }

    /// Make the engine and load every policy path, in order.
    pub fn build(self) -> Result<Engine, BuildError> {
        let mut engine = Engine::new(self.config)?;
        for path in self.policies {
            if let Err(source) = engine.load_path(&path) {
                return Err(BuildError::Policies { path, source });
            }
        }
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_reach_the_config_and_defaults_stay_safe() {
        let engine = Engine::builder()
            .fuel(1234)
            .timeout(Duration::from_millis(7))
            .task_cap("t", 60)
            .instance_pool(None)
            .build()
            .expect("engine");
        let c = engine.config();
        assert_eq!(c.sandbox.fuel, 1234);
        assert_eq!(c.sandbox.timeout, Duration::from_millis(7));
        assert_eq!(c.task_caps.get("t"), Some(&60));
        assert_eq!(c.instance_pool, None);
        assert_eq!(c.global_ttl_cap, EngineConfig::default().global_ttl_cap);
        assert_eq!(c.isolation, Isolation::PerDecision);
    }

    #[test]
    fn a_missing_policy_path_is_named() {
        let missing = std::env::temp_dir().join("jitgate-no-such-policies-dir");
        match Engine::builder().policies(&missing).build() {
            Err(BuildError::Policies { path, .. }) => assert_eq!(path, missing),
            Err(other) => panic!("expected a policies error, got {other}"),
            Ok(_) => panic!("a missing path loaded"),
        }
    }
}
