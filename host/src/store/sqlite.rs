//! The embedded default store: one SQLite file.
//!
//! One file past 500 lines: the [`Store`] trait for one backend, every method
//! beside the SQL it runs, so a reader compares it with `postgres.rs` method
//! by method.
//!
//! PRAGMAs are chosen for durability, not speed:
//! * `journal_mode = WAL` — readers never block the writer, and a crash
//!   mid-write leaves the last committed state intact;
//! * `synchronous = FULL` — every commit is fsynced to the WAL before it is
//!   acknowledged, so a grant reported active (or ended) survives power loss
//!   (`NORMAL` could lose the last commits);
//! * `foreign_keys = ON`, `busy_timeout = 5000` — a second process (e.g.
//!   `jitgate audit verify` on a live database) waits instead of failing;
//! * `cache_size = 64 MiB` — the default 2 MiB page cache made every sweep
//!   of a large grant table re-read pages with `pread` (measured with the
//!   revocation bench: most of the scheduler's CPU). This costs memory, not
//!   durability.
//!
//! One connection behind a mutex serialises writers, which is also what keeps
//! the audit chain linear. Queries that write nothing (a ticket's facts, audit
//! pages and heads, counts) run on a few read-only connections of their own
//! ([`READERS`]), so a request that only reads does not wait behind the audit
//! writer's fsync: in WAL mode a reader sees the last committed state without
//! taking the write lock. Migrations are the numbered files in
//! `host/migrations/`, applied in order inside a transaction and recorded in
//! `schema_migrations`.
//!
//! One file past 500 lines: one backend implements the whole `Store` contract; its transactions and SQL read together.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use super::quarantine::{self, GRANT_COLS, GrantColumns};
use super::rows::{self, RECORD_COLS};
use super::tickets::{self, Judged, TICKET_COLS, TicketChange, TicketOutcome, TicketRecord};
use super::{
    AcceptedPolicySet, Change, Effects, GrantFilter, OutboxEvent, Quarantined, Review, Store,
    StoreError, UpdateError, now_millis,
};
use crate::audit::{self, AuditDraft, AuditRecord};
use crate::grant::{Grant, Millis};

/// Versioned migrations, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_outbox_sequence.sql")),
    (
        3,
        include_str!("../../migrations/0003_quarantine_and_request_scope.sql"),
    ),
    (4, include_str!("../../migrations/0004_tickets.sql")),
    (5, include_str!("../../migrations/0005_policy_sets.sql")),
    (6, include_str!("../../migrations/0006_provisioning.sql")),
    (
        7,
        include_str!("../../migrations/0007_ticket_events_seen_at.sql"),
    ),
];

/// Read-only connections of a file store. Default 4: reads
/// come from the async workers' blocking calls and the decision threads
/// (one per two CPUs); each connection costs a file handle and up to
/// [`READER_CACHE_KIB`] of page cache. Reads never wait for the writer, only
/// for another read when all four are busy.
pub const READERS: usize = 4;

/// Page cache per read-only connection, KiB (the writer keeps 64 MiB).
pub const READER_CACHE_KIB: i64 = 16_384;

/// A SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Empty for an in-memory store (its data lives in one connection):
    /// reads then take the writer's connection.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl SqliteStore {
    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(be)?;
        let mut store = Self::init(conn)?;
        // After init: the file is migrated and in WAL mode.
        for _ in 0..READERS {
            store.readers.push(Mutex::new(open_reader(path)?));
        }
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(be)?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(be)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(be)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(be)?;
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(be)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(be)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| poisoned())
    }

    /// A connection for a query that writes nothing: a free read-only one
    /// (the writer's, for an in-memory store). Never the writer's lock for
    /// a file store, so a read does not wait for a commit's fsync.
    fn read(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let n = self.readers.len();
        if n == 0 {
            return self.lock();
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(c) => return Ok(c),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        self.readers[start % n].lock().map_err(|_| poisoned())
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("store lock poisoned by a panic".into())
}

/// A read-only connection to the migrated file at `path`.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(be)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(be)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(be)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(be)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(be)?;
    let applied: Vec<i64> = tx
        .prepare("SELECT version FROM schema_migrations")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()
        })
        .map_err(be)?;
    for (version, sql) in super::pending_migrations(MIGRATIONS, &applied)? {
        tx.execute_batch(sql).map_err(be)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now_millis()],
        )
        .map_err(be)?;
    }
    tx.commit().map_err(be)
}

fn append(tx: &rusqlite::Transaction<'_>, drafts: Vec<AuditDraft>) -> Result<(), StoreError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(be)?
        .unwrap_or((0, audit::GENESIS.to_string()));
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO audit (seq, at, kind, actor, grant_id, request_id, data, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(be)?;
    for d in drafts {
        seq += 1;
        let r = audit::seal(&prev, seq, d);
        stmt.execute(params![
            r.seq,
            r.draft.at,
            r.draft.kind,
            r.draft.actor,
            r.draft.grant_id,
            r.draft.request_id,
            r.stored_data,
            r.prev_hash,
            r.hash
        ])
        .map_err(be)?;
        prev = r.hash;
    }
    Ok(())
}

fn write_effects(tx: &rusqlite::Transaction<'_>, effects: Effects) -> Result<(), StoreError> {
    append(tx, effects.audit)?;
    for e in effects.outbox {
        tx.execute(
            // The grant's row is written (and locked) in this transaction, so
            // no other writer can number an event of this grant meanwhile.
            "INSERT INTO outbox (id, grant_id, kind, payload, created_at, next_at, sequence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox WHERE grant_id = ?2))",
            params![e.id, e.grant_id, e.kind, e.payload.to_string(), e.created_at],
        )
        .map_err(be)?;
    }
    if let Some(r) = effects.review {
        tx.execute(
            "INSERT INTO reviews (id, grant_id, opened_at) VALUES (?1, ?2, ?3)",
            params![r.id, r.grant_id, r.opened_at],
        )
        .map_err(be)?;
    }
    Ok(())
}

fn grant_row(tx: &Connection, g: &Grant, insert: bool) -> Result<(), StoreError> {
    let doc = rows::grant_doc(g)?;
    let sql = if insert {
        "INSERT INTO grants (id, request_id, subject, ticket_id, state, expires_at, lapses_at, revoke_on_ticket_close, created_at, doc, requested_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    } else {
        "UPDATE grants SET request_id = ?2, subject = ?3, ticket_id = ?4, state = ?5, expires_at = ?6, lapses_at = ?7,
         revoke_on_ticket_close = ?8, created_at = ?9, doc = ?10, requested_by = ?11 WHERE id = ?1"
    };
    tx.execute(
        sql,
        params![
            g.id,
            g.request.id,
            g.request.subject.id,
            g.ticket_id(),
            g.state.as_str(),
            g.expires_at,
            g.lapses_at,
            g.revoke_on_ticket_close,
            g.created_at,
            doc,
            g.requested_by
        ],
    )
    .map_err(be)?;
    Ok(())
}

/// A grant row as selected with [`GRANT_COLS`].
fn grant_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<(GrantColumns, String)> {
    rows::grant_columns(r)
}

/// Decode a row; a document that does not parse is quarantined (its text
/// copied once, never overwritten) and a salvaged grant returned.
fn decode(conn: &Connection, (cols, doc): (GrantColumns, String)) -> Result<Grant, StoreError> {
    let (g, damaged) = quarantine::decode(&cols, &doc);
    if let Some(reason) = damaged {
        conn.execute(
                "INSERT OR IGNORE INTO quarantine (grant_id, found_at, reason, doc) VALUES (?1, ?2, ?3, ?4)",
                params![cols.id, now_millis(), reason, doc],
            )
        .map_err(be)?;
    }
    Ok(g)
}

/// The listing query for `f`'s shape. Only the filters given appear, so
/// that SQLite can use `grants_state (state, created_at)`, `grants_subject
/// (subject, created_at)` or `grants_ticket`: a condition written `(?1 IS
/// NULL OR state = ?1)` cannot use an index, and every listing scanned and
/// sorted the whole table, documents included (10,000 grants: ~25 ms for
/// the newest 200 pending ones; now under 1 ms). Without a filter the
/// newest rows are picked by rowid first, so the sort carries no
/// documents. Parameters keep their numbers (`?6` is always present, so
/// all six bind).
fn grants_query(f: &GrantFilter) -> String {
    let mut conds = Vec::new();
    if f.state.is_some() {
        conds.push("state = ?1");
    }
    if f.subject.is_some() {
        conds.push("subject = ?2");
    }
    if f.ticket.is_some() {
        conds.push("ticket_id = ?3");
    }
    conds.push("(created_at, id) < (?4, ?5)");
    let conds = conds.join(" AND ");
    let order = "ORDER BY created_at DESC, id DESC";
    if f.state.is_none() && f.subject.is_none() && f.ticket.is_none() {
        format!(
            "SELECT {GRANT_COLS} FROM grants WHERE rowid IN
               (SELECT rowid FROM grants WHERE {conds} {order} LIMIT ?6)
             {order}"
        )
    } else {
        format!("SELECT {GRANT_COLS} FROM grants WHERE {conds} {order} LIMIT ?6")
    }
}

fn select_grant(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Option<Grant>, StoreError> {
    conn.query_row(
        &format!("SELECT {GRANT_COLS} FROM grants WHERE {filter}"),
        args,
        grant_columns,
    )
    .optional()
    .map_err(be)?
    .map(|row| decode(conn, row))
    .transpose()
}

fn select_ticket(conn: &Connection, id: &str) -> Result<Option<TicketRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {TICKET_COLS} FROM tickets WHERE id = ?1"))
        .map_err(be)?;
    let mut rows = stmt.query([id]).map_err(be)?;
    match rows.next().map_err(be)? {
        Some(r) => Ok(Some(rows::ticket(r)?)),
        None => Ok(None),
    }
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    rows::record(r)
}

impl Store for SqliteStore {
    fn create_grant(&self, grant: &Grant, effects: Effects) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let taken: Option<String> = tx
            .query_row(
                "SELECT id FROM grants WHERE requested_by = ?1 AND request_id = ?2",
                [&grant.requested_by, &grant.request.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(be)?;
        if let Some(id) = taken {
            return Err(StoreError::DuplicateRequest(id));
        }
        grant_row(&tx, grant, true)?;
        write_effects(&tx, effects)?;
        tx.commit().map_err(be)
    }

    fn update_grant_with(&self, id: &str, change: &mut Change<'_>) -> Result<Grant, UpdateError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let mut grant = select_grant(&tx, "id = ?1", [id])?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        match change(&mut grant)? {
            None => {
                // Keep a quarantine copy even when nothing else changed.
                tx.commit().map_err(be)?;
                Ok(grant)
            }
            Some(effects) => {
                grant_row(&tx, &grant, false)?;
                write_effects(&tx, effects)?;
                tx.commit().map_err(be)?;
                Ok(grant)
            }
        }
    }

    fn update_grants_with(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
    ) -> Result<Vec<Grant>, UpdateError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let mut out = Vec::with_capacity(ids.len());
        let mut dirty = false;
        for id in ids {
            let Some(mut grant) = select_grant(&tx, "id = ?1", [id])? else {
                continue;
            };
            dirty |= grant.quarantined.is_some();
            if let Some(effects) = change(&mut grant)? {
                grant_row(&tx, &grant, false)?;
                write_effects(&tx, effects)?;
                dirty = true;
            }
            out.push(grant);
        }
        if dirty {
            tx.commit().map_err(be)?;
        }
        Ok(out)
    }

    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let conn = self.lock()?;
        select_grant(&conn, "id = ?1", [id])
    }

    fn grant_by_request(
        &self,
        requested_by: &str,
        request_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        let conn = self.lock()?;
        select_grant(
            &conn,
            "requested_by = ?1 AND request_id = ?2",
            [requested_by, request_id],
        )
    }

    fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        let conn = self.lock()?;
        // Keyset pagination on (created_at, id); no cursor = from the newest.
        let (before_at, before_id) = f.before.clone().unwrap_or((i64::MAX, String::new()));
        let mut stmt = conn.prepare_cached(&grants_query(f)).map_err(be)?;
        let rows = stmt
            .query_map(
                params![
                    f.state.map(|s| s.as_str()),
                    f.subject,
                    f.ticket,
                    before_at,
                    before_id,
                    f.limit.max(1) as i64
                ],
                grant_columns,
            )
            .map_err(be)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(be)?;
        drop(stmt);
        rows.into_iter().map(|row| decode(&conn, row)).collect()
    }

    fn open_grants_of_ticket(&self, ticket_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached("SELECT id FROM grants WHERE ticket_id = ?1 AND state IN ('active', 'pending', 'provisioning') ORDER BY id")
            .map_err(be)?;
        stmt.query_map([ticket_id], |r| r.get(0))
            .map_err(be)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(be)
    }

    fn due(&self, now: Millis, limit: usize) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM (
                   SELECT id, expires_at AS t FROM grants WHERE state IN ('active', 'provisioning') AND expires_at <= ?1
                   UNION ALL
                   SELECT id, lapses_at AS t FROM grants WHERE state = 'pending' AND lapses_at <= ?1
                 ) ORDER BY t LIMIT ?2",
            )
            .map_err(be)?;
        stmt.query_map(params![now, limit as i64], |r| r.get(0))
            .map_err(be)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(be)
    }

    fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        let conn = self.read()?;
        conn.query_row(
            "SELECT MIN(t) FROM (
               SELECT MIN(expires_at) AS t FROM grants WHERE state IN ('active', 'provisioning')
               UNION ALL SELECT MIN(lapses_at) FROM grants WHERE state = 'pending')",
            [],
            |r| r.get(0),
        )
        .map_err(be)
    }

    fn count_active(&self) -> Result<u64, StoreError> {
        let conn = self.read()?;
        conn.query_row(
            "SELECT COUNT(*) FROM grants WHERE state = 'active'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(be)
    }

    fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        append(&tx, drafts)?;
        tx.commit().map_err(be)
    }

    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(be)?;
        let rows = stmt
            .query_map(params![after, limit as i64], record)
            .map_err(be)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(be)?;
        Ok(rows)
    }

    fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let conn = self.read()?;
        conn.query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(be)
    }

    fn audit_of_grant(&self, grant_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLS} FROM audit WHERE grant_id = ?1 ORDER BY seq"
            ))
            .map_err(be)?;
        let rows = stmt
            .query_map([grant_id], record)
            .map_err(be)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(be)?;
        Ok(rows)
    }

    fn outbox_claim(
        &self,
        now: Millis,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let conn = self.lock()?;
        let until = now + lease.as_millis() as i64;
        let mut stmt = conn
            .prepare_cached(
                "UPDATE outbox SET next_at = ?2 WHERE id IN (
                   SELECT id FROM outbox o WHERE delivered_at IS NULL AND next_at <= ?1
                     AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.grant_id = o.grant_id
                                     AND p.sequence < o.sequence AND p.delivered_at IS NULL)
                   ORDER BY next_at, created_at LIMIT ?3)
                 RETURNING id, grant_id, kind, payload, created_at, attempts, sequence",
            )
            .map_err(be)?;
        let rows = stmt
            .query_map(params![now, until, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(be)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(be)?;
        let mut out = rows
            .into_iter()
            .map(
                |(id, grant_id, kind, payload, created_at, attempts, sequence)| {
                    Ok(OutboxEvent {
                        id,
                        grant_id,
                        kind,
                        payload: super::with_sequence(
                            serde_json::from_str(&payload).map_err(corrupt)?,
                            sequence,
                        ),
                        created_at,
                        attempts: attempts as u32,
                        sequence,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    fn outbox_delivered(&self, id: &str, at: Millis) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            params![id, at],
        )
        .map_err(be)?;
        Ok(())
    }

    fn outbox_failed(&self, id: &str, next_at: Millis, error: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE outbox SET next_at = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
            params![id, next_at, error],
        )
        .map_err(be)?;
        Ok(())
    }

    fn outbox_pending(&self) -> Result<u64, StoreError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(be)
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT grant_id, found_at, reason, doc FROM quarantine ORDER BY found_at, grant_id",
            )
            .map_err(be)?;
        stmt.query_map([], |r| {
            Ok(Quarantined {
                grant_id: r.get(0)?,
                found_at: r.get(1)?,
                reason: r.get(2)?,
                doc: r.get(3)?,
            })
        })
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)
    }

    fn quarantine_count(&self) -> Result<u64, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT COUNT(*) FROM quarantine", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(be)
    }

    fn policy_set_sequence(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT MAX(sequence) FROM policy_sets", [], |r| r.get(0))
            .map_err(be)
    }

    fn accept_policy_set(
        &self,
        set: &AcceptedPolicySet,
        audit: Vec<AuditDraft>,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let last: Option<i64> = tx
            .query_row("SELECT MAX(sequence) FROM policy_sets", [], |r| r.get(0))
            .map_err(be)?;
        if let Some(last) = last.filter(|l| *l > set.sequence) {
            return Ok(Some(last));
        }
        tx.execute(
            "INSERT INTO policy_sets (digest, sequence, version, signers, accepted_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (digest) DO UPDATE SET accepted_at = excluded.accepted_at",
            params![
                set.digest,
                set.sequence,
                set.version,
                set.signers.join(","),
                set.accepted_at
            ],
        )
        .map_err(be)?;
        append(&tx, audit)?;
        tx.commit().map_err(be)?;
        Ok(None)
    }

    fn ticket(&self, id: &str) -> Result<Option<TicketRecord>, StoreError> {
        let conn = self.read()?;
        select_ticket(&conn, id)
    }

    fn reads_in_process(&self) -> bool {
        // In-memory stores read on the writer's connection, so may wait.
        !self.readers.is_empty()
    }

    fn apply_ticket_change(
        &self,
        change: &TicketChange<'_>,
        end_grant: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let ev = change.event;
        let current = select_ticket(&tx, &ev.ticket_id)?;
        let seen = match &ev.event_id {
            Some(id) => tx
                .query_row(
                    "SELECT 1 FROM ticket_events_seen WHERE source = ?1 AND event_id = ?2",
                    [&ev.source, id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(be)?
                .is_some(),
            None => false,
        };
        let outcome = match tickets::judge(current, seen, change) {
            Judged::Unchanged(outcome) => outcome,
            Judged::Apply { before, after } => {
                tx.execute(
                    "INSERT INTO tickets (id, source, state, priority, assignee, opened_at, updated_at, last_event_id, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (id) DO UPDATE SET source = ?2, state = ?3, priority = ?4, assignee = ?5,
                       opened_at = ?6, updated_at = ?7, last_event_id = ?8, recorded_at = ?9",
                    params![
                        after.id,
                        after.source,
                        rows::ticket_state_str(after.state),
                        after.priority,
                        after.assignee,
                        after.opened_at,
                        after.updated_at,
                        after.last_event_id,
                        after.recorded_at
                    ],
                )
                .map_err(be)?;
                if let Some(id) = &ev.event_id {
                    tx.execute(
                        "INSERT OR IGNORE INTO ticket_events_seen (source, event_id, ticket_id, seen_at) VALUES (?1, ?2, ?3, ?4)",
                        params![ev.source, id, ev.ticket_id, change.at],
                    )
                    .map_err(be)?;
                    tx.execute(
                        "DELETE FROM ticket_events_seen WHERE seen_at < ?1",
                        [change.at.saturating_sub(tickets::SEEN_EVENT_RETENTION_MS)],
                    )
                    .map_err(be)?;
                }
                let mut revoked = Vec::new();
                if tickets::ends_grants(&after, change) {
                    let ids: Vec<String> = tx
                        .prepare_cached("SELECT id FROM grants WHERE ticket_id = ?1 AND state IN ('active', 'pending', 'provisioning') ORDER BY id")
                        .map_err(be)?
                        .query_map([&after.id], |r| r.get(0))
                        .map_err(be)?
                        .collect::<Result<_, _>>()
                        .map_err(be)?;
                    for id in ids {
                        let Some(mut grant) = select_grant(&tx, "id = ?1", [&id])? else {
                            continue;
                        };
                        if let Some(effects) = end_grant(&mut grant)? {
                            grant_row(&tx, &grant, false)?;
                            write_effects(&tx, effects)?;
                            revoked.push(id);
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
        append(&tx, vec![tickets::audit_draft(change, &outcome)])?;
        tx.commit().map_err(be)?;
        Ok(outcome)
    }

    fn reviews(&self, open_only: bool) -> Result<Vec<Review>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, grant_id, opened_at, closed_at, closed_by, note FROM reviews
                 WHERE (?1 = 0 OR closed_at IS NULL) ORDER BY closed_at IS NOT NULL, opened_at",
            )
            .map_err(be)?;
        stmt.query_map([open_only as i64], |r| {
            Ok(Review {
                id: r.get(0)?,
                grant_id: r.get(1)?,
                opened_at: r.get(2)?,
                closed_at: r.get(3)?,
                closed_by: r.get(4)?,
                note: r.get(5)?,
            })
        })
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)
    }

    fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: Millis,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(be)?;
        let n = tx
            .execute(
                "UPDATE reviews SET closed_at = ?2, closed_by = ?3, note = ?4 WHERE id = ?1 AND closed_at IS NULL",
                params![id, at, by, note],
            )
            .map_err(be)?;
        if n == 0 {
            return Ok(false);
        }
        append(&tx, vec![audit])?;
        tx.commit().map_err(be)?;
        Ok(true)
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    fn file_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        match SqliteStore::open(&dir.path().join("j.db")) {
            Ok(s) => (dir, Arc::new(s)),
            Err(e) => panic!("open: {e}"),
        }
    }

    /// A read while the writer's connection is held (as during a commit's
    /// fsync) answers from a read-only connection instead of waiting. The
    /// timeout only bounds a hang; it is not a speed limit.
    #[test]
    fn reads_do_not_wait_for_the_writer() {
        let (_dir, store) = file_store();
        let held = store.lock();
        assert!(held.is_ok(), "writer lock");
        let (tx, rx) = channel();
        let reader = store.clone();
        std::thread::spawn(move || {
            let _ = tx.send((
                reader.audit_head(),
                reader.ticket("INC-1"),
                reader.count_active(),
            ));
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((head, ticket, active)) => {
                assert!(matches!(head, Ok(None)), "{head:?}");
                assert!(matches!(ticket, Ok(None)), "{ticket:?}");
                assert!(matches!(active, Ok(0)), "{active:?}");
            }
            Err(e) => panic!("a read waited for the writer: {e}"),
        }
        drop(held);
    }

    /// What the writer committed, every reader sees at once; and the read
    /// connections refuse writes.
    #[test]
    fn readers_see_each_commit_and_cannot_write() {
        let (_dir, store) = file_store();
        for i in 1..=(2 * READERS as i64) {
            let d = AuditDraft::new(i, "decision", "t", serde_json::json!({"i": i}));
            assert!(store.append_audit(vec![d]).is_ok());
            // Round robin: each append is read back through another reader.
            match store.audit_head() {
                Ok(Some((seq, _))) => assert_eq!(seq, i),
                other => panic!("head after append {i}: {other:?}"),
            }
        }
        let page = store.audit_page(0, 100).unwrap_or_default();
        assert_eq!(crate::audit::verify(&page), Ok(2 * READERS as u64));
        let reader = store.read();
        let refused = reader.map(|c| c.execute("DELETE FROM audit", []).is_err());
        assert!(matches!(refused, Ok(true)), "a read-only connection wrote");
    }
}
