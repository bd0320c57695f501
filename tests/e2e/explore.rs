//! `jitgate explore`: the example policies' properties hold; a bug planted
//! in a copy of a policy is found, shrunk, and printed as a fixture that
//! `jitgate test` reproduces; bad properties files are refused naming the
//! field; the same seed gives the same report.

use jitgate_tests::*;
use std::path::Path;
use std::process::Command;

fn jitgate_at(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jitgate_bin())
        .args(args)
        .current_dir(dir)
        .env("JITGATE_POLICY_DIR", policy_dir())
        .output()
        .expect("run jitgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn jitgate(args: &[&str]) -> (i32, String, String) {
    jitgate_at(&root(), args)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The report without its timing, for comparing two runs.
fn untimed(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("seconds");
        o.remove("requests-per-minute");
    }
    v
}

#[test]
fn the_example_properties_hold_over_every_set_the_fixtures_test() {
    let (code, out, err) = jitgate(&[
        "explore",
        "policies/",
        "--properties",
        "policies/properties.yaml",
        "--seed",
        "7",
        "--requests",
        "7000",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["holds"], true, "{out}");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["requests"], 7000);
    let sets = v["sets"].as_array().expect("sets");
    assert!(sets.len() >= 7, "{out}");
    for s in sets {
        assert!(s["requests"].as_u64() >= Some(900), "{s}");
    }
    let props = v["properties"].as_array().expect("properties");
    assert!(props.len() >= 20, "{out}");
    for p in props {
        // Every property was exercised, none broken.
        assert!(p["matched"].as_u64() > Some(20), "{p}");
        assert_eq!(p["violations"], 0, "{p}");
    }
}

#[test]
fn the_text_summary_gives_seed_requests_seconds_and_rate() {
    let (code, out, err) = jitgate(&[
        "explore",
        "policies/",
        "--properties",
        "policies/properties.yaml",
        "--seed",
        "3",
        "--requests",
        "700",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.contains("0 failed; seed 3,"), "{last}");
    assert!(last.contains("700 requests in "), "{last}");
    assert!(last.contains("requests/minute"), "{last}");
    assert!(
        out.contains("holds  never (a service identity never breaks the glass; applied to "),
        "{out}"
    );
}

/// A property that does not hold, so the report carries a counterexample.
const BROKEN: &str = "properties:
  - name: everything is allowed
    always: {outcome: allow}
  - name: break-glass grants at most an hour
    always: {ttl: {max: 3600}, when: {task: break-glass}}
";

#[test]
fn the_same_seed_gives_the_same_requests_and_report_on_any_number_of_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let props = dir.path().join("p.yaml");
    std::fs::write(&props, BROKEN).expect("write");
    let p = props.to_str().expect("utf-8");
    let run = |seed: &str, threads: &str| {
        let (code, out, err) = jitgate(&[
            "explore",
            "policies/",
            "--properties",
            p,
            "--seed",
            seed,
            "--requests",
            "1500",
            "--threads",
            threads,
            "--json",
        ]);
        assert_eq!(code, 1, "{out}{err}");
        untimed(json(&out))
    };
    let a = run("11", "2");
    assert_eq!(a, run("11", "1"), "the thread count changed the report");
    assert_eq!(a, run("11", "2"));
    assert_ne!(a, run("12", "2"));
    let broken = &a["properties"][0];
    assert_eq!(broken["holds"], false);
    let c = &broken["counterexample"];
    assert_ne!(c["outcome"], "allow", "{c}");
    assert!(
        c["fixture"].as_str().is_some_and(|f| f.contains("cases:")),
        "{c}"
    );
    assert_eq!(a["properties"][1]["holds"], true, "{a}");
}

/// An author copies file-recovery and raises its cap to two hours: the
/// composed decision then grants more than the hour the property allows.
/// explore finds it, shrinks it to the smallest TTL that shows it
/// (3601 s), and the fixture it prints reproduces the decision under
/// `jitgate test`; with the expect the author wants, that fixture fails.
#[test]
fn a_bug_planted_in_a_copy_of_a_policy_is_found_shrunk_and_reproduced_by_its_fixture() {
    let outside = tempfile::tempdir().expect("tempdir");
    let target = root().join("target").join("scaffold");
    let run_in = |dir: &Path, args: &[&str]| {
        let out = Command::new(jitgate_bin())
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .env("JITGATE_POLICY_DIR", policy_dir())
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
    };
    let (code, out) = run_in(
        outside.path(),
        &["new", "file-recovery", "--task", "file-recovery"],
    );
    assert_eq!(code, 0, "{out}");
    let krate = outside.path().join("file-recovery");
    let example = std::fs::read_to_string(root().join("policies/file-recovery/src/lib.rs"))
        .expect("example source");
    let planted = example.replace("pub const CAP: u32 = 3600;", "pub const CAP: u32 = 7200;");
    assert_ne!(example, planted, "file-recovery's cap moved");
    std::fs::write(krate.join("src/lib.rs"), planted).expect("plant");
    // The copy composed as the example's fixtures compose it.
    std::fs::remove_file(krate.join("fixtures/file-recovery.yaml")).expect("rm");
    let fixture =
        std::fs::read_to_string(root().join("policies/file-recovery/fixtures/file-recovery.yaml"))
            .expect("example fixture")
            .replace(
                "policies: [baseline, file-recovery, business-hours]",
                "policies: [baseline, ../target/policies/file-recovery.wasm, business-hours]",
            );
    assert!(fixture.contains("../target/policies/file-recovery.wasm"));
    std::fs::write(krate.join("fixtures/composed.yaml"), fixture).expect("fixture");
    let props = "properties:
  - name: file recovery lasts at most an hour
    always: {ttl: {max: 3600}, when: {task: file-recovery}}
  - name: a finished ticket never yields access
    never: {outcome: [allow, require-approval], when: {ticket.state: [resolved, closed]}}
";
    std::fs::write(krate.join("properties.yaml"), props).expect("properties");

    let (code, out) = run_in(&krate, &["build"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_in(
        &krate,
        &[
            "explore",
            ".",
            "--properties",
            "properties.yaml",
            "--seed",
            "5",
            "--requests",
            "3000",
            "--json",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    let found = &v["properties"][0];
    assert_eq!(found["holds"], false, "{out}");
    assert!(found["violations"].as_u64() > Some(0));
    assert_eq!(v["properties"][1]["holds"], true, "{out}");
    let c = &found["counterexample"];
    assert_eq!(c["outcome"], "allow", "{c}");
    assert_eq!(c["ttl"], 3601, "{c}");
    // Shrunk: the smallest TTL over the cap, nothing the violation does
    // not need.
    let r = &c["request"];
    assert_eq!(r["requested-ttl"], 3601, "{r}");
    assert_eq!(
        r["subject"]["roles"],
        serde_json::json!(["helpdesk"]),
        "{r}"
    );
    assert_eq!(r["subject"]["groups"], serde_json::json!([]), "{r}");
    assert!(r["subject"].get("mfa-at").is_none(), "{r}");
    assert!(r.get("attributes").is_none(), "{r}");
    assert!(r["ticket"].get("assignee").is_none(), "{r}");
    assert_eq!(r["ticket"]["state"], "open", "{r}");
    assert_eq!(r["ticket"]["priority"], 1, "{r}");

    // The printed fixture, pasted beside the others, reproduces it.
    let text = c["fixture"].as_str().expect("fixture text");
    let pasted = krate.join("fixtures/found.yaml");
    std::fs::write(&pasted, text).expect("paste");
    let (code, out) = run_in(&krate, &["test", "fixtures/found.yaml"]);
    assert_eq!(code, 0, "{text}\n{out}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    // With the expect the property wants, it fails until the bug is fixed.
    assert!(text.contains("\n    ttl: 3601\n"), "{text}");
    std::fs::write(
        &pasted,
        text.replace("\n    ttl: 3601\n", "\n    ttl: 3600\n"),
    )
    .expect("edit");
    let (code, out) = run_in(&krate, &["test", "fixtures/found.yaml"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("differs in: ttl"), "{out}");

    // The text report says the same, terminal-safe, with the fixture.
    let (code, out) = run_in(
        &krate,
        &[
            "explore",
            ".",
            "--properties",
            "properties.yaml",
            "--seed",
            "5",
            "--requests",
            "3000",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL   always (file recovery lasts at most an hour): broken by"),
        "{out}"
    );
    assert!(out.contains("requested-ttl: 3601"), "{out}");
    assert!(out.contains("1 held, 1 failed; seed 5,"), "{out}");
}

fn explore_with(props: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, props).expect("write");
    jitgate(&[
        "explore",
        "policies/",
        "--properties",
        path.to_str().expect("utf-8"),
        "--requests",
        "300",
        "--seed",
        "1",
    ])
}

#[test]
fn malformed_properties_files_are_refused_naming_the_field() {
    for (props, wanted) in [
        (
            "properties:\n  - never: {outcome: allow, when: {ticket.stat: closed}}\n",
            "properties[0].never.when.ticket.stat: unknown field `ticket.stat`",
        ),
        (
            "properties:\n  - name: a\n    never: {outcome: allow}\n  - always: {outcome: alow}\n",
            "properties[1].always.outcome: unknown variant `alow`, expected one of `allow`",
        ),
        (
            "properties:\n  - never: {outcome: allow, when: {ticket.priority: high}}\n",
            "properties[0].never.when.ticket.priority: invalid type: string \"high\"",
        ),
        (
            "properties:\n  - never: {outcome: allow}\n    always: {outcome: deny}\n",
            "properties[0]: has both `never` and `always`",
        ),
        (
            "properties:\n  - name: x\n",
            "properties[0]: needs `never` or `always`",
        ),
        (
            "properties:\n  - never: {when: {task: file-recovery}}\n",
            "properties[0].never: states nothing about the decision",
        ),
        (
            "properties:\n  - never: {outcome: allow, when: {task: file-recvery}}\n",
            "properties[0].never.when.task: `file-recvery` is not a task",
        ),
        (
            "properties:\n  - always: {ttl: {min: 10, max: 5}}\n",
            "properties[0].always.ttl: min 10 is greater than max 5",
        ),
        (
            "properties:\n  - never: {outcome: not-applicable}\n",
            "properties[0].never.outcome: `not-applicable` is a policy's verdict",
        ),
        (
            "properties:\n  - never: {policy: nobody, outcome: allow}\n",
            "properties[0].never.policy: `nobody` is not a policy",
        ),
        (
            "properties:\n  - never: {outcome: allow, when: {ticket.priority: 9}}\n",
            "properties[0].never.when.ticket.priority: 9 is not a priority",
        ),
        (
            "properties:\n  - never: {outcome: allow, when: {subject.roles: []}}\n",
            "properties[0].never.when.subject.roles: the list is empty",
        ),
        (
            "properties:\n  - name: same\n    never: {outcome: allow}\n  - name: same\n    never: {outcome: deny}\n",
            "properties[1].name: `same` is used twice",
        ),
        ("properties: []\n", "properties: the list is empty"),
        ("rules: []\n", "unknown field `rules`"),
    ] {
        let (code, out, err) = explore_with(props);
        assert_eq!(code, 2, "{props}: {out}{err}");
        assert!(err.contains(wanted), "{props}: wanted {wanted:?} in {err}");
    }
}

#[test]
fn a_property_no_generated_request_matches_fails_rather_than_passing_silently() {
    let (code, out, err) = explore_with(
        "properties:\n  - name: nobody\n    never: {outcome: allow, when: {subject.id: nobody-at-all}}\n",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("no generated request matched its `when`"),
        "{out}"
    );
}

#[test]
fn terminal_escapes_in_a_properties_file_never_reach_the_terminal() {
    // In a name: refused; in a value echoed by an error: made visible.
    let (code, out, err) = explore_with(
        "properties:\n  - name: \"ok\\e[2J\\e]0;owned\\a\"\n    never: {outcome: allow}\n",
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("properties[0].name"), "{err}");
    assert!(
        !err.contains('\u{1b}') && !out.contains('\u{1b}'),
        "{err:?}"
    );
    let (code, out, err) =
        explore_with("properties:\n  - never: {outcome: allow, when: {task: \"x\\e[2Jy\"}}\n");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("x\\u{1b}[2Jy"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn a_huge_properties_file_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.yaml");
    let mut text = String::from("properties:\n");
    while text.len() <= 1 << 20 {
        text.push_str("  - never: {outcome: allow}\n");
    }
    std::fs::write(&path, text).expect("write");
    let (code, out, err) = jitgate(&[
        "explore",
        "policies/",
        "--properties",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("at most 1048576"), "{err}");
}

#[test]
fn a_yaml_alias_bomb_in_a_properties_file_is_refused_at_its_first_level() {
    // Nine anchors, each a list of nine of the previous: 9^9 strings if
    // expanded. Every value position takes one value or a flat list, so
    // the second level is refused before anything grows.
    let mut text = String::from(
        "properties:\n  - never: {outcome: allow, when: {task: &a [x, x, x, x, x, x, x, x, x]}}\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let list = vec![format!("*{}", w[0]); 9].join(", ");
        text.push_str(&format!(
            "  - never: {{outcome: allow, when: {{task: &{} [{list}]}}}}\n",
            w[1]
        ));
    }
    let (code, out, err) = explore_with(&text);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("properties[1].never.when.task: invalid type: sequence, expected a string"),
        "{err}"
    );
}
