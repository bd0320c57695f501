//! The store contract, checked against both backends (SQLite file and a fresh
//! PostgreSQL database): what the service relies on, directly at the trait.

use jitgate::audit::AuditDraft;
use jitgate::grant::{Grant, GrantState};
use jitgate::service::ServiceError;
use jitgate::store::{Effects, OutboxEvent, Store, StoreError};
use jitgate_tests::server::{Backend, TestStore};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A store of `b` plus what keeps it alive.
fn open(b: Backend) -> (Arc<dyn Store>, tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(b, dir.path());
    let s = jitgate::store::open(&t.url).expect("open store");
    (s, dir, t)
}

fn grant(id: &str, state: GrantState, expires_at: Option<i64>, lapses_at: Option<i64>) -> Grant {
    let mut req = jitgate_tests::file_recovery_json();
    req["id"] = json!(format!("req-{id}"));
    Grant {
        id: id.into(),
        body_hash: "x".into(),
        requested_by: "pipeline".into(),
        state,
        outcome: jitgate::decision::Outcome::Allow,
        decision: json!({}),
        ttl: 60,
        created_at: 1,
        expires_at,
        lapses_at,
        ..Grant::of(jitgate_tests::request(&req))
    }
}

fn effects(g: &Grant, kind: &str) -> Effects {
    Effects {
        audit: vec![AuditDraft::new(1, "transition", "test", json!({"to": kind})).grant(&g.id)],
        outbox: vec![OutboxEvent {
            id: format!("{}:{kind}", g.id),
            grant_id: g.id.clone(),
            kind: kind.into(),
            payload: json!({"grant": g.id}),
            created_at: 1,
            attempts: 0,
            sequence: 0,
        }],
        review: None,
    }
}

fn duplicate_request_id_is_refused_naming_the_grant(b: Backend) {
    let (s, _d, _t) = open(b);
    let g = grant("g1", GrantState::Active, Some(100), None);
    s.create_grant(&g, effects(&g, "grant-activated"))
        .expect("create");
    let mut twin = g.clone();
    twin.id = "g2".into();
    match s.create_grant(&twin, effects(&twin, "grant-activated")) {
        Err(StoreError::DuplicateRequest(id)) => assert_eq!(id, "g1"),
        other => panic!("want DuplicateRequest(g1), got {other:?}"),
    }
    // Nothing of the refused one was written.
    assert!(s.grant("g2").expect("read").is_none());
    assert_eq!(s.outbox_pending().expect("pending"), 1);
    assert_eq!(s.audit_page(0, 100).expect("audit").len(), 1);
}

fn update_grant_rolls_back_on_closure_error(b: Backend) {
    let (s, _d, _t) = open(b);
    let g = grant("g1", GrantState::Active, Some(100), None);
    s.create_grant(&g, effects(&g, "grant-activated"))
        .expect("create");
    let r = s.update_grants(&["g1".to_string()], &mut |g| {
        g.state = GrantState::Revoked;
        Err(ServiceError::Conflict("no".into()))
    });
    assert!(r.is_err());
    let r = s.update_grant("g1", &mut |g| {
        g.state = GrantState::Revoked;
        Err(ServiceError::Conflict("no".into()))
    });
    assert!(matches!(r, Err(ServiceError::Conflict(_))), "{r:?}");
    assert_eq!(
        s.grant("g1").expect("read").map(|g| g.state),
        Some(GrantState::Active)
    );
    assert_eq!(s.audit_page(0, 100).expect("audit").len(), 1);
    // Ok(None) writes nothing either; a missing grant is NotFound.
    let g = s
        .update_grant::<StoreError>("g1", &mut |_| Ok(None))
        .expect("noop");
    assert_eq!(g.state, GrantState::Active);
    assert!(
        s.update_grant::<StoreError>("nope", &mut |_| Ok(None))
            .is_err()
    );
    // A committed change carries its effects.
    let g = s
        .update_grant::<StoreError>("g1", &mut |g| {
            g.state = GrantState::Revoked;
            Ok(Some(effects(g, "grant-ended")))
        })
        .expect("revoke");
    assert_eq!(g.state, GrantState::Revoked);
    assert_eq!(s.audit_page(0, 100).expect("audit").len(), 2);
    assert_eq!(s.outbox_pending().expect("pending"), 2);
}

fn due_and_next_deadline(b: Backend) {
    let (s, _d, _t) = open(b);
    assert_eq!(s.next_deadline().expect("next"), None);
    for (id, state, exp, lapse) in [
        ("a", GrantState::Active, Some(300), None),
        ("b", GrantState::Active, Some(100), None),
        ("p", GrantState::Pending, None, Some(200)),
        ("x", GrantState::Expired, Some(50), None),
    ] {
        let g = grant(id, state, exp, lapse);
        s.create_grant(&g, Effects::default()).expect("create");
    }
    assert_eq!(s.next_deadline().expect("next"), Some(100));
    assert_eq!(s.due(99, 10).expect("due"), Vec::<String>::new());
    assert_eq!(s.due(250, 10).expect("due"), vec!["b", "p"]);
    assert_eq!(s.due(1000, 1).expect("due"), vec!["b"]);
    assert_eq!(s.count_active().expect("count"), 2);
}

fn outbox_claims_are_exclusive_until_the_lease_ends(b: Backend) {
    let (s, _d, _t) = open(b);
    for i in 0..20 {
        let g = grant(&format!("g{i:02}"), GrantState::Active, Some(100), None);
        s.create_grant(&g, effects(&g, "grant-activated"))
            .expect("create");
    }
    let lease = Duration::from_secs(30);
    // Four claimers at once: every event goes to exactly one of them.
    let claimed: Vec<Vec<String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                sc.spawn(move || {
                    s.outbox_claim(10, lease, 7)
                        .expect("claim")
                        .into_iter()
                        .map(|e| e.id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("join")).collect()
    });
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let set: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        set.len(),
        "an event was claimed twice: {claimed:?}"
    );
    assert_eq!(set.len(), 20);
    // Leased: nothing due again before the lease runs out…
    assert!(
        s.outbox_claim(10 + 29_000, lease, 100)
            .expect("claim")
            .is_empty()
    );
    // …a failed one comes back at its retry time, a delivered one never.
    s.outbox_failed("g00:grant-activated", 500, "boom")
        .expect("failed");
    s.outbox_delivered("g01:grant-activated", 20)
        .expect("delivered");
    let again = s.outbox_claim(600, lease, 100).expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    // After the lease, unacknowledged claims (a crashed replica's) are due again.
    let after = s.outbox_claim(10 + 30_001, lease, 100).expect("claim");
    assert_eq!(after.len(), 18);
    assert_eq!(s.outbox_pending().expect("pending"), 19);
}

fn audit_chain_stays_one_line_under_concurrent_appends(b: Backend) {
    let (s, _d, _t) = open(b);
    std::thread::scope(|sc| {
        for w in 0..4 {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..25 {
                    let d = AuditDraft::new(i, "decision", &format!("w{w}"), json!({"i": i}));
                    s.append_audit(vec![d.clone(), d]).expect("append");
                }
            });
        }
    });
    let records = s.audit_page(0, 1000).expect("page");
    assert_eq!(records.len(), 200);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
    }
    match jitgate::service::verify_store(s.as_ref()).expect("verify") {
        Ok(n) => assert_eq!(n, 200),
        Err(e) => panic!("chain broken: {e}"),
    }
}

/// Three replicas (three stores on one database, each its own connections)
/// sweep the same due grants at once: each grant is ended by exactly one of
/// them, and the loser writes nothing.
fn replicas_racing_end_each_grant_once(b: Backend) {
    let (s, _d, t) = open(b);
    let n = 200;
    for i in 0..n {
        let g = grant(
            &format!("g{i:03}"),
            GrantState::Active,
            Some(100 + i as i64),
            None,
        );
        s.create_grant(&g, Effects::default()).expect("create");
    }
    let replicas: Vec<Arc<dyn Store>> = (0..3)
        .map(|_| jitgate::store::open(&t.url).expect("second store"))
        .collect();
    let ended: Vec<usize> = std::thread::scope(|sc| {
        let hs: Vec<_> = replicas
            .iter()
            .map(|r| {
                sc.spawn(move || {
                    let mut mine = 0;
                    loop {
                        let ids = r.due(10_000, 50).expect("due");
                        if ids.is_empty() {
                            break;
                        }
                        r.update_grants::<StoreError>(&ids, &mut |g| {
                            if g.state != GrantState::Active {
                                return Ok(None); // someone else got there first
                            }
                            mine += 1;
                            g.state = GrantState::Expired;
                            Ok(Some(Effects {
                                audit: vec![
                                    AuditDraft::new(
                                        1,
                                        "transition",
                                        "test",
                                        json!({"to": "expired"}),
                                    )
                                    .grant(&g.id),
                                ],
                                ..Effects::default()
                            }))
                        })
                        .expect("update");
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("join")).collect()
    });
    assert_eq!(
        ended.iter().sum::<usize>(),
        n,
        "ended per replica: {ended:?}"
    );
    let records = s.audit_page(0, 10_000).expect("audit");
    assert_eq!(records.len(), n, "one record per ending");
    let ids: BTreeSet<_> = records
        .iter()
        .filter_map(|r| r.draft.grant_id.clone())
        .collect();
    assert_eq!(ids.len(), n);
    assert!(matches!(
        jitgate::service::verify_store(s.as_ref()),
        Ok(Ok(_))
    ));
    assert_eq!(s.count_active().expect("count"), 0);
}

/// Each listed contract check runs as `store::sqlite::NAME` and
/// `store::postgres::NAME`.
/// Issue 9 item 6: a record the store refuses (PostgreSQL cannot hold a NUL
/// in a text column) failed every other record of its group-commit batch.
fn one_unstorable_record_fails_only_its_own_caller(b: Backend) {
    let (s, _d, _t) = open(b);
    let gc = jitgate::service::group_commit::GroupCommit::start(s.clone()).expect("writer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        // Queue all before awaiting any, so they share one batch.
        let waits: Vec<_> = (0..10)
            .map(|i| {
                let mut d = AuditDraft::new(i, "decision", "t", json!({"i": i}));
                if i == 4 {
                    d = d.request("bad\u{0}id");
                }
                gc.submit(d)
            })
            .collect();
        let mut out = Vec::new();
        for w in waits {
            out.push(w.await.is_ok());
        }
        out
    });
    let stored = s.audit_page(0, 100).expect("page");
    if b == Backend::Postgres {
        assert_eq!(
            results,
            (0..10).map(|i| i != 4).collect::<Vec<_>>(),
            "only the NUL record fails"
        );
        assert_eq!(stored.len(), 9);
    } else {
        // SQLite stores the NUL; nobody fails.
        assert!(results.iter().all(|ok| *ok), "{results:?}");
        assert_eq!(stored.len(), 10);
    }
    assert_eq!(jitgate::audit::verify(&stored), Ok(stored.len() as u64));
}

both_stores!(
    one_unstorable_record_fails_only_its_own_caller,
    duplicate_request_id_is_refused_naming_the_grant,
    update_grant_rolls_back_on_closure_error,
    due_and_next_deadline,
    outbox_claims_are_exclusive_until_the_lease_ends,
    audit_chain_stays_one_line_under_concurrent_appends,
    replicas_racing_end_each_grant_once,
);
