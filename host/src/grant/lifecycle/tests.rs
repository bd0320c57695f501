//! Every state × event through [`Grant::apply`], then the rules around the
//! edges (deadlines, quorum, quarantine, who may approve) to the millisecond.
//!
//! One file past 500 lines: the state × event table and the rules at its edges, one table.

use super::*;
use crate::decision::ApprovalRequirement;
use crate::request::TicketState;
use GrantState::*;

const NOW: Millis = 100_000;
const TTL: u32 = 60;

fn base(state: GrantState) -> Grant {
    let request = crate::request::from_json(
        r#"{"id":"r1","subject":{"id":"alice","kind":"human"},"task":"t","resource":"x","entitlement":"e",
            "justification":"j","requested-ttl":60,"now":0}"#,
    )
    .expect("request");
    let mut g = Grant {
        id: "g-1".into(),
        requested_by: "pipe".into(),
        state,
        outcome: Outcome::RequireApproval,
        required: vec![ApprovalRequirement {
            policy: "p".into(),
            groups: vec!["leads".into()],
            min: 1,
        }],
        decision: json!({"stored": true}),
        ttl: TTL,
        revoke_on_ticket_close: true,
        created_at: NOW - 10_000,
        ..Grant::of(request)
    };
    match state {
        Pending => g.lapses_at = Some(NOW + 1000),
        Active => {
            g.issued_at = Some(NOW - 60_000);
            g.expires_at = Some(NOW);
        }
        Denied => g.outcome = Outcome::Deny,
        _ => {
            g.ended_at = Some(NOW - 1);
            g.ended_by = Some("someone".into());
            g.end_reason = Some("before".into());
        }
    }
    g
}

/// A grant as the service builds it before the decision is applied.
fn undecided(outcome: Outcome) -> Grant {
    let mut g = base(Denied);
    g.outcome = outcome;
    g.decision = Value::Null;
    g
}

/// Every event once; the sweep's cut-off is past both deadlines above.
fn events() -> Vec<(&'static str, GrantEvent)> {
    vec![
        (
            "decided",
            GrantEvent::Decided {
                decision: json!({"outcome": "x"}),
                approval_timeout_ms: 5000,
                review_id: None,
            },
        ),
        ("activate", GrantEvent::Activate { review_id: None }),
        (
            "approve",
            GrantEvent::Approve {
                groups: vec!["leads".into()],
                review_id: None,
                also_known_as: Vec::new(),
                sign_in: None,
            },
        ),
        (
            "reject",
            GrantEvent::Reject {
                groups: vec!["leads".into()],
                reason: "no".into(),
                also_known_as: Vec::new(),
            },
        ),
        (
            "revoke",
            GrantEvent::Revoke {
                reason: "incident".into(),
            },
        ),
        ("release", GrantEvent::Release),
        ("expire", GrantEvent::Expire { due_by: NOW + 1000 }),
        ("lapse", GrantEvent::Lapse { due_by: NOW + 1000 }),
        (
            "ticket-end",
            GrantEvent::TicketEnd {
                ticket: "INC-1".into(),
                state: TicketState::Resolved,
            },
        ),
    ]
}

/// What an allowed event leaves: the state, the audit kinds with each
/// transition's (from, to, reason), and the outbox kinds.
type Expect = (
    GrantState,
    &'static [(
        &'static str,
        Option<(&'static str, &'static str, &'static str)>,
    )],
    &'static [&'static str],
);

fn expected(from: &str, event: &str) -> Option<Expect> {
    const T: &str = "transition";
    Some(match (from, event) {
        ("undecided-allow", "decided") => (
            Active,
            &[(T, Some(("created", "active", "granted")))],
            &["grant-activated"],
        ),
        ("undecided-require-approval", "decided") => (
            Pending,
            &[(T, Some(("created", "pending", "awaiting approval")))],
            &[],
        ),
        ("undecided-deny", "decided") => (Denied, &[], &[]),
        ("pending", "approve") => (
            Active,
            &[
                ("approval", None),
                (T, Some(("pending", "active", "granted"))),
            ],
            &["grant-activated"],
        ),
        ("pending", "reject") => (Rejected, &[(T, Some(("pending", "rejected", "no")))], &[]),
        ("pending", "revoke") => (
            Revoked,
            &[(T, Some(("pending", "revoked", "incident")))],
            &[],
        ),
        ("pending", "lapse") => (
            Lapsed,
            &[(
                T,
                Some(("pending", "lapsed", "no approval before the deadline")),
            )],
            &[],
        ),
        ("pending", "ticket-end") => (
            Revoked,
            &[(T, Some(("pending", "revoked", "ticket INC-1 is resolved")))],
            &[],
        ),
        ("active", "revoke") => (
            Revoked,
            &[(T, Some(("active", "revoked", "incident")))],
            &["grant-ended"],
        ),
        ("active", "release") => (
            Released,
            &[(
                T,
                Some(("active", "released", "released early by its holder")),
            )],
            &["grant-ended"],
        ),
        ("active", "expire") => (
            Expired,
            &[(T, Some(("active", "expired", "expired")))],
            &["grant-ended"],
        ),
        ("active", "ticket-end") => (
            Revoked,
            &[(T, Some(("active", "revoked", "ticket INC-1 is resolved")))],
            &["grant-ended"],
        ),
        _ => return None,
    })
}

#[test]
fn every_state_by_every_event() {
    let mut rows: Vec<(String, Grant)> = [
        Pending, Active, Expired, Revoked, Released, Rejected, Lapsed, Denied,
    ]
    .into_iter()
    .map(|s| (s.as_str().to_string(), base(s)))
    .collect();
    for (name, o) in [
        ("undecided-allow", Outcome::Allow),
        ("undecided-require-approval", Outcome::RequireApproval),
        ("undecided-deny", Outcome::Deny),
    ] {
        rows.push((name.to_string(), undecided(o)));
    }
    let mut allowed = 0;
    for (from, grant) in &rows {
        for (name, event) in events() {
            let mut g = grant.clone();
            let result = g.apply(event, "bob", NOW);
            match (expected(from, name), result) {
                (Some((to, audit, outbox)), Ok(fx)) => {
                    allowed += 1;
                    assert_eq!(g.state, to, "{from} × {name}");
                    if from.starts_with("undecided") {
                        assert!(to.can_begin_as(), "{from} × {name}");
                        assert_eq!(g.decision, json!({"outcome": "x"}));
                    } else {
                        assert!(grant.state.can_become(to), "{from} × {name}: not an edge");
                    }
                    let kinds: Vec<_> = fx.audit.iter().map(|d| d.kind.as_str()).collect();
                    let want: Vec<_> = audit.iter().map(|(k, _)| *k).collect();
                    assert_eq!(kinds, want, "{from} × {name}");
                    for (d, (_, t)) in fx.audit.iter().zip(audit.iter()) {
                        assert_eq!(d.at, NOW, "{from} × {name}");
                        assert_eq!(d.grant_id.as_deref(), Some("g-1"));
                        assert_eq!(d.request_id.as_deref(), Some("r1"));
                        if let Some((f, t, why)) = t {
                            assert_eq!(d.data["from"], *f, "{from} × {name}");
                            assert_eq!(d.data["to"], *t, "{from} × {name}");
                            assert_eq!(d.data["reason"], *why, "{from} × {name}");
                            assert_eq!(d.data["expires-at"], json!(g.expires_at));
                        }
                    }
                    let kinds: Vec<_> = fx.outbox.iter().map(|e| e.kind.as_str()).collect();
                    assert_eq!(kinds, outbox.to_vec(), "{from} × {name}");
                    for e in &fx.outbox {
                        assert_eq!(e.id, format!("g-1:{}", e.kind));
                        assert_eq!(e.sequence, 0, "the store assigns it");
                        assert_eq!(e.payload["state"], to.as_str());
                        assert_eq!(e.payload["expires-at"], json!(g.expires_at));
                        assert_eq!(e.payload["ended-at"], json!(g.ended_at));
                        assert_eq!(e.payload["end-reason"], json!(g.end_reason));
                    }
                    assert!(fx.review.is_none(), "not break-glass");
                    if to.is_final() && to != Denied {
                        assert_eq!(g.ended_at, Some(NOW));
                    }
                }
                (None, Err(IllegalTransition::State { id, from: f, .. })) => {
                    assert_eq!(id, "g-1");
                    assert_eq!(f, grant.state.as_str(), "{from} × {name}");
                    assert_eq!(&g, grant, "{from} × {name}: a refusal changed the grant");
                }
                (want, got) => panic!("{from} × {name}: expected {want:?}, got {got:?}"),
            }
        }
    }
    // 12 allowed pairs out of 11 × 9.
    assert_eq!(allowed, 12);
}

fn approve(g: &mut Grant, who: &str, at: Millis) -> Result<Effects, IllegalTransition> {
    g.apply(
        GrantEvent::Approve {
            groups: vec!["leads".into()],
            review_id: Some("rv-1".into()),
            also_known_as: Vec::new(),
            sign_in: None,
        },
        who,
        at,
    )
}

#[test]
fn an_approval_at_lapses_at_lapses_the_grant_instead() {
    let mut g = base(Pending);
    let deadline = g.lapses_at.expect("deadline");
    let fx = approve(&mut g, "bob", deadline).expect("applied");
    assert_eq!(g.state, Lapsed);
    assert!(g.approvals.is_empty());
    assert_eq!(fx.audit.len(), 1);
    assert_eq!(fx.audit[0].actor, "scheduler");
    assert_eq!(fx.audit[0].data["to"], "lapsed");
    // A millisecond earlier it is approved.
    let mut g = base(Pending);
    approve(&mut g, "bob", deadline - 1).expect("approved");
    assert_eq!(g.state, Active);
    assert_eq!(g.issued_at, Some(deadline - 1));
    assert_eq!(g.expires_at, Some(deadline - 1 + TTL as i64 * 1000));
    assert_eq!(g.lapses_at, None);
    // Rejection too.
    let mut g = base(Pending);
    g.apply(
        GrantEvent::Reject {
            groups: vec!["leads".into()],
            reason: "no".into(),
            also_known_as: Vec::new(),
        },
        "bob",
        deadline,
    )
    .expect("applied");
    assert_eq!(g.state, Lapsed);
}

#[test]
fn a_quarantined_grant_can_be_ended_but_never_approved() {
    let mut g = base(Pending);
    g.quarantined = Some("bad json".into());
    g.required.clear();
    let before = g.clone();
    assert!(matches!(
        approve(&mut g, "bob", NOW),
        Err(IllegalTransition::Quarantined { .. })
    ));
    assert!(matches!(
        g.apply(GrantEvent::Activate { review_id: None }, "bob", NOW),
        Err(IllegalTransition::Quarantined { .. })
    ));
    assert_eq!(g, before);
    g.apply(GrantEvent::Revoke { reason: "x".into() }, "admin", NOW)
        .expect("revoke");
    assert_eq!(g.state, Revoked);
}

#[test]
fn self_approval_is_refused_under_any_spelling() {
    for who in [
        "alice",
        "ALICE",
        " alice ",
        "ａｌｉｃｅ",
        "pipe",
        "Pipe",
        "ｐｉｐｅ",
    ] {
        let mut g = base(Pending);
        assert!(
            matches!(
                approve(&mut g, who, NOW),
                Err(IllegalTransition::NotEligible(_))
            ),
            "{who} approved"
        );
        assert!(
            matches!(
                g.apply(
                    GrantEvent::Reject {
                        groups: vec!["leads".into()],
                        reason: "x".into(),
                        also_known_as: Vec::new(),
                    },
                    who,
                    NOW
                ),
                Err(IllegalTransition::NotEligible(_))
            ),
            "{who} rejected"
        );
        assert_eq!(g.state, Pending);
    }
    let mut g = base(Pending);
    let outsider = g.apply(
        GrantEvent::Approve {
            groups: vec!["finance".into()],
            review_id: None,
            also_known_as: Vec::new(),
            sign_in: None,
        },
        "dave",
        NOW,
    );
    assert!(matches!(outsider, Err(IllegalTransition::NotEligible(_))));
}

#[test]
fn quorum_counts_each_person_once_and_activates_on_the_last() {
    let mut g = base(Pending);
    g.required[0].min = 2;
    let fx = approve(&mut g, "bob", NOW).expect("first");
    assert_eq!(g.state, Pending);
    assert_eq!(fx.audit.len(), 1);
    assert_eq!(fx.audit[0].kind, audit::kind::APPROVAL);
    assert_eq!(fx.audit[0].data["approver"], "bob");
    assert!(fx.outbox.is_empty());
    assert!(matches!(
        approve(&mut g, "ＢＯＢ", NOW + 1),
        Err(IllegalTransition::AlreadyApproved { .. })
    ));
    let fx = approve(&mut g, "carol", NOW + 2).expect("second");
    assert_eq!(g.state, Active);
    assert_eq!(g.approvals.len(), 2);
    assert_eq!(g.expires_at, Some(NOW + 2 + TTL as i64 * 1000));
    assert_eq!(fx.outbox.len(), 1);
    assert_eq!(fx.outbox[0].payload["issued-at"], NOW + 2);
}

#[test]
fn expiry_records_its_lag_and_waits_for_its_deadline() {
    let mut g = base(Active);
    let before = g.clone();
    assert!(
        g.apply(GrantEvent::Expire { due_by: NOW - 1 }, "scheduler", NOW + 5)
            .is_err()
    );
    assert_eq!(g, before);
    let fx = g
        .apply(GrantEvent::Expire { due_by: NOW }, "scheduler", NOW + 5)
        .expect("expire");
    assert_eq!(g.revocation_lag_ms, Some(5));
    assert_eq!(fx.audit[0].data["revocation-lag-ms"], 5);
    let mut g = base(Pending);
    assert!(
        g.apply(GrantEvent::Lapse { due_by: NOW + 999 }, "scheduler", NOW)
            .is_err()
    );
}

#[test]
fn ticket_end_needs_a_finished_ticket_and_the_grant_asking_for_it() {
    let event = |state| GrantEvent::TicketEnd {
        ticket: "INC-1".into(),
        state,
    };
    let mut g = base(Active);
    assert!(g.apply(event(TicketState::InProgress), "t", NOW).is_err());
    g.revoke_on_ticket_close = false;
    assert!(g.apply(event(TicketState::Closed), "t", NOW).is_err());
    assert_eq!(g.state, Active);
    g.revoke_on_ticket_close = true;
    g.apply(event(TicketState::Closed), "ticket INC-1", NOW)
        .expect("revoked");
    assert_eq!(g.end_reason.as_deref(), Some("ticket INC-1 is closed"));
    assert_eq!(g.ended_by.as_deref(), Some("ticket INC-1"));
}

#[test]
fn activation_needs_every_requirement_met_and_opens_a_break_glass_review() {
    let mut g = base(Pending);
    g.break_glass = true;
    assert!(
        g.apply(GrantEvent::Activate { review_id: None }, "x", NOW)
            .is_err()
    );
    g.required.clear();
    let fx = g
        .apply(
            GrantEvent::Activate {
                review_id: Some("rv-7".into()),
            },
            "x",
            NOW,
        )
        .expect("active");
    assert_eq!(g.state, Active);
    let review = fx.review.expect("review");
    assert_eq!(
        (review.id.as_str(), review.grant_id.as_str()),
        ("rv-7", "g-1")
    );
    assert_eq!(fx.audit.last().map(|d| d.kind.as_str()), Some("review"));
    // A decided break-glass allow opens one too.
    let mut g = undecided(Outcome::Allow);
    g.break_glass = true;
    let fx = g
        .apply(
            GrantEvent::Decided {
                decision: json!({}),
                approval_timeout_ms: 1,
                review_id: Some("rv-8".into()),
            },
            "pipe",
            NOW,
        )
        .expect("decided");
    assert_eq!(fx.review.map(|r| r.id), Some("rv-8".to_string()));
}

#[test]
fn an_alias_of_the_requester_or_subject_may_not_approve_or_reject() {
    // `a.smith` is alice's other name ([identity-aliases]); `pipe` asked.
    for (who, aka) in [("a.smith", "Alice"), ("svc-approver", " PIPE ")] {
        let mut g = base(Pending);
        let r = g.apply(
            GrantEvent::Approve {
                groups: vec!["leads".into()],
                review_id: None,
                also_known_as: vec![aka.into()],
                sign_in: None,
            },
            who,
            NOW,
        );
        assert!(
            matches!(r, Err(IllegalTransition::NotEligible(_))),
            "{who} ({aka}) approved: {r:?}"
        );
        let r = g.apply(
            GrantEvent::Reject {
                groups: vec!["leads".into()],
                reason: "x".into(),
                also_known_as: vec![aka.into()],
            },
            who,
            NOW,
        );
        assert!(matches!(r, Err(IllegalTransition::NotEligible(_))), "{r:?}");
        assert_eq!(g.state, Pending);
    }
}

#[test]
fn one_person_under_two_names_approves_once_and_the_sign_in_is_kept() {
    let mut g = base(Pending);
    g.required[0].min = 2;
    let sign_in = crate::grant::SignIn {
        identity_provider: "okta".into(),
        jti: Some("j-1".into()),
        session: Some("s-1".into()),
    };
    g.apply(
        GrantEvent::Approve {
            groups: vec!["leads".into()],
            review_id: None,
            also_known_as: vec!["bob@example.com".into()],
            sign_in: Some(sign_in.clone()),
        },
        "bob",
        NOW,
    )
    .expect("first approval");
    assert_eq!(g.approvals[0].sign_in.as_ref(), Some(&sign_in));
    let again = g.apply(
        GrantEvent::Approve {
            groups: vec!["leads".into()],
            review_id: None,
            also_known_as: vec!["bob".into()],
            sign_in: None,
        },
        "Bob@Example.com",
        NOW,
    );
    assert!(
        matches!(again, Err(IllegalTransition::AlreadyApproved { .. })),
        "{again:?}"
    );
    assert_eq!(g.approvals.len(), 1);
}
