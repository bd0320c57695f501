//! Service-level tests against an in-memory store, including a store whose
//! audit writes fail: then nothing may be granted (fail closed).

use super::*;
use crate::audit::AuditRecord;
use crate::store::sqlite::SqliteStore;
use crate::store::{Effects, GrantFilter, OutboxEvent, Review, Store, StoreError};

/// A store that refuses every write (a full disk, a lost database).
pub(crate) struct BrokenWrites(SqliteStore);

impl BrokenWrites {
    /// Over an empty in-memory store.
    pub(crate) fn new() -> Self {
        BrokenWrites(SqliteStore::in_memory().expect("store"))
    }
}

fn down() -> StoreError {
    StoreError::Backend("disk full".into())
}

impl Store for BrokenWrites {
    fn create_grant(&self, _: &Grant, _: Effects) -> Result<(), StoreError> {
        Err(down())
    }
    fn update_grant(
        &self,
        _: &str,
        _: &mut dyn FnMut(&mut Grant) -> Result<Option<Effects>, ServiceError>,
    ) -> Result<Grant, ServiceError> {
        Err(down().into())
    }
    fn update_grants(
        &self,
        _: &[String],
        _: &mut dyn FnMut(&mut Grant) -> Result<Option<Effects>, ServiceError>,
    ) -> Result<Vec<Grant>, ServiceError> {
        Err(down().into())
    }
    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.0.grant(id)
    }
    fn grant_by_request(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.0.grant_by_request(id)
    }
    fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        self.0.grants(f)
    }
    fn open_grants_of_ticket(&self, t: &str) -> Result<Vec<String>, StoreError> {
        self.0.open_grants_of_ticket(t)
    }
    fn due(&self, now: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        self.0.due(now, limit)
    }
    fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        self.0.next_deadline()
    }
    fn count_active(&self) -> Result<u64, StoreError> {
        self.0.count_active()
    }
    fn append_audit(&self, _: Vec<AuditDraft>) -> Result<(), StoreError> {
        Err(down())
    }
    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_page(after, limit)
    }
    fn audit_of_grant(&self, g: &str) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_of_grant(g)
    }
    fn outbox_claim(
        &self,
        now: Millis,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.0.outbox_claim(now, lease, limit)
    }
    fn outbox_delivered(&self, id: &str, at: Millis) -> Result<(), StoreError> {
        self.0.outbox_delivered(id, at)
    }
    fn outbox_failed(&self, id: &str, next: Millis, e: &str) -> Result<(), StoreError> {
        self.0.outbox_failed(id, next, e)
    }
    fn outbox_pending(&self) -> Result<u64, StoreError> {
        self.0.outbox_pending()
    }
    fn reviews(&self, open: bool) -> Result<Vec<Review>, StoreError> {
        self.0.reviews(open)
    }
    fn close_review(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Millis,
        _: AuditDraft,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
}

fn pipeline() -> Principal {
    Principal {
        name: "pipe".into(),
        roles: [Role::Pipeline].into(),
        groups: vec![],
        subject_roles: vec![],
    }
}

/// An engine with no policies: every task is unknown, so requests are
/// invalid — enough to exercise the audit path without wasm.
fn service(store: Arc<dyn Store>) -> Service {
    let engine = Engine::new(crate::EngineConfig::default()).expect("engine");
    Service::new(engine, store, ServiceConfig::default())
}

fn body() -> Value {
    json!({"id": "r1", "subject": {"id": "alice", "kind": "human"}, "task": "file-recovery",
           "resource": "x", "entitlement": "e", "justification": "because", "requested-ttl": 60})
}

#[test]
fn failed_audit_write_refuses_instead_of_answering() {
    let svc = service(Arc::new(BrokenWrites(
        SqliteStore::in_memory().expect("store"),
    )));
    assert!(matches!(
        svc.dry_run(&pipeline(), &body()),
        Err(ServiceError::Unavailable(_))
    ));
    assert!(matches!(
        svc.request(&pipeline(), &body()),
        Err(ServiceError::Unavailable(_))
    ));
    assert!(
        svc.store()
            .grants(&GrantFilter {
                limit: 10,
                ..Default::default()
            })
            .expect("list")
            .is_empty()
    );
}

#[test]
fn invalid_requests_are_audited_and_not_stored() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let svc = service(store.clone());
    match svc.request(&pipeline(), &body()) {
        Err(ServiceError::Invalid(e)) => assert_eq!(e.field, "task"),
        other => panic!("expected invalid, got {other:?}"),
    }
    let records = store.audit_page(0, 10).expect("audit");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].draft.kind, audit::kind::REQUEST);
    assert_eq!(records[0].draft.data["invalid"]["field"], "task");
    assert!(
        store
            .grants(&GrantFilter {
                limit: 10,
                ..Default::default()
            })
            .expect("list")
            .is_empty()
    );
}

#[test]
fn requester_cannot_ask_for_someone_else_or_set_now() {
    let svc = service(Arc::new(SqliteStore::in_memory().expect("store")));
    let alice = Principal {
        name: "bob".into(),
        roles: [Role::Requester].into(),
        groups: vec![],
        subject_roles: vec![],
    };
    assert!(matches!(
        svc.request(&alice, &body()),
        Err(ServiceError::Forbidden(_))
    ));
    let mut b = body();
    b["now"] = json!(1);
    match svc.request(&pipeline(), &b) {
        Err(ServiceError::BadRequest { field, .. }) => assert_eq!(field, "now"),
        other => panic!("expected bad request, got {other:?}"),
    }
}
