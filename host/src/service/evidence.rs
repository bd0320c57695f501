//! Break-glass reviews, the evidence view of a grant, and audit chain checks.

use serde_json::json;

use super::{Principal, Role, Service, ServiceError};
use crate::audit::{self, AuditDraft, AuditRecord};
use crate::grant::Grant;
use crate::store::{Review, Store};

impl Service {
    /// Break-glass reviews (auditor, admin).
    pub fn reviews(&self, actor: &Principal, open_only: bool) -> Result<Vec<Review>, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        Ok(self.store.reviews(open_only)?)
    }

    /// Close a review with a note (auditor).
    pub fn close_review(
        &self,
        actor: &Principal,
        id: &str,
        note: &str,
    ) -> Result<(), ServiceError> {
        actor.require_any(&[Role::Auditor])?;
        if note.trim().is_empty() {
            return Err(ServiceError::BadRequest {
                field: "note".into(),
                message: "must not be empty".into(),
            });
        }
        let now = self.now();
        let d = AuditDraft::new(
            now,
            audit::kind::REVIEW,
            &actor.name,
            json!({"review": id, "closed": true, "note": note}),
        );
        if self.store.close_review(id, &actor.name, note, now, d)? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("open review {id}")))
        }
    }

    /// The evidence view of one grant: the grant (request, decision with
    /// every policy's verdict and digest, approvals, issuance, end) and
    /// every audit record about it.
    pub fn evidence(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<(Grant, Vec<AuditRecord>), ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        let g = self
            .store
            .grant(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("grant {id}")))?;
        let records = self.store.audit_of_grant(id)?;
        Ok((g, records))
    }

    /// Walk the whole audit chain, reporting every bad record.
    pub fn verify_audit(&self) -> Result<audit::Report, ServiceError> {
        Ok(audit::verify_store(
            self.store.as_ref(),
            audit::Anchors::new(),
            &mut |_| {},
        )?)
    }
}

/// Walk a store's whole audit chain page by page; the first bad record
/// ([`audit::verify_store`] reports them all).
pub fn verify_store(store: &dyn Store) -> Result<Result<u64, audit::ChainError>, ServiceError> {
    let report = audit::verify_store(store, audit::Anchors::new(), &mut |_| {})?;
    Ok(match report.bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(report.checked),
    })
}
