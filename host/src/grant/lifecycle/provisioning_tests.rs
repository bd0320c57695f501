//! The provisioned road: `active` only after the target shows the access,
//! a final state only after it shows it gone.

use super::*;
use crate::grant::Provisioning;

fn provisioned() -> Grant {
    let request = crate::request::from_json(
        r#"{"id":"r1","subject":{"id":"alice","kind":"human"},"task":"t","resource":"x","entitlement":"db:read",
            "justification":"j","requested-ttl":60,"now":0}"#,
    )
    .expect("request");
    Grant {
        id: "g-1".into(),
        requested_by: "pipe".into(),
        state: GrantState::Denied,
        outcome: Outcome::Allow,
        ttl: 60,
        revoke_on_ticket_close: true,
        provisioning: Some(Provisioning {
            provisioner: "db".into(),
            target: "app_readonly".into(),
            login: None,
            verifier: None,
            ending_as: None,
            applied_at: None,
            removed_at: None,
            last_error: None,
        }),
        ..Grant::of(request)
    }
}

fn decided(now: Millis) -> Grant {
    let mut g = provisioned();
    let fx = g
        .apply(
            GrantEvent::Decided {
                decision: json!({}),
                approval_timeout_ms: 1000,
                review_id: None,
            },
            "pipe",
            now,
        )
        .expect("decided");
    assert_eq!(g.state, GrantState::Provisioning);
    let kinds: Vec<_> = fx.outbox.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [PROVISION_APPLY],
        "no announcement before it is applied"
    );
    assert_eq!(fx.outbox[0].payload["target"], "app_readonly");
    g
}

#[test]
fn an_allowed_provisioned_grant_is_not_active_until_read_back() {
    let mut g = decided(1000);
    let fx = g
        .apply(GrantEvent::Applied, "provisioner db", 1500)
        .expect("applied");
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(fx.outbox[0].kind, "grant-activated");
    assert_eq!(
        g.provisioning.as_ref().and_then(|p| p.applied_at),
        Some(1500)
    );
    // A second read-back (a redelivery) changes nothing.
    assert!(
        g.apply(GrantEvent::Applied, "provisioner db", 1600)
            .is_err()
    );
}

#[test]
fn an_expired_provisioned_grant_stays_deprovisioning_until_removal_reads_back() {
    let mut g = decided(1000);
    g.apply(GrantEvent::Applied, "p", 1500).expect("applied");
    let expiry = g.expires_at.expect("expiry");
    let fx = g
        .apply(
            GrantEvent::Expire { due_by: expiry },
            "scheduler",
            expiry + 10,
        )
        .expect("expire");
    assert_eq!(g.state, GrantState::Deprovisioning);
    assert_eq!(fx.outbox[0].kind, PROVISION_REMOVE);
    assert!(g.state.can_become(GrantState::Expired) && !g.state.is_final());
    // Neither a second end nor an apply can slip in meanwhile.
    assert!(
        g.apply(
            GrantEvent::Revoke { reason: "x".into() },
            "admin",
            expiry + 20
        )
        .is_err()
    );
    assert!(g.apply(GrantEvent::Applied, "p", expiry + 20).is_err());
    let fx = g
        .apply(GrantEvent::Removed, "provisioner db", expiry + 250)
        .expect("removed");
    assert_eq!(g.state, GrantState::Expired);
    assert_eq!(
        g.revocation_lag_ms,
        Some(250),
        "from expires-at to read back"
    );
    assert_eq!(fx.outbox[0].kind, "grant-ended");
}

#[test]
fn a_grant_revoked_while_provisioning_is_removed_not_left_half_applied() {
    let mut g = decided(1000);
    let fx = g
        .apply(
            GrantEvent::Revoke {
                reason: "wrong person".into(),
            },
            "admin",
            1200,
        )
        .expect("revoke");
    assert_eq!(g.state, GrantState::Deprovisioning);
    assert_eq!(fx.outbox[0].kind, PROVISION_REMOVE);
    let fx = g.apply(GrantEvent::Removed, "p", 1300).expect("removed");
    assert_eq!(g.state, GrantState::Revoked);
    assert_eq!(g.revocation_lag_ms, Some(100));
    assert!(
        fx.outbox.is_empty(),
        "never announced active, so no grant-ended"
    );
}

#[test]
fn a_refused_apply_deprovisions_then_fails() {
    let mut g = decided(1000);
    let fx = g
        .apply(
            GrantEvent::ApplyFailed {
                error: "no such role".into(),
            },
            "p",
            2000,
        )
        .expect("failed");
    assert_eq!(g.state, GrantState::Deprovisioning);
    assert_eq!(
        fx.outbox[0].kind, PROVISION_REMOVE,
        "whatever part was applied goes"
    );
    g.apply(GrantEvent::Removed, "p", 2100).expect("removed");
    assert_eq!(g.state, GrantState::Failed);
    assert!(g.state.is_final());
}

#[test]
fn a_pending_provisioned_grant_revoked_needs_no_removal() {
    let mut g = provisioned();
    g.outcome = Outcome::RequireApproval;
    g.apply(
        GrantEvent::Decided {
            decision: json!({}),
            approval_timeout_ms: 1000,
            review_id: None,
        },
        "pipe",
        0,
    )
    .expect("decided");
    assert_eq!(g.state, GrantState::Pending);
    let fx = g
        .apply(
            GrantEvent::Revoke {
                reason: "no".into(),
            },
            "admin",
            10,
        )
        .expect("revoke");
    assert_eq!(g.state, GrantState::Revoked);
    assert!(fx.outbox.is_empty());
}

#[test]
fn a_ticket_closing_deprovisions_a_provisioned_grant() {
    let mut g = decided(1000);
    g.apply(GrantEvent::Applied, "p", 1100).expect("applied");
    g.apply(
        GrantEvent::TicketEnd {
            ticket: "T-1".into(),
            state: TicketState::Closed,
        },
        "ticket T-1",
        1200,
    )
    .expect("ticket end");
    assert_eq!(g.state, GrantState::Deprovisioning);
    g.apply(GrantEvent::Removed, "p", 1300).expect("removed");
    assert_eq!(g.state, GrantState::Revoked);
}
