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

    /// The access review of `[since, until)` (auditor, admin): every
    /// elevated state and why, totals by task, and whether the chain
    /// verified ([`crate::review::read`]: the whole chain is walked now).
    /// `since` and `until` are RFC 3339; a missing or bad one is refused
    /// naming it.
    pub fn access_review(
        &self,
        actor: &Principal,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<crate::review::AccessReview, ServiceError> {
        let (since, until) = window(actor, since, until)?;
        crate::review::read(self.store.as_ref(), since, until).map_err(review_error)
    }

    /// [`Service::access_review`] from the chain as followed
    /// ([`crate::review::Live`]: each record checked once, as it was read;
    /// the walk from record 1 repeated in the background), for pages that
    /// must not read the whole chain on every view.
    pub fn access_review_followed(
        &self,
        actor: &Principal,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<crate::review::AccessReview, ServiceError> {
        let (since, until) = window(actor, since, until)?;
        self.live_chain
            .review(&self.store, since, until, self.now())
            .map_err(review_error)
    }

    /// The audit chain's state (auditor, admin): every record was checked
    /// once as it was read, and the walk from record 1 is repeated in the
    /// background (see [`crate::review::Live`]); cheap after the first call.
    pub fn chain_status(
        &self,
        actor: &Principal,
    ) -> Result<crate::review::ChainStatus, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        Ok(self.live_chain.status(&self.store, self.now())?)
    }

    /// Bytes the followed chain keeps in memory (an estimate; see
    /// [`crate::review::Live::kept_bytes`]).
    pub fn followed_chain_bytes(&self) -> usize {
        self.live_chain.kept_bytes()
    }

    /// Walk the whole audit chain from record 1 now (auditor, admin), and
    /// keep the result as the chain's state.
    pub fn walk_chain(
        &self,
        actor: &Principal,
    ) -> Result<crate::review::ChainStatus, ServiceError> {
        actor.require_any(&[Role::Auditor, Role::Admin])?;
        Ok(self.live_chain.rewalk(&self.store, self.now())?)
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

/// The bounds of an access review, for an auditor or admin.
fn window(
    actor: &Principal,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(crate::grant::Millis, crate::grant::Millis), ServiceError> {
    actor.require_any(&[Role::Auditor, Role::Admin])?;
    let bound = |field: &'static str, v: Option<&str>| match v {
        None => Err(ServiceError::BadRequest {
            field: field.into(),
            message: "required: an RFC 3339 time".into(),
        }),
        Some(v) => crate::review::parse_time(field, v).map_err(review_error),
    };
    Ok((bound("since", since)?, bound("until", until)?))
}

fn review_error(e: crate::review::ReviewError) -> ServiceError {
    match e {
        crate::review::ReviewError::Window { field, message } => ServiceError::BadRequest {
            field: field.into(),
            message,
        },
        crate::review::ReviewError::Store(e) => e.into(),
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
