//! `deep-recursion`: a policy whose `evaluate` recurses without bound.
//!
//! Models a policy with runaway recursion. Every frame holds a 1 KiB local
//! array and uses the callee's result after the call returns, so the
//! recursion cannot be turned into a loop. `info` is well behaved, so the
//! module loads; the host must stop the guest when its stack is exhausted and
//! deny the request with a typed stack-overflow reason (or, at worst, a trap),
//! never overflow its own stack.
//!
//! Note: the array lives on Rust's shadow stack in linear memory (1 MiB,
//! placed first by the linker), which overflows long before the engine's call
//! stack does; overflowing it moves the stack pointer below address 0, so the
//! engine reports an out-of-bounds memory access rather than call-stack
//! exhaustion.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// Bytes of local array per frame.
const FRAME: usize = 1024;

/// The policy.
pub struct DeepRecursion;

impl Policy for DeepRecursion {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "deep-recursion",
            "0.1.0",
            "hostile: evaluate recurses without bound",
            &["hostile-recursion"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        let depth = dive(black_box(0));
        Verdict::deny(format!("unreachable: recursion returned at depth {depth}"))
    }
}

/// Recurse forever, using the stack on the way down and the result on the way up.
#[inline(never)]
#[allow(unconditional_recursion)] // Unbounded recursion is this guest's whole point.
fn dive(depth: u64) -> u64 {
    let mut frame = [0u8; FRAME];
    frame[depth as usize % FRAME] = depth as u8;
    // Passing the array through `black_box` forces it into memory.
    let frame = black_box(frame);
    let below = dive(black_box(depth + 1));
    // Non-tail: the frame is still needed after the call.
    below.wrapping_add(u64::from(frame[below as usize % FRAME]))
}

export_policy!(DeepRecursion);
