//! The tamper-evident audit log.
//!
//! One file past 500 lines: the record, its canonical hashing and the chain
//! walk that verifies it must agree byte for byte, so they are read together.
//!
//! Every request, decision, approval, grant transition, policy load, config
//! load and authentication failure becomes an [`AuditRecord`]. Each record
//! carries `hash = sha256(prev_hash ‖ canonical bytes)`, where the canonical
//! bytes are the record's fields as JSON with sorted keys and the evidence
//! (`data`) spliced in *exactly as stored*: the store keeps the canonical
//! text ([`canonical`]) of the evidence, the hash covers those bytes, and
//! verification recomputes from the stored text, never from a re-parse
//! (a number that does not survive a JSON round trip would otherwise read
//! as tampering). Editing a record breaks its hash; deleting or reordering
//! breaks the next record's `prev_hash` or the sequence; truncating the tail
//! or rewriting and re-hashing it is caught against signed
//! [`checkpoint`]s kept outside the store. [`verify_store`] reports every
//! bad record, not only the first. Records are appended inside the same
//! transaction as the change they evidence, so a change that cannot be
//! evidenced does not happen.
//!
//! One file past 500 lines: the chain's record format, sealing and verification: what is hashed and what is checked must be read together.

pub mod canonical;
pub mod checkpoint;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::store::{Store, StoreError};

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
    /// A policy set was accepted (digest, sequence, signers) or refused.
    pub const POLICY_SET: &str = "policy-set";
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
    /// The evidence itself (`null` in a draft made by
    /// [`AuditDraft::of_evidence`], which carries its text instead).
    pub data: serde_json::Value,
    /// The evidence's canonical text, when written straight from typed
    /// values ([`AuditDraft::of_evidence`]): then the store keeps this text
    /// and `data` is not read. Rendered by whoever makes the draft, so the
    /// one audit writer thread only hashes and stores.
    #[serde(skip)]
    pub text: Option<String>,
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
            text: None,
        }
    }

    /// A draft whose evidence is `evidence` written in canonical form
    /// straight from its typed fields ([`canonical::to_string_of`]),
    /// without a `serde_json::Value` tree: the same stored text and hash as
    /// `AuditDraft::new(…, json!(evidence))`. `None` only if serde_json
    /// could not represent `evidence` either.
    pub fn of_evidence<T: Serialize + ?Sized>(
        at: i64,
        kind: &str,
        actor: &str,
        evidence: &T,
    ) -> Option<Self> {
        let text = canonical::to_string_of(evidence)?;
        let mut d = AuditDraft::new(at, kind, actor, serde_json::Value::Null);
        d.text = Some(text);
        Some(d)
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
    /// The content. `draft.data` is the stored evidence parsed for reading
    /// (`null` if the stored text is not JSON, which only tampering makes);
    /// the hash is over [`AuditRecord::stored_data`].
    #[serde(flatten)]
    pub draft: AuditDraft,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// sha256(prev_hash ‖ canonical bytes), hex.
    pub hash: String,
    /// The `data` column exactly as stored: what the hash covers.
    #[serde(skip)]
    pub stored_data: String,
}

impl AuditRecord {
    /// A record as read from a store: `data` is the stored text, parsed
    /// for reading but kept verbatim for verification.
    pub fn from_stored(
        seq: i64,
        mut draft: AuditDraft,
        data: String,
        prev_hash: String,
        hash: String,
    ) -> AuditRecord {
        draft.data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
        AuditRecord {
            seq,
            draft,
            prev_hash,
            hash,
            stored_data: data,
        }
    }

    /// The hash this record's stored content implies.
    pub fn recomputed_hash(&self) -> String {
        // A record not read from a store (built by hand, or parsed from an
        // export) has no stored text; its evidence's canonical form is what
        // a store would have kept.
        if self.stored_data.is_empty() {
            chain_hash(&self.prev_hash, self.seq, &self.draft)
        } else {
            hash_with_data(&self.prev_hash, self.seq, &self.draft, &self.stored_data)
        }
    }
}

/// The canonical bytes of a record's content: JSON with sorted keys, no
/// whitespace:
/// `{"actor":…,"at":…,"data":…,"grant-id":…,"kind":…,"request-id":…,"seq":…}`.
pub fn canonical_bytes(seq: i64, d: &AuditDraft) -> Vec<u8> {
    canonical_with_data(seq, d, &data_json(d))
}

/// `d.data` as stored: its [`canonical`] form.
pub fn data_json(d: &AuditDraft) -> String {
    match &d.text {
        Some(t) => t.clone(),
        None => canonical::to_string(&d.data),
    }
}

/// [`canonical_bytes`] around `data`, the evidence's text as stored. The
/// other fields are typed columns (integers and strings) whose stored
/// values read back exactly, so they are serialised here, field by field.
fn canonical_with_data(seq: i64, d: &AuditDraft, data: &str) -> Vec<u8> {
    fn opt(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => canonical::write_str(out, s),
            None => out.extend_from_slice(b"null"),
        }
    }
    let mut out = Vec::with_capacity(data.len() + 160);
    out.extend_from_slice(b"{\"actor\":");
    canonical::write_str(&mut out, &d.actor);
    out.extend_from_slice(format!(",\"at\":{},\"data\":", d.at).as_bytes());
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b",\"grant-id\":");
    opt(&mut out, &d.grant_id);
    out.extend_from_slice(b",\"kind\":");
    canonical::write_str(&mut out, &d.kind);
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

/// Seal a draft as record `seq` after `prev_hash`. The record's
/// [`AuditRecord::stored_data`] is the text to store in the `data` column:
/// the hash is over exactly those bytes.
pub fn seal(prev_hash: &str, seq: i64, mut draft: AuditDraft) -> AuditRecord {
    let data = match draft.text.take() {
        Some(t) => t,
        None => data_json(&draft),
    };
    seal_stored(prev_hash, seq, draft, data)
}

/// [`seal`] for a draft whose evidence was already rendered as stored text
/// ([`data_json`]) when it was staged: the hash covers `data` as given, so
/// a record staged by one process and chained by another (the PostgreSQL
/// store's pending table) hashes the same bytes it stores.
pub fn seal_stored(prev_hash: &str, seq: i64, draft: AuditDraft, data: String) -> AuditRecord {
    let hash = hash_with_data(prev_hash, seq, &draft, &data);
    AuditRecord {
        seq,
        draft,
        prev_hash: prev_hash.to_string(),
        hash,
        stored_data: data,
    }
}

/// The record as one line of JSON (`jitgate audit export`), with `data`
/// written as the stored text itself, so the line carries exactly the bytes
/// the hash covers and a verifier outside jitgate can recompute it with a
/// parser that keeps raw text. Stored text that is not JSON (only tampering
/// makes it) is written as `null` with the text under `stored-data`.
/// `at` is the stored Unix ms (what the hash covers); `at-rfc3339` is the
/// same time in the answer format ([`crate::timefmt`]).
pub fn export_line(r: &AuditRecord) -> Vec<u8> {
    fn opt(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => canonical::write_str(out, s),
            None => out.extend_from_slice(b"null"),
        }
    }
    let data = if r.stored_data.is_empty() {
        data_json(&r.draft)
    } else {
        r.stored_data.clone()
    };
    let valid = serde_json::from_str::<serde::de::IgnoredAny>(&data).is_ok();
    let mut out = Vec::with_capacity(data.len() + 300);
    out.extend_from_slice(
        format!(
            "{{\"seq\":{},\"at\":{},\"{}\":\"{}\",\"kind\":",
            r.seq,
            r.draft.at,
            crate::answer::AUDIT_AT_RFC3339,
            crate::timefmt::rfc3339_ms(r.draft.at)
        )
        .as_bytes(),
    );
    canonical::write_str(&mut out, &r.draft.kind);
    out.extend_from_slice(b",\"actor\":");
    canonical::write_str(&mut out, &r.draft.actor);
    out.extend_from_slice(b",\"grant-id\":");
    opt(&mut out, &r.draft.grant_id);
    out.extend_from_slice(b",\"request-id\":");
    opt(&mut out, &r.draft.request_id);
    out.extend_from_slice(b",\"data\":");
    if valid {
        out.extend_from_slice(data.as_bytes());
    } else {
        out.extend_from_slice(b"null,\"stored-data\":");
        canonical::write_str(&mut out, &data);
    }
    out.extend_from_slice(b",\"prev-hash\":");
    canonical::write_str(&mut out, &r.prev_hash);
    out.extend_from_slice(b",\"hash\":");
    canonical::write_str(&mut out, &r.hash);
    out.push(b'}');
    out
}

/// What is wrong with the chain at one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A record's hash differs from the one a signed checkpoint vouches for:
    /// the chain was rewritten (and re-hashed) after the checkpoint.
    #[error(
        "record {seq}: hash differs from signed checkpoint {checkpoint} (the chain was rewritten after it)"
    )]
    Rewritten {
        /// The record.
        seq: i64,
        /// The checkpoint file.
        checkpoint: String,
    },
    /// A signed checkpoint vouches for a record past the end of the chain.
    #[error(
        "record {seq}: missing, but signed checkpoint {checkpoint} vouches for it (the chain was truncated after record {last})"
    )]
    Truncated {
        /// The record the checkpoint vouches for.
        seq: i64,
        /// The last record in the store.
        last: i64,
        /// The checkpoint file.
        checkpoint: String,
    },
    /// A signed checkpoint vouches for a record that is not in the store.
    #[error("record {seq}: missing, but signed checkpoint {checkpoint} vouches for it")]
    Missing {
        /// The record.
        seq: i64,
        /// The checkpoint file.
        checkpoint: String,
    },
    /// A checkpoint file does not parse or its signature does not verify.
    #[error("checkpoint {checkpoint}: {problem}")]
    BadCheckpoint {
        /// The checkpoint file.
        checkpoint: String,
        /// What is wrong.
        problem: String,
    },
}

impl ChainError {
    /// The record concerned (0 for a bad checkpoint file).
    pub fn seq(&self) -> i64 {
        match self {
            ChainError::Edited { seq }
            | ChainError::Broken { seq, .. }
            | ChainError::Rewritten { seq, .. }
            | ChainError::Truncated { seq, .. }
            | ChainError::Missing { seq, .. } => *seq,
            ChainError::BadCheckpoint { .. } => 0,
        }
    }
}

/// Chain heads vouched for by signed checkpoints: seq → (hash, file name).
pub type Anchors = BTreeMap<i64, (String, String)>;

/// Walks records in storage order and checks the chain. Every record is
/// checked against its stored predecessor, so one bad record does not hide
/// the ones after it.
#[derive(Debug)]
pub struct Verifier {
    prev_hash: String,
    prev_seq: i64,
    anchors: Anchors,
    /// Records checked so far.
    pub checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::with_anchors(Anchors::new())
    }
}

impl Verifier {
    /// A verifier that also checks the records `anchors` vouch for.
    pub fn with_anchors(anchors: Anchors) -> Self {
        Verifier {
            prev_hash: GENESIS.to_string(),
            prev_seq: 0,
            anchors,
            checked: 0,
        }
    }

    /// Check the next record; its faults (none when sound), in the order
    /// link, content, anchor.
    pub fn check(&mut self, r: &AuditRecord) -> Vec<ChainError> {
        let mut faults = Vec::new();
        if r.seq != self.prev_seq + 1 || r.prev_hash != self.prev_hash {
            faults.push(ChainError::Broken {
                seq: r.seq,
                after: self.prev_seq,
            });
        }
        if r.recomputed_hash() != r.hash {
            faults.push(ChainError::Edited { seq: r.seq });
        }
        if let Some((hash, file)) = self.anchors.remove(&r.seq)
            && hash != r.hash
        {
            faults.push(ChainError::Rewritten {
                seq: r.seq,
                checkpoint: file,
            });
        }
        self.prev_hash = r.hash.clone();
        self.prev_seq = r.seq;
        self.checked += 1;
        faults
    }

    /// Check the next record; its first fault.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainError> {
        match self.check(r).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// After the last record: every anchor no record answered.
    pub fn finish(&mut self) -> Vec<ChainError> {
        let last = self.prev_seq;
        std::mem::take(&mut self.anchors)
            .into_iter()
            .filter(|(seq, _)| *seq > 0)
            .map(|(seq, (_, checkpoint))| {
                if seq > last {
                    ChainError::Truncated {
                        seq,
                        last,
                        checkpoint,
                    }
                } else {
                    ChainError::Missing { seq, checkpoint }
                }
            })
            .collect()
    }

    /// The last record checked: (seq, hash).
    pub fn head(&self) -> Option<(i64, String)> {
        (self.checked > 0).then(|| (self.prev_seq, self.prev_hash.clone()))
    }
}

/// Verify a whole chain; the first fault.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Result<u64, ChainError> {
    let mut v = Verifier::default();
    for r in records {
        v.push(r)?;
    }
    Ok(v.checked)
}

/// At most this many faults are kept in a [`Report`] (all are counted and
/// all are passed to the caller's callback).
pub const MAX_LISTED: usize = 1000;

/// The outcome of walking a whole stored chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Records checked.
    pub checked: u64,
    /// Faults found, in chain order (at most [`MAX_LISTED`]).
    pub bad: Vec<ChainError>,
    /// All faults found.
    pub bad_count: u64,
    /// The last record: (seq, hash).
    pub head: Option<(i64, String)>,
}

impl Report {
    /// No fault.
    pub fn ok(&self) -> bool {
        self.bad_count == 0
    }
}

/// Walk a store's whole chain page by page, checking every record (and
/// every checkpoint anchor); `on_bad` sees every fault as it is found.
pub fn verify_store(
    store: &dyn Store,
    anchors: Anchors,
    on_bad: &mut dyn FnMut(&ChainError),
) -> Result<Report, StoreError> {
    walk_store(store, anchors, &mut |_, _| {}, on_bad)
}

/// [`verify_store`] that also hands every record, in chain order, to
/// `each` with its faults (empty when sound): a reader that builds
/// something from the chain (`jitgate report`, [`crate::review`]) verifies
/// it on the same walk, with the same checks.
pub fn walk_store(
    store: &dyn Store,
    anchors: Anchors,
    each: &mut dyn FnMut(&AuditRecord, &[ChainError]),
    on_bad: &mut dyn FnMut(&ChainError),
) -> Result<Report, StoreError> {
    let mut v = Verifier::with_anchors(anchors);
    let mut report = Report::default();
    let mut note = |e: ChainError, report: &mut Report| {
        on_bad(&e);
        report.bad_count += 1;
        if report.bad.len() < MAX_LISTED {
            report.bad.push(e);
        }
    };
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            let faults = v.check(r);
            each(r, &faults);
            for e in faults {
                note(e, &mut report);
            }
        }
    }
    for e in v.finish() {
        note(e, &mut report);
    }
    report.checked = v.checked;
    report.head = v.head();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A draft rendered from typed evidence stores the same text and seals
    /// to the same hash as one made from the `json!` tree of that evidence,
    /// so chains written before and after the direct writer verify alike.
    #[test]
    fn typed_evidence_seals_like_its_value_tree() {
        let req: crate::request::Request =
            match serde_json::from_str(include_str!("../../../examples/request.json")) {
                Ok(r) => r,
                Err(e) => panic!("examples/request.json: {e}"),
            };
        #[derive(Serialize)]
        struct Evidence<'a> {
            request: &'a crate::request::Request,
            n: [f64; 4],
            big: u64,
            odd: &'a str,
        }
        let evidence = Evidence {
            request: &req,
            n: [1.5, -0.0, 1e300, f64::NAN],
            big: u64::MAX,
            odd: "nul \u{0} quote \" </script> \u{2028}",
        };
        let typed = AuditDraft::of_evidence(7, kind::DECISION, "pipeline", &evidence)
            .map(|d| d.request("r-1"));
        let tree = serde_json::to_value(&evidence).unwrap_or_default();
        let tree = AuditDraft::new(7, kind::DECISION, "pipeline", tree).request("r-1");
        let Some(typed) = typed else {
            panic!("typed evidence not rendered");
        };
        let (a, b) = (seal(GENESIS, 1, typed), seal(GENESIS, 1, tree));
        assert_eq!(a.stored_data, b.stored_data);
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.recomputed_hash(), a.hash);
    }

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
                let r = seal("p", seq, d.clone());
                assert_eq!(r.stored_data, serde_json::to_string(&d.data).expect("json"));
                assert_eq!(r.hash, chain_hash("p", seq, d));
            }
        }
    }

    /// What a store hands back: the record rebuilt from its columns.
    fn stored(r: &AuditRecord) -> AuditRecord {
        AuditRecord::from_stored(
            r.seq,
            AuditDraft {
                data: serde_json::Value::Null,
                ..r.draft.clone()
            },
            r.stored_data.clone(),
            r.prev_hash.clone(),
            r.hash.clone(),
        )
    }

    /// Issue 9 item 2: a refused body with a float that does not survive a
    /// JSON round trip was audited, and every verify after reported the
    /// record as edited.
    #[test]
    fn invalid_body_with_non_round_tripping_float_does_not_read_as_tampering() {
        let body: serde_json::Value =
            serde_json::from_str(r#"{"id":"x","junk":0.95309792552509531}"#).expect("json");
        let d = AuditDraft::new(1, kind::REQUEST, "alice", serde_json::json!({"body": body}));
        let sealed = seal(GENESIS, 1, d);
        let back = stored(&sealed);
        // The premise: re-serialising the re-parsed evidence gives other
        // bytes, so a verifier that recomputed from a re-parse would fail.
        assert_ne!(
            chain_hash(&back.prev_hash, back.seq, &back.draft),
            sealed.hash,
            "serde_json now round-trips this float; pick another one"
        );
        assert_eq!(verify([&back]), Ok(1));
    }

    #[test]
    fn every_bad_record_is_reported_not_only_the_first() {
        let mut c: Vec<AuditRecord> = chain(8).iter().map(stored).collect();
        c[1].draft.actor = "mallory".into(); // 2 edited
        c[4].stored_data = "{\"i\":5,\"z\":{}}".into(); // 5 edited
        c.remove(6); // 7 deleted: 8 does not follow 6
        let mut v = Verifier::default();
        let faults: Vec<_> = c.iter().flat_map(|r| v.check(r)).collect();
        assert_eq!(
            faults,
            vec![
                ChainError::Edited { seq: 2 },
                ChainError::Edited { seq: 5 },
                ChainError::Broken { seq: 8, after: 6 },
            ]
        );
        // Stored text that is not JSON at all is a fault, not a read error.
        let mut c: Vec<AuditRecord> = chain(3).iter().map(stored).collect();
        c[2] = AuditRecord::from_stored(
            3,
            c[2].draft.clone(),
            "{not json".into(),
            c[2].prev_hash.clone(),
            c[2].hash.clone(),
        );
        assert_eq!(c[2].draft.data, serde_json::Value::Null);
        assert_eq!(verify(&c), Err(ChainError::Edited { seq: 3 }));
    }

    #[test]
    fn anchors_catch_truncation_and_a_rehashed_rewrite() {
        let c = chain(6);
        let anchors = || Anchors::from([(4, (c[3].hash.clone(), "cp4".to_string()))]);
        let run = |records: &[AuditRecord]| {
            let mut v = Verifier::with_anchors(anchors());
            let mut faults: Vec<_> = records.iter().flat_map(|r| v.check(r)).collect();
            faults.extend(v.finish());
            faults
        };
        assert_eq!(run(&c), vec![]);
        assert_eq!(
            run(&c[..3]),
            vec![ChainError::Truncated {
                seq: 4,
                last: 3,
                checkpoint: "cp4".into()
            }]
        );
        // Rewrite record 2 and re-hash everything after it: internally
        // consistent, but record 4 no longer has the hash the checkpoint holds.
        let mut forged: Vec<AuditRecord> = c[..1].to_vec();
        for r in &c[1..] {
            let mut d = r.draft.clone();
            if r.seq == 2 {
                d.actor = "mallory".into();
            }
            let prev = forged.last().map(|p| p.hash.clone()).unwrap_or_default();
            forged.push(seal(&prev, r.seq, d));
        }
        assert_eq!(verify(&forged), Ok(6));
        assert_eq!(
            run(&forged),
            vec![ChainError::Rewritten {
                seq: 4,
                checkpoint: "cp4".into()
            }]
        );
    }

    #[test]
    fn export_line_carries_the_stored_bytes_and_reads_like_the_record() {
        let body: serde_json::Value =
            serde_json::from_str(r#"{"id":"x","junk":0.95309792552509531}"#).expect("json");
        let sealed = seal(
            GENESIS,
            1,
            AuditDraft::new(7, kind::REQUEST, "a\nb", body).request("x"),
        );
        let r = stored(&sealed);
        let line = String::from_utf8(export_line(&r)).expect("utf8");
        assert!(
            line.contains(&format!("\"data\":{},", r.stored_data)),
            "{line}"
        );
        let as_answer = crate::answer::audit_record(&r);
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("json line");
        assert_eq!(parsed, as_answer);
        assert_eq!(parsed["at"], 7);
        assert_eq!(parsed["at-rfc3339"], "1970-01-01T00:00:00.007Z");
        let mut bad = r.clone();
        bad.stored_data = "{oops".into();
        let parsed: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&export_line(&bad))).expect("json line");
        assert_eq!(parsed["stored-data"], "{oops");
    }

    /// Chains written before hashes were taken over the stored text (the
    /// hash over `json!`-built sorted JSON, the column holding
    /// `data.to_string()`) verify unchanged, including the record with a
    /// non-round-tripping float that the old verify called edited. (Also
    /// checked by hand on a SQLite store written by the previous binary.)
    #[test]
    fn chains_written_by_the_old_code_still_verify() {
        let bodies = [
            r#"{"id":"x","junk":0.95309792552509531}"#,
            r#"{"id":"y","a":{"z":1,"b":[1.5,"é\u0001",1e300]}}"#,
        ];
        let mut prev = GENESIS.to_string();
        let mut old = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let seq = i as i64 + 1;
            let data: serde_json::Value = serde_json::from_str(b).expect("json");
            let d = AuditDraft::new(
                seq,
                kind::REQUEST,
                "alice",
                serde_json::json!({"body": data}),
            )
            .request("r");
            let v = serde_json::json!({
                "seq": seq, "at": d.at, "kind": d.kind, "actor": d.actor,
                "grant-id": d.grant_id, "request-id": d.request_id, "data": d.data,
            });
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(serde_json::to_vec(&v).expect("json"));
            let hash = hex::encode(h.finalize());
            let stored_text = d.data.to_string();
            old.push(AuditRecord::from_stored(
                seq,
                d,
                stored_text,
                prev.clone(),
                hash.clone(),
            ));
            prev = hash;
        }
        assert_eq!(verify(&old), Ok(2));
    }
}
