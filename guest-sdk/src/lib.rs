//! # jitgate-sdk: write a just-in-time access policy in Rust
//!
//! A jitgate policy is a pure function from an access [`Request`] to a
//! [`Verdict`]. This crate lets its author write exactly that and nothing
//! else: implement [`Policy`] for a unit struct, call [`export_policy!`], and
//! build with `cargo build --target wasm32-wasip2 --profile policy`.
//!
//! **This documentation is the SDK's reference**: open it with
//! `cargo doc -p jitgate-sdk --open`. Every public item has an example, and
//! every example is compiled and run by `cargo test -p jitgate-sdk --doc`.
//!
//! **The SDK is `no_std` on wasm**, and so must your policy crate be (the
//! first line below): a `std` guest imports WASI interfaces the host refuses
//! to load. [Why](#why-the-sdk-is-no_std-on-wasm), below. Natively both are
//! ordinary `std` crates, so unit tests need nothing special.
//!
//! ```
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
//!
//! // In the policy crate's tests:
//! use jitgate_sdk::testing::{RequestBuilder, expect_allow, expect_deny};
//! let sales = RequestBuilder::new("file-recovery").roles(&["sales"]).build();
//! assert_eq!(expect_deny(OnlyHelpdesk::evaluate(&sales)), "only the helpdesk role may recover files");
//! let helpdesk = RequestBuilder::new("file-recovery").requested_ttl(7200).build();
//! assert_eq!(expect_allow(OnlyHelpdesk::evaluate(&helpdesk)).ttl, 3600);
//! ```
//!
//! Where to look next: [`prelude`] (what `use jitgate_sdk::prelude::*` brings),
//! [`Request`] and its helpers ([`Request::mfa_age`], [`Request::ticket_active`],
//! [`Request::attribute`]), the [`Verdict`] constructors
//! ([`Verdict::require_approval`] explains its arguments), [`LocalTime`] for
//! time-of-day rules, and [`testing`] for unit tests
//! ([`testing::RequestBuilder`] lists the request it starts from).
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
//!
//! ## Coverage
//! `jitgate test --coverage` builds the policy once more with this crate's
//! `coverage` feature (off by default; never turn it on yourself): each
//! [`Verdict`] constructor then reports the line it was called from through
//! the same `log` import, and the module is marked so that no host serves
//! it. Build verdicts with the constructor functions (`Verdict::deny(…)`,
//! not `Verdict::Deny(…)`) so that coverage can see them.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

mod checks;
mod clock;
#[doc(hidden)]
pub mod coverage;
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
/// Implement it on a unit struct and hand that to [`export_policy!`].
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, expect_approval};
///
/// /// A ticket is needed; without one, a helpdesk lead must approve.
/// pub struct TicketOrLead;
///
/// impl Policy for TicketOrLead {
///     fn info() -> PolicyInfo {
///         PolicyInfo::new("ticket-or-lead", "1.0.0", "no ticket needs a lead's approval", &["*"], 3600)
///     }
///     fn evaluate(req: &Request) -> Verdict {
///         if req.ticket_active() {
///             Verdict::not_applicable()
///         } else {
///             Verdict::require_approval(&["helpdesk-leads"], 1, clamp_ttl(req.requested_ttl, 3600), "no open ticket")
///         }
///     }
/// }
///
/// let req = RequestBuilder::new("file-recovery").no_ticket().build();
/// let terms = expect_approval(TicketOrLead::evaluate(&req));
/// assert_eq!(terms.approver_groups, ["helpdesk-leads"]);
/// assert_eq!(TicketOrLead::evaluate(&RequestBuilder::new("file-recovery").build()), Verdict::NotApplicable);
/// ```
pub trait Policy {
    /// Name, version, tasks and the longest TTL this policy will ever allow.
    /// Called once, when the host loads the module.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// struct Baseline;
    /// impl Policy for Baseline {
    ///     fn info() -> PolicyInfo {
    ///         PolicyInfo::new("baseline", "0.1.0", "every task needs a ticket", &["*"], 28_800)
    ///     }
    ///     fn evaluate(_: &Request) -> Verdict {
    ///         Verdict::not_applicable()
    ///     }
    /// }
    ///
    /// assert_eq!(Baseline::info().max_ttl, 28_800);
    /// ```
    fn info() -> PolicyInfo;

    /// Judge one request.
    ///
    /// Must not panic on any input: a panic traps, and a trap denies the
    /// request with "policy failed". Answer [`Verdict::not_applicable`] for
    /// requests this policy has no opinion on.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::{RequestBuilder, expect_deny};
    ///
    /// struct FreshMfa;
    /// impl Policy for FreshMfa {
    ///     fn info() -> PolicyInfo {
    ///         PolicyInfo::new("fresh-mfa", "1.0.0", "MFA within 15 minutes", &["*"], 3600)
    ///     }
    ///     fn evaluate(req: &Request) -> Verdict {
    ///         if req.mfa_age().within(900) {
    ///             Verdict::not_applicable()
    ///         } else {
    ///             Verdict::deny("sign in with MFA again (at most 15 minutes ago)")
    ///         }
    ///     }
    /// }
    ///
    /// let stale = RequestBuilder::new("file-recovery").mfa_at(Some(0)).build();
    /// assert!(expect_deny(FreshMfa::evaluate(&stale)).contains("MFA"));
    /// ```
    fn evaluate(req: &Request) -> Verdict;
}

/// What a policy module usually needs in scope, `no_std`-safe.
///
/// The SDK's types and helpers, plus the `alloc` items a `no_std` crate lacks
/// from the standard prelude (`String`, `Vec`, `Box`, `ToString`, `ToOwned`,
/// `format!`, `vec!`), so the same code compiles for wasm and natively.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, expect_deny};
///
/// fn judge(req: &Request) -> Verdict {
///     let missing: Vec<&str> = ["helpdesk", "backup-admin"]
///         .into_iter()
///         .filter(|r| !req.subject.has_role(r))
///         .collect();
///     if missing.is_empty() {
///         return Verdict::allow(clamp_ttl(req.requested_ttl, 3600), "both roles held");
///     }
///     Verdict::deny(format!("{} lacks the role(s) {}", req.subject.id, missing.join(", ")))
/// }
///
/// let req = RequestBuilder::new("file-recovery").build();
/// assert_eq!(expect_deny(judge(&req)), "alice lacks the role(s) backup-admin");
/// ```
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
/// Call it once, at the top level of the policy crate's `lib.rs` (built as a
/// `cdylib`), with the type that implements [`Policy`]. On wasm it generates
/// the component's exports and `cabi_realloc`; on other targets it expands to
/// nothing, so the same crate stays unit-testable with `cargo test` (the
/// example below compiles and runs natively, where the macro is a no-op).
///
/// ```
/// #![cfg_attr(target_arch = "wasm32", no_std)]
/// use jitgate_sdk::prelude::*;
///
/// pub struct DenyServices;
/// impl Policy for DenyServices {
///     fn info() -> PolicyInfo {
///         PolicyInfo::new("deny-services", "1.0.0", "workloads never get access", &["*"], 3600)
///     }
///     fn evaluate(req: &Request) -> Verdict {
///         if req.subject.is_service() {
///             Verdict::deny("service identities may not request access")
///         } else {
///             Verdict::not_applicable()
///         }
///     }
/// }
///
/// export_policy!(DenyServices);
/// # assert_eq!(DenyServices::info().name, "deny-services");
/// ```
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
