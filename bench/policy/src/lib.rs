//! `bench-policy`: the file-recovery rule under a name chosen at build time.
//!
//! The start-up benchmark needs 50 *distinct* modules (distinct digests and
//! distinct `info().name`s, so none is a cache hit for another and none is
//! refused as a duplicate). `bench/run.sh` builds this crate once with
//! `JITGATE_BENCH_POLICY_NAME=bench-policy-00` (`option_env!` bakes it in,
//! and cargo rebuilds when the variable changes); `jitgate-bench startup
//! --module` then rewrites those name bytes to `bench-policy-01`…`50`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The name baked in at build time (a plain `cargo check` gets a default).
pub const NAME: &str = match option_env!("JITGATE_BENCH_POLICY_NAME") {
    Some(n) => n,
    None => "bench-policy",
};

/// The policy.
pub struct BenchPolicy;

impl Policy for BenchPolicy {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            NAME,
            "0.1.0",
            "start-up benchmark policy (the file-recovery rule)",
            &[NAME],
            3600,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        if !req.subject.has_role("helpdesk") {
            return Verdict::deny("file recovery requires the helpdesk role");
        }
        match req.ticket.as_ref().filter(|t| t.is_active()) {
            Some(t) if t.assignee.as_ref().is_none_or(|a| *a == req.subject.id) => {
                Verdict::allow_until_ticket_closed(
                    clamp_ttl(req.requested_ttl, 3600),
                    "helpdesk file recovery",
                )
            }
            _ => Verdict::deny("file recovery requires an active ticket assigned to the requester"),
        }
    }
}

export_policy!(BenchPolicy);
