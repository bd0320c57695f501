//! What the service does for operators beside the grant workflow: the
//! loaded policy set and its reload, reading and verifying the audit chain,
//! and the figures behind `/metrics`. Every role rule lives here, so any
//! front end (HTTP, an embedder, the console) applies the same ones.

use serde_json::json;
use std::path::PathBuf;

use super::{Principal, Role, Service, ServiceError};
use crate::audit::{self, AuditRecord};
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::policy::{LoadError, PolicyMeta};
use crate::policy_set::{PolicySetError, SetInfo, Trust};
use crate::store::{Store, StoreError};

/// Where a reload reads policy modules from, and with which engine settings.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// A module or a folder of modules (with `trust`: a signed set's folder).
    pub path: PathBuf,
    /// Settings for the engine each reload builds.
    pub engine: EngineConfig,
    /// `[trust]`: when set, only a set verified against these keys loads,
    /// and never one older than the store's last accepted sequence.
    pub trust: Option<Trust>,
}

/// Why a policy source did not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No engine could be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A module was refused.
    #[error("loading policies: {0}")]
    Load(#[from] LoadError),
    /// The signed set was refused.
    #[error("policy set refused: {0}")]
    Refused(#[from] PolicySetError),
    /// The last accepted sequence could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SourceError> for ServiceError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Engine(e) => ServiceError::Unavailable(e.to_string()),
            SourceError::Store(e) => e.into(),
            e => ServiceError::BadRequest {
                field: "policies".into(),
                message: e.to_string(),
            },
        }
    }
}

impl PolicySource {
    /// A fresh engine with the source's policies: with `trust`, the set is
    /// verified first (its sequence against `store`'s floor) and the engine
    /// compiles the verified bytes. Nothing is recorded: accepting the set
    /// is [`Service::replace_engine`]'s (or start-up's) business.
    pub fn load(&self, store: &dyn Store) -> Result<Engine, SourceError> {
        let mut engine = Engine::new(self.engine.clone())?;
        match &self.trust {
            Some(trust) => {
                let floor = store.policy_set_sequence()?.map(|s| s.max(0) as u64);
                let set = crate::policy_set::verify(
                    &self.path,
                    trust,
                    floor,
                    self.engine.sandbox.max_module_bytes,
                )?;
                engine.load_set(&set)?;
            }
            None => {
                engine.load_path(&self.path)?;
            }
        }
        Ok(engine)
    }
}

/// Most records one page of the audit log holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

impl Service {
    /// The loaded policies (any authenticated caller).
    pub fn policies(&self, _actor: &Principal) -> Vec<PolicyMeta> {
        self.engine().policies().cloned().collect()
    }

    /// The policy set running: digest, and for a signed set its version,
    /// sequence and signers (any authenticated caller).
    pub fn policy_set(&self, _actor: &Principal) -> SetInfo {
        self.engine().policy_set().clone()
    }

    /// Load the policy source afresh and swap it in (admin), audited. All
    /// or nothing: a set that fails to load leaves the running one in
    /// place. Conflict when the service has no [`PolicySource`].
    pub fn reload_policies(&self, actor: &Principal) -> Result<Vec<PolicyMeta>, ServiceError> {
        actor.require_any(&[Role::Admin])?;
        let Some(source) = self.policy_source.clone() else {
            return Err(ServiceError::Conflict("reloading is disabled".into()));
        };
        let engine = match source.load(self.store.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                // A refused candidate is evidence too: who tried, what, why.
                let refused = json!({"refused": e.to_string(), "path": source.path});
                if let Err(a) = self.audit(audit::kind::POLICY_SET, &actor.name, refused) {
                    tracing::warn!(error = %a, "could not audit a refused policy set");
                }
                return Err(e.into());
            }
        };
        let list: Vec<_> = engine.policies().cloned().collect();
        self.replace_engine(engine, &actor.name)?;
        Ok(list)
    }

    /// One page of the audit log after `after` (auditor, admin); `limit` is
    /// clamped to 1..=[`MAX_AUDIT_PAGE`].
    pub fn audit_page(
        &self,
        actor: &Principal,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        Ok(self
            .store
            .audit_page(after, limit.clamp(1, MAX_AUDIT_PAGE))?)
    }

    /// Walk the whole audit chain for a caller (auditor, admin).
    pub fn audit_verify(&self, actor: &Principal) -> Result<audit::Report, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        self.verify_audit()
    }

    /// The Prometheus exposition text of `/metrics`: counters kept in
    /// memory plus the gauges read from the store.
    pub fn metrics_text(&self) -> Result<String, ServiceError> {
        let active = self.store.count_active()?;
        let pending = self.store.outbox_pending()?;
        let quarantined = self.store.quarantine_count()?;
        let mut text = self.metrics.render(active, pending);
        text.push_str(&crate::metrics::quarantine_gauge(quarantined));
        Ok(text)
    }
}
