//! Replay: re-decide recorded traffic against a candidate policy set
//! before shipping it (`jitgate replay`).
//!
//! One file past 500 lines: the walk, the per-record classification and the
//! report's tallies share one record type and one pass; the comparison rules
//! (`compare.rs`) and the rendering (`render.rs`) are apart.
//!
//! Every `request` and `decision` (dry run) audit record holds the request
//! exactly as it was decided: the server's `now`, the subject's roles and
//! groups as its credential set them, the ticket's facts as the registry
//! held them. [`replay`] walks the chain, decides each such record in the
//! window again with the candidate engine, and compares the answer with the
//! recorded one ([`compare::compare`]): the transition matrix, every
//! change (widening ones first: more access than was given), and the same
//! changes by task and by policy.
//!
//! What cannot be replayed is counted and said why: a body refused before
//! any policy ran (not a request at all), a request invalid whatever the
//! set (past a size bound), an invalid request recorded only as an excerpt
//! (records written before whole ones were kept), a record that does not
//! parse, or one whose content fails the chain's hash (edited). The chain
//! is verified on the way, so an edited record can never feed a replay
//! unnoticed.

pub mod compare;
mod render;

pub use compare::{Answer, Aspect, PolicyPart, Verdict};
pub use render::text;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::audit::{self, AuditRecord, ChainError};
use crate::decision::{ApprovalRequirement, Decision, Outcome, TraceVerdict};
use crate::engine::Engine;
use crate::request::{Request, RequestError, format_rfc3339};
use crate::store::{Store, StoreError};

/// What to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Records at or after this time (Unix ms); `None`: from the start.
    pub since: Option<i64>,
    /// Records before this time (Unix ms); `None`: to the end.
    pub until: Option<i64>,
    /// Decision threads (0: one per CPU).
    pub threads: usize,
}

/// Why a replay could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `since` is not before `until`.
    #[error("the window is empty: --since must be before --until")]
    EmptyWindow,
}

/// Records read from the store per page.
const PAGE: usize = 2000;

/// Chain faults listed in a report (all are counted).
const MAX_FAULTS_LISTED: usize = 100;

/// The window replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Window {
    /// `--since`, RFC 3339 (`None`: from the first record).
    pub since: Option<String>,
    /// `--until`, RFC 3339 (`None`: to the last record).
    pub until: Option<String>,
    /// Time of the first record in the window.
    pub first: Option<String>,
    /// Time of the last record in the window.
    pub last: Option<String>,
}

/// One decision the candidate makes differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    /// The audit record.
    pub seq: i64,
    /// When it was recorded, RFC 3339.
    pub at: String,
    /// `request` (a grant was decided) or `decision` (a dry run).
    pub kind: String,
    /// Who sent it.
    pub actor: String,
    /// The client's request id.
    pub request_id: String,
    /// The grant it created (requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Whom the access was for.
    pub subject: String,
    /// The ticket it named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The task.
    pub task: String,
    /// The time it was decided at (and is decided at again), RFC 3339.
    pub decided_at: String,
    /// Whether any aspect gives more access than was given.
    pub widening: bool,
    /// How the decision changed.
    pub aspects: Vec<Aspect>,
    /// The recorded decision.
    pub recorded: Verdict,
    /// The candidate's decision.
    pub candidate: Verdict,
    /// Policies whose verdict or offered TTL differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyChange>,
}

/// One policy's part in a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyChange {
    /// The policy.
    pub name: String,
    /// Its recorded verdict (`None`: it did not take part).
    pub recorded: Option<TraceVerdict>,
    /// Its verdict in the candidate (`None`: it does not take part).
    pub candidate: Option<TraceVerdict>,
    /// The TTL it offered then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_ttl: Option<u32>,
    /// The TTL it offers now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_ttl: Option<u32>,
}

/// A record that could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Skipped {
    /// The audit record.
    pub seq: i64,
    /// When it was recorded, RFC 3339.
    pub at: String,
    /// `request` or `decision`.
    pub kind: String,
    /// The request id, when the record names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why not, by kind (see [`Report::not_replayed_by_reason`]).
    pub reason: String,
    /// Why not, in words.
    pub detail: String,
}

/// Changes within one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TaskSummary {
    /// Records of this task replayed.
    pub replayed: u64,
    /// Decisions that changed.
    pub changed: u64,
    /// Changes that widen access.
    pub widening: u64,
    /// Outcome transitions (`old → new`) that changed, counted.
    pub transitions: BTreeMap<String, u64>,
    /// Grants that would last longer.
    pub ttl_longer: u64,
    /// Grants that would last less.
    pub ttl_shorter: u64,
    /// Approval requirements that changed.
    pub approvals_changed: u64,
    /// … of which need fewer approvers or looser groups.
    pub approvals_loosened: u64,
}

/// What one policy answers differently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicySummary {
    /// Replayed records this policy took part in (then or now).
    pub replayed: u64,
    /// Changed decisions in which this policy's answer differs.
    pub changed: u64,
    /// … of which widen access.
    pub widening: u64,
    /// Its verdict transitions (`old → new`, `absent` when it took no
    /// part), over every replayed record, counted.
    pub verdicts: BTreeMap<String, u64>,
    /// Records where it offers a longer TTL.
    pub ttl_longer: u64,
    /// Records where it offers a shorter TTL.
    pub ttl_shorter: u64,
    /// Records where its approval requirement changed.
    pub approvals_changed: u64,
}

/// The audit chain as walked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChainSummary {
    /// Records checked (the whole chain).
    pub checked: u64,
    /// Faults found.
    pub fault_count: u64,
    /// The first faults, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

/// Everything a replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The window.
    pub window: Window,
    /// Request and dry-run records in the window.
    pub records: u64,
    /// Of those, decided again.
    pub replayed: u64,
    /// Of those, not decided again ([`Report::not_replayed_list`] says why).
    pub not_replayed: u64,
    /// Decisions the candidate makes differently.
    pub changed: u64,
    /// … of which give more access.
    pub widening: u64,
    /// Digests of the sets that made the replayed decisions, with counts
    /// (`(not recorded)`: decisions stored before sets had digests;
    /// `(none)`: invalid requests, which no set decided).
    pub baseline_sets: BTreeMap<String, u64>,
    /// Digest of the candidate set.
    pub candidate_set: String,
    /// Recorded answer → candidate answer → records.
    pub matrix: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every change: widening ones first, then the rest, each in chain
    /// order.
    pub changes: Vec<Change>,
    /// Changes by task.
    pub by_task: BTreeMap<String, TaskSummary>,
    /// Changes by policy.
    pub by_policy: BTreeMap<String, PolicySummary>,
    /// Records not replayed, counted by reason.
    pub not_replayed_by_reason: BTreeMap<String, u64>,
    /// Records not replayed, each with why.
    #[serde(rename = "not-replayed-records")]
    pub not_replayed_list: Vec<Skipped>,
    /// The chain as walked.
    pub chain: ChainSummary,
    /// Wall time of the replay, milliseconds.
    pub elapsed_ms: u64,
    /// Records decided again per second.
    pub records_per_second: f64,
}

impl Report {
    fn new(candidate_set: String) -> Report {
        let row = || -> BTreeMap<String, u64> {
            Answer::ALL.iter().map(|a| (a.as_str().into(), 0)).collect()
        };
        Report {
            candidate_set,
            matrix: Answer::ALL
                .iter()
                .map(|a| (a.as_str().into(), row()))
                .collect(),
            ..Report::default()
        }
    }

    /// Records recorded as `old` that the candidate answers `new`.
    pub fn cell(&self, old: Answer, new: Answer) -> u64 {
        self.matrix
            .get(old.as_str())
            .and_then(|r| r.get(new.as_str()))
            .copied()
            .unwrap_or(0)
    }
}

/// What a record holds to replay, or why it holds none.
enum Prepared {
    Replay(Box<(Request, Verdict)>),
    Skip(&'static str, String),
}

/// The decision as recorded, read leniently: only what replay compares,
/// every field defaulted that older records may lack.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Recorded {
    outcome: Outcome,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    approvals: Vec<ApprovalRequirement>,
    #[serde(default)]
    revoke_on_ticket_close: bool,
    #[serde(default)]
    policies: Vec<PolicyPart>,
    #[serde(default)]
    policy_set: String,
}

/// Reasons a record is not replayed (the keys of
/// [`Report::not_replayed_by_reason`]).
pub mod reason {
    /// The body was refused before it was a request (not JSON, a wrong
    /// field): no policy ran, and no set can change that.
    pub const NOT_A_REQUEST: &str = "not-a-request";
    /// The request breaks a size or character bound, which no set changes.
    pub const INVALID_ANY_SET: &str = "invalid-whatever-the-set";
    /// Only an excerpt of an invalid request was kept (records written
    /// before whole ones were).
    pub const EXCERPT_ONLY: &str = "excerpt-only";
    /// The record's request or decision does not read.
    pub const UNREADABLE: &str = "unreadable";
    /// The record's content does not match its hash.
    pub const EDITED: &str = "edited";
    /// The candidate had no instance free to decide it.
    pub const OVERLOADED: &str = "overloaded";
}

fn field_message(v: &Value) -> (String, String) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    (s("field"), s("message"))
}

/// Read what a request or dry-run record holds to decide again.
fn prepare(r: &AuditRecord) -> Prepared {
    let data = &r.draft.data;
    if let Some(invalid) = data.get("invalid") {
        let (field, message) = field_message(invalid);
        if data.get("body").is_some() {
            return Prepared::Skip(
                reason::NOT_A_REQUEST,
                format!(
                    "refused before any policy ran ({field}: {message}); no policy set changes that"
                ),
            );
        }
        return match data.get("decided-request") {
            Some(whole) => match crate::request::from_value(whole.clone()) {
                Ok(req) => Prepared::Replay(Box::new((
                    req,
                    Verdict::invalid(&field, &message, String::new()),
                ))),
                Err(e) => Prepared::Skip(
                    reason::UNREADABLE,
                    format!("the recorded request does not read: {e}"),
                ),
            },
            None if field == "task"
                && message.contains("is not a task any loaded policy declares") =>
            {
                Prepared::Skip(
                    reason::EXCERPT_ONLY,
                    format!(
                        "invalid for the set that ran ({field}: {message}), and only an excerpt of the request was recorded (written before whole invalid requests were kept)"
                    ),
                )
            }
            None => Prepared::Skip(
                reason::INVALID_ANY_SET,
                format!("invalid whatever the policy set ({field}: {message})"),
            ),
        };
    }
    let req = match data
        .get("request")
        .map(|v| crate::request::from_value(v.clone()))
    {
        Some(Ok(req)) => req,
        Some(Err(e)) => {
            return Prepared::Skip(
                reason::UNREADABLE,
                format!("the recorded request does not read: {e}"),
            );
        }
        None => {
            return Prepared::Skip(reason::UNREADABLE, "the record holds no request".into());
        }
    };
    let recorded = match data
        .get("decision")
        .map(|v| serde_json::from_value::<Recorded>(v.clone()))
    {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            return Prepared::Skip(
                reason::UNREADABLE,
                format!("the recorded decision does not read: {e}"),
            );
        }
        None => {
            return Prepared::Skip(reason::UNREADABLE, "the record holds no decision".into());
        }
    };
    let verdict = Verdict::decided(
        recorded.outcome,
        recorded.ttl,
        &recorded.approvals,
        recorded.revoke_on_ticket_close,
        recorded.policies,
        recorded.policy_set,
    );
    Prepared::Replay(Box::new((req, verdict)))
}

/// A host overload (no instance slot) says nothing about the request.
fn overloaded(d: &Result<Decision, RequestError>) -> bool {
    d.as_ref().is_ok_and(|d| {
        d.policies
            .iter()
            .any(|p| p.failure.as_ref().is_some_and(|f| f.is_overload()))
    })
}

/// Decide every request on `threads` threads, answers in order.
fn decide_all(
    engine: &Engine,
    reqs: &[&Request],
    threads: usize,
) -> Vec<Result<Decision, RequestError>> {
    let decide = |req: &Request| {
        let d = engine.decide(req);
        // Retried once: a slot frees as soon as another decision ends.
        if overloaded(&d) {
            engine.decide(req)
        } else {
            d
        }
    };
    if threads <= 1 || reqs.len() < 2 {
        return reqs.iter().map(|r| decide(r)).collect();
    }
    let per = reqs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = reqs
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(|r| decide(r)).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| {
                // A panicking decision is a bug in the host; it surfaces here
                // rather than as a silent gap in the report.
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    })
}

fn when(ms: i64) -> String {
    format_rfc3339((ms / 1000).max(0) as u64)
}

/// Replay the request and dry-run records of `store` in the window against
/// `candidate`.
pub fn replay(
    store: &dyn Store,
    candidate: &Engine,
    opts: &Options,
) -> Result<Report, ReplayError> {
    if let (Some(s), Some(u)) = (opts.since, opts.until)
        && s >= u
    {
        return Err(ReplayError::EmptyWindow);
    }
    let started = Instant::now();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let mut report = Report::new(candidate.policy_set().digest.clone());
    report.window.since = opts.since.map(when);
    report.window.until = opts.until.map(when);
    let mut verifier = audit::Verifier::default();
    let mut widening = Vec::new();
    let mut other = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let mut jobs: Vec<(&AuditRecord, Request, Verdict)> = Vec::new();
        for r in &page {
            let faults = verifier.check(r);
            let edited = faults
                .iter()
                .any(|f| matches!(f, ChainError::Edited { .. }));
            for f in faults {
                note_fault(&mut report.chain, &f);
            }
            let kind = r.draft.kind.as_str();
            if kind != audit::kind::REQUEST && kind != audit::kind::DECISION {
                continue;
            }
            if opts.since.is_some_and(|s| r.draft.at < s)
                || opts.until.is_some_and(|u| r.draft.at >= u)
            {
                continue;
            }
            report.records += 1;
            let at = when(r.draft.at);
            report.window.first.get_or_insert_with(|| at.clone());
            report.window.last = Some(at);
            let prepared = if edited {
                Prepared::Skip(
                    reason::EDITED,
                    "the record's content does not match its hash (edited); not replayed".into(),
                )
            } else {
                prepare(r)
            };
            match prepared {
                Prepared::Replay(job) => {
                    let (req, verdict) = *job;
                    jobs.push((r, req, verdict));
                }
                Prepared::Skip(why, detail) => skip(&mut report, r, why, detail),
            }
        }
        let reqs: Vec<&Request> = jobs.iter().map(|(_, req, _)| req).collect();
        let answers = decide_all(candidate, &reqs, threads);
        for ((r, req, old), answer) in jobs.iter().zip(answers) {
            if overloaded(&answer) {
                skip(
                    &mut report,
                    r,
                    reason::OVERLOADED,
                    "the candidate had no policy instance free to decide it".into(),
                );
                continue;
            }
            let new = Verdict::of(&answer);
            if let Some(change) = tally(&mut report, r, req, old, new) {
                if change.widening {
                    widening.push(change);
                } else {
                    other.push(change);
                }
            }
        }
    }
    report.chain.checked = verifier.checked;
    report.changed = (widening.len() + other.len()) as u64;
    report.widening = widening.len() as u64;
    report.changes = widening;
    report.changes.append(&mut other);
    let secs = started.elapsed().as_secs_f64();
    report.elapsed_ms = (secs * 1000.0) as u64;
    report.records_per_second = if secs > 0.0 {
        report.replayed as f64 / secs
    } else {
        0.0
    };
    Ok(report)
}

fn note_fault(chain: &mut ChainSummary, f: &ChainError) {
    chain.fault_count += 1;
    if chain.faults.len() < MAX_FAULTS_LISTED {
        chain.faults.push(f.to_string());
    }
}

fn skip(report: &mut Report, r: &AuditRecord, why: &'static str, detail: String) {
    report.not_replayed += 1;
    *report.not_replayed_by_reason.entry(why.into()).or_default() += 1;
    report.not_replayed_list.push(Skipped {
        seq: r.seq,
        at: when(r.draft.at),
        kind: r.draft.kind.clone(),
        request_id: r.draft.request_id.clone(),
        reason: why.into(),
        detail,
    });
}

/// Count one replayed record; its change, if the decision differs.
fn tally(
    report: &mut Report,
    r: &AuditRecord,
    req: &Request,
    old: &Verdict,
    new: Verdict,
) -> Option<Change> {
    report.replayed += 1;
    let baseline = match (&old.outcome, old.policy_set.as_str()) {
        (Answer::Invalid, _) => "(none)",
        (_, "") => "(not recorded)",
        (_, d) => d,
    };
    *report.baseline_sets.entry(baseline.into()).or_default() += 1;
    if let Some(n) = report
        .matrix
        .get_mut(old.outcome.as_str())
        .and_then(|row| row.get_mut(new.outcome.as_str()))
    {
        *n += 1;
    }
    let aspects = compare::compare(old, &new);
    let task = report.by_task.entry(req.task.clone()).or_default();
    task.replayed += 1;
    // Each policy that took part, then or now, in the order it ran.
    let mut names: Vec<&str> = old.policies.iter().map(|p| p.name.as_str()).collect();
    for p in &new.policies {
        if !names.contains(&p.name.as_str()) {
            names.push(&p.name);
        }
    }
    let approvals_of = |v: &Verdict, name: &str| -> Vec<ApprovalRequirement> {
        v.approvals
            .iter()
            .filter(|a| a.policy == name)
            .cloned()
            .collect()
    };
    let widens = aspects.iter().any(|a| a.widens);
    let mut policies = Vec::new();
    for name in names {
        let (was, now) = (old.policy(name), new.policy(name));
        let summary = report.by_policy.entry(name.to_string()).or_default();
        summary.replayed += 1;
        let (vw, vn) = (was.map(|p| p.verdict), now.map(|p| p.verdict));
        let (tw, tn) = (was.and_then(|p| p.ttl), now.and_then(|p| p.ttl));
        let approvals_differ = approvals_of(old, name) != approvals_of(&new, name);
        if vw != vn {
            let label = |v: Option<TraceVerdict>| v.map_or("absent", TraceVerdict::as_str);
            *summary
                .verdicts
                .entry(format!("{} → {}", label(vw), label(vn)))
                .or_default() += 1;
        }
        if let (Some(a), Some(b)) = (tw, tn) {
            if b > a {
                summary.ttl_longer += 1;
            } else if b < a {
                summary.ttl_shorter += 1;
            }
        }
        if approvals_differ {
            summary.approvals_changed += 1;
        }
        if !aspects.is_empty() && (vw != vn || tw != tn || approvals_differ) {
            summary.changed += 1;
            if widens {
                summary.widening += 1;
            }
            policies.push(PolicyChange {
                name: name.to_string(),
                recorded: vw,
                candidate: vn,
                recorded_ttl: tw,
                candidate_ttl: tn,
            });
        }
    }
    if aspects.is_empty() {
        return None;
    }
    task.changed += 1;
    if widens {
        task.widening += 1;
    }
    for a in &aspects {
        match a.what.as_str() {
            "outcome" => *task.transitions.entry(a.change.clone()).or_default() += 1,
            "ttl" if a.widens => task.ttl_longer += 1,
            "ttl" => task.ttl_shorter += 1,
            "approvals" => {
                task.approvals_changed += 1;
                if a.widens {
                    task.approvals_loosened += 1;
                }
            }
            _ => {}
        }
    }
    Some(Change {
        seq: r.seq,
        at: when(r.draft.at),
        kind: r.draft.kind.clone(),
        actor: r.draft.actor.clone(),
        request_id: req.id.clone(),
        grant_id: r.draft.grant_id.clone(),
        subject: req.subject.id.clone(),
        ticket: req.ticket.as_ref().map(|t| t.id.clone()),
        task: req.task.clone(),
        decided_at: format_rfc3339(req.now),
        widening: widens,
        aspects,
        recorded: old.clone(),
        candidate: new,
        policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(data: Value) -> AuditRecord {
        audit::seal(
            audit::GENESIS,
            1,
            audit::AuditDraft::new(1_000, audit::kind::DECISION, "pipe", data),
        )
    }

    fn request() -> Value {
        json!({
            "id": "r1", "subject": {"id": "alice", "kind": "human"}, "task": "t",
            "resource": "r", "entitlement": "e", "justification": "because of reasons",
            "requested-ttl": 60, "now": 1_795_600_800
        })
    }

    fn skipped(data: Value) -> (&'static str, String) {
        match prepare(&record(data)) {
            Prepared::Skip(why, detail) => (why, detail),
            Prepared::Replay(_) => panic!("replayed"),
        }
    }

    #[test]
    fn a_decided_record_replays_with_its_recorded_request_and_answer() {
        let data = json!({"request": request(), "decision": {
            "outcome": "require-approval", "ttl": 60, "revoke-on-ticket-close": false,
            "approvals": [{"policy": "b", "groups": ["y", "x"], "min": 1}, {"policy": "a", "groups": ["z"], "min": 2}],
            "policies": [{"name": "a", "verdict": "require-approval", "ttl": 60, "fuel": 1, "micros": 1, "digest": "d", "version": "1"}],
            "policy-set": "sha256:abc", "reasons": [], "request-id": "r1", "task": "t", "micros": 3
        }});
        let Prepared::Replay(job) = prepare(&record(data)) else {
            panic!("not replayed")
        };
        let (req, v) = *job;
        assert_eq!((req.id.as_str(), req.now), ("r1", 1_795_600_800));
        assert_eq!(v.outcome, Answer::RequireApproval);
        assert_eq!(v.policy_set, "sha256:abc");
        assert_eq!(compare::describe(&v.approvals), "a: 2 of z; b: 1 of x|y");
        assert_eq!(v.policies[0].verdict, TraceVerdict::RequireApproval);
    }

    #[test]
    fn an_invalid_request_replays_only_when_recorded_whole() {
        let invalid = json!({"field": "task", "message": "`t` is not a task any loaded policy declares (known: x)"});
        let excerpt = json!({"sha256": "00", "bytes": 2, "excerpt": "{}", "truncated": false});
        let whole = json!({"request": excerpt, "invalid": invalid, "decided-request": request()});
        let Prepared::Replay(job) = prepare(&record(whole)) else {
            panic!("not replayed")
        };
        assert_eq!(job.1.outcome, Answer::Invalid);
        let (why, _) = skipped(json!({"request": excerpt, "invalid": invalid}));
        assert_eq!(why, reason::EXCERPT_ONLY);
        let (why, detail) =
            skipped(json!({"request": excerpt, "invalid": {"field": "id", "message": "too long"}}));
        assert_eq!(why, reason::INVALID_ANY_SET);
        assert!(detail.contains("id: too long"), "{detail}");
        let (why, _) = skipped(
            json!({"body": excerpt, "invalid": {"field": "subject", "message": "missing"}}),
        );
        assert_eq!(why, reason::NOT_A_REQUEST);
    }

    #[test]
    fn a_record_that_does_not_read_says_so() {
        let (why, detail) =
            skipped(json!({"request": {"id": 5}, "decision": {"outcome": "allow"}}));
        assert_eq!(why, reason::UNREADABLE);
        assert!(detail.contains("request"), "{detail}");
        let (why, detail) =
            skipped(json!({"request": request(), "decision": {"outcome": "maybe"}}));
        assert_eq!(why, reason::UNREADABLE);
        assert!(detail.contains("decision"), "{detail}");
        let (why, _) = skipped(json!({"request": request()}));
        assert_eq!(why, reason::UNREADABLE);
    }
}
