//! A decision and its explanation, and the rule that combines verdicts.
//!
//! The combination is a pure function of the policies' results and the caps
//! ([`combine::combine`]), kept apart from the sandbox so it can be tested
//! exhaustively without wasm.

pub mod combine;

use serde::Serialize;

use crate::policy::sandbox::{LogLine, PolicyFailure};

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Grant now.
    Allow,
    /// Refuse.
    Deny,
    /// Grant once every approval requirement is met.
    RequireApproval,
}

impl Outcome {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::RequireApproval => "require-approval",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One policy's approval requirement; all must be met.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ApprovalRequirement {
    /// The policy that asked for it.
    pub policy: String,
    /// An approver must belong to one of these.
    pub groups: Vec<String>,
    /// Distinct approvers needed.
    pub min: u8,
}

/// What one policy said, as shown to requesters and auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyTrace {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// `sha256:` digest of the module that ran.
    pub digest: String,
    /// `allow`, `deny`, `require-approval`, `not-applicable` or `error`.
    pub verdict: &'static str,
    /// The policy's reason, or the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// TTL the policy offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The typed failure, when `verdict` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<PolicyFailure>,
    /// Lines the policy logged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time, microseconds (instantiate + evaluate).
    pub micros: u64,
}

/// The engine's answer to one request, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Decision {
    /// The request's id.
    pub request_id: String,
    /// The request's task.
    pub task: String,
    /// Allow, deny or require-approval.
    pub outcome: Outcome,
    /// Seconds the grant may last (0 when denied).
    pub ttl: u32,
    /// What bound the TTL, e.g. `policy file-recovery ttl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_bound: Option<String>,
    /// End the grant when its ticket is resolved or closed.
    pub revoke_on_ticket_close: bool,
    /// Approval requirements (require-approval only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRequirement>,
    /// Why, one line per contributing policy, `name: reason`.
    pub reasons: Vec<String>,
    /// Every selected policy's verdict, in evaluation order.
    pub policies: Vec<PolicyTrace>,
    /// Total wall time, microseconds.
    pub micros: u64,
}
