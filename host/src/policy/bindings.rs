//! Host-side bindings of world `jitgate:policy/policy-module`, generated at
//! compile time from `host/wit/`, the crate's copy of `wit/` (a test keeps
//! them identical, so the host and the SDK cannot drift apart), plus the
//! one-way conversion of a [`crate::Request`] into the WIT record.

wasmtime::component::bindgen!({
    // The crate's own copy, so it builds vendored or published alone; a
    // test keeps it identical to the workspace's `wit/`.
    path: "wit",
    world: "policy-module",
    // Parameters borrow: the request is lowered into each instance straight
    // from the host's own strings, with no owned copy per decision.
    ownership: Borrowing { duplicate_if_necessary: false },
    // `log` may trap: it enforces the deadline itself (guest code sees the
    // epoch only between host calls).
    imports: { "jitgate:policy/host.log": trappable },
});

/// The previous contract, `jitgate:policy@0.1.0` (a copy of its WIT in
/// `host/wit-0.1.0`): modules built against it keep loading. The component
/// model reads 0.1 and 0.2 as incompatible versions, and 0.2.0 changed a
/// record (`approval-terms`), so they are bound apart and the host links
/// both; see [`request_v0_1`] and `crate::policy::verdict_from_v0_1`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "wit-0.1.0",
        world: "policy-module",
        ownership: Borrowing { duplicate_if_necessary: false },
        imports: { "jitgate:policy/host.log": trappable },
    });

    pub use self::jitgate::policy::host;
    pub use self::jitgate::policy::types as wit;
}

/// The request of a decision as a 0.1.0 module reads it: the same record
/// (0.2.0 did not change it), borrowing the same strings and lists.
pub fn request_v0_1<'a>(r: &wit::Request<'a>) -> v0_1::wit::Request<'a> {
    use v0_1::wit as old;
    old::Request {
        id: r.id,
        subject: old::Subject {
            id: r.subject.id,
            kind: match r.subject.kind {
                wit::SubjectKind::Human => old::SubjectKind::Human,
                wit::SubjectKind::Service => old::SubjectKind::Service,
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
        ticket: r.ticket.as_ref().map(|t| old::Ticket {
            id: t.id,
            state: match t.state {
                wit::TicketState::Open => old::TicketState::Open,
                wit::TicketState::InProgress => old::TicketState::InProgress,
                wit::TicketState::OnHold => old::TicketState::OnHold,
                wit::TicketState::Resolved => old::TicketState::Resolved,
                wit::TicketState::Closed => old::TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee,
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: r.attributes,
    }
}

/// A 0.1.0 module's verdict in the current contract's terms: its approvals
/// never end with the ticket (0.1.0 could not say so).
pub fn verdict_from_v0_1(v: v0_1::wit::Verdict) -> wit::Verdict {
    use v0_1::wit as old;
    match v {
        old::Verdict::Allow(t) => wit::Verdict::Allow(wit::GrantTerms {
            ttl: t.ttl,
            reason: t.reason,
            revoke_on_ticket_close: t.revoke_on_ticket_close,
        }),
        old::Verdict::Deny(r) => wit::Verdict::Deny(r),
        old::Verdict::RequireApproval(t) => wit::Verdict::RequireApproval(wit::ApprovalTerms {
            approver_groups: t.approver_groups,
            min_approvals: t.min_approvals,
            ttl: t.ttl,
            reason: t.reason,
            revoke_on_ticket_close: false,
        }),
        old::Verdict::NotApplicable => wit::Verdict::NotApplicable,
    }
}

/// A 0.1.0 module's `info` in the current contract's terms (unchanged).
pub fn info_from_v0_1(i: v0_1::wit::PolicyInfo) -> wit::PolicyInfo {
    wit::PolicyInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        tasks: i.tasks,
        max_ttl: i.max_ttl,
    }
}

// `self::`: under `rustdoc --test` the crate itself is an extern named
// `jitgate` too, which would make the generated module's name ambiguous.
pub use self::jitgate::policy::host;
pub use self::jitgate::policy::types as wit;

use crate::request::{Request, SubjectKind, TicketState};

/// The lists a borrowed WIT request points into: the request's own strings,
/// gathered as slices of `&str`. Three small vectors per decision, instead
/// of a copy of every string.
pub struct Lists<'a> {
    roles: Vec<&'a str>,
    groups: Vec<&'a str>,
    attributes: Vec<(&'a str, &'a str)>,
}

/// Gather `r`'s lists for [`to_wit`].
pub fn lists(r: &Request) -> Lists<'_> {
    Lists {
        roles: r.subject.roles.iter().map(String::as_str).collect(),
        groups: r.subject.groups.iter().map(String::as_str).collect(),
        attributes: r
            .attributes
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    }
}

/// Build the WIT request once per decision, borrowing `r`; every policy
/// lowers it from the same value.
pub fn to_wit<'a>(r: &'a Request, lists: &'a Lists<'a>) -> wit::Request<'a> {
    wit::Request {
        id: &r.id,
        subject: wit::Subject {
            id: &r.subject.id,
            kind: match r.subject.kind {
                SubjectKind::Human => wit::SubjectKind::Human,
                SubjectKind::Service => wit::SubjectKind::Service,
            },
            roles: &lists.roles,
            groups: &lists.groups,
            mfa_at: r.subject.mfa_at,
        },
        task: &r.task,
        resource: &r.resource,
        entitlement: &r.entitlement,
        justification: &r.justification,
        requested_ttl: r.requested_ttl,
        ticket: r.ticket.as_ref().map(|t| wit::Ticket {
            id: &t.id,
            state: match t.state {
                TicketState::Open => wit::TicketState::Open,
                TicketState::InProgress => wit::TicketState::InProgress,
                TicketState::OnHold => wit::TicketState::OnHold,
                TicketState::Resolved => wit::TicketState::Resolved,
                TicketState::Closed => wit::TicketState::Closed,
            },
            priority: t.priority,
            assignee: t.assignee.as_deref(),
            opened_at: t.opened_at,
        }),
        now: r.now,
        attributes: &lists.attributes,
    }
}

#[cfg(test)]
mod wit_copy {
    use std::path::{Path, PathBuf};

    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("readable wit dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                    out.push((rel, std::fs::read(&path).expect("readable wit file")));
                }
            }
        }
        out.sort();
        out
    }

    /// The bindings are generated from `host/wit`; the SDK and the guests
    /// from the workspace's `wit/`. If the two differed, host and policies
    /// would disagree on the contract without a compile error.
    #[test]
    fn host_wit_is_identical_to_the_workspace_wit() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = manifest.join("../wit");
        if !workspace.is_dir() {
            eprintln!(
                "skipped: {} is absent (the crate is vendored or published alone), so there is no workspace copy to compare host/wit with",
                workspace.display()
            );
            return;
        }
        let ours = files(&manifest.join("wit"));
        let theirs = files(&workspace);
        assert!(!ours.is_empty(), "host/wit is empty");
        let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&ours),
            names(&theirs),
            "host/wit and wit/ hold different files: copy wit/ to host/wit"
        );
        for ((path, a), (_, b)) in ours.iter().zip(&theirs) {
            assert!(
                a == b,
                "host/wit/{} differs from wit/{}: copy wit/ to host/wit",
                path.display(),
                path.display()
            );
        }
    }
}
