//! What serializing the audit chain costs: appends per second with 1 and 4
//! concurrent writers, on SQLite (one process, a mutex) and on PostgreSQL
//! (`pg_advisory_xact_lock` across connections, as across replicas).
//!
//! `cargo bench -p jitgate-tests --bench audit -- [APPENDS_PER_WRITER]`
//! (default 500; needs the PostgreSQL server the tests use).

use std::sync::Arc;
use std::time::Instant;

use jitgate::audit::AuditDraft;
use jitgate::store::Store;
use jitgate_tests::server::{Backend, TestStore};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let per: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    println!("| store | writers | appends | appends/s | chain ok |");
    println!("|---|---|---|---|---|");
    for (name, b) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        for writers in [1usize, 4] {
            let dir = tempfile::tempdir().expect("tempdir");
            let t = TestStore::new(b, dir.path());
            let store: Arc<dyn Store> = jitgate::store::open(&t.url).expect("open");
            let started = Instant::now();
            std::thread::scope(|sc| {
                for w in 0..writers {
                    let store = store.clone();
                    sc.spawn(move || {
                        for i in 0..per {
                            let d = AuditDraft::new(
                                i as i64,
                                "decision",
                                &format!("writer-{w}"),
                                serde_json::json!({"i": i}),
                            );
                            store.append_audit(vec![d]).expect("append");
                        }
                    });
                }
            });
            let secs = started.elapsed().as_secs_f64();
            let total = per * writers;
            let ok = matches!(jitgate::service::verify_store(store.as_ref()), Ok(Ok(n)) if n as usize == total);
            println!(
                "| {name} | {writers} | {total} | {:.0} | {ok} |",
                total as f64 / secs
            );
        }
    }
}
