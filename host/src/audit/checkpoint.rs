//! Signed checkpoints: the chain head (seq, hash, time) signed with an
//! Ed25519 key and kept outside the store.
//!
//! A hash chain proves that no record was edited, removed or reordered
//! *relative to the others*; someone who can write the store can still
//! drop the newest records, or rewrite a record and re-hash everything
//! after it. A checkpoint written elsewhere (another disk, host or
//! write-once bucket) pins the record it names: verify checks that the
//! store still holds that record with that hash. Since each hash covers
//! every earlier record, the newest valid checkpoint vouches for the whole
//! chain up to it; older checkpoint files may be pruned.
//!
//! A file is one JSON object:
//! `{"format":"jitgate-audit-checkpoint/1","seq":…,"hash":"…","time":"…Z","key-id":"…","signature":"…"}`
//! where `signature` is the hex Ed25519 signature of
//! `jitgate-audit-checkpoint/1\n{seq}\n{hash}\n{time}\n`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Anchors;
use crate::store::Store;

/// The format tag, also the first line of what is signed.
pub const FORMAT: &str = "jitgate-audit-checkpoint/1";

/// One signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Checkpoint {
    /// [`FORMAT`].
    pub format: String,
    /// The last record's seq.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// When signed (RFC 3339, UTC).
    pub time: String,
    /// Which key signed ([`crate::keys::key_id`]).
    pub key_id: String,
    /// Hex Ed25519 signature of [`Checkpoint::message`].
    pub signature: String,
}

/// A checkpoint problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Nothing to sign.
    #[error("the audit chain is empty: nothing to checkpoint")]
    Empty,
    /// Writing or reading the folder failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: String,
        /// What failed.
        message: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl Checkpoint {
    /// The bytes that are signed.
    pub fn message(seq: i64, hash: &str, time: &str) -> Vec<u8> {
        format!("{FORMAT}\n{seq}\n{hash}\n{time}\n").into_bytes()
    }

    /// Sign the head (`seq`, `hash`) at unix second `now`.
    pub fn sign(key: &SigningKey, seq: i64, hash: &str, now: u64) -> Checkpoint {
        let time = crate::request::format_rfc3339(now);
        let signature = key.sign(&Self::message(seq, hash, &time));
        Checkpoint {
            format: FORMAT.to_string(),
            seq,
            hash: hash.to_string(),
            time,
            key_id: crate::keys::key_id(&key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Check the signature under `key`.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format `{}` is not {FORMAT}", self.format));
        }
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("signature is not 64 hex-encoded bytes")?;
        key.verify(
            &Self::message(self.seq, &self.hash, &self.time),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| {
            format!(
                "signature does not verify under key {} (forged, edited, or signed by key {})",
                crate::keys::key_id(key),
                self.key_id
            )
        })
    }

    /// Its file name: sortable by seq.
    pub fn file_name(&self) -> String {
        let stamp: String = self.time.chars().filter(char::is_ascii_digit).collect();
        format!("checkpoint-{:020}-{stamp}.json", self.seq)
    }
}

/// Sign the store's current head and write it into `dir` (created if
/// missing), atomically (a temp file renamed into place). Returns the
/// checkpoint and its path.
pub fn write(
    store: &dyn Store,
    key: &SigningKey,
    dir: &Path,
    now: u64,
) -> Result<(Checkpoint, PathBuf), CheckpointError> {
    let (seq, hash) = store.audit_head()?.ok_or(CheckpointError::Empty)?;
    let cp = Checkpoint::sign(key, seq, &hash, now);
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(cp.file_name());
    let tmp = dir.join(format!(".{}.tmp", cp.file_name()));
    let mut text = serde_json::to_string_pretty(&cp).map_err(|e| io(&path, e))?;
    text.push('\n');
    std::fs::write(&tmp, text).map_err(|e| io(&tmp, e))?;
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok((cp, path))
}

/// Write a checkpoint into `dir` every `every` while the chain grows
/// (`written`: the seq already checkpointed, if any). Runs until dropped. A
/// failure is logged and retried at the next tick: the service keeps
/// running, and the gap shows as a missing checkpoint.
pub async fn every(
    store: Arc<dyn Store>,
    dir: PathBuf,
    key: SigningKey,
    every: Duration,
    written: Option<i64>,
) {
    let key = Arc::new(key);
    let mut last = written;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (store, dir, key) = (store.clone(), dir.clone(), key.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<_, CheckpointError> {
            let head = store.audit_head()?;
            if head.is_none() || head.as_ref().map(|h| h.0) == last {
                return Ok(last);
            }
            write(store.as_ref(), &key, &dir, now_secs()).map(|(cp, _)| Some(cp.seq))
        })
        .await;
        match done {
            Ok(Ok(seq)) => last = seq,
            Ok(Err(e)) => tracing::error!(error = %e, "audit checkpoint not written"),
            Err(e) => tracing::error!(error = %e, "audit checkpoint task failed"),
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read every `*.json` in `dir` and check its signature under `key`: the
/// anchors of the valid ones, and a fault for each invalid one (a forged
/// or damaged checkpoint is itself an alarm). Two valid checkpoints naming
/// different hashes for one record are both kept: the second is reported.
pub fn load(
    dir: &Path,
    key: &VerifyingKey,
) -> Result<(Anchors, Vec<super::ChainError>), CheckpointError> {
    let mut anchors = Anchors::new();
    let mut faults = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bad = |problem: String| super::ChainError::BadCheckpoint {
            checkpoint: name.clone(),
            problem,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                faults.push(bad(e.to_string()));
                continue;
            }
        };
        let cp: Checkpoint = match serde_json::from_str(&text) {
            Ok(cp) => cp,
            Err(e) => {
                faults.push(bad(format!("not a checkpoint: {e}")));
                continue;
            }
        };
        if let Err(e) = cp.check(key) {
            faults.push(bad(e));
            continue;
        }
        match anchors.get(&cp.seq) {
            Some((hash, other)) if *hash != cp.hash => faults.push(bad(format!(
                "vouches for record {} with another hash than {other}",
                cp.seq
            ))),
            Some(_) => {}
            None => {
                anchors.insert(cp.seq, (cp.hash, name));
            }
        }
    }
    Ok((anchors, faults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_edit_breaks_it() {
        let key = crate::keys::generate().expect("key");
        let other = crate::keys::generate().expect("key");
        let cp = Checkpoint::sign(&key, 42, &"ab".repeat(32), 1_795_600_800);
        assert_eq!(cp.time, "2026-11-25T10:00:00.000Z");
        assert_eq!(cp.check(&key.verifying_key()), Ok(()));
        assert!(cp.check(&other.verifying_key()).is_err());
        for edit in [
            |c: &mut Checkpoint| c.seq += 1,
            |c: &mut Checkpoint| c.hash = "cd".repeat(32),
            |c: &mut Checkpoint| c.time = "2027-01-01T00:00:00Z".into(),
            |c: &mut Checkpoint| c.signature = "00".into(),
        ] {
            let mut c = cp.clone();
            edit(&mut c);
            assert!(c.check(&key.verifying_key()).is_err(), "{c:?}");
        }
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    async fn wait_files(dir: &Path, n: usize) -> bool {
        for _ in 0..200 {
            if files(dir) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_writes_a_checkpoint_each_interval_while_the_chain_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cps = dir.path().join("cps");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::in_memory().expect("store"));
        let draft = || super::super::AuditDraft::new(1, "k", "a", serde_json::json!({"n": 0.1}));
        store.append_audit(vec![draft()]).expect("append");
        let key = crate::keys::generate().expect("key");
        let public = key.verifying_key();
        let task = tokio::spawn(every(
            store.clone(),
            cps.clone(),
            key,
            Duration::from_millis(50),
            None,
        ));
        assert!(wait_files(&cps, 1).await, "no first checkpoint");
        store.append_audit(vec![draft(), draft()]).expect("append");
        assert!(wait_files(&cps, 2).await, "no checkpoint after growth");
        // An unchanged head is not signed again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(files(&cps), 2);
        task.abort();
        let (anchors, faults) = load(&cps, &public).expect("load");
        assert!(faults.is_empty(), "{faults:?}");
        assert_eq!(anchors.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        let report =
            super::super::verify_store(store.as_ref(), anchors, &mut |_| {}).expect("verify");
        assert!(report.ok(), "{report:?}");
    }
}
