//! `bad-approval`: a policy whose `evaluate` returns a malformed verdict.
//!
//! Models a buggy policy that asks for approval by nobody: a require-approval
//! with no approver groups and `min-approvals` 0, which the contract forbids
//! (at least one approver). Accepted naively it would be an approval that
//! needs no approver, i.e. a grant. `info` is well behaved, so the module
//! loads; the host must validate the verdict and deny the request with a typed
//! bad-output reason.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// The policy.
pub struct BadApproval;

impl Policy for BadApproval {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "bad-approval",
            "0.1.0",
            "hostile: evaluate asks for approval by nobody",
            &["hostile-bad-approval"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups: Vec::new(),
            min_approvals: black_box(0),
            ttl: 600,
            reason: String::from("approval by nobody"),
            revoke_on_ticket_close: false,
        })
    }
}

export_policy!(BadApproval);
