//! Embedding jitgate: decide with the engine alone, then run the grant
//! service (SQLite, no HTTP) in an async main with a closure provisioner.
//! Exits non-zero on any failure.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use jitgate::provision;
use jitgate::request::{Ticket, TicketState};
use jitgate::service::{Principal, Role, Service, ServiceConfig};
use jitgate::store::Store;
use jitgate::store::sqlite::SqliteStore;
use jitgate::{Engine, Outcome, Request};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn request(id: &str) -> Result<Request, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(Request::builder("file-recovery")
        .id(id)
        .subject("alice")
        .roles(["helpdesk"])
        .mfa_at(now)
        .resource("fileserver-01")
        .entitlement("operator")
        .justification("restore the deleted finance share")
        .ttl(600)
        .ticket(Ticket {
            id: "INC-1".into(),
            state: TicketState::Open,
            priority: 3,
            assignee: Some("alice".into()),
            opened_at: now - 600,
        })
        .build()?)
}

async fn run() -> Result<(), Error> {
    let policies = std::env::var("JITGATE_POLICY_DIR").unwrap_or_else(|_| "target/policies".into());
    // `business-hours` asks for approval outside Monday–Friday 07:00–19:00
    // by the wall clock; this example must answer the same at any hour, so
    // it loads the other example policies only.
    let clock_free = tempfile::tempdir()?;
    for entry in std::fs::read_dir(&policies)? {
        let path = entry?.path();
        let is_module = path.extension().is_some_and(|e| e == "wasm");
        if is_module && path.file_stem().is_some_and(|s| s != "business-hours") {
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, clock_free.path().join(name))?;
            }
        }
    }
    let started = std::time::Instant::now();
    let engine = Engine::builder().policies(clock_free.path()).build()?;
    println!(
        "loaded {} policies from {policies} (without business-hours) in {:.2} s",
        engine.policies().count(),
        started.elapsed().as_secs_f64()
    );

    // 1. Decide only: no store, no runtime needed.
    let decision = engine.decide_now(&request("embed-decide")?)?;
    println!("decision: {} for {} s", decision.outcome, decision.ttl);
    if decision.outcome != Outcome::Allow {
        return Err(format!(
            "expected allow, got {}: {:?}",
            decision.outcome, decision.reasons
        )
        .into());
    }

    // 2. The grant service over a temporary SQLite file.
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("jitgate.db"))?);
    // The pipeline speaks for the ticket system: the ticket facts in its
    // requests are recorded in the registry and decided on. (For anyone
    // else, a typed request's ticket facts are replaced by the registry's.)
    let service = Arc::new(
        Service::new(engine, store, ServiceConfig::default())
            .with_trusted_context(["ci-pipeline".to_string()].into()),
    );
    let pipeline = Principal::new("ci-pipeline", [Role::Pipeline]);

    // 3. Background tasks: expiry and provisioning, events to a closure.
    let (events, mut delivered) = tokio::sync::mpsc::unbounded_channel();
    let provisioner = Arc::new(provision::from_fn(move |event| {
        let events = events.clone();
        async move {
            println!(
                "provision: {} {} (sequence {})",
                event.kind, event.grant_id, event.sequence
            );
            events.send(event.kind).map_err(|e| e.to_string())
        }
    }));
    let background = service.start_background(provisioner)?;

    // 4. Submit, then release.
    let (grant, created) = service.submit_async(&pipeline, request("embed-1")?).await?;
    println!(
        "grant {}: {} (new: {created})",
        grant.id,
        grant.state.as_str()
    );
    let released = service.release_async(&pipeline, &grant.id).await?;
    println!("grant {}: {}", released.id, released.state.as_str());

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await {
            Ok(Some(kind)) => kinds.push(kind),
            _ => return Err(format!("provisioning events not delivered (got {kinds:?})").into()),
        }
    }
    if kinds != ["grant-activated", "grant-ended"] {
        return Err(format!("unexpected events {kinds:?}").into());
    }
    drop(background);
    println!("ok");
    Ok(())
}
