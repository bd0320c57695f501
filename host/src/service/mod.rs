//! [`Service`]: grants, approvals, revocation and audit over an [`Engine`]
//! and a [`Store`] — the library an approval pipeline embeds, and what the
//! HTTP API calls.
//!
//! **Sync and async.** Every lifecycle call has a sync form, which blocks
//! its thread (a decision, an fsync or a PostgreSQL round trip) and is
//! safe on any thread, inside a tokio runtime too: it never panics there,
//! it only holds that thread. Async code calls the `_async` forms
//! ([`Service::submit_async`], [`Service::approve_async`], …), which run
//! decisions on the service's evaluator threads and store work on tokio's
//! blocking pool, holding no async worker. [`Service::start_background`]
//! starts the expiry scheduler and the provisioning dispatcher.
//!
//! Invariants kept here:
//! * a state change, its audit records and its provisioning event commit
//!   together (the store's transactions), or not at all;
//! * if the audit record cannot be written, nothing is granted (the caller
//!   sees [`ServiceError::Unavailable`]);
//! * the server chooses `now`; a client-supplied `now` is refused;
//! * the same request id with the same body returns the same grant; with a
//!   different body it is a conflict.

mod background;
pub(crate) mod bounded;
pub mod clock;
mod decider;
mod errors;
pub(crate) mod evaluator;
mod evidence;
// Public only for the store contract tests (tests/e2e/store.rs), which
// run it against both backends; not part of the embedding API.
#[doc(hidden)]
pub mod group_commit;
mod intake;
mod operations;
pub mod principal;
#[cfg(feature = "server")]
pub mod reconcile;
pub mod reload;
mod requester;
mod reverify;
pub mod scheduler;
mod sweep;
mod tickets;
mod workflow;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

pub use background::{Background, NoRuntime};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decider::DecisionMaker;

use crate::audit::{self, AuditDraft};
use crate::engine::Engine;
use crate::grant::Millis;
pub use crate::grant::identity_key;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
pub use errors::ServiceError;
pub use evidence::verify_store;
pub use intake::request_hash;
pub use operations::MAX_AUDIT_PAGE;
pub use principal::{Principal, Role};
pub use reload::{PolicySource, SourceError};
pub use sweep::SWEEP_BATCH;
#[cfg(feature = "server")]
pub use tickets::WebhookError;
pub use tickets::{DEFAULT_PRIORITY, TicketProvenance, ticket_json};
pub use workflow::MAX_REASON_BYTES;

/// Service settings (from `jitgate.toml`).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// A pending grant lapses after this many seconds. Default 3600.
    pub approval_timeout_secs: u32,
    /// Tasks flagged break-glass: every grant opens a review item.
    pub break_glass_tasks: BTreeSet<String>,
    /// Bytes of an invalid body kept (escaped) in its audit record, beside
    /// its sha256 and size. Default 256.
    pub invalid_body_excerpt_bytes: usize,
    /// The names each person goes by, for separation of duties.
    pub identity_aliases: crate::grant::IdentityAliases,
    /// Decide every active grant again when a new policy set is swapped in
    /// (reload or rollback), revoking those it no longer allows
    /// (`reverify-on-reload`). Default false.
    pub reverify_on_reload: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            approval_timeout_secs: 3600,
            break_glass_tasks: BTreeSet::new(),
            invalid_body_excerpt_bytes: 256,
            identity_aliases: Default::default(),
            reverify_on_reload: false,
        }
    }
}

/// Current time, Unix milliseconds.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        // getrandom failing means no OS entropy; a time-based id is still
        // unique enough for an id (never a secret).
        b[..8].copy_from_slice(&now_millis().to_le_bytes());
    }
    format!("{prefix}-{}", hex::encode(b))
}

/// sha256 of a JSON value's canonical (sorted-key) form, which does not
/// depend on how serde_json was built (see [`audit::canonical`]).
pub fn body_hash(v: &Value) -> String {
    hex::encode(Sha256::digest(audit::canonical::to_vec(v)))
}

/// The grants service.
pub struct Service {
    engine: RwLock<Arc<Engine>>,
    store: Arc<dyn Store>,
    config: ServiceConfig,
    /// Poked when a nearer deadline may exist (new or activated grant).
    pub deadline_changed: tokio::sync::Notify,
    /// Poked when provisioning events were queued.
    pub outbox_changed: tokio::sync::Notify,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Batches audit records of dry runs and auth failures.
    group_commit: Option<group_commit::GroupCommit>,
    /// Runs decisions off the async workers, bounded.
    evaluator: evaluator::Evaluator,
    /// Where every time the service records or compares comes from.
    clock: Arc<dyn Clock>,
    /// What a policy reload loads; `None` disables reloading.
    policy_source: Option<PolicySource>,
    /// Ticket sources and pipelines trusted with ticket facts.
    tickets: tickets::TicketSettings,
    /// One reload or rollback at a time.
    reload_lock: Mutex<()>,
    /// Sets that ran before each accepted reload, newest last (rollback).
    previous_sets: Mutex<Vec<Arc<Engine>>>,
    /// The last refused candidate, for `GET /v1/policies`.
    last_rejection: Mutex<Option<Value>>,
    /// Decides instead of the running engine when set.
    decision_maker: Option<Arc<dyn DecisionMaker>>,
    /// Targets that apply access (`[[provisioners]]`, `[[entitlements]]`).
    targets: Option<Arc<crate::provision::targets::Targets>>,
    /// The audit chain followed as it grows, for the console's chain
    /// state and the access review (walked from record 1 on first use).
    live_chain: Arc<crate::review::Live>,
}

impl Service {
    /// A service over `engine` and `store`.
    pub fn new(engine: Engine, store: Arc<dyn Store>, config: ServiceConfig) -> Self {
        Self::with_clock(engine, store, config, Arc::new(SystemClock))
    }

    /// A service that reads the time from `clock` (a [`ManualClock`] in
    /// tests).
    pub fn with_clock(
        engine: Engine,
        store: Arc<dyn Store>,
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (workers, queue) = evaluator::size(engine.config(), engine.policies().count());
        Service {
            evaluator: evaluator::Evaluator::start(workers, queue),
            engine: RwLock::new(Arc::new(engine)),
            config,
            deadline_changed: tokio::sync::Notify::new(),
            outbox_changed: tokio::sync::Notify::new(),
            metrics: Metrics::default(),
            group_commit: group_commit::GroupCommit::start(store.clone())
                .map_err(
                    |e| tracing::warn!(error = %e, "no group-commit writer; appending directly"),
                )
                .ok(),
            store,
            clock,
            policy_source: None,
            tickets: Default::default(),
            reload_lock: Mutex::new(()),
            previous_sets: Mutex::new(Vec::new()),
            last_rejection: Mutex::new(None),
            decision_maker: None,
            targets: None,
            live_chain: Arc::default(),
        }
    }

    /// Apply the access of mapped entitlements at `targets` (grants go
    /// through `provisioning` and `deprovisioning`; see
    /// [`crate::provision::targets`]).
    pub fn with_targets(mut self, targets: Arc<crate::provision::targets::Targets>) -> Self {
        targets.metrics.register_into(self.metrics.registry_mut());
        self.targets = Some(targets);
        self
    }

    /// The targets that apply access, if any.
    pub fn targets(&self) -> Option<&Arc<crate::provision::targets::Targets>> {
        self.targets.as_ref()
    }

    /// Mark a new grant as provisioned when its entitlement is mapped;
    /// returns a dynamic login's credential, to be shown once.
    fn attach_provisioning(
        &self,
        grant: &mut crate::grant::Grant,
    ) -> Option<crate::grant::Credential> {
        self.targets.as_ref()?.attach(grant)
    }

    /// Decide with `maker` instead of the running engine (the engine
    /// still lists and reloads policies). For embedders with a decision
    /// source of their own, and for tests that script decisions.
    pub fn with_decision_maker(mut self, maker: Arc<dyn DecisionMaker>) -> Self {
        self.decision_maker = Some(maker);
        self
    }

    /// What decides the next request.
    fn decision_maker(&self) -> Arc<dyn DecisionMaker> {
        match &self.decision_maker {
            Some(m) => m.clone(),
            None => self.engine(),
        }
    }

    /// Let [`Service::reload_policies`] load from `source`.
    pub fn with_policy_source(mut self, source: PolicySource) -> Self {
        self.policy_source = Some(source);
        self
    }

    /// The service's current time, Unix milliseconds.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Append one record that changes no grant, through group commit.
    fn append_one(&self, d: AuditDraft) -> Result<(), StoreError> {
        match &self.group_commit {
            Some(gc) => gc.append(d),
            None => self.store.append_audit(vec![d]),
        }
    }

    /// Queue a record that changes no grant for group commit; the future
    /// resolves once it is committed. Holds no thread while waiting.
    pub fn submit_audit(
        &self,
        d: AuditDraft,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>> {
        match &self.group_commit {
            Some(gc) => Box::pin(gc.submit(d)),
            None => {
                let store = self.store.clone();
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || store.append_audit(vec![d]))
                        .await
                        .map_err(|e| StoreError::Backend(format!("audit append: {e}").into()))?
                })
            }
        }
    }

    /// The current engine (policies can be swapped by [`Service::replace_engine`]).
    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swap in a newly loaded engine (policy reload), audited.
    pub fn replace_engine(&self, engine: Engine, actor: &str) -> Result<(), ServiceError> {
        self.record_policies(&engine, actor)?;
        self.swap_engine(Arc::new(engine));
        Ok(())
    }

    /// Put `engine` in place; the one it replaces is returned. Decisions
    /// already running keep the engine they took.
    fn swap_engine(&self, engine: Arc<Engine>) -> Arc<Engine> {
        let mut slot = self.engine.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, engine)
    }

    /// Audit `engine`'s policies as loaded and, for a signed set, accept it
    /// in the store (the new rollback floor) in the same transaction. A set
    /// older than one accepted meanwhile (by another replica) is refused.
    pub fn record_policies(&self, engine: &Engine, actor: &str) -> Result<(), ServiceError> {
        let now = self.now();
        let set = engine.policy_set();
        let mut drafts: Vec<AuditDraft> = engine
            .policies()
            .map(|p| {
                let mut v = json!(p);
                v["policy-set"] = json!(set.digest);
                AuditDraft::new(now, audit::kind::POLICY_LOAD, actor, v)
            })
            .collect();
        drafts.push(AuditDraft::new(
            now,
            audit::kind::POLICY_SET,
            actor,
            json!(set),
        ));
        match (set.signed, set.sequence) {
            (true, Some(sequence)) => {
                let accepted = crate::store::AcceptedPolicySet {
                    digest: set.digest.clone(),
                    sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
                    version: set.version.clone().unwrap_or_default(),
                    signers: set.signers.clone(),
                    accepted_at: now,
                };
                if let Some(last) = self.store.accept_policy_set(&accepted, drafts)? {
                    return Err(ServiceError::Conflict(format!(
                        "policy set sequence {sequence} is lower than the last accepted sequence {last}; refusing a rollback"
                    )));
                }
                Ok(())
            }
            _ => Ok(self.store.append_audit(drafts)?),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Audit something that changes no grant (config/policy load, auth failure).
    pub fn audit(&self, kind: &str, actor: &str, data: Value) -> Result<(), ServiceError> {
        Ok(self
            .store
            .append_audit(vec![AuditDraft::new(self.now(), kind, actor, data)])?)
    }
}

#[cfg(test)]
mod tests;
