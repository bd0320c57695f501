//! A decision and its explanation, and the rule that combines verdicts.
//!
//! The combination is a pure function of the policies' results and the caps
//! ([`combine::combine`]), kept apart from the sandbox so it can be tested
//! exhaustively without wasm.

pub mod combine;

use serde::{Deserialize, Serialize};

use crate::policy::sandbox::{LogLine, PolicyFailure};

/// The overall answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// What one policy answered, as its trace records it: the verdict's kind,
/// or `error` when the policy gave none.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceVerdict {
    /// Grant now.
    Allow,
    /// Refuse.
    Deny,
    /// Grant once the policy's approval requirement is met.
    RequireApproval,
    /// The policy has no opinion on this request.
    NotApplicable,
    /// The policy failed (trap, timeout, limits, malformed answer): a deny.
    Error,
}

impl TraceVerdict {
    /// The contract's spelling, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceVerdict::Allow => "allow",
            TraceVerdict::Deny => "deny",
            TraceVerdict::RequireApproval => "require-approval",
            TraceVerdict::NotApplicable => "not-applicable",
            TraceVerdict::Error => "error",
        }
    }
}

impl std::fmt::Display for TraceVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for TraceVerdict {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Severity of a line a policy logged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Detail for policy authors.
    Debug,
    /// Informational.
    Info,
    /// Something looked wrong.
    Warn,
    /// The policy failed; the last such line is quoted in a trap's reason.
    Error,
}

impl LogLevel {
    /// The contract's spelling, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for LogLevel {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What one policy said, as shown to requesters and auditors.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyTrace {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// `sha256:` digest of the module that ran.
    pub digest: String,
    /// What it answered, or `error`.
    pub verdict: TraceVerdict,
    /// The policy's reason, or the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// TTL the policy offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The typed failure, when `verdict` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub failure: Option<PolicyFailure>,
    /// Lines the policy logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub logs: Vec<LogLine>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time, microseconds (instantiate + evaluate).
    pub micros: u64,
}

/// The engine's answer to one request, with everything needed to explain it.
/// Stored as JSON with the grant and its audit record, and read back from
/// there as it was.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRequirement>,
    /// Why, one line per contributing policy, `name: reason`.
    pub reasons: Vec<String>,
    /// Every selected policy's verdict, in evaluation order.
    pub policies: Vec<PolicyTrace>,
    /// Digest of the policy set that decided (see
    /// [`crate::policy_set::SetInfo::digest`]); empty in decisions stored
    /// before sets had digests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_set: String,
    /// Total wall time, microseconds.
    pub micros: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(name: &str, verdict: TraceVerdict) -> PolicyTrace {
        PolicyTrace {
            name: name.into(),
            version: "1.0.0".into(),
            digest: "sha256:00ff".into(),
            verdict,
            reason: None,
            ttl: None,
            failure: None,
            logs: Vec::new(),
            fuel: 1234,
            micros: 56,
        }
    }

    /// A decision with every optional part filled and one without: the
    /// explanation stored with a grant must read back as what was decided.
    #[test]
    fn a_stored_decision_reads_back_as_the_decision() {
        let mut traces = vec![
            trace("a", TraceVerdict::Allow),
            trace("b", TraceVerdict::Deny),
            trace("c", TraceVerdict::RequireApproval),
            trace("d", TraceVerdict::NotApplicable),
            trace("e", TraceVerdict::Error),
        ];
        traces[0].ttl = Some(600);
        traces[0].reason = Some("ok\nfine".into());
        traces[0].logs = [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ]
        .into_iter()
        .map(|level| LogLine {
            level,
            message: format!("{level} line"),
        })
        .collect();
        traces[4].failure = Some(PolicyFailure::OutOfFuel { fuel: 7 });
        traces[4].reason = Some("ran out of fuel (7 units)".into());
        let full = Decision {
            request_id: "r-1".into(),
            task: "file-recovery".into(),
            outcome: Outcome::RequireApproval,
            ttl: 600,
            ttl_bound: Some("policy a ttl".into()),
            revoke_on_ticket_close: true,
            approvals: vec![ApprovalRequirement {
                policy: "c".into(),
                groups: vec!["leads".into()],
                min: 2,
            }],
            reasons: vec!["c: needs a lead".into()],
            policies: traces,
            policy_set: "sha256:5e7".into(),
            micros: 99,
        };
        let bare = Decision {
            outcome: Outcome::Deny,
            ttl: 0,
            ttl_bound: None,
            revoke_on_ticket_close: false,
            approvals: Vec::new(),
            policies: vec![trace("d", TraceVerdict::NotApplicable)],
            policy_set: String::new(),
            ..full.clone()
        };
        for d in [full, bare] {
            let stored = serde_json::to_value(&d).expect("serialise");
            let back: Decision = serde_json::from_value(stored.clone()).expect("parse back");
            assert_eq!(back, d, "{stored}");
        }
    }

    /// Stored records and fixtures keep their meaning: the enums spell
    /// exactly the strings the explanation used before they were typed.
    #[test]
    fn verdicts_and_log_levels_keep_their_json_spelling() {
        let verdicts = [
            (TraceVerdict::Allow, "allow"),
            (TraceVerdict::Deny, "deny"),
            (TraceVerdict::RequireApproval, "require-approval"),
            (TraceVerdict::NotApplicable, "not-applicable"),
            (TraceVerdict::Error, "error"),
        ];
        for (v, s) in verdicts {
            assert_eq!(serde_json::to_value(v).ok(), Some(s.into()));
            assert_eq!((v.as_str(), v.to_string()), (s, s.to_string()));
            assert_eq!(v, s);
        }
        let levels = [
            (LogLevel::Trace, "trace"),
            (LogLevel::Debug, "debug"),
            (LogLevel::Info, "info"),
            (LogLevel::Warn, "warn"),
            (LogLevel::Error, "error"),
        ];
        for (l, s) in levels {
            assert_eq!(serde_json::to_value(l).ok(), Some(s.into()));
            assert_eq!((l.as_str(), l.to_string()), (s, s.to_string()));
        }
        // Width applies, as the `eval` table relies on.
        assert_eq!(format!("[{:<8}]", TraceVerdict::Deny), "[deny    ]");
    }

    #[test]
    fn an_unknown_verdict_is_refused_naming_it() {
        let mut v = serde_json::to_value(trace("a", TraceVerdict::Allow)).expect("serialise");
        v["verdict"] = "maybe".into();
        let e = serde_json::from_value::<PolicyTrace>(v).expect_err("refused");
        assert!(e.to_string().contains("maybe"), "{e}");
    }
}
