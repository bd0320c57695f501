//! The wasm side of the SDK: bindings, conversions and the runtime pieces a
//! `no_std` component needs. Not public API; `export_policy!` uses it.

use crate::Policy;
use crate::types::{
    ApprovalTerms, GrantTerms, PolicyInfo, Request, Subject, SubjectKind, Ticket, TicketState,
    Verdict,
};

/// The generated bindings of world `jitgate:policy/policy-module`.
pub mod bindings {
    wit_bindgen::generate!({
        // The SDK's own copy of the contract, so the crate is
        // self-contained (identical to the repository's wit/, by test).
        path: "wit",
        world: "policy-module",
        pub_export_macro: true,
        export_macro_name: "__jitgate_export_world",
        default_bindings_module: "jitgate_sdk::__private::bindings",
    });
}

pub use bindings::exports::jitgate::policy::policy::Guest;

/// The contract's types, as generated.
pub mod wit {
    pub use super::bindings::jitgate::policy::types::*;
}

// `no_std` on wasm32-wasip2 leaves `memcpy`, `memcmp` and friends to libc:
// link wasi-libc's (self-contained, shipped with the target) so that only
// those pure functions are pulled in. They import nothing from WASI.
#[link(name = "c")]
unsafe extern "C" {}

// An evaluation's blocks come from a bump arena (see `heap`); what does not
// fit goes to dlmalloc, what `std` uses on wasm, which grows linear memory
// through `memory.grow`: the host bounds that, so a runaway allocation traps
// instead of taking the host down.
#[global_allocator]
static ALLOC: crate::heap::Arena<dlmalloc::GlobalDlmalloc, { crate::heap::ARENA_BYTES }> =
    crate::heap::Arena::new(dlmalloc::GlobalDlmalloc);

// A panic is a policy bug: say what it was (best effort) and trap, which the
// host turns into a deny.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use alloc::string::ToString;
    let msg = info.message().to_string();
    crate::log(crate::LogLevel::Error, &msg);
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator entry point, over the global allocator.
///
/// `wit-bindgen` leaves it to `std` on `wasm32-wasip2`; a `no_std` guest must
/// bring its own. `export_policy!` exports it from the policy crate.
///
/// # Safety
/// Called only by the component model's lowering code with the contract of
/// `cabi_realloc`: a null/zero-length old block, or one it allocated before.
pub unsafe fn cabi_realloc(
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
        // Out of (bounded) memory while the host copies arguments in: trap,
        // which the host reports as a failed evaluation.
        core::arch::wasm32::unreachable();
    }
    ptr
}

/// Convert the SDK's info to the WIT record.
pub fn info_to_wit(info: PolicyInfo) -> wit::PolicyInfo {
    wit::PolicyInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        tasks: info.tasks,
        max_ttl: info.max_ttl,
    }
}

/// Run `P::evaluate` on a request arriving from the host.
pub fn evaluate<P: Policy>(req: wit::Request) -> wit::Verdict {
    verdict_to_wit(P::evaluate(&request_from_wit(req)))
}

fn request_from_wit(r: wit::Request) -> Request {
    Request {
        id: r.id,
        subject: Subject {
            id: r.subject.id,
            kind: match r.subject.kind {
                wit::SubjectKind::Human => SubjectKind::Human,
                wit::SubjectKind::Service => SubjectKind::Service,
            },
            roles: r.subject.roles,
            groups: r.subject.groups,
            mfa_at: r.subject.mfa_at,
        },
        task: r.task,
        resource: r.resource,
        entitlement: r.entitlement,
        justification: r.justification,
        requested_ttl: r.requested_ttl,
        ticket: r.ticket.map(|t| Ticket {
            id: t.id,
            state: match t.state {
                wit::TicketState::Open => TicketState::Open,
                wit::TicketState::InProgress => TicketState::InProgress,
                wit::TicketState::OnHold => TicketState::OnHold,
                wit::TicketState::Resolved => TicketState::Resolved,
                wit::TicketState::Closed => TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee,
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: r.attributes,
    }
}

fn verdict_to_wit(v: Verdict) -> wit::Verdict {
    match v {
        Verdict::Allow(GrantTerms {
            ttl,
            reason,
            revoke_on_ticket_close,
        }) => wit::Verdict::Allow(wit::GrantTerms {
            ttl,
            reason,
            revoke_on_ticket_close,
        }),
        Verdict::Deny(reason) => wit::Verdict::Deny(reason),
        Verdict::RequireApproval(ApprovalTerms {
            approver_groups,
            min_approvals,
            ttl,
            reason,
            revoke_on_ticket_close,
        }) => wit::Verdict::RequireApproval(wit::ApprovalTerms {
            approver_groups,
            min_approvals,
            ttl,
            reason,
            revoke_on_ticket_close,
        }),
        Verdict::NotApplicable => wit::Verdict::NotApplicable,
    }
}
