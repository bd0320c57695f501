//! `break-glass`: emergency access without approval, for at most an hour.
//!
//! Only people (not service identities) in the `break-glass` group may use
//! it, and they must say what the emergency is (at least 20 characters after
//! trimming). No ticket is needed, and the grant is not ended when a ticket
//! closes: an emergency does not stop because a ticket did. Every use is
//! reviewed afterwards.
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest break-glass grant, in seconds (1 hour).
pub const CAP: u32 = 3600;

/// Who may break the glass.
pub const GROUP: &str = "break-glass";

/// Fewest characters (after trimming) a break-glass justification may have.
pub const MIN_JUSTIFICATION_CHARS: usize = 20;

/// The policy.
pub struct BreakGlass;

impl Policy for BreakGlass {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "break-glass",
            "0.1.0",
            "people in the break-glass group get emergency access at once, for at most an hour, with a 20-character justification",
            &["break-glass"],
            CAP,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        let who = &req.subject.id;
        if !req.subject.in_group(GROUP) {
            return Verdict::deny(format!(
                "break-glass access is limited to members of the {GROUP} group, and {who} is not one"
            ));
        }
        if req.subject.is_service() {
            return Verdict::deny(format!(
                "break-glass access is for people only, and {who} is a service identity"
            ));
        }
        let chars = req.justification_chars();
        if chars < MIN_JUSTIFICATION_CHARS {
            return Verdict::deny(format!(
                "a break-glass justification must describe the emergency in at least \
                 {MIN_JUSTIFICATION_CHARS} characters, and this one has {chars} after trimming"
            ));
        }
        let ttl = clamp_ttl(req.requested_ttl, CAP);
        Verdict::allow(
            ttl,
            format!(
                "break-glass emergency access for {who} is granted without approval for {ttl} seconds; \
                 it is not tied to a ticket and this use will be reviewed"
            ),
        )
    }
}

export_policy!(BreakGlass);

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_sdk::testing::{RequestBuilder, expect_deny};

    const GOOD: &str = "primary database down, failover stuck";

    fn base() -> RequestBuilder {
        RequestBuilder::new("break-glass")
            .roles(&["sre"])
            .groups(&["break-glass"])
            .justification(GOOD)
            .no_ticket()
    }

    fn eval(b: RequestBuilder) -> Verdict {
        BreakGlass::evaluate(&b.build())
    }

    #[test]
    fn info_declares_break_glass_with_one_hour_cap() {
        let info = BreakGlass::info();
        assert_eq!(info.name, "break-glass");
        assert_eq!(info.version, "0.1.0");
        assert_eq!(info.tasks, ["break-glass"]);
        assert_eq!(info.max_ttl, 3600);
    }

    #[test]
    fn member_without_ticket_is_allowed_and_not_tied_to_a_ticket() {
        match eval(base()) {
            Verdict::Allow(t) => {
                assert_eq!(t.ttl, 1800);
                assert!(!t.revoke_on_ticket_close);
                assert!(t.reason.starts_with("break-glass"), "{}", t.reason);
                assert!(t.reason.contains("alice"), "{}", t.reason);
            }
            other => panic!("expected allow, got {other:?}"),
        }
    }

    #[test]
    fn with_a_ticket_it_is_still_not_revoked_on_close() {
        let v = eval(base().ticket(TicketState::Open, 1, None));
        assert!(
            matches!(
                v,
                Verdict::Allow(GrantTerms {
                    revoke_on_ticket_close: false,
                    ..
                })
            ),
            "{v:?}"
        );
    }

    #[test]
    fn ttl_is_clamped_to_one_hour() {
        for (asked, got) in [
            (1, 1),
            (3599, 3599),
            (3600, 3600),
            (3601, 3600),
            (28_800, 3600),
        ] {
            assert_eq!(
                eval(base().requested_ttl(asked)).ttl(),
                Some(got),
                "{asked}"
            );
        }
    }

    #[test]
    fn non_members_are_denied() {
        let r = expect_deny(eval(base().groups(&["oncall"])));
        assert_eq!(
            r,
            "break-glass access is limited to members of the break-glass group, and alice is not one"
        );
        assert!(eval(base().groups(&[])).is_deny());
    }

    #[test]
    fn service_subjects_are_denied_even_in_the_group() {
        let r = expect_deny(eval(
            base().subject("svc-deploy").kind(SubjectKind::Service),
        ));
        assert_eq!(
            r,
            "break-glass access is for people only, and svc-deploy is a service identity"
        );
    }

    #[test]
    fn group_is_checked_before_kind() {
        let r = expect_deny(eval(base().groups(&[]).kind(SubjectKind::Service)));
        assert!(r.contains("limited to members"), "{r}");
    }

    #[test]
    fn justification_of_nineteen_characters_is_denied_twenty_passes() {
        // "database is on fire" is 19 characters.
        let r = expect_deny(eval(base().justification("database is on fire")));
        assert!(r.contains("this one has 19 after trimming"), "{r}");
        assert!(matches!(
            eval(base().justification("database is on fire!")),
            Verdict::Allow(_)
        ));
    }

    #[test]
    fn justification_is_trimmed_and_counted_in_characters() {
        assert!(eval(base().justification("   database is on fire   ")).is_deny());
        assert!(matches!(
            eval(base().justification("\t database is on fire! \n")),
            Verdict::Allow(_)
        ));
        // 20 characters, more bytes.
        assert!(matches!(
            eval(base().justification("Datenbank läuft über")),
            Verdict::Allow(_)
        ));
        assert!(eval(base().justification("                              ")).is_deny());
    }
}
