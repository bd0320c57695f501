//! Hostile guests: each one must fail at load with a clear error, or make
//! its decision deny with the typed reason of what it did, within its budget,
//! while the same engine keeps deciding other tasks correctly.

use std::time::Duration;

use jitgate::policy::LoadErrorKind;
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
        // Refused while being lifted: the host never holds the 10 MiB.
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("copied more bytes"), "{detail}")
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

// ---------------------------------------------------------------------------
// Budgets on host work a module causes (issue 10). Each guest is in
// tests/guests/wat/; each test asserts the bound: a typed reason, host heap
// growth during the decision (counted per thread by the allocator below),
// and a generous time.

mod heap {
    //! Bytes the current thread has live on the heap, and the peak since
    //! the last reset: what one decision on this thread costs the host.
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        let _ = LIVE.try_with(|l| {
            let v = l.get() + n;
            l.set(v);
            let _ = PEAK.try_with(|p| {
                if v > p.get() {
                    p.set(v)
                }
            });
        });
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            add(new as isize - layout.size() as isize);
            unsafe { System.realloc(ptr, layout, new) }
        }
    }

    /// Run `f` and return its result and the peak heap growth it caused on
    /// this thread, bytes.
    pub fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = f();
        let peak = PEAK.with(Cell::get);
        (out, (peak - base).max(0) as usize)
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

use jitgate_tests::wat::{WatGuest, wat_guest};

/// What one decision may cost the host beyond the guest's own memory: the
/// largest answer it may copy out (about 130 KiB), the decision, logs and
/// bookkeeping. Generous; the amplifiers cost 120-480 MiB before the bounds.
const HOST_BYTES_PER_DECISION: usize = 4 << 20;

fn engine_with_guests(limits: SandboxLimits, guests: &[&std::path::Path]) -> Engine {
    let mut e = Engine::new(EngineConfig {
        sandbox: limits,
        ..EngineConfig::default()
    })
    .expect("engine");
    for g in guests {
        e.load_file(g)
            .unwrap_or_else(|err| panic!("{} should load: {err}", g.display()));
    }
    e.load_file(&policy("file-recovery"))
        .expect("file-recovery");
    e
}

/// Decide `guest`'s task; its typed failure and the host heap the decision
/// grew by.
fn bounded_failure(e: &Engine, guest: &str) -> (PolicyFailure, usize) {
    let task = format!("hostile-{guest}");
    let started = std::time::Instant::now();
    let (f, grew) = heap::peak_growth(|| failure_of(e, &task, guest));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{guest}: {:?}",
        started.elapsed()
    );
    (f, grew)
}

fn assert_copied_too_much(f: &PolicyFailure) {
    match f {
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("copied more bytes"), "{detail}")
        }
        other => panic!("expected a malformed answer refused while lifting, got {other:?}"),
    }
}

#[test]
fn amplified_approver_groups_are_refused_while_lifting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let utf8 = WatGuest::new("amplifier").write(dir.path(), "amplifier");
    // latin1+utf16: each 0xE9 byte becomes two in UTF-8, doubling the
    // amplification for a host that transcodes first.
    let latin1 = WatGuest {
        name: "amplifier-latin1",
        latin1_utf16: true,
        vars: &[("{FILL}", "0xe9")],
        ..WatGuest::new("amplifier")
    }
    .write(dir.path(), "amplifier-latin1");
    let e = engine_with_guests(generous(), &[&utf8, &latin1]);
    for g in ["amplifier", "amplifier-latin1"] {
        let (f, grew) = bounded_failure(&e, g);
        assert_copied_too_much(&f);
        assert!(
            grew < HOST_BYTES_PER_DECISION,
            "{g}: the host grew by {grew} bytes for one decision"
        );
    }
    still_decides(&e);
}

#[test]
fn amplified_info_is_refused_at_load_without_lifting_it() {
    let path = wat_guest("info-amplifier");
    let (err, grew) = heap::peak_growth(|| load_error(&path));
    match &err.kind {
        LoadErrorKind::Info(f) => assert_copied_too_much(f),
        other => panic!("expected info() to fail, got {other:?}"),
    }
    assert!(
        grew < HOST_BYTES_PER_DECISION,
        "load grew the host by {grew}"
    );
}

#[test]
fn giant_log_lines_are_refused_while_lifting() {
    let e = engine_with_guests(generous(), &[&wat_guest("log-giant")]);
    let (f, grew) = bounded_failure(&e, "log-giant");
    assert_copied_too_much(&f);
    assert!(grew < HOST_BYTES_PER_DECISION, "grew {grew}");
    still_decides(&e);
}

#[test]
fn truncated_log_lines_do_not_keep_their_whole_buffer() {
    let e = engine_with_guests(generous(), &[&wat_guest("log-wide")]);
    let (d, grew) =
        heap::peak_growth(|| e.decide(&task_request("hostile-log-wide")).expect("valid"));
    let t = &d.policies[0];
    assert_eq!(t.verdict, "allow", "{:?}", t.failure);
    assert_eq!(t.logs.len(), 32);
    for l in &t.logs {
        assert!(l.message.ends_with("…[truncated]"), "{}", l.message.len());
        // The kept line owns a buffer of its kept size, not the 100 KiB
        // it was cut from (32 of those held 3.2 MB per decision).
        assert!(
            l.message.capacity() <= 1024,
            "a 1 KiB line holds {} bytes",
            l.message.capacity()
        );
    }
    assert!(grew < HOST_BYTES_PER_DECISION, "grew {grew}");
}

#[test]
fn straight_line_log_calls_stop_at_the_deadline() {
    // No loop and no call for the epoch check to stop: only `log` checking
    // the deadline itself ends this on time.
    let limits = SandboxLimits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(20),
        ..SandboxLimits::default()
    };
    let e = engine_with_guests(limits, &[&wat_guest("log-straight")]);
    let (f, _) = bounded_failure(&e, "log-straight");
    assert_eq!(f, PolicyFailure::Timeout { limit_ms: 20 });
    still_decides(&e);
}

#[test]
fn several_memories_share_one_memory_budget() {
    let e = engine_with_guests(generous(), &[&wat_guest("multi-memory")]);
    let (f, _) = bounded_failure(&e, "multi-memory");
    assert_eq!(
        f,
        PolicyFailure::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
    still_decides(&e);
}

#[test]
fn table_growth_is_reported_as_the_table_limit() {
    let e = engine_with_guests(generous(), &[&wat_guest("table-grow")]);
    let (f, _) = bounded_failure(&e, "table-grow");
    assert_eq!(
        f,
        PolicyFailure::TableLimit {
            limit_elements: 10_000
        }
    );
    still_decides(&e);
}

#[test]
fn control_characters_in_info_are_refused_naming_the_field() {
    let err = load_error(&wat_guest("ansi-info"));
    match &err.kind {
        LoadErrorKind::BadInfo(m) => {
            assert!(
                m.starts_with("version contains control character U+000A"),
                "{m}"
            );
            assert!(!m.chars().any(|c| c.is_control()), "{m:?}");
        }
        other => panic!("expected bad info, got {other:?}"),
    }
}

#[test]
fn terminal_escapes_in_reasons_and_logs_are_escaped() {
    let e = engine_with_guests(SandboxLimits::default(), &[&wat_guest("ansi-verdict")]);
    let d = e
        .decide(&task_request("hostile-ansi-verdict"))
        .expect("valid");
    assert_eq!(d.outcome, Outcome::Deny);
    let t = &d.policies[0];
    let reason = t.reason.as_deref().unwrap_or_default();
    assert_eq!(reason, "\\u{1b}[2J\\u{1b}[Hdecision: ALLOW  ttl 28800 s\\n");
    assert!(
        d.reasons.iter().all(|r| !r.chars().any(char::is_control)),
        "{:?}",
        d.reasons
    );
    assert_eq!(t.logs.len(), 1);
    assert!(
        !t.logs[0].message.chars().any(char::is_control),
        "{:?}",
        t.logs
    );
}

#[test]
fn terminal_escapes_in_approver_groups_are_a_malformed_answer() {
    let e = engine_with_guests(SandboxLimits::default(), &[&wat_guest("ansi-approval")]);
    match failure_of(&e, "hostile-ansi-approval", "ansi-approval") {
        PolicyFailure::BadOutput { detail } => {
            assert!(detail.contains("control character"), "{detail}");
            assert!(!detail.chars().any(char::is_control), "{detail:?}");
        }
        other => panic!("expected bad output, got {other:?}"),
    }
}

#[test]
fn eval_text_cannot_be_forged_by_a_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdir = dir.path().join("policies");
    std::fs::create_dir_all(&pdir).expect("mkdir");
    WatGuest::new("ansi-verdict").write(&pdir, "ansi-verdict");
    let req = dir.path().join("r.json");
    let mut v = file_recovery_json();
    v["task"] = "hostile-ansi-verdict".into();
    std::fs::write(&req, v.to_string()).expect("write");
    let out = std::process::Command::new(jitgate_bin())
        .args(["eval", "--policies"])
        .arg(&pdir)
        .arg("--request")
        .arg(&req)
        .output()
        .expect("run jitgate eval");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("decision: DENY"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("decision:")).count(),
        1,
        "the forged line stays inside the reason: {text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("decision: ALLOW")),
        "{text}"
    );
}

#[test]
fn oversized_module_is_refused_before_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A component header and 5 MiB of junk: compiling it would fail too,
    // but only after reading and parsing it all.
    let big = dir.path().join("big.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize(5 << 20, 0x01);
    std::fs::write(&big, &bytes).expect("write");
    let err = load_error(&big);
    match &err.kind {
        LoadErrorKind::TooLarge { size, limit } => {
            assert_eq!((*size, *limit), (5 << 20, 4 << 20));
            assert!(err.to_string().contains("max-module-bytes"), "{err}");
        }
        other => panic!("expected too large, got {other:?}"),
    }
    // The limit is configurable: a real policy over a tiny limit is refused.
    let mut e = Engine::new(EngineConfig {
        sandbox: SandboxLimits {
            max_module_bytes: 1000,
            ..SandboxLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let err = e
        .load_file(&policy("file-recovery"))
        .expect_err("too large");
    assert!(
        matches!(err.kind, LoadErrorKind::TooLarge { limit: 1000, .. }),
        "{err}"
    );
    let i = e.inspect(&policy("file-recovery")).expect("inspect");
    assert!(matches!(i.load, Err(ref l) if matches!(l.kind, LoadErrorKind::TooLarge { .. })));
}

#[test]
fn name_squatter_is_the_file_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Sorted first, so it loads first and takes the name.
    WatGuest {
        name: "file-recovery",
        task: "file-recovery",
        ..WatGuest::new("allow")
    }
    .write(dir.path(), "a-squatter");
    std::fs::copy(
        policy("file-recovery"),
        dir.path().join("file-recovery.wasm"),
    )
    .expect("copy");
    let mut e = Engine::new(EngineConfig::default()).expect("engine");
    let err = e.load_dir(dir.path()).expect_err("clash");
    assert!(
        err.path.ends_with("a-squatter.wasm"),
        "the squatter is a-squatter.wasm: {err}"
    );
    match &err.kind {
        LoadErrorKind::DuplicateName { name, other } => {
            assert_eq!(name, "file-recovery");
            assert!(other.ends_with("file-recovery.wasm"), "{err}");
        }
        other => panic!("expected a name clash, got {other:?}"),
    }
    assert_eq!(e.policies().count(), 0);
}

#[test]
fn wildcard_policy_that_can_allow_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = WatGuest {
        name: "allow-everything",
        task: "*",
        ..WatGuest::new("allow")
    }
    .write(dir.path(), "allow-everything");
    let mut e = Engine::new(EngineConfig::default()).expect("engine");
    let meta = e.load_file(&p).expect("loads").clone();
    assert_eq!(meta.warnings.len(), 1, "{meta:?}");
    assert!(
        meta.warnings[0].contains("declares task `*` and allowed"),
        "{:?}",
        meta.warnings
    );
    let json = serde_json::to_value(&meta).expect("json");
    assert!(json["warnings"][0].as_str().is_some(), "{json}");
    let out = std::process::Command::new(jitgate_bin())
        .arg("inspect")
        .arg(&p)
        .output()
        .expect("run jitgate inspect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("warning:  declares task `*`"), "{text}");
    // Policies that name their tasks are not flagged, nor is a `*` policy
    // that only ever denies or abstains (the example baseline).
    let fr = e.load_file(&policy("file-recovery")).expect("loads");
    assert!(fr.warnings.is_empty());
    let baseline = e.load_file(&policy("baseline")).expect("loads");
    assert_eq!(baseline.tasks, ["*"]);
    assert!(baseline.warnings.is_empty(), "{:?}", baseline.warnings);
}

// ---------------------------------------------------------------------------
// Decisions off the async workers, bounded, with back-pressure.

fn principal(name: &str, role: jitgate::service::Role) -> jitgate::service::Principal {
    jitgate::service::Principal {
        name: name.into(),
        roles: [role].into_iter().collect(),
        groups: vec!["helpdesk-tier2".into()],
        subject_roles: vec!["helpdesk".into()],
        ..Default::default()
    }
}

#[test]
fn exhausted_instance_pool_is_busy_and_stores_nothing() {
    use jitgate::service::{Role, Service, ServiceConfig, ServiceError};
    // One instance slot, warm instances, two policies judging the task: the
    // worker's warm instance of one policy holds the only slot, so the other
    // cannot be instantiated. That is the host's overload, not a verdict.
    let mut engine = Engine::new(EngineConfig {
        instance_pool: Some(1),
        isolation: Isolation::PerWorker,
        ..EngineConfig::default()
    })
    .expect("engine");
    engine.load_file(&policy("baseline")).expect("baseline");
    engine
        .load_file(&policy("file-recovery"))
        .expect("file-recovery");
    let store: std::sync::Arc<dyn jitgate::store::Store> =
        std::sync::Arc::new(jitgate::store::sqlite::SqliteStore::in_memory().expect("store"));
    let svc = Service::new(engine, store.clone(), ServiceConfig::default());
    let alice = principal("alice", Role::Requester);
    let body = jitgate_tests::tickets::seed_service(
        &svc,
        &jitgate_tests::server::body("pool-1", "alice", "file-recovery", 60),
    );
    let id = "pool-1";
    match svc.request(&alice, &body) {
        Err(ServiceError::Busy(m)) => assert!(m.contains("instance slot"), "{m}"),
        other => panic!("expected busy, got {other:?}"),
    }
    assert!(
        store
            .grant_by_request("alice", id)
            .expect("store")
            .is_none(),
        "an overloaded host stored a grant"
    );
    assert!(matches!(
        svc.dry_run(&alice, &body),
        Err(ServiceError::Busy(_))
    ));
    assert_eq!(svc.metrics.busy.get(), 2, "both refusals counted");
}

/// One raw HTTP exchange: status line and headers, and body.
fn raw_post(addr: std::net::SocketAddr, path: &str, token: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

/// A test server whose policies are the clock-free examples plus `guests`,
/// with `sandbox` lines added to its `[sandbox]` table.
fn server_with(
    dir: &std::path::Path,
    guests: &[WatGuest<'_>],
    rust_guests: &[&str],
    sandbox: &str,
) -> jitgate_tests::server::Server {
    use jitgate_tests::server::{Server, clock_free_policies, write_config};
    let pdir = clock_free_policies(dir);
    for g in guests {
        g.write(&pdir, g.name);
    }
    for g in rust_guests {
        std::fs::copy(guest(g), pdir.join(format!("{g}.wasm"))).expect("copy guest");
    }
    let cfg = write_config(dir, "");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("[sandbox]\n", &format!("[sandbox]\n{sandbox}\n")),
    )
    .expect("config");
    Server::start(&cfg)
}

#[test]
fn saturated_decision_pool_answers_503_with_retry_after_and_stores_nothing() {
    use jitgate_tests::http::post;
    use jitgate_tests::server::body;
    let dir = tempfile::tempdir().expect("tempdir");
    // One worker, one waiting slot; an endless loop with fuel to spare runs
    // to the deadline (the test server's is 2 s) and keeps the worker busy.
    let s = server_with(
        dir.path(),
        &[],
        &["loop-forever"],
        "workers = 1\nqueue = 1\nfuel = 1000000000000",
    );
    let addr = s.addr;
    // Two clients keep the worker and the queue full.
    let load = drive(addr, "hostile-loop", 2);
    let mut refused = None;
    for k in 0..200 {
        let id = format!("busy-{k}");
        let req = jitgate_tests::tickets::seed(addr, &body(&id, "alice", "file-recovery", 60))
            .to_string();
        let (head, text) = raw_post(addr, "/v1/requests", "t-alice", &req);
        if head.starts_with("http/1.1 503") {
            assert!(head.contains("\r\nretry-after: 1"), "{head}");
            assert!(text.contains("\"busy\""), "{text}");
            refused = Some(id);
            break;
        }
        assert!(head.starts_with("http/1.1 201"), "{head}\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = refused.expect("a request met a full pool");
    // Operators see it: the refusal is counted.
    let m = jitgate_tests::http::get(addr, "/metrics", None).body;
    let busy = m
        .lines()
        .find_map(|l| l.strip_prefix("jitgate_busy_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(busy.is_some_and(|n| n >= 1), "{m}");
    // /healthz is not queued behind decisions.
    let started = std::time::Instant::now();
    let h = jitgate_tests::http::get(addr, "/healthz", None);
    assert_eq!(h.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    stop(load);
    // Nothing was stored for the refused request: the same id now decides
    // afresh (201), it is not replayed.
    let r = post(
        addr,
        "/v1/requests",
        Some("t-alice"),
        &jitgate_tests::tickets::seed(addr, &body(&refused, "alice", "file-recovery", 60)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Harmless dry runs one client completes in `window`, while `load` runs.
fn harmless_rate(addr: std::net::SocketAddr, window: Duration) -> f64 {
    use jitgate_tests::http::post;
    use jitgate_tests::server::body;
    // One ticket in the registry for every dry run.
    let seeded = jitgate_tests::tickets::seed(addr, &body("h-seed", "alice", "file-recovery", 60));
    let started = std::time::Instant::now();
    let mut n = 0u32;
    while started.elapsed() < window {
        let mut b = jitgate_tests::tickets::as_requester(&body(
            &format!("h-{n}"),
            "alice",
            "file-recovery",
            60,
        ));
        b["ticket"] = seeded["ticket"].clone();
        let r = post(addr, "/v1/decisions", Some("t-alice"), &b);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["outcome"], "allow", "{}", r.body);
        n += 1;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// Run `clients` threads posting dry runs for `task` until told to stop;
/// returns the stop flag and the threads.
fn drive(
    addr: std::net::SocketAddr,
    task: &'static str,
    clients: usize,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<u32>>,
) {
    use jitgate_tests::http::post;
    use jitgate_tests::server::body;
    use std::sync::atomic::Ordering;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads = (0..clients)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = post(
                        addr,
                        "/v1/decisions",
                        Some("t-alice"),
                        &jitgate_tests::tickets::as_requester(
                            &jitgate_tests::tickets::without_ticket(&body(
                                &format!("{task}-{c}-{n}"),
                                "alice",
                                task,
                                60,
                            )),
                        ),
                    );
                    assert!(r.status == 200 || r.status == 503, "{}", r.body);
                    n += 1;
                }
                n
            })
        })
        .collect();
    (stop, threads)
}

fn stop(
    load: (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        Vec<std::thread::JoinHandle<u32>>,
    ),
) -> u32 {
    load.0.store(true, std::sync::atomic::Ordering::Relaxed);
    load.1.into_iter().map(|t| t.join().expect("client")).sum()
}

#[test]
fn harmless_decisions_keep_half_their_throughput_beside_four_amplifier_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let amplifier = WatGuest {
        name: "amplifier-latin1",
        latin1_utf16: true,
        vars: &[("{FILL}", "0xe9")],
        ..WatGuest::new("amplifier")
    };
    // The same shape of load, but harmless: the baseline the ratio is
    // measured against, in the same run, on the same machine.
    let benign = WatGuest {
        name: "benign",
        ..WatGuest::new("allow")
    };
    let s = server_with(dir.path(), &[amplifier, benign], &[], "");
    let addr = s.addr;
    let window = Duration::from_millis(1500);
    harmless_rate(addr, Duration::from_millis(500)); // warm up

    // Windows alternate (benign, amplifier, benign, amplifier, …) so that a
    // machine whose speed drifts while the test runs weighs on both alike.
    let (mut beside_benign, mut beside_hostile) = (0.0, 0.0);
    let mut hostile_done = 0;
    for _ in 0..2 {
        let load = drive(addr, "hostile-benign", 4);
        beside_benign += harmless_rate(addr, window) / 3.0;
        stop(load);
        let load = drive(addr, "hostile-amplifier-latin1", 4);
        beside_hostile += harmless_rate(addr, window) / 3.0;
        hostile_done += stop(load);
    }
    let load = drive(addr, "hostile-benign", 4);
    beside_benign += harmless_rate(addr, window) / 3.0;
    stop(load);

    let load = drive(addr, "hostile-amplifier-latin1", 4);
    beside_hostile += harmless_rate(addr, window) / 3.0;
    let mut slowest_health = Duration::ZERO;
    for path in ["/healthz", "/readyz", "/metrics"].repeat(8) {
        let t = std::time::Instant::now();
        assert_eq!(
            jitgate_tests::http::get(addr, path, None).status,
            200,
            "{path}"
        );
        slowest_health = slowest_health.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    hostile_done += stop(load);

    eprintln!(
        "harmless dry runs/s: {beside_benign:.0} beside 4 benign clients, \
         {beside_hostile:.0} beside 4 amplifier clients ({hostile_done} amplified decisions); \
         slowest /healthz, /readyz or /metrics {slowest_health:?}"
    );
    assert!(hostile_done > 0);
    assert!(
        beside_hostile >= 0.5 * beside_benign,
        "harmless throughput fell from {beside_benign:.0}/s to {beside_hostile:.0}/s"
    );
    // Generous (a debug build on a shared machine); 1.7 s before the bounds.
    assert!(
        slowest_health < Duration::from_millis(500),
        "{slowest_health:?}"
    );
}

/// Not a test: writes the WAT guests (with the latin1 amplifier) to
/// `$CARGO_TARGET_DIR/guests-wat/` for `bench/bounds.sh`.
#[test]
#[ignore]
fn write_wat_guests_for_the_bench() {
    let dir = jitgate_tests::wat::wat_guest("allow")
        .parent()
        .map(std::path::Path::to_path_buf)
        .expect("dir");
    for g in ["amplifier", "log-giant", "info-amplifier", "multi-memory"] {
        wat_guest(g);
    }
    WatGuest {
        name: "amplifier-latin1",
        latin1_utf16: true,
        vars: &[("{FILL}", "0xe9")],
        ..WatGuest::new("amplifier")
    }
    .write(&dir, "amplifier-latin1");
    eprintln!("{}", dir.display());
}

/// A module built against the previous contract, `jitgate:policy@0.1.0`
/// (whose `approval-terms` has no `revoke-on-ticket-close`), keeps loading
/// and deciding, its approvals taken as not ending with the ticket; the
/// same guest built against 0.2.0 asks for that and gets it.
#[test]
fn a_module_built_against_contract_0_1_0_loads_and_decides_with_the_flag_false() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = WatGuest::new("approve").write(dir.path(), "approve-0.1.0");
    let bytes = std::fs::read(&old).expect("read");
    let surface = String::from_utf8_lossy(&bytes).to_string();
    assert!(
        surface.contains("jitgate:policy/policy@0.1.0")
            && !surface.contains("jitgate:policy/policy@0.2.0"),
        "the guest is a 0.1.0 module"
    );
    let e = engine_with_guests(SandboxLimits::default(), &[&old]);
    let d = e
        .decide(&task_request("hostile-approve"))
        .expect("valid request");
    assert_eq!(d.outcome, Outcome::RequireApproval, "{:?}", d.reasons);
    assert_eq!(d.approvals.len(), 1, "{d:?}");
    assert_eq!(d.approvals[0].groups, ["ops"], "{d:?}");
    assert!(!d.revoke_on_ticket_close, "{d:?}");
    let trace = d.policies.iter().find(|p| p.name == "approve");
    assert!(
        trace.is_some_and(|t| t.verdict == "require-approval"),
        "{d:?}"
    );

    let new = WatGuest {
        vars: &[
            ("@0.1.0", "@0.2.0"),
            (
                "{REVOKE}",
                "(i32.store8 offset=28 (local.get $ret) (i32.const 1))",
            ),
        ],
        ..WatGuest::new("approve")
    }
    .write(dir.path(), "approve-0.2.0");
    let e = engine_with_guests(SandboxLimits::default(), &[&new]);
    let d = e
        .decide(&task_request("hostile-approve"))
        .expect("valid request");
    assert_eq!(d.outcome, Outcome::RequireApproval, "{:?}", d.reasons);
    assert!(d.revoke_on_ticket_close, "{d:?}");
}
