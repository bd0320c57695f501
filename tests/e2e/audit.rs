//! Attacks on the audit chain and its readers (issue 9), each on both
//! stores: a client body that made verify cry tampering, tampering that
//! hid behind the first bad record, truncation and a re-hashed rewrite
//! caught by signed checkpoints, forged lines in `jitgate audit grant`, and
//! a store password shown in clear.

use jitgate::Decision;
use jitgate::audit::{AuditDraft, AuditRecord};
use jitgate::grant::Grant;
use jitgate::store::Effects;
use jitgate_tests::http::{get, post, send};
use jitgate_tests::jitgate_bin;
use jitgate_tests::server::{Backend, Guard, Server, TestStore, body, start, write_config_with};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// Run the `jitgate` binary: (success, stdout, stderr).
fn jitgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run jitgate: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run SQL on the test's store behind the service's back, past the
/// append-only triggers (an attacker with write access to the database).
fn tamper(t: &TestStore, sql: &str) {
    match &t.db {
        Some(db) => db
            .exec(&format!(
                "ALTER TABLE audit DISABLE TRIGGER audit_no_update; ALTER TABLE audit DISABLE TRIGGER audit_no_delete; {sql}"
            ))
            .expect("tamper"),
        None => rusqlite::Connection::open(&t.url)
            .and_then(|c| {
                c.execute_batch(&format!(
                    "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}"
                ))
            })
            .expect("tamper"),
    }
}

fn records(t: &TestStore) -> Vec<AuditRecord> {
    let s = jitgate::store::open(&t.url).expect("open store");
    s.audit_page(0, 100_000).expect("audit")
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn make_requests(s: &Server, n: usize) {
    for i in 0..n {
        let r = post(
            s.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("a{i}"), "alice", "file-recovery", 600),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

/// Issue 9 item 2: a refused body holding a float that does not survive a
/// JSON round trip was audited, and from then on verify reported the
/// record as edited, forever.
fn invalid_body_with_a_non_round_tripping_float_does_not_fake_tampering(b: Backend) {
    let (g, s) = start(b, "");
    // Sent as raw text: the float must reach the server as the client wrote it.
    let raw = br#"{"id":"x","junk":0.95309792552509531}"#;
    let r = send(s.addr, "POST", "/v1/requests", Some("t-alice"), Some(raw));
    assert_eq!(r.status, 422, "{}", r.body);
    let junk = br#"{"id":"y","junk":[1e308, -0.0, 5e-324, 123456789012345678901234567890, 0.1]}"#;
    let r = send(s.addr, "POST", "/v1/requests", Some("t-alice"), Some(junk));
    assert_eq!(r.status, 422, "{}", r.body);
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["bad-count"], 0, "{v}");
    let (ok, out, err) = jitgate(&["audit", "--store", &g.1.url, "verify"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("audit chain intact"), "{out}");
    // The export carries the evidence exactly as stored (what the hash
    // covers), so it can be verified outside jitgate too.
    let stored = records(&g.1);
    let (ok, out, err) = jitgate(&["audit", "--store", &g.1.url, "export"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), stored.len());
    for (line, r) in lines.iter().zip(&stored) {
        let d = &r.stored_data;
        assert!(
            line.contains(&format!("\"data\":{d},")),
            "{d} not in {line}"
        );
    }
}

/// Verify stopped at the first bad record, so a second edit after a first
/// (or after a false alarm) went unreported.
fn an_edit_after_an_edit_is_reported_too(b: Backend) {
    let (g, s) = start(b, "");
    make_requests(&s, 3);
    let n = records(&g.1).len();
    assert!(n >= 8, "{n}");
    tamper(
        &g.1,
        &format!(
            "UPDATE audit SET actor = 'mallory' WHERE seq = 3; UPDATE audit SET data = '{{}}' WHERE seq = {n};"
        ),
    );
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["bad-count"], 2, "{v}");
    assert_eq!(v["bad"][0]["seq"], 3, "{v}");
    assert_eq!(v["bad"][1]["seq"], n, "{v}");
    assert_eq!(
        v["error"], "record 3: content does not match its hash (edited)",
        "the first fault is still under `error`: {v}"
    );
    let (ok, out, _) = jitgate(&["audit", "--store", &g.1.url, "verify"]);
    assert!(!ok);
    assert!(
        out.contains("record 3: content does not match its hash")
            && out.contains(&format!("record {n}: content does not match its hash"))
            && out.contains("BROKEN: 2 fault(s)"),
        "{out}"
    );
}

/// Keys, a config that makes serve write checkpoints, and a running server.
fn start_with_checkpoints(b: Backend) -> (Guard, Server, String, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret, public) = (dir.path().join("audit.key"), dir.path().join("audit.pub"));
    let cps = dir.path().join("checkpoints");
    let (ok, out, err) = jitgate(&[
        "keygen",
        "--secret",
        &secret.display().to_string(),
        "--public",
        &public.display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let store = TestStore::new(b, dir.path());
    let extra = format!(
        "[audit]\ncheckpoint-dir = \"{}\"\ncheckpoint-key = \"{}\"\ncheckpoint-interval-minutes = 1\n",
        cps.display(),
        secret.display()
    );
    let cfg = write_config_with(dir.path(), &store.url, &extra);
    let server = Server::start(&cfg);
    let paths = (
        secret.display().to_string(),
        public.display().to_string(),
        cps.display().to_string(),
    );
    ((dir, store), server, paths.0, paths.1, paths.2)
}

fn checkpoint_files(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0)
}

/// Dropping the newest records leaves an internally consistent chain; a
/// signed checkpoint written outside the store catches it.
fn truncated_chain_is_caught_by_a_signed_checkpoint(b: Backend) {
    let (g, s, secret, public, cps) = start_with_checkpoints(b);
    assert_eq!(checkpoint_files(&cps), 1, "serve writes one at start-up");
    make_requests(&s, 2);
    let (ok, out, err) = jitgate(&[
        "audit",
        "--store",
        &g.1.url,
        "checkpoint",
        "--key",
        &secret,
        "--out",
        &cps,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(checkpoint_files(&cps), 2);
    s.kill();
    let last = records(&g.1).len();
    let verify = || {
        jitgate(&[
            "audit",
            "--store",
            &g.1.url,
            "verify",
            "--checkpoints",
            &cps,
            "--pubkey",
            &public,
        ])
    };
    let (ok, out, err) = verify();
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("up to record {last}")), "{out}");

    tamper(&g.1, &format!("DELETE FROM audit WHERE seq > {}", last - 3));
    let (ok, plain, _) = jitgate(&["audit", "--store", &g.1.url, "verify"]);
    assert!(ok, "the chain alone cannot tell: {plain}");
    let (ok, out, _) = verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "record {last}: missing, but signed checkpoint checkpoint-"
        )) && out.contains(&format!("truncated after record {}", last - 3)),
        "{out}"
    );

    // A forged checkpoint (signed by another key) is an alarm of its own.
    let other = Path::new(&cps).join("..").join("other");
    let (ok, _, err) = jitgate(&[
        "keygen",
        "--secret",
        &format!("{}.key", other.display()),
        "--public",
        &format!("{}.pub", other.display()),
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = jitgate(&[
        "audit",
        "--store",
        &g.1.url,
        "checkpoint",
        "--key",
        &format!("{}.key", other.display()),
        "--out",
        &cps,
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = verify();
    assert!(!ok);
    assert!(out.contains("signature does not verify"), "{out}");
}

/// Rewriting a record and re-hashing every record after it passes the
/// chain check; the checkpoint's hash no longer matches.
fn rewritten_rehashed_chain_is_caught_by_a_signed_checkpoint(b: Backend) {
    let (g, s, secret, public, cps) = start_with_checkpoints(b);
    make_requests(&s, 2);
    let (ok, out, err) = jitgate(&[
        "audit",
        "--store",
        &g.1.url,
        "checkpoint",
        "--key",
        &secret,
        "--out",
        &cps,
    ]);
    assert!(ok, "{out}{err}");
    s.kill();
    let recs = records(&g.1);
    let last = recs.len() as i64;
    // The forger edits record 3 and re-seals it and everything after.
    let mut prev = recs[1].hash.clone();
    let mut sql = String::new();
    for r in &recs[2..] {
        let mut d: AuditDraft = r.draft.clone();
        if r.seq == 3 {
            d.actor = "mallory".into();
        }
        let sealed = jitgate::audit::seal(&prev, r.seq, d);
        sql.push_str(&format!(
            "UPDATE audit SET actor = {}, data = {}, prev_hash = {}, hash = {} WHERE seq = {};\n",
            sql_str(&sealed.draft.actor),
            sql_str(&sealed.stored_data),
            sql_str(&sealed.prev_hash),
            sql_str(&sealed.hash),
            r.seq
        ));
        prev = sealed.hash;
    }
    tamper(&g.1, &sql);
    let (ok, plain, _) = jitgate(&["audit", "--store", &g.1.url, "verify"]);
    assert!(ok, "the re-hashed chain is internally consistent: {plain}");
    let (ok, out, _) = jitgate(&[
        "audit",
        "--store",
        &g.1.url,
        "verify",
        "--checkpoints",
        &cps,
        "--pubkey",
        &public,
    ]);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "record {last}: hash differs from signed checkpoint"
        )),
        "{out}"
    );
}

/// Issue 9 item 9: requester-supplied strings were printed raw by `audit
/// grant`, so a newline forged a line and an escape drove the terminal.
fn requester_strings_cannot_forge_lines_or_escapes_in_audit_grant(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(b, dir.path());
    let store = jitgate::store::open(&t.url).expect("open");
    let evil = "fine\napproved by ciso at 2026-01-01\r\x1b[2K\x1b]0;pwned\x07\u{9b}1m\u{202e}";
    // Set after parsing: what matters here is what reaches the store,
    // whatever request validation lets through today.
    // Built from JSON (fields the grant gains later default) and the
    // hostile strings set afterwards: what matters here is what reaches the
    // store, whatever request validation lets through today.
    let mut g: Grant = serde_json::from_value(json!({
        "id": "g-evil",
        "request": jitgate_tests::file_recovery_json(),
        "body-hash": "x",
        "requested-by": "pipeline",
        "state": "active",
        "outcome": "allow",
        "required": [],
        "decision": {},
        "approvals": [],
        "ttl": 60,
        "revoke-on-ticket-close": false,
        "break-glass": false,
        "created-at": 1,
        "issued-at": 1,
        "expires-at": 60_000,
    }))
    .expect("grant");
    g.request.id = format!("req{evil}");
    g.request.justification = evil.into();
    g.requested_by = evil.into();
    g.decision = json!({"policies": [{"name": evil, "version": "1", "digest": "d", "verdict": "allow", "reason": evil}]});
    let effects = Effects {
        audit: vec![
            AuditDraft::new(1, "request", evil, json!({"why": evil, "del": "\u{7f}"}))
                .grant("g-evil"),
        ],
        ..Effects::default()
    };
    store.create_grant(&g, effects).expect("create");
    drop(store);
    let (ok, out, err) = jitgate(&["audit", "--store", &t.url, "grant", "g-evil"]);
    assert!(ok, "{out}{err}");
    assert!(!out.contains('\r') && !out.contains('\u{1b}') && !out.contains('\u{7}'));
    assert!(!out.contains('\u{9b}') && !out.contains('\u{202e}') && !out.contains('\u{7f}'));
    assert!(
        !out.lines().any(|l| l.starts_with("approved by ciso")),
        "a forged line: {out}"
    );
    assert!(
        out.contains("justification: fine\\napproved by ciso"),
        "{out}"
    );
}

/// Issue 11 item 8: the stored explanation was read back by digging in JSON
/// (`unwrap_or("?")`); it now reads back as the `Decision` that was made,
/// from the audit record and from the grant, and `audit grant` shows it.
fn a_decision_stored_by_the_service_reads_back_as_the_decision(b: Backend) {
    let (g, s) = start(b, "");
    make_requests(&s, 1);
    let rec = records(&g.1)
        .into_iter()
        .find(|r| r.draft.kind == "request" && r.draft.data.get("decision").is_some())
        .expect("a request record with its decision");
    let stored = &rec.draft.data["decision"];
    let d: Decision = serde_json::from_value(stored.clone()).expect("reads as a Decision");
    assert_eq!(&serde_json::to_value(&d).expect("json"), stored);
    assert_eq!(d.outcome, jitgate::Outcome::Allow);
    let id = rec.draft.grant_id.clone().expect("grant id");
    let grant = jitgate::store::open(&g.1.url)
        .expect("open")
        .grant(&id)
        .expect("read")
        .expect("the grant");
    let from_grant: Decision = serde_json::from_value(grant.decision).expect("reads as a Decision");
    assert_eq!(from_grant, d);

    let (ok, out, err) = jitgate(&["audit", "--store", &g.1.url, "grant", &id]);
    assert!(ok, "{out}{err}");
    let fr = d
        .policies
        .iter()
        .find(|p| p.name == "file-recovery")
        .expect("file-recovery ran");
    let line = format!(
        "  file-recovery {} {} → allow: {}",
        fr.version,
        fr.digest,
        fr.reason.as_deref().unwrap_or("")
    );
    assert!(out.lines().any(|l| l == line), "{line} not in {out}");
    assert!(!out.contains("does not read"), "{out}");
    // `--store` after the subcommand works too, with the same output.
    let (ok, after, err) = jitgate(&["audit", "grant", &id, "--store", &g.1.url]);
    assert!(ok, "{err}");
    assert_eq!(after, out);
}

/// The policy part of the explanation holds policy-chosen strings: they
/// are shown, typed, but cannot forge a line or drive the terminal.
fn policy_strings_in_a_stored_decision_cannot_forge_lines_in_audit_grant(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(b, dir.path());
    let store = jitgate::store::open(&t.url).expect("open");
    let evil = "ok\napproved by ciso at 2026-01-01\r\x1b[2K";
    let decision = json!({
        "request-id": "r", "task": "file-recovery", "outcome": "allow", "ttl": 60,
        "revoke-on-ticket-close": false, "reasons": [evil], "micros": 1,
        "policies": [{"name": evil, "version": "1", "digest": "sha256:d", "verdict": "allow",
                      "reason": evil, "logs": [{"level": "warn", "message": evil}],
                      "fuel": 1, "micros": 1}],
    });
    serde_json::from_value::<Decision>(decision.clone()).expect("a whole decision");
    let g: Grant = serde_json::from_value(json!({
        "id": "g-evil", "request": jitgate_tests::file_recovery_json(), "body-hash": "x",
        "requested-by": "pipeline", "state": "active", "outcome": "allow", "required": [],
        "decision": decision, "approvals": [], "ttl": 60, "revoke-on-ticket-close": false,
        "break-glass": false, "created-at": 1, "issued-at": 1, "expires-at": 60_000,
    }))
    .expect("grant");
    store.create_grant(&g, Effects::default()).expect("create");
    drop(store);
    let (ok, out, err) = jitgate(&["audit", "grant", "g-evil", "--store", &t.url]);
    assert!(ok, "{out}{err}");
    assert!(!out.contains('\r') && !out.contains('\u{1b}'), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("approved by ciso")),
        "a forged line: {out}"
    );
    assert!(
        out.contains(
            "  ok\\napproved by ciso at 2026-01-01\\r\\u{1b}[2K 1 sha256:d → allow: ok\\n"
        ),
        "{out}"
    );
}

/// Issue 9 item 8: a password given as `?password=` in a PostgreSQL URL
/// was printed on stdout and kept in the config-load audit record, which
/// can never be removed.
#[test]
fn postgres_password_in_the_store_url_is_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestStore::new(Backend::Postgres, dir.path());
    // The test server trusts local connections, so any password works.
    let url = t.url.replacen(
        "postgres://postgres@",
        "postgres://postgres:userinfo-SECRET@",
        1,
    ) + "?application_name=jg&password=query-SECRET";
    assert!(url.contains("userinfo-SECRET@"), "{url}");
    let cfg = write_config_with(dir.path(), &url, "");
    let s = Server::start(&cfg);
    make_requests(&s, 1);
    let audit = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).body;
    let config_load = audit.find("config-load").map(|_| ()).is_some();
    assert!(config_load, "{audit}");
    assert!(!audit.contains("SECRET"), "{audit}");
    let output = s.output.lock().map(|o| o.join("\n")).unwrap_or_default();
    assert!(output.contains("password=REDACTED"), "{output}");
    assert!(!output.contains("SECRET"), "{output}");
    drop(s);
    let (ok, out, err) = jitgate(&["audit", "--store", &url, "export"]);
    assert!(ok, "{err}");
    assert!(!out.contains("SECRET") && !err.contains("SECRET"));
    // And when the store cannot be reached, the error does not show it either.
    let down = "postgres://postgres:userinfo-SECRET@127.0.0.1:1/x?password=query-SECRET";
    let (ok, out, err) = jitgate(&["audit", "--store", down, "verify"]);
    assert!(!ok);
    assert!(
        !out.contains("SECRET") && !err.contains("SECRET"),
        "{out}{err}"
    );
    assert!(
        err.contains("postgres://postgres@127.0.0.1:1/x?password=REDACTED"),
        "{err}"
    );
}

both_stores!(
    a_decision_stored_by_the_service_reads_back_as_the_decision,
    policy_strings_in_a_stored_decision_cannot_forge_lines_in_audit_grant,
    invalid_body_with_a_non_round_tripping_float_does_not_fake_tampering,
    an_edit_after_an_edit_is_reported_too,
    truncated_chain_is_caught_by_a_signed_checkpoint,
    rewritten_rehashed_chain_is_caught_by_a_signed_checkpoint,
    requester_strings_cannot_forge_lines_or_escapes_in_audit_grant,
);
