//! The guest's heap: a small bump arena in front of dlmalloc.
//!
//! Why: a policy evaluation allocates a few dozen small blocks (the request's
//! strings, copied in by the host through `cabi_realloc`, and the verdict's
//! reason) and frees every one of them before the call ends. dlmalloc spends
//! one to two hundred wasm instructions on each malloc/free pair, and on a
//! fresh instance it first grows linear memory (a call into the host) and
//! writes its bookkeeping across several pages, each of which the host must
//! reset when the instance is recycled. Bumping a pointer through a static
//! arena costs a handful of instructions and dirties only the bytes used.
//!
//! How it stays correct: the arena counts live blocks. Freeing the topmost
//! block gives its bytes back; when the count reaches zero (a well-behaved
//! evaluation, after the host has freed the verdict) the whole arena is
//! reused from the start. Anything that does not fit, and everything once a
//! policy keeps a block alive across calls (a `static` cache in per-worker
//! isolation), goes to the fallback allocator, so a leak costs speed, never
//! memory safety or a spurious out-of-memory.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// Bytes in the arena: room for a request at the host's default bounds with
/// plenty to spare; larger requests spill to the fallback.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const ARENA_BYTES: usize = 64 * 1024;

#[repr(C, align(16))]
struct Bytes<const N: usize>([u8; N]);

// `repr(C)`, counters first: they share a page with the arena's first bytes,
// so a typical evaluation dirties one page of it, not two, and the host has
// one page fewer to reset when the instance is recycled.
#[repr(C)]
struct State<const N: usize> {
    /// Offset of the first free byte.
    top: usize,
    /// Blocks handed out and not yet freed.
    live: usize,
    mem: Bytes<N>,
}

/// A bump arena of `N` bytes in front of the allocator `F`.
///
/// Not thread-safe: a wasm guest is single-threaded, which is the only place
/// it is installed as the global allocator (see `__private`).
pub struct Arena<F, const N: usize> {
    state: UnsafeCell<State<N>>,
    fallback: F,
}

// SAFETY: installed only in single-threaded wasm guests; the native unit
// tests use one arena per test thread.
unsafe impl<F: Sync, const N: usize> Sync for Arena<F, N> {}

impl<F, const N: usize> Arena<F, N> {
    /// An empty arena.
    pub const fn new(fallback: F) -> Self {
        Arena {
            state: UnsafeCell::new(State {
                top: 0,
                live: 0,
                mem: Bytes([0; N]),
            }),
            fallback,
        }
    }

    fn base(&self) -> usize {
        // SAFETY: only the address is taken.
        unsafe { (*self.state.get()).mem.0.as_ptr() as usize }
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + N
    }

    /// Blocks currently live in the arena (not counting the fallback's).
    #[cfg(test)]
    pub fn live(&self) -> usize {
        // SAFETY: single-threaded; no reference outlives this read.
        unsafe { (*self.state.get()).live }
    }

    /// Bytes of the arena in use (up to the highest live block).
    #[cfg(test)]
    pub fn used(&self) -> usize {
        // SAFETY: as above.
        unsafe { (*self.state.get()).top }
    }

    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        // SAFETY: single-threaded; the mutable borrow ends in this function.
        let st = unsafe { &mut *self.state.get() };
        let base = st.mem.0.as_mut_ptr() as usize;
        let start = (base + st.top).checked_next_multiple_of(layout.align())? - base;
        let end = start.checked_add(layout.size())?;
        if end > N {
            return None;
        }
        st.top = end;
        st.live += 1;
        Some((base + start) as *mut u8)
    }
}

// SAFETY: blocks come from the arena (disjoint, aligned, within `mem`, never
// reused while live: bytes are reclaimed only from the top block or when no
// block is live) or from `fallback`, and are freed by whichever gave them.
unsafe impl<F: GlobalAlloc, const N: usize> GlobalAlloc for Arena<F, N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract, passed on.
            None => unsafe { self.fallback.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so the fallback's.
            return unsafe { self.fallback.dealloc(ptr, layout) };
        }
        // SAFETY: single-threaded; the borrow ends here.
        let st = unsafe { &mut *self.state.get() };
        st.live = st.live.saturating_sub(1);
        let offset = ptr as usize - self.base();
        if st.live == 0 {
            st.top = 0;
        } else if offset + layout.size() == st.top {
            st.top = offset;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            // SAFETY: single-threaded; the borrow ends before any call below.
            let st = unsafe { &mut *self.state.get() };
            let offset = ptr as usize - self.base();
            // The topmost block grows or shrinks in place.
            if offset + layout.size() == st.top && offset + new_size <= N {
                st.top = offset + new_size;
                return ptr;
            }
        }
        // SAFETY: the caller guarantees `layout` and `new_size` are valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`/`dealloc`; both blocks are valid for the
        // shorter length and do not overlap (the old one is still live).
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::vec::Vec;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_reused_once_all_are_freed() {
        let a: Arena<System, 256> = Arena::new(System);
        unsafe {
            let p = a.alloc(layout(3, 1));
            let q = a.alloc(layout(8, 8));
            assert_eq!(q as usize % 8, 0);
            assert!(q as usize >= p as usize + 3, "overlap");
            p.write_bytes(0xAA, 3);
            q.write_bytes(0xBB, 8);
            assert_eq!(*p, 0xAA, "q's write must not reach p");
            assert_eq!(a.live(), 2);
            a.dealloc(p, layout(3, 1));
            // p is not the top block: its bytes stay taken while q lives.
            assert!(a.used() >= 16);
            a.dealloc(q, layout(8, 8));
            assert_eq!((a.live(), a.used()), (0, 0));
            let r = a.alloc(layout(1, 1));
            assert_eq!(r, p, "an empty arena starts over");
            a.dealloc(r, layout(1, 1));
        }
    }

    #[test]
    fn the_top_block_grows_in_place_and_others_move() {
        let a: Arena<System, 256> = Arena::new(System);
        unsafe {
            let p = a.alloc(layout(4, 1));
            p.copy_from(b"abcd".as_ptr(), 4);
            let p2 = a.realloc(p, layout(4, 1), 100);
            assert_eq!(p, p2, "top block grows in place");
            let q = a.alloc(layout(4, 1));
            let p3 = a.realloc(p2, layout(100, 1), 120);
            assert_ne!(p3, p2, "not the top block: moved");
            assert_eq!(core::slice::from_raw_parts(p3, 4), b"abcd");
            assert_eq!(a.live(), 2, "the old block was freed");
            a.dealloc(q, layout(4, 1));
            a.dealloc(p3, layout(120, 1));
            assert_eq!(a.live(), 0);
        }
    }

    #[test]
    fn what_does_not_fit_spills_to_the_fallback_and_is_freed_there() {
        let a: Arena<System, 64> = Arena::new(System);
        unsafe {
            let small = a.alloc(layout(32, 8));
            let big = a.alloc(layout(64, 8));
            assert!(!a.owns(big), "64 bytes do not fit after 32");
            big.write_bytes(1, 64);
            // Growing the arena's block past the arena moves it out.
            let grown = a.realloc(small, layout(32, 8), 1000);
            assert!(!a.owns(grown));
            assert_eq!(a.live(), 0);
            a.dealloc(big, layout(64, 8));
            a.dealloc(grown, layout(1000, 8));
        }
    }

    #[test]
    fn a_block_kept_alive_never_has_its_bytes_handed_out_again() {
        // A policy caching something across calls (per-worker isolation).
        let a: Arena<System, 1024> = Arena::new(System);
        unsafe {
            let kept = a.alloc(layout(16, 8));
            kept.write_bytes(7, 16);
            let mut later = Vec::new();
            for _ in 0..200 {
                let p = a.alloc(layout(16, 8));
                p.write_bytes(9, 16);
                later.push(p);
            }
            assert!(
                core::slice::from_raw_parts(kept, 16)
                    .iter()
                    .all(|&b| b == 7)
            );
            for p in later {
                a.dealloc(p, layout(16, 8));
            }
            assert_eq!(a.live(), 1);
            a.dealloc(kept, layout(16, 8));
            assert_eq!(a.live(), 0);
        }
    }

    /// Random alloc/free/realloc sequences against a model: every live
    /// block keeps its own fill byte (an overlap or a reused live block
    /// would overwrite it), stays aligned, and the arena is empty when the
    /// model is. A seeded xorshift instead of proptest keeps this `no_std`
    /// crate free of dependencies; 32 seeds × 1,000 operations.
    #[test]
    fn random_sequences_never_corrupt_a_live_block() {
        struct Live {
            ptr: *mut u8,
            layout: Layout,
            fill: u8,
        }
        fn check(live: &[Live]) {
            for b in live {
                assert_eq!(b.ptr as usize % b.layout.align(), 0, "misaligned");
                let bytes = unsafe { core::slice::from_raw_parts(b.ptr, b.layout.size()) };
                assert!(
                    bytes.iter().all(|&x| x == b.fill),
                    "a live block was overwritten"
                );
            }
        }
        for seed in 1..=32u64 {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let a: Arena<System, 2048> = Arena::new(System);
            let mut live: Vec<Live> = Vec::new();
            for step in 0..1000u32 {
                let fill = (step % 251) as u8 + 1;
                match next(10) {
                    0..=4 => {
                        let l = layout(1 + next(300) as usize, 1 << next(5));
                        let ptr = unsafe { a.alloc(l) };
                        assert!(!ptr.is_null());
                        unsafe { ptr.write_bytes(fill, l.size()) };
                        live.push(Live {
                            ptr,
                            layout: l,
                            fill,
                        });
                    }
                    5..=7 if !live.is_empty() => {
                        let b = live.swap_remove(next(live.len() as u64) as usize);
                        unsafe { a.dealloc(b.ptr, b.layout) };
                    }
                    _ if !live.is_empty() => {
                        let i = next(live.len() as u64) as usize;
                        let new_size = 1 + next(600) as usize;
                        let b = &mut live[i];
                        let ptr = unsafe { a.realloc(b.ptr, b.layout, new_size) };
                        assert!(!ptr.is_null());
                        let kept = b.layout.size().min(new_size);
                        let bytes = unsafe { core::slice::from_raw_parts(ptr, kept) };
                        assert!(bytes.iter().all(|&x| x == b.fill), "realloc lost contents");
                        b.ptr = ptr;
                        b.layout = layout(new_size, b.layout.align());
                        unsafe { ptr.write_bytes(b.fill, new_size) };
                    }
                    _ => {}
                }
                if step % 16 == 0 {
                    check(&live);
                }
            }
            check(&live);
            for b in live.drain(..) {
                unsafe { a.dealloc(b.ptr, b.layout) };
            }
            assert_eq!((a.live(), a.used()), (0, 0), "seed {seed}: arena not empty");
        }
    }
}
