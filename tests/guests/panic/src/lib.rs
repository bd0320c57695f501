//! `panic`: a policy whose `evaluate` panics.
//!
//! Models a policy bug (an `unwrap` on `None`, an index out of range). With
//! `panic = "abort"` the SDK's panic handler logs the message at error level
//! and executes `unreachable`. `info` is well behaved, so the module loads;
//! the host must turn the trap into a deny with a typed trap reason, and may
//! show the logged message `policy bug: boom`.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// The policy.
pub struct Panic;

impl Policy for Panic {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "panic",
            "0.1.0",
            "hostile: evaluate panics",
            &["hostile-panic"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        // The condition is opaque to the optimiser, so the allow below stays
        // a possible outcome and the panic cannot be treated as dead code.
        if black_box(true) {
            panic!("policy bug: boom");
        }
        Verdict::allow(60, "unreachable: did not panic")
    }
}

export_policy!(Panic);
