//! The tamper-evident audit log.
//!
//! Every request, decision, approval, grant transition, policy load, config
//! load and authentication failure becomes an [`AuditRecord`]. Each record
//! carries `hash = sha256(prev_hash ‖ canonical bytes)`, where the canonical
//! bytes are the record's fields as JSON with sorted keys. Editing a record
//! breaks its hash; deleting or reordering breaks the next record's
//! `prev_hash` or the sequence; [`verify`] names the first bad record.
//! Records are appended inside the same transaction as the change they
//! evidence, so a change that cannot be evidenced does not happen.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
pub mod kind {
    /// An access request and its decision (also invalid and denied ones).
    pub const REQUEST: &str = "request";
    /// A dry-run decision.
    pub const DECISION: &str = "decision";
    /// An approval given.
    pub const APPROVAL: &str = "approval";
    /// A grant changed state.
    pub const TRANSITION: &str = "transition";
    /// A policy was loaded.
    pub const POLICY_LOAD: &str = "policy-load";
    /// A configuration was loaded.
    pub const CONFIG_LOAD: &str = "config-load";
    /// A bearer token was missing, unknown, or lacked the role.
    pub const AUTH_FAILURE: &str = "auth-failure";
    /// A ticket event arrived.
    pub const TICKET_EVENT: &str = "ticket-event";
    /// A break-glass review was opened or closed.
    pub const REVIEW: &str = "review";
}

/// A record not yet appended (the store assigns seq and hashes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditDraft {
    /// Unix milliseconds.
    pub at: i64,
    /// See [`kind`].
    pub kind: String,
    /// The principal (or `scheduler`, `system`).
    pub actor: String,
    /// The grant concerned.
    pub grant_id: Option<String>,
    /// The client request id concerned.
    pub request_id: Option<String>,
    /// The evidence itself.
    pub data: serde_json::Value,
}

impl AuditDraft {
    /// A draft at `at` by `actor`.
    pub fn new(at: i64, kind: &str, actor: &str, data: serde_json::Value) -> Self {
        AuditDraft {
            at,
            kind: kind.to_string(),
            actor: actor.to_string(),
            grant_id: None,
            request_id: None,
            data,
        }
    }

    /// About this grant.
    pub fn grant(mut self, id: &str) -> Self {
        self.grant_id = Some(id.to_string());
        self
    }

    /// About this request.
    pub fn request(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_string());
        self
    }
}

/// An appended record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// The content.
    #[serde(flatten)]
    pub draft: AuditDraft,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// sha256(prev_hash ‖ canonical bytes), hex.
    pub hash: String,
}

/// The canonical bytes of a record's content: JSON with sorted keys
/// (serde_json's default map is ordered), no whitespace:
/// `{"actor":…,"at":…,"data":…,"grant-id":…,"kind":…,"request-id":…,"seq":…}`.
pub fn canonical_bytes(seq: i64, d: &AuditDraft) -> Vec<u8> {
    canonical_with_data(seq, d, &data_json(d))
}

/// `d.data` as stored: compact JSON, keys sorted at every depth (a
/// `serde_json::Value` map is ordered).
pub fn data_json(d: &AuditDraft) -> String {
    d.data.to_string()
}

/// [`canonical_bytes`] around `data`, the already serialised [`data_json`],
/// so an appender serialises a record's evidence once for both its hash and
/// its stored column. Written field by field rather than through a
/// `json!` value, which deep-copied the evidence on every append.
fn canonical_with_data(seq: i64, d: &AuditDraft, data: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        // Serialising a &str cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    fn opt(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => string(out, s),
            None => out.extend_from_slice(b"null"),
        }
    }
    let mut out = Vec::with_capacity(data.len() + 160);
    out.extend_from_slice(b"{\"actor\":");
    string(&mut out, &d.actor);
    out.extend_from_slice(format!(",\"at\":{},\"data\":", d.at).as_bytes());
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b",\"grant-id\":");
    opt(&mut out, &d.grant_id);
    out.extend_from_slice(b",\"kind\":");
    string(&mut out, &d.kind);
    out.extend_from_slice(b",\"request-id\":");
    opt(&mut out, &d.request_id);
    out.extend_from_slice(format!(",\"seq\":{seq}}}").as_bytes());
    out
}

/// The hash of a record with content `d` at `seq` after `prev_hash`.
pub fn chain_hash(prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    hash_with_data(prev_hash, seq, d, &data_json(d))
}

fn hash_with_data(prev_hash: &str, seq: i64, d: &AuditDraft, data: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical_with_data(seq, d, data));
    hex::encode(h.finalize())
}

/// Seal a draft as record `seq` after `prev_hash`.
pub fn seal(prev_hash: &str, seq: i64, draft: AuditDraft) -> AuditRecord {
    seal_for_storage(prev_hash, seq, draft).0
}

/// [`seal`], also returning the record's [`data_json`] for the store's
/// `data` column (serialised once for both).
pub fn seal_for_storage(prev_hash: &str, seq: i64, draft: AuditDraft) -> (AuditRecord, String) {
    let data = data_json(&draft);
    let hash = hash_with_data(prev_hash, seq, &draft, &data);
    let record = AuditRecord {
        seq,
        draft,
        prev_hash: prev_hash.to_string(),
        hash,
    };
    (record, data)
}

/// Why the chain is broken, at the first bad record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A record's content does not match its hash (edited).
    #[error("record {seq}: content does not match its hash (edited)")]
    Edited {
        /// The record.
        seq: i64,
    },
    /// A record does not follow its predecessor (deleted or reordered).
    #[error(
        "record {seq}: does not follow record {after} (a record was deleted, inserted or reordered)"
    )]
    Broken {
        /// The record.
        seq: i64,
        /// Its predecessor in storage order.
        after: i64,
    },
}

/// Walks records in storage order and checks the chain.
#[derive(Debug)]
pub struct Verifier {
    prev_hash: String,
    prev_seq: i64,
    /// Records checked so far.
    pub checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev_hash: GENESIS.to_string(),
            prev_seq: 0,
            checked: 0,
        }
    }
}

impl Verifier {
    /// Check the next record.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainError> {
        if r.seq != self.prev_seq + 1 || r.prev_hash != self.prev_hash {
            return Err(ChainError::Broken {
                seq: r.seq,
                after: self.prev_seq,
            });
        }
        if chain_hash(&r.prev_hash, r.seq, &r.draft) != r.hash {
            return Err(ChainError::Edited { seq: r.seq });
        }
        self.prev_hash = r.hash.clone();
        self.prev_seq = r.seq;
        self.checked += 1;
        Ok(())
    }
}

/// Verify a whole chain.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Result<u64, ChainError> {
    let mut v = Verifier::default();
    for r in records {
        v.push(r)?;
    }
    Ok(v.checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out
                .last()
                .map(|r| r.hash.clone())
                .unwrap_or_else(|| GENESIS.to_string());
            let d = AuditDraft::new(
                1000 + i,
                kind::REQUEST,
                "alice",
                serde_json::json!({"i": i, "z": {"b": 1, "a": 2}}),
            );
            out.push(seal(&prev, i, d));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn edit_is_named() {
        let mut c = chain(5);
        c[2].draft.actor = "mallory".into();
        assert_eq!(verify(&c), Err(ChainError::Edited { seq: 3 }));
    }

    #[test]
    fn deletion_and_reordering_are_named() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Err(ChainError::Broken { seq: 3, after: 1 }));
        let mut c = chain(5);
        c.swap(3, 4);
        assert_eq!(verify(&c), Err(ChainError::Broken { seq: 5, after: 3 }));
        // Truncating the tail is only detectable against an external anchor;
        // a truncated chain is internally consistent.
        let mut c = chain(5);
        c.truncate(3);
        assert_eq!(verify(&c), Ok(3));
    }

    #[test]
    fn canonical_bytes_sort_nested_keys() {
        let d = AuditDraft::new(
            1,
            "k",
            "a",
            serde_json::json!({"b": 1, "a": {"d": 1, "c": 2}}),
        );
        let s = String::from_utf8(canonical_bytes(1, &d)).unwrap_or_default();
        assert!(s.contains(r#"{"a":{"c":2,"d":1},"b":1}"#), "{s}");
    }

    /// The field-by-field writer must give exactly the bytes of the
    /// `json!`-built form it replaced, or every stored chain would stop
    /// verifying.
    #[test]
    fn canonical_bytes_equal_the_sorted_value_form() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \u{0} é ✓ 😀 \u{7f}";
        let drafts = [
            AuditDraft::new(0, "k", "a", serde_json::json!(null)),
            AuditDraft::new(
                -5,
                odd,
                odd,
                serde_json::json!({"z": [1, 2.5, odd], "a": true}),
            )
            .grant(odd)
            .request("r-1"),
            AuditDraft::new(i64::MAX, kind::DECISION, "", serde_json::json!("x")).grant("g"),
        ];
        for d in &drafts {
            for seq in [1, 42, i64::MAX] {
                let v = serde_json::json!({
                    "seq": seq,
                    "at": d.at,
                    "kind": d.kind,
                    "actor": d.actor,
                    "grant-id": d.grant_id,
                    "request-id": d.request_id,
                    "data": d.data,
                });
                let want = serde_json::to_vec(&v).expect("json");
                assert_eq!(
                    String::from_utf8_lossy(&canonical_bytes(seq, d)),
                    String::from_utf8_lossy(&want)
                );
                let (r, data) = seal_for_storage("p", seq, d.clone());
                assert_eq!(data, serde_json::to_string(&d.data).expect("json"));
                assert_eq!(r.hash, chain_hash("p", seq, d));
            }
        }
    }
}
