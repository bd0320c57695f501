//! The transactions' building blocks: migrating under the migration lock,
//! appending to the one audit chain under the audit lock, writing a grant
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

pub(super) async fn append(tx: &Tx<'_>, drafts: Vec<AuditDraft>) -> Result<(), StoreError> {
    if drafts.is_empty() {
        return Ok(());
    }
    // One chain across replicas: whoever holds this lock (until commit)
    // reads the last committed hash and extends it.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .await
        .map_err(be)?;
    let last = tx
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await
        .map_err(be)?;
    let (mut seq, mut prev): (i64, String) = match last {
        Some(r) => (r.get(0), r.get(1)),
        None => (0, audit::GENESIS.to_string()),
    };
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit (seq, at, kind, actor, grant_id, request_id, data, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(be)?;
    for d in drafts {
        seq += 1;
        let r = audit::seal(&prev, seq, d);
        tx.execute(
            &stmt,
            &[
                &r.seq,
                &r.draft.at,
                &r.draft.kind,
                &r.draft.actor,
                &r.draft.grant_id,
                &r.draft.request_id,
                &r.stored_data,
                &r.prev_hash,
                &r.hash,
            ],
        )
        .await
        .map_err(be)?;
        prev = r.hash;
    }
    Ok(())
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
    // Last: the audit lock is held from here to commit, as briefly as possible.
    append(tx, effects.audit).await
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
