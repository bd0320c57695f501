//! `saas-admin`: IT admins and the helpdesk may take SaaS admin entitlements
//! for at most 30 minutes, right after a multi-factor authentication.
//!
//! - The subject needs the `it-admin` or `helpdesk` role.
//! - Their MFA must be on record, not in the future, and at most 900 s old
//!   (exactly 900 s still counts as fresh).
//! - An entitlement ending in `:read` (e.g. `okta:read`) is allowed at once and
//!   ends when the ticket closes; any other entitlement needs one approval
//!   from `saas-owners`, and also ends when the ticket closes (contract
//!   0.2.0's `approval-terms.revoke-on-ticket-close`).
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest SaaS admin grant, in seconds (30 minutes).
pub const CAP: u32 = 1800;

/// The oldest MFA accepted, in seconds (15 minutes).
pub const MFA_MAX_AGE: u64 = 900;

/// Roles that may ask for SaaS admin access.
pub const ROLES: [&str; 2] = ["it-admin", "helpdesk"];

/// Entitlements with this suffix are read-only.
pub const READ_SUFFIX: &str = ":read";

/// Who approves every entitlement that is not read-only.
pub const APPROVERS: &str = "saas-owners";

/// The policy.
pub struct SaasAdmin;

impl Policy for SaasAdmin {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "saas-admin",
            "0.1.0",
            "it-admin or helpdesk with MFA in the last 15 minutes: read entitlements at once, others with a saas-owners approval",
            &["saas-admin"],
            CAP,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        let who = &req.subject.id;
        if !req.subject.has_any_role(&ROLES) {
            return Verdict::deny(format!(
                "SaaS admin access requires the it-admin or helpdesk role, and {who} has neither"
            ));
        }
        match req.mfa_age() {
            MfaAge::Missing => {
                return Verdict::deny(format!(
                    "SaaS admin access requires an MFA sign-in within the last {MFA_MAX_AGE} seconds, \
                     and no MFA is on record for {who}; sign in again with MFA and retry"
                ));
            }
            MfaAge::InFuture => {
                return Verdict::deny(format!(
                    "the MFA time reported for {who} is in the future, which means clock skew or a \
                     forged claim; sign in again with MFA and retry"
                ));
            }
            MfaAge::Age(age) if age > MFA_MAX_AGE => {
                return Verdict::deny(format!(
                    "the last MFA for {who} was {age} seconds ago, more than the {MFA_MAX_AGE} seconds \
                     SaaS admin access allows; sign in again with MFA and retry"
                ));
            }
            MfaAge::Age(_) => {}
        }
        let ttl = clamp_ttl(req.requested_ttl, CAP);
        let entitlement = &req.entitlement;
        if entitlement.ends_with(READ_SUFFIX) {
            Verdict::allow_until_ticket_closed(
                ttl,
                format!(
                    "read-only SaaS entitlement {entitlement} is granted without approval; \
                     it ends when the ticket closes"
                ),
            )
        } else {
            Verdict::require_approval_until_ticket_closed(
                &[APPROVERS],
                1,
                ttl,
                format!(
                    "SaaS entitlement {entitlement} is not read-only, \
                     so a member of {APPROVERS} must approve it; it ends when the ticket closes"
                ),
            )
        }
    }
}

export_policy!(SaasAdmin);

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC, expect_deny};

    const NOW: Timestamp = WEDNESDAY_10_UTC;

    fn base() -> RequestBuilder {
        RequestBuilder::new("saas-admin")
            .roles(&["it-admin"])
            .entitlement("okta:read")
            .mfa_at(Some(NOW - 60))
    }

    fn eval(b: RequestBuilder) -> Verdict {
        SaasAdmin::evaluate(&b.build())
    }

    #[test]
    fn info_declares_saas_admin_with_half_hour_cap() {
        let info = SaasAdmin::info();
        assert_eq!(info.name, "saas-admin");
        assert_eq!(info.version, "0.1.0");
        assert_eq!(info.tasks, ["saas-admin"]);
        assert_eq!(info.max_ttl, 1800);
    }

    #[test]
    fn read_entitlement_is_allowed_until_ticket_close() {
        assert_eq!(
            eval(base()),
            Verdict::allow_until_ticket_closed(
                1800,
                "read-only SaaS entitlement okta:read is granted without approval; it ends when the ticket closes"
            )
        );
    }

    #[test]
    fn helpdesk_role_also_qualifies() {
        let v = eval(base().roles(&["helpdesk"]));
        assert!(matches!(v, Verdict::Allow(_)), "{v:?}");
        let v = eval(base().roles(&["developer", "it-admin"]));
        assert!(matches!(v, Verdict::Allow(_)), "{v:?}");
    }

    #[test]
    fn other_roles_are_denied() {
        let r = expect_deny(eval(base().roles(&["developer"])));
        assert_eq!(
            r,
            "SaaS admin access requires the it-admin or helpdesk role, and alice has neither"
        );
        assert!(eval(base().roles(&[])).is_deny());
        // Role names are exact.
        assert!(eval(base().roles(&["IT-Admin", "helpdesk-lead"])).is_deny());
    }

    #[test]
    fn role_is_checked_before_mfa() {
        let r = expect_deny(eval(base().roles(&["developer"]).mfa_at(None)));
        assert!(r.contains("role"), "{r}");
    }

    #[test]
    fn mfa_exactly_900_seconds_old_is_fresh_901_is_not() {
        assert!(matches!(
            eval(base().mfa_at(Some(NOW - 900))),
            Verdict::Allow(_)
        ));
        let r = expect_deny(eval(base().mfa_at(Some(NOW - 901))));
        assert!(
            r.contains("was 901 seconds ago, more than the 900 seconds"),
            "{r}"
        );
    }

    #[test]
    fn mfa_at_now_is_fresh() {
        assert!(matches!(eval(base().mfa_at(Some(NOW))), Verdict::Allow(_)));
    }

    #[test]
    fn mfa_in_the_future_is_denied() {
        let r = expect_deny(eval(base().mfa_at(Some(NOW + 1))));
        assert!(r.contains("in the future"), "{r}");
    }

    #[test]
    fn missing_mfa_is_denied() {
        let r = expect_deny(eval(base().mfa_at(None)));
        assert!(r.contains("no MFA is on record for alice"), "{r}");
    }

    #[test]
    fn stale_mfa_denies_write_too() {
        assert!(eval(base().entitlement("okta:write").mfa_at(Some(NOW - 3600))).is_deny());
    }

    #[test]
    fn non_read_entitlements_need_one_saas_owner() {
        for e in [
            "okta:write",
            "okta:admin",
            "okta:readonly",
            "okta:READ",
            "read",
            "okta:read:write",
        ] {
            assert_eq!(
                eval(base().entitlement(e)),
                Verdict::require_approval_until_ticket_closed(
                    &["saas-owners"],
                    1,
                    1800,
                    format!(
                        "SaaS entitlement {e} is not read-only, so a member of saas-owners must approve it; it ends when the ticket closes"
                    ),
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn any_read_suffix_is_read_only() {
        for e in ["github:read", "google-workspace:users:read", ":read"] {
            assert!(
                matches!(eval(base().entitlement(e)), Verdict::Allow(_)),
                "{e}"
            );
        }
    }

    #[test]
    fn ttl_is_clamped_to_the_cap() {
        for (asked, got) in [
            (1, 1),
            (1799, 1799),
            (1800, 1800),
            (1801, 1800),
            (28_800, 1800),
        ] {
            assert_eq!(
                eval(base().requested_ttl(asked)).ttl(),
                Some(got),
                "{asked}"
            );
            assert_eq!(
                eval(base().entitlement("okta:write").requested_ttl(asked)).ttl(),
                Some(got),
                "{asked}"
            );
        }
    }

    #[test]
    fn ticket_is_not_this_policys_concern() {
        // baseline denies a missing or finished ticket; saas-admin only judges
        // role, MFA and entitlement.
        assert!(matches!(eval(base().no_ticket()), Verdict::Allow(_)));
    }
}
