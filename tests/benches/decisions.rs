//! Decisions per second through HTTP: R `jitgate serve` replicas (the release
//! binary) sharing one store, C concurrent clients on loopback sending a
//! fixed number of `POST /v1/decisions` round-robin over the replicas. Each
//! dry-run decision appends an audit record, so this also measures the
//! shared store's serialized audit chain.
//!
//! `cargo build --release -p jitgate && ./dev policies &&
//!  cargo bench -p jitgate-tests --bench decisions -- [REPLICAS] [CLIENTS] [REQUESTS] [sqlite|postgres]`
//! (defaults 1, 8, 4000, postgres). SQLite is one process only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use jitgate_tests::http::post;
use jitgate_tests::server::{Backend, Server, TestStore, body, write_config_with};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let replicas: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let requests: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4000);
    let backend = match args.get(3).map(String::as_str) {
        Some("sqlite") => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    assert!(
        backend == Backend::Postgres || replicas == 1,
        "SQLite serves one process"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(backend, dir.path());
    let servers: Vec<Server> = (0..replicas)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            Server::start(&write_config_with(&d, &store.url, ""))
        })
        .collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let payload = body("bench", "alice", "file-recovery", 600);
    // Warm up each replica (compiled-module cache, connections).
    for a in &addrs {
        for _ in 0..20 {
            post(*a, "/v1/decisions", Some("t-pipe"), &payload);
        }
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..clients {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let r = post(
                        addrs[i % addrs.len()],
                        "/v1/decisions",
                        Some("t-pipe"),
                        &payload,
                    );
                    if r.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!("| store | replicas | clients | requests | failed | decisions/s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {replicas} | {clients} | {requests} | {} | {:.0} |",
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        },
        failed.load(Ordering::Relaxed),
        requests as f64 / secs
    );
}
