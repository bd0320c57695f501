//! PostgreSQL's staged audit chain (issue 17 item 2): records are staged in
//! `audit_pending` without a lock and moved into the one hash chain by a
//! chainer. These check what that must keep: one chain, every record in it
//! exactly once, readers seeing every answered record, a dead writer's
//! staged records chained by someone else, pending rows refused to honest
//! edits, and a chain written before the migration kept and extended.

use jitgate::audit::AuditDraft;
use jitgate::store::Store;
use jitgate_tests::pg::TestDb;
use jitgate_tests::server::wait_for;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn open(db: &TestDb) -> Arc<dyn Store> {
    jitgate::store::open(&db.url).expect("open store")
}

fn verified(s: &dyn Store) -> u64 {
    match jitgate::service::verify_store(s).expect("verify") {
        Ok(n) => n,
        Err(e) => panic!("chain broken: {e}"),
    }
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql)[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

/// What a replica that died after its COMMIT and before any chaining leaves
/// behind: a committed pending row (inserted here by hand, as the writer's
/// transaction would have).
fn stage_by_hand(db: &TestDb, actor: &str, i: i64) {
    db.exec(&format!(
        "INSERT INTO audit_pending (at, kind, actor, grant_id, request_id, data)
         VALUES ({i}, 'decision', '{actor}', NULL, 'req-{actor}-{i}', '{{\"i\":{i}}}')"
    ))
    .expect("stage by hand");
}

/// Three store handles (three replicas' pools, each with its own chainer),
/// four writers each, batches of two: one chain, seq 1..n without gaps, each
/// record exactly once, nothing left pending, and the chain verifies.
#[test]
fn concurrent_appends_from_three_stores_form_one_chain_holding_each_record_once() {
    let db = TestDb::create();
    let stores: Vec<Arc<dyn Store>> = (0..3).map(|_| open(&db)).collect();
    std::thread::scope(|sc| {
        for (h, s) in stores.iter().enumerate() {
            for w in 0..4 {
                sc.spawn(move || {
                    for i in 0..40 {
                        let d = |k: i64| {
                            AuditDraft::new(k, "decision", &format!("s{h}w{w}"), json!({"i": k}))
                                .request(&format!("s{h}w{w}-{k}"))
                        };
                        s.append_audit(vec![d(2 * i), d(2 * i + 1)])
                            .expect("append");
                    }
                });
            }
        }
    });
    let reader = open(&db);
    let records = reader.audit_page(0, 10_000).expect("page");
    let want = 3 * 4 * 80;
    assert_eq!(records.len(), want);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        *seen
            .entry(r.draft.request_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), want, "each record once");
    assert!(seen.values().all(|n| *n == 1));
    // A writer's batch keeps its order in the chain.
    for h in 0..3 {
        for w in 0..4 {
            let mine: Vec<i64> = records
                .iter()
                .filter(|r| r.draft.actor == format!("s{h}w{w}"))
                .map(|r| r.draft.at)
                .collect();
            assert_eq!(mine, (0..80).collect::<Vec<_>>(), "order of s{h}w{w}");
        }
    }
    assert_eq!(verified(reader.as_ref()), want as u64);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending"), 0);
}

/// A record is answered once it is staged, not chained: a reader on another
/// replica must see it anyway (it chains what is pending before reading).
#[test]
fn a_reader_on_another_store_sees_each_record_as_soon_as_its_writer_returns() {
    let db = TestDb::create();
    let writer = open(&db);
    let reader = open(&db);
    for i in 0..30 {
        let grant = format!("g{i}");
        writer
            .append_audit(vec![
                AuditDraft::new(i, "transition", "w", json!({"to": "active"})).grant(&grant),
            ])
            .expect("append");
        let of_grant = reader.audit_of_grant(&grant).expect("of grant");
        assert_eq!(of_grant.len(), 1, "record of {grant} not visible");
        let head = reader.audit_head().expect("head").map(|h| h.0);
        assert_eq!(head, Some(i + 1), "head after record {i}");
    }
    assert_eq!(verified(reader.as_ref()), 30);
}

/// A replica that died between its COMMIT and chaining leaves committed
/// pending rows: any reader chains them at once, and with no reader at all
/// another store's chainer does on its own; the chain verifies either way.
#[test]
fn records_staged_by_a_dead_writer_are_chained_by_another_store() {
    let db = TestDb::create();
    let s = open(&db);
    s.append_audit(vec![AuditDraft::new(1, "decision", "live", json!({}))])
        .expect("append");
    // A reader chains first.
    stage_by_hand(&db, "dead", 1);
    let page = s.audit_page(0, 100).expect("page");
    assert_eq!(page.len(), 2, "the dead writer's record is read");
    assert_eq!(page[1].draft.actor, "dead");
    assert_eq!(page[1].draft.data, json!({"i": 1}));
    // Nobody reads: the chainer's timer picks it up.
    stage_by_hand(&db, "dead", 2);
    let drained = wait_for(Duration::from_secs(20), || {
        (count(&db, "SELECT COUNT(*) FROM audit_pending") == 0).then_some(())
    });
    assert!(drained.is_some(), "pending record never chained");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit"), 3);
    assert_eq!(verified(s.as_ref()), 3);
    // Restarting the store chains nothing twice.
    drop(s);
    assert_eq!(verified(open(&db).as_ref()), 3);
}

/// The guarantee for a record between its COMMIT and its chaining (ms; up
/// to the chainer's tick if its replica died): like the chain's own rows,
/// triggers refuse an honest edit or delete; a deliberate edit past them is
/// no more detectable than one to the chain's unanchored tail (see
/// ARCHITECTURE.md). Only a transaction that declares itself the chainer
/// deletes.
#[test]
fn pending_records_refuse_edits_and_deletes_outside_the_chainer() {
    let db = TestDb::create();
    let _s = open(&db);
    for sql in [
        "UPDATE audit_pending SET actor = 'mallory'",
        "DELETE FROM audit_pending",
        "TRUNCATE audit_pending",
    ] {
        let r = db.exec(&format!(
            "BEGIN; INSERT INTO audit_pending (at, kind, actor, data) VALUES (1, 'decision', 'a', '{{}}'); {sql}; COMMIT"
        ));
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("only moved into the chain")),
            "{sql}: {r:?}"
        );
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit"), 0);
}

/// A database whose chain was written before staging existed (schema 7):
/// migrating keeps every record, and new records extend that chain.
#[test]
fn a_chain_written_before_the_staging_migration_is_kept_and_extended() {
    let db = TestDb::create();
    let s = open(&db);
    let drafts = |actor: &str| {
        (0..5)
            .map(|i| AuditDraft::new(i, "decision", actor, json!({"i": i})))
            .collect::<Vec<_>>()
    };
    s.append_audit(drafts("before")).expect("append");
    let head = s.audit_head().expect("head");
    drop(s);
    // Back to schema 7: what an existing database looks like.
    db.exec(
        "DROP TABLE audit_pending; DROP FUNCTION audit_pending_guard();
         DELETE FROM schema_migrations WHERE version = 8",
    )
    .expect("downgrade");
    let s = open(&db);
    assert_eq!(s.audit_head().expect("head"), head, "chain kept");
    s.append_audit(drafts("after")).expect("append");
    let records = s.audit_page(0, 100).expect("page");
    assert_eq!(records.len(), 10);
    assert_eq!(records[5].prev_hash, head.map(|h| h.1).unwrap_or_default());
    assert_eq!(verified(s.as_ref()), 10);
}

/// The crash argument end to end: three `serve` replicas answer dry-run
/// decisions from four clients and one is SIGKILLed mid-load, with records
/// of its answered decisions possibly staged and not yet chained. Every
/// decision answered 200 is in the one chain exactly once (none twice, the
/// unanswered at most once), and the chain verifies.
#[test]
fn every_answered_decision_is_chained_once_when_a_replica_is_killed_under_load() {
    use jitgate_tests::http::post;
    use jitgate_tests::server::{Server, body, write_config_with};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::create();
    let cfgs: Vec<_> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            write_config_with(&d, &db.url, "")
        })
        .collect();
    let mut servers: Vec<Server> = cfgs.iter().map(|c| Server::start(c)).collect();
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let killed = AtomicBool::new(false);
    let answered = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (addrs, killed, answered, done) = (&addrs, &killed, &answered, &done);
            sc.spawn(move || {
                for i in 0..150 {
                    let r = (t + i) % 3;
                    if r == 0 && killed.load(Ordering::SeqCst) {
                        continue;
                    }
                    let id = format!("k{t}-{i}");
                    let a = post(
                        addrs[r],
                        "/v1/decisions",
                        Some("t-pipe"),
                        &body(&id, "alice", "file-recovery", 600),
                    );
                    if a.status == 200 {
                        answered.lock().expect("lock").push(id);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Kill replica 0 once load is under way; clients stop picking it
        // first, so no new connection reaches a dead port (requests already
        // in flight die with it, unanswered).
        wait_for(Duration::from_secs(60), || {
            (done.load(Ordering::SeqCst) >= 150).then_some(())
        });
        killed.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        servers.remove(0).kill();
    });
    let answered = answered.into_inner().expect("lock");
    assert!(answered.len() >= 300, "only {} answered", answered.len());
    let reader = open(&db);
    let records = reader.audit_page(0, 100_000).expect("page");
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.draft.kind == "decision") {
        *times
            .entry(r.draft.request_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for id in &answered {
        assert_eq!(times.get(id), Some(&1), "answered decision {id}");
    }
    assert!(times.values().all(|n| *n == 1), "a record twice");
    assert_eq!(verified(reader.as_ref()), records.len() as u64);
    drop(servers);
}

/// A session holding the audit lock (what another replica's chainer or a
/// reader does while it chains), released when the returned sender drops.
fn hold_audit_lock(db: &TestDb) -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = std::sync::mpsc::channel();
    let url = db.url.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            client
                .execute(
                    "SELECT pg_advisory_lock($1)",
                    &[&jitgate::store::postgres::AUDIT_LOCK],
                )
                .await
                .expect("take the audit lock");
            client
        });
        let _ = held.send(());
        // Dropped (the session and its lock end) once the test lets go.
        let _ = wait.recv();
        drop(client);
    });
    is_held.recv().expect("lock held");
    release
}

/// Another replica chaining for a long time (or a hostile session sitting
/// on the lock) must not make this replica's chainer queue for the lock:
/// it tries, finds it taken, and tries again shortly, so writers are still
/// answered, no connection of the pool waits on the lock, and the records
/// are chained, once each, as soon as the lock is free — with no reader.
#[test]
fn a_chainer_that_finds_the_audit_lock_taken_does_not_queue_and_chains_once_it_is_free() {
    let db = TestDb::create();
    let s = open(&db);
    let release = hold_audit_lock(&db);
    let drafts: Vec<AuditDraft> = (0..5)
        .map(|i| AuditDraft::new(i, "decision", "w", json!({"i": i})))
        .collect();
    s.append_audit(drafts)
        .expect("answered while the lock is held");
    // Past several chainer ticks: nothing chained, and nobody waiting.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending"), 5);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ),
        0,
        "a chainer is queued on the audit lock"
    );
    drop(release);
    let drained = wait_for(Duration::from_secs(20), || {
        (count(&db, "SELECT COUNT(*) FROM audit_pending") == 0).then_some(())
    });
    assert!(drained.is_some(), "pending records never chained");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit"), 5);
    assert_eq!(verified(s.as_ref()), 5);
}

/// A group commit's batch is one statement: a record PostgreSQL cannot
/// store (a NUL byte in its actor) fails the whole batch, and none of its
/// records is staged — no half batch for the chain to seal.
#[test]
fn a_batch_with_one_unstorable_record_stages_none_of_it() {
    let db = TestDb::create();
    let s = open(&db);
    let batch = vec![
        AuditDraft::new(1, "decision", "ok", json!({})),
        AuditDraft::new(2, "decision", "nul\0actor", json!({})),
        AuditDraft::new(3, "decision", "ok", json!({})),
    ];
    assert!(s.append_audit(batch).is_err(), "a NUL byte was stored");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit"), 0);
    s.append_audit(vec![AuditDraft::new(4, "decision", "ok", json!({}))])
        .expect("the next batch is stored");
    assert_eq!(verified(s.as_ref()), 1);
}
