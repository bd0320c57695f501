//! Provisioning order and webhook robustness: a grant's events reach the
//! target in sequence order whatever the target does (refuse, stall), on one
//! replica or two, and a target that stalls holds up nothing else.

use jitgate::grant::{Grant, GrantState};
use jitgate::store::{Effects, OutboxEvent};
use jitgate_tests::http::post;
use jitgate_tests::pg::TestDb;
use jitgate_tests::receiver::{Answer, Arrival, ScriptedReceiver};
use jitgate_tests::server::{Backend, Server, TestStore, body, wait_for, write_config_with};
use serde_json::{Value, json};
use std::time::Duration;

fn webhook(receiver: &ScriptedReceiver, extra: &str) -> String {
    format!(
        "[provisioner]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\nsecret-env = \"JITGATE_WEBHOOK_SECRET\"\n{extra}",
        receiver.addr
    )
}

fn id_of(g: &Value) -> String {
    g["id"].as_str().unwrap_or_default().to_string()
}

/// Refuses the first delivery of each `grant-activated`, accepts the rest.
fn refuse_first_activation(a: &Arrival, before: &[Arrival]) -> Answer {
    let first_try = !before.iter().any(|b| b.event_id == a.event_id);
    if a.event_id.ends_with(":grant-activated") && first_try {
        Answer::Refuse
    } else {
        Answer::Accept
    }
}

/// What a target that applies events as they come ends up with, per the
/// accepted deliveries of `grant`: (kind, header sequence, payload sequence).
fn accepted_of(r: &ScriptedReceiver, grant: &str) -> Vec<(String, String, Value)> {
    r.accepted()
        .into_iter()
        .filter(|a| a.body["grant-id"] == grant)
        .map(|a| {
            (
                a.body["kind"].as_str().unwrap_or_default().to_string(),
                a.sequence,
                a.body["sequence"].clone(),
            )
        })
        .collect()
}

fn assert_activated_then_ended(r: &ScriptedReceiver, grant: &str) {
    let both = wait_for(Duration::from_secs(30), || {
        let got = accepted_of(r, grant);
        (got.len() >= 2).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "both events never arrived: {:?}",
            r.arrivals()
                .iter()
                .map(|a| (&a.event_id, a.answer))
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(
        both,
        vec![
            ("grant-activated".to_string(), "1".to_string(), json!(1)),
            ("grant-ended".to_string(), "2".to_string(), json!(2)),
        ],
        "the target saw the revocation before the activation (it would grant revoked access)"
    );
    // The refused first attempt carried the same sequence.
    let first = r
        .arrivals()
        .into_iter()
        .find(|a| a.body["grant-id"] == grant)
        .expect("a first attempt");
    assert_eq!(
        (first.answer, first.sequence.as_str()),
        (Answer::Refuse, "1")
    );
}

/// The attack of issue 9 item 3: the target refuses the first delivery of
/// `grant-activated`, and the grant is revoked while that delivery waits out
/// its backoff. The target must still see activated (1) before ended (2).
fn revoked_within_the_activation_backoff_reaches_the_target_activated_then_ended(b: Backend) {
    let receiver = ScriptedReceiver::start(refuse_first_activation);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let cfg = write_config_with(dir.path(), &store.url, &webhook(&receiver, ""));
    let s = Server::start(&cfg);
    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("order-1", "alice", "file-recovery", 3600),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    let id = id_of(&g.json());
    assert!(
        wait_for(Duration::from_secs(10), || (!receiver
            .arrivals()
            .is_empty())
        .then_some(()))
        .is_some(),
        "the activation was never attempted"
    );
    // Within the 1 s backoff of the refused activation.
    let r = post(
        s.addr,
        &format!("/v1/grants/{id}/revoke"),
        Some("t-admin"),
        &json!({"reason": "left the company"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_activated_then_ended(&receiver, &id);
}

/// The same attack across two replicas sharing PostgreSQL: the grant is
/// requested on one replica and revoked on the other, and both dispatchers
/// drain the outbox. Whichever sends, the order holds.
#[test]
fn postgres_two_replicas_revoked_within_the_activation_backoff_deliver_activated_then_ended() {
    let receiver = ScriptedReceiver::start(refuse_first_activation);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::create();
    let servers: Vec<Server> = (0..2)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            Server::start(&write_config_with(&d, &db.url, &webhook(&receiver, "")))
        })
        .collect();
    let mut ids = Vec::new();
    for i in 0..4 {
        let g = post(
            servers[i % 2].addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("order-r{i}"), "alice", "file-recovery", 3600),
        );
        assert_eq!(g.status, 201, "{}", g.body);
        ids.push(id_of(&g.json()));
    }
    assert!(
        wait_for(Duration::from_secs(10), || (receiver.arrivals().len() >= 4)
            .then_some(()))
        .is_some(),
        "the activations were never attempted"
    );
    for (i, id) in ids.iter().enumerate() {
        let r = post(
            servers[(i + 1) % 2].addr,
            &format!("/v1/grants/{id}/revoke"),
            Some("t-admin"),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for id in &ids {
        assert_activated_then_ended(&receiver, id);
    }
}

/// Issue 9 item 5: a target that answers 200 and then never finishes its
/// body. That delivery ends at its deadline; the other grants' events are
/// delivered meanwhile, and so is the stalled grant's next event.
fn stalling_webhook_body_does_not_stop_other_deliveries(b: Backend) {
    let receiver = ScriptedReceiver::start(|a, before| {
        if before.is_empty() {
            Answer::AcceptThenStall
        } else {
            let _ = a;
            Answer::Accept
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let cfg = write_config_with(
        dir.path(),
        &store.url,
        &webhook(&receiver, "timeout-ms = 2000\n"),
    );
    let s = Server::start(&cfg);
    let first = post(
        s.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("stall-0", "alice", "file-recovery", 3600),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let stalled = id_of(&first.json());
    assert!(
        wait_for(Duration::from_secs(10), || (!receiver
            .arrivals()
            .is_empty())
        .then_some(()))
        .is_some(),
        "the first delivery was never attempted"
    );
    let mut others = Vec::new();
    for i in 1..4 {
        let g = post(
            s.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("stall-{i}"), "alice", "file-recovery", 3600),
        );
        others.push(id_of(&g.json()));
    }
    let r = post(
        s.addr,
        &format!("/v1/grants/{stalled}/revoke"),
        Some("t-admin"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Generous: the stalled body is held for up to a minute by the receiver.
    let delivered = wait_for(Duration::from_secs(20), || {
        let got: Vec<String> = receiver
            .accepted()
            .iter()
            .map(|a| a.event_id.clone())
            .collect();
        let all = others
            .iter()
            .all(|o| got.contains(&format!("{o}:grant-activated")))
            && got.contains(&format!("{stalled}:grant-ended"));
        all.then_some(got)
    });
    assert!(
        delivered.is_some(),
        "a stalled response body froze deliveries: {:?}",
        receiver.arrivals()
    );
    // 200 was its answer: the stalled event counts as delivered, once.
    let activations = receiver
        .arrivals()
        .iter()
        .filter(|a| a.event_id == format!("{stalled}:grant-activated"))
        .count();
    assert_eq!(activations, 1);
}

/// The store contract behind the order: a grant's later event is not
/// claimed while an earlier one is undelivered (leased, or failed and
/// waiting for its retry), by any claimer; sequences count per grant.
fn claims_hold_a_grants_later_event_until_the_earlier_one_is_delivered(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(b, dir.path());
    let s = jitgate::store::open(&t.url).expect("open store");
    let lease = Duration::from_secs(30);
    let g = grant("g1");
    s.create_grant(&g, fx(&g, "grant-activated", 1))
        .expect("create");
    let claimed = s.outbox_claim(10, lease, 10).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].sequence, &claimed[0].payload["sequence"]),
        (1, &json!(1))
    );
    s.outbox_failed("g1:grant-activated", 5_000, "503")
        .expect("failed");
    // Revoked while the activation waits for its retry.
    s.update_grant::<jitgate::store::StoreError>("g1", &mut |g| {
        g.state = GrantState::Revoked;
        Ok(Some(fx(g, "grant-ended", 20)))
    })
    .expect("end");
    // Before the retry: nothing (the ended event waits behind the activation).
    assert!(s.outbox_claim(1_000, lease, 10).expect("claim").is_empty());
    // Four claimers at the retry time: only the activation, once.
    let claims: Vec<Vec<OutboxEvent>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                sc.spawn(move || s.outbox_claim(5_000, lease, 10).expect("claim"))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("join")).collect()
    });
    let ids: Vec<&str> = claims.iter().flatten().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["g1:grant-activated"]);
    // Even after the activation's lease ran out, the ended event stays behind it.
    let again = s.outbox_claim(5_000 + 30_001, lease, 10).expect("claim");
    assert_eq!(
        again.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["g1:grant-activated"]
    );
    s.outbox_delivered("g1:grant-activated", 40_000)
        .expect("delivered");
    let next = s.outbox_claim(40_001, lease, 10).expect("claim");
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].id.as_str(), next[0].sequence),
        ("g1:grant-ended", 2)
    );
    assert_eq!(next[0].payload["sequence"], 2);
    // Another grant's numbering starts at 1 and is not held up by g1.
    let h = grant("g2");
    s.create_grant(&h, fx(&h, "grant-activated", 50))
        .expect("create");
    let other = s.outbox_claim(40_002, lease, 10).expect("claim");
    assert_eq!(
        other
            .iter()
            .map(|e| (e.id.as_str(), e.sequence))
            .collect::<Vec<_>>(),
        vec![("g2:grant-activated", 1)]
    );
}

fn grant(id: &str) -> Grant {
    let mut req = jitgate_tests::file_recovery_json();
    req["id"] = json!(format!("req-{id}"));
    Grant {
        id: id.into(),
        body_hash: "x".into(),
        requested_by: "pipeline".into(),
        state: GrantState::Active,
        outcome: jitgate::decision::Outcome::Allow,
        decision: json!({}),
        ttl: 60,
        created_at: 1,
        issued_at: Some(1),
        expires_at: Some(1_000_000),
        ..Grant::of(jitgate_tests::request(&req))
    }
}

fn fx(g: &Grant, kind: &str, at: i64) -> Effects {
    Effects {
        audit: Vec::new(),
        outbox: vec![OutboxEvent {
            id: format!("{}:{kind}", g.id),
            grant_id: g.id.clone(),
            kind: kind.into(),
            payload: json!({"grant-id": g.id, "kind": kind}),
            created_at: at,
            attempts: 0,
            sequence: 0,
        }],
        review: None,
    }
}

both_stores!(
    events_queued_before_the_upgrade_get_their_grants_sequence,
    revoked_within_the_activation_backoff_reaches_the_target_activated_then_ended,
    stalling_webhook_body_does_not_stop_other_deliveries,
    claims_hold_a_grants_later_event_until_the_earlier_one_is_delivered,
);

/// A store written before events had sequences: opening it numbers each
/// grant's queued events in the order they were queued, and the order rule
/// applies to them.
fn events_queued_before_the_upgrade_get_their_grants_sequence(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(b, dir.path());
    let rows = "INSERT INTO outbox (id, grant_id, kind, payload, created_at, next_at) VALUES
               ('g:grant-ended', 'g', 'grant-ended', '{}', 20, 20),
               ('g:grant-activated', 'g', 'grant-activated', '{}', 10, 10),
               ('h:grant-activated', 'h', 'grant-activated', '{}', 15, 15);";
    match &t.db {
        None => {
            let c = rusqlite::Connection::open(&t.url).expect("open");
            c.execute_batch(include_str!("../../host/migrations/0001_init.sql"))
                .expect("v1 schema");
            c.execute_batch(&format!(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 0);
                 {rows}"
            ))
            .expect("v1 rows");
        }
        Some(db) => {
            db.exec(include_str!("../../host/migrations/postgres/0001_init.sql"))
                .expect("v1 schema");
            db.exec(&format!(
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 0);
                 {rows}"
            ))
            .expect("v1 rows");
        }
    }
    let s = jitgate::store::open(&t.url).expect("migrate");
    let claimed = s
        .outbox_claim(100, Duration::from_secs(30), 10)
        .expect("claim");
    let got: Vec<(&str, i64)> = claimed
        .iter()
        .map(|e| (e.id.as_str(), e.sequence))
        .collect();
    assert_eq!(
        got,
        vec![("g:grant-activated", 1), ("h:grant-activated", 1)]
    );
    s.outbox_delivered("g:grant-activated", 101)
        .expect("delivered");
    let next = s
        .outbox_claim(102, Duration::from_secs(30), 10)
        .expect("claim");
    assert_eq!(
        next.iter()
            .map(|e| (e.id.as_str(), e.sequence))
            .collect::<Vec<_>>(),
        vec![("g:grant-ended", 2)]
    );
}
