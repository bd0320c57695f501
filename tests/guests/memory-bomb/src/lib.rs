//! `memory-bomb`: a policy whose `evaluate` allocates memory until it runs out.
//!
//! Models a policy that leaks or hoards memory: it keeps allocating 1 MiB
//! blocks, writes to every byte (so the pages are really committed) and never
//! frees them. `info` is well behaved, so the module loads; the host must cap
//! the instance's linear memory and deny the request with a typed
//! memory-limit reason, without the host process growing with it.
//!
//! Once the host refuses `memory.grow`, the allocator returns null, `alloc`'s
//! error handler panics, the SDK's panic handler logs "memory allocation of
//! 1048576 bytes failed" and executes `unreachable`. So the host sees
//! `Trap::UnreachableCodeReached`, not a memory error: to give the typed
//! memory-limit reason it must remember that its limiter refused a growth
//! (or make refusal itself trap, `trap_on_grow_failure`).
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// One block: 1 MiB.
const BLOCK: usize = 1 << 20;

/// The policy.
pub struct MemoryBomb;

impl Policy for MemoryBomb {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "memory-bomb",
            "0.1.0",
            "hostile: evaluate allocates memory without bound",
            &["hostile-memory"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        let mut n: u8 = 0;
        loop {
            let mut block = Vec::with_capacity(BLOCK);
            // A non-zero fill touches every page (a zeroed allocation could
            // be satisfied by fresh pages without writing them).
            block.resize(BLOCK, black_box(n | 1));
            hoard.push(black_box(block));
            black_box(&mut hoard);
            n = n.wrapping_add(1);
        }
    }
}

export_policy!(MemoryBomb);
