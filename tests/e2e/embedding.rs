//! The library as an embedder uses it, without HTTP: typed requests, the
//! sync lifecycle calls from inside tokio runtimes (both flavours, where
//! they once panicked), their async forms, the background tasks and a
//! closure provisioner, over SQLite and PostgreSQL.

use jitgate::provision;
use jitgate::request::{Ticket, TicketState};
use jitgate::service::{Principal, Role, Service, ServiceConfig, ServiceError};
use jitgate::store::Store;
use jitgate::store::postgres::PostgresStore;
use jitgate::store::sqlite::SqliteStore;
use jitgate::{Engine, Outcome, Request};
use jitgate_tests::pg::TestDb;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One time for every request of the run: the same request built twice
/// must be the same request (times are part of it; idempotency compares
/// them).
fn now_secs() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

fn pipeline() -> Principal {
    Principal::new("pipe", [Role::Pipeline])
}

fn admin() -> Principal {
    Principal::new("root", [Role::Admin])
}

/// A file-recovery request the example policies allow at any time.
fn typed(id: &str) -> Request {
    let now = now_secs();
    Request::builder("file-recovery")
        .id(id)
        .subject("alice")
        .roles(["helpdesk", "it-admin"])
        .groups(["oncall"])
        .mfa_at(now)
        .resource("fileserver-01")
        .entitlement("operator")
        .justification("restore the deleted finance share for the incident")
        .ttl(600)
        .ticket(Ticket {
            id: format!("T-{id}"),
            state: TicketState::Open,
            priority: 3,
            assignee: Some("alice".into()),
            opened_at: now - 600,
        })
        .build()
        .expect("a valid request")
}

fn engine() -> Engine {
    // Without business-hours: the same answer at any hour and weekday.
    static POLICIES: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    let (_, dir) = POLICIES.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = jitgate_tests::server::clock_free_policies(tmp.path());
        (tmp, dir)
    });
    Engine::builder()
        .policies(dir)
        .build()
        .expect("example policies load (./dev policies)")
}

fn sqlite_service() -> (tempfile::TempDir, Arc<Service>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("jitgate.db")).expect("sqlite store"));
    // The pipeline's JSON bodies carry ticket facts: it is trusted with them.
    let svc = Service::new(engine(), store, ServiceConfig::default())
        .with_trusted_context(["pipe".to_string()].into());
    (dir, Arc::new(svc))
}

/// Every sync lifecycle call, made on an async worker thread, and every
/// async one: what an embedder's `async fn main` does.
async fn sync_and_async_calls_work_inside_a_runtime(svc: Arc<Service>) {
    let who = pipeline();
    // Sync, called right on the async worker: these panicked before.
    let d = svc
        .dry_run_request(&who, typed("dry"))
        .expect("sync dry run");
    assert_eq!(d.outcome, Outcome::Allow, "{d:?}");
    let json = serde_json::to_value(typed("dry-json")).expect("json");
    let mut body = json.clone();
    body.as_object_mut().expect("object").remove("now");
    svc.dry_run(&who, &body).expect("sync JSON dry run");
    let (g, created) = svc.submit(&who, typed("s1")).expect("sync submit");
    assert!(created);
    assert_eq!(g.state.as_str(), "active", "{g:?}");
    let (again, created) = svc.submit(&who, typed("s1")).expect("sync replay");
    assert!(!created);
    assert_eq!(again.id, g.id);
    let released = svc.release(&who, &g.id).expect("sync release");
    assert_eq!(released.state.as_str(), "released");

    // Async forms.
    let d = svc
        .dry_run_request_async(&who, typed("dry-a"))
        .await
        .expect("async dry run");
    assert_eq!(d.outcome, Outcome::Allow);
    let (g, created) = svc
        .submit_async(&who, typed("a1"))
        .await
        .expect("async submit");
    assert!(created);
    let (again, created) = svc
        .submit_async(&who, typed("a1"))
        .await
        .expect("async replay");
    assert!(!created);
    assert_eq!(again.id, g.id);
    svc.revoke_async(&admin(), &g.id, Some("done"))
        .await
        .expect("async revoke");
    let (g2, _) = svc
        .submit_async(&who, typed("a2"))
        .await
        .expect("async submit");
    let released = svc
        .release_async(&who, &g2.id)
        .await
        .expect("async release");
    assert_eq!(released.state.as_str(), "released");
    let seen = svc.grant_async(&admin(), &g2.id).await.expect("read back");
    assert_eq!(seen.state.as_str(), "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sync_and_async_calls_on_a_multi_thread_runtime() {
    let (_dir, svc) = sqlite_service();
    sync_and_async_calls_work_inside_a_runtime(svc).await;
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_sync_and_async_calls_on_a_current_thread_runtime() {
    let (_dir, svc) = sqlite_service();
    sync_and_async_calls_work_inside_a_runtime(svc).await;
}

fn postgres_service(db: &TestDb) -> Arc<Service> {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url).expect("postgres store"));
    Arc::new(
        Service::new(engine(), store, ServiceConfig::default())
            .with_trusted_context(["pipe".to_string()].into()),
    )
}

#[test]
fn postgres_sync_and_async_calls_inside_both_runtime_flavours() {
    let db = TestDb::create();
    // The store is opened outside any runtime, then used inside each.
    let svc = postgres_service(&db);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    multi.block_on(sync_and_async_calls_work_inside_a_runtime(svc));
    drop(multi);
    let db2 = TestDb::create();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    current.block_on(async {
        // Opened inside the runtime this time.
        let svc = postgres_service(&db2);
        sync_and_async_calls_work_inside_a_runtime(svc).await;
    });
}

#[test]
fn typed_idempotency_same_id_same_request_is_one_grant_another_request_conflicts() {
    let (_dir, svc) = sqlite_service();
    let (g, _) = svc.submit(&pipeline(), typed("idem")).expect("first");
    // A later `now` is not part of the request's identity: the service sets it.
    let mut later = typed("idem");
    later.now = 12345;
    let (same, created) = svc.submit(&pipeline(), later).expect("replay");
    assert!(!created);
    assert_eq!(same.id, g.id);
    let mut other = typed("idem");
    other.resource = "fileserver-02".into();
    assert!(matches!(
        svc.submit(&pipeline(), other),
        Err(ServiceError::Conflict(_))
    ));
}

#[test]
fn a_typed_request_for_an_unknown_task_is_invalid_naming_task_and_audited() {
    let (_dir, svc) = sqlite_service();
    let mut req = typed("unknown");
    req.task = "no-such-task".into();
    match svc.submit(&pipeline(), req) {
        Err(ServiceError::Invalid(e)) => assert_eq!(e.field, "task"),
        other => panic!("expected invalid, got {other:?}"),
    }
    let records = svc.store().audit_page(0, 100).expect("audit");
    assert!(
        records
            .iter()
            .any(|r| r.draft.data["invalid"]["field"] == "task"),
        "the refused request left no audit record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_tasks_deliver_to_a_closure_provisioner_and_stop_on_drop() {
    let (_dir, svc) = sqlite_service();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let provisioner = Arc::new(provision::from_fn(move |event| {
        let tx = tx.clone();
        async move {
            tx.send((event.kind, event.grant_id))
                .map_err(|e| e.to_string())
        }
    }));
    let background = svc.start_background(provisioner).expect("in a runtime");
    assert_eq!(background.len(), 2);
    let (g, _) = svc
        .submit_async(&pipeline(), typed("bg"))
        .await
        .expect("submit");
    svc.release_async(&pipeline(), &g.id)
        .await
        .expect("release");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ev)) => seen.push(ev),
            other => panic!("events not delivered (got {seen:?}, then {other:?})"),
        }
    }
    assert_eq!(
        seen,
        vec![
            ("grant-activated".to_string(), g.id.clone()),
            ("grant-ended".to_string(), g.id.clone()),
        ]
    );
    // Recorded as delivered just after the closure returns.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while svc.store().outbox_pending().expect("pending") != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(background.is_running());
    drop(background);
    // Stopped: a new grant's event stays queued.
    let (g2, _) = svc
        .submit_async(&pipeline(), typed("bg2"))
        .await
        .expect("submit");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        rx.try_recv().is_err(),
        "delivered after Background was dropped"
    );
    assert_eq!(g2.state.as_str(), "active");
    assert_eq!(svc.store().outbox_pending().expect("pending"), 1);
}

#[test]
fn start_background_outside_a_runtime_is_an_error_not_a_panic() {
    let (_dir, svc) = sqlite_service();
    let p = Arc::new(provision::from_fn(|_| async { Ok::<(), String>(()) }));
    assert!(svc.start_background(p).is_err());
}
