//! [`Live`] against a full read: the same report at every window as the
//! chain grows, and what a follower finds when the chain is tampered with
//! after it was read.

use std::sync::Arc;

use super::tests::{MIN, T0, scenario};
use super::*;
use crate::audit::{ChainError, seal};
use crate::store::sqlite::SqliteStore;

struct Chain {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn Store>,
}

fn chain() -> Chain {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("store"));
    Chain {
        _dir: dir,
        path,
        store,
    }
}

/// Windows over the scenario's day, edges included.
fn windows() -> Vec<(Millis, Millis)> {
    let mut out = Vec::new();
    for s in [0, 30, 55, 60, 65, 90, 120, 179] {
        for u in [61, 66, 91, 120, 150, 180, 181, 240] {
            if s < u {
                out.push((T0 + s * MIN, T0 + u * MIN));
            }
        }
    }
    out
}

#[test]
fn a_followed_review_equals_a_full_read_at_every_window_as_the_chain_grows() {
    let log = scenario();
    let c = chain();
    let live = Arc::new(Live::default());
    let drafts: Vec<_> = log.records.iter().map(|r| r.draft.clone()).collect();
    for part in drafts.chunks(drafts.len() / 3 + 1) {
        c.store.append_audit(part.to_vec()).expect("append");
        for (since, until) in windows() {
            let full = read(c.store.as_ref(), since, until).expect("read");
            let followed = live.review(&c.store, since, until, T0).expect("live");
            assert_eq!(followed, full, "window {since}..{until}");
        }
    }
    let status = live.status(&c.store, T0).expect("status");
    assert!(status.report.ok());
    assert_eq!(status.report.checked, log.records.len() as u64);
    assert_eq!(status.walked_at, T0);
    // The rows were not all empty: the comparison compared something.
    let r = live.review(&c.store, T0, T0 + 240 * MIN, T0).expect("live");
    assert!(r.rows.len() >= 5, "{:?}", r.rows);
}

#[test]
fn an_empty_window_is_refused_by_a_follower_as_by_a_read() {
    let c = chain();
    let live = Arc::new(Live::default());
    let e = live.review(&c.store, T0, T0, T0).expect_err("empty window");
    assert!(
        matches!(e, ReviewError::Window { field: "until", .. }),
        "{e}"
    );
}

/// The scenario's chain in a store, and a follower (re-walking after
/// `rewalk_after`) that has read it all at `T0`.
fn followed_scenario(rewalk_after: Millis) -> (Chain, Arc<Live>) {
    let c = chain();
    let live = Arc::new(Live::new(rewalk_after));
    c.store
        .append_audit(scenario().records.iter().map(|r| r.draft.clone()).collect())
        .expect("append");
    assert!(live.status(&c.store, T0).expect("status").report.ok());
    (c, live)
}

/// An insider with the database file: the append-only triggers go first.
fn sql(c: &Chain, statement: &str, args: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(&c.path).expect("open");
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
    )
    .expect("drop triggers");
    conn.execute(statement, args).expect("tamper");
}

/// An insider edits a request record in place after the follower read it.
/// Records are checked once, as they are read, so the follower still says
/// verified; the walk from record 1 (explicit, or the background one once
/// the last walk is older than `rewalk_after`) finds it.
#[test]
fn a_record_edited_after_it_was_followed_is_found_by_the_next_walk_from_record_1() {
    let (c, live) = followed_scenario(10 * MIN);
    sql(
        &c,
        "UPDATE audit SET data = replace(data, 'finance share', 'payroll share') WHERE seq = 1",
        [],
    );
    let before = live.status(&c.store, T0 + MIN).expect("status");
    assert!(before.report.ok(), "read once: the edit is not seen yet");

    let walked = live.rewalk(&c.store, T0 + 2 * MIN).expect("walk");
    assert_eq!(walked.report.bad, vec![ChainError::Edited { seq: 1 }]);
    assert_eq!(walked.walked_at, T0 + 2 * MIN);
    let after = live.status(&c.store, T0 + 3 * MIN).expect("status");
    assert_eq!(after.report.bad_count, 1);
    let r = live
        .review(&c.store, T0 - MIN, T0 + 240 * MIN, T0 + 3 * MIN)
        .expect("review");
    assert_eq!(r.chain.state, ChainState::Broken);
    assert_eq!(r.chain.first_bad_seq, Some(1));
}

#[test]
fn a_follower_walks_again_in_the_background_when_its_last_walk_is_old() {
    let (c, live) = followed_scenario(10 * MIN);
    sql(&c, "UPDATE audit SET actor = 'mallory' WHERE seq = 2", []);
    // Not yet old: no walk starts, and none is seen.
    assert!(
        live.status(&c.store, T0 + 9 * MIN)
            .expect("status")
            .report
            .ok()
    );
    // Old: this view starts a walk and does not wait for it; a later view
    // sees its result. Polled (the walk runs on its own thread), bounded.
    let _ = live.status(&c.store, T0 + 10 * MIN).expect("status");
    let mut seen = None;
    for _ in 0..500 {
        let s = live.status(&c.store, T0 + 10 * MIN).expect("status");
        if s.walked_at == T0 + 10 * MIN {
            seen = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let s = seen.expect("the background walk replaced the state");
    assert_eq!(s.report.bad, vec![ChainError::Edited { seq: 2 }]);
}

/// An insider rewrites a record and re-hashes every record after it, so
/// the chain verifies from record 1 (what signed checkpoints are for). A
/// follower that read the chain before remembers its head: the next record
/// the service appends links to the forged head, and the follower says so.
#[test]
fn a_chain_rewritten_and_rehashed_after_it_was_followed_breaks_at_the_next_appended_record() {
    let (c, live) = followed_scenario(Live::default().rewalk_after());
    let stored = c.store.audit_page(0, 10_000).expect("records");
    let n = stored.len() as i64;
    let mut prev = stored[1].hash.clone();
    for r in &stored[2..] {
        let mut d = r.draft.clone();
        if r.seq == 3 {
            d.actor = "mallory".into();
        }
        let forged = seal(&prev, r.seq, d);
        sql(
            &c,
            "UPDATE audit SET actor = ?1, data = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?5",
            rusqlite::params![
                forged.draft.actor,
                forged.stored_data,
                forged.prev_hash,
                forged.hash,
                forged.seq
            ],
        );
        prev = forged.hash;
    }
    assert!(
        crate::audit::verify_store(c.store.as_ref(), Default::default(), &mut |_| {})
            .expect("walk")
            .ok(),
        "re-hashed: a walk from record 1 alone cannot tell"
    );
    c.store
        .append_audit(vec![crate::audit::AuditDraft::new(
            T0 + 300 * MIN,
            crate::audit::kind::TICKET_EVENT,
            "pipeline",
            serde_json::json!({"revoked": []}),
        )])
        .expect("append");
    let s = live.status(&c.store, T0 + MIN).expect("status");
    assert_eq!(
        s.report.bad,
        vec![ChainError::Broken {
            seq: n + 1,
            after: n
        }]
    );
}

/// A chain too large to keep: past the memory cap the follower keeps no
/// events (what it holds stops growing with the chain), still follows the
/// chain's state, and its reviews are a full read's.
#[test]
fn past_its_memory_cap_a_follower_keeps_nothing_and_reviews_as_a_full_read() {
    let log = scenario();
    let c = chain();
    let live = Arc::new(Live::with_cap(10 * MIN, 2_000));
    let drafts: Vec<_> = log.records.iter().map(|r| r.draft.clone()).collect();
    let (first, rest) = drafts.split_at(2);
    c.store.append_audit(first.to_vec()).expect("append");
    live.status(&c.store, T0).expect("status");
    let small = live.kept_bytes();
    assert!(small > 0 && small <= 2_000, "{small}");
    c.store.append_audit(rest.to_vec()).expect("append");
    for (since, until) in windows() {
        let full = read(c.store.as_ref(), since, until).expect("read");
        let followed = live.review(&c.store, since, until, T0).expect("live");
        assert_eq!(followed, full, "window {since}..{until}");
    }
    assert_eq!(live.kept_bytes(), 0, "past the cap nothing is kept");
    let s = live.status(&c.store, T0).expect("status");
    assert_eq!(s.report.checked, log.records.len() as u64);
    assert!(s.report.ok());
    // A default follower keeps the whole scenario.
    let roomy = Arc::new(Live::default());
    roomy.status(&c.store, T0).expect("status");
    assert!(roomy.kept_bytes() > 2_000, "{}", roomy.kept_bytes());
}
