//! [`Grant::apply`]: the one way a grant changes. Pure: given the grant, an
//! event, who caused it and the time, it changes the grant and returns what
//! must be written with it (audit records, provisioning events, a review),
//! or refuses. The service only loads, authorises, applies and stores.
//!
//! One file past 500 lines: the grant state machine; every transition and its
//! guard in one table-like file, so an illegal transition is visible as a
//! missing arm.

use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::{Approval, Grant, GrantState, Millis, SignIn};
use crate::audit::{self, AuditDraft};
use crate::decision::Outcome;
use crate::request::TicketState;
use crate::store::{Effects, OutboxEvent, Review};

/// Something that happens to a grant.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantEvent {
    /// The request was decided. Only for a grant not yet decided: built in
    /// `denied` with its outcome set and `decision` still null. Allow
    /// activates it, require-approval makes it pending until
    /// `now + approval_timeout_ms`, deny leaves it denied.
    Decided {
        /// The decision as explained ([`crate::Decision`] serialized).
        decision: Value,
        /// How long a pending grant waits for approvals.
        approval_timeout_ms: i64,
        /// The id of the review a break-glass activation opens.
        review_id: Option<String>,
    },
    /// Every approval requirement is met: the grant becomes active.
    Activate {
        /// The id of the review a break-glass activation opens.
        review_id: Option<String>,
    },
    /// The actor approves, with the groups they are in now. Counts toward
    /// every requirement it matches; the last one needed activates. After
    /// `lapses-at` the grant lapses instead (the caller answers 409).
    Approve {
        /// The approver's groups.
        groups: Vec<String>,
        /// The id of the review a break-glass activation opens.
        review_id: Option<String>,
        /// Every other name the approver is known by (`[identity-aliases]`):
        /// none of them may be the requester or the subject either.
        also_known_as: Vec<String>,
        /// The sign-in that proved the approver, recorded with the approval.
        sign_in: Option<SignIn>,
    },
    /// The actor refuses a pending grant. After `lapses-at` the grant lapses
    /// instead.
    Reject {
        /// The approver's groups.
        groups: Vec<String>,
        /// Why.
        reason: String,
        /// Every other name the approver is known by.
        also_known_as: Vec<String>,
    },
    /// An admin ends an active or pending grant.
    Revoke {
        /// Why.
        reason: String,
    },
    /// The holder ends an active grant early.
    Release,
    /// The sweep ends an active grant whose `expires-at` is at or before
    /// `due_by`.
    Expire {
        /// The sweep's cut-off.
        due_by: Millis,
    },
    /// The sweep ends a pending grant whose `lapses-at` is at or before
    /// `due_by`.
    Lapse {
        /// The sweep's cut-off.
        due_by: Millis,
    },
    /// The grant's ticket reached `state`; a grant that asked to end with
    /// its ticket is revoked when the state is finished.
    TicketEnd {
        /// The ticket.
        ticket: String,
        /// Its new state.
        state: TicketState,
    },
    /// The target shows the access applied (read back): a provisioning
    /// grant becomes active.
    Applied,
    /// The target refused the access after every retry: the grant is
    /// deprovisioned (whatever part was applied is removed) and then
    /// `failed`.
    ApplyFailed {
        /// The target's last answer.
        error: String,
    },
    /// The target shows the access gone (read back): a deprovisioning
    /// grant reaches the final state its end asked for.
    Removed,
}

/// Why [`Grant::apply`] refused an event. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IllegalTransition {
    /// The lifecycle has no such edge from the grant's state (or the event
    /// does not apply yet, e.g. an expiry before `expires-at`).
    #[error("grant {id} is {from}; it cannot become {to}")]
    State {
        /// The grant.
        id: String,
        /// Its state.
        from: &'static str,
        /// The refused target.
        to: &'static str,
    },
    /// The actor may not approve or reject this grant.
    #[error("{0}")]
    NotEligible(String),
    /// The grant's stored document was damaged; it can only be ended.
    #[error(
        "grant {id} is quarantined (its stored document is damaged: {why}); it can only be ended"
    )]
    Quarantined {
        /// The grant.
        id: String,
        /// Why it was quarantined.
        why: String,
    },
    /// The same person already approved.
    #[error("{approver} has already approved grant {id}")]
    AlreadyApproved {
        /// The grant.
        id: String,
        /// The approver, as named in this call.
        approver: String,
    },
}

/// A name compared for identity: Unicode-compatibility-normalised (NFKC),
/// case-folded and trimmed, so `Alice`, ` alice ` and the full-width
/// `ａｌｉｃｅ` are one person.
pub fn identity_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.trim().nfkc().collect::<String>().to_lowercase()
}

/// The actor's name and its aliases, normalised with [`identity_key`].
fn names_of(actor: &str, also_known_as: &[String]) -> BTreeSet<String> {
    std::iter::once(actor)
        .chain(also_known_as.iter().map(String::as_str))
        .map(identity_key)
        .filter(|k| !k.is_empty())
        .collect()
}

impl GrantState {
    /// The states a grant may begin in, once decided (the edges out of
    /// creation; [`GrantState::can_become`] holds the rest).
    pub fn can_begin_as(self) -> bool {
        matches!(
            self,
            GrantState::Active | GrantState::Pending | GrantState::Denied
        )
    }
}

impl Grant {
    /// Apply `event`, caused by `actor`, at `now`: the grant changes and the
    /// returned effects must be stored with it, in one transaction; or the
    /// event is refused and the grant is untouched. Every edge taken is one
    /// of [`GrantState::can_become`] (or [`GrantState::can_begin_as`] for
    /// [`GrantEvent::Decided`]).
    pub fn apply(
        &mut self,
        event: GrantEvent,
        actor: &str,
        now: Millis,
    ) -> Result<Effects, IllegalTransition> {
        use GrantState::*;
        match event {
            GrantEvent::Decided {
                decision,
                approval_timeout_ms,
                review_id,
            } => {
                let to = match self.outcome {
                    Outcome::Allow => Active,
                    Outcome::RequireApproval => Pending,
                    Outcome::Deny => Denied,
                };
                let undecided = self.state == Denied
                    && self.decision.is_null()
                    && self.quarantined.is_none()
                    && self.issued_at.is_none()
                    && self.ended_at.is_none();
                if !undecided || !to.can_begin_as() {
                    return Err(self.illegal(to));
                }
                self.decision = decision;
                let mut fx = Effects::default();
                match to {
                    Pending => {
                        self.state = Pending;
                        self.lapses_at = Some(now + approval_timeout_ms);
                        fx.audit.push(transition_record(
                            self,
                            "created",
                            actor,
                            "awaiting approval",
                            now,
                        ));
                    }
                    Active => self.activate(&mut fx, actor, now, review_id),
                    _ => {}
                }
                Ok(fx)
            }
            GrantEvent::Activate { review_id } => {
                self.require(&[Pending], Active)?;
                self.not_quarantined()?;
                if !self.unmet().is_empty() {
                    return Err(self.illegal(Active));
                }
                let mut fx = Effects::default();
                self.lapses_at = None;
                self.activate(&mut fx, actor, now, review_id);
                Ok(fx)
            }
            GrantEvent::Approve {
                groups,
                review_id,
                also_known_as,
                sign_in,
            } => {
                self.require(&[Pending], Active)?;
                if let Some(fx) = self.lapse_if_due(now) {
                    return Ok(fx);
                }
                self.not_quarantined()?;
                let me = names_of(actor, &also_known_as);
                self.eligible_approver(actor, &me, &groups)?;
                // One person under two names is still one approval.
                if self
                    .approvals
                    .iter()
                    .any(|a| me.contains(&identity_key(&a.approver)))
                {
                    return Err(IllegalTransition::AlreadyApproved {
                        id: self.id.clone(),
                        approver: actor.to_string(),
                    });
                }
                let approval = Approval {
                    approver: actor.to_string(),
                    groups,
                    at: now,
                    sign_in,
                };
                let mut fx = Effects::default();
                fx.audit.push(
                    AuditDraft::new(now, audit::kind::APPROVAL, actor, json!(approval))
                        .grant(&self.id)
                        .request(&self.request.id),
                );
                self.approvals.push(approval);
                if self.unmet().is_empty() {
                    self.lapses_at = None;
                    self.activate(&mut fx, actor, now, review_id);
                }
                Ok(fx)
            }
            GrantEvent::Reject {
                groups,
                reason,
                also_known_as,
            } => {
                self.require(&[Pending], Rejected)?;
                if let Some(fx) = self.lapse_if_due(now) {
                    return Ok(fx);
                }
                self.eligible_approver(actor, &names_of(actor, &also_known_as), &groups)?;
                Ok(self.end(Rejected, actor, &reason, now))
            }
            GrantEvent::Revoke { reason } => {
                self.require(&[Active, Pending, Provisioning], Revoked)?;
                Ok(self.end(Revoked, actor, &reason, now))
            }
            GrantEvent::Release => {
                self.require(&[Active, Provisioning], Released)?;
                Ok(self.end(Released, actor, "released early by its holder", now))
            }
            GrantEvent::Expire { due_by } => {
                self.require(&[Active, Provisioning], Expired)?;
                if self.expires_at.is_none_or(|e| e > due_by) {
                    return Err(self.illegal(Expired));
                }
                let mut fx = self.end(Expired, actor, "expired", now);
                self.revocation_lag_ms = self.expires_at.map(|e| now - e);
                if let Some(d) = fx.audit.last_mut() {
                    d.data["revocation-lag-ms"] = json!(self.revocation_lag_ms);
                }
                Ok(fx)
            }
            GrantEvent::Lapse { due_by } => {
                self.require(&[Pending], Lapsed)?;
                if self.lapses_at.is_none_or(|l| l > due_by) {
                    return Err(self.illegal(Lapsed));
                }
                Ok(self.end(Lapsed, actor, "no approval before the deadline", now))
            }
            GrantEvent::TicketEnd { ticket, state } => {
                self.require(&[Active, Pending, Provisioning], Revoked)?;
                if !state.is_finished() || !self.revoke_on_ticket_close {
                    return Err(self.illegal(Revoked));
                }
                let why = format!(
                    "ticket {ticket} is {}",
                    serde_json::to_value(state)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("closed")
                );
                Ok(self.end(Revoked, actor, &why, now))
            }
            GrantEvent::Applied => {
                self.require(&[Provisioning], Active)?;
                let mut fx = Effects::default();
                self.state = Active;
                if let Some(p) = self.provisioning.as_mut() {
                    p.applied_at = Some(now);
                    p.last_error = None;
                }
                fx.audit.push(transition_record(
                    self,
                    "provisioning",
                    actor,
                    "access applied and read back at the target",
                    now,
                ));
                // Receivers of the announcements learn of the grant when
                // it really grants.
                fx.outbox.push(outbox_event(self, "grant-activated", now));
                Ok(fx)
            }
            GrantEvent::ApplyFailed { error } => {
                self.require(&[Provisioning], Deprovisioning)?;
                let why = format!("the target refused the access: {error}");
                if let Some(p) = self.provisioning.as_mut() {
                    p.last_error = Some(error);
                }
                Ok(self.end(Failed, actor, &why, now))
            }
            GrantEvent::Removed => {
                self.require(&[Deprovisioning], Expired)?;
                let to = self
                    .provisioning
                    .as_ref()
                    .and_then(|p| p.ending_as)
                    .filter(|to| Deprovisioning.can_become(*to))
                    .unwrap_or(Revoked);
                self.state = to;
                // End to end: from the moment access should have stopped
                // (expiry, or the end being decided) to the removal read back.
                let from_ms = match to {
                    Expired => self.expires_at.or(self.ended_at),
                    _ => self.ended_at,
                };
                self.revocation_lag_ms = from_ms.map(|f| (now - f).max(0));
                if let Some(p) = self.provisioning.as_mut() {
                    p.removed_at = Some(now);
                    p.ending_as = None;
                }
                let why = format!(
                    "{}; access removed and read back at the target",
                    self.end_reason.as_deref().unwrap_or("ended")
                );
                let mut fx = Effects::default();
                let mut record = transition_record(self, "deprovisioning", actor, &why, now);
                record.data["revocation-lag-ms"] = json!(self.revocation_lag_ms);
                fx.audit.push(record);
                // Only a grant that was active was announced as such.
                if self
                    .provisioning
                    .as_ref()
                    .is_some_and(|p| p.applied_at.is_some())
                {
                    fx.outbox.push(outbox_event(self, "grant-ended", now));
                }
                Ok(fx)
            }
        }
    }

    /// The edge actually taken toward `to`: a provisioned grant whose
    /// access may be applied ends through `deprovisioning`.
    fn edge_to(&self, to: GrantState) -> GrantState {
        use GrantState::*;
        let applied_maybe = matches!(self.state, Active | Provisioning);
        let ending = matches!(to, Expired | Revoked | Released | Failed);
        if self.provisioning.is_some() && applied_maybe && ending {
            Deprovisioning
        } else {
            to
        }
    }

    fn illegal(&self, to: GrantState) -> IllegalTransition {
        IllegalTransition::State {
            id: self.id.clone(),
            from: self.state.as_str(),
            to: to.as_str(),
        }
    }

    fn require(&self, from: &[GrantState], to: GrantState) -> Result<(), IllegalTransition> {
        if from.contains(&self.state) && self.state.can_become(self.edge_to(to)) {
            Ok(())
        } else {
            Err(self.illegal(to))
        }
    }

    /// A pending grant whose approval deadline has passed lapses now,
    /// whether or not the sweep has come by yet: an approval that arrives
    /// after `lapses-at` must not activate it.
    fn lapse_if_due(&mut self, now: Millis) -> Option<Effects> {
        let due = self.state == GrantState::Pending && self.lapses_at.is_some_and(|l| l <= now);
        due.then(|| {
            self.end(
                GrantState::Lapsed,
                "scheduler",
                "no approval before the deadline",
                now,
            )
        })
    }

    /// A grant salvaged from a damaged row may be ended, never approved: its
    /// approval requirements may be among what was lost.
    fn not_quarantined(&self) -> Result<(), IllegalTransition> {
        match &self.quarantined {
            Some(why) => Err(IllegalTransition::Quarantined {
                id: self.id.clone(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Why `actor` (known also as `also_known_as`, in `groups`) could not
    /// approve this grant now, or `None` when an approval would count:
    /// the same checks [`GrantEvent::Approve`] makes, without applying
    /// anything (the console says why before anyone clicks).
    pub fn approval_blocker(
        &self,
        actor: &str,
        also_known_as: &[String],
        groups: &[String],
    ) -> Option<String> {
        if self.state != GrantState::Pending {
            return Some(format!("the grant is {}, not pending", self.state.as_str()));
        }
        if self.quarantined.is_some() {
            return Some("the grant is quarantined and can never be approved".into());
        }
        let me = names_of(actor, also_known_as);
        if let Err(e) = self.eligible_approver(actor, &me, groups) {
            return Some(match e {
                IllegalTransition::NotEligible(why) => why,
                other => other.to_string(),
            });
        }
        self.approvals
            .iter()
            .any(|a| me.contains(&identity_key(&a.approver)))
            .then(|| format!("{actor} has already approved this grant"))
    }

    /// Separation of duties, then group membership. `me`: every name the
    /// actor is known by, normalised ([`names_of`]).
    fn eligible_approver(
        &self,
        actor: &str,
        me: &BTreeSet<String>,
        groups: &[String],
    ) -> Result<(), IllegalTransition> {
        if me.contains(&identity_key(&self.request.subject.id))
            || me.contains(&identity_key(&self.requested_by))
        {
            return Err(IllegalTransition::NotEligible(
                "nobody may approve their own request (made by them or for them)".into(),
            ));
        }
        let wanted: BTreeSet<&String> = self.required.iter().flat_map(|r| &r.groups).collect();
        if !groups.iter().any(|ag| wanted.contains(ag)) {
            let want: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
            return Err(IllegalTransition::NotEligible(format!(
                "{actor} is in none of the approver groups [{}]",
                want.join(", ")
            )));
        }
        Ok(())
    }

    fn activate(&mut self, fx: &mut Effects, actor: &str, now: Millis, review_id: Option<String>) {
        let from = if self.issued_at.is_none() && self.approvals.is_empty() {
            "created"
        } else {
            self.state.as_str()
        };
        self.issued_at = Some(now);
        self.expires_at = Some(now + self.ttl as i64 * 1000);
        if self.provisioning.is_some() {
            self.state = GrantState::Provisioning;
            fx.audit.push(transition_record(
                self,
                from,
                actor,
                "granted; applying the access at the target",
                now,
            ));
            fx.outbox.push(outbox_event(self, PROVISION_APPLY, now));
        } else {
            self.state = GrantState::Active;
            fx.audit
                .push(transition_record(self, from, actor, "granted", now));
            fx.outbox.push(outbox_event(self, "grant-activated", now));
        }
        if self.break_glass {
            fx.review = Some(Review {
                id: review_id.unwrap_or_else(|| format!("rv-{}", self.id)),
                grant_id: self.id.clone(),
                opened_at: now,
                closed_at: None,
                closed_by: None,
                note: None,
            });
            fx.audit.push(
                AuditDraft::new(
                    now,
                    audit::kind::REVIEW,
                    actor,
                    json!({"opened": true, "reason": "break-glass grant"}),
                )
                .grant(&self.id),
            );
        }
    }

    fn end(&mut self, to: GrantState, actor: &str, why: &str, now: Millis) -> Effects {
        let was_active = self.state == GrantState::Active;
        let from = self.state.as_str();
        let edge = self.edge_to(to);
        self.state = edge;
        self.ended_at = Some(now);
        self.ended_by = Some(actor.to_string());
        self.end_reason = Some(why.to_string());
        let mut fx = Effects::default();
        if edge == GrantState::Deprovisioning {
            if let Some(p) = self.provisioning.as_mut() {
                p.ending_as = Some(to);
            }
            let mut record = transition_record(self, from, actor, why, now);
            record.data["ending-as"] = json!(to.as_str());
            fx.audit.push(record);
            fx.outbox.push(outbox_event(self, PROVISION_REMOVE, now));
            return fx;
        }
        fx.audit
            .push(transition_record(self, from, actor, why, now));
        if was_active {
            fx.outbox.push(outbox_event(self, "grant-ended", now));
        }
        fx
    }
}

fn transition_record(g: &Grant, from: &str, actor: &str, why: &str, now: Millis) -> AuditDraft {
    AuditDraft::new(
        now,
        audit::kind::TRANSITION,
        actor,
        json!({"from": from, "to": g.state.as_str(), "reason": why, "expires-at": g.expires_at}),
    )
    .grant(&g.id)
    .request(&g.request.id)
}

/// The outbox kind that applies a provisioned grant's access at its target.
pub const PROVISION_APPLY: &str = "provision-apply";
/// The outbox kind that removes it.
pub const PROVISION_REMOVE: &str = "provision-remove";

/// The provisioning event; the store assigns its `sequence` when queued.
pub(crate) fn outbox_event(g: &Grant, kind: &str, now: Millis) -> OutboxEvent {
    let id = format!("{}:{kind}", g.id);
    let mut payload = json!({
            "event-id": id,
            "kind": kind,
            "grant-id": g.id,
            "state": g.state.as_str(),
            "subject": g.request.subject.id,
            "task": g.request.task,
            "resource": g.request.resource,
            "entitlement": g.request.entitlement,
            "ticket": g.ticket_id(),
            "issued-at": g.issued_at,
            "expires-at": g.expires_at,
            "ended-at": g.ended_at,
            "end-reason": g.end_reason,
    });
    if let Some(p) = &g.provisioning {
        payload["provisioner"] = json!(p.provisioner);
        payload["target"] = json!(p.target);
        if let Some(login) = &p.login {
            payload["login"] = json!(login);
        }
    }
    OutboxEvent {
        payload,
        id,
        grant_id: g.id.clone(),
        kind: kind.to_string(),
        created_at: now,
        attempts: 0,
        sequence: 0,
    }
}

#[cfg(test)]
mod provisioning_tests;
#[cfg(test)]
mod tests;
