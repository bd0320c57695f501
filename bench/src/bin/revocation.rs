//! Revocation lag under load: N active grants whose expiries fall within one
//! window, ended by the real scheduler against a real SQLite file.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin revocation -- [N] [WINDOW_SECS] [BACKGROUND] [REPLICAS]`
//! (defaults 10000, 60, 0, 1). Prints a markdown table of the lag from each
//! grant's `expires-at` to it being `expired` with its deprovisioning event
//! queued. `JITGATE_BENCH_STORE=postgres` uses a fresh PostgreSQL database
//! instead of a SQLite file; with it, REPLICAS > 1 runs that many
//! schedulers, each with its own store (own connection pool) and service, as
//! separate replicas would, racing to end the same grants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::grant::{Grant, GrantState};
use jitgate::service::{Service, ServiceConfig, now_millis};
use jitgate::store::{Effects, GrantFilter, Store};
use jitgate::{Engine, EngineConfig};

fn grant(i: usize, now: i64, expires_at: i64, template: &jitgate::Request) -> Grant {
    let mut request = template.clone();
    request.id = format!("bench-{i}");
    Grant {
        id: format!("g-bench-{i:06}"),
        requested_by: "bench".into(),
        state: GrantState::Active,
        outcome: jitgate::Outcome::Allow,
        decision: serde_json::json!({}),
        ttl: ((expires_at - now) / 1000).max(1) as u32,
        revoke_on_ticket_close: true,
        created_at: now,
        issued_at: Some(now),
        expires_at: Some(expires_at),
        ..Grant::of(request)
    }
}

fn pct(v: &[i64], q: f64) -> i64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let window_s: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    let background: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let replicas: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
    let pg = std::env::var("JITGATE_BENCH_STORE").is_ok_and(|v| v == "postgres");
    assert!(
        pg || replicas == 1,
        "several replicas need JITGATE_BENCH_STORE=postgres"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let backend = if pg {
        jitgate_tests::server::Backend::Postgres
    } else {
        jitgate_tests::server::Backend::Sqlite
    };
    let test_store = jitgate_tests::server::TestStore::new(backend, dir.path());
    let store: Arc<dyn Store> = jitgate::store::open(&test_store.url).expect("store");
    let template = jitgate_tests::request(&jitgate_tests::file_recovery_json());

    // Insert the grants; expiries start after the insert phase ends.
    let insert_started = Instant::now();
    let now = now_millis();
    let est_insert_ms = (n + background) as i64 * if pg { 3 } else { 1 } + 5_000;
    let first_expiry = now + est_insert_ms;
    for i in 0..n {
        let at = first_expiry + (i as i64 * window_s * 1000) / n.max(1) as i64;
        store
            .create_grant(&grant(i, now, at, &template), Effects::default())
            .expect("insert");
    }
    for i in 0..background {
        store
            .create_grant(
                &grant(n + i, now, now + 86_400_000, &template),
                Effects::default(),
            )
            .expect("insert");
    }
    let insert_took = insert_started.elapsed();
    let first_expiry_in = first_expiry - now_millis();
    assert!(
        first_expiry_in > 0,
        "insert phase overran the first expiry; raise the estimate"
    );

    let services: Vec<Arc<Service>> = (0..replicas)
        .map(|i| {
            let engine = Engine::new(EngineConfig::default()).expect("engine");
            let s = if i == 0 {
                store.clone()
            } else {
                jitgate::store::open(&test_store.url).expect("store")
            };
            Arc::new(Service::new(engine, s, ServiceConfig::default()))
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cpu_before = cpu_time();
    let wall = Instant::now();
    rt.block_on(async {
        let scheds: Vec<_> = services
            .iter()
            .map(|s| tokio::spawn(jitgate::service::scheduler::run(s.clone())))
            .collect();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let st = store.clone();
            let left = tokio::task::spawn_blocking(move || st.count_active().expect("count"))
                .await
                .expect("join") as usize;
            if left <= background {
                break;
            }
        }
        for s in scheds {
            s.abort();
        }
    });
    let wall = wall.elapsed();
    let cpu = cpu_time() - cpu_before;

    let mut lags = Vec::with_capacity(n);
    let mut before = None;
    loop {
        let page = store
            .grants(&GrantFilter {
                state: Some(GrantState::Expired),
                limit: 500,
                before: before.clone(),
                ..GrantFilter::default()
            })
            .expect("list");
        let Some(last) = page.last() else { break };
        before = Some((last.created_at, last.id.clone()));
        lags.extend(page.iter().filter_map(|g| g.revocation_lag_ms));
    }
    lags.sort_unstable();
    assert_eq!(lags.len(), n, "every grant expired exactly once");
    let ends = store
        .audit_page(0, usize::MAX / 2)
        .expect("audit")
        .iter()
        .filter(|r| r.draft.kind == "transition" && r.draft.data["to"] == "expired")
        .count();
    assert_eq!(ends, n, "one expiry record per grant");
    println!(
        "store: {}, replicas: {replicas}; grants expiring: {n} over {window_s} s, other active grants: {background}, insert took {:.1} s",
        if pg { "postgres" } else { "sqlite" },
        insert_took.as_secs_f64()
    );
    println!(
        "| grants | window s | p50 lag ms | p99 lag ms | max lag ms | scheduler CPU s | wall s |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {window_s} | {} | {} | {} | {:.2} | {:.1} |",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.last().copied().unwrap_or(0),
        cpu,
        wall.as_secs_f64() - first_expiry_in as f64 / 1000.0
    );
}

/// Process CPU seconds (user + system) from /proc/self/stat.
fn cpu_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
