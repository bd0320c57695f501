//! The `jitgate` binary: eval, test and inspect as a user runs them.

use jitgate_tests::*;
use std::process::Command;

fn jitgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .arg("--no-cache")
        .current_dir(root())
        .output()
        .expect("run jitgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn example_fixtures_all_pass() {
    let dir = policy_dir();
    let (code, out, err) = jitgate(&[
        "test",
        "policies/",
        "--policy-dir",
        dir.to_str().unwrap_or("."),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let last = out.lines().last().unwrap_or_default();
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| {
            Some((
                p.parse::<usize>().ok()?,
                f.strip_suffix(" failed")?.parse::<usize>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no summary line in {out}"));
    assert_eq!(failed, 0);
    assert!(passed >= 60, "only {passed} fixture cases");
}

#[test]
fn failing_fixture_is_reported_with_file_line_and_both_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = dir.path().join("fixtures");
    std::fs::create_dir(&fx).expect("mkdir");
    let policies = policy_dir();
    std::fs::write(
        fx.join("wrong.yaml"),
        format!(
            "policies: [{p}/file-recovery.wasm]\n\
             defaults:\n  subject: {{id: alice, kind: human, roles: [helpdesk]}}\n  task: file-recovery\n  resource: fs\n  entitlement: op\n  justification: restore it now\n  requested-ttl: 600\n  now: 2026-11-25T10:00:00Z\n\
             cases:\n  - name: no ticket but expected allow\n    expect: {{outcome: allow}}\n  - name: no ticket denies\n    expect: {{outcome: deny, reasons: [requires an open]}}\n",
            p = policies.display()
        ),
    )
    .expect("write");
    let (code, out, _) = jitgate(&["test", dir.path().to_str().unwrap_or(".")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("wrong.yaml:11: no ticket but expected allow: expected allow, got deny"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");

    // --filter runs only the matching case.
    let (code, out, _) = jitgate(&[
        "test",
        dir.path().to_str().unwrap_or("."),
        "--filter",
        "denies",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with("1 passed, 0 failed"), "{out}");
}

#[test]
fn fixture_with_unknown_key_fails_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = dir.path().join("fixtures");
    std::fs::create_dir(&fx).expect("mkdir");
    std::fs::write(
        fx.join("typo.yaml"),
        "policies: [file-recovery]\ncases:\n  - name: a\n    expect: {outcome: allow, tll: 5}\n",
    )
    .expect("write");
    let (code, out, _) = jitgate(&["test", dir.path().to_str().unwrap_or(".")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("typo.yaml") && out.contains("unknown field `tll`") && out.contains("line 4"),
        "{out}"
    );
}

#[test]
fn eval_explains_in_text_and_json() {
    let dir = policy_dir();
    let d = dir.to_str().unwrap_or(".");
    let (code, out, err) = jitgate(&[
        "eval",
        "--policies",
        d,
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("decision: ALLOW  ttl 1800 s"), "{out}");
    assert!(
        out.contains("file-recovery") && out.contains("sha256:"),
        "{out}"
    );

    let (code, out, err) = jitgate(&[
        "eval",
        "--policies",
        d,
        "--request",
        "examples/request.json",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["outcome"], "allow");
    assert_eq!(v["policies"].as_array().map(Vec::len), Some(3));
}

#[test]
fn eval_rejects_a_bad_request_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut v = file_recovery_json();
    v["requested-ttl"] = "long".into();
    let req = dir.path().join("r.json");
    std::fs::write(&req, v.to_string()).expect("write");
    let pd = policy_dir();
    let (code, _, err) = jitgate(&[
        "eval",
        "--policies",
        pd.to_str().unwrap_or("."),
        "--request",
        req.to_str().unwrap_or("."),
    ]);
    assert_eq!(code, 4);
    assert!(err.contains("requested-ttl"), "{err}");
}

/// Run `eval` on the example policies with `request` written to a file.
fn eval_request(request: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let req = dir.path().join("r.json");
    std::fs::write(&req, request).expect("write");
    let pd = policy_dir();
    let mut args = vec![
        "eval",
        "--policies",
        pd.to_str().unwrap_or("."),
        "--request",
        req.to_str().unwrap_or("."),
    ];
    args.extend_from_slice(extra);
    jitgate(&args)
}

/// Scripts branch on `eval`'s exit status: a deny that exits 0 reads as
/// an allow.
#[test]
fn eval_exit_status_is_the_outcome() {
    let allow = file_recovery_json();
    let mut approval = file_recovery_json();
    approval["now"] = (WED_10_UTC + 9 * 3600).into(); // 20:00 local
    let mut deny = file_recovery_json();
    deny["subject"]["roles"] = serde_json::json!(["sre"]);
    for (v, code, outcome) in [
        (&allow, 0, "ALLOW"),
        (&deny, 2, "DENY"),
        (&approval, 3, "REQUIRE-APPROVAL"),
    ] {
        let (got, out, err) = eval_request(&v.to_string(), &[]);
        assert_eq!(got, code, "{outcome}: {out}{err}");
        assert!(out.starts_with(&format!("decision: {outcome}")), "{out}");
        let (got, out, err) = eval_request(&v.to_string(), &["--json"]);
        assert_eq!(got, code, "{outcome} --json: {err}");
        // The JSON explanation reads back as a typed decision.
        let d: jitgate::Decision = serde_json::from_str(&out).expect("a Decision");
        assert_eq!(d.outcome.as_str().to_uppercase(), outcome);
    }
}

#[test]
fn eval_invalid_request_exits_4_naming_what_is_wrong() {
    let mut unknown_task = file_recovery_json();
    unknown_task["task"] = "no-such-task".into();
    let mut no_subject = file_recovery_json();
    if let Some(o) = no_subject.as_object_mut() {
        o.remove("subject");
    }
    for (text, names) in [
        ("{not json".to_string(), "is not JSON"),
        (unknown_task.to_string(), "task"),
        (no_subject.to_string(), "subject"),
    ] {
        let (code, out, err) = eval_request(&text, &[]);
        assert_eq!(code, 4, "{text}: {out}{err}");
        assert!(
            err.contains("invalid request") && err.contains(names),
            "{err}"
        );
        assert!(out.is_empty(), "nothing was decided: {out}");
    }
}

/// 2 means deny, so nothing that is not a decision may exit 2.
#[test]
fn eval_operational_errors_exit_1_not_2() {
    let (code, _, err) = jitgate(&[
        "eval",
        "--policies",
        policy_dir().to_str().unwrap_or("."),
        "--request",
        "examples/no-such-request.json",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no-such-request.json"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm").expect("write");
    let (code, _, err) = jitgate(&[
        "eval",
        "--policies",
        bad.to_str().unwrap_or("."),
        "--request",
        "examples/request.json",
    ]);
    assert_eq!(code, 1, "a policy that does not load: {err}");
    // Bad usage (clap's own status is 2).
    let (code, _, err) = jitgate(&["eval", "--policies", "x"]);
    assert_eq!(code, 1, "missing --request: {err}");
    assert!(err.contains("--request"), "{err}");
    let (code, _, err) = jitgate(&["eval", "--request", "examples/request.json", "--bogus"]);
    assert_eq!(code, 1, "unknown flag: {err}");
    // Other commands keep clap's status for bad usage.
    let (code, _, _) = jitgate(&["inspect"]);
    assert_eq!(code, 2);
}

#[test]
fn eval_help_documents_the_exit_status() {
    let (code, out, _) = jitgate(&["eval", "--help"]);
    assert_eq!(code, 0);
    for line in [
        "0  allow",
        "1  error",
        "2  deny",
        "3  require-approval",
        "4  invalid request",
    ] {
        assert!(out.contains(line), "{line} missing from {out}");
    }
}

#[test]
fn inspect_shows_info_digest_and_imports() {
    let p = policy("saas-admin");
    let (code, out, err) = jitgate(&["inspect", p.to_str().unwrap_or(".")]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&p).expect("read");
    assert!(out.contains(&jitgate::policy::digest(&bytes)), "{out}");
    assert!(
        out.contains(&format!("size:     {} bytes", bytes.len())),
        "{out}"
    );
    assert!(
        out.contains("imports:  jitgate:policy/host@0.2.0, jitgate:policy/types@0.2.0"),
        "{out}"
    );
    assert!(
        out.contains("name:     saas-admin") && out.contains("max-ttl:  1800 s"),
        "{out}"
    );

    let g = guest("wasi-filesystem");
    let (code, out, _) = jitgate(&["inspect", g.to_str().unwrap_or(".")]);
    assert_eq!(code, 2);
    assert!(
        out.contains("wasi:filesystem/") && out.contains("refused:"),
        "{out}"
    );
}

/// The README's `jitgate audit verify --store …` failed with `unexpected
/// argument '--store'`: the store is now taken before or after the
/// subcommand, and both forms mean the same.
#[test]
fn audit_store_is_accepted_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.db");
    let m = missing.to_str().unwrap_or(".");
    let (before, _, err_before) = jitgate(&["audit", "--store", m, "verify"]);
    let (after, _, err_after) = jitgate(&["audit", "verify", "--store", m]);
    assert!(err_after.contains("no such store"), "{err_after}");
    assert!(!err_after.contains("unexpected argument"), "{err_after}");
    assert_eq!((before, err_before), (after, err_after));
    assert!(!missing.exists(), "reading must not create a store");
}
