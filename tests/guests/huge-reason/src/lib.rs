//! `huge-reason`: a policy whose `evaluate` returns a 10 MiB reason.
//!
//! Models a policy that tries to flood the audit log or the host's memory
//! through its output. The verdict is otherwise a well-formed allow. `info` is
//! well behaved, so the module loads; the host must refuse the oversized
//! output and deny the request with a typed bad-output reason (never store or
//! echo the 10 MiB string).
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// Length of the reason: 10 MiB.
const REASON_LEN: usize = 10 << 20;

/// The policy.
pub struct HugeReason;

impl Policy for HugeReason {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "huge-reason",
            "0.1.0",
            "hostile: evaluate returns a 10 MiB reason",
            &["hostile-huge-reason"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        let reason = "A".repeat(black_box(REASON_LEN));
        Verdict::allow(60, black_box(reason))
    }
}

export_policy!(HugeReason);
