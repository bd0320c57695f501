//! Grants: the time-boxed elevated state a decision creates, and the only
//! ways it may change.
//!
//! ```text
//! pending ──approve──▶ active ──▶ expired | revoked | released
//!    └──▶ rejected | lapsed | revoked
//! denied (terminal: a refused request, kept for idempotency and evidence)
//! ```
//! A grant whose entitlement is provisioned at a target
//! (`[[entitlements]]`, see [`crate::provision::targets`]) takes the longer
//! road, so `active` always means "applied and read back at the target":
//! ```text
//! pending ──▶ provisioning ──read back──▶ active ──end──▶ deprovisioning ──read back──▶ expired | revoked | released
//!                  └──refused after retries / ended──▶ deprovisioning ──read back──▶ failed (or the end asked for)
//! ```
//! Every change goes through [`Grant::apply`], whose edges are
//! [`GrantState::can_become`]; an illegal one is a typed error, never a
//! silent no-op.

use serde::{Deserialize, Serialize};

use crate::decision::ApprovalRequirement;
use crate::request::Request;

mod lifecycle;
pub use lifecycle::{
    GrantEvent, IllegalTransition, PROVISION_APPLY, PROVISION_REMOVE, identity_key,
};

mod aliases;
pub use aliases::IdentityAliases;

/// Unix milliseconds.
pub type Millis = i64;

/// Where a grant is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantState {
    /// Waiting for approvals.
    Pending,
    /// In force until `expires-at`.
    Active,
    /// Ended at its expiry.
    Expired,
    /// Ended early by an admin or a ticket event.
    Revoked,
    /// Ended early by its holder.
    Released,
    /// An approver refused it.
    Rejected,
    /// Nobody approved it in time.
    Lapsed,
    /// The decision was deny.
    Denied,
    /// Decided (and approved); its access is being applied at the target
    /// and is not yet read back.
    Provisioning,
    /// Ended (or failed); its access is being removed at the target and
    /// the removal is not yet read back. [`Grant::provisioning`] holds the
    /// final state it will reach.
    Deprovisioning,
    /// The target refused the access after retries; whatever was applied
    /// has been removed.
    Failed,
}

impl GrantState {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Released => "released",
            GrantState::Rejected => "rejected",
            GrantState::Lapsed => "lapsed",
            GrantState::Denied => "denied",
            GrantState::Provisioning => "provisioning",
            GrantState::Deprovisioning => "deprovisioning",
            GrantState::Failed => "failed",
        }
    }

    /// Parse the kebab-case name.
    pub fn parse(s: &str) -> Option<GrantState> {
        [
            GrantState::Pending,
            GrantState::Active,
            GrantState::Expired,
            GrantState::Revoked,
            GrantState::Released,
            GrantState::Rejected,
            GrantState::Lapsed,
            GrantState::Denied,
            GrantState::Provisioning,
            GrantState::Deprovisioning,
            GrantState::Failed,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }

    /// The lifecycle's edges.
    pub fn can_become(self, to: GrantState) -> bool {
        use GrantState::*;
        matches!(
            (self, to),
            (Pending, Active | Provisioning | Rejected | Lapsed | Revoked)
                | (Active, Expired | Revoked | Released | Deprovisioning)
                | (Provisioning, Active | Deprovisioning)
                | (Deprovisioning, Expired | Revoked | Released | Failed)
        )
    }

    /// No further change is possible.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            GrantState::Pending
                | GrantState::Active
                | GrantState::Provisioning
                | GrantState::Deprovisioning
        )
    }
}

/// One approval given.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Approval {
    /// Who approved.
    pub approver: String,
    /// The approver's groups at the time (what made them eligible).
    pub groups: Vec<String>,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
    /// The identity-provider sign-in the approver proved itself with;
    /// absent for a static token (and in rows written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<SignIn>,
}

/// Which identity provider vouched for a caller, and the token that did:
/// an auditor can match an approval to the IdP's own sign-in log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SignIn {
    /// The configured provider's `name`.
    pub identity_provider: String,
    /// The token's `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The sign-in session (`sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// A grant and its whole history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Grant {
    /// Server-chosen id.
    pub id: String,
    /// The request as decided (with the server's `now`).
    pub request: Request,
    /// sha256 of the request body as received, for idempotency.
    pub body_hash: String,
    /// Who sent it.
    pub requested_by: String,
    /// Current state.
    pub state: GrantState,
    /// Outcome of the decision.
    pub outcome: crate::decision::Outcome,
    /// The approval requirements the decision set (all must be met).
    #[serde(default)]
    pub required: Vec<ApprovalRequirement>,
    /// The decision as explained at the time: every policy's verdict,
    /// reason, version and digest (a [`crate::Decision`] serialized).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::decision::Decision))]
    pub decision: serde_json::Value,
    /// Approvals given so far.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Duration once active, seconds.
    pub ttl: u32,
    /// End with the ticket.
    pub revoke_on_ticket_close: bool,
    /// A break-glass task (reviewed afterwards).
    pub break_glass: bool,
    /// Created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    /// Became active.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub issued_at: Option<Millis>,
    /// Active until.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Millis>,
    /// Pending until (then lapses).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub lapses_at: Option<Millis>,
    /// Ended.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Millis>,
    /// Who or what ended it (`scheduler`, `ticket INC-1`, a principal).
    pub ended_by: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// For expiries: ended_at − expires_at, milliseconds.
    pub revocation_lag_ms: Option<i64>,
    /// Set when the stored document was damaged and this grant was salvaged
    /// from the row's columns (see `store::quarantine`): why it did not
    /// parse. Such a grant may only be ended, never approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
    /// Where the access is applied, for an entitlement mapped by
    /// `[[entitlements]]`; absent for grants that are only announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// A secret made for this grant (a dynamic database password), in the
    /// answer to the request that created it and nowhere else: never
    /// stored, audited or read back.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// Where and how a grant's access is applied at its target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provisioning {
    /// The `[[provisioners]]` name.
    pub provisioner: String,
    /// The group (DN or SCIM displayName) or role, fixed when the grant
    /// was decided so a config change cannot make removal miss.
    pub target: String,
    /// A login made for this grant (`dynamic = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The login's password as a SCRAM-SHA-256 verifier (never the clear
    /// password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// While deprovisioning: the state reached once removal is read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_as: Option<GrantState>,
    /// Access read back as applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub applied_at: Option<Millis>,
    /// Access read back as removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub removed_at: Option<Millis>,
    /// The last error from the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A login made for a grant, shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Credential {
    /// The login name.
    pub login: String,
    /// The password in clear.
    pub password: String,
}

impl Grant {
    /// A grant of `request` with nothing decided yet: no id, state
    /// `denied`, outcome `deny`, no approvals, no times but `created_at` 0,
    /// nothing ended, provisioned or quarantined. The base of a struct
    /// literal that states only what its path decided:
    /// `Grant { id, state, ttl, ..Grant::of(request) }`.
    pub fn of(request: Request) -> Grant {
        Grant {
            id: String::new(),
            request,
            body_hash: String::new(),
            requested_by: String::new(),
            state: GrantState::Denied,
            outcome: crate::decision::Outcome::Deny,
            required: Vec::new(),
            decision: serde_json::Value::Null,
            approvals: Vec::new(),
            ttl: 0,
            revoke_on_ticket_close: false,
            break_glass: false,
            created_at: 0,
            issued_at: None,
            expires_at: None,
            lapses_at: None,
            ended_at: None,
            ended_by: None,
            end_reason: None,
            revocation_lag_ms: None,
            quarantined: None,
            provisioning: None,
            credential: None,
        }
    }

    /// The ticket id, if any.
    pub fn ticket_id(&self) -> Option<&str> {
        self.request.ticket.as_ref().map(|t| t.id.as_str())
    }

    /// The approval requirements still unmet.
    pub fn unmet(&self) -> Vec<&ApprovalRequirement> {
        self.required
            .iter()
            .filter(|req| {
                let n = self
                    .approvals
                    .iter()
                    .filter(|a| a.groups.iter().any(|g| req.groups.contains(g)))
                    .count();
                n < req.min as usize
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::GrantState::*;

    #[test]
    fn lifecycle_edges() {
        let all = [
            Pending,
            Active,
            Expired,
            Revoked,
            Released,
            Rejected,
            Lapsed,
            Denied,
            Provisioning,
            Deprovisioning,
            Failed,
        ];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Active),
                (Pending, Revoked),
                (Pending, Rejected),
                (Pending, Lapsed),
                (Pending, Provisioning),
                (Active, Expired),
                (Active, Revoked),
                (Active, Released),
                (Active, Deprovisioning),
                (Provisioning, Active),
                (Provisioning, Deprovisioning),
                (Deprovisioning, Expired),
                (Deprovisioning, Revoked),
                (Deprovisioning, Released),
                (Deprovisioning, Failed),
            ]
        );
        for s in all {
            assert_eq!(super::GrantState::parse(s.as_str()), Some(s));
            assert_eq!(
                s.is_final(),
                !matches!(s, Pending | Active | Provisioning | Deprovisioning)
            );
        }
    }
}

#[cfg(test)]
mod approval_tests {
    use super::*;
    use crate::decision::Outcome;

    fn pending(required: Vec<ApprovalRequirement>) -> Grant {
        let req = crate::request::from_json(
            r#"{"id":"r","subject":{"id":"alice","kind":"human"},"task":"t","resource":"x","entitlement":"e",
                "justification":"j","requested-ttl":60,"now":0}"#,
        )
        .expect("request");
        Grant {
            id: "g".into(),
            requested_by: "alice".into(),
            state: GrantState::Pending,
            outcome: Outcome::RequireApproval,
            required,
            ttl: 60,
            ..Grant::of(req)
        }
    }

    fn req(policy: &str, groups: &[&str], min: u8) -> ApprovalRequirement {
        ApprovalRequirement {
            policy: policy.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            min,
        }
    }

    fn approve(g: &mut Grant, who: &str, groups: &[&str]) {
        g.approvals.push(Approval {
            approver: who.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            at: 0,
            sign_in: None,
        });
    }

    #[test]
    fn one_approval_counts_toward_every_requirement_it_matches() {
        let mut g = pending(vec![
            req("saas-admin", &["saas-owners"], 1),
            req("business-hours", &["helpdesk-leads"], 1),
        ]);
        assert_eq!(g.unmet().len(), 2);
        approve(&mut g, "bob", &["saas-owners", "helpdesk-leads"]);
        assert!(g.unmet().is_empty());
    }

    #[test]
    fn each_requirement_needs_its_own_quorum() {
        let mut g = pending(vec![req("a", &["owners"], 2), req("b", &["leads"], 1)]);
        approve(&mut g, "bob", &["owners"]);
        assert_eq!(g.unmet().len(), 2);
        approve(&mut g, "carol", &["owners", "leads"]);
        assert!(g.unmet().is_empty());
    }

    #[test]
    fn approvers_outside_the_groups_do_not_count() {
        let mut g = pending(vec![req("a", &["owners"], 1)]);
        approve(&mut g, "dave", &["finance"]);
        assert_eq!(g.unmet().len(), 1);
    }
}
