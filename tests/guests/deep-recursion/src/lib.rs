//! `deep-recursion`: a policy whose `evaluate` recurses without bound.
//!
//! Models a policy with runaway recursion. Every frame holds a local array
//! (kept in memory by `black_box`) and uses the callee's result after the
//! call returns, so the recursion can be neither removed nor turned into a
//! loop. `info` is well behaved, so the module loads; the host must stop the
//! guest when its stack is exhausted and deny the request with a typed
//! stack-overflow reason, never overflow its own stack.
//!
//! Two stacks run out here: the engine's call stack (wasmtime's
//! `max_wasm_stack`, 512 KiB by default) and Rust's shadow stack in linear
//! memory (1 MiB, placed first by the linker), which holds the array.
//! The array is kept small on purpose so that the engine's stack runs out
//! first (measured with wasmtime 48: `Trap::StackOverflow` for any
//! `max_wasm_stack` up to 1 MiB). With a 256 B array, or a `max_wasm_stack`
//! of 1.5 MiB, the shadow stack runs out first instead: the stack pointer
//! wraps below address 0 and the trap is `Trap::MemoryOutOfBounds`.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// Bytes of local array per frame (see the crate doc before raising it).
const FRAME: usize = 16;

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
