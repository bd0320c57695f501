//! The grant workflow after intake: reading grants, approvals, rejection,
//! revocation and release, each one [`crate::grant::Grant::apply`]
//! inside a store transaction.

use std::sync::Arc;

use super::intake::blocking;
use super::{Principal, Role, Service, ServiceError, new_id};
use crate::grant::{Grant, GrantEvent, GrantState};
use crate::store::GrantFilter;

impl Service {
    /// One grant, if `actor` may see it.
    pub fn grant(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        let g = self
            .store
            .grant(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("grant {id}")))?;
        actor.may_see(&g)?;
        Ok(g)
    }

    /// Grants matching `filter` that `actor` may see (requesters: their own).
    pub fn grants(
        &self,
        actor: &Principal,
        mut filter: GrantFilter,
    ) -> Result<Vec<Grant>, ServiceError> {
        if actor.sees_only_own() {
            match &filter.subject {
                Some(s) if *s != actor.name => {
                    return Err(ServiceError::Forbidden(
                        "a requester may only list their own grants".into(),
                    ));
                }
                _ => filter.subject = Some(actor.name.clone()),
            }
        }
        Ok(self.store.grants(&filter)?)
    }

    /// Why `actor` could not approve `g` now (not an approver, own
    /// request, in none of the groups, already approved, not pending), or
    /// `None`: what [`Service::approve`] would refuse, asked beforehand.
    pub fn approval_blocker(&self, actor: &Principal, g: &Grant) -> Option<String> {
        if actor.require_any(&[Role::Approver]).is_err() {
            return Some(format!("{} does not have the approver role", actor.name));
        }
        g.approval_blocker(
            &actor.name,
            &self.config.identity_aliases.others(&actor.name),
            &actor.groups,
        )
    }

    /// Approve a pending grant.
    pub fn approve(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Approver])?;
        let now = self.now();
        let g = self.store.update_grant::<ServiceError>(id, &mut |g| {
            let review_id = g.break_glass.then(|| new_id("rv"));
            let event = GrantEvent::Approve {
                groups: actor.groups.clone(),
                review_id,
                also_known_as: self.config.identity_aliases.others(&actor.name),
                sign_in: actor.sign_in.clone(),
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        // Applied after `lapses-at`: the grant lapsed instead.
        let lapsed = g.state == GrantState::Lapsed;
        if lapsed {
            return Err(lapsed_error(&g));
        }
        if matches!(g.state, GrantState::Active | GrantState::Provisioning) {
            self.outbox_changed.notify_one();
            self.deadline_changed.notify_one();
        }
        Ok(g)
    }

    /// Reject a pending grant (any eligible approver), with a reason (at
    /// most [`MAX_REASON_BYTES`]; "rejected by NAME" when none is given).
    pub fn reject(
        &self,
        actor: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Approver])?;
        let reason = reason_or_default(reason, "rejected", actor)?;
        let now = self.now();
        let g = self.store.update_grant::<ServiceError>(id, &mut |g| {
            let event = GrantEvent::Reject {
                groups: actor.groups.clone(),
                reason: reason.to_string(),
                also_known_as: self.config.identity_aliases.others(&actor.name),
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        // Applied after `lapses-at`: the grant lapsed instead.
        let lapsed = g.state == GrantState::Lapsed;
        if lapsed {
            return Err(lapsed_error(&g));
        }
        Ok(g)
    }

    /// Revoke an active or pending grant (admin), with a reason (at most
    /// [`MAX_REASON_BYTES`]; "revoked by NAME" when none is given).
    pub fn revoke(
        &self,
        actor: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Admin])?;
        let reason = reason_or_default(reason, "revoked", actor)?;
        let now = self.now();
        let g = self.store.update_grant::<ServiceError>(id, &mut |g| {
            let event = GrantEvent::Revoke {
                reason: reason.to_string(),
            };
            Ok(Some(g.apply(event, &actor.name, now)?))
        })?;
        self.outbox_changed.notify_one();
        Ok(g)
    }

    /// Release an active grant early (its holder, or a pipeline for them).
    pub fn release(&self, actor: &Principal, id: &str) -> Result<Grant, ServiceError> {
        actor.require_any(&[Role::Requester, Role::Pipeline])?;
        let now = self.now();
        let g = self.store.update_grant::<ServiceError>(id, &mut |g| {
            if !actor.has(Role::Pipeline) && g.request.subject.id != actor.name {
                return Err(ServiceError::Forbidden(
                    "only the grant's holder may release it".into(),
                ));
            }
            Ok(Some(g.apply(GrantEvent::Release, &actor.name, now)?))
        })?;
        self.outbox_changed.notify_one();
        Ok(g)
    }
}

/// The lifecycle calls for async callers: each runs its sync form on
/// tokio's blocking pool, so the store's commit (an fsync, a PostgreSQL
/// round trip) holds no async worker.
impl Service {
    /// Run a lifecycle call on a blocking thread with owned copies of its
    /// caller and grant id, so that no async worker waits on the store.
    async fn off_worker<T: Send + 'static>(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
        call: impl FnOnce(&Service, &Principal, &str) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (svc, who, id) = (self.clone(), actor.clone(), id.to_string());
        blocking(move || call(&svc, &who, &id)).await
    }

    /// [`Service::approve`] without holding an async worker.
    pub async fn approve_async(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
    ) -> Result<Grant, ServiceError> {
        self.off_worker(actor, id, |s, who, id| s.approve(who, id))
            .await
    }

    /// [`Service::reject`] without holding an async worker.
    pub async fn reject_async(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<Grant, ServiceError> {
        let reason = reason.map(str::to_string);
        self.off_worker(actor, id, move |s, who, id| {
            s.reject(who, id, reason.as_deref())
        })
        .await
    }

    /// [`Service::revoke`] without holding an async worker.
    pub async fn revoke_async(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<Grant, ServiceError> {
        let reason = reason.map(str::to_string);
        self.off_worker(actor, id, move |s, who, id| {
            s.revoke(who, id, reason.as_deref())
        })
        .await
    }

    /// [`Service::release`] without holding an async worker.
    pub async fn release_async(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
    ) -> Result<Grant, ServiceError> {
        self.off_worker(actor, id, |s, who, id| s.release(who, id))
            .await
    }

    /// [`Service::grant`] without holding an async worker.
    pub async fn grant_async(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
    ) -> Result<Grant, ServiceError> {
        self.off_worker(actor, id, |s, who, id| s.grant(who, id))
            .await
    }
}

fn lapsed_error(g: &Grant) -> ServiceError {
    ServiceError::IllegalTransition {
        id: g.id.clone(),
        from: g.state.as_str(),
        to: GrantState::Active.as_str(),
    }
}

/// Longest reason a rejection or revocation may carry.
pub const MAX_REASON_BYTES: usize = 1024;

fn reason_or_default(
    reason: Option<&str>,
    verb: &str,
    actor: &Principal,
) -> Result<String, ServiceError> {
    match reason {
        None => Ok(format!("{verb} by {}", actor.name)),
        Some(r) if r.len() > MAX_REASON_BYTES => Err(ServiceError::BadRequest {
            field: "reason".into(),
            message: format!("at most {MAX_REASON_BYTES} bytes"),
        }),
        Some(r) => Ok(r.to_string()),
    }
}
