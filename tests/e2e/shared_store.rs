//! Per-decision isolation evaluates the policies of one decision as fresh
//! instances in one shared wasmtime `Store` (dropped after the decision).
//! These are the attacks that sharing could have opened: a policy that
//! fails, or spends its whole budget, must not change what its neighbours
//! in the same store answer, and no policy may see another's memory or an
//! earlier decision's.

use jitgate::{Engine, EngineConfig, Isolation, Outcome, PolicyFailure, SandboxLimits};
use jitgate_tests::wat::WatGuest;
use jitgate_tests::*;

/// The task every guest of these tests declares, so one decision selects
/// them all, in load order.
const TASK: &str = "shared-store";

/// `(source, name, vars)` of one WAT guest.
type Guest<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// An engine with `guests` loaded in order, all declaring [`TASK`].
fn engine_of(isolation: Isolation, limits: SandboxLimits, guests: &[Guest<'_>]) -> Engine {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut e = Engine::new(EngineConfig {
        sandbox: limits,
        isolation,
        ..EngineConfig::default()
    })
    .expect("engine");
    for (source, name, vars) in guests {
        let path = WatGuest {
            source,
            name,
            task: TASK,
            latin1_utf16: false,
            vars,
        }
        .write(dir.path(), name);
        e.load_file(&path)
            .unwrap_or_else(|err| panic!("{name} should load: {err}"));
    }
    e
}

/// Fuel and time so generous that the memory cap is what trips.
fn generous() -> SandboxLimits {
    SandboxLimits {
        fuel: 2_000_000_000,
        timeout: std::time::Duration::from_secs(5),
        ..SandboxLimits::default()
    }
}

fn decide(e: &Engine) -> jitgate::Decision {
    e.decide(&task_request(TASK)).expect("valid request")
}

/// The trace of `name` in `d`.
fn trace<'a>(d: &'a jitgate::Decision, name: &str) -> &'a jitgate::PolicyTrace {
    d.policies
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} was not evaluated: {:?}", d.reasons))
}

/// `name` allowed for 60 s with the WAT guests' reason and no failure.
fn assert_honest_allow(d: &jitgate::Decision, name: &str) {
    let t = trace(d, name);
    assert_eq!(t.verdict, "allow", "{name}: {t:?}");
    assert_eq!(t.ttl, Some(60), "{name}");
    assert_eq!(t.reason.as_deref(), Some("hostile guest"), "{name}");
    assert!(t.failure.is_none(), "{name}: {:?}", t.failure);
}

#[test]
fn a_policy_that_traps_in_a_shared_store_cannot_change_its_neighbours_verdict() {
    // Each way of failing, between two honest policies in one decision:
    // the failure is the hostile policy's alone (and denies the decision),
    // the neighbour evaluated after it in the same store still answers
    // exactly what it answers alone.
    // Filling 36 MiB costs more fuel than the default budget: the memory
    // case gets fuel enough for the memory cap to be what trips.
    let cases: [(&str, SandboxLimits, PolicyFailure); 3] = [
        (
            "trap",
            SandboxLimits::default(),
            PolicyFailure::Trap {
                message: String::new(),
            },
        ),
        (
            "spin",
            SandboxLimits::default(),
            PolicyFailure::OutOfFuel { fuel: 10_000_000 },
        ),
        (
            "multi-memory",
            generous(),
            PolicyFailure::MemoryLimit {
                limit_bytes: 16 << 20,
            },
        ),
    ];
    for (hostile, limits, want) in cases {
        let e = engine_of(
            Isolation::PerDecision,
            limits,
            &[
                ("allow", "before", &[]),
                (hostile, hostile, &[]),
                ("allow", "after", &[]),
            ],
        );
        for _ in 0..3 {
            let d = decide(&e);
            assert_eq!(d.outcome, Outcome::Deny, "{hostile}: {:?}", d.reasons);
            assert_honest_allow(&d, "before");
            assert_honest_allow(&d, "after");
            let t = trace(&d, hostile);
            assert_eq!(t.verdict, "error", "{hostile}");
            let got = t.failure.clone().expect("typed failure");
            match (&got, &want) {
                (PolicyFailure::Trap { .. }, PolicyFailure::Trap { .. }) => {}
                _ => assert_eq!(got, want, "{hostile}"),
            }
        }
    }
}

#[test]
fn a_policy_that_fills_its_memory_cannot_shrink_its_neighbours_budget() {
    // 11 MiB each against a 16 MiB cap: together they are over it, so both
    // allow only if each policy in the shared store has a budget of its own.
    // (Filling memory costs fuel by the byte: fuel enough for that.)
    let e = engine_of(
        Isolation::PerDecision,
        generous(),
        &[
            ("fill-memory", "fill-a", &[]),
            ("fill-memory", "fill-b", &[]),
        ],
    );
    for _ in 0..2 {
        let d = decide(&e);
        assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
        assert_honest_allow(&d, "fill-a");
        assert_honest_allow(&d, "fill-b");
    }
}

#[test]
fn a_policy_that_burns_its_fuel_cannot_starve_its_neighbour() {
    // Each burns more than half of the 10,000,000 units: together they are
    // over one budget, so both allow only if each gets its own.
    let limits = SandboxLimits::default();
    let iter: &[(&str, &str)] = &[("{ITER}", "1200000")];
    let e = engine_of(
        Isolation::PerDecision,
        limits,
        &[("burn-fuel", "burn-a", iter), ("burn-fuel", "burn-b", iter)],
    );
    let d = decide(&e);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    for name in ["burn-a", "burn-b"] {
        assert_honest_allow(&d, name);
        let fuel = trace(&d, name).fuel;
        assert!(
            fuel > limits.fuel / 2 && fuel < limits.fuel,
            "{name} used {fuel} of {}",
            limits.fuel
        );
    }
}

#[test]
fn memory_of_one_policy_is_not_visible_to_its_neighbour_or_the_next_decision() {
    // `remember` denies when it finds its own mark (in memory or a global)
    // already set. Two of them share a store in every decision: neither
    // may see the other's mark, nor one left by an earlier decision.
    let guests: &[Guest<'_>] = &[
        ("remember", "remember-a", &[]),
        ("remember", "remember-b", &[]),
    ];
    let e = engine_of(Isolation::PerDecision, SandboxLimits::default(), guests);
    for i in 0..4 {
        let d = decide(&e);
        assert_eq!(d.outcome, Outcome::Allow, "decision {i}: {:?}", d.reasons);
        assert_honest_allow(&d, "remember-a");
        assert_honest_allow(&d, "remember-b");
    }
    // The guest does detect surviving state: per-worker isolation keeps a
    // warm instance per policy, and there the second decision is denied.
    let warm = engine_of(Isolation::PerWorker, SandboxLimits::default(), guests);
    assert_eq!(decide(&warm).outcome, Outcome::Allow);
    let d = decide(&warm);
    assert_eq!(d.outcome, Outcome::Deny, "{:?}", d.reasons);
    assert_eq!(
        trace(&d, "remember-a").reason.as_deref(),
        Some("remembered")
    );
}

#[test]
fn more_policies_than_one_store_holds_are_all_evaluated() {
    // Past the per-store group size the decision opens another store; a
    // trap in the first group changes nothing in the second.
    let names: Vec<String> = (0..11).map(|i| format!("p{i:02}")).collect();
    let mut guests: Vec<Guest<'_>> = names
        .iter()
        .map(|n| ("remember", n.as_str(), &[][..]))
        .collect();
    guests[3] = ("trap", names[3].as_str(), &[]);
    let e = engine_of(Isolation::PerDecision, SandboxLimits::default(), &guests);
    for _ in 0..2 {
        let d = decide(&e);
        assert_eq!(d.outcome, Outcome::Deny, "{:?}", d.reasons);
        assert_eq!(d.policies.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            if i == 3 {
                assert_eq!(trace(&d, n).verdict, "error");
            } else {
                assert_honest_allow(&d, n);
            }
        }
    }
}

#[test]
fn a_policy_that_fills_its_log_leaves_its_neighbour_an_empty_one() {
    // Each logs the 32 lines one evaluation may keep: a 33rd would make
    // the answer malformed, so both allow only if the second policy in the
    // store starts with an empty log, and each trace shows its own lines.
    // (3 MiB copied out of each: time enough for that in a debug build.)
    let e = engine_of(
        Isolation::PerDecision,
        generous(),
        &[("log-wide", "log-a", &[]), ("log-wide", "log-b", &[])],
    );
    let d = decide(&e);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    for name in ["log-a", "log-b"] {
        let t = trace(&d, name);
        assert_eq!(t.verdict, "allow", "{name}: {:?}", t.failure);
        assert_eq!(t.logs.len(), 32, "{name}");
    }
}
