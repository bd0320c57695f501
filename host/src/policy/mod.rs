//! Policy modules: loading, checking, caching and sandboxed evaluation.
//!
//! Split by job, as in Kubewarden's policy-server: [`loader`] reads a file and
//! refuses anything that is not a `policy-module` component importing only
//! the contract; [`cache`] keeps authenticated precompiled artifacts;
//! [`sandbox`] holds the per-evaluation budget and failure taxonomy;
//! [`bindings`] is the WIT contract as Rust.

pub mod bindings;
pub mod cache;
pub mod loader;
pub mod sandbox;

use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::Store;

use bindings::{PolicyModulePre, wit};
use sandbox::{PolicyFailure, SandboxLimits, StoreState};

pub use loader::LoadError;

/// What the host knows about a loaded policy (its `info`, plus provenance).
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
    pub path: PathBuf,
    /// Module size in bytes.
    pub size: u64,
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
    pre: PolicyModulePre<StoreState>,
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
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time including instantiation.
    pub elapsed: Duration,
}

impl LoadedPolicy {
    fn new_store(
        engine: &wasmtime::Engine,
        limits: &SandboxLimits,
    ) -> Result<Store<StoreState>, PolicyFailure> {
        let mut store = Store::new(engine, StoreState::new(*limits));
        store.limiter(|s| s);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| PolicyFailure::Instantiate {
                message: format!("{e:#}"),
            })?;
        store.set_epoch_deadline(limits.deadline_ticks());
        store.epoch_deadline_trap();
        Ok(store)
    }

    /// Evaluate `req` in a fresh instance under `limits`. Never panics on
    /// policy behaviour; every misbehaviour is a [`PolicyFailure`].
    pub fn evaluate(&self, req: &wit::Request, limits: &SandboxLimits) -> Evaluation {
        let started = Instant::now();
        let mut store = match Self::new_store(self.pre.engine(), limits) {
            Ok(s) => s,
            Err(f) => {
                return Evaluation {
                    result: Err(f),
                    logs: Vec::new(),
                    fuel_used: 0,
                    elapsed: started.elapsed(),
                };
            }
        };
        let raw = self
            .pre
            .instantiate(&mut store)
            .and_then(|inst| inst.jitgate_policy_policy().call_evaluate(&mut store, req));
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let result = match raw {
            Ok(v) => check_verdict(v, store.data(), limits),
            Err(e) => Err(sandbox::classify(&e, store.data(), limits)),
        };
        let state = store.into_data();
        Evaluation {
            result,
            logs: state.logs,
            fuel_used,
            elapsed: started.elapsed(),
        }
    }
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
    let reason = |r: String| sandbox::truncate(r, limits.max_reason_bytes);
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
            if t.approver_groups.is_empty() || t.approver_groups.len() > 64 {
                return Err(PolicyFailure::BadOutput {
                    detail: format!(
                        "require-approval with {} approver groups (1..=64 allowed)",
                        t.approver_groups.len()
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
            Verdict::RequireApproval {
                groups: t.approver_groups,
                min: t.min_approvals,
                ttl: t.ttl,
                reason: reason(t.reason),
            }
        }
        wit::Verdict::NotApplicable => Verdict::NotApplicable,
    })
}

pub(crate) fn call_info(
    pre: &PolicyModulePre<StoreState>,
    limits: &SandboxLimits,
) -> Result<wit::PolicyInfo, PolicyFailure> {
    let mut store = LoadedPolicy::new_store(pre.engine(), limits)?;
    pre.instantiate(&mut store)
        .and_then(|inst| inst.jitgate_policy_policy().call_info(&mut store))
        .map_err(|e| sandbox::classify(&e, store.data(), limits))
}
