//! Continuous verification: a live grant is decided again when what it was
//! decided on changes — its ticket's facts (state, assignee, priority), or,
//! with `reverify-on-reload = true`, the policy set — and revoked when the
//! new decision no longer allows it.
//!
//! The grant's recorded request is decided again as it was (same subject,
//! same `now`: a rule about the time of the request, such as MFA freshness
//! or business hours, is judged as at the request), with its ticket's facts
//! as the registry holds them now, by the running policy set. A grant is no
//! longer allowed when the new decision denies, or when it needs approvals
//! the grant does not hold (a grant activated without approval, or approved
//! by fewer or other groups than now asked). A pending grant is revoked only
//! on a deny: it still waits for its approvers.
//!
//! A ticket that reaches `resolved` or `closed` is not a reason to decide
//! again: whether a grant ends with its ticket is what its decision said
//! (`revoke-on-ticket-close`, and the source's `resolved-revokes`), applied
//! in the same transaction as the ticket change. Re-deciding it would let
//! the baseline's "a finished ticket justifies no new access" end every
//! grant and make that choice meaningless; so grants whose ticket is
//! finished are left to it, here and on a reload.
//!
//! A decision that could not be
//! made (no evaluator slot, a policy that failed) leaves the grant as it is,
//! as a ticket system that is down does: re-verification never grants and a
//! failure of its own never revokes.

use serde_json::{Value, json};

use super::{Service, ServiceError};
use crate::decision::{Decision, Outcome};
use crate::grant::{Grant, GrantEvent, GrantState};
use crate::request::{Request, Ticket};
use crate::store::{Effects, GrantFilter, TicketRecord};

/// What made a grant be decided again, for its audit record.
#[derive(Debug, Clone)]
pub(super) enum Trigger {
    /// Its ticket's facts changed (as reported by `actor`).
    Ticket {
        /// The ticket as the registry holds it now.
        after: TicketRecord,
    },
    /// A new policy set was swapped in.
    Reload {
        /// The new set's digest.
        digest: String,
    },
}

impl Trigger {
    fn evidence(&self) -> Value {
        match self {
            Trigger::Ticket { after } => json!({"trigger": "ticket-change", "ticket": after}),
            Trigger::Reload { digest } => json!({"trigger": "policy-reload", "policy-set": digest}),
        }
    }
}

/// The request facts of a registry ticket, as a decision sees them (the
/// same filling as a new request's, see `Service::ticket_facts`).
pub(super) fn ticket_of(rec: &TicketRecord) -> Ticket {
    let opened_at = rec.opened_at.unwrap_or(rec.updated_at);
    Ticket {
        id: rec.id.clone(),
        state: rec.state,
        priority: rec.priority.unwrap_or(super::tickets::DEFAULT_PRIORITY),
        assignee: rec.assignee.clone(),
        opened_at: u64::try_from(opened_at / 1000).unwrap_or(0),
    }
}

/// Whether a ticket change touches what a decision may look at.
pub(super) fn facts_changed(before: Option<&TicketRecord>, after: &TicketRecord) -> bool {
    before.is_none_or(|b| {
        b.state != after.state || b.assignee != after.assignee || b.priority != after.priority
    })
}

/// Why `grant` (as stored now) may no longer stand under `decision`; `None`
/// when it still may.
fn no_longer_allowed(grant: &Grant, decision: &Decision) -> Option<String> {
    let reasons = decision.reasons.join("; ");
    match decision.outcome {
        Outcome::Allow => None,
        Outcome::Deny => Some(reasons),
        Outcome::RequireApproval if grant.state == GrantState::Pending => None,
        Outcome::RequireApproval => {
            // Would its approvals meet what is asked now?
            let mut asked = grant.clone();
            asked.required = decision.approvals.clone();
            let unmet = asked.unmet();
            if unmet.is_empty() {
                return None;
            }
            let groups: Vec<String> = unmet.iter().map(|r| r.groups.join(" or ")).collect();
            Some(format!(
                "now needs approval it does not have ({}): {reasons}",
                groups.join(", ")
            ))
        }
    }
}

impl Service {
    /// Decide the live grants of ticket `after` again after its facts
    /// changed; the ids of those revoked.
    pub(super) fn reverify_ticket(
        &self,
        after: &TicketRecord,
        actor: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let ids = self.store.open_grants_of_ticket(&after.id)?;
        let trigger = Trigger::Ticket {
            after: after.clone(),
        };
        let mut revoked = Vec::new();
        for id in ids {
            if self.reverify_grant(&id, Some(after), &trigger, actor)? {
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    /// Decide every active (or provisioning) grant again against the
    /// running policy set (`reverify-on-reload`); the ids of those revoked.
    pub fn reverify_all(&self, actor: &str) -> Result<Vec<String>, ServiceError> {
        let trigger = Trigger::Reload {
            digest: self.engine().policy_set().digest.clone(),
        };
        let mut ids = Vec::new();
        for state in [GrantState::Active, GrantState::Provisioning] {
            let mut before = None;
            loop {
                let page = self.store.grants(&GrantFilter {
                    state: Some(state),
                    limit: 500,
                    before: before.clone(),
                    ..GrantFilter::default()
                })?;
                ids.extend(page.iter().map(|g| g.id.clone()));
                match page.last() {
                    Some(last) if page.len() == 500 => {
                        before = Some((last.created_at, last.id.clone()));
                    }
                    _ => break,
                }
            }
        }
        let mut revoked = Vec::new();
        for id in ids {
            let ticket = match self.store.grant(&id)?.and_then(|g| g.request.ticket) {
                Some(t) => self.store.ticket(&t.id)?,
                None => None,
            };
            if self.reverify_grant(&id, ticket.as_ref(), &trigger, actor)? {
                revoked.push(id);
            }
        }
        if !revoked.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(revoked)
    }

    /// Decide grant `id` again (with `ticket`'s current facts when given)
    /// and revoke it if the decision no longer allows it. Whether it was
    /// revoked.
    fn reverify_grant(
        &self,
        id: &str,
        ticket: Option<&TicketRecord>,
        trigger: &Trigger,
        actor: &str,
    ) -> Result<bool, ServiceError> {
        if ticket.is_some_and(|t| t.state.is_finished()) {
            return Ok(false);
        }
        let Some(grant) = self.store.grant(id)? else {
            return Ok(false);
        };
        if !matches!(
            grant.state,
            GrantState::Active | GrantState::Pending | GrantState::Provisioning
        ) {
            return Ok(false);
        }
        let mut req: Request = grant.request.clone();
        if let (Some(rec), Some(t)) = (ticket, req.ticket.as_mut())
            && t.id == rec.id
        {
            *t = ticket_of(rec);
        }
        let decision = match self.decide(req.clone()) {
            Ok((_, Ok(d))) => d,
            Ok((_, Err(e))) => {
                // The recorded request no longer validates (a task no
                // longer known to the policy set): nothing allows it.
                tracing::info!(grant = id, error = %e, "re-verified request is invalid");
                Decision {
                    request_id: req.id.clone(),
                    task: req.task.clone(),
                    outcome: Outcome::Deny,
                    ttl: 0,
                    ttl_bound: None,
                    revoke_on_ticket_close: false,
                    approvals: Vec::new(),
                    reasons: vec![format!("the request is no longer valid: {e}")],
                    policies: Vec::new(),
                    policy_set: self.engine().policy_set().digest.clone(),
                    micros: 0,
                }
            }
            Err(e) => {
                tracing::warn!(grant = id, error = %e, "re-verification could not decide; grant left as it is");
                return Ok(false);
            }
        };
        if decision.policies.iter().any(|p| p.failure.is_some()) {
            tracing::warn!(
                grant = id,
                "a policy failed while re-verifying; grant left as it is"
            );
            return Ok(false);
        }
        let now = self.now();
        let mut evidence = trigger.evidence();
        evidence["request"] = json!(req);
        evidence["decision"] = json!(decision);
        let mut revoked = false;
        self.store.update_grant::<ServiceError>(id, &mut |g| {
            revoked = false;
            if !matches!(
                g.state,
                GrantState::Active | GrantState::Pending | GrantState::Provisioning
            ) {
                return Ok(None);
            }
            let Some(why) = no_longer_allowed(g, &decision) else {
                return Ok(None);
            };
            let reason = format!("re-verified: {why}");
            let Ok(mut fx): Result<Effects, _> = g.apply(GrantEvent::Revoke { reason }, actor, now)
            else {
                return Ok(None);
            };
            if let Some(record) = fx.audit.last_mut() {
                record.data["reverified"] = evidence.clone();
            }
            revoked = true;
            Ok(Some(fx))
        })?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ApprovalRequirement;
    use crate::grant::Approval;

    fn decision(outcome: Outcome, approvals: Vec<ApprovalRequirement>) -> Decision {
        Decision {
            request_id: "r".into(),
            task: "t".into(),
            outcome,
            ttl: 60,
            ttl_bound: None,
            revoke_on_ticket_close: false,
            approvals,
            reasons: vec!["p: why".into()],
            policies: Vec::new(),
            policy_set: String::new(),
            micros: 0,
        }
    }

    fn needs(group: &str, min: u8) -> Vec<ApprovalRequirement> {
        vec![ApprovalRequirement {
            policy: "p".into(),
            groups: vec![group.into()],
            min,
        }]
    }

    fn grant(state: GrantState, approved_by: &[&str]) -> Grant {
        let request = crate::request::from_json(
            r#"{"id":"r1","subject":{"id":"alice","kind":"human"},"task":"t","resource":"x","entitlement":"e",
                "justification":"j","requested-ttl":60,"now":0}"#,
        )
        .unwrap_or_else(|e| panic!("request: {e}"));
        Grant {
            id: "g-1".into(),
            requested_by: "pipe".into(),
            state,
            outcome: Outcome::Allow,
            decision: json!({}),
            approvals: approved_by
                .iter()
                .map(|grp| Approval {
                    approver: format!("someone-in-{grp}"),
                    groups: vec![(*grp).into()],
                    at: 0,
                    sign_in: None,
                })
                .collect(),
            ttl: 60,
            ..Grant::of(request)
        }
    }

    #[test]
    fn a_deny_ends_any_live_grant_and_an_allow_none() {
        for state in [GrantState::Active, GrantState::Pending] {
            let g = grant(state, &[]);
            assert_eq!(
                no_longer_allowed(&g, &decision(Outcome::Deny, vec![])).as_deref(),
                Some("p: why")
            );
            assert_eq!(
                no_longer_allowed(&g, &decision(Outcome::Allow, vec![])),
                None
            );
        }
    }

    #[test]
    fn needing_approval_ends_an_active_grant_only_without_those_approvals() {
        let ask = decision(Outcome::RequireApproval, needs("leads", 1));
        let unapproved = grant(GrantState::Active, &[]);
        let why = no_longer_allowed(&unapproved, &ask).unwrap_or_default();
        assert!(why.contains("leads"), "{why}");
        assert_eq!(
            no_longer_allowed(&grant(GrantState::Active, &["leads"]), &ask),
            None
        );
        let two = decision(Outcome::RequireApproval, needs("leads", 2));
        assert!(no_longer_allowed(&grant(GrantState::Active, &["leads"]), &two).is_some());
        // A pending grant still waits for its approvers.
        assert_eq!(
            no_longer_allowed(&grant(GrantState::Pending, &[]), &ask),
            None
        );
    }
}
