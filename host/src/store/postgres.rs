//! The shared store: PostgreSQL, for several `jitgate serve` replicas
//! behind a load balancer sharing one state.
//!
//! One file past 500 lines: the [`Store`] trait for one backend, every method
//! beside the SQL it runs, so a reader compares it with `sqlite.rs` method by
//! method.
//!
//! **Driver.** `tokio-postgres` (the maintained pure-Rust client) with a
//! `deadpool-postgres` connection pool. The [`Store`] trait stays synchronous
//! (the HTTP layer, scheduler and dispatcher call it from `spawn_blocking`
//! threads; the CLI calls it outside any runtime), so the store owns a small
//! dedicated tokio runtime and drives each call with `Runtime::block_on`.
//! That keeps the async driver's connections on a runtime the store
//! controls, independent of the caller's runtime. A sync call may come from
//! any thread, an async task included (an embedder calling the sync
//! lifecycle calls from `async fn main`), where a bare `block_on` panics
//! ("Cannot start a runtime from within a runtime"); [`PostgresStore`]'s
//! `block` picks, per call, the way to wait that cannot panic (see
//! `Blocking` below).
//!
//! **Coordination between replicas** is done with row and advisory locks,
//! never a leader that can die:
//! * migrations run under `pg_advisory_lock(MIGRATION_LOCK)`, so replicas
//!   starting together migrate once;
//! * [`Store::due`] claims with `FOR UPDATE SKIP LOCKED` (grants another
//!   replica is ending right now are skipped), and
//!   [`Store::update_grant_with`]/[`Store::update_grants_with`] lock their rows with
//!   `FOR UPDATE` (ordered by id, all before any write, so two batches cannot
//!   deadlock) and hand the *locked, current* grant to the closure, which
//!   re-checks its state: the replica that loses a race sees the grant
//!   already ended and writes nothing — each ending happens exactly once;
//! * the outbox is claimed with `FOR UPDATE SKIP LOCKED` and leased (its
//!   `next_at` pushed forward) in the same statement, so dispatchers on all
//!   replicas drain it without double sends; a crashed replica's claims come
//!   due again when the lease runs out. The claim skips every event whose
//!   grant has an earlier event undelivered (leased elsewhere or waiting
//!   out a backoff), so a grant's events go out in order across replicas;
//! * audit records are *staged*, then *chained*. A transaction that records
//!   something inserts its records into `audit_pending` without any lock and
//!   answers after its own COMMIT, so replicas' commits run side by side
//!   (PostgreSQL flushes them together) and nothing is answered before its
//!   record is durable. Moving pending records into the hash-chained `audit`
//!   table is one transaction under `pg_advisory_xact_lock(AUDIT_LOCK)`:
//!   read the last hash, seal every pending record in `id` order, insert,
//!   delete them, commit (`tx::chain`). Only that transaction extends the
//!   chain, so it is one line, never a fork; one lock hold and one WAL flush
//!   cover every record staged since the last run, by any replica. It runs
//!   in each store's background chainer (`CHAIN_GATHER` after its own
//!   commits, and every `CHAIN_TICK` for records a dead replica left; it
//!   only tries the lock, and looks again shortly when another replica
//!   holds it) and before every read of the chain, waiting for the lock, so
//!   readers see every answered record. Figures and the argument:
//!   `docs/operations.md`, ARCHITECTURE.md, docs/performance.md §16.
//!
//! One file past 500 lines: one backend implements the whole `Store` contract; its transactions, locks and SQL read together.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

mod tx;

use super::quarantine::GRANT_COLS;
use super::rows::{self, RECORD_COLS, grant_doc};
use super::tickets::{self, Judged, TICKET_COLS, TicketChange, TicketOutcome, TicketRecord};
use super::{
    AcceptedPolicySet, Change, Effects, GrantFilter, OutboxEvent, Quarantined, Review, Store,
    StoreError, UpdateError,
};
use crate::audit::{AuditDraft, AuditRecord};
use crate::grant::{Grant, Millis};
use tx::{Lock, chain, decode, decode_all, grant_row, migrate, record, stage, write_effects};

/// Versioned migrations, in order (same meaning as SQLite's).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_outbox_sequence.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_quarantine_and_request_scope.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_tickets.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_policy_sets.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_provisioning.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_ticket_events_seen_at.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_audit_pending.sql"),
    ),
];

/// Advisory lock key held while migrating ("jitgate-migrate").
pub const MIGRATION_LOCK: i64 = 0x6a67_6d69_6772_0001;
/// First key of the two-key advisory lock (second: `hashtext(ticket id)`)
/// held while a ticket event is applied, so two replicas receiving events
/// of one ticket apply them one after the other.
pub const TICKET_LOCK: i32 = 0x6a67_7469;
/// Advisory lock key held by the transaction that moves pending audit
/// records into the chain (and by nothing else).
pub const AUDIT_LOCK: i64 = 0x6a67_6175_6469_0001;
/// How often each store's chainer looks for pending records nobody woke it
/// for: staged by a replica that died before chaining them.
const CHAIN_TICK: Duration = Duration::from_millis(200);
/// How long the chainer waits after a wake before it chains, so that the
/// records other writers (and other replicas) stage meanwhile ride in the
/// same run: one lock hold and one flush for more records. Answers never
/// wait for chaining (only for their staged COMMIT) and readers chain for
/// themselves, so this only widens the tamper-evidence window by 10 ms
/// (docs/performance.md §16 measures what it saves with three replicas).
const CHAIN_GATHER: Duration = Duration::from_millis(10);
/// Longest wait between retries while chaining fails (database down).
const CHAIN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Advisory lock key held while a policy set is accepted, so two replicas
/// cannot both pass the sequence check.
pub const POLICY_SET_LOCK: i64 = 0x6a67_706f_6c73_0001;

/// A PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    /// `Some` until drop; taken there and shut down in the background so
    /// that dropping the store inside an async context does not panic.
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Wakes this store's chainer after a commit that staged records.
    chain_wake: Arc<Notify>,
}

fn be(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

type Client = deadpool_postgres::Object;
type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// How a sync call waits for the store's runtime on the current thread.
///
/// * No runtime on this thread (the CLI, a plain thread): `block_on`
///   directly.
/// * A multi-thread runtime: `tokio::task::block_in_place`, which on an
///   async worker hands the worker's other tasks to another thread and
///   lets this one block, and on tokio's blocking pool just runs. Chosen
///   over a hand-off to another thread because it costs nothing on the
///   hot path (the HTTP layer calls from the blocking pool).
/// * A current-thread runtime, where `block_in_place` panics: the call is
///   handed to a scoped thread of its own and this one waits for it (the
///   runtime stalls meanwhile, as with any sync call on it; async callers
///   use the grant layer's `_async` methods). tokio gives no way to tell this
///   runtime's blocking pool from its own thread, so calls from that pool
///   take this path too: one extra thread per call, only on current-thread
///   runtimes.
enum Blocking {
    Plain,
    InPlace,
    OtherThread,
}

impl Blocking {
    fn here() -> Blocking {
        match tokio::runtime::Handle::try_current() {
            Err(_) => Blocking::Plain,
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                Blocking::InPlace
            }
            Ok(_) => Blocking::OtherThread,
        }
    }
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host:port/db`), migrating if needed.
    /// Fails (does not wait forever) if the server is unreachable.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut cfg = tokio_postgres::Config::from_str(url).map_err(be)?;
        cfg.connect_timeout(Duration::from_secs(5));
        if cfg.get_application_name().is_none() {
            cfg.application_name("jitgate");
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jitgate-pg")
            .enable_all()
            .build()
            .map_err(be)?;
        let pool = Pool::builder(mgr)
            .max_size(16)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(be)?;
        let chain_wake = Arc::new(Notify::new());
        let store = PostgresStore {
            rt: Some(rt),
            pool,
            chain_wake,
        };
        store.block(async {
            let mut c = store.client().await?;
            migrate(&mut c).await
        })?;
        store
            .runtime()?
            .spawn(chainer(store.pool.clone(), store.chain_wake.clone()));
        Ok(store)
    }

    /// Run `f` to completion on the store's runtime, from whatever thread
    /// the caller is on (see [`Blocking`]).
    fn block<T: Send>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let rt = self.runtime()?;
        match Blocking::here() {
            Blocking::Plain => rt.block_on(f),
            Blocking::InPlace => tokio::task::block_in_place(|| rt.block_on(f)),
            Blocking::OtherThread => {
                std::thread::scope(|s| match s.spawn(|| rt.block_on(f)).join() {
                    Ok(v) => v,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
            }
        }
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, StoreError> {
        self.rt
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store is shutting down".into()))
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.pool.get().await.map_err(be)
    }

    /// A connection for reading the chain, after chaining every record
    /// committed so far (by any replica, a dead one included): a reader
    /// (verify, export, evidence, replay, review) sees each record whose
    /// writer has answered. When nothing is pending this costs one indexed
    /// `EXISTS`, no lock and no write.
    async fn chained_client(&self) -> Result<Client, StoreError> {
        let mut c = self.client().await?;
        chain(&mut c, Lock::Wait).await?;
        Ok(c)
    }

    /// After a commit that staged audit records: wake the chainer. Wakes
    /// while it is busy coalesce into one more run.
    fn staged(&self) {
        self.chain_wake.notify_one();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The store's chainer: moves pending audit records into the chain
/// [`CHAIN_GATHER`] after a wake (this store's own commits that staged some,
/// coalesced while it is busy or gathering) and every [`CHAIN_TICK`]
/// (records a dead replica staged). It never queues for the audit lock:
/// when another replica's chainer or a reader holds it, it looks again
/// after [`CHAIN_GATHER`] for whatever that run did not see. Callers are
/// answered once their records are durable, not chained. Stops with the
/// runtime (the store's drop).
async fn chainer(pool: Pool, wake: Arc<Notify>) {
    let mut backoff = CHAIN_TICK;
    let mut failing = false;
    loop {
        let woken = tokio::select! {
            _ = wake.notified() => true,
            _ = tokio::time::sleep(backoff) => false,
        };
        if woken {
            tokio::time::sleep(CHAIN_GATHER).await;
        }
        let r = async {
            let mut c = pool.get().await.map_err(be)?;
            chain(&mut c, Lock::Try).await
        }
        .await;
        match r {
            Ok(done) => {
                if failing {
                    tracing::info!("chaining pending audit records again");
                }
                failing = false;
                backoff = if done { CHAIN_TICK } else { CHAIN_GATHER };
            }
            Err(e) => {
                // Logged once per outage; readers chain for themselves and
                // fail with the store anyway.
                if !failing {
                    tracing::warn!(error = %e, "cannot chain pending audit records; retrying");
                }
                failing = true;
                backoff = (backoff * 2).min(CHAIN_BACKOFF_MAX);
            }
        }
    }
}

impl Store for PostgresStore {
    fn create_grant(&self, grant: &Grant, effects: Effects) -> Result<(), StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let doc = grant_doc(grant)?;
            let tx = c.transaction().await.map_err(be)?;
            if let Err(e) = grant_row(&tx, grant, &doc, true).await {
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    drop(tx);
                    let taken = c
                        .query_opt(
                            "SELECT id FROM grants WHERE requested_by = $1 AND request_id = $2",
                            &[&grant.requested_by, &grant.request.id],
                        )
                        .await
                        .map_err(be)?;
                    if let Some(row) = taken {
                        return Err(StoreError::DuplicateRequest(row.get(0)));
                    }
                }
                return Err(be(e));
            }
            write_effects(&tx, effects).await?;
            tx.commit().await.map_err(be)?;
            self.staged();
            Ok(())
        })
    }

    fn update_grant_with(&self, id: &str, change: &mut Change<'_>) -> Result<Grant, UpdateError> {
        let mut out = self.update_locked(&[id.to_string()], change, true)?;
        out.pop()
            .ok_or_else(|| StoreError::NotFound(id.to_string()).into())
    }

    fn update_grants_with(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
    ) -> Result<Vec<Grant>, UpdateError> {
        self.update_locked(ids, change, false)
    }

    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {GRANT_COLS} FROM grants WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(be)?;
            match row {
                Some(r) => Ok(Some(decode(&**c, &r).await?)),
                None => Ok(None),
            }
        })
    }

    fn grant_by_request(
        &self,
        requested_by: &str,
        request_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {GRANT_COLS} FROM grants WHERE requested_by = $1 AND request_id = $2"
                    ),
                    &[&requested_by, &request_id],
                )
                .await
                .map_err(be)?;
            match row {
                Some(r) => Ok(Some(decode(&**c, &r).await?)),
                None => Ok(None),
            }
        })
    }

    fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let (before_at, before_id) = f.before.clone().unwrap_or((i64::MAX, String::new()));
            let state = f.state.map(|s| s.as_str());
            let rows = c
                .query(
                    &format!(
                        "SELECT {GRANT_COLS} FROM grants
                     WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR subject = $2)
                       AND ($3::TEXT IS NULL OR ticket_id = $3)
                       AND (created_at, id) < ($4, $5)
                     ORDER BY created_at DESC, id DESC LIMIT $6"
                    ),
                    &[
                        &state,
                        &f.subject,
                        &f.ticket,
                        &before_at,
                        &before_id,
                        &(f.limit.max(1) as i64),
                    ],
                )
                .await
                .map_err(be)?;
            decode_all(&**c, &rows).await
        })
    }

    fn open_grants_of_ticket(&self, ticket_id: &str) -> Result<Vec<String>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id FROM grants WHERE ticket_id = $1 AND state IN ('active', 'pending', 'provisioning') ORDER BY id",
                    &[&ticket_id],
                )
                .await
                .map_err(be)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn due(&self, now: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        // SKIP LOCKED: grants another replica holds (it is ending them now)
        // are left to it; whatever both still see is settled by the row
        // lock and re-check in update_grants.
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id FROM grants
                     WHERE (state IN ('active', 'provisioning') AND expires_at <= $1) OR (state = 'pending' AND lapses_at <= $1)
                     ORDER BY COALESCE(expires_at, lapses_at) LIMIT $2
                     FOR UPDATE SKIP LOCKED",
                    &[&now, &(limit as i64)],
                )
                .await
                .map_err(be)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "SELECT LEAST(
                       (SELECT MIN(expires_at) FROM grants WHERE state IN ('active', 'provisioning')),
                       (SELECT MIN(lapses_at) FROM grants WHERE state = 'pending'))",
                    &[],
                )
                .await
                .map_err(be)?;
            Ok(row.get(0))
        })
    }

    fn count_active(&self) -> Result<u64, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_one("SELECT COUNT(*) FROM grants WHERE state = 'active'", &[])
                .await
                .map_err(be)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            // One statement, so one implicit transaction: all of the batch
            // or none of it, committed (durable) when it returns. An explicit
            // BEGIN/COMMIT around it cost two more round trips per group
            // commit (docs/performance.md §16).
            stage(&**c, drafts).await?;
            self.staged();
            Ok(())
        })
    }

    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.block(async {
            let c = self.chained_client().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {RECORD_COLS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ),
                    &[&after, &(limit as i64)],
                )
                .await
                .map_err(be)?;
            rows.iter().map(record).collect()
        })
    }

    fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.block(async {
            let c = self.chained_client().await?;
            let row = c
                .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
                .await
                .map_err(be)?;
            row.map(|r| Ok((r.try_get(0).map_err(be)?, r.try_get(1).map_err(be)?)))
                .transpose()
        })
    }

    fn audit_of_grant(&self, grant_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        self.block(async {
            let c = self.chained_client().await?;
            let rows = c
                .query(
                    &format!("SELECT {RECORD_COLS} FROM audit WHERE grant_id = $1 ORDER BY seq"),
                    &[&grant_id],
                )
                .await
                .map_err(be)?;
            rows.iter().map(record).collect()
        })
    }

    fn outbox_claim(
        &self,
        now: Millis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let until = now + lease.as_millis() as i64;
            let rows = c
                .query(
                    "UPDATE outbox SET next_at = $2 WHERE id IN (
                       SELECT id FROM outbox o WHERE delivered_at IS NULL AND next_at <= $1
                         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.grant_id = o.grant_id
                                         AND p.sequence < o.sequence AND p.delivered_at IS NULL)
                       ORDER BY next_at, created_at LIMIT $3 FOR UPDATE OF o SKIP LOCKED)
                     RETURNING id, grant_id, kind, payload, created_at, attempts, sequence",
                    &[&now, &until, &(limit as i64)],
                )
                .await
                .map_err(be)?;
            let mut out = rows
                .iter()
                .map(|r| {
                    let sequence: i64 = r.get(6);
                    Ok(OutboxEvent {
                        id: r.get(0),
                        grant_id: r.get(1),
                        kind: r.get(2),
                        payload: super::with_sequence(
                            serde_json::from_str(r.get(3)).map_err(corrupt)?,
                            sequence,
                        ),
                        created_at: r.get(4),
                        attempts: r.get::<_, i32>(5).max(0) as u32,
                        sequence,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(out)
        })
    }

    fn outbox_delivered(&self, id: &str, at: Millis) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1",
                &[&id, &at],
            )
            .await
            .map_err(be)?;
            Ok(())
        })
    }

    fn outbox_failed(&self, id: &str, next_at: Millis, error: &str) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "UPDATE outbox SET next_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1",
                &[&id, &next_at, &error],
            )
            .await
            .map_err(be)?;
            Ok(())
        })
    }

    fn outbox_pending(&self) -> Result<u64, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL",
                    &[],
                )
                .await
                .map_err(be)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT grant_id, found_at, reason, doc FROM quarantine ORDER BY found_at, grant_id",
                    &[],
                )
                .await
                .map_err(be)?;
            Ok(rows
                .iter()
                .map(|r| Quarantined {
                    grant_id: r.get(0),
                    found_at: r.get(1),
                    reason: r.get(2),
                    doc: r.get(3),
                })
                .collect())
        })
    }

    fn quarantine_count(&self) -> Result<u64, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let n: i64 = c
                .query_one("SELECT COUNT(*) FROM quarantine", &[])
                .await
                .map_err(be)?
                .get(0);
            Ok(n as u64)
        })
    }

    fn policy_set_sequence(&self) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_one("SELECT MAX(sequence)::BIGINT FROM policy_sets", &[])
                .await
                .map_err(be)?;
            Ok(row.get(0))
        })
    }

    fn accept_policy_set(
        &self,
        set: &AcceptedPolicySet,
        audit: Vec<AuditDraft>,
    ) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(be)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_SET_LOCK])
                .await
                .map_err(be)?;
            let last: Option<i64> = tx
                .query_one("SELECT MAX(sequence)::BIGINT FROM policy_sets", &[])
                .await
                .map_err(be)?
                .get(0);
            if let Some(last) = last.filter(|l| *l > set.sequence) {
                return Ok(Some(last));
            }
            tx.execute(
                "INSERT INTO policy_sets (digest, sequence, version, signers, accepted_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (digest) DO UPDATE SET accepted_at = excluded.accepted_at",
                &[
                    &set.digest,
                    &set.sequence,
                    &set.version,
                    &set.signers.join(","),
                    &set.accepted_at,
                ],
            )
            .await
            .map_err(be)?;
            stage(&*tx, audit).await?;
            tx.commit().await.map_err(be)?;
            self.staged();
            Ok(None)
        })
    }

    fn ticket(&self, id: &str) -> Result<Option<TicketRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {TICKET_COLS} FROM tickets WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(be)?;
            row.as_ref().map(rows::ticket).transpose()
        })
    }

    fn apply_ticket_change(
        &self,
        change: &TicketChange<'_>,
        end_grant: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError> {
        let rt = self.runtime()?;
        match Blocking::here() {
            Blocking::Plain => rt.block_on(self.ticket_tx(change, end_grant)),
            Blocking::InPlace => {
                tokio::task::block_in_place(|| rt.block_on(self.ticket_tx(change, end_grant)))
            }
            Blocking::OtherThread => self.ticket_on_other_thread(rt, change, end_grant),
        }
    }

    fn reviews(&self, open_only: bool) -> Result<Vec<Review>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, grant_id, opened_at, closed_at, closed_by, note FROM reviews
                     WHERE (NOT $1 OR closed_at IS NULL) ORDER BY closed_at IS NOT NULL, opened_at",
                    &[&open_only],
                )
                .await
                .map_err(be)?;
            Ok(rows
                .iter()
                .map(|r| Review {
                    id: r.get(0),
                    grant_id: r.get(1),
                    opened_at: r.get(2),
                    closed_at: r.get(3),
                    closed_by: r.get(4),
                    note: r.get(5),
                })
                .collect())
        })
    }

    fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: Millis,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(be)?;
            let n = tx
                .execute(
                    "UPDATE reviews SET closed_at = $2, closed_by = $3, note = $4 WHERE id = $1 AND closed_at IS NULL",
                    &[&id, &at, &by, &note],
                )
                .await
                .map_err(be)?;
            if n == 0 {
                return Ok(false);
            }
            stage(&*tx, vec![audit]).await?;
            tx.commit().await.map_err(be)?;
            self.staged();
            Ok(true)
        })
    }
}

impl PostgresStore {
    /// Lock the rows of `ids` (ordered by id, all before any write: two
    /// overlapping batches cannot deadlock), run `change` on each current grant,
    /// write what changed, commit once. `single` = missing id is an error.
    fn update_locked(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
        single: bool,
    ) -> Result<Vec<Grant>, UpdateError> {
        let rt = self.runtime()?;
        match Blocking::here() {
            Blocking::Plain => rt.block_on(self.update_tx(ids, change, single)),
            Blocking::InPlace => {
                tokio::task::block_in_place(|| rt.block_on(self.update_tx(ids, change, single)))
            }
            Blocking::OtherThread => self.update_on_other_thread(rt, ids, change, single),
        }
    }

    /// [`Self::update_locked`] from a current-thread runtime: the
    /// transaction runs on a scoped thread, but the caller's closure (not
    /// `Send`: it may borrow anything of the caller's) runs here, each
    /// grant sent over and back through channels.
    fn update_on_other_thread(
        &self,
        rt: &tokio::runtime::Runtime,
        ids: &[String],
        change: &mut Change<'_>,
        single: bool,
    ) -> Result<Vec<Grant>, UpdateError> {
        type Changed = (Grant, Result<Option<Effects>, super::Abort>);
        let (to_caller, from_store) = std::sync::mpsc::channel::<Grant>();
        let (to_store, from_caller) = std::sync::mpsc::channel::<Changed>();
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut proxy = move |g: &mut Grant| {
                    to_caller.send(g.clone()).map_err(|_| super::Abort)?;
                    let (changed, result) = from_caller.recv().map_err(|_| super::Abort)?;
                    *g = changed;
                    result
                };
                rt.block_on(self.update_tx(ids, &mut proxy, single))
            });
            // Ends when the worker's transaction is done (its sender dropped).
            for mut g in from_store.iter() {
                let result = change(&mut g);
                if to_store.send((g, result)).is_err() {
                    break;
                }
            }
            match worker.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// [`Store::apply_ticket_change`] from a current-thread runtime: as
    /// [`Self::update_on_other_thread`], the transaction on a scoped thread
    /// and the caller's closure here.
    fn ticket_on_other_thread(
        &self,
        rt: &tokio::runtime::Runtime,
        change: &TicketChange<'_>,
        end_grant: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError> {
        type Changed = (Grant, Result<Option<Effects>, super::Abort>);
        let (to_caller, from_store) = std::sync::mpsc::channel::<Grant>();
        let (to_store, from_caller) = std::sync::mpsc::channel::<Changed>();
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut proxy = move |g: &mut Grant| {
                    to_caller.send(g.clone()).map_err(|_| super::Abort)?;
                    let (changed, result) = from_caller.recv().map_err(|_| super::Abort)?;
                    *g = changed;
                    result
                };
                rt.block_on(self.ticket_tx(change, &mut proxy))
            });
            for mut g in from_store.iter() {
                let result = end_grant(&mut g);
                if to_store.send((g, result)).is_err() {
                    break;
                }
            }
            match worker.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// The ticket event's transaction (see [`Store::apply_ticket_change`]).
    async fn ticket_tx(
        &self,
        change: &TicketChange<'_>,
        end_grant: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(be)?;
        let ev = change.event;
        // Lock order: this ticket, then its grants; nothing takes them the
        // other way (the audit record is staged, which takes no lock).
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&TICKET_LOCK, &ev.ticket_id],
        )
        .await
        .map_err(be)?;
        let current = tx
            .query_opt(
                &format!("SELECT {TICKET_COLS} FROM tickets WHERE id = $1"),
                &[&ev.ticket_id],
            )
            .await
            .map_err(be)?
            .as_ref()
            .map(rows::ticket)
            .transpose()?;
        let seen = match &ev.event_id {
            Some(id) => tx
                .query_opt(
                    "SELECT 1 FROM ticket_events_seen WHERE source = $1 AND event_id = $2",
                    &[&ev.source, id],
                )
                .await
                .map_err(be)?
                .is_some(),
            None => false,
        };
        let outcome = match tickets::judge(current, seen, change) {
            Judged::Unchanged(outcome) => outcome,
            Judged::Apply { before, after } => {
                tx.execute(
                        "INSERT INTO tickets (id, source, state, priority, assignee, opened_at, updated_at, last_event_id, recorded_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (id) DO UPDATE SET source = $2, state = $3, priority = $4, assignee = $5,
                           opened_at = $6, updated_at = $7, last_event_id = $8, recorded_at = $9",
                        &[
                            &after.id,
                            &after.source,
                            &rows::ticket_state_str(after.state),
                            &after.priority.map(i64::from),
                            &after.assignee,
                            &after.opened_at,
                            &after.updated_at,
                            &after.last_event_id,
                            &after.recorded_at,
                        ],
                    )
                    .await
                    .map_err(be)?;
                if let Some(id) = &ev.event_id {
                    tx.execute(
                            "INSERT INTO ticket_events_seen (source, event_id, ticket_id, seen_at) VALUES ($1, $2, $3, $4)
                             ON CONFLICT DO NOTHING",
                            &[&ev.source, id, &ev.ticket_id, &change.at],
                        )
                        .await
                        .map_err(be)?;
                    tx.execute(
                        "DELETE FROM ticket_events_seen WHERE seen_at < $1",
                        &[&change.at.saturating_sub(tickets::SEEN_EVENT_RETENTION_MS)],
                    )
                    .await
                    .map_err(be)?;
                }
                let mut revoked = Vec::new();
                if tickets::ends_grants(&after, change) {
                    let rows = tx
                            .query(
                                &format!(
                                    "SELECT {GRANT_COLS} FROM grants WHERE ticket_id = $1 AND state IN ('active', 'pending', 'provisioning')
                                     ORDER BY id FOR UPDATE"
                                ),
                                &[&after.id],
                            )
                            .await
                            .map_err(be)?;
                    for mut g in decode_all(&*tx, &rows).await? {
                        if let Some(effects) = end_grant(&mut g)? {
                            let doc = grant_doc(&g)?;
                            grant_row(&tx, &g, &doc, false).await.map_err(be)?;
                            write_effects(&tx, effects).await?;
                            revoked.push(g.id.clone());
                        }
                    }
                }
                TicketOutcome::Applied {
                    before,
                    after,
                    revoked,
                }
            }
        };
        stage(&*tx, vec![tickets::audit_draft(change, &outcome)]).await?;
        tx.commit().await.map_err(be)?;
        self.staged();
        Ok(outcome)
    }

    async fn update_tx(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
        single: bool,
    ) -> Result<Vec<Grant>, UpdateError> {
        {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(be)?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT {GRANT_COLS} FROM grants WHERE id = ANY($1) ORDER BY id FOR UPDATE"
                    ),
                    &[&ids],
                )
                .await
                .map_err(be)?;
            if single && rows.is_empty() {
                return Err(StoreError::NotFound(ids.join(",")).into());
            }
            let mut grants = decode_all(&*tx, &rows).await?;
            // Keep the caller's order (the scheduler passes oldest deadline first).
            grants.sort_by_key(|g| ids.iter().position(|i| *i == g.id));
            // A quarantine copy is kept even if nothing else changes.
            let mut dirty = grants.iter().any(|g| g.quarantined.is_some());
            for g in &mut grants {
                // The closure's error drops `tx`: rolled back.
                if let Some(effects) = change(g)? {
                    let doc = grant_doc(g)?;
                    grant_row(&tx, g, &doc, false).await.map_err(be)?;
                    write_effects(&tx, effects).await?;
                    dirty = true;
                }
            }
            if dirty {
                tx.commit().await.map_err(be)?;
                self.staged();
            }
            Ok(grants)
        }
    }
}
