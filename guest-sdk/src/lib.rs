//! # jitgate-sdk: write a just-in-time access policy in Rust
//!
//! A jitgate policy is a pure function from an access [`Request`] to a
//! [`Verdict`]. This crate lets its author write exactly that and nothing
//! else: implement [`Policy`] for a unit struct, call [`export_policy!`], and
//! build with `cargo build --target wasm32-wasip2 --profile policy`.
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! use jitgate_sdk::prelude::*;
//!
//! pub struct OnlyHelpdesk;
//! impl Policy for OnlyHelpdesk {
//!     fn info() -> PolicyInfo {
//!         PolicyInfo::new("only-helpdesk", "1.0.0", "helpdesk may recover files", &["file-recovery"], 3600)
//!     }
//!     fn evaluate(req: &Request) -> Verdict {
//!         if !req.subject.has_role("helpdesk") {
//!             return Verdict::deny("only the helpdesk role may recover files");
//!         }
//!         Verdict::allow(clamp_ttl(req.requested_ttl, 3600), "helpdesk file recovery")
//!     }
//! }
//! export_policy!(OnlyHelpdesk);
//! ```
//!
//! ## Why the SDK is `no_std` on wasm
//! A Rust guest linked against `std` for `wasm32-wasip2` imports thirteen
//! `wasi:cli`/`wasi:io` interfaces even when it never touches them, and the
//! jitgate host refuses any module that imports more than `jitgate:policy/host`.
//! So on wasm this crate is `no_std` + `alloc`: it brings the global allocator
//! (a 64 KiB bump arena that an evaluation's short-lived blocks come from,
//! in front of dlmalloc, the allocator `std` itself uses on wasm), a panic
//! handler that logs the panic and traps (a trap denies), and `cabi_realloc`
//! (from `wit-bindgen`).
//! A compiled policy therefore imports nothing but the host's `log`.
//!
//! ## Testing natively
//! On any other target the same code compiles as ordinary Rust: types are
//! plain structs, [`log`] lines are captured per thread ([`testing::take_logs`]),
//! and [`testing::RequestBuilder`] builds requests, so `cargo test` exercises
//! the policy's rules without wasm.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

mod checks;
mod clock;
#[cfg(any(target_arch = "wasm32", test))]
mod heap;
mod logging;
mod types;

pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private;

pub use checks::{MfaAge, TzOffsetError, clamp_ttl, parse_tz_offset};
pub use clock::{LocalTime, Weekday};
pub use logging::{LogLevel, log};
pub use types::{
    ApprovalTerms, GrantTerms, PolicyInfo, Request, Subject, SubjectKind, Ticket, TicketState,
    Timestamp, Verdict,
};

/// A just-in-time access policy.
///
/// Both functions are associated functions, not methods: the host evaluates
/// every request in a fresh instance, so a policy has no state to keep.
pub trait Policy {
    /// Name, version, tasks and the longest TTL this policy will ever allow.
    /// Called once, when the host loads the module.
    fn info() -> PolicyInfo;

    /// Judge one request.
    fn evaluate(req: &Request) -> Verdict;
}

/// What a policy module usually needs in scope, `no_std`-safe.
pub mod prelude {
    pub use crate::{
        ApprovalTerms, GrantTerms, LocalTime, LogLevel, MfaAge, Policy, PolicyInfo, Request,
        Subject, SubjectKind, Ticket, TicketState, Timestamp, TzOffsetError, Verdict, Weekday,
        clamp_ttl, export_policy, log, parse_tz_offset,
    };
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

/// Export a [`Policy`] implementation as the module's `jitgate:policy/policy`.
///
/// Expands to nothing on non-wasm targets, so the crate stays unit-testable.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct JitgateExport;
            impl $crate::__private::Guest for JitgateExport {
                fn info() -> $crate::__private::wit::PolicyInfo {
                    $crate::__private::info_to_wit(<$policy as $crate::Policy>::info())
                }
                fn evaluate(
                    req: $crate::__private::wit::Request,
                ) -> $crate::__private::wit::Verdict {
                    $crate::__private::evaluate::<$policy>(req)
                }
            }
            // The canonical ABI allocates argument memory through this
            // export; it must be defined in the final crate to be exported.
            #[unsafe(no_mangle)]
            unsafe extern "C" fn cabi_realloc(
                old_ptr: *mut u8,
                old_len: usize,
                align: usize,
                new_len: usize,
            ) -> *mut u8 {
                unsafe { $crate::__private::cabi_realloc(old_ptr, old_len, align, new_len) }
            }
            $crate::__private::bindings::__jitgate_export_world!(JitgateExport with_types_in $crate::__private::bindings);
        };
    };
}
