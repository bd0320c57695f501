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

/// `jitgate` run in `dir` with `CARGO_TARGET_DIR` set to `target` (the
/// suite's own target folder: the scaffold's wasm build shares the
/// dependencies `./dev policies` already compiled).
fn jitgate_in(dir: &std::path::Path, target: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run jitgate");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn copy_file(from: &std::path::Path, to: &std::path::Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

/// The SDK carries its own copy of the contract (so it can be used by git
/// URL, vendored or published): it must be the contract, byte for byte.
#[test]
fn the_sdks_copy_of_the_contract_is_the_contract() {
    let repo = std::fs::read_to_string(root().join("wit/policy.wit")).expect("wit/policy.wit");
    let sdk = std::fs::read_to_string(root().join("guest-sdk/wit/policy.wit"))
        .expect("guest-sdk/wit/policy.wit");
    assert!(
        repo == sdk,
        "guest-sdk/wit/policy.wit differs from wit/policy.wit: copy it over (cp wit/policy.wit guest-sdk/wit/)"
    );
    let names: Vec<_> = std::fs::read_dir(root().join("wit"))
        .expect("wit/")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "wit/ gained a file the SDK does not copy: {names:?}"
    );
}

/// An author outside this repository: `jitgate new` → `cargo test` →
/// `jitgate build` → `jitgate test` → `jitgate explore`, with no edit; then an edited source
/// is refused until rebuilt, and a rule broken in the source is caught by
/// the scaffold's own fixtures.
#[test]
fn new_scaffolds_a_policy_crate_outside_the_repo_that_builds_tests_and_refuses_a_stale_module() {
    let outside = tempfile::tempdir().expect("tempdir");
    let target = root().join("target").join("scaffold");
    // The SDK as a vendored copy outside the repository: it must build
    // with no workspace to inherit from and no `../wit` to read.
    let sdk = outside.path().join("vendor/jitgate-sdk");
    for rel in ["Cargo.toml", "wit/policy.wit"] {
        copy_file(&root().join("guest-sdk").join(rel), &sdk.join(rel));
    }
    for entry in std::fs::read_dir(root().join("guest-sdk/src")).expect("sdk src") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_owned();
        copy_file(&path, &sdk.join("src").join(name));
    }
    let sdk_arg = sdk.to_str().expect("utf-8 path");
    let (code, out) = jitgate_in(
        outside.path(),
        &target,
        &["new", "db-admin", "--task", "db-admin", "--sdk", sdk_arg],
    );
    assert_eq!(code, 0, "{out}");
    let krate = outside.path().join("db-admin");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "fixtures/db-admin.yaml",
        "properties.yaml",
        ".gitignore",
    ] {
        assert!(krate.join(f).is_file(), "{f} not written: {out}");
    }
    // A second `new` never overwrites.
    let (code, out) = jitgate_in(outside.path(), &target, &["new", "db-admin"]);
    assert_ne!(code, 0);
    assert!(out.contains("already exists"), "{out}");
    let (code, out) = jitgate_in(outside.path(), &target, &["new", "Db_Admin"]);
    assert_ne!(code, 0);
    assert!(out.contains("lowercase"), "{out}");

    // The scaffold's native unit tests pass as written.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let unit = Command::new(&cargo)
        .args(["test", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo test");
    assert!(
        unit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );

    let (code, out) = jitgate_in(&krate, &target, &["build"]);
    assert_eq!(code, 0, "{out}");
    let module = krate.join("target/policies/db-admin.wasm");
    assert!(module.is_file(), "{out}");
    let (code, out) = jitgate_in(&krate, &target, &["test", "."]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    // Every verdict of the scaffold is reached by one of its cases.
    let (code, out) = jitgate_in(
        &krate,
        &target,
        &["test", ".", "--coverage", "--min", "100"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("coverage total: 100.0 % (3 of 3 verdict lines reached)"),
        "{out}"
    );
    // Its properties hold as written, each exercised.
    let (code, out) = jitgate_in(
        &krate,
        &target,
        &[
            "explore",
            ".",
            "--properties",
            "properties.yaml",
            "--seed",
            "1",
            "--requests",
            "2000",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 held, 0 failed; seed 1,"), "{out}");

    // The author edits the rules: the old module is refused, not tested.
    let lib = krate.join("src/lib.rs");
    let src = std::fs::read_to_string(&lib).expect("lib.rs");
    let broken = src.replace("has_role(\"helpdesk\")", "has_role(\"sre\")");
    assert_ne!(src, broken, "the scaffold's role check moved");
    // A later mtime than the build, whatever the file system's resolution.
    std::fs::write(&lib, broken).expect("edit");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&lib)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    let (code, out) = jitgate_in(&krate, &target, &["test", "."]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is older than its source"), "{out}");
    assert!(out.contains("src/lib.rs"), "{out}");

    // Rebuilt, the fixtures catch the broken rule.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let (code, out) = jitgate_in(&krate, &target, &["build"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = jitgate_in(&krate, &target, &["test", "."]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("helpdesk on an active ticket is allowed"),
        "{out}"
    );
}

/// Exact and negative reason matches, per-policy verdicts and operator
/// settings in a fixture header, each able to fail on its own.
#[test]
fn fixture_reasons_exact_negative_matches_policy_verdicts_and_settings_fail_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = dir.path().join("fixtures");
    std::fs::create_dir(&fx).expect("mkdir");
    let p = policy_dir();
    let header = format!(
        "policies: [{p}/baseline.wasm, {p}/file-recovery.wasm, {p}/saas-admin.wasm]\n\
         settings:\n  tasks:\n    file-recovery: {{cap: 900}}\n\
         defaults:\n  subject: {{id: alice, kind: human, roles: [helpdesk]}}\n  task: file-recovery\n  resource: fs\n  entitlement: op\n  justification: restore the deleted share\n  requested-ttl: 1800\n  ticket: {{id: INC-1, state: open, priority: 3, assignee: alice, opened-at: 2026-11-25T09:00:00Z}}\n  now: 2026-11-25T10:00:00Z\n\
         cases:\n",
        p = p.display()
    );
    let cases = "  - name: good capped by the task setting
    expect:
      outcome: allow
      ttl: 900
      no-reason-contains: [break-glass]
      policies: {file-recovery: allow, saas-admin: not-selected}
  - name: bad ttl ignores the setting
    expect: {outcome: allow, ttl: 1800}
  - name: bad exact reasons
    expect: {outcome: allow, reasons-exact: [\"file-recovery: something else\"]}
  - name: bad negative match
    expect: {outcome: allow, no-reason-contains: [helpdesk file recovery]}
  - name: bad policy verdict
    expect: {outcome: allow, policies: {file-recovery: deny}}
  - name: bad policy on an invalid request
    request: {requested-ttl: 0}
    expect: {outcome: invalid, field: requested-ttl, policies: {file-recovery: not-selected}}
";
    std::fs::write(fx.join("ext.yaml"), format!("{header}{cases}")).expect("write");
    let (code, out, _) = jitgate(&["test", dir.path().to_str().unwrap_or(".")]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("1 passed, 5 failed"), "{out}");
    for (case, key) in [
        ("bad ttl ignores the setting", "ttl"),
        ("bad exact reasons", "reasons-exact"),
        (
            "bad negative match",
            "a reason contains `helpdesk file recovery`",
        ),
        (
            "bad policy verdict",
            "policies.file-recovery (expected deny, got allow)",
        ),
        ("bad policy on an invalid request", "never reached a policy"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(case))
            .unwrap_or_else(|| panic!("{case} not reported: {out}"));
        assert!(line.contains(key), "{case}: {line}");
    }
    // The exact reasons of the passing case, as the engine states them.
    std::fs::write(
        fx.join("ext.yaml"),
        format!(
            "{header}  - name: exact\n    expect:\n      outcome: allow\n      reasons-exact: [\"file-recovery: helpdesk file recovery for ticket INC-1\"]\n"
        ),
    )
    .expect("write");
    let (code, out, _) = jitgate(&["test", dir.path().to_str().unwrap_or(".")]);
    assert_eq!(code, 0, "{out}");
    // A setting a deployment could not have fails the file, naming the key.
    std::fs::write(
        fx.join("ext.yaml"),
        header.replace("{cap: 900}", "{cap: 0}") + "  - name: x\n    expect: {outcome: allow}\n",
    )
    .expect("write");
    let (code, out, _) = jitgate(&["test", dir.path().to_str().unwrap_or(".")]);
    assert_ne!(code, 0);
    assert!(out.contains("settings.tasks.file-recovery.cap"), "{out}");
}
