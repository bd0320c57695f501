//! Service-level tests against an in-memory store, including a store whose
//! audit writes fail: then nothing may be granted (fail closed).
//!
//! One file past 500 lines: the service's unit tests, one table of cases
//! sharing fixtures.

use super::*;
use crate::audit::AuditRecord;
use crate::decision::{Decision, Outcome};
use crate::grant::{Grant, GrantState};
use crate::request::TicketState;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    Change, Effects, GrantFilter, OutboxEvent, Review, Store, StoreError, UpdateError,
};

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
    fn update_grant_with(&self, _: &str, _: &mut Change<'_>) -> Result<Grant, UpdateError> {
        Err(down().into())
    }
    fn update_grants_with(
        &self,
        _: &[String],
        _: &mut Change<'_>,
    ) -> Result<Vec<Grant>, UpdateError> {
        Err(down().into())
    }
    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.0.grant(id)
    }
    fn grant_by_request(&self, by: &str, id: &str) -> Result<Option<Grant>, StoreError> {
        self.0.grant_by_request(by, id)
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
    fn policy_set_sequence(&self) -> Result<Option<i64>, StoreError> {
        self.0.policy_set_sequence()
    }
    fn accept_policy_set(
        &self,
        _: &crate::store::AcceptedPolicySet,
        _: Vec<AuditDraft>,
    ) -> Result<Option<i64>, StoreError> {
        Err(down())
    }
    fn quarantined(&self) -> Result<Vec<crate::store::Quarantined>, StoreError> {
        self.0.quarantined()
    }
    fn quarantine_count(&self) -> Result<u64, StoreError> {
        self.0.quarantine_count()
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
    fn ticket(&self, id: &str) -> Result<Option<crate::store::TicketRecord>, StoreError> {
        self.0.ticket(id)
    }
    fn apply_ticket_change(
        &self,
        _: &crate::store::TicketChange<'_>,
        _: &mut Change<'_>,
    ) -> Result<crate::store::TicketOutcome, UpdateError> {
        Err(down().into())
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
        ..Default::default()
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
        ..Default::default()
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

fn approver(name: &str) -> Principal {
    Principal {
        name: name.into(),
        roles: [Role::Approver, Role::Pipeline].into(),
        groups: vec!["leads".into()],
        subject_roles: vec![],
        ..Default::default()
    }
}

/// A pending grant needing one approval from `leads`, stored directly (no
/// policy needed), sent by `by` for `subject`, lapsing at `lapses_at`.
fn stored_pending(store: &dyn Store, by: &str, subject: &str, lapses_at: Millis) -> String {
    stored_pending_as(store, &new_id("r"), by, subject, lapses_at)
}

fn stored_pending_as(
    store: &dyn Store,
    request_id: &str,
    by: &str,
    subject: &str,
    lapses_at: Millis,
) -> String {
    let mut b = body();
    b["id"] = json!(request_id);
    b["subject"]["id"] = json!(subject);
    b["now"] = json!(1);
    let request = crate::request::from_value(b).expect("request");
    let g = Grant {
        id: new_id("g"),
        requested_by: by.into(),
        state: GrantState::Pending,
        outcome: Outcome::RequireApproval,
        required: vec![crate::decision::ApprovalRequirement {
            policy: "p".into(),
            groups: vec!["leads".into()],
            min: 1,
        }],
        ttl: 60,
        created_at: 1,
        lapses_at: Some(lapses_at),
        ..Grant::of(request)
    };
    store.create_grant(&g, Effects::default()).expect("create");
    g.id
}

#[test]
fn approval_after_lapses_at_is_refused_even_when_the_sweep_is_late() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let svc = service(store.clone());
    // Lapsed a second ago; no sweep has run.
    let id = stored_pending(store.as_ref(), "pipe", "alice", now_millis() - 1000);
    match svc.approve(&approver("bob"), &id) {
        Err(ServiceError::IllegalTransition { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let g = store.grant(&id).expect("read").expect("grant");
    assert_eq!(g.state, GrantState::Lapsed, "{g:?}");
    assert!(g.approvals.is_empty());
    assert!(matches!(
        svc.reject(&approver("bob"), &id, Some("no")),
        Err(ServiceError::IllegalTransition { .. })
    ));
    // One still in time is approved.
    let ok = stored_pending(store.as_ref(), "pipe", "alice", now_millis() + 60_000);
    assert_eq!(
        svc.approve(&approver("bob"), &ok).expect("approve").state,
        GrantState::Active
    );
}

#[test]
fn a_pipeline_that_is_also_an_approver_cannot_approve_what_it_requested() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let svc = service(store.clone());
    let later = now_millis() + 60_000;
    let id = stored_pending(store.as_ref(), "pipe-bot", "alice", later);
    assert!(matches!(
        svc.approve(&approver("pipe-bot"), &id),
        Err(ServiceError::Forbidden(_))
    ));
    // Names are compared normalised: case, spaces, full-width forms.
    for alias in [
        "Pipe-Bot",
        " pipe-bot ",
        "ｐｉｐｅ-ｂｏｔ",
        "ALICE",
        "ａｌｉｃｅ",
    ] {
        assert!(
            matches!(
                svc.approve(&approver(alias), &id),
                Err(ServiceError::Forbidden(_))
            ),
            "{alias} approved"
        );
    }
    assert_eq!(
        store.grant(&id).expect("read").expect("grant").state,
        GrantState::Pending
    );
    // Someone else may; the same person under another spelling only once.
    let id2 = stored_pending(store.as_ref(), "pipe-bot", "alice", later);
    let mut two = svc.approve(&approver("bob"), &id2);
    assert!(two.is_ok(), "{two:?}");
    let id3 = stored_pending(store.as_ref(), "pipe-bot", "alice", later);
    let mut g = store.grant(&id3).expect("read").expect("grant");
    g.required[0].min = 2;
    store
        .update_grant::<StoreError>(&id3, &mut |x| {
            x.required = g.required.clone();
            Ok(Some(Effects::default()))
        })
        .expect("update");
    svc.approve(&approver("bob"), &id3).expect("first approval");
    two = svc.approve(&approver("BOB"), &id3);
    assert!(matches!(two, Err(ServiceError::Conflict(_))), "{two:?}");
}

#[test]
fn request_ids_are_scoped_to_the_principal_that_sent_them() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let later = now_millis() + 60_000;
    let mine = stored_pending_as(store.as_ref(), "r1", "alice", "alice", later);
    // The same client id from another principal is another grant.
    let theirs = stored_pending_as(store.as_ref(), "r1", "pipe", "alice", later);
    assert_ne!(mine, theirs);
    assert_eq!(
        store
            .grant_by_request("alice", "r1")
            .expect("read")
            .map(|g| g.id),
        Some(mine.clone())
    );
    assert_eq!(
        store
            .grant_by_request("pipe", "r1")
            .expect("read")
            .map(|g| g.id),
        Some(theirs)
    );
    assert!(store.grant_by_request("eve", "r1").expect("read").is_none());
}

// Deadlines to the millisecond, with a clock that moves only when told.

const T0: Millis = 1_700_000_000_000;

fn service_at(store: Arc<dyn Store>, clock: &ManualClock) -> Service {
    let engine = Engine::new(crate::EngineConfig::default()).expect("engine");
    Service::with_clock(
        engine,
        store,
        ServiceConfig::default(),
        Arc::new(clock.clone()),
    )
}

/// A pending grant (one approval from `leads`, lapsing at `lapses_at`) for
/// `alice`, sent by `pipe`, changed by `f` before it is stored.
fn stored_with(store: &dyn Store, lapses_at: Millis, f: impl FnOnce(&mut Grant)) -> String {
    let id = stored_pending(store, "pipe", "alice", lapses_at);
    let mut g = store.grant(&id).expect("read").expect("grant");
    f(&mut g);
    store
        .update_grant::<StoreError>(&id, &mut |x| {
            *x = g.clone();
            Ok(Some(Effects::default()))
        })
        .expect("update");
    id
}

fn stored_active(store: &dyn Store, expires_at: Millis, f: impl FnOnce(&mut Grant)) -> String {
    stored_with(store, 0, |g| {
        g.state = GrantState::Active;
        g.lapses_at = None;
        g.issued_at = Some(expires_at - 60_000);
        g.expires_at = Some(expires_at);
        f(g)
    })
}

fn kinds_and_targets(store: &dyn Store, id: &str) -> Vec<(String, String, Millis)> {
    store
        .audit_of_grant(id)
        .expect("audit")
        .into_iter()
        .map(|r| {
            let to = r.draft.data["to"].as_str().unwrap_or("").to_string();
            (r.draft.kind, to, r.draft.at)
        })
        .collect()
}

#[test]
fn approval_one_millisecond_before_lapses_at_activates_and_at_lapses_at_lapses() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock);
    let deadline = T0 + 3_600_000;
    let early = stored_pending(store.as_ref(), "pipe", "alice", deadline);
    let late = stored_pending(store.as_ref(), "pipe", "alice", deadline);

    clock.set(deadline - 1);
    let g = svc.approve(&approver("bob"), &early).expect("in time");
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(g.issued_at, Some(deadline - 1));
    assert_eq!(g.expires_at, Some(deadline - 1 + 60_000));
    assert_eq!(g.lapses_at, None);
    assert_eq!(g.approvals[0].at, deadline - 1);

    clock.set(deadline);
    match svc.approve(&approver("bob"), &late) {
        Err(ServiceError::IllegalTransition { from, to, .. }) => {
            assert_eq!((from, to), ("lapsed", "active"))
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let g = store.grant(&late).expect("read").expect("grant");
    assert_eq!(g.state, GrantState::Lapsed);
    assert_eq!(g.ended_at, Some(deadline));
    assert_eq!(g.ended_by.as_deref(), Some("scheduler"));
    assert!(g.approvals.is_empty());
    assert_eq!(
        kinds_and_targets(store.as_ref(), &late),
        vec![("transition".to_string(), "lapsed".to_string(), deadline)]
    );
}

#[test]
fn rejection_at_lapses_at_lapses_instead() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock);
    let id = stored_pending(store.as_ref(), "pipe", "alice", T0 + 10);
    clock.set(T0 + 10);
    assert!(matches!(
        svc.reject(&approver("bob"), &id, Some("no")),
        Err(ServiceError::IllegalTransition { .. })
    ));
    assert_eq!(
        store.grant(&id).expect("read").expect("grant").state,
        GrantState::Lapsed
    );
}

#[test]
fn quorum_of_two_activates_at_the_second_distinct_approval() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock);
    let id = stored_with(store.as_ref(), T0 + 1000, |g| g.required[0].min = 2);
    let g = svc.approve(&approver("bob"), &id).expect("first");
    assert_eq!(g.state, GrantState::Pending);
    assert_eq!(g.lapses_at, Some(T0 + 1000));
    clock.advance(1);
    assert!(matches!(
        svc.approve(&approver(" Bob "), &id),
        Err(ServiceError::Conflict(_))
    ));
    clock.advance(1);
    let g = svc.approve(&approver("carol"), &id).expect("second");
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(g.issued_at, Some(T0 + 2));
    assert_eq!(g.expires_at, Some(T0 + 2 + 60_000));
    assert_eq!(
        kinds_and_targets(store.as_ref(), &id),
        vec![
            ("approval".to_string(), String::new(), T0),
            ("approval".to_string(), String::new(), T0 + 2),
            ("transition".to_string(), "active".to_string(), T0 + 2),
        ]
    );
    let events = store
        .outbox_claim(T0 + 2, std::time::Duration::from_secs(30), 10)
        .expect("claim");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "grant-activated");
    assert_eq!(events[0].created_at, T0 + 2);
    assert_eq!(events[0].sequence, 1);
}

#[test]
fn a_quarantined_grant_is_never_approved_but_can_be_revoked() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock);
    let id = stored_with(store.as_ref(), T0 + 1000, |g| {
        g.quarantined = Some("damaged".into());
        g.required.clear();
    });
    assert!(matches!(
        svc.approve(&approver("bob"), &id),
        Err(ServiceError::Conflict(_))
    ));
    let admin = Principal {
        name: "root".into(),
        roles: [Role::Admin].into(),
        groups: vec![],
        subject_roles: vec![],
        ..Default::default()
    };
    let g = svc.revoke(&admin, &id, Some("salvaged")).expect("revoke");
    assert_eq!(g.state, GrantState::Revoked);
    assert_eq!(g.ended_at, Some(T0));
}

#[test]
fn end_due_expires_at_the_millisecond_and_records_the_lag() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock);
    let expires = T0 + 60_000;
    let active = stored_active(store.as_ref(), expires, |_| {});
    let pending = stored_pending(store.as_ref(), "pipe", "alice", expires);

    clock.set(expires - 1);
    assert_eq!(svc.end_due(expires - 1).expect("sweep"), 0);
    assert_eq!(
        store.grant(&active).expect("read").expect("grant").state,
        GrantState::Active
    );

    // The sweep runs for `expires` but 7 ms late.
    clock.set(expires + 7);
    assert_eq!(svc.end_due(expires).expect("sweep"), 2);
    let g = store.grant(&active).expect("read").expect("grant");
    assert_eq!(g.state, GrantState::Expired);
    assert_eq!(g.ended_at, Some(expires + 7));
    assert_eq!(g.revocation_lag_ms, Some(7));
    let last = store.audit_of_grant(&active).expect("audit");
    assert_eq!(
        last.last().expect("record").draft.data["revocation-lag-ms"],
        7
    );
    let p = store.grant(&pending).expect("read").expect("grant");
    assert_eq!(p.state, GrantState::Lapsed);
    assert_eq!(p.ended_at, Some(expires + 7));
    assert_eq!(p.revocation_lag_ms, None);
    // Nothing ends twice.
    assert_eq!(svc.end_due(expires + 1000).expect("sweep"), 0);
}

#[test]
fn ticket_close_revokes_only_the_open_grants_that_asked_for_it() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    // Decided again on the ticket's changes (continuous verification), the
    // grants are still allowed: what ends them here is the ticket closing.
    let allow = Decision {
        outcome: crate::Outcome::Allow,
        approvals: Vec::new(),
        ..needs_two_leads()
    };
    let svc = service_at(store.clone(), &clock).with_decision_maker(Arc::new(Scripted(allow)));
    let ticket = crate::request::Ticket {
        id: "INC-9".into(),
        state: TicketState::InProgress,
        priority: 2,
        assignee: None,
        opened_at: crate::request::from_json(
            r#"{"id":"r","subject":{"id":"a","kind":"human"},"task":"t","resource":"x","entitlement":"e",
                "justification":"j","requested-ttl":60,"now":0}"#,
        )
        .expect("request")
        .now,
    };
    let with_ticket = |revoke: bool| {
        let ticket = ticket.clone();
        move |g: &mut Grant| {
            g.request.ticket = Some(ticket);
            g.revoke_on_ticket_close = revoke;
        }
    };
    let asked = stored_active(store.as_ref(), T0 + 60_000, with_ticket(true));
    let pending = stored_with(store.as_ref(), T0 + 60_000, with_ticket(true));
    let kept = stored_active(store.as_ref(), T0 + 60_000, with_ticket(false));
    let pipe = pipeline();

    assert!(
        svc.ticket_event(&pipe, "INC-9", TicketState::OnHold)
            .expect("event")
            .is_empty()
    );
    clock.advance(5);
    let mut revoked = svc
        .ticket_event(&pipe, "INC-9", TicketState::Closed)
        .expect("event");
    revoked.sort();
    let mut want = vec![asked.clone(), pending.clone()];
    want.sort();
    assert_eq!(revoked, want);
    let g = store.grant(&asked).expect("read").expect("grant");
    assert_eq!(g.state, GrantState::Revoked);
    assert_eq!(g.ended_at, Some(T0 + 5));
    assert_eq!(g.ended_by.as_deref(), Some("ticket INC-9"));
    assert_eq!(g.end_reason.as_deref(), Some("ticket INC-9 is closed"));
    assert_eq!(
        store.grant(&kept).expect("read").expect("grant").state,
        GrantState::Active
    );
    // A second close finds nothing left to end.
    assert!(
        svc.ticket_event(&pipe, "INC-9", TicketState::Resolved)
            .expect("event")
            .is_empty()
    );
}

/// `dry_run` once waited with tokio's `blocking_recv` and panicked on an
/// async worker ("Cannot block the current thread from within a
/// runtime"); every sync call must answer there instead.
#[tokio::test(flavor = "current_thread")]
async fn sync_calls_answer_on_a_current_thread_runtime_instead_of_panicking() {
    let svc = service(Arc::new(SqliteStore::in_memory().expect("store")));
    match svc.dry_run(&pipeline(), &body()) {
        Err(ServiceError::Invalid(e)) => assert_eq!(e.field, "task"),
        other => panic!("expected invalid, got {other:?}"),
    }
    let typed = crate::request::from_value({
        let mut b = body();
        b["now"] = json!(0);
        b
    })
    .expect("typed");
    match svc.submit(&pipeline(), typed.clone()) {
        Err(ServiceError::Invalid(e)) => assert_eq!(e.field, "task"),
        other => panic!("expected invalid, got {other:?}"),
    }
    match svc.dry_run_request(&pipeline(), typed) {
        Err(ServiceError::Invalid(e)) => assert_eq!(e.field, "task"),
        other => panic!("expected invalid, got {other:?}"),
    }
    // Both dry runs and the refused submit were recorded (group commit and
    // direct appends waited for on this thread).
    assert_eq!(svc.store().audit_page(0, 10).expect("audit").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_dry_runs_answer_alike_on_a_multi_thread_runtime() {
    let svc = Arc::new(service(Arc::new(SqliteStore::in_memory().expect("store"))));
    let sync = svc.dry_run(&pipeline(), &body());
    let async_ = svc.dry_run_async(&pipeline(), body()).await;
    match (sync, async_) {
        (Err(ServiceError::Invalid(a)), Err(ServiceError::Invalid(b))) => assert_eq!(a, b),
        other => panic!("expected two invalid answers, got {other:?}"),
    }
}

/// A typed request is the same request whatever its `now`: the service
/// sets it, so a retry built later still replays.
#[test]
fn the_typed_request_hash_ignores_now_and_nothing_else() {
    let mut a = crate::request::from_value({
        let mut b = body();
        b["now"] = json!(1);
        b
    })
    .expect("typed");
    let h = request_hash(&a);
    a.now = 99;
    assert_eq!(request_hash(&a), h);
    a.justification.push('!');
    assert_ne!(request_hash(&a), h);
    // A JSON body written in the canonical form hashes the same as the
    // typed request, so the two forms agree on idempotency.
    let mut canonical = json!(a);
    canonical.as_object_mut().expect("object").remove("now");
    assert_eq!(body_hash(&canonical), request_hash(&a));
}

/// Decides every request the same way: the workflow's rules, tested to the
/// millisecond through the service's own intake, without wasm.
struct Scripted(Decision);

impl DecisionMaker for Scripted {
    fn decide(&self, req: &crate::Request) -> Result<Decision, crate::RequestError> {
        let mut d = self.0.clone();
        d.request_id = req.id.clone();
        d.task = req.task.clone();
        Ok(d)
    }
}

fn needs_two_leads() -> Decision {
    Decision {
        request_id: String::new(),
        task: String::new(),
        outcome: crate::Outcome::RequireApproval,
        ttl: 600,
        ttl_bound: None,
        revoke_on_ticket_close: false,
        approvals: vec![crate::ApprovalRequirement {
            policy: "scripted".into(),
            groups: vec!["leads".into()],
            min: 2,
        }],
        reasons: vec!["scripted: two leads".into()],
        policies: Vec::new(),
        policy_set: String::new(),
        micros: 0,
    }
}

#[test]
fn a_scripted_decision_goes_through_intake_quorum_and_expiry_to_the_millisecond() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = ManualClock::at(T0);
    let svc = service_at(store.clone(), &clock)
        .with_decision_maker(Arc::new(Scripted(needs_two_leads())));
    let (g, created) = svc.request(&pipeline(), &body()).expect("request");
    assert!(created);
    assert_eq!(g.state, GrantState::Pending, "the scripted verdict decided");
    assert_eq!(g.created_at, T0);
    clock.advance(5);
    let g = svc.approve(&approver("bob"), &g.id).expect("first");
    assert_eq!(g.state, GrantState::Pending);
    clock.advance(5);
    let g = svc.approve(&approver("carol"), &g.id).expect("second");
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(
        g.expires_at,
        Some(T0 + 10 + 600_000),
        "the clock starts at activation"
    );
    clock.set(T0 + 10 + 599_999);
    assert_eq!(svc.end_due(svc.now()).expect("sweep"), 0);
    clock.advance(1);
    assert_eq!(svc.end_due(svc.now()).expect("sweep"), 1);
    let g = store.grant(&g.id).expect("read").expect("grant");
    assert_eq!(g.state, GrantState::Expired);
    assert_eq!(g.ended_at, Some(T0 + 10 + 600_000));
}

/// A caller asking for itself: an identity-provider sign-in decides the MFA
/// time (a body's fresher claim is dropped) and the kind; a static token
/// without those facts leaves the body as it is; a pipeline acting for
/// someone else passes its user's facts.
#[test]
fn sign_in_facts_fill_the_callers_own_subject() {
    use crate::request::SubjectKind;
    let mut v = body();
    v["now"] = json!(1_700_000_100);
    let mut req = crate::request::from_value(v).expect("request");
    req.subject.mfa_at = Some(1_700_000_000);
    req.subject.kind = SubjectKind::Service;
    let mut idp_user = Principal::new(req.subject.id.clone(), [Role::Requester]);
    idp_user.kind = Some(SubjectKind::Human);
    idp_user.sign_in = Some(crate::grant::SignIn {
        identity_provider: "corp".into(),
        jti: None,
        session: None,
    });
    let mut r = req.clone();
    idp_user.authorize_subject(&mut r).expect("own request");
    assert_eq!(r.subject.mfa_at, None, "no MFA in the sign-in: none at all");
    assert_eq!(r.subject.kind, SubjectKind::Human);
    idp_user.mfa_at = Some(1_600_000_000);
    let mut r = req.clone();
    idp_user.authorize_subject(&mut r).expect("own request");
    assert_eq!(r.subject.mfa_at, Some(1_600_000_000));

    let static_user = Principal::new(req.subject.id.clone(), [Role::Requester]);
    let mut r = req.clone();
    static_user.authorize_subject(&mut r).expect("own request");
    assert_eq!(r.subject.mfa_at, Some(1_700_000_000));
    assert_eq!(r.subject.kind, SubjectKind::Service);

    let mut pipe = pipeline();
    pipe.kind = Some(SubjectKind::Service);
    pipe.sign_in = idp_user.sign_in.clone();
    let mut r = req.clone();
    pipe.authorize_subject(&mut r).expect("for a user");
    assert_eq!(r, req, "a pipeline's own facts are not its user's");
}

/// Every filter shape of a grant listing (each one a different SQL query,
/// see `grants_query` in the SQLite store), paged three at a time through
/// `before`, lists exactly what a scan of all grants does, newest first,
/// ties in `created_at` broken by id.
#[test]
fn grant_listings_of_every_filter_shape_page_like_a_scan() {
    let store = SqliteStore::in_memory().expect("store");
    let mut all = Vec::new();
    for i in 0..40_i64 {
        let mut b = body();
        b["id"] = json!(format!("r{i}"));
        b["subject"]["id"] = json!(["alice", "bob", "carol"][(i % 3) as usize]);
        if i % 4 != 3 {
            b["ticket"] = json!({"id": format!("T-{}", i % 5), "state": "open", "priority": 3, "opened-at": 0});
        }
        b["now"] = json!(1);
        let g = Grant {
            id: format!("g-{:02}", (i * 17) % 40),
            requested_by: "pipe".into(),
            state: [GrantState::Pending, GrantState::Active, GrantState::Expired]
                [(i % 3) as usize / 2 + (i % 2) as usize],
            // Pairs share a creation time: the id breaks the tie.
            created_at: 1000 + i / 2,
            ..Grant::of(crate::request::from_value(b).expect("request"))
        };
        store.create_grant(&g, Effects::default()).expect("create");
        all.push(g);
    }
    all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    for state in [None, Some(GrantState::Pending), Some(GrantState::Active)] {
        for subject in [None, Some("bob")] {
            for ticket in [None, Some("T-2")] {
                let want: Vec<&str> = all
                    .iter()
                    .filter(|g| state.is_none_or(|s| g.state == s))
                    .filter(|g| subject.is_none_or(|s| g.request.subject.id == s))
                    .filter(|g| {
                        ticket.is_none_or(|t| g.request.ticket.as_ref().is_some_and(|x| x.id == t))
                    })
                    .map(|g| g.id.as_str())
                    .collect();
                let (mut got, mut before) = (Vec::new(), None);
                loop {
                    let page = store
                        .grants(&GrantFilter {
                            state,
                            subject: subject.map(str::to_string),
                            ticket: ticket.map(str::to_string),
                            limit: 3,
                            before: before.clone(),
                        })
                        .expect("list");
                    assert!(page.len() <= 3);
                    let Some(last) = page.last() else { break };
                    before = Some((last.created_at, last.id.clone()));
                    got.extend(page.iter().map(|g| g.id.clone()));
                }
                assert_eq!(
                    got, want,
                    "state {state:?} subject {subject:?} ticket {ticket:?}"
                );
            }
        }
    }
}
