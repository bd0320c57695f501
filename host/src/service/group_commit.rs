//! Group commit for audit records that change no grant (dry-run decisions,
//! authentication failures): concurrent callers hand their record to one
//! writer thread, which appends everything queued in one transaction — one
//! fsync for the batch — and then answers each caller.
//!
//! The caller still waits for its own record to be durable before it
//! answers (a decision that cannot be evidenced is not given); what is
//! shared is the fsync. Under load this turns one fsync per decision into
//! one per batch; alone, a record costs the same as a direct append.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use tokio::sync::oneshot;

use crate::audit::AuditDraft;
use crate::store::{Store, StoreError};

/// Most records in one transaction.
pub const MAX_BATCH: usize = 1024;

/// A record and where its outcome goes: a tokio oneshot for async
/// waiters, a std channel for sync ones.
type Job = (AuditDraft, Box<dyn FnOnce(Result<(), String>) + Send>);

/// The writer's handle.
pub struct GroupCommit {
    tx: Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Backend("audit writer stopped".into())
}

impl GroupCommit {
    /// Start the writer thread for `store`. It stops when the handle drops.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("jitgate-audit".into())
            .spawn(move || writer(store, rx))?;
        Ok(GroupCommit { tx })
    }

    /// Queue `draft`; the returned future resolves once it is committed.
    /// Awaiting it from async code holds no thread: this is how the HTTP
    /// layer waits for a dry run's record without a blocking-pool hand-off.
    pub fn submit(
        &self,
        draft: AuditDraft,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let reply = Box::new(move |r| {
            let _ = reply.send(r);
        });
        let queued = self.tx.send((draft, reply)).map_err(|_| stopped());
        async move {
            queued?;
            answer
                .await
                .map_err(|_| stopped())?
                .map_err(|e| StoreError::Backend(e.into()))
        }
    }

    /// Append `draft` and wait until it is committed, blocking this thread.
    /// The wait is on a std channel (tokio's `blocking_recv` panics on an
    /// async worker), so a sync caller inside a runtime is safe too.
    pub fn append(&self, draft: AuditDraft) -> Result<(), StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let reply = Box::new(move |r| {
            let _ = reply.send(r);
        });
        self.tx.send((draft, reply)).map_err(|_| stopped())?;
        answer
            .recv()
            .map_err(|_| stopped())?
            .map_err(|e| StoreError::Backend(e.into()))
    }
}

fn writer(store: Arc<dyn Store>, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (drafts, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let retry = (drafts.len() > 1).then(|| drafts.clone());
        let result = store.append_audit(drafts).map_err(|e| e.to_string());
        match (result, retry) {
            // One record the store refuses must not fail the others' batch
            // (a NUL in a PostgreSQL text column once answered every client
            // of the batch with 503): each is retried alone and gets its
            // own answer. A store that is down fails each of them anyway.
            (Err(_), Some(drafts)) => {
                for (d, r) in drafts.into_iter().zip(replies) {
                    r(store.append_audit(vec![d]).map_err(|e| e.to_string()));
                }
            }
            (result, _) => {
                for r in replies {
                    r(result.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn concurrent_appends_all_land_in_one_chain() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
        let gc = Arc::new(GroupCommit::start(store.clone()).expect("writer"));
        std::thread::scope(|s| {
            for t in 0..8 {
                let gc = gc.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        gc.append(AuditDraft::new(
                            i,
                            "decision",
                            &format!("t{t}"),
                            serde_json::json!({"i": i}),
                        ))
                        .expect("append");
                    }
                });
            }
        });
        let records = store.audit_page(0, 1000).expect("page");
        assert_eq!(records.len(), 400);
        assert_eq!(crate::audit::verify(&records), Ok(400));
    }

    #[test]
    fn async_submissions_from_many_tasks_land_in_one_chain() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
        let gc = Arc::new(GroupCommit::start(store.clone()).expect("writer"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let committed = gc.submit(AuditDraft::new(
                        i,
                        "decision",
                        "async",
                        serde_json::json!({"i": i}),
                    ));
                    tokio::spawn(committed)
                })
                .collect();
            for t in tasks {
                t.await.expect("task").expect("committed");
            }
        });
        let records = store.audit_page(0, 1000).expect("page");
        assert_eq!(records.len(), 200);
        assert_eq!(crate::audit::verify(&records), Ok(200));
    }

    #[test]
    fn a_failed_batch_fails_every_waiter() {
        let store = Arc::new(crate::service::tests::BrokenWrites::new());
        let gc = GroupCommit::start(store.clone()).expect("writer");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let async_result =
            rt.block_on(gc.submit(AuditDraft::new(1, "decision", "x", serde_json::json!({}))));
        assert!(
            async_result.is_err(),
            "an unrecorded decision must not be answered"
        );
        assert!(
            gc.append(AuditDraft::new(2, "decision", "x", serde_json::json!({})))
                .is_err()
        );
        assert!(store.audit_page(0, 10).expect("page").is_empty());
    }
}
