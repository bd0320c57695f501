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
    assert_eq!(code, 2);
    assert!(err.contains("requested-ttl"), "{err}");
}

#[test]
fn inspect_shows_info_digest_and_imports() {
    let p = policy("saas-admin");
    let (code, out, err) = jitgate(&["inspect", p.to_str().unwrap_or(".")]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&p).expect("read");
    assert!(
        out.contains(&jitgate::policy::loader::digest(&bytes)),
        "{out}"
    );
    assert!(
        out.contains(&format!("size:     {} bytes", bytes.len())),
        "{out}"
    );
    assert!(
        out.contains("imports:  jitgate:policy/host@0.1.0, jitgate:policy/types@0.1.0"),
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
