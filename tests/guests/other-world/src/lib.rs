//! `other-world`: a valid component of a different world.
//!
//! Models a module that is not a policy at all: a well-formed component that
//! exports `other:thing/greeter@0.1.0` instead of `jitgate:policy/policy`
//! (someone pointed the policy set at the wrong file). The host must fail the
//! load with a clear error saying the module does not implement the
//! `jitgate:policy` contract; it must not crash, guess, or call into it.
//!
//! It is `no_std` (with the same allocator, panic handler and `cabi_realloc`
//! the SDK brings) so that it imports nothing at all: the only thing wrong
//! with it is its world, and a host that rejects it must do so for that
//! reason, not because of a stray `wasi:cli` import `std` would add.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};

wit_bindgen::generate!({
    inline: r#"
        package other:thing@0.1.0;

        interface greeter {
            greet: func() -> string;
        }

        world greeting {
            export greeter;
        }
    "#,
    world: "greeting",
});

struct OtherWorld;

impl exports::other::thing::greeter::Guest for OtherWorld {
    fn greet() -> String {
        "hello from another world".to_string()
    }
}

export!(OtherWorld);

// `memcpy` and friends from wasi-libc (pure functions, no WASI imports).
#[link(name = "c")]
unsafe extern "C" {}

#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator entry point (`std` would bring it; a
/// `no_std` component must).
///
/// # Safety
/// Called only by the component model's lowering code with the contract of
/// `cabi_realloc`: a null/zero-length old block, or one it allocated before.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    let ptr = unsafe {
        if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}
