//! `jitgate test --coverage`: which verdict constructors the fixtures
//! reach, and a coverage build that never runs outside coverage mode.

use jitgate::policy::LoadErrorKind;
use jitgate::{Engine, EngineConfig};
use jitgate_tests::wat::WatGuest;
use jitgate_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `jitgate` in `dir` with `CARGO_TARGET_DIR` the suite's target folder
/// (coverage builds share `jitgate-coverage/` there); status, stdout,
/// stderr.
fn jitgate_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .arg("--no-cache")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", suite_target())
        .output()
        .expect("run jitgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn suite_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn json_file(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("coverage JSON written");
    serde_json::from_str(&text).expect("coverage JSON parses")
}

fn rows(ranges: &serde_json::Value) -> Vec<u64> {
    let mut out = Vec::new();
    for r in ranges.as_array().expect("ranges are an array") {
        let (s, e) = (
            r["start"]["row"].as_u64().expect("start.row"),
            r["end"]["row"].as_u64().expect("end.row"),
        );
        out.extend(s..=e);
    }
    out
}

/// The line of the first line of `src` containing `needle`, 1-based.
fn line_of(src: &str, needle: &str) -> u64 {
    src.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in the source"))
}

#[test]
fn example_policies_reach_every_verdict_line() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json = out_dir.path().join("coverage.json");
    let dir = policy_dir();
    let (code, out, err) = jitgate_in(
        &root(),
        &[
            "test",
            "policies/",
            "--policy-dir",
            dir.to_str().expect("utf-8"),
            "--coverage",
            "--min",
            "100",
            "--coverage-json",
            json.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("coverage total: 100.0 %"), "{out}");
    let report = json_file(&json);
    assert_eq!(report["coverage"], 100.0, "{report:#}");
    assert_eq!(report["not_covered_lines"], 0, "{report:#}");
    let files = report["files"].as_object().expect("files");
    assert_eq!(files.len(), 6, "{:?}", files.keys());
    for (name, f) in files {
        assert!(
            name.starts_with("policies/") && name.ends_with("/src/lib.rs"),
            "{name}"
        );
        assert_eq!(f["coverage"], 100.0, "{name}: {f:#}");
        assert!(
            f["covered_lines"].as_u64().expect("covered_lines") >= 2,
            "{name}"
        );
    }
    // file-recovery's four verdicts, at the lines they are written on.
    let src = std::fs::read_to_string(root().join("policies/file-recovery/src/lib.rs"))
        .expect("file-recovery source");
    let fr = &files["policies/file-recovery/src/lib.rs"];
    let expected: Vec<u64> = [
        "requires the helpdesk role",
        "requires an open or in-progress ticket",
        "return Verdict::deny(format!(",
        "Verdict::allow_until_ticket_closed(",
    ]
    .iter()
    .map(|n| {
        let l = line_of(&src, n);
        // The constructor call starts the line or the one before it.
        if src
            .lines()
            .nth(l as usize - 1)
            .is_some_and(|t| t.contains("Verdict::"))
        {
            l
        } else {
            l - 1
        }
    })
    .collect();
    assert_eq!(rows(&fr["covered"]), expected, "{fr:#}");
    assert_eq!(fr["not_covered"], serde_json::json!([]));
}

/// A copy of file-recovery as a crate of its own (its folder named
/// `file-recovery`, which is how its fixture names it; its lib named
/// otherwise, so its build never overwrites the example's), with the
/// fixture cases that reach its assignee rule taken out.
fn file_recovery_without_the_assignee_cases(dir: &Path) -> PathBuf {
    let krate = dir.join("file-recovery");
    std::fs::create_dir_all(krate.join("src")).expect("src");
    std::fs::create_dir_all(krate.join("fixtures")).expect("fixtures");
    let sdk = root().join("guest-sdk");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"file-recovery-copy\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\nname = \"file_recovery_copy\"\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\njitgate-sdk = {{ path = {:?} }}\n\n[workspace]\n\n\
             [profile.policy]\ninherits = \"release\"\nopt-level = 3\nlto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = true\ndebug = false\n",
            sdk.display().to_string()
        ),
    )
    .expect("manifest");
    // The workspace's lock: the same dependency versions, nothing fetched.
    std::fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).expect("lock");
    std::fs::copy(
        root().join("policies/file-recovery/src/lib.rs"),
        krate.join("src/lib.rs"),
    )
    .expect("lib.rs");
    let fixture =
        std::fs::read_to_string(root().join("policies/file-recovery/fixtures/file-recovery.yaml"))
            .expect("fixture");
    let mut parts = fixture.split("\n  - name: ");
    let mut kept = parts.next().unwrap_or_default().to_string();
    let mut removed = 0;
    for case in parts {
        if case.contains("assignee: bob") {
            removed += 1;
        } else {
            kept.push_str("\n  - name: ");
            kept.push_str(case);
        }
    }
    assert_eq!(removed, 2, "the fixture's assignee cases changed");
    std::fs::write(krate.join("fixtures/file-recovery.yaml"), kept).expect("fixture");
    krate
}

#[test]
fn a_removed_case_leaves_its_line_not_covered_fails_min_and_its_build_is_refused_outside_coverage()
{
    let tmp = tempfile::tempdir().expect("tempdir");
    let krate = file_recovery_without_the_assignee_cases(tmp.path());
    let src = std::fs::read_to_string(krate.join("src/lib.rs")).expect("lib.rs");
    let assignee = line_of(&src, "return Verdict::deny(format!(");
    let dir = policy_dir();
    let json = tmp.path().join("coverage.json");
    let args = [
        "test",
        ".",
        "--policy-dir",
        dir.to_str().expect("utf-8"),
        "--coverage",
        "--coverage-json",
        json.to_str().expect("utf-8"),
    ];
    // Without --min the fixtures pass: exit 0, the gap reported.
    let (code, out, err) = jitgate_in(&krate, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "not reached  src/lib.rs:{assignee}  Verdict::deny"
        )),
        "{out}"
    );
    assert!(
        out.contains("coverage total: 75.0 % (3 of 4 verdict lines reached)"),
        "{out}"
    );
    let report = json_file(&json);
    let f = &report["files"]["src/lib.rs"];
    assert_eq!(rows(&f["not_covered"]), [assignee], "{report:#}");
    assert_eq!(f["covered_lines"], 3);
    assert_eq!(f["not_covered_lines"], 1);
    assert_eq!(f["coverage"], 75.0);
    assert_eq!(report["coverage"], 75.0);

    // --min 100 fails with exit 3, saying why.
    let mut with_min = args.to_vec();
    with_min.extend(["--min", "100"]);
    let (code, out, err) = jitgate_in(&krate, &with_min);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("below --min 100"), "{out}");
    // --coverage-json - : stdout is the JSON alone.
    let mut to_stdout = args[..5].to_vec();
    to_stdout.extend(["--coverage-json", "-"]);
    let (code, out, err) = jitgate_in(&krate, &to_stdout);
    assert_eq!(code, 0, "{out}{err}");
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    assert_eq!(parsed["not_covered_lines"], 1);
    assert!(err.contains("coverage total"), "{err}");

    // The coverage build it ran is never served or evaluated.
    let module =
        suite_target().join("jitgate-coverage/wasm32-wasip2/policy/file_recovery_copy.wasm");
    assert!(module.is_file(), "{}", module.display());
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir");
    std::fs::copy(&module, served.join("file-recovery.wasm")).expect("copy");
    let (code, out, err) = jitgate_in(
        &root(),
        &[
            "eval",
            "--policies",
            served.to_str().expect("utf-8"),
            "--request",
            "examples/request.json",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("is a coverage build"), "{err}");
    let (_, out, err) = jitgate_in(
        &root(),
        &[
            "inspect",
            served.join("file-recovery.wasm").to_str().expect("utf-8"),
        ],
    );
    assert!(
        format!("{out}{err}").contains("is a coverage build"),
        "{out}{err}"
    );
    let mut engine = Engine::new(EngineConfig::default()).expect("engine");
    let e = engine
        .load_dir(&served)
        .expect_err("a coverage build is refused");
    assert!(matches!(e.kind, LoadErrorKind::CoverageBuild), "{e}");
    // A plain `jitgate test` (no --coverage) refuses it too.
    let fx = tmp.path().join("plain/fixtures");
    std::fs::create_dir_all(&fx).expect("mkdir");
    std::fs::write(
        fx.join("c.yaml"),
        format!(
            "policies: [{}]\ncases:\n  - name: any\n    request: {{task: file-recovery}}\n    expect: {{outcome: deny}}\n",
            served.join("file-recovery.wasm").display()
        ),
    )
    .expect("fixture");
    let (code, out, err) = jitgate_in(&root(), &["test", fx.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("is a coverage build"), "{out}");
}

fn forger(marked: bool) -> Vec<u8> {
    let section = if marked {
        r#"(@custom "jitgate-coverage" "jitgate-sdk coverage build")"#
    } else {
        ""
    };
    WatGuest {
        task: "file-recovery",
        vars: &[("{SECTION}", section)],
        ..WatGuest::new("coverage-forge")
    }
    .component()
}

fn engine(coverage: bool) -> Engine {
    Engine::new(EngineConfig {
        coverage,
        instance_pool: None,
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// A policy that logs a coverage marker itself (with a terminal escape in
/// it) fakes nothing: outside coverage mode, or from a module that is not
/// a coverage build, the line is an ordinary log line, escaped; and only a
/// coverage build, in coverage mode, has its markers taken as coverage.
#[test]
fn a_forged_coverage_marker_counts_only_from_a_coverage_build_in_coverage_mode() {
    let req = task_request("file-recovery");
    for coverage in [false, true] {
        let mut e = engine(coverage);
        e.load_bytes(Path::new("forger.wasm"), &forger(false))
            .expect("an ordinary module loads");
        let d = e.decide(&req).expect("decision");
        let logs = &d.policies[0].logs;
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0]
                .message
                .starts_with("jitgate-coverage/1 7:5 src/lib.rs")
        );
        assert!(!logs[0].message.contains('\u{1b}'), "{:?}", logs[0].message);
        assert!(e.coverage_hits().is_empty(), "coverage={coverage}");
    }
    // The marked build: refused in production, diverted in coverage mode.
    let e = engine(false)
        .load_bytes(Path::new("forger.wasm"), &forger(true))
        .map(|_| ())
        .expect_err("a coverage build is refused outside coverage mode");
    assert!(matches!(e.kind, LoadErrorKind::CoverageBuild), "{e}");
    assert!(e.to_string().contains("jitgate test --coverage"), "{e}");
    let mut e = engine(true);
    e.load_bytes(Path::new("forger.wasm"), &forger(true))
        .expect("coverage mode loads a coverage build");
    let d = e.decide(&req).expect("decision");
    assert!(d.policies[0].logs.is_empty(), "{:?}", d.policies[0].logs);
    let hits = e.coverage_hits();
    let marks: Vec<&String> = hits.values().flatten().collect();
    assert_eq!(marks, ["7:5 src/lib.rs\u{1b}[2J"]);
    // Its decision, and so its audit record, carry no marker.
    let json = serde_json::to_string(&d).expect("decision JSON");
    assert!(!json.contains("jitgate-coverage"), "{json}");
}

/// Coverage builds are unsigned: under `[trust]`, `--coverage` refuses to
/// run at all (before building anything) rather than load them.
#[test]
fn coverage_refuses_to_run_under_a_trust_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret, public) = (dir.path().join("k.pem"), dir.path().join("k.pub"));
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let (code, out, err) = jitgate_in(
        dir.path(),
        &["keygen", "--secret", &s(&secret), "--public", &s(&public)],
    );
    assert_eq!(code, 0, "{out}{err}");
    let cfg = dir.path().join("jitgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "store = \"{}\"\n[trust]\npublic-keys = [\"{}\"]\n",
            s(&dir.path().join("j.db")),
            s(&public)
        ),
    )
    .expect("config");
    let (code, out, err) = jitgate_in(
        &root(),
        &["test", "policies/", "--coverage", "--config", &s(&cfg)],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("cannot run under a `[trust]` config"), "{err}");
    assert!(!err.contains("Compiling"), "nothing is built: {err}");
}
