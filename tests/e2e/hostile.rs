//! Hostile guests: each one must fail at load with a clear error, or make
//! its decision deny with the typed reason of what it did, within its budget,
//! while the same engine keeps deciding other tasks correctly.

use std::time::Duration;

use jitgate::policy::loader::LoadErrorKind;
use jitgate::{Engine, EngineConfig, Isolation, Outcome, PolicyFailure, SandboxLimits};
use jitgate_tests::*;

const RUNTIME_GUESTS: [&str; 7] = [
    "loop-forever",
    "memory-bomb",
    "deep-recursion",
    "panic",
    "huge-reason",
    "log-flood",
    "bad-approval",
];

fn engine_with(limits: SandboxLimits) -> Engine {
    engine_isolated(limits, Isolation::PerDecision)
}

fn engine_isolated(limits: SandboxLimits, isolation: Isolation) -> Engine {
    let mut e = Engine::new(EngineConfig {
        sandbox: limits,
        isolation,
        ..EngineConfig::default()
    })
    .expect("engine");
    for g in RUNTIME_GUESTS {
        e.load_file(&guest(g))
            .unwrap_or_else(|err| panic!("{g} should load: {err}"));
    }
    e.load_file(&policy("file-recovery"))
        .expect("file-recovery");
    e
}

/// Fuel and time so generous that the cap under test is the one that trips
/// (with the default budget these guests run out of fuel first, which also
/// denies; `endless_loop_runs_out_of_fuel_by_default` covers that path).
fn generous() -> SandboxLimits {
    SandboxLimits {
        fuel: 2_000_000_000,
        timeout: Duration::from_secs(5),
        ..SandboxLimits::default()
    }
}

/// Decide the guest's task; return the guest's typed failure.
fn failure_of(engine: &Engine, task: &str, guest: &str) -> PolicyFailure {
    let d = engine.decide(&task_request(task)).expect("valid request");
    assert_eq!(d.outcome, Outcome::Deny, "{guest}: {:?}", d.reasons);
    let t = d
        .policies
        .iter()
        .find(|p| p.name == guest)
        .unwrap_or_else(|| panic!("{guest} was not evaluated"));
    assert_eq!(t.verdict, "error");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.starts_with(&format!("{guest}: policy failed: "))),
        "{:?}",
        d.reasons
    );
    t.failure.clone().expect("typed failure")
}

fn still_decides(engine: &Engine) {
    let d = engine
        .decide(&request(&file_recovery_json()))
        .expect("valid");
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    assert_eq!(d.ttl, 1800);
}

#[test]
fn endless_loop_runs_out_of_fuel_by_default() {
    let e = engine_with(SandboxLimits::default());
    let f = failure_of(&e, "hostile-loop", "loop-forever");
    assert_eq!(f, PolicyFailure::OutOfFuel { fuel: 10_000_000 });
    let d = e.decide(&task_request("hostile-loop")).expect("valid");
    assert!(
        d.policies[0].fuel >= 10_000_000,
        "the whole budget was used"
    );
    still_decides(&e);
}

#[test]
fn endless_loop_hits_the_epoch_deadline_when_fuel_is_plentiful() {
    let e = engine_with(SandboxLimits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(20),
        ..SandboxLimits::default()
    });
    let f = failure_of(&e, "hostile-loop", "loop-forever");
    assert_eq!(f, PolicyFailure::Timeout { limit_ms: 20 });
    still_decides(&e);
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let e = engine_with(generous());
    let f = failure_of(&e, "hostile-memory", "memory-bomb");
    assert_eq!(
        f,
        PolicyFailure::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
    still_decides(&e);
}

#[test]
fn bottomless_recursion_overflows_the_stack() {
    let e = engine_with(SandboxLimits::default());
    let f = failure_of(&e, "hostile-recursion", "deep-recursion");
    assert_eq!(f, PolicyFailure::StackOverflow);
    still_decides(&e);
}

#[test]
fn panic_is_a_trap_carrying_the_panic_message() {
    let e = engine_with(SandboxLimits::default());
    match failure_of(&e, "hostile-panic", "panic") {
        PolicyFailure::Trap { message } => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(message.contains("policy bug: boom"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_decides(&e);
}

#[test]
fn ten_mebibyte_reason_is_a_malformed_answer() {
    let e = engine_with(generous());
    match failure_of(&e, "hostile-huge-reason", "huge-reason") {
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("10485760 bytes"), "{detail}")
        }
        other => panic!("expected bad output, got {other:?}"),
    }
    still_decides(&e);
}

#[test]
fn log_flood_is_a_malformed_answer_and_keeps_only_the_bound() {
    let e = engine_with(generous());
    match failure_of(&e, "hostile-log-flood", "log-flood") {
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("100000 lines (limit 32)"), "{detail}")
        }
        other => panic!("expected bad output, got {other:?}"),
    }
    let d = e.decide(&task_request("hostile-log-flood")).expect("valid");
    assert_eq!(d.policies[0].logs.len(), 32);
    still_decides(&e);
}

#[test]
fn approval_without_approvers_is_a_malformed_answer() {
    let e = engine_with(SandboxLimits::default());
    match failure_of(&e, "hostile-bad-approval", "bad-approval") {
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("min-approvals 0"), "{detail}")
        }
        other => panic!("expected bad output, got {other:?}"),
    }
}

fn load_error(path: &std::path::Path) -> jitgate::LoadError {
    let mut e = Engine::new(EngineConfig::default()).expect("engine");
    match e.load_file(path) {
        Ok(m) => panic!("{} loaded as {}", path.display(), m.name),
        Err(err) => {
            assert_eq!(e.policies().count(), 0);
            err
        }
    }
}

#[test]
fn filesystem_import_is_refused_at_load_naming_the_import() {
    let err = load_error(&guest("wasi-filesystem"));
    let text = err.to_string();
    assert!(
        text.contains("wasi-filesystem.wasm"),
        "names the file: {text}"
    );
    match &err.kind {
        LoadErrorKind::ForbiddenImport { import, others } => {
            let all: Vec<&String> = std::iter::once(import).chain(others).collect();
            assert!(
                all.iter().any(|i| i.starts_with("wasi:filesystem/")),
                "{text}"
            );
            assert!(import.starts_with("wasi:"), "{text}");
        }
        other => panic!("expected a forbidden import, got {other:?}"),
    }
}

#[test]
fn component_of_another_world_is_refused() {
    let err = load_error(&guest("other-world"));
    match &err.kind {
        LoadErrorKind::WrongWorld { exports } => {
            assert!(exports.contains("other:thing/greeter"), "{err}")
        }
        other => panic!("expected wrong world, got {other:?}"),
    }
}

#[test]
fn looping_info_is_refused_at_load() {
    let err = load_error(&guest("info-loop"));
    assert!(
        matches!(
            err.kind,
            LoadErrorKind::Info(PolicyFailure::OutOfFuel { .. })
        ),
        "{err}"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "this is a text file\n").expect("write");
    assert!(matches!(load_error(&text).kind, LoadErrorKind::NotWasm));

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    assert!(matches!(load_error(&core).kind, LoadErrorKind::CoreModule));

    // A component header followed by garbage.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x0d\0\x01\0\xff\xff\xff").expect("write");
    assert!(matches!(load_error(&junk).kind, LoadErrorKind::Invalid(_)));
}

/// Four threads, each deciding one hostile task three times and an honest
/// request after each: every hostile decision denies, every honest one allows.
fn interleave_hostile_and_honest(e: &Engine) {
    std::thread::scope(|s| {
        for task in [
            "hostile-loop",
            "hostile-memory",
            "hostile-panic",
            "hostile-recursion",
        ] {
            s.spawn(move || {
                for _ in 0..3 {
                    let d = e.decide(&task_request(task)).expect("valid");
                    assert_eq!(d.outcome, Outcome::Deny, "{task}");
                    still_decides(e);
                }
            });
        }
    });
}

#[test]
fn hostile_and_honest_decisions_interleave_across_threads() {
    interleave_hostile_and_honest(&engine_with(SandboxLimits::default()));
}

// Per-worker isolation reuses instances: each hostile guest must still be
// stopped by the same cap, every time (a failed instance is discarded, so
// the next decision meets a fresh one), and honest policies on the same
// threads must keep deciding.

#[test]
fn per_worker_endless_loop_runs_out_of_fuel_every_time() {
    let e = engine_isolated(SandboxLimits::default(), Isolation::PerWorker);
    for _ in 0..3 {
        let f = failure_of(&e, "hostile-loop", "loop-forever");
        assert_eq!(f, PolicyFailure::OutOfFuel { fuel: 10_000_000 });
        still_decides(&e);
    }
}

#[test]
fn per_worker_endless_loop_hits_the_epoch_deadline() {
    let e = engine_isolated(
        SandboxLimits {
            fuel: u64::MAX / 2,
            timeout: Duration::from_millis(20),
            ..SandboxLimits::default()
        },
        Isolation::PerWorker,
    );
    for _ in 0..2 {
        let f = failure_of(&e, "hostile-loop", "loop-forever");
        assert_eq!(f, PolicyFailure::Timeout { limit_ms: 20 });
        still_decides(&e);
    }
}

#[test]
fn per_worker_memory_bomb_hits_the_memory_cap_every_time() {
    let e = engine_isolated(generous(), Isolation::PerWorker);
    for _ in 0..2 {
        let f = failure_of(&e, "hostile-memory", "memory-bomb");
        assert_eq!(
            f,
            PolicyFailure::MemoryLimit {
                limit_bytes: 16 << 20
            }
        );
        still_decides(&e);
    }
}

#[test]
fn per_worker_panic_is_a_trap_every_time() {
    let e = engine_isolated(SandboxLimits::default(), Isolation::PerWorker);
    for _ in 0..2 {
        match failure_of(&e, "hostile-panic", "panic") {
            PolicyFailure::Trap { message } => {
                assert!(message.contains("policy bug: boom"), "{message}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        still_decides(&e);
    }
}

#[test]
fn per_worker_recursion_and_bad_output_are_still_caught() {
    let e = engine_isolated(generous(), Isolation::PerWorker);
    assert_eq!(
        failure_of(&e, "hostile-recursion", "deep-recursion"),
        PolicyFailure::StackOverflow
    );
    assert!(matches!(
        failure_of(&e, "hostile-huge-reason", "huge-reason"),
        PolicyFailure::BadOutput { .. }
    ));
    assert!(matches!(
        failure_of(&e, "hostile-log-flood", "log-flood"),
        PolicyFailure::BadOutput { .. }
    ));
    still_decides(&e);
}

#[test]
fn per_worker_hostile_and_honest_decisions_interleave_across_threads() {
    interleave_hostile_and_honest(&engine_isolated(
        SandboxLimits::default(),
        Isolation::PerWorker,
    ));
}

#[test]
fn pool_memory_cap_is_the_sandbox_cap() {
    // A smaller cap than the default: the pool and the limiter both follow it.
    let e = engine_isolated(
        SandboxLimits {
            max_memory_bytes: 4 << 20,
            ..generous()
        },
        Isolation::PerDecision,
    );
    let f = failure_of(&e, "hostile-memory", "memory-bomb");
    assert_eq!(
        f,
        PolicyFailure::MemoryLimit {
            limit_bytes: 4 << 20
        }
    );
    still_decides(&e);
}
