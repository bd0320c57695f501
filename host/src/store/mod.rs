//! Durable state behind one trait: grants, the audit chain, the provisioning
//! outbox and break-glass reviews.
//!
//! One file past 500 lines: the [`Store`] trait and the types every backend
//! speaks; a backend is written against this one page.
//!
//! The trait is shaped around *transactions its callers need*, not tables:
//! [`Store::create_grant`] and [`Store::update_grant_with`] each write the grant,
//! its audit records and its outbox events atomically, so no state change is
//! ever visible without its evidence and its provisioning call queued.
//! `update_grant` hands the current grant to a closure under the store's
//! lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `SELECT … FOR UPDATE`), so two
//! workers racing to end the same grant end it once.
//!
//! The trait is synchronous: the HTTP layer calls it from blocking threads.
//! SQLite is the embedded default ([`sqlite::SqliteStore`]); PostgreSQL
//! ([`postgres::PostgresStore`]) is for several replicas sharing one state.
//! [`open`] picks one from the configured `store` string.
//!
//! One file past 500 lines: the `Store` contract both backends implement: its methods, errors and shared helpers read as one.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod quarantine;
mod rows;
pub mod sqlite;
pub mod tickets;

pub use quarantine::Quarantined;
pub use tickets::{TicketChange, TicketFacts, TicketOutcome, TicketRecord};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditDraft, AuditRecord};
use crate::grant::{Grant, GrantState, Millis};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, corruption, lock timeout); the driver's
    /// error is kept as the source.
    #[error("store unavailable: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored document does not parse.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The request id is already used (the caller compares bodies).
    #[error("request id already used by grant {0}")]
    DuplicateRequest(String),
    /// No such grant.
    #[error("no grant {0}")]
    NotFound(String),
    /// The schema is newer than this binary.
    #[error("store schema version {found} is newer than this jitgate (knows {known})")]
    SchemaTooNew {
        /// In the database.
        found: i64,
        /// Known here.
        known: i64,
    },
}

/// Why [`Store::update_grant_with`] stored nothing: the store failed, or the
/// caller's closure aborted the change (its own error stays with the caller;
/// see [`Store::update_grant_with`](trait.Store.html#method.update_grant)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The closure returned [`Abort`]; the transaction was rolled back.
    #[error("the change was aborted by its caller")]
    Aborted,
}

/// Returned by an update closure to roll its transaction back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort;

impl From<Abort> for UpdateError {
    fn from(_: Abort) -> Self {
        UpdateError::Aborted
    }
}

/// An update closure as the (object-safe) trait takes it.
pub type Change<'a> = dyn FnMut(&mut Grant) -> Result<Option<Effects>, Abort> + 'a;

/// The wall clock in milliseconds, for the store's own bookkeeping
/// (migration and quarantine times); grant times come from the caller.
pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// A provisioning event waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutboxEvent {
    /// Stable id receivers deduplicate on.
    pub id: String,
    /// The grant.
    pub grant_id: String,
    /// `grant-activated` or `grant-ended`.
    pub kind: String,
    /// The JSON body to deliver.
    pub payload: serde_json::Value,
    /// When queued.
    pub created_at: Millis,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Position among its grant's events (1, 2, …), assigned by the store
    /// when the event is queued (callers pass 0). An event is claimed only
    /// after every earlier event of its grant was delivered; receivers use
    /// the number to ignore stale redeliveries (docs/api.md).
    #[serde(default)]
    pub sequence: i64,
}

/// `payload` with its `sequence` set: what a receiver is sent. The number
/// lives in its own column (assigned when queued), so rows queued before it
/// existed get one too.
pub(crate) fn with_sequence(mut payload: serde_json::Value, sequence: i64) -> serde_json::Value {
    if let Some(obj) = payload.as_object_mut() {
        obj.insert("sequence".into(), sequence.into());
    }
    payload
}

/// A break-glass review item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Review {
    /// Id.
    pub id: String,
    /// The break-glass grant.
    pub grant_id: String,
    /// Opened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub opened_at: Millis,
    /// Closed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub closed_at: Option<Millis>,
    /// By whom.
    pub closed_by: Option<String>,
    /// The auditor's note.
    pub note: Option<String>,
}

/// What a grant change writes besides the grant.
#[derive(Debug, Default)]
pub struct Effects {
    /// Audit records, appended in order.
    pub audit: Vec<AuditDraft>,
    /// Provisioning events to queue.
    pub outbox: Vec<OutboxEvent>,
    /// A review to open.
    pub review: Option<Review>,
}

/// Grant list filter.
#[derive(Debug, Default, Clone)]
pub struct GrantFilter {
    /// Only this state.
    pub state: Option<GrantState>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this ticket.
    pub ticket: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Grants created before this (created_at, id) cursor.
    pub before: Option<(Millis, String)>,
}

/// A policy set a host accepted. The store keeps every one; the highest
/// sequence is the floor below which a signed set is a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPolicySet {
    /// `sha256:<hex>` of its manifest.
    pub digest: String,
    /// Its sequence.
    pub sequence: i64,
    /// Its version.
    pub version: String,
    /// Key ids whose signatures verified.
    pub signers: Vec<String>,
    /// When accepted.
    pub accepted_at: Millis,
}

/// The migrations of `known` (ascending by version) not in `applied`, in
/// order. Every unapplied one runs, not only those above the highest
/// applied: migrations written on parallel branches (4 and 5) may be
/// released in either order, and a store that got 5 first still gets 4.
/// A store holding a version above every known one is newer than this
/// binary.
pub(crate) fn pending_migrations<'a>(
    known: &'a [(i64, &'a str)],
    applied: &[i64],
) -> Result<Vec<&'a (i64, &'a str)>, StoreError> {
    let newest = known.last().map_or(0, |m| m.0);
    if let Some(found) = applied.iter().copied().filter(|v| *v > newest).max() {
        return Err(StoreError::SchemaTooNew {
            found,
            known: newest,
        });
    }
    Ok(known.iter().filter(|(v, _)| !applied.contains(v)).collect())
}

/// The durable state.
pub trait Store: Send + Sync {
    /// Insert a new grant with its effects. Fails with
    /// [`StoreError::DuplicateRequest`] if its request id is taken.
    fn create_grant(&self, grant: &Grant, effects: Effects) -> Result<(), StoreError>;

    /// Run `change` on the current grant under a lock; if it returns
    /// `Ok(Some(effects))`, store the changed grant and the effects in one
    /// transaction. `Ok(None)` writes nothing. [`Abort`] rolls back.
    /// Callers use the typed `update_grant` on `dyn Store`, which carries
    /// their own error type through.
    fn update_grant_with(&self, id: &str, change: &mut Change<'_>) -> Result<Grant, UpdateError>;

    /// [`Store::update_grant_with`] over many grants in one transaction (one
    /// fsync for the batch): how the scheduler ends thousands of grants that
    /// fall due together without thousands of commits. Any error aborts the
    /// whole batch. Missing ids are skipped.
    fn update_grants_with(
        &self,
        ids: &[String],
        change: &mut Change<'_>,
    ) -> Result<Vec<Grant>, UpdateError>;

    /// One grant.
    fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;

    /// The grant created for a client request id sent by `requested_by`
    /// (request ids are scoped to the principal that sends them).
    fn grant_by_request(
        &self,
        requested_by: &str,
        request_id: &str,
    ) -> Result<Option<Grant>, StoreError>;

    /// Grants matching a filter, newest first.
    fn grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>, StoreError>;

    /// Ids of active or pending grants of a ticket.
    fn open_grants_of_ticket(&self, ticket_id: &str) -> Result<Vec<String>, StoreError>;

    /// Ids of active grants expired by `now` and pending grants lapsed by `now`.
    fn due(&self, now: Millis, limit: usize) -> Result<Vec<String>, StoreError>;

    /// The earliest expiry or lapse still ahead (or overdue).
    fn next_deadline(&self) -> Result<Option<Millis>, StoreError>;

    /// Number of active grants.
    fn count_active(&self) -> Result<u64, StoreError>;

    /// Append records that change no grant (dry runs, auth failures, loads).
    fn append_audit(&self, records: Vec<AuditDraft>) -> Result<(), StoreError>;

    /// Records with `seq > after`, up to `limit`, in order.
    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// The last record: (seq, hash), what a checkpoint signs. The default
    /// walks the chain; the stores read the last row.
    fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let mut head = None;
        let mut after = 0;
        loop {
            let page = self.audit_page(after, 1000)?;
            let Some(last) = page.last() else {
                return Ok(head);
            };
            after = last.seq;
            head = Some((last.seq, last.hash.clone()));
        }
    }

    /// Records about one grant, in order.
    fn audit_of_grant(&self, grant_id: &str) -> Result<Vec<AuditRecord>, StoreError>;

    /// Claim up to `limit` undelivered events due by `now`, oldest first, and
    /// lease them. An event whose grant has an earlier event still
    /// undelivered is not claimed (so a claim holds at most one event per
    /// grant, and a grant's events reach the receiver in sequence order
    /// whichever replica sends them). Claimed events are leased: they are not returned again (to this or any replica)
    /// before `now + lease` unless marked failed with an earlier retry time.
    /// This is what lets every replica's dispatcher drain one outbox without
    /// sending an event twice, while a crashed replica's claims come due
    /// again when the lease runs out.
    fn outbox_claim(
        &self,
        now: Millis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Mark delivered.
    fn outbox_delivered(&self, id: &str, at: Millis) -> Result<(), StoreError>;

    /// Record a failed attempt and when to retry.
    fn outbox_failed(&self, id: &str, next_at: Millis, error: &str) -> Result<(), StoreError>;

    /// Count of undelivered events.
    fn outbox_pending(&self) -> Result<u64, StoreError>;

    /// Grant rows whose stored document did not parse, oldest first
    /// (see [`quarantine`]).
    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError>;

    /// How many grant rows are quarantined.
    fn quarantine_count(&self) -> Result<u64, StoreError>;

    /// One ticket of the registry.
    fn ticket(&self, id: &str) -> Result<Option<TicketRecord>, StoreError>;

    /// Whether [`Store::ticket`] is answered in this process without
    /// waiting on a network or on writers (SQLite's read-only connections),
    /// so an async caller may read inline instead of handing the read to a
    /// blocking thread. Default `false`: a store that blocks (PostgreSQL,
    /// wrappers that do not say) keeps the hand-off.
    fn reads_in_process(&self) -> bool {
        false
    }

    /// Apply one ticket event in one transaction: the ticket row (and the
    /// event id as seen by its source), its audit record whatever the
    /// outcome (see [`tickets::judge`]), and, when the ticket now ends its
    /// grants ([`tickets::ends_grants`]), `end_grant` run on each of its
    /// active or pending grants under the lock, as in
    /// [`Store::update_grants_with`]; a grant for which it returns effects
    /// is written and listed as revoked.
    fn apply_ticket_change(
        &self,
        change: &TicketChange<'_>,
        end_grant: &mut Change<'_>,
    ) -> Result<TicketOutcome, UpdateError>;

    /// The highest sequence of an accepted policy set.
    fn policy_set_sequence(&self) -> Result<Option<i64>, StoreError>;

    /// Record `set` as accepted, with `audit`, in one transaction — unless
    /// a set with a higher sequence was accepted already (by any replica):
    /// then nothing is written and that sequence is returned.
    fn accept_policy_set(
        &self,
        set: &AcceptedPolicySet,
        audit: Vec<AuditDraft>,
    ) -> Result<Option<i64>, StoreError>;

    /// Reviews, open ones first.
    fn reviews(&self, open_only: bool) -> Result<Vec<Review>, StoreError>;

    /// Close a review with its audit record; false if already closed or absent.
    fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: Millis,
        audit: AuditDraft,
    ) -> Result<bool, StoreError>;
}

impl<'s> dyn Store + 's {
    /// [`Store::update_grant_with`] with the caller's own error type: the
    /// closure's error aborts the transaction and is returned as it was.
    pub fn update_grant<E: From<StoreError>>(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut Grant) -> Result<Option<Effects>, E>,
    ) -> Result<Grant, E> {
        let mut failed = None;
        let r = self.update_grant_with(id, &mut |g| {
            change(g).map_err(|e| {
                failed = Some(e);
                Abort
            })
        });
        settle(r, failed)
    }

    /// [`Store::update_grants_with`] with the caller's own error type.
    pub fn update_grants<E: From<StoreError>>(
        &self,
        ids: &[String],
        change: &mut dyn FnMut(&mut Grant) -> Result<Option<Effects>, E>,
    ) -> Result<Vec<Grant>, E> {
        let mut failed = None;
        let r = self.update_grants_with(ids, &mut |g| {
            change(g).map_err(|e| {
                failed = Some(e);
                Abort
            })
        });
        settle(r, failed)
    }
}

fn settle<T, E: From<StoreError>>(r: Result<T, UpdateError>, failed: Option<E>) -> Result<T, E> {
    match (r, failed) {
        (Ok(v), _) => Ok(v),
        (Err(UpdateError::Aborted), Some(e)) => Err(e),
        (Err(UpdateError::Aborted), None) => {
            Err(StoreError::Backend("an update was aborted without an error".into()).into())
        }
        (Err(UpdateError::Store(e)), _) => Err(e.into()),
    }
}

/// Open the store named by the configuration's `store` value:
/// `postgres://…` or `postgresql://…` is a PostgreSQL URL (shared by
/// replicas); anything else is a SQLite file path. One function so that
/// `serve` and `audit` cannot disagree about what a value means.
pub fn open(store: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(store) {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::PostgresStore::open(store)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Backend(
            "this build has no PostgreSQL store (Cargo feature `postgres`)".into(),
        ));
    } else {
        Ok(Arc::new(sqlite::SqliteStore::open(std::path::Path::new(
            store,
        ))?))
    }
}

/// Whether a `store` value names PostgreSQL.
pub fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// The store value with every password removed, for logs, stdout and audit
/// records: the password of a URL's userinfo (`postgres://user:PW@host`,
/// read the way the driver reads it: up to the first `@`), and the value of
/// every `password` / `sslpassword` parameter, whether in a URL's query
/// (`?password=PW&…`) or in key/value form (`password=PW` or
/// `password='P W'`), which is replaced by `REDACTED`.
pub fn redacted(store: &str) -> String {
    let mut s = store.to_string();
    if let Some(rest) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|p| store.strip_prefix(p).map(|r| (p.len(), r)))
        .and_then(|(plen, rest)| rest.find('@').map(|at| (plen, &rest[..at])))
        .and_then(|(plen, creds)| creds.find(':').map(|c| (plen + c, plen + creds.len())))
    {
        let (colon, at) = rest;
        s.replace_range(colon..at, "");
    }
    redact_params(&s)
}

/// Replace the value of every `password=` / `sslpassword=` parameter.
fn redact_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let lower = rest.to_ascii_lowercase();
        let found = ["sslpassword", "password"]
            .iter()
            .filter_map(|k| {
                // A whole key: at the start or after a separator, then `=`
                // (spaces around it allowed in key/value form).
                lower.match_indices(k).find_map(|(i, _)| {
                    let before = lower[..i].chars().next_back();
                    let key_start = matches!(before, None | Some('?' | '&' | ' ' | '\t' | '\n'));
                    let after = lower[i + k.len()..].trim_start();
                    (key_start && after.starts_with('=')).then(|| (i, rest.len() - after.len() + 1))
                })
            })
            .min();
        let Some((_, value_start)) = found else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        let trimmed = value.trim_start();
        out.push_str(&value[..value.len() - trimmed.len()]);
        let end = if let Some(quoted) = trimmed.strip_prefix('\'') {
            // key/value form: '…' with \' and \\ escapes.
            let mut esc = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let close = !esc && c == '\'';
                    esc = !esc && c == '\\';
                    close
                })
                .map(|(i, _)| i + 2)
                .unwrap_or(trimmed.len())
        } else {
            trimmed
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(trimmed.len())
        };
        out.push_str("REDACTED");
        rest = &trimmed[end..];
    }
}

#[cfg(test)]
mod tests {
    /// The store is a layer below the grant workflow: nothing under
    /// `src/store` may name it (imports, its error type, its clock), so the
    /// dependency runs one way. The word is assembled so this file passes.
    #[test]
    fn no_store_source_names_the_layer_above() {
        let word = ["ser", "vice"].concat();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store")];
        let mut checked = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src/store") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    let hit = text
                        .lines()
                        .position(|l| l.to_ascii_lowercase().contains(&word));
                    assert!(
                        hit.is_none(),
                        "{}:{} names the {word} layer",
                        path.display(),
                        hit.unwrap_or(0) + 1
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 6, "only {checked} store sources found");
    }

    /// Migration 4 is written on another branch: a store that took 5
    /// first must still get 4 when it lands, and in order on a fresh store.
    #[test]
    fn migrations_missing_below_the_newest_applied_still_run_in_order() {
        let known: &[(i64, &str)] = &[(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")];
        let v = |p: Vec<&(i64, &str)>| p.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(
            v(super::pending_migrations(known, &[]).unwrap()),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(
            v(super::pending_migrations(known, &[1, 2, 3, 5]).unwrap()),
            [4]
        );
        assert_eq!(
            v(super::pending_migrations(known, &[1, 2, 3]).unwrap()),
            [4, 5]
        );
        assert!(
            super::pending_migrations(known, &[1, 2, 3, 4, 5])
                .unwrap()
                .is_empty()
        );
        let e = super::pending_migrations(known, &[1, 2, 3, 4, 5, 6]).unwrap_err();
        assert!(
            matches!(e, super::StoreError::SchemaTooNew { found: 6, known: 5 }),
            "{e}"
        );
        // The real lists are ascending with no version twice.
        for list in [
            super::sqlite::MIGRATIONS,
            #[cfg(feature = "postgres")]
            super::postgres::MIGRATIONS,
        ] {
            assert!(list.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn an_accepted_policy_set_is_the_floor_and_a_lower_one_is_refused() {
        use super::{AcceptedPolicySet, Store};
        let s = super::sqlite::SqliteStore::in_memory().expect("store");
        assert_eq!(s.policy_set_sequence().unwrap(), None);
        let set = |digest: &str, sequence| AcceptedPolicySet {
            digest: digest.into(),
            sequence,
            version: "v".into(),
            signers: vec!["00112233aabbccdd".into()],
            accepted_at: 1,
        };
        assert_eq!(
            s.accept_policy_set(&set("sha256:a", 5), Vec::new())
                .unwrap(),
            None
        );
        // The same set again (a restart) and a newer one pass.
        assert_eq!(
            s.accept_policy_set(&set("sha256:a", 5), Vec::new())
                .unwrap(),
            None
        );
        assert_eq!(
            s.accept_policy_set(&set("sha256:b", 7), Vec::new())
                .unwrap(),
            None
        );
        assert_eq!(
            s.accept_policy_set(&set("sha256:c", 6), Vec::new())
                .unwrap(),
            Some(7)
        );
        assert_eq!(s.policy_set_sequence().unwrap(), Some(7));
    }

    #[test]
    fn a_backend_error_keeps_its_source_and_message() {
        use std::error::Error as _;
        let io = std::io::Error::other("disk full");
        let e = super::StoreError::Backend(Box::new(io));
        assert_eq!(e.to_string(), "store unavailable: disk full");
        let source = e.source().expect("source kept");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn a_store_failure_reaches_the_caller_as_its_own_error_type() {
        #[derive(Debug)]
        enum Mine {
            No,
            Store,
        }
        impl From<super::StoreError> for Mine {
            fn from(_: super::StoreError) -> Self {
                Mine::Store
            }
        }
        let s = super::sqlite::SqliteStore::in_memory().expect("store");
        let s: &dyn super::Store = &s;
        let r = s.update_grant::<Mine>("missing", &mut |_| Ok(None));
        assert!(matches!(r, Err(Mine::Store)), "{r:?}");
        let r = s.update_grants::<Mine>(&["missing".to_string()], &mut |_| Err(Mine::No));
        // Missing ids are skipped: the closure never ran.
        assert!(matches!(r.as_deref(), Ok([])), "{r:?}");
    }
}
