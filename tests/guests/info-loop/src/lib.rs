//! `info-loop`: a policy whose `info` never returns.
//!
//! Models a module that hangs while being loaded. The host calls `info` once,
//! at load time, so it must bound that call too (fuel or epoch deadline) and
//! fail the load with a clear timeout error naming the module, instead of
//! hanging start-up. `evaluate` is harmless; it is never reached.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// The policy.
pub struct InfoLoop;

impl Policy for InfoLoop {
    fn info() -> PolicyInfo {
        // `black_box` keeps every iteration observable and the exit condition
        // opaque, so the loop stays and the info below is never returned.
        let mut spins: u64 = 0;
        while black_box(true) {
            spins = black_box(spins).wrapping_add(1);
        }
        PolicyInfo::new(
            "info-loop",
            "0.1.0",
            "hostile: info spins forever",
            &["hostile-info-loop"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        Verdict::not_applicable()
    }
}

export_policy!(InfoLoop);
