//! [`Engine`]: a loaded policy set and the decision procedure over it.
//!
//! One file past 500 lines: loading, selection and the decision procedure
//! share the loaded-policy table; splitting them would spread one invariant
//! (what a decision sees) over several files.
//!
//! An `Engine` owns one wasmtime engine (shared compiled code, an epoch
//! ticker thread), a linker that offers policies nothing but `host.log`, and
//! the loaded policies. `decide` takes `&self` and may be called from many
//! threads at once: each decision gets its own store (shared by its
//! policies, each a fresh instance with its own memory and budget; see
//! `LoadedPolicy::evaluate_in_one_store`), so decisions share nothing
//! mutable.
//!
//! Cost: loading compiles each module once (or loads it from the
//! authenticated cache); a decision instantiates every selected policy afresh
//! and copies the request into each (the host-side WIT value is built once
//! per decision; each instance needs its own copy in its own memory), which
//! is the price of isolation between decisions. Instances come from wasmtime's pooling allocator
//! (pre-reserved slots reset in place), which keeps that
//! price to a few microseconds; [`Isolation::PerWorker`] trades the
//! isolation away for reuse of one instance per policy per thread.
//!
//! One file past 500 lines: the engine's public face (config, load, decide) over the private policy core; split, the one decision pipeline would be scattered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker};

use crate::decision::combine::{self, Caps};
use crate::decision::{Decision, PolicyTrace, TraceVerdict};
use crate::policy::bindings::{self, PolicyModule};
use crate::policy::cache::{CacheOutcome, ComponentCache};
use crate::policy::loader::{self, LoadError, LoadErrorKind};
use crate::policy::sandbox::{EpochTicker, SandboxLimits, StoreState};
use crate::policy::{LoadedPolicy, PolicyMeta, Verdict};
use crate::policy_set::{SetInfo, VerifiedSet};
use crate::request::{Request, RequestError, RequestLimits};

mod builder;
mod select;
pub use builder::{BuildError, EngineBuilder};
use select::TaskIndex;

/// Whether policy instances are reused between decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A fresh instance for every policy evaluation: nothing a policy does in
    /// one decision can be seen by the next. Costs one instantiation per
    /// policy per decision. The default.
    #[default]
    PerDecision,
    /// One warm instance per policy per thread, reused across decisions.
    /// Every call still gets the full budget (fuel, epoch deadline, memory
    /// cap, output bounds) and an instance is discarded after any failure,
    /// but a policy's globals and heap survive between the decisions one
    /// thread makes: use it only when policies are trusted to be pure. Saves
    /// the instantiation; holds one pool slot per policy per thread. A
    /// thread's instances of a dropped engine are freed when that thread
    /// next creates a warm instance, or when it exits.
    PerWorker,
}

impl Isolation {
    /// The configuration spelling: `per-decision` or `per-worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::PerDecision => "per-decision",
            Isolation::PerWorker => "per-worker",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An isolation mode that is neither `per-decision` nor `per-worker`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("isolation `{0}` is not one of per-decision, per-worker")]
pub struct UnknownIsolation(pub String);

impl FromStr for Isolation {
    type Err = UnknownIsolation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-decision" => Ok(Isolation::PerDecision),
            "per-worker" => Ok(Isolation::PerWorker),
            other => Err(UnknownIsolation(other.to_string())),
        }
    }
}

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
    /// Fresh instance per decision (default) or a warm one per thread.
    pub isolation: Isolation,
    /// `Some(n)`: take instances from wasmtime's pooling allocator, sized
    /// for `n` live policy instances (default 1000). Instantiation then
    /// reuses pre-reserved slots instead of mapping and unmapping memory,
    /// which is most of its cost. Each slot reserves `max_memory_bytes` of
    /// address space up front (16 GiB for 1000 slots at the default cap;
    /// only pages a policy touches become resident); more than `n`
    /// evaluations at once fail (and deny). `None`: allocate on demand, for
    /// hosts short of virtual address space.
    pub instance_pool: Option<u32>,
    /// Threads that run decisions for the service (`None`: one per two CPUs,
    /// within what the instance pool can serve). See
    /// the service's evaluator.
    pub workers: Option<usize>,
    /// Decisions that may wait for one of those threads (`None`: 64 per
    /// worker); more are refused as overload.
    pub queue: Option<usize>,
    /// `jitgate test --coverage` only: load coverage builds (refused
    /// otherwise) and collect the constructor sites their evaluations
    /// reach ([`Engine::coverage_hits`]). Default false; no production
    /// path sets it.
    pub coverage: bool,
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
            isolation: Isolation::PerDecision,
            instance_pool: Some(1000),
            workers: None,
            queue: None,
            coverage: false,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// Distinct coverage markers kept per module over an engine's life.
const MAX_COVERAGE_SITES: usize = 16_384;

/// A policy set and the procedure that decides over it.
pub struct Engine {
    config: EngineConfig,
    wasm: wasmtime::Engine,
    linker: Linker<StoreState>,
    cache: Option<ComponentCache>,
    policies: Vec<Arc<LoadedPolicy>>,
    /// `policies` by task, kept in step with it: what a decision selects.
    index: TaskIndex,
    known_tasks: BTreeSet<String>,
    stats: LoadStats,
    ticker: EpochTicker,
    /// The set the loaded policies form; every decision names its digest.
    set: SetInfo,
    /// Coverage mode: markers reached, by module path.
    coverage_hits: std::sync::Mutex<BTreeMap<PathBuf, BTreeSet<String>>>,
}

/// Bytes at the start of each recycled memory slot that are reset in place
/// rather than handed back to the kernel. A policy built with the SDK keeps
/// its 1 MiB shadow stack, data and heap within the first 2 MiB, so this
/// covers everything it touches.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// The same for tables: a policy's tables hold a few dozen entries.
const TABLE_KEEP_RESIDENT: usize = 4 << 10;

fn wasmtime_config(config: &EngineConfig) -> wasmtime::Config {
    let limits = &config.sandbox;
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack)
        // Default on in wasmtime: data segments mapped copy-on-write from one
        // image per module. Off here: each instantiation copies the policy's
        // data segments into a zeroed slot instead, and a recycled slot's
        // dirty pages are zeroed rather than restored from the image. Cost:
        // the data is copied per instance (SDK policies: tens of KiB) and is
        // no longer shared between slots; measured 1-6 % faster per fresh
        // policy than with the image (docs/performance.md §3c). Isolation is
        // unchanged: a slot is still reset before reuse.
        .memory_init_cow(false);
    // Bounds-check every memory access in generated code instead of relying
    // on guard pages and signals: memories then need no `mprotect` when an
    // instance is created, grows or is recycled, which was most of a fresh
    // instance's cost (two syscalls and a TLB flush per evaluation). The
    // reservation is the sandbox's memory cap, so each pool slot reserves
    // 16 MiB of address space instead of 4 GiB + guard.
    c.signals_based_traps(false)
        .memory_guard_size(0)
        .guard_before_linear_memory(false)
        .memory_reservation(limits.max_memory_bytes as u64)
        .memory_reservation_for_growth(0);
    if let Some(slots) = config.instance_pool {
        // Per-component counts come from the sandbox limits, so the pool
        // never refuses what the limiter would allow on demand.
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots)
            .total_tables(slots.saturating_mul(4))
            .max_core_instances_per_component(clamp(limits.max_instances))
            .max_memories_per_component(clamp(limits.max_memories))
            .max_tables_per_component(clamp(limits.max_tables))
            .max_memories_per_module(clamp(limits.max_memories))
            .max_tables_per_module(clamp(limits.max_tables))
            // The pool's cap is the sandbox's cap: no memory can ever be
            // given more than `max_memory_bytes`, whatever the limiter says.
            .max_memory_size(limits.max_memory_bytes)
            .table_elements(limits.max_table_elements)
            // A recycled slot is reset in place: the pages the last
            // instance dirtied (found with Linux's PAGEMAP_SCAN, where the
            // kernel has it) are zeroed or restored from the image with
            // memset/memcpy, instead of handed back to the kernel and
            // faulted in again by the next instance.
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

impl Engine {
    /// An engine with no policies yet.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let wasm = wasmtime::Engine::new(&wasmtime_config(&config))
            .map_err(|e| EngineError::Wasmtime(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasm);
        PolicyModule::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Wasmtime(format!("{e:#}")))?;
        // Modules built against the previous contract import its
        // interfaces by their own names (`…@0.1.0`): linked too.
        bindings::v0_1::PolicyModule::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
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
            index: TaskIndex::default(),
            known_tasks: BTreeSet::new(),
            stats: LoadStats::default(),
            ticker,
            set: SetInfo::unsigned(std::iter::empty()),
            coverage_hits: Default::default(),
        })
    }

    /// Coverage mode: the coverage markers (`LINE:COLUMN FILE`) the
    /// decisions so far reached, by module path. Empty outside coverage
    /// mode.
    pub fn coverage_hits(&self) -> BTreeMap<PathBuf, BTreeSet<String>> {
        self.coverage_hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Load one module from bytes; `path` names it in errors and metadata.
    pub fn load_bytes(&mut self, path: &Path, bytes: &[u8]) -> Result<&PolicyMeta, LoadError> {
        let (policy, outcome) = {
            // `info()` runs guest code: its deadline needs the ticker running.
            let _ticking = self.ticker.ticking();
            loader::load_bytes(
                &self.wasm,
                &self.linker,
                self.cache.as_ref(),
                &self.config.sandbox,
                (path, bytes),
                self.config.coverage,
            )?
        };
        if let Some(other) = self
            .policies
            .iter()
            .find(|p| p.meta.name == policy.meta.name)
        {
            // Which of the two is squatting: the one whose file is not named
            // after the policy; if that cannot tell, the later one.
            let named_after = |p: &Path| {
                p.file_stem()
                    .is_some_and(|s| s.to_string_lossy() == policy.meta.name)
            };
            let (squatter, rightful) = if named_after(path) && !named_after(&other.meta.path) {
                (other.meta.path.clone(), path.to_path_buf())
            } else {
                (path.to_path_buf(), other.meta.path.clone())
            };
            return Err(LoadError {
                path: squatter,
                kind: LoadErrorKind::DuplicateName {
                    name: policy.meta.name.clone(),
                    other: rightful,
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
        for w in &policy.meta.warnings {
            tracing::warn!(name = %policy.meta.name, path = %policy.meta.path.display(), "{w}");
        }
        self.index.push(self.policies.len(), &policy.meta.tasks);
        self.policies.push(Arc::new(policy));
        self.set = self.unsigned_set();
        let last = self.policies.len() - 1;
        Ok(&self.policies[last].meta)
    }

    /// Load one `.wasm` file.
    pub fn load_file(&mut self, path: &Path) -> Result<&PolicyMeta, LoadError> {
        let bytes = loader::read_module(path, &self.config.sandbox)?;
        self.load_bytes(path, &bytes)
    }

    /// Load every `.wasm` file in `dir` (sorted by file name). All or nothing:
    /// on error no module of this folder stays loaded.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, LoadError> {
        let files = loader::wasm_files(dir)?;
        let before = self.policies.len();
        let tasks_before = self.known_tasks.clone();
        let set_before = self.set.clone();
        for f in &files {
            if let Err(e) = self.load_file(f) {
                self.roll_back(before, tasks_before, set_before);
                return Err(e);
            }
        }
        Ok(files.len())
    }

    /// Load a verified policy set from the bytes [`crate::policy_set::verify`]
    /// hashed; the files are not read again. All or nothing. Afterwards
    /// [`Engine::policy_set`] is the set's manifest info, and every decision
    /// names its digest.
    pub fn load_set(&mut self, set: &VerifiedSet) -> Result<usize, LoadError> {
        let before = self.policies.len();
        let tasks_before = self.known_tasks.clone();
        let set_before = self.set.clone();
        for m in &set.modules {
            if let Err(e) = self.load_bytes(&set.dir.join(&m.name), &m.bytes) {
                self.roll_back(before, tasks_before, set_before);
                return Err(e);
            }
        }
        // Only a set loaded alone is that set: added to other modules, the
        // engine runs something no manifest describes.
        if before == 0 {
            self.set = set.info();
        }
        Ok(set.modules.len())
    }

    /// Undo the loads past the first `before` policies (an all-or-nothing
    /// load that failed): the policies, their tasks, the index and the set
    /// are what they were.
    fn roll_back(&mut self, before: usize, tasks: BTreeSet<String>, set: SetInfo) {
        self.policies.truncate(before);
        self.index = TaskIndex::build(self.policies.iter().map(|p| p.meta.tasks.as_slice()));
        self.known_tasks = tasks;
        self.set = set;
    }

    fn unsigned_set(&self) -> SetInfo {
        SetInfo::unsigned(self.policies.iter().map(|p| {
            let name = p
                .meta
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            (name, p.meta.digest.as_str(), p.meta.size)
        }))
    }

    /// The policy set loaded: its digest, and for a verified set its
    /// version, sequence and signers.
    pub fn policy_set(&self) -> &SetInfo {
        &self.set
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

    /// [`Engine::decide`] at the system clock's time: `req.now` is replaced
    /// by the current Unix second (on a copy; `req` is left as it is). For
    /// requests built with [`Request::builder`], which leaves `now` unset.
    pub fn decide_now(&self, req: &Request) -> Result<Decision, RequestError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.decide_at(req, now)
    }

    /// [`Engine::decide`] at `now` (Unix seconds, e.g. from the embedder's
    /// own clock), on a copy of `req`.
    pub fn decide_at(&self, req: &Request, now: u64) -> Result<Decision, RequestError> {
        let mut at = req.clone();
        at.now = now;
        self.decide(&at)
    }

    /// Decide one request at its own `now`: validate, select, evaluate each
    /// selected policy in a fresh sandbox, combine, explain.
    pub fn decide(&self, req: &Request) -> Result<Decision, RequestError> {
        let started = Instant::now();
        req.validate(&self.config.request_limits, &self.known_tasks)?;
        let lists = bindings::lists(req);
        let wit_req = bindings::to_wit(req, &lists);
        // The index, not a scan: unrelated policies cost nothing here.
        let selected: Vec<&Arc<LoadedPolicy>> = self
            .index
            .select(&req.task)
            .iter()
            .filter_map(|&i| self.policies.get(i))
            .collect();
        let ticking = self.ticker.ticking();
        let evals: Vec<_> = match self.config.isolation {
            // Fresh instances, sharing one store per decision (per group of
            // policies): see `LoadedPolicy::evaluate_in_one_store` for why
            // that keeps policies and decisions apart.
            Isolation::PerDecision => LoadedPolicy::evaluate_in_one_store(
                &self.wasm,
                &selected,
                &wit_req,
                &self.config.sandbox,
            ),
            Isolation::PerWorker => selected
                .iter()
                .map(|p| p.evaluate_warm(&wit_req, &self.config.sandbox))
                .collect(),
        };
        drop(ticking);
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
        if self.config.coverage
            && let Ok(mut hits) = self.coverage_hits.lock()
        {
            for (p, e) in selected.iter().zip(&evals) {
                if !e.coverage.is_empty() {
                    let seen = hits.entry(p.meta.path.clone()).or_default();
                    for m in &e.coverage {
                        // Bounded like one evaluation's: a module that
                        // makes up markers cannot grow this without end.
                        if seen.len() >= MAX_COVERAGE_SITES {
                            break;
                        }
                        seen.insert(m.clone());
                    }
                }
            }
        }
        let mut decision = combine::combine(&req.id, &req.task, &inputs, &caps);
        decision.policies = selected
            .iter()
            .zip(evals)
            .map(|(p, e)| trace(&p.meta, e))
            .collect();
        decision.policy_set = self.set.digest.clone();
        decision.micros = started.elapsed().as_micros() as u64;
        Ok(decision)
    }
}

fn trace(meta: &PolicyMeta, e: crate::policy::Evaluation) -> PolicyTrace {
    let (verdict, reason, ttl, failure) = match e.result {
        Ok(Verdict::Allow { ttl, reason, .. }) => {
            (TraceVerdict::Allow, Some(reason), Some(ttl), None)
        }
        Ok(Verdict::Deny { reason }) => (TraceVerdict::Deny, Some(reason), None, None),
        Ok(Verdict::RequireApproval { ttl, reason, .. }) => {
            (TraceVerdict::RequireApproval, Some(reason), Some(ttl), None)
        }
        Ok(Verdict::NotApplicable) => (TraceVerdict::NotApplicable, None, None, None),
        Err(f) => (TraceVerdict::Error, Some(f.to_string()), None, Some(f)),
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
        let size = std::fs::metadata(path)
            .map_err(|e| LoadError {
                path: path.to_path_buf(),
                kind: LoadErrorKind::Io(e),
            })?
            .len();
        let limits = &self.config.sandbox;
        if let Err(kind) = loader::check_size(size, limits) {
            return Ok(Inspection {
                digest: String::new(),
                size,
                imports: Vec::new(),
                exports: Vec::new(),
                load: Err(LoadError {
                    path: path.to_path_buf(),
                    kind,
                }),
            });
        }
        let bytes = loader::read_module(path, limits)?;
        let digest = loader::digest(&bytes);
        let coverage_refused = !self.config.coverage && loader::is_coverage_build(&bytes);
        // Compiled once: the surface shown and the load check share it.
        let compiled = loader::compile(&self.wasm, self.cache.as_ref(), limits, &digest, &bytes);
        let (imports, exports, load) = match compiled {
            Ok((component, _)) => {
                let s = loader::surface(&self.wasm, &component);
                let _ticking = self.ticker.ticking();
                let load = loader::load_component(
                    &self.wasm,
                    &self.linker,
                    limits,
                    path,
                    digest.clone(),
                    bytes.len() as u64,
                    &component,
                )
                .map(|p| p.meta)
                .and_then(|meta| {
                    if coverage_refused {
                        Err(LoadError {
                            path: path.to_path_buf(),
                            kind: LoadErrorKind::CoverageBuild,
                        })
                    } else {
                        Ok(meta)
                    }
                });
                (s.imports, s.exports, load)
            }
            Err(kind) => (
                Vec::new(),
                Vec::new(),
                Err(LoadError {
                    path: path.to_path_buf(),
                    kind,
                }),
            ),
        };
        Ok(Inspection {
            digest,
            size: bytes.len() as u64,
            imports,
            exports,
            load,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_parses_and_prints_its_config_spelling() {
        for i in [Isolation::PerDecision, Isolation::PerWorker] {
            assert_eq!(i.as_str().parse::<Isolation>(), Ok(i));
            assert_eq!(i.to_string(), i.as_str());
        }
        assert_eq!(Isolation::default(), Isolation::PerDecision);
        let e = "per-request".parse::<Isolation>().unwrap_err();
        assert!(e.to_string().contains("per-decision, per-worker"), "{e}");
    }

    #[test]
    fn the_pool_memory_cap_is_the_sandbox_cap() {
        let config = EngineConfig {
            sandbox: SandboxLimits {
                max_memory_bytes: 8 << 20,
                ..SandboxLimits::default()
            },
            ..EngineConfig::default()
        };
        let engine = Engine::new(config).expect("engine");
        let pool = engine
            .wasm
            .get_pooling_config()
            .expect("pooling by default");
        assert_eq!(pool.get_max_memory_size(), 8 << 20);
        assert_eq!(engine.wasm.get_memory_reservation(), 8 << 20);
        let on_demand = Engine::new(EngineConfig {
            instance_pool: None,
            ..EngineConfig::default()
        })
        .expect("engine");
        assert!(on_demand.wasm.get_pooling_config().is_none());
    }
}
