//! [`Engine`]: a loaded policy set and the decision procedure over it.
//!
//! An `Engine` owns one wasmtime engine (shared compiled code, an epoch
//! ticker thread), a linker that offers policies nothing but `host.log`, and
//! the loaded policies. `decide` takes `&self` and may be called from many
//! threads at once: each evaluation gets its own store and instance, so
//! decisions share nothing mutable.
//!
//! Cost: loading compiles each module once (or loads it from the
//! authenticated cache); a decision instantiates every selected policy afresh
//! and copies the request into each, which is the price of isolation
//! between decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker};

use crate::decision::combine::{self, Caps};
use crate::decision::{Decision, PolicyTrace};
use crate::policy::bindings::{self, PolicyModule};
use crate::policy::cache::{CacheOutcome, ComponentCache};
use crate::policy::loader::{self, LoadError, LoadErrorKind};
use crate::policy::sandbox::{EpochTicker, SandboxLimits, StoreState};
use crate::policy::{LoadedPolicy, PolicyMeta, Verdict};
use crate::request::{Request, RequestError, RequestLimits};

/// How an [`Engine`] decides. Every default is the safe one.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Budget of each policy evaluation.
    pub sandbox: SandboxLimits,
    /// Bounds on requests.
    pub request_limits: RequestLimits,
    /// No grant lasts longer than this, seconds. Default 28,800 (8 h).
    pub global_ttl_cap: u32,
    /// Per-task TTL caps, seconds.
    pub task_caps: BTreeMap<String, u32>,
    /// Tasks whose grants always end with their ticket.
    pub force_revoke_on_ticket_close: BTreeSet<String>,
    /// Where compiled modules are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sandbox: SandboxLimits::default(),
            request_limits: RequestLimits::default(),
            global_ttl_cap: 28_800,
            task_caps: BTreeMap::new(),
            force_revoke_on_ticket_close: BTreeSet::new(),
            cache_dir: None,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("wasmtime engine: {0}")]
    Wasmtime(String),
    /// The cache directory is unusable.
    #[error("compile cache {}: {source}", path.display())]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The epoch ticker thread could not start.
    #[error("epoch ticker: {0}")]
    Ticker(std::io::Error),
}

/// Load statistics, for `jitgate inspect`/start-up logs and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// Loaded from the compile cache.
    pub cache_hits: usize,
    /// Compiled (and cached, if a cache is set).
    pub compiled: usize,
    /// Cached artifacts refused (bad tag or incompatible) and recompiled.
    pub rejected: usize,
}

/// A policy set and the procedure that decides over it.
pub struct Engine {
    config: EngineConfig,
    wasm: wasmtime::Engine,
    linker: Linker<StoreState>,
    cache: Option<ComponentCache>,
    policies: Vec<Arc<LoadedPolicy>>,
    known_tasks: BTreeSet<String>,
    stats: LoadStats,
    _ticker: EpochTicker,
}

fn wasmtime_config(limits: &SandboxLimits) -> wasmtime::Config {
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack);
    c
}

impl Engine {
    /// An engine with no policies yet.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let wasm = wasmtime::Engine::new(&wasmtime_config(&config.sandbox))
            .map_err(|e| EngineError::Wasmtime(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasm);
        PolicyModule::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Wasmtime(format!("{e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => {
                Some(
                    ComponentCache::open(dir, &wasm).map_err(|source| EngineError::Cache {
                        path: dir.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let ticker = EpochTicker::start(wasm.clone()).map_err(EngineError::Ticker)?;
        Ok(Engine {
            config,
            wasm,
            linker,
            cache,
            policies: Vec::new(),
            known_tasks: BTreeSet::new(),
            stats: LoadStats::default(),
            _ticker: ticker,
        })
    }

    /// Load one module from bytes; `path` names it in errors and metadata.
    pub fn load_bytes(&mut self, path: &Path, bytes: &[u8]) -> Result<&PolicyMeta, LoadError> {
        let (policy, outcome) = loader::load_bytes(
            &self.wasm,
            &self.linker,
            self.cache.as_ref(),
            &self.config.sandbox,
            path,
            bytes,
        )?;
        if let Some(other) = self
            .policies
            .iter()
            .find(|p| p.meta.name == policy.meta.name)
        {
            return Err(LoadError {
                path: path.to_path_buf(),
                kind: LoadErrorKind::DuplicateName {
                    name: policy.meta.name.clone(),
                    other: other.meta.path.clone(),
                },
            });
        }
        match outcome {
            CacheOutcome::Hit => self.stats.cache_hits += 1,
            CacheOutcome::Rejected => {
                self.stats.rejected += 1;
                self.stats.compiled += 1
            }
            CacheOutcome::Miss | CacheOutcome::Disabled => self.stats.compiled += 1,
        }
        self.known_tasks
            .extend(policy.meta.tasks.iter().filter(|t| *t != "*").cloned());
        tracing::info!(name = %policy.meta.name, version = %policy.meta.version, digest = %policy.meta.digest, "policy loaded");
        self.policies.push(Arc::new(policy));
        let last = self.policies.len() - 1;
        Ok(&self.policies[last].meta)
    }

    /// Load one `.wasm` file.
    pub fn load_file(&mut self, path: &Path) -> Result<&PolicyMeta, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::Io(e),
        })?;
        self.load_bytes(path, &bytes)
    }

    /// Load every `.wasm` file in `dir` (sorted by file name). All or nothing:
    /// on error no module of this folder stays loaded.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, LoadError> {
        let files = loader::wasm_files(dir)?;
        let before = self.policies.len();
        let tasks_before = self.known_tasks.clone();
        for f in &files {
            if let Err(e) = self.load_file(f) {
                self.policies.truncate(before);
                self.known_tasks = tasks_before;
                return Err(e);
            }
        }
        Ok(files.len())
    }

    /// Load a folder or a single file.
    pub fn load_path(&mut self, path: &Path) -> Result<usize, LoadError> {
        if path.is_dir() {
            self.load_dir(path)
        } else {
            self.load_file(path).map(|_| 1)
        }
    }

    /// The loaded policies, in load order.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyMeta> {
        self.policies.iter().map(|p| &p.meta)
    }

    /// Tasks some loaded policy declares by name.
    pub fn known_tasks(&self) -> &BTreeSet<String> {
        &self.known_tasks
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Cache hits and compilations so far.
    pub fn load_stats(&self) -> LoadStats {
        self.stats
    }

    /// Decide one request: validate, select, evaluate each selected policy in
    /// a fresh sandbox, combine, explain.
    pub fn decide(&self, req: &Request) -> Result<Decision, RequestError> {
        let started = Instant::now();
        req.validate(&self.config.request_limits, &self.known_tasks)?;
        let wit_req = bindings::to_wit(req);
        let selected: Vec<&Arc<LoadedPolicy>> = self
            .policies
            .iter()
            .filter(|p| p.meta.applies_to(&req.task))
            .collect();
        let evals: Vec<_> = selected
            .iter()
            .map(|p| p.evaluate(&wit_req, &self.config.sandbox))
            .collect();
        let inputs: Vec<combine::Input> = selected
            .iter()
            .zip(&evals)
            .map(|(p, e)| combine::Input {
                name: &p.meta.name,
                max_ttl: p.meta.max_ttl,
                result: &e.result,
            })
            .collect();
        let caps = Caps {
            requested_ttl: req.requested_ttl,
            task_cap: self.config.task_caps.get(&req.task).copied(),
            global_cap: self.config.global_ttl_cap,
            force_revoke_on_ticket_close: self
                .config
                .force_revoke_on_ticket_close
                .contains(&req.task),
        };
        let mut decision = combine::combine(&req.id, &req.task, &inputs, &caps);
        decision.policies = selected
            .iter()
            .zip(evals)
            .map(|(p, e)| trace(&p.meta, e))
            .collect();
        decision.micros = started.elapsed().as_micros() as u64;
        Ok(decision)
    }
}

fn trace(meta: &PolicyMeta, e: crate::policy::Evaluation) -> PolicyTrace {
    let (verdict, reason, ttl, failure) = match e.result {
        Ok(Verdict::Allow { ttl, reason, .. }) => ("allow", Some(reason), Some(ttl), None),
        Ok(Verdict::Deny { reason }) => ("deny", Some(reason), None, None),
        Ok(Verdict::RequireApproval { ttl, reason, .. }) => {
            ("require-approval", Some(reason), Some(ttl), None)
        }
        Ok(Verdict::NotApplicable) => ("not-applicable", None, None, None),
        Err(f) => ("error", Some(f.to_string()), None, Some(f)),
    };
    PolicyTrace {
        name: meta.name.clone(),
        version: meta.version.clone(),
        digest: meta.digest.clone(),
        verdict,
        reason,
        ttl,
        failure,
        logs: e.logs,
        fuel: e.fuel_used,
        micros: e.elapsed.as_micros() as u64,
    }
}

/// What `jitgate inspect` shows about a module file.
#[derive(Debug)]
pub struct Inspection {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// Import names (empty when the file is not a component).
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
    /// The info, if the module passes every load check.
    pub load: Result<PolicyMeta, LoadError>,
}

impl Engine {
    /// Read a module and report its digest, surface and info, without adding
    /// it to this engine. Works on modules that fail to load, to show why.
    pub fn inspect(&self, path: &Path) -> Result<Inspection, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::Io(e),
        })?;
        let digest = loader::digest(&bytes);
        let (imports, exports) = match loader::check_header(&bytes)
            .ok()
            .and_then(|()| wasmtime::component::Component::new(&self.wasm, &bytes).ok())
        {
            Some(c) => {
                let s = loader::surface(&self.wasm, &c);
                (s.imports, s.exports)
            }
            None => (Vec::new(), Vec::new()),
        };
        let load = loader::load_bytes(
            &self.wasm,
            &self.linker,
            self.cache.as_ref(),
            &self.config.sandbox,
            path,
            &bytes,
        )
        .map(|(p, _)| p.meta);
        Ok(Inspection {
            digest,
            size: bytes.len() as u64,
            imports,
            exports,
            load,
        })
    }
}
