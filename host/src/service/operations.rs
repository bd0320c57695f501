//! What the service does for operators beside the grant workflow: the
//! loaded policy set and its reload, reading and verifying the audit chain,
//! and the figures behind `/metrics`. Every role rule lives here, so any
//! front end (HTTP, an embedder, the console) applies the same ones.

use super::{Principal, Role, Service, ServiceError};
use crate::audit::{self, AuditRecord};
use crate::policy::PolicyMeta;
use crate::policy_set::SetInfo;

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
        if let Some(t) = &self.targets {
            t.metrics
                .set_in_transit(crate::provision::targets::in_transit(self)?);
        }
        Ok(self.metrics.encode(active, pending, quarantined))
    }
}
