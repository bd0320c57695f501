//! The transactions' building blocks: migrating under the migration lock,
//! staging audit records and chaining them under the audit lock, writing a grant
//! row and its effects. Kept apart from the [`Store`](super::super::Store)
//! impl so each file reads on its own.

use super::{AUDIT_LOCK, Client, MIGRATION_LOCK, MIGRATIONS, Tx, be};
use crate::audit::{self, AuditDraft, AuditRecord};
use crate::grant::Grant;
use crate::store::quarantine;
use crate::store::rows;
use crate::store::{Effects, StoreError};

pub(super) async fn migrate(c: &mut Client) -> Result<(), StoreError> {
    c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await
        .map_err(be)?;
    let r = migrate_locked(c).await;
    let unlock = c
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await
        .map_err(be);
    r.and(unlock)
}

pub(super) async fn migrate_locked(c: &mut Client) -> Result<(), StoreError> {
    let tx = c.transaction().await.map_err(be)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(be)?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in crate::store::pending_migrations(MIGRATIONS, &applied)? {
        tx.batch_execute(sql).await.map_err(be)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &crate::store::now_millis()],
        )
        .await
        .map_err(be)?;
    }
    tx.commit().await.map_err(be)
}

/// Stage `drafts` in `audit_pending`, in order, as part of the caller's
/// transaction: no lock, so concurrent transactions (every replica's) commit
/// side by side and PostgreSQL flushes their commits together. The records
/// are durable at the caller's COMMIT (before it answers anyone) and enter
/// the chain when [`chain`] next runs. Returns how many were staged.
pub(super) async fn stage(
    c: &impl tokio_postgres::GenericClient,
    drafts: Vec<AuditDraft>,
) -> Result<usize, StoreError> {
    let n = drafts.len();
    if n == 0 {
        return Ok(0);
    }
    let mut at = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut actor = Vec::with_capacity(n);
    let mut grant_id = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    for d in drafts {
        // Rendered now, stored as is: the chainer hashes exactly these bytes.
        data.push(audit::data_json(&d));
        at.push(d.at);
        kind.push(d.kind);
        actor.push(d.actor);
        grant_id.push(d.grant_id);
        request_id.push(d.request_id);
    }
    // One statement for the batch; ORDER BY the array position so the ids
    // (the chain order) follow the caller's order.
    c.execute(
        "INSERT INTO audit_pending (at, kind, actor, grant_id, request_id, data)
         SELECT at, kind, actor, grant_id, request_id, data
         FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])
              WITH ORDINALITY AS r(at, kind, actor, grant_id, request_id, data, n)
         ORDER BY n",
        &[&at, &kind, &actor, &grant_id, &request_id, &data],
    )
    .await
    .map_err(be)?;
    Ok(n)
}

/// Most pending records sealed in one chaining transaction.
const CHAIN_BATCH: i64 = 4096;

/// How a chaining run takes the audit lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Wait for it: a reader must see every record committed before it.
    Wait,
    /// Give up if another store holds it: the background chainer, which
    /// would otherwise queue behind another replica's run only to find the
    /// records that run already moved (measured: docs/performance.md §16).
    Try,
}

/// Move every committed pending record into the chain: under
/// `pg_advisory_xact_lock(AUDIT_LOCK)`, read the last hash, take the pending
/// rows in `id` order, seal and insert them, delete them, commit. One lock
/// hold and one WAL flush for everything staged by every replica since the
/// last run. Deleting and inserting in one transaction moves each record
/// exactly once: a chainer that dies mid-way rolls back and leaves them
/// pending for the next one. Returns false when `lock` is [`Lock::Try`] and
/// another store was chaining (records it did not see may still be
/// pending); true when every record committed before the call is chained.
pub(super) async fn chain(c: &mut Client, lock: Lock) -> Result<bool, StoreError> {
    loop {
        // Nothing pending (the common case for readers): no lock, no write,
        // no flush. A record committed before this read is seen by it.
        let any: bool = c
            .query_one("SELECT EXISTS (SELECT 1 FROM audit_pending)", &[])
            .await
            .map_err(be)?
            .get(0);
        if !any {
            return Ok(true);
        }
        let tx = c.transaction().await.map_err(be)?;
        // The lock first, then the statements: every read below sees what
        // the previous holder committed.
        if lock == Lock::Wait {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1), set_config('jitgate.chaining', 'on', true)",
                &[&AUDIT_LOCK],
            )
            .await
            .map_err(be)?;
        } else {
            let got: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1), set_config('jitgate.chaining', 'on', true)",
                    &[&AUDIT_LOCK],
                )
                .await
                .map_err(be)?
                .try_get(0)
                .map_err(be)?;
            if !got {
                tx.rollback().await.map_err(be)?;
                return Ok(false);
            }
        }
        let last = tx
            .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
            .await
            .map_err(be)?;
        let (mut seq, mut prev): (i64, String) = match last {
            Some(r) => (r.get(0), r.get(1)),
            None => (0, audit::GENESIS.to_string()),
        };
        let mut rows = tx
            .query(
                "DELETE FROM audit_pending WHERE id IN
                   (SELECT id FROM audit_pending ORDER BY id LIMIT $1)
                 RETURNING id, at, kind, actor, grant_id, request_id, data",
                &[&CHAIN_BATCH],
            )
            .await
            .map_err(be)?;
        rows.sort_by_key(|r| r.get::<_, i64>(0));
        let n = rows.len();
        let mut cols = Sealed::with_capacity(n);
        for r in &rows {
            seq += 1;
            let draft = AuditDraft {
                at: r.try_get(1).map_err(be)?,
                kind: r.try_get(2).map_err(be)?,
                actor: r.try_get(3).map_err(be)?,
                grant_id: r.try_get(4).map_err(be)?,
                request_id: r.try_get(5).map_err(be)?,
                data: serde_json::Value::Null,
                text: None,
            };
            let record = audit::seal_stored(&prev, seq, draft, r.try_get(6).map_err(be)?);
            prev = record.hash.clone();
            cols.push(record);
        }
        if n > 0 {
            tx.execute(
                "INSERT INTO audit (seq, at, kind, actor, grant_id, request_id, data, prev_hash, hash)
                 SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                      $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])",
                &[
                    &cols.seq,
                    &cols.at,
                    &cols.kind,
                    &cols.actor,
                    &cols.grant_id,
                    &cols.request_id,
                    &cols.data,
                    &cols.prev_hash,
                    &cols.hash,
                ],
            )
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        if (n as i64) < CHAIN_BATCH {
            return Ok(true);
        }
    }
}

/// Sealed records as columns, for one multi-row insert.
struct Sealed {
    seq: Vec<i64>,
    at: Vec<i64>,
    kind: Vec<String>,
    actor: Vec<String>,
    grant_id: Vec<Option<String>>,
    request_id: Vec<Option<String>>,
    data: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl Sealed {
    fn with_capacity(n: usize) -> Sealed {
        Sealed {
            seq: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            grant_id: Vec::with_capacity(n),
            request_id: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, r: AuditRecord) {
        self.seq.push(r.seq);
        self.at.push(r.draft.at);
        self.kind.push(r.draft.kind);
        self.actor.push(r.draft.actor);
        self.grant_id.push(r.draft.grant_id);
        self.request_id.push(r.draft.request_id);
        self.data.push(r.stored_data);
        self.prev_hash.push(r.prev_hash);
        self.hash.push(r.hash);
    }
}

pub(super) async fn write_effects(tx: &Tx<'_>, effects: Effects) -> Result<(), StoreError> {
    for e in effects.outbox {
        tx.execute(
            // The grant's row is locked (FOR UPDATE, or inserted) in this
            // transaction: no other replica numbers an event of it meanwhile.
            "INSERT INTO outbox (id, grant_id, kind, payload, created_at, next_at, sequence)
             VALUES ($1, $2, $3, $4, $5, $5, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox WHERE grant_id = $2))",
            &[&e.id, &e.grant_id, &e.kind, &e.payload.to_string(), &e.created_at],
        )
        .await
        .map_err(be)?;
    }
    if let Some(r) = effects.review {
        tx.execute(
            "INSERT INTO reviews (id, grant_id, opened_at) VALUES ($1, $2, $3)",
            &[&r.id, &r.grant_id, &r.opened_at],
        )
        .await
        .map_err(be)?;
    }
    stage(&**tx, effects.audit).await?;
    Ok(())
}

pub(super) async fn grant_row(
    tx: &Tx<'_>,
    g: &Grant,
    doc: &str,
    insert: bool,
) -> Result<(), tokio_postgres::Error> {
    let sql = if insert {
        "INSERT INTO grants (id, request_id, subject, ticket_id, state, expires_at, lapses_at, revoke_on_ticket_close, created_at, doc, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    } else {
        "UPDATE grants SET request_id = $2, subject = $3, ticket_id = $4, state = $5, expires_at = $6, lapses_at = $7,
         revoke_on_ticket_close = $8, created_at = $9, doc = $10, requested_by = $11 WHERE id = $1"
    };
    tx.execute(
        sql,
        &[
            &g.id,
            &g.request.id,
            &g.request.subject.id,
            &g.ticket_id(),
            &g.state.as_str(),
            &g.expires_at,
            &g.lapses_at,
            &g.revoke_on_ticket_close,
            &g.created_at,
            &doc,
            &g.requested_by,
        ],
    )
    .await?;
    Ok(())
}

/// Decode a row selected with [`quarantine::GRANT_COLS`]; a document that
/// does not parse is quarantined (its text copied once) and a salvaged grant
/// returned.
pub(super) async fn decode(
    c: &impl tokio_postgres::GenericClient,
    r: &tokio_postgres::Row,
) -> Result<Grant, StoreError> {
    let (cols, doc) = rows::grant_columns(r).map_err(be)?;
    let doc = doc.as_str();
    let (g, damaged) = quarantine::decode(&cols, doc);
    if let Some(reason) = damaged {
        c.execute(
            "INSERT INTO quarantine (grant_id, found_at, reason, doc) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (grant_id) DO NOTHING",
            &[&cols.id, &crate::store::now_millis(), &reason, &doc],
        )
        .await
        .map_err(be)?;
    }
    Ok(g)
}

/// Decode every row (see [`decode`]).
pub(super) async fn decode_all(
    c: &impl tokio_postgres::GenericClient,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<Grant>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(decode(c, r).await?);
    }
    Ok(out)
}

pub(super) fn record(r: &tokio_postgres::Row) -> Result<AuditRecord, StoreError> {
    rows::record(r).map_err(be)
}
