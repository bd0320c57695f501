//! Who is calling, and what each role may do.
//!
//! Bearer tokens map (in config, stored as sha256 hashes) to a principal: a
//! name, API roles and directory groups. A `requester` acts only for itself:
//! the request's subject must be the principal, and its roles and groups are
//! the ones the configuration gives that principal, never what the body
//! claims. A `pipeline` acts for its users and is trusted to pass the
//! identity provider's view of them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::ServiceError;
use crate::grant::Grant;
use crate::request::Request;

/// An API role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Asks for access for itself.
    Requester,
    /// An approval pipeline acting for its users.
    Pipeline,
    /// Approves or rejects what policy escalates.
    Approver,
    /// Revokes, manages policies.
    Admin,
    /// Reads and verifies the audit log; closes reviews.
    Auditor,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name; for requesters, their subject id.
    pub name: String,
    /// API roles.
    pub roles: BTreeSet<Role>,
    /// Directory groups (approver eligibility, requester's subject groups).
    pub groups: Vec<String>,
    /// Job roles a requester's subject carries.
    pub subject_roles: Vec<String>,
}

impl Principal {
    /// A caller named `name` holding `roles`, in no groups. An embedder
    /// authenticates its callers itself and hands the service this.
    pub fn new(name: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Principal {
            name: name.into(),
            roles: roles.into_iter().collect(),
            groups: Vec::new(),
            subject_roles: Vec::new(),
        }
    }

    /// With directory `groups` (approver eligibility; a requester's
    /// subject groups).
    pub fn with_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// With the job roles a requester's subject carries.
    pub fn with_subject_roles<S: Into<String>>(
        mut self,
        roles: impl IntoIterator<Item = S>,
    ) -> Self {
        self.subject_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Holds one of `roles`, else 403.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ServiceError> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<String> = roles
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                })
                .collect();
            Err(ServiceError::Forbidden(format!(
                "{} needs one of the roles: {}",
                self.name,
                names.join(", ")
            )))
        }
    }

    /// Only a plain requester: sees and acts on its own grants only.
    pub fn sees_only_own(&self) -> bool {
        !self.roles.iter().any(|r| {
            matches!(
                r,
                Role::Pipeline | Role::Approver | Role::Admin | Role::Auditor
            )
        })
    }

    /// Check and fix the request's subject for this caller.
    pub fn authorize_subject(&self, req: &mut Request) -> Result<(), ServiceError> {
        if self.has(Role::Pipeline) || self.has(Role::Admin) {
            return Ok(());
        }
        if req.subject.id != self.name {
            return Err(ServiceError::Forbidden(format!(
                "a requester may only request for itself ({} asked for {})",
                self.name, req.subject.id
            )));
        }
        req.subject.roles = self.subject_roles.clone();
        req.subject.groups = self.groups.clone();
        Ok(())
    }

    /// May this caller see `g`?
    pub fn may_see(&self, g: &Grant) -> Result<(), ServiceError> {
        if self.sees_only_own() && g.request.subject.id != self.name {
            return Err(ServiceError::Forbidden(
                "a requester may only see their own grants".into(),
            ));
        }
        Ok(())
    }
}
