//! Property suite: generated and damaged request bodies, sent over HTTP to
//! the real `jitgate serve` on both stores, must never break the service.
//!
//! Bodies come from `tests/support/props/gen.rs` (every request field, each
//! valid or strange: extreme and non-round-tripping numbers, unicode, NUL
//! and control characters, duplicate keys, deep nesting, long lists, broken
//! bytes), sent as requester, pipeline, admin, unknown and no token to
//! `POST /v1/requests` and `POST /v1/decisions`; some grants are revoked or
//! their ticket closed at once. The webhook target refuses the first
//! delivery of every `grant-activated`. The invariants:
//!
//! * no answer is a 5xx (nor a dropped connection); every refusal has the
//!   error shape;
//! * a stored grant reads back (`GET /v1/grants/{id}`, the listing,
//!   `/evidence`) as it was answered, and sending the same body again
//!   answers the same grant;
//! * `GET /v1/audit/verify` is ok after every call that audits a body, and
//!   after every batch; the audit log reads back;
//! * after every batch, a 1 s canary grant ends (`expired`) within 2 s of
//!   its `expires-at`; every provisioning event is delivered, none of a
//!   grant's before its `grant-activated`; a restart comes up and is ready.
//!
//! A failing batch is shrunk on fresh stores (calls dropped, then each
//! remaining body simplified) and reported with the bodies as sent.
//!
//! The support files are compiled into this binary (`#[path]`), not into
//! the support library, because proptest is a dev-dependency.
//!
//! Runs and knobs: docs/operations.md, "Property suite".

#[path = "../support/props/gen.rs"]
mod generate;
#[path = "../support/props/hook.rs"]
mod hook;
#[path = "../support/props/serve.rs"]
mod serve;

use generate::{Case, End, Endpoint};
use hook::Hook;
use jitgate_tests::http::Response;
use jitgate_tests::server::{Backend, TestStore, body, now_secs, write_config_with};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use serve::Serve;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// How much to run (from the environment).
struct Settings {
    seed: u64,
    batch: usize,
    batches: u64,
    seconds: Option<u64>,
    fresh_every: u64,
    shrink: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            seed: env_num("JITGATE_PROPS_SEED", 20_261_202),
            batch: env_num("JITGATE_PROPS_BATCH", 50).max(1) as usize,
            batches: env_num("JITGATE_PROPS_BATCHES", 6),
            seconds: std::env::var("JITGATE_PROPS_SECONDS")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
            fresh_every: env_num("JITGATE_PROPS_FRESH_EVERY", 20).max(1),
            shrink: Duration::from_secs(env_num("JITGATE_PROPS_SHRINK_SECONDS", 120)),
        }
    }
}

/// An invariant that did not hold, and at which call of the batch (if it
/// was one call's check).
#[derive(Debug, Clone)]
struct Failure {
    at: Option<usize>,
    msg: String,
}

fn fail<T>(at: Option<usize>, msg: String) -> Result<T, Failure> {
    Err(Failure { at, msg })
}

/// One server over one store, and what it was seen to store.
struct Harness {
    // Declared first: dropped (killed) before its store.
    server: Option<Serve>,
    config: PathBuf,
    _store: TestStore,
    hook: Hook,
    grants: BTreeSet<String>,
    /// Grants answered since the last batch check.
    fresh: BTreeSet<String>,
    /// The last audit record read back.
    audit_read: i64,
    canaries: u32,
    canary_grants: BTreeSet<String>,
    statuses: BTreeMap<(Endpoint, u16), u64>,
}

fn millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Harness {
    /// A fresh store and a server over it, in `root/h<n>`; compiled
    /// policies are shared through `root/cache`.
    fn new(root: &Path, backend: Backend, n: usize) -> Result<Harness, String> {
        let dir = root.join(format!("h{n}"));
        let cache = root.join("cache");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(&cache, dir.join("cache")).map_err(|e| e.to_string())?;
        let store = TestStore::new(backend, &dir);
        let hook = Hook::start()?;
        let config = write_config_with(&dir, &store.url, &hook.config());
        let server = Serve::start(&config)?;
        Ok(Harness {
            server: Some(server),
            config,
            _store: store,
            hook,
            grants: BTreeSet::new(),
            fresh: BTreeSet::new(),
            audit_read: 0,
            canaries: 0,
            canary_grants: BTreeSet::new(),
            statuses: BTreeMap::new(),
        })
    }

    fn server(&self) -> Result<&Serve, Failure> {
        self.server
            .as_ref()
            .map_or_else(|| fail(None, "no server running".into()), Ok)
    }

    /// One call; a 5xx or a dropped connection is a failure, with the
    /// server's last log lines.
    fn call(
        &self,
        at: Option<usize>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response, Failure> {
        let s = self.server()?;
        let r = s
            .send(method, path, token, body)
            .or_else(|e| fail(at, format!("{e}\nserver output:\n{}", s.tail(20))))?;
        if r.status >= 500 || r.status == 0 {
            return fail(
                at,
                format!(
                    "{method} {path} as {token:?} answered {}: {}\nserver output:\n{}",
                    r.status,
                    r.body,
                    s.tail(20)
                ),
            );
        }
        Ok(r)
    }

    fn get(&self, at: Option<usize>, path: &str, token: &str) -> Result<Response, Failure> {
        self.call(at, "GET", path, Some(token), None)
    }

    fn verify_audit(&self, at: Option<usize>) -> Result<(), Failure> {
        let r = self.get(at, "/v1/audit/verify", "t-audit")?;
        if r.status != 200 || r.json()["ok"] != true {
            return fail(at, format!("GET /v1/audit/verify: {} {}", r.status, r.body));
        }
        Ok(())
    }

    /// Send one generated call and check what it answered.
    fn run_case(&mut self, at: usize, case: &Case) -> Result<(), Failure> {
        let bytes = case.bytes(now_secs());
        let path = case.endpoint.path();
        let at = Some(at);
        let r = self.call(at, "POST", path, case.token, Some(&bytes))?;
        *self.statuses.entry((case.endpoint, r.status)).or_default() += 1;
        let allowed: &[u16] = match (case.token, case.endpoint) {
            // 429: a limit on authentication failures per client.
            (None | Some("t-nope"), _) => &[401, 429],
            (_, Endpoint::Requests) => &[200, 201, 400, 403, 409, 413, 422],
            (_, Endpoint::Decisions) => &[200, 400, 403, 413, 422],
        };
        if !allowed.contains(&r.status) {
            return fail(at, format!("POST {path} answered {}: {}", r.status, r.body));
        }
        if r.status >= 400 && !r.json()["error"]["code"].is_string() {
            return fail(
                at,
                format!(
                    "POST {path}: {} without the error shape: {}",
                    r.status, r.body
                ),
            );
        }
        if case.endpoint != Endpoint::Requests {
            return Ok(());
        }
        if matches!(r.status, 200 | 201) {
            let g = r.json();
            let id = g["id"].as_str().unwrap_or_default().to_string();
            let back = self.get(at, &format!("/v1/grants/{id}"), "t-admin")?;
            if back.status != 200 {
                return fail(
                    at,
                    format!(
                        "grant {id} answered {} but reads back {}: {}",
                        r.status, back.status, back.body
                    ),
                );
            }
            let b = back.json();
            if b["request"] != g["request"] || b["body-hash"] != g["body-hash"] {
                return fail(
                    at,
                    format!("grant {id} reads back differently:\nanswered {g}\nread {b}"),
                );
            }
            if r.status == 201 {
                let again = self.call(at, "POST", path, case.token, Some(&bytes))?;
                if again.status != 200 || again.json()["id"] != g["id"] {
                    return fail(
                        at,
                        format!(
                            "the same body again answered {}: {} (first: grant {id})",
                            again.status, again.body
                        ),
                    );
                }
            }
            if r.status == 201 && g["state"] == "active" {
                self.end(at, &g, case.end)?;
            }
            self.grants.insert(id.clone());
            self.fresh.insert(id);
        }
        if matches!(r.status, 200 | 201 | 422) {
            // Each of these appended a record holding (part of) this body.
            self.verify_audit(at)?;
        }
        Ok(())
    }

    /// End a grant just created active, as `how` says.
    fn end(&self, at: Option<usize>, g: &Value, how: Option<End>) -> Result<(), Failure> {
        let id = g["id"].as_str().unwrap_or_default();
        let ticket = g["request"]["ticket"]["id"].as_str().unwrap_or_default();
        let (path, token, body) = match how {
            None => return Ok(()),
            Some(End::Revoke) => (format!("/v1/grants/{id}/revoke"), "t-admin", "{}"),
            // Only ids that need no escaping in a path.
            // The ticket's facts came from the trusted pipeline, which owns
            // it in the registry: the pipeline reports it closed (a request
            // body naming it closed, itself denied).
            Some(End::CloseTicket) if !ticket.is_empty() && g["requested-by"] == "pipeline" => {
                let mut close = g["request"].clone();
                if let Some(o) = close.as_object_mut() {
                    o.remove("now");
                }
                close["id"] = json!(format!("close-{id}"));
                close["ticket"]["state"] = json!("closed");
                let r = self.call(
                    at,
                    "POST",
                    "/v1/requests",
                    Some("t-pipe"),
                    Some(close.to_string().as_bytes()),
                )?;
                if r.status != 201 {
                    return fail(
                        at,
                        format!("closing ticket {ticket}: {} {}", r.status, r.body),
                    );
                }
                return Ok(());
            }
            Some(End::CloseTicket) => return Ok(()),
        };
        let r = self.call(at, "POST", &path, Some(token), Some(body.as_bytes()))?;
        // 409: it ended on its own first (a 1 s grant).
        if !matches!(r.status, 200 | 409) {
            return fail(at, format!("POST {path}: {} {}", r.status, r.body));
        }
        Ok(())
    }

    /// Wait until every provisioning event was delivered, then check that
    /// none of a grant's was delivered before its activation.
    fn provisioning_in_order(&self) -> Result<(), Failure> {
        let started = Instant::now();
        loop {
            let m = self.get(None, "/metrics", "t-admin")?;
            if m.body
                .lines()
                .any(|l| l.trim() == "jitgate_outbox_pending 0")
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return fail(None, "provisioning events still pending after 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match self.hook.out_of_order() {
            Some(g) => fail(
                None,
                format!(
                    "{} {g}: `grant-ended` reached the webhook before `grant-activated` (accepted: {:?})",
                    if self.canary_grants.contains(&g) {
                        "canary grant"
                    } else {
                        "grant"
                    },
                    self.hook
                        .accepted()
                        .iter()
                        .filter(|e| e.starts_with(g.as_str()))
                        .collect::<Vec<_>>()
                ),
            ),
            None => Ok(()),
        }
    }

    /// The invariants after a batch: every grant reads back, the audit
    /// chain verifies, a canary expires on time, a restart is ready.
    fn check(&mut self) -> Result<(), Failure> {
        self.canaries += 1;
        let canary_id = format!("canary-{}-{}", self.canaries, millis());
        // Sent by the trusted pipeline: its ticket facts are taken.
        let b = body(&canary_id, "alice", "file-recovery", 1).to_string();
        let r = self.call(
            None,
            "POST",
            "/v1/requests",
            Some("t-pipe"),
            Some(b.as_bytes()),
        )?;
        let g = r.json();
        if r.status != 201 || g["state"] != "active" {
            return fail(
                None,
                format!("canary request answered {}: {}", r.status, r.body),
            );
        }
        let canary = g["id"].as_str().unwrap_or_default().to_string();
        self.canary_grants.insert(canary.clone());
        let expires = g["expires-at"]
            .as_str()
            .and_then(jitgate::timefmt::parse_ms)
            .unwrap_or_default();

        let listed = self.list()?;
        if let Some(missing) = self.grants.iter().find(|id| !listed.contains(*id)) {
            return fail(None, format!("grant {missing} is not in the listing"));
        }
        // Older grants were read back at earlier checks, and the listing
        // above still parses every one of them.
        for id in std::mem::take(&mut self.fresh) {
            let e = self.get(None, &format!("/v1/grants/{id}/evidence"), "t-audit")?;
            if e.status != 200 || e.json()["grant"]["id"] != id {
                return fail(None, format!("evidence of {id}: {} {}", e.status, e.body));
            }
        }
        self.verify_audit(None)?;
        self.read_audit()?;
        self.get(None, "/metrics", "t-admin")?;

        // Generous against a loaded machine: the sweep is due at
        // `expires-at` and normally ends it within milliseconds.
        loop {
            let c = self.get(None, &format!("/v1/grants/{canary}"), "t-admin")?;
            if c.json()["state"] == "expired" {
                break;
            }
            if millis() > expires + 2000 {
                return fail(
                    None,
                    format!(
                        "canary grant {canary} (1 s) is still {} 2 s after its expires-at: {}\nserver output:\n{}",
                        c.json()["state"],
                        c.body,
                        self.server()?.tail(20)
                    ),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        self.provisioning_in_order()?;

        // Restart: SIGKILL, as a crash would.
        drop(self.server.take());
        self.server =
            Some(Serve::start(&self.config).or_else(|e| fail(None, format!("restart: {e}")))?);
        let listed = self.list()?;
        if !listed.contains(&canary) {
            return fail(
                None,
                format!("after a restart the canary {canary} is not listed"),
            );
        }
        self.verify_audit(None)
    }

    /// Every audit record appended since the last check reads back, in
    /// order.
    fn read_audit(&mut self) -> Result<(), Failure> {
        let mut after = self.audit_read;
        loop {
            let path = format!("/v1/audit?after={after}&limit=1000");
            let r = self.get(None, &path, "t-audit")?;
            if r.status != 200 {
                return fail(None, format!("GET {path}: {} {}", r.status, r.body));
            }
            let v = r.json();
            for rec in v["records"].as_array().into_iter().flatten() {
                let seq = rec["seq"].as_i64().unwrap_or_default();
                if seq <= after {
                    return fail(None, format!("GET {path}: record {seq} out of order"));
                }
                after = seq;
            }
            self.audit_read = after;
            if v["next"].is_null() {
                return Ok(());
            }
        }
    }

    /// Every grant id in the listing (all pages).
    fn list(&self) -> Result<BTreeSet<String>, Failure> {
        let mut ids = BTreeSet::new();
        let mut before: Option<String> = None;
        loop {
            let path = match &before {
                Some(c) => format!("/v1/grants?limit=500&before={c}"),
                None => "/v1/grants?limit=500".to_string(),
            };
            let r = self.get(None, &path, "t-admin")?;
            if r.status != 200 {
                return fail(None, format!("GET {path}: {} {}", r.status, r.body));
            }
            let v = r.json();
            for g in v["grants"].as_array().into_iter().flatten() {
                ids.insert(g["id"].as_str().unwrap_or_default().to_string());
            }
            match v["next"].as_str() {
                Some(n) => before = Some(n.to_string()),
                None => return Ok(ids),
            }
        }
    }

    /// Send a batch (stopping at the first failing call), then check the
    /// batch's invariants if `full`.
    fn batch(&mut self, cases: &[Case], full: bool) -> Result<(), Failure> {
        for (i, case) in cases.iter().enumerate() {
            self.run_case(i, case)?;
        }
        if full { self.check() } else { Ok(()) }
    }
}

fn show(cases: &[Case], max_chars: usize) -> String {
    let now = now_secs();
    let mut out = String::new();
    for (i, c) in cases.iter().enumerate() {
        let bytes = c.bytes(now);
        let text = String::from_utf8_lossy(&bytes);
        let shown: String = text.chars().take(max_chars).collect();
        let more = if shown.len() < text.len() {
            format!(" … ({} bytes in all)", bytes.len())
        } else {
            String::new()
        };
        let end = match c.end {
            Some(e) => format!(" (if granted: {e:?})"),
            None => String::new(),
        };
        out.push_str(&format!(
            "  [{i}] POST {} as {:?}{end}: {shown:?}{more}\n",
            c.endpoint.path(),
            c.token
        ));
    }
    if cases.is_empty() {
        out.push_str("  (no calls: the batch's own checks fail alone)\n");
    }
    out
}

type Tree = Box<dyn ValueTree<Value = Case>>;

/// Shrink a failing batch, each attempt on a fresh store: drop the calls
/// after the failing one, then each other call, then simplify each
/// remaining body. A failure seen at a call is shrunk on the calls' own
/// checks alone, which is quick (no canary, no restart). Returns the
/// smallest failing batch, its failure, and the number of attempts.
fn shrink(
    root: &Path,
    backend: Backend,
    mut trees: Vec<Tree>,
    found: &Failure,
    budget: Duration,
    next_dir: &mut usize,
) -> Result<(Vec<Case>, Failure, usize), String> {
    let full = found.at.is_none();
    let started = Instant::now();
    let n = trees.len();
    let mut fixed: Vec<Option<Case>> = vec![None; n];
    let mut keep = vec![true; n];
    let mut attempts = 0;
    let mut attempt = |trees: &[Tree],
                       fixed: &[Option<Case>],
                       keep: &[bool]|
     -> (Vec<usize>, Result<(), Failure>) {
        attempts += 1;
        *next_dir += 1;
        let idx: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        let cases: Vec<Case> = idx
            .iter()
            .map(|&i| fixed[i].clone().unwrap_or_else(|| trees[i].current()))
            .collect();
        let r = match Harness::new(root, backend, *next_dir) {
            Ok(mut h) => h.batch(&cases, full),
            Err(e) => Err(Failure {
                at: None,
                msg: format!("fresh server: {e}"),
            }),
        };
        (idx, r)
    };
    let current = |trees: &[Tree], fixed: &[Option<Case>], keep: &[bool]| -> Vec<Case> {
        (0..n)
            .filter(|&i| keep[i])
            .map(|i| fixed[i].clone().unwrap_or_else(|| trees[i].current()))
            .collect()
    };
    let (idx, first) = attempt(&trees, &fixed, &keep);
    let mut last = match first {
        Err(f) => f,
        Ok(()) => {
            return Err(
                "the batch failed on the long-lived store but passes on a fresh one".into(),
            );
        }
    };
    if let Some(k) = last.at.and_then(|k| idx.get(k).copied()) {
        let saved = keep.clone();
        for k in keep.iter_mut().skip(k + 1) {
            *k = false;
        }
        match attempt(&trees, &fixed, &keep).1 {
            Err(f) => last = f,
            Ok(()) => keep = saved,
        }
    }
    for i in 0..n {
        if !keep[i] || started.elapsed() > budget {
            continue;
        }
        keep[i] = false;
        match attempt(&trees, &fixed, &keep).1 {
            Err(f) => last = f,
            Ok(()) => keep[i] = true,
        }
    }
    for i in 0..n {
        if !keep[i] {
            continue;
        }
        let mut best = trees[i].current();
        if trees[i].simplify() {
            loop {
                if started.elapsed() > budget {
                    break;
                }
                match attempt(&trees, &fixed, &keep).1 {
                    Err(f) => {
                        last = f;
                        best = trees[i].current();
                        if !trees[i].simplify() {
                            break;
                        }
                    }
                    Ok(()) => {
                        if !trees[i].complicate() {
                            break;
                        }
                    }
                }
            }
        }
        fixed[i] = Some(best);
    }
    Ok((current(&trees, &fixed, &keep), last, attempts))
}

fn hostile_bodies_never_poison_grants_audit_or_expiry(backend: Backend) {
    let set = Settings::from_env();
    let root = tempfile::tempdir().expect("tempdir");
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&set.seed.to_le_bytes());
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let strategy = generate::case();
    let mut dirs = 0;
    let mut h = Harness::new(root.path(), backend, dirs).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut batches = 0u64;
    let mut statuses: BTreeMap<(Endpoint, u16), u64> = BTreeMap::new();
    loop {
        let more = match set.seconds {
            Some(s) => started.elapsed() < Duration::from_secs(s),
            None => batches < set.batches,
        };
        if !more {
            break;
        }
        // A long run starts over on a fresh store now and then, so that
        // checks that read everything back stay quick.
        if batches > 0 && batches.is_multiple_of(set.fresh_every) {
            for (k, n) in std::mem::take(&mut h.statuses) {
                *statuses.entry(k).or_default() += n;
            }
            dirs += 1;
            drop(h);
            h = Harness::new(root.path(), backend, dirs).unwrap_or_else(|e| panic!("{e}"));
        }
        let trees: Vec<Tree> = (0..set.batch)
            .map(|_| strategy.new_tree(&mut runner).expect("generate a case"))
            .collect();
        let cases: Vec<Case> = trees.iter().map(|t| t.current()).collect();
        if let Err(f) = h.batch(&cases, true) {
            drop(h);
            let rerun = format!(
                "JITGATE_PROPS_SEED={} JITGATE_PROPS_BATCH={} JITGATE_PROPS_BATCHES={} JITGATE_PROPS_FRESH_EVERY={} cargo test -p jitgate-tests --test e2e props::{}",
                set.seed,
                set.batch,
                batches + 1,
                set.fresh_every,
                if backend == Backend::Sqlite {
                    "sqlite"
                } else {
                    "postgres"
                }
            );
            let found = format!(
                "{backend:?}: batch {batches} (seed {}) broke an invariant{}: {}\nits calls:\n{}",
                set.seed,
                f.at.map(|i| format!(" at call [{i}]")).unwrap_or_default(),
                f.msg,
                show(&cases, 300)
            );
            match shrink(root.path(), backend, trees, &f, set.shrink, &mut dirs) {
                Ok((min, mf, attempts)) => panic!(
                    "{found}\nshrunk in {attempts} attempts on fresh stores to:\n{}failing with{}: {}\nrerun: {rerun}",
                    show(&min, 4000),
                    mf.at.map(|i| format!(" at call [{i}]")).unwrap_or_default(),
                    mf.msg
                ),
                Err(e) => panic!("{found}\n(not shrunk: {e})\nrerun: {rerun}"),
            }
        }
        batches += 1;
    }
    for (k, n) in std::mem::take(&mut h.statuses) {
        *statuses.entry(k).or_default() += n;
    }
    eprintln!(
        "props {backend:?}: seed {}, {batches} batches of {} calls in {:.1?}; answers: {statuses:?}",
        set.seed,
        set.batch,
        started.elapsed(),
    );
    // The generator must keep reaching past parsing: stored grants,
    // decisions and audited refusals, not only malformed JSON.
    if batches > 0 {
        let count = |e: Endpoint, s: u16| statuses.get(&(e, s)).copied().unwrap_or(0);
        for (e, s, what) in [
            (Endpoint::Requests, 201, "granted"),
            (Endpoint::Requests, 422, "refused as invalid"),
            (Endpoint::Decisions, 200, "decided"),
        ] {
            assert!(
                count(e, s) > 0,
                "no generated body was {what}: {statuses:?}"
            );
        }
    }
}

mod sqlite {
    #[test]
    fn hostile_bodies_never_poison_grants_audit_or_expiry() {
        super::hostile_bodies_never_poison_grants_audit_or_expiry(super::Backend::Sqlite)
    }
}

mod postgres {
    #[test]
    fn hostile_bodies_never_poison_grants_audit_or_expiry() {
        super::hostile_bodies_never_poison_grants_audit_or_expiry(super::Backend::Postgres)
    }
}
