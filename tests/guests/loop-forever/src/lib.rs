//! `loop-forever`: a policy whose `evaluate` never returns.
//!
//! Models a policy with an accidental infinite loop (or a deliberate attempt
//! to tie up the host). `info` is well behaved, so the module loads; the host
//! must interrupt `evaluate` (fuel or epoch deadline) and deny the request with
//! a typed timeout / out-of-fuel reason, without hanging the decision.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// The policy.
pub struct LoopForever;

impl Policy for LoopForever {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "loop-forever",
            "0.1.0",
            "hostile: evaluate spins forever",
            &["hostile-loop"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        // `black_box` makes every iteration an observable side effect, so the
        // optimiser can neither delete the loop nor prove it dead.
        let mut spins: u64 = 0;
        loop {
            spins = black_box(spins).wrapping_add(1);
        }
    }
}

export_policy!(LoopForever);
