//! Replay speed (issue 15 item 3, target ≥ 5,000 records/s): N recorded
//! requests and dry runs, made through the service on a SQLite store, re-
//! decided against the running set (no change) and a tightened one (a
//! tenth change), by the library on 1 thread and on every CPU, and by the
//! `jitgate replay` binary end to end (process start, candidate load, store
//! read, chain check, report): the release one if built, else the debug one.
//!
//! `cargo build --release -p jitgate && ./dev policies &&
//!  cargo bench -p jitgate-tests --bench replay -- [RECORDS]` (default 10000).

use std::sync::Arc;
use std::time::Instant;

use jitgate::replay::{Options, replay};
use jitgate::service::{Principal, Role, Service, ServiceConfig};
use jitgate::store::Store;
use jitgate::{Engine, EngineConfig};
use jitgate_tests::server::{body, clock_free_policies};
use serde_json::json;

fn engine(dir: &std::path::Path, cache: &std::path::Path) -> Engine {
    let mut e = Engine::new(EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    })
    .expect("engine");
    e.load_dir(dir).expect("policies");
    e
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let running = clock_free_policies(dir.path());
    let tight = dir.path().join("tight");
    std::fs::create_dir_all(&tight).expect("mkdir");
    for e in std::fs::read_dir(&running).expect("policies").flatten() {
        // A tenth of the traffic is incident-triage: it all changes.
        if e.file_name() != "incident-triage.wasm" {
            std::fs::copy(e.path(), tight.join(e.file_name())).expect("copy");
        }
    }
    let path = dir.path().join("replay.db");
    let store: Arc<dyn Store> = jitgate::store::open(&path.display().to_string()).expect("store");
    let svc = Service::new(
        engine(&running, &cache),
        store.clone(),
        ServiceConfig::default(),
    );
    let pipe = Principal::new("pipeline", [Role::Pipeline]);
    // Ten kinds of traffic: allows, denies, approvals, an invalid one;
    // requests (grants) and dry runs.
    let template = |i: usize| {
        let id = format!("b-{i}");
        let mut v = match i % 10 {
            0..=2 => body(&id, "alice", "file-recovery", 600),
            3 => body(&id, "alice", "saas-admin", 900),
            4 => {
                let mut v = body(&id, "alice", "file-recovery", 600);
                v["justification"] = json!("fix");
                v
            }
            5 => {
                let mut v = body(&id, "alice", "file-recovery", 600);
                v["ticket"]["assignee"] = json!("bob");
                v
            }
            6 => body(&id, "alice", "incident-triage", 1200),
            7 => body(&id, "alice", "break-glass", 600),
            8 => body(&id, "alice", "db-admin", 600),
            _ => body(&id, "alice", "saas-admin", 300),
        };
        v["now"] = json!(0);
        jitgate::request::from_value(v).expect("request")
    };
    let started = Instant::now();
    let threads = 4;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (svc, pipe) = (&svc, &pipe);
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let req = template(i);
                    // Refusals (invalid) are recorded too; only the record matters.
                    let _ = if i % 2 == 0 {
                        svc.dry_run_request(pipe, req).map(drop)
                    } else {
                        svc.submit(pipe, req).map(drop)
                    };
                }
            });
        }
    });
    println!(
        "recorded {n} requests and dry runs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| replayed by | candidate | threads | records | replayed | changed | seconds | records/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    for (name, set) in [
        ("running set", &running),
        ("without incident-triage", &tight),
    ] {
        let candidate = engine(set, &cache);
        for threads in [1, cpus] {
            let t = Instant::now();
            let r = replay(
                store.as_ref(),
                &candidate,
                &Options {
                    threads,
                    ..Options::default()
                },
            )
            .expect("replay");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "| library | {name} | {threads} | {} | {} | {} | {secs:.3} | {:.0} |",
                r.records,
                r.replayed,
                r.changed,
                r.replayed as f64 / secs
            );
        }
    }
    // The release binary if built, else the debug one (labelled as such).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| jitgate_tests::root().join("target"));
    let Some((bin, profile)) = [("release", "release"), ("debug", "debug build")]
        .iter()
        .map(|(d, p)| (target.join(d).join("jitgate"), *p))
        .find(|(b, _)| b.is_file())
    else {
        println!(
            "\n(no jitgate binary under {}: `cargo build --release -p jitgate` for the end-to-end rows)",
            target.display()
        );
        return;
    };
    for (name, set) in [
        ("running set", &running),
        ("without incident-triage", &tight),
    ] {
        let t = Instant::now();
        let out = std::process::Command::new(&bin)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["replay", "--json", "--store"])
            .arg(&path)
            .arg("--candidate")
            .arg(set)
            .output()
            .expect("run jitgate replay");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let replayed = r["replayed"].as_u64().unwrap_or(0);
        println!(
            "| `jitgate replay` ({profile}, whole process) | {name} | {cpus} | {} | {replayed} | {} | {secs:.3} | {:.0} |",
            r["records"],
            r["changed"],
            replayed as f64 / secs
        );
    }
}
