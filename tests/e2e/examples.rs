//! The example policy set through the library API: composition,
//! explanation, validation, caching and concurrency.

use jitgate::{Engine, EngineConfig, Isolation, Outcome};
use jitgate_tests::*;

/// The example set with a wall-clock budget no loaded machine exhausts
/// (see [`examples_with`]).
fn examples() -> Engine {
    examples_with(EngineConfig::default())
}

#[test]
fn composed_file_recovery_is_explained_policy_by_policy() {
    let engine = examples();
    let d = engine
        .decide(&request(&file_recovery_json()))
        .expect("valid");
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.ttl, 1800);
    assert!(d.revoke_on_ticket_close);
    let names: Vec<&str> = d.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["baseline", "business-hours", "file-recovery"]);
    let verdicts: Vec<&str> = d.policies.iter().map(|p| p.verdict.as_str()).collect();
    assert_eq!(verdicts, ["not-applicable", "not-applicable", "allow"]);
    for p in &d.policies {
        let bytes = std::fs::read(policy(&p.name)).expect("module file");
        assert_eq!(p.digest, jitgate::policy::digest(&bytes));
        assert!(p.fuel > 0, "{} used no fuel?", p.name);
    }
}

#[test]
fn out_of_hours_needs_a_lead_and_deny_still_overrides() {
    let engine = examples();
    let mut v = file_recovery_json();
    v["now"] = (WED_10_UTC + 9 * 3600).into(); // 20:00 local
    let d = engine.decide(&request(&v)).expect("valid");
    assert_eq!(d.outcome, Outcome::RequireApproval);
    assert_eq!(d.approvals.len(), 1);
    assert_eq!(d.approvals[0].groups, ["helpdesk-leads"]);
    assert_eq!(d.ttl, 1800);

    v["subject"]["roles"] = serde_json::json!(["sre"]);
    let d = engine.decide(&request(&v)).expect("valid");
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.approvals.is_empty());
    assert!(
        d.reasons.iter().any(|r| r.starts_with("file-recovery: ")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn invalid_requests_name_the_field() {
    let engine = examples();
    let mut v = file_recovery_json();
    v["task"] = "make-coffee".into();
    let e = engine.decide(&request(&v)).unwrap_err();
    assert_eq!(e.field, "task");
    assert!(
        e.message.contains("file-recovery"),
        "lists known tasks: {e}"
    );

    let mut v = file_recovery_json();
    v["requested-ttl"] = 0.into();
    assert_eq!(
        engine.decide(&request(&v)).unwrap_err().field,
        "requested-ttl"
    );

    let mut v = file_recovery_json();
    v["justification"] = "x".repeat(4097).into();
    assert_eq!(
        engine.decide(&request(&v)).unwrap_err().field,
        "justification"
    );
}

#[test]
fn compile_cache_hits_and_refuses_tampered_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..EngineConfig::default()
    };
    let mut first = Engine::new(config.clone()).expect("engine");
    first.load_dir(&policy_dir()).expect("load");
    assert_eq!(first.load_stats().compiled, 6);
    assert_eq!(first.load_stats().cache_hits, 0);

    let mut second = Engine::new(config.clone()).expect("engine");
    second.load_dir(&policy_dir()).expect("load");
    assert_eq!(second.load_stats().cache_hits, 6);
    let want = first
        .decide(&request(&file_recovery_json()))
        .expect("valid");
    let got = second
        .decide(&request(&file_recovery_json()))
        .expect("valid");
    assert_eq!(
        (want.outcome, want.ttl, &want.reasons),
        (got.outcome, got.ttl, &got.reasons)
    );

    // Flip one byte of every artifact: none may be loaded; all recompile.
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "cwasm") {
            let mut b = std::fs::read(&p).expect("read");
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            std::fs::write(&p, b).expect("write");
        }
    }
    let mut third = Engine::new(config).expect("engine");
    third.load_dir(&policy_dir()).expect("load");
    assert_eq!(third.load_stats().rejected, 6);
    assert_eq!(third.load_stats().cache_hits, 0);
    let again = third
        .decide(&request(&file_recovery_json()))
        .expect("valid");
    assert_eq!(again.outcome, Outcome::Allow);
}

#[test]
fn duplicate_policy_names_are_refused_and_folder_load_is_all_or_nothing() {
    let mut e = Engine::new(EngineConfig::default()).expect("engine");
    e.load_file(&policy("baseline")).expect("first");
    let err = e.load_file(&policy("baseline")).unwrap_err().to_string();
    assert!(err.contains("already used"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(policy("file-recovery"), dir.path().join("a.wasm")).expect("copy");
    std::fs::write(dir.path().join("b.wasm"), b"not wasm at all").expect("write");
    let mut e = Engine::new(EngineConfig::default()).expect("engine");
    let err = e.load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("b.wasm"), "{err}");
    assert_eq!(e.policies().count(), 0, "a.wasm must not stay loaded");
    assert!(e.known_tasks().is_empty());
}

/// Many requests that exercise every outcome.
fn varied_requests() -> Vec<jitgate::Request> {
    let mut out = Vec::new();
    for hour in [0u64, 6, 7, 12, 18, 19, 23] {
        for (roles, state, ttl) in [
            (vec!["helpdesk"], "open", 600),
            (vec!["helpdesk"], "closed", 600),
            (vec!["sre"], "in-progress", 7200),
            (vec!["helpdesk"], "on-hold", 30_000),
        ] {
            let mut v = file_recovery_json();
            v["id"] = format!("r-{hour}-{state}-{ttl}").into();
            v["now"] = (WED_10_UTC - 10 * 3600 + hour * 3600).into();
            v["subject"]["roles"] = serde_json::json!(roles);
            v["ticket"]["state"] = state.into();
            v["requested-ttl"] = ttl.into();
            out.push(request(&v));
            v["task"] = "saas-admin".into();
            v["entitlement"] = if hour % 2 == 0 {
                "okta:read"
            } else {
                "okta:admin"
            }
            .into();
            out.push(request(&v));
        }
    }
    out
}

#[test]
fn concurrent_decisions_match_sequential_ones() {
    let engine = examples();
    let reqs = varied_requests();
    let summary = |d: jitgate::Decision| {
        (
            d.outcome,
            d.ttl,
            d.revoke_on_ticket_close,
            d.approvals,
            d.reasons,
        )
    };
    let sequential: Vec<_> = reqs
        .iter()
        .map(|r| summary(engine.decide(r).expect("valid")))
        .collect();
    let outcomes: std::collections::HashSet<_> = sequential.iter().map(|s| s.0).collect();
    assert_eq!(outcomes.len(), 3, "the corpus should produce every outcome");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (engine, reqs) = (&engine, &reqs);
                s.spawn(move || {
                    // Each thread walks the corpus from a different offset.
                    (0..reqs.len())
                        .map(|i| (i + t * 7) % reqs.len())
                        .map(|i| (i, summary(engine.decide(&reqs[i]).expect("valid"))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, got) in h.join().expect("thread") {
                assert_eq!(got, sequential[i], "request {i} differs under concurrency");
            }
        }
    });
}

/// The example set under `config`, with a wall-clock budget no loaded test
/// machine can exhaust: these tests compare decisions, and a 50 ms deadline
/// missed under load would be a difference that is not the one under test.
fn examples_with(config: EngineConfig) -> Engine {
    let mut e = Engine::new(EngineConfig {
        sandbox: jitgate::SandboxLimits {
            timeout: std::time::Duration::from_secs(10),
            ..config.sandbox
        },
        ..config
    })
    .expect("engine");
    let n = e.load_dir(&policy_dir()).expect("example policies load");
    assert_eq!(n, 6);
    e
}

#[test]
fn per_worker_isolation_decides_exactly_like_per_decision() {
    let fresh = examples_with(EngineConfig::default());
    let warm = examples_with(EngineConfig {
        isolation: Isolation::PerWorker,
        ..EngineConfig::default()
    });
    let reqs = varied_requests();
    let summary = |d: jitgate::Decision| {
        let traces: Vec<_> = d
            .policies
            .iter()
            .map(|p| (p.name.clone(), p.verdict, p.reason.clone(), p.ttl))
            .collect();
        (
            d.outcome,
            d.ttl,
            d.revoke_on_ticket_close,
            d.approvals,
            d.reasons,
            traces,
        )
    };
    // Twice round the corpus, so the second pass runs on reused instances
    // that have already judged every kind of request.
    for pass in 0..2 {
        for (i, r) in reqs.iter().enumerate() {
            let want = summary(fresh.decide(r).expect("valid"));
            let got = summary(warm.decide(r).expect("valid"));
            assert_eq!(got, want, "pass {pass}, request {i}");
        }
    }
    // Same under concurrency: each thread keeps its own warm instances.
    std::thread::scope(|s| {
        for t in 0..3 {
            let (warm, fresh, reqs) = (&warm, &fresh, &reqs);
            s.spawn(move || {
                for i in (0..reqs.len()).map(|i| (i + t * 5) % reqs.len()) {
                    let want = summary(fresh.decide(&reqs[i]).expect("valid"));
                    assert_eq!(
                        summary(warm.decide(&reqs[i]).expect("valid")),
                        want,
                        "thread {t}, request {i}"
                    );
                }
            });
        }
    });
}

#[test]
fn per_worker_isolation_gives_every_call_the_whole_fuel_budget() {
    // A budget a few evaluations would exhaust if fuel carried over between
    // calls on a reused instance.
    let fuel = 200_000;
    let e = examples_with(EngineConfig {
        isolation: Isolation::PerWorker,
        sandbox: jitgate::SandboxLimits {
            fuel,
            ..Default::default()
        },
        ..EngineConfig::default()
    });
    let req = request(&file_recovery_json());
    let first = e.decide(&req).expect("valid");
    let used: u64 = first.policies.iter().map(|p| p.fuel).max().unwrap_or(0);
    assert!(
        used > 0 && used * 4 < fuel,
        "one evaluation uses {used} of {fuel}"
    );
    for _ in 0..(fuel / used.max(1)) * 3 {
        let d = e.decide(&req).expect("valid");
        assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    }
}

#[test]
fn engines_without_the_instance_pool_decide_the_same() {
    let pooled = examples_with(EngineConfig::default());
    let on_demand = examples_with(EngineConfig {
        instance_pool: None,
        ..EngineConfig::default()
    });
    for r in varied_requests() {
        let a = pooled.decide(&r).expect("valid");
        let b = on_demand.decide(&r).expect("valid");
        assert_eq!((a.outcome, a.ttl, a.reasons), (b.outcome, b.ttl, b.reasons));
    }
}

/// A request at every size bound (64 roles, groups and attributes of 1 KiB,
/// a 4 KiB justification: ≈200 KiB copied into each instance) is more than
/// the SDK's 64 KiB guest arena holds, so the guest's allocations spill to
/// dlmalloc. It must decide exactly like the small request it extends, in a
/// fresh instance and, repeatedly, in a reused one.
#[test]
fn requests_at_the_size_bounds_spill_past_the_guest_arena_and_decide_the_same() {
    let kib = |c: char| c.to_string().repeat(1024);
    let small = file_recovery_json();
    let mut big = small.clone();
    let mut roles: Vec<String> = (0..63)
        .map(|i| format!("r{i}-{}", kib('r'))[..1024].to_string())
        .collect();
    roles.push("helpdesk".into());
    big["subject"]["roles"] = serde_json::json!(roles);
    let groups: Vec<String> = (0..64)
        .map(|i| format!("g{i}-{}", kib('g'))[..1024].to_string())
        .collect();
    big["subject"]["groups"] = serde_json::json!(groups);
    let mut attrs = serde_json::Map::new();
    attrs.insert("tz-offset-minutes".into(), serde_json::json!("60"));
    for i in 0..63 {
        attrs.insert(format!("k{i}"), serde_json::json!(kib('v')));
    }
    big["attributes"] = serde_json::Value::Object(attrs);
    big["justification"] =
        serde_json::json!(format!("restore the share {}", "x".repeat(4096 - 18)));

    let summary = |d: &jitgate::Decision| {
        let verdicts: Vec<_> = d
            .policies
            .iter()
            .map(|p| (p.name.clone(), p.verdict, p.ttl))
            .collect();
        (d.outcome, d.ttl, verdicts)
    };
    for isolation in [Isolation::PerDecision, Isolation::PerWorker] {
        let e = examples_with(EngineConfig {
            isolation,
            ..EngineConfig::default()
        });
        let want = e.decide(&request(&small)).expect("small request is valid");
        assert_eq!(want.outcome, Outcome::Allow);
        for round in 0..3 {
            let got = e
                .decide(&request(&big))
                .expect("a request at the bounds is valid");
            assert_eq!(
                summary(&got),
                summary(&want),
                "{isolation:?}, round {round}"
            );
            let fuel = |d: &jitgate::Decision| d.policies.iter().map(|p| p.fuel).sum::<u64>();
            assert!(
                fuel(&got) > fuel(&want),
                "the big request was really copied in"
            );
        }
        // The reused instances still answer small requests afterwards.
        assert_eq!(
            summary(&e.decide(&request(&small)).expect("valid")),
            summary(&want)
        );
    }
}
