//! `jitgate replay` (issue 15 item 3): recorded traffic, made through the
//! real HTTP router and stored by the service, re-decided by the real
//! binary against candidate sets whose answers are known: the running set
//! (no change), one without `file-recovery` (exactly its decisions change,
//! none widens), one without `baseline` (exactly the decisions baseline
//! alone refused widen, and `--fail-on-widening` exits 3); windows; hostile
//! recorded strings; an edited record; records too old to replay.

use jitgate::audit::AuditDraft;
use jitgate_tests::app::App;
use jitgate_tests::jitgate_bin;
use jitgate_tests::server::{Backend, TestStore, body, write_config_with};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A recording service over `backend`, deciding with the clock-free
/// example policies minus `without`.
struct Recording {
    app: App,
    dir: PathBuf,
    store: String,
    config: PathBuf,
}

fn recording(b: Backend, without: &[&str]) -> Recording {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let config = write_config_with(dir.path(), &store.url, "");
    for name in without {
        std::fs::remove_file(dir.path().join("policies").join(format!("{name}.wasm")))
            .expect("remove a policy from the running set");
    }
    let path = dir.path().to_path_buf();
    let url = store.url.clone();
    let app = App::from_file(&config, (dir, store));
    Recording {
        app,
        dir: path,
        store: url,
        config,
    }
}

impl Recording {
    /// A copy of the clock-free example policies minus `without`.
    fn candidate(&self, name: &str, without: &[&str]) -> PathBuf {
        let to = self.dir.join(name);
        std::fs::create_dir_all(&to).expect("mkdir");
        let all = jitgate_tests::server::clock_free_policies(&self.dir.join(format!("{name}-all")));
        for entry in std::fs::read_dir(&all).expect("read policies") {
            let from = entry.expect("entry").path();
            let stem = from.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if !without.contains(&stem) {
                std::fs::copy(&from, to.join(from.file_name().expect("name"))).expect("copy");
            }
        }
        to
    }

    /// Run `jitgate replay --store … --candidate DIR ARGS…`: (exit code, stdout, stderr).
    fn replay(&self, candidate: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(jitgate_bin())
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(["replay", "--store", &self.store, "--candidate"])
            .arg(candidate)
            .args(args)
            .env_remove("JITGATE_CONFIG")
            .output()
            .unwrap_or_else(|e| panic!("run jitgate replay: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The JSON report of a replay that exits `code`.
    fn report(&self, candidate: &Path, args: &[&str], code: i32) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (got, out, err) = self.replay(candidate, &all);
        assert_eq!(got, code, "exit code; stderr: {err}\n{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("JSON report: {e}\n{out}\n{err}"))
    }

    fn request(&self, v: &Value, status: u16) {
        let r = self.app.post("/v1/requests", Some("t-pipe"), v);
        assert_eq!(r.status, status, "{}", r.body);
    }

    fn dry_run(&self, v: &Value, status: u16) {
        let r = self.app.post("/v1/decisions", Some("t-pipe"), v);
        assert_eq!(r.status, status, "{}", r.body);
    }
}

/// `v` with the field at JSON pointer `at` (which must exist) set to `value`.
fn with(mut v: Value, at: &str, value: Value) -> Value {
    *v.pointer_mut(at)
        .unwrap_or_else(|| panic!("{at} is not in the request")) = value;
    v
}

/// The traffic of the known-answer tests, recorded with the clock-free
/// example policies (what each decides is in the comment).
fn record_traffic(r: &Recording) {
    // allow (file-recovery, 600 s)
    r.request(&body("r-fr-ok", "alice", "file-recovery", 600), 201);
    // deny: baseline alone (justification too short); file-recovery allows
    r.request(
        &with(
            body("r-fr-short", "alice", "file-recovery", 600),
            "/justification",
            json!("fix"),
        ),
        201,
    );
    // deny: file-recovery (the ticket is bob's)
    r.request(
        &with(
            body("r-fr-bob", "alice", "file-recovery", 600),
            "/ticket/assignee",
            json!("bob"),
        ),
        201,
    );
    // require-approval (saas-admin, not read-only)
    r.request(&body("r-saas", "alice", "saas-admin", 1200), 201);
    // dry run: allow (file-recovery)
    r.dry_run(&body("d-fr-ok", "alice", "file-recovery", 900), 200);
    // dry run: deny, baseline alone; saas-admin asks approval
    r.dry_run(
        &with(
            body("d-saas-short", "alice", "saas-admin", 900),
            "/justification",
            json!("fix"),
        ),
        200,
    );
    // dry run: invalid (no policy declares the task)
    r.dry_run(&body("d-unknown", "alice", "db-admin", 900), 422);
    // not a request at all: never reached a policy
    r.request(&json!({"id": "not-a-request"}), 422);
}

fn ids(report: &Value, widening: bool) -> Vec<String> {
    let mut out: Vec<String> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["widening"] == widening)
        .map(|c| c["request-id"].as_str().unwrap_or("").to_string())
        .collect();
    out.sort();
    out
}

fn cell(report: &Value, old: &str, new: &str) -> u64 {
    report["matrix"][old][new].as_u64().unwrap_or(u64::MAX)
}

/// The running set against its own history: every record replays and not
/// one decision changes.
fn replaying_the_running_set_against_its_own_history_changes_nothing(b: Backend) {
    let r = recording(b, &[]);
    record_traffic(&r);
    let running = r.dir.join("policies");
    let config = r.config.display().to_string();
    let report = r.report(&running, &["--config", &config, "--fail-on-widening"], 0);
    assert_eq!(report["records"], 8, "{report:#}");
    assert_eq!(report["replayed"], 7, "{report:#}");
    assert_eq!(report["not-replayed"], 1, "{report:#}");
    assert_eq!(
        report["not-replayed-by-reason"],
        json!({"not-a-request": 1})
    );
    assert_eq!(report["changed"], 0, "{report:#}");
    assert_eq!(report["widening"], 0);
    assert_eq!(report["changes"], json!([]));
    for (old, new, n) in [
        ("allow", "allow", 2),
        ("deny", "deny", 3),
        ("require-approval", "require-approval", 1),
        ("invalid", "invalid", 1),
    ] {
        assert_eq!(cell(&report, old, new), n, "{old} → {new}: {report:#}");
    }
    // The baseline is the running set: the same digest as the candidate.
    let candidate = report["candidate-set"].as_str().expect("digest");
    assert!(candidate.starts_with("sha256:"), "{candidate}");
    assert_eq!(report["baseline-sets"][candidate], 6, "{report:#}");
    assert_eq!(report["baseline-sets"]["(none)"], 1, "{report:#}");
    assert_eq!(report["chain"]["fault-count"], 0);
    // The text says the same.
    let (code, out, err) = r.replay(&running, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("8 in the window, 7 replayed, 1 not replayed; 0 changed, 0 widen access"),
        "{out}"
    );
    assert!(out.contains("WIDENING: none"), "{out}");
}

/// A tightened candidate (the example set without `file-recovery`):
/// exactly the four file-recovery decisions change, to invalid (no policy
/// declares the task any more), and none widens.
fn a_candidate_without_file_recovery_changes_exactly_its_decisions(b: Backend) {
    let r = recording(b, &[]);
    record_traffic(&r);
    let candidate = r.candidate("tight", &["file-recovery"]);
    let report = r.report(&candidate, &["--fail-on-widening"], 0);
    assert_eq!(report["replayed"], 7, "{report:#}");
    assert_eq!(report["changed"], 4, "{report:#}");
    assert_eq!(report["widening"], 0, "{report:#}");
    assert_eq!(
        ids(&report, false),
        ["d-fr-ok", "r-fr-bob", "r-fr-ok", "r-fr-short"]
    );
    for (old, new, n) in [
        ("allow", "invalid", 2),
        ("deny", "invalid", 2),
        ("deny", "deny", 1),
        ("require-approval", "require-approval", 1),
        ("invalid", "invalid", 1),
    ] {
        assert_eq!(cell(&report, old, new), n, "{old} → {new}: {report:#}");
    }
    let task = &report["by-task"]["file-recovery"];
    assert_eq!(task["changed"], 4, "{task}");
    assert_eq!(
        task["transitions"],
        json!({"allow → invalid": 2, "deny → invalid": 2})
    );
    assert_eq!(report["by-task"]["saas-admin"]["changed"], 0);
    // file-recovery allowed r-fr-short too (baseline alone refused it).
    let policy = &report["by-policy"]["file-recovery"];
    assert_eq!(
        policy["verdicts"],
        json!({"allow → absent": 3, "deny → absent": 1})
    );
    assert_eq!(policy["changed"], 4);
    // The change names who, what and which ticket.
    let c = report["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["request-id"] == "r-fr-ok"))
        .expect("r-fr-ok changed");
    assert_eq!(c["subject"], "alice");
    assert_eq!(c["ticket"], "T-r-fr-ok");
    assert_eq!(c["kind"], "request");
    assert_eq!(c["recorded"]["outcome"], "allow");
    assert_eq!(c["recorded"]["ttl"], 600);
    assert_eq!(c["candidate"]["outcome"], "invalid");
    assert!(
        c["candidate"]["invalid"]
            .as_str()
            .is_some_and(|m| m.starts_with("task: `file-recovery` is not a task")),
        "{c}"
    );
}

/// A widening candidate (without `baseline`): the two decisions only
/// baseline refused now give access, listed first with request id, subject
/// and ticket; `--fail-on-widening` exits 3.
fn a_candidate_without_baseline_widens_and_fail_on_widening_exits_3(b: Backend) {
    let r = recording(b, &[]);
    record_traffic(&r);
    let candidate = r.candidate("loose", &["baseline"]);
    let report = r.report(&candidate, &[], 0);
    assert_eq!(report["changed"], 2, "{report:#}");
    assert_eq!(report["widening"], 2, "{report:#}");
    assert_eq!(ids(&report, true), ["d-saas-short", "r-fr-short"]);
    assert_eq!(cell(&report, "deny", "allow"), 1, "{report:#}");
    assert_eq!(cell(&report, "deny", "require-approval"), 1, "{report:#}");
    assert_eq!(
        report["by-policy"]["baseline"]["verdicts"],
        json!({"deny → absent": 2, "not-applicable → absent": 4})
    );
    assert_eq!(report["by-policy"]["baseline"]["widening"], 2);
    let report = r.report(&candidate, &["--fail-on-widening"], 3);
    assert_eq!(report["widening"], 2);
    let (code, out, err) = r.replay(&candidate, &["--fail-on-widening"]);
    assert_eq!(code, 3, "{err}");
    let widening = out.find("WIDENING (2)").expect("widening section");
    let line = out
        .lines()
        .find(|l| l.contains("request r-fr-short"))
        .expect("r-fr-short listed");
    assert!(
        line.contains("subject alice ticket T-r-fr-short task file-recovery: outcome deny → allow"),
        "{line}"
    );
    assert!(out.find("request r-fr-short").is_some_and(|i| i > widening));
    assert!(out.contains("baseline: deny → absent"), "{out}");
}

/// A request invalid for the set that ran (its task unknown then) is
/// recorded whole, so a candidate that knows the task re-decides it: here
/// invalid → allow, a widening.
fn an_invalid_request_is_replayed_and_its_widening_found() {
    let r = recording(Backend::Sqlite, &["file-recovery"]);
    r.request(&body("late-task", "alice", "file-recovery", 600), 422);
    r.dry_run(&body("late-dry", "alice", "file-recovery", 600), 422);
    // Past a bound: invalid whatever the set, and kept only as an excerpt.
    r.dry_run(
        &with(
            body("too-long", "alice", "file-recovery", 600),
            "/justification",
            json!("x".repeat(5000)),
        ),
        422,
    );
    let candidate = r.candidate("full", &[]);
    let report = r.report(&candidate, &["--fail-on-widening"], 3);
    assert_eq!(report["replayed"], 2, "{report:#}");
    assert_eq!(cell(&report, "invalid", "allow"), 2, "{report:#}");
    assert_eq!(ids(&report, true), ["late-dry", "late-task"]);
    assert_eq!(
        report["not-replayed-by-reason"],
        json!({"invalid-whatever-the-set": 1})
    );
    let skipped = &report["not-replayed-records"][0];
    assert_eq!(skipped["request-id"], "too-long");
    assert!(
        skipped["detail"]
            .as_str()
            .is_some_and(|d| d.contains("justification")),
        "{skipped}"
    );
}

/// `--since`/`--until` pick records by the time they were recorded
/// (`--since` included, `--until` not).
fn since_and_until_pick_the_window() {
    let r = recording(Backend::Sqlite, &[]);
    for i in 0..2 {
        r.dry_run(
            &body(&format!("early-{i}"), "alice", "file-recovery", 600),
            200,
        );
    }
    // Wait for the next whole second: the boundary between the batches.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    let boundary = now_ms() / 1000 + 1;
    while now_ms() < boundary * 1000 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for i in 0..3 {
        r.dry_run(
            &body(&format!("late-{i}"), "alice", "file-recovery", 600),
            200,
        );
    }
    let at = jitgate::request::format_rfc3339(boundary);
    let later = jitgate::request::format_rfc3339(boundary + 3600);
    let running = r.dir.join("policies");
    let report = r.report(&running, &["--until", &at], 0);
    assert_eq!(report["records"], 2, "{report:#}");
    assert_eq!(report["window"]["until"], at.as_str());
    let report = r.report(&running, &["--since", &at], 0);
    assert_eq!(report["records"], 3, "{report:#}");
    let report = r.report(&running, &["--since", &at, "--until", &later], 0);
    assert_eq!(report["records"], 3, "{report:#}");
    assert_eq!(report["replayed"], 3, "{report:#}");
    // The tightened candidate over the late window lists only late records.
    let tight = r.candidate("tight", &["file-recovery"]);
    let report = r.report(&tight, &["--since", &at], 0);
    assert_eq!(ids(&report, false), ["late-0", "late-1", "late-2"]);
    // An empty window and a time that is not RFC 3339 are errors.
    let (code, _, err) = r.replay(&running, &["--since", &later, "--until", &at]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("window is empty"), "{err}");
    let (code, _, err) = r.replay(&running, &["--since", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RFC 3339"), "{err}");
}

/// Strings requesters chose (a request id with a line separator and a bidi
/// override, which validation lets through; an error message quoting an
/// escape sequence from a refused body) are printed escaped, never raw.
fn hostile_recorded_strings_do_not_reach_the_terminal_raw() {
    let r = recording(Backend::Sqlite, &[]);
    let id = "evil\u{2028}WIDENING: none\u{202e}gnp.exe";
    r.dry_run(&body(id, "alice", "file-recovery", 600), 200);
    r.request(
        &with(
            body("esc", "alice", "file-recovery", 600),
            "/subject/kind",
            json!("\u{1b}]0;owned\u{7}\u{1b}[2J"),
        ),
        422,
    );
    let tight = r.candidate("tight", &["file-recovery"]);
    let (code, out, err) = r.replay(&tight, &[]);
    assert_eq!(code, 0, "{err}");
    for raw in ['\u{1b}', '\u{7}', '\u{2028}', '\u{202e}'] {
        assert!(!out.contains(raw), "raw U+{:04X} in:\n{out}", raw as u32);
    }
    assert!(
        out.contains("request evil\\u{2028}WIDENING: none\\u{202e}gnp.exe"),
        "{out}"
    );
    assert!(out.contains("\\u{1b}]0;owned\\u{7}"), "{out}");
    // The JSON carries them exactly (escaped as JSON).
    let report = r.report(&tight, &[], 0);
    assert_eq!(report["changes"][0]["request-id"], id);
}

/// Run SQL on a SQLite store past its append-only triggers.
fn tamper(store: &str, sql: &str) {
    rusqlite::Connection::open(store)
        .and_then(|c| {
            c.execute_batch(&format!(
                "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}"
            ))
        })
        .expect("tamper");
}

/// A recorded decision edited to match the candidate (hiding its
/// widening) fails the chain's hash: it is not replayed, and the report
/// says the chain is broken.
fn an_edited_record_is_not_replayed_and_the_broken_chain_is_reported() {
    let r = recording(Backend::Sqlite, &[]);
    record_traffic(&r);
    tamper(
        &r.store,
        "UPDATE audit SET data = replace(data, '\"outcome\":\"deny\"', '\"outcome\":\"allow\"') \
         WHERE kind = 'request' AND request_id = 'r-fr-short';",
    );
    let loose = r.candidate("loose", &["baseline"]);
    let report = r.report(&loose, &["--fail-on-widening"], 3);
    assert_eq!(ids(&report, true), ["d-saas-short"], "{report:#}");
    assert_eq!(
        report["not-replayed-by-reason"],
        json!({"edited": 1, "not-a-request": 1})
    );
    assert_eq!(report["chain"]["fault-count"], 1, "{report:#}");
    let (_, out, _) = r.replay(&loose, &[]);
    assert!(out.contains("AUDIT CHAIN BROKEN: 1 fault(s)"), "{out}");
    assert!(out.contains("content does not match its hash"), "{out}");
}

/// Records written before whole invalid requests were kept: only an
/// excerpt remains, so they are reported as not replayed, saying why.
fn old_invalid_records_are_reported_as_not_replayable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let store = jitgate::store::open(&path.display().to_string()).expect("store");
    let excerpt =
        json!({"sha256": "00", "bytes": 10, "excerpt": "{\"id\":\"x\"}", "truncated": false});
    store
        .append_audit(vec![
            AuditDraft::new(
                1_795_600_800_000,
                "decision",
                "pipeline",
                json!({"request": excerpt, "invalid": {"field": "task", "message": "`db-admin` is not a task any loaded policy declares (known: file-recovery)"}}),
            )
            .request("old-unknown"),
            AuditDraft::new(
                1_795_600_801_000,
                "request",
                "pipeline",
                json!({"request": excerpt, "invalid": {"field": "justification", "message": "is 5000 bytes; at most 4096 allowed"}}),
            )
            .request("old-long"),
        ])
        .expect("append");
    drop(store);
    let out = Command::new(jitgate_bin())
        .args(["--no-cache", "replay", "--json", "--store"])
        .arg(&path)
        .arg("--candidate")
        .arg(jitgate_tests::policy_dir())
        .env_remove("JITGATE_CONFIG")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["records"], 2);
    assert_eq!(report["replayed"], 0);
    assert_eq!(
        report["not-replayed-by-reason"],
        json!({"excerpt-only": 1, "invalid-whatever-the-set": 1})
    );
    let first = &report["not-replayed-records"][0];
    assert_eq!(first["request-id"], "old-unknown");
    assert!(
        first["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only an excerpt of the request was recorded")),
        "{first}"
    );
}

mod sqlite {
    #[test]
    fn replaying_the_running_set_against_its_own_history_changes_nothing() {
        super::replaying_the_running_set_against_its_own_history_changes_nothing(
            super::Backend::Sqlite,
        )
    }
    #[test]
    fn a_candidate_without_file_recovery_changes_exactly_its_decisions() {
        super::a_candidate_without_file_recovery_changes_exactly_its_decisions(
            super::Backend::Sqlite,
        )
    }
    #[test]
    fn a_candidate_without_baseline_widens_and_fail_on_widening_exits_3() {
        super::a_candidate_without_baseline_widens_and_fail_on_widening_exits_3(
            super::Backend::Sqlite,
        )
    }
    #[test]
    fn an_invalid_request_is_replayed_and_its_widening_found() {
        super::an_invalid_request_is_replayed_and_its_widening_found()
    }
    #[test]
    fn since_and_until_pick_the_window() {
        super::since_and_until_pick_the_window()
    }
    #[test]
    fn hostile_recorded_strings_do_not_reach_the_terminal_raw() {
        super::hostile_recorded_strings_do_not_reach_the_terminal_raw()
    }
    #[test]
    fn an_edited_record_is_not_replayed_and_the_broken_chain_is_reported() {
        super::an_edited_record_is_not_replayed_and_the_broken_chain_is_reported()
    }
    #[test]
    fn old_invalid_records_are_reported_as_not_replayable() {
        super::old_invalid_records_are_reported_as_not_replayable()
    }
}

/// The known-answer replays, read from PostgreSQL.
mod postgres {
    #[test]
    fn replaying_the_running_set_against_its_own_history_changes_nothing() {
        super::replaying_the_running_set_against_its_own_history_changes_nothing(
            super::Backend::Postgres,
        )
    }
    #[test]
    fn a_candidate_without_file_recovery_changes_exactly_its_decisions() {
        super::a_candidate_without_file_recovery_changes_exactly_its_decisions(
            super::Backend::Postgres,
        )
    }
}
