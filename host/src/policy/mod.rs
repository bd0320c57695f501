//! Policy modules: loading, checking, caching and sandboxed evaluation.
//!
//! Split by job, as in Kubewarden's policy-server: `loader` reads a file and
//! refuses anything that is not a `policy-module` component importing only
//! the contract; `cache` keeps authenticated precompiled artifacts;
//! `sandbox` holds the per-evaluation budget and failure taxonomy;
//! `bindings` is the WIT contract as Rust. All four are private: an
//! embedder sees the types re-exported here.

pub(crate) mod bindings;
pub(crate) mod cache;
pub(crate) mod loader;
pub(crate) mod sandbox;

use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use wasmtime::Store;

use bindings::{PolicyModule, PolicyModulePre, v0_1, wit};
use sandbox::StoreState;

pub use loader::{COVERAGE_SECTION, LoadError, LoadErrorKind, digest, is_coverage_build};
pub use sandbox::{COVERAGE_MARKER, PolicyFailure, SandboxLimits, escape};

/// What the host knows about a loaded policy (its `info`, plus provenance).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyMeta {
    /// Declared name, unique in a set.
    pub name: String,
    /// Declared version.
    pub version: String,
    /// Declared description.
    pub description: String,
    /// Declared tasks (`*` = every task).
    pub tasks: Vec<String>,
    /// Declared longest TTL, seconds.
    pub max_ttl: u32,
    /// `sha256:<hex>` of the module bytes.
    pub digest: String,
    /// Where it was loaded from.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub path: PathBuf,
    /// Module size in bytes.
    pub size: u64,
    /// What an operator should know, e.g. that it declares task `*`.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl PolicyMeta {
    /// The policy judges `task`.
    pub fn applies_to(&self, task: &str) -> bool {
        self.tasks.iter().any(|t| t == "*" || t == task)
    }
}

/// A compiled, checked policy ready to be instantiated per evaluation.
pub struct LoadedPolicy {
    /// Info and provenance.
    pub meta: PolicyMeta,
    pre: Pre,
    /// Process-unique id: keys this policy's warm instances (per-worker
    /// isolation), so a policy unloaded and another loaded in its place can
    /// never be handed the old one's instance.
    uid: u64,
    /// A coverage build loaded by an engine in coverage mode: its
    /// evaluations divert coverage markers out of the log.
    pub(crate) coverage: bool,
}

/// A policy ready to instantiate, by the contract version it was built
/// against.
pub(crate) enum Pre {
    /// `jitgate:policy@0.2.x`.
    Current(PolicyModulePre<StoreState>),
    /// `jitgate:policy@0.1.x`: its approvals never end with the ticket.
    V0_1(v0_1::PolicyModulePre<StoreState>),
}

/// An instance of a policy, by contract version.
enum Module {
    Current(PolicyModule),
    V0_1(v0_1::PolicyModule),
}

impl Pre {
    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Pre::Current(p) => p.engine(),
            Pre::V0_1(p) => p.engine(),
        }
    }

    fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Module> {
        Ok(match self {
            Pre::Current(p) => Module::Current(p.instantiate(store)?),
            Pre::V0_1(p) => Module::V0_1(p.instantiate(store)?),
        })
    }
}

impl Module {
    fn evaluate(
        &self,
        store: &mut Store<StoreState>,
        req: &wit::Request<'_>,
    ) -> wasmtime::Result<wit::Verdict> {
        match self {
            Module::Current(m) => m.jitgate_policy_policy().call_evaluate(store, req.clone()),
            Module::V0_1(m) => m
                .jitgate_policy_policy()
                .call_evaluate(store, bindings::request_v0_1(req))
                .map(bindings::verdict_from_v0_1),
        }
    }

    fn info(&self, store: &mut Store<StoreState>) -> wasmtime::Result<wit::PolicyInfo> {
        match self {
            Module::Current(m) => m.jitgate_policy_policy().call_info(store),
            Module::V0_1(m) => m
                .jitgate_policy_policy()
                .call_info(store)
                .map(bindings::info_from_v0_1),
        }
    }
}

/// Policies of one decision instantiated in one store before it is
/// dropped and a new one started (see
/// [`LoadedPolicy::evaluate_in_one_store`]): bounds the pool slots one
/// decision holds at once, whatever number of policies it selects.
pub(crate) const POLICIES_PER_STORE: usize = 8;

/// Source of [`LoadedPolicy::uid`].
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// One thread's warm instance of one policy (per-worker isolation).
struct Warm {
    /// The policy it belongs to; once that is dropped the entry is garbage.
    owner: Weak<LoadedPolicy>,
    store: Store<StoreState>,
    module: Module,
}

thread_local! {
    /// Per-worker isolation keeps one instance per policy per thread, here,
    /// keyed by [`LoadedPolicy::uid`]. Thread-local so that reuse needs no
    /// lock and an instance never runs on two threads at once.
    static WARM: RefCell<HashMap<u64, Warm>> = RefCell::new(HashMap::new());
}

/// A verdict as the host received it, after bounds checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grant now.
    Allow {
        /// Seconds.
        ttl: u32,
        /// Why.
        reason: String,
        /// End with the ticket.
        revoke_on_ticket_close: bool,
    },
    /// Refuse.
    Deny {
        /// Why.
        reason: String,
    },
    /// Needs approval.
    RequireApproval {
        /// Eligible approver groups.
        groups: Vec<String>,
        /// Distinct approvers needed.
        min: u8,
        /// Seconds, once approved.
        ttl: u32,
        /// Why.
        reason: String,
        /// Once approved, end with the ticket (contract 0.2.0; false for
        /// a 0.1.0 module).
        revoke_on_ticket_close: bool,
    },
    /// No opinion.
    NotApplicable,
}

/// The result of running one policy on one request.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The verdict, or why there is none.
    pub result: Result<Verdict, PolicyFailure>,
    /// Lines the policy logged.
    pub logs: Vec<sandbox::LogLine>,
    /// Coverage markers (`LINE:COLUMN FILE`) of a coverage build evaluated
    /// in coverage mode; empty otherwise.
    pub coverage: Vec<String>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time including instantiation.
    pub elapsed: Duration,
}

impl LoadedPolicy {
    pub(crate) fn new(meta: PolicyMeta, pre: Pre) -> Self {
        LoadedPolicy {
            meta,
            pre,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            coverage: false,
        }
    }

    fn new_store(
        engine: &wasmtime::Engine,
        limits: &SandboxLimits,
        coverage: bool,
    ) -> Result<Store<StoreState>, PolicyFailure> {
        let mut state = StoreState::new(*limits);
        state.divert_coverage = coverage;
        let mut store = Store::new(engine, state);
        store.limiter(|s| s);
        store.epoch_deadline_trap();
        // Bytes copied out of the guest per call (the verdict, or one `log`
        // argument) are capped at the largest well-formed verdict, instead
        // of wasmtime's default of 128 MiB.
        store.set_hostcall_fuel(limits.verdict_copy_bytes());
        arm(&mut store, limits)?;
        Ok(store)
    }

    /// Evaluate `req` in a fresh instance under `limits`. Never panics on
    /// policy behaviour; every misbehaviour is a [`PolicyFailure`].
    ///
    /// Cost: a new `Store` and an instantiation (a pooled slot when the
    /// engine pools; the data segments copied in) plus copying the request
    /// into the instance.
    pub fn evaluate(&self, req: &wit::Request<'_>, limits: &SandboxLimits) -> Evaluation {
        let started = Instant::now();
        let mut store = match Self::new_store(self.pre.engine(), limits, self.coverage) {
            Ok(s) => s,
            Err(f) => return failed(f, started),
        };
        let raw = self.pre.instantiate(&mut store).and_then(|inst| {
            // The deadline bounds the policy's own run: re-armed after the
            // host's instantiation, so a loaded machine slowing *that* down
            // does not turn into a spurious timeout (seen under CI load).
            start_deadline(&mut store, limits);
            inst.evaluate(&mut store, req)
        });
        let (result, fuel_used) = settle(raw, &store, limits);
        let state = store.into_data();
        Evaluation {
            result,
            logs: state.logs,
            coverage: state.coverage,
            fuel_used,
            elapsed: started.elapsed(),
        }
    }

    /// Evaluate each of `policies` on `req`, in order, in fresh instances
    /// that share one `Store` per [`POLICIES_PER_STORE`] policies
    /// (per-decision isolation). The results are exactly what
    /// [`LoadedPolicy::evaluate`] would give each policy alone.
    ///
    /// Why sharing a store keeps the policies apart:
    /// * each policy is its own component instance, with its own linear
    ///   memories, tables and globals; nothing links one instance to
    ///   another, so no policy can read, write or call a neighbour's;
    /// * every budget is re-armed per policy before it is instantiated:
    ///   full fuel, a fresh epoch deadline and host-call deadline, a fresh
    ///   memory budget, empty logs and limit bookkeeping; so a policy that
    ///   loops, exhausts its fuel, hits the memory cap or traps fails alone
    ///   (its failure is its own, and denies through the combine), and the
    ///   next policy still gets its whole budget;
    /// * after any failure (trap, fuel, deadline, limit, malformed answer)
    ///   the store is dropped and the next policy gets a new one, so a
    ///   failing policy leaves nothing behind for its neighbours, whatever
    ///   wasmtime's guarantees about a store after a trap; and should a
    ///   store ever refuse the next instantiation, that policy fails and
    ///   the decision denies: fail-closed;
    /// * the store is dropped when the group is done, and with it every
    ///   instance; their pool slots are reset (dirty pages restored from
    ///   the image or zeroed) before any other decision can get them, so
    ///   nothing survives from one decision to the next.
    ///
    /// What sharing saves: one store's creation, limiter and epoch set-up
    /// and teardown per group instead of per policy. What it costs: a
    /// group holds its policies' pool slots until the group is done
    /// (at most [`POLICIES_PER_STORE`] at once), instead of one.
    pub(crate) fn evaluate_in_one_store(
        engine: &wasmtime::Engine,
        policies: &[&Arc<LoadedPolicy>],
        req: &wit::Request<'_>,
        limits: &SandboxLimits,
    ) -> Vec<Evaluation> {
        let mut out = Vec::with_capacity(policies.len());
        for group in policies.chunks(POLICIES_PER_STORE) {
            let mut store: Option<Store<StoreState>> = None;
            for p in group {
                let started = Instant::now();
                let ready = match store.take() {
                    None => Self::new_store(engine, limits, p.coverage),
                    Some(mut s) => {
                        s.data_mut().next_policy(*limits, p.coverage);
                        // Re-read the store-wide counts, which now admit
                        // one more policy.
                        s.limiter(|st| st);
                        arm(&mut s, limits).map(|()| s)
                    }
                };
                let mut s = match ready {
                    Ok(s) => s,
                    Err(f) => {
                        out.push(failed(f, started));
                        continue;
                    }
                };
                let raw = p.pre.instantiate(&mut s).and_then(|inst| {
                    // As in `evaluate`: the deadline bounds the policy's own
                    // run, not the host's instantiation.
                    start_deadline(&mut s, limits);
                    inst.evaluate(&mut s, req)
                });
                let (result, fuel_used) = settle(raw, &s, limits);
                let state = s.data_mut();
                let logs = std::mem::take(&mut state.logs);
                let coverage = std::mem::take(&mut state.coverage);
                // A store in which a policy failed is not used again: the
                // next policy gets a new one. Not needed for isolation (a
                // trap leaves the store usable and the trapping instance is
                // never called again), but it keeps whatever a failing
                // policy left behind out of every neighbour's evaluation,
                // at the cost of one store on the failure path only.
                if result.is_ok() {
                    store = Some(s);
                }
                out.push(Evaluation {
                    result,
                    logs,
                    coverage,
                    fuel_used,
                    elapsed: started.elapsed(),
                });
            }
        }
        out
    }

    /// Evaluate `req` in this thread's warm instance of the policy, creating
    /// it on first use (per-worker isolation). The budget is re-armed for
    /// this call alone: full fuel, a fresh epoch deadline, empty logs. After
    /// any failure the instance is dropped, so the next call starts clean.
    ///
    /// Cost: copying the request in and the verdict out; no instantiation.
    /// What it gives up: a policy's globals and heap survive between the
    /// decisions one thread makes, so one decision can influence the next.
    pub fn evaluate_warm(
        self: &Arc<Self>,
        req: &wit::Request<'_>,
        limits: &SandboxLimits,
    ) -> Evaluation {
        let started = Instant::now();
        // Taken out of the map for the call, so no borrow is held while
        // guest code (and the host's `log`) runs.
        // `try_with`: during thread teardown the map may be gone; then this
        // call simply gets a fresh instance.
        let cached = WARM
            .try_with(|w| w.borrow_mut().remove(&self.uid))
            .ok()
            .flatten();
        let (mut warm, fresh) = match cached {
            Some(w) => (w, false),
            None => match self.new_warm(limits) {
                Ok(w) => (w, true),
                Err(f) => return failed(f, started),
            },
        };
        if let Err(f) = rearm(&mut warm.store, limits) {
            return failed(f, started);
        }
        let raw = warm.module.evaluate(&mut warm.store, req);
        let (result, fuel_used) = settle(raw, &warm.store, limits);
        let logs = std::mem::take(&mut warm.store.data_mut().logs);
        let coverage = std::mem::take(&mut warm.store.data_mut().coverage);
        if result.is_ok() {
            let _ = WARM.try_with(|w| {
                let mut map = w.borrow_mut();
                if fresh {
                    // Only when the set grows: drop instances of policies
                    // (and engines) that no longer exist.
                    map.retain(|_, v| v.owner.strong_count() > 0);
                }
                map.insert(self.uid, warm);
            });
        }
        Evaluation {
            result,
            logs,
            coverage,
            fuel_used,
            elapsed: started.elapsed(),
        }
    }

    fn new_warm(self: &Arc<Self>, limits: &SandboxLimits) -> Result<Warm, PolicyFailure> {
        let mut store = Self::new_store(self.pre.engine(), limits, self.coverage)?;
        match self.pre.instantiate(&mut store) {
            Ok(module) => Ok(Warm {
                owner: Arc::downgrade(self),
                store,
                module,
            }),
            Err(e) => Err(sandbox::classify(&e, store.data(), limits)),
        }
    }
}

/// An evaluation that failed before the policy ran.
fn failed(f: PolicyFailure, started: Instant) -> Evaluation {
    Evaluation {
        result: Err(f),
        logs: Vec::new(),
        coverage: Vec::new(),
        fuel_used: 0,
        elapsed: started.elapsed(),
    }
}

/// Give a store one call's budget: full fuel and a fresh epoch deadline.
fn arm(store: &mut Store<StoreState>, limits: &SandboxLimits) -> Result<(), PolicyFailure> {
    store
        .set_fuel(limits.fuel)
        .map_err(|e| PolicyFailure::Instantiate {
            message: format!("{e:#}"),
        })?;
    start_deadline(store, limits);
    Ok(())
}

/// Start the call's clock: the epoch deadline for guest code and the same
/// instant for host functions.
fn start_deadline(store: &mut Store<StoreState>, limits: &SandboxLimits) {
    store.set_epoch_deadline(limits.deadline_ticks());
    store.data_mut().start_deadline();
}

/// Reset a reused store's per-call budget and bookkeeping.
fn rearm(store: &mut Store<StoreState>, limits: &SandboxLimits) -> Result<(), PolicyFailure> {
    store.data_mut().reset(*limits);
    arm(store, limits)
}

/// Turn a call's raw outcome into a checked verdict and the fuel it used.
fn settle(
    raw: wasmtime::Result<wit::Verdict>,
    store: &Store<StoreState>,
    limits: &SandboxLimits,
) -> (Result<Verdict, PolicyFailure>, u64) {
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let result = match raw {
        Ok(v) => check_verdict(v, store.data(), limits),
        Err(e) => Err(sandbox::classify(&e, store.data(), limits)),
    };
    (result, fuel_used)
}

fn too_long(what: &str, s: &str, limits: &SandboxLimits) -> Result<(), PolicyFailure> {
    if s.len() > limits.max_output_bytes {
        return Err(PolicyFailure::BadOutput {
            detail: format!(
                "{what} is {} bytes (limit {})",
                s.len(),
                limits.max_output_bytes
            ),
        });
    }
    Ok(())
}

/// Enforce the contract's bounds on an answer and truncate reasons.
fn check_verdict(
    v: wit::Verdict,
    state: &StoreState,
    limits: &SandboxLimits,
) -> Result<Verdict, PolicyFailure> {
    if state.log_overflow > 0 {
        return Err(PolicyFailure::BadOutput {
            detail: format!(
                "logged {} lines (limit {})",
                state.logs.len() + state.log_overflow,
                limits.max_log_lines
            ),
        });
    }
    let reason = |r: String| sandbox::keep_owned(r, limits.max_reason_bytes);
    Ok(match v {
        wit::Verdict::Allow(t) => {
            too_long("the allow reason", &t.reason, limits)?;
            Verdict::Allow {
                ttl: t.ttl,
                reason: reason(t.reason),
                revoke_on_ticket_close: t.revoke_on_ticket_close,
            }
        }
        wit::Verdict::Deny(r) => {
            too_long("the deny reason", &r, limits)?;
            Verdict::Deny { reason: reason(r) }
        }
        wit::Verdict::RequireApproval(t) => {
            too_long("the approval reason", &t.reason, limits)?;
            if t.min_approvals == 0 {
                return Err(PolicyFailure::BadOutput {
                    detail: "require-approval with min-approvals 0".into(),
                });
            }
            if t.approver_groups.is_empty()
                || t.approver_groups.len() > sandbox::MAX_APPROVER_GROUPS
            {
                return Err(PolicyFailure::BadOutput {
                    detail: format!(
                        "require-approval with {} approver groups (1..={} allowed)",
                        t.approver_groups.len(),
                        sandbox::MAX_APPROVER_GROUPS
                    ),
                });
            }
            if let Some(g) = t
                .approver_groups
                .iter()
                .find(|g| g.trim().is_empty() || g.len() > limits.max_reason_bytes)
            {
                return Err(PolicyFailure::BadOutput {
                    detail: format!("approver group name of {} bytes", g.len()),
                });
            }
            // Group names are matched against approvers' groups and shown
            // to people: a control character in one is never legitimate.
            if let Some(g) = t
                .approver_groups
                .iter()
                .find(|g| g.chars().any(sandbox::needs_escape))
            {
                return Err(PolicyFailure::BadOutput {
                    detail: format!(
                        "approver group `{}` contains a control character",
                        sandbox::keep(g, limits.max_reason_bytes)
                    ),
                });
            }
            Verdict::RequireApproval {
                groups: t.approver_groups,
                min: t.min_approvals,
                ttl: t.ttl,
                reason: reason(t.reason),
                revoke_on_ticket_close: t.revoke_on_ticket_close,
            }
        }
        wit::Verdict::NotApplicable => Verdict::NotApplicable,
    })
}

pub(crate) fn call_info(
    pre: &Pre,
    limits: &SandboxLimits,
) -> Result<wit::PolicyInfo, PolicyFailure> {
    // `info` runs once, at load, under the decision's fuel and memory
    // budget but with at least a second of wall time: a host busy at
    // start-up (or a debug build on a loaded machine) must not fail to load
    // an honest policy because a 50 ms decision deadline passed while it
    // waited for a core. Fuel still bounds what the module can do.
    let limits = &SandboxLimits {
        timeout: limits.timeout.max(INFO_MIN_TIMEOUT),
        ..*limits
    };
    let mut store = LoadedPolicy::new_store(pre.engine(), limits, false)?;
    store.set_hostcall_fuel(limits.info_copy_bytes());
    pre.instantiate(&mut store)
        .and_then(|inst| {
            start_deadline(&mut store, limits);
            inst.info(&mut store)
        })
        .map_err(|e| sandbox::classify(&e, store.data(), limits))
}

/// The least wall time `info` gets at load (see `call_info`).
pub const INFO_MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
