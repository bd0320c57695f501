//! Crash safety: SIGKILL with grants active and webhooks undelivered, then a
//! restart; and tampering with the stored audit chain.

use hmac::{KeyInit, Mac};
use jitgate_tests::http::{get, post};
use jitgate_tests::server::{
    Backend, Receiver, Server, TestStore, body, wait_for, write_config, write_config_with,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn sqlite_sigkill_with_active_grants_and_undelivered_webhooks_loses_nothing() {
    sigkill_with_active_grants_and_undelivered_webhooks_loses_nothing(Backend::Sqlite);
}

#[test]
fn postgres_sigkill_with_active_grants_and_undelivered_webhooks_loses_nothing() {
    sigkill_with_active_grants_and_undelivered_webhooks_loses_nothing(Backend::Postgres);
}

fn sigkill_with_active_grants_and_undelivered_webhooks_loses_nothing(b: Backend) {
    let receiver = Receiver::start(true); // refuses every delivery at first
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let cfg = write_config_with(
        dir.path(),
        &store.url,
        &format!(
            "[provisioner]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\nsecret-env = \"JITGATE_WEBHOOK_SECRET\"\n",
            receiver.addr
        ),
    );
    let server = Server::start(&cfg);
    let mut ids = Vec::new();
    for i in 0..5 {
        let g = post(
            server.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("c{i}"), "alice", "file-recovery", 2),
        )
        .json();
        assert_eq!(g["state"], "active", "{g}");
        ids.push(g["id"].as_str().unwrap_or_default().to_string());
    }
    // One grant that must survive the crash still active.
    let long = post(
        server.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("c-long", "alice", "file-recovery", 3600),
    )
    .json();
    let long_id = long["id"].as_str().unwrap_or_default().to_string();
    assert!(
        wait_for(Duration::from_secs(10), || (receiver
            .refused
            .load(Ordering::SeqCst)
            >= 1)
            .then_some(()))
        .is_some(),
        "the server never tried to deliver"
    );
    server.kill();
    assert!(receiver.event_ids().is_empty());

    // While it is down, the short grants pass their expiry.
    std::thread::sleep(Duration::from_millis(2500));
    receiver.failing.store(false, Ordering::SeqCst);
    let server = Server::start(&cfg);
    // Ready only after the sweep: the first answer already shows them ended.
    for id in &ids {
        let g = get(server.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json();
        assert_eq!(g["state"], "expired", "{g}");
        assert!(
            g["revocation-lag-ms"].as_i64().unwrap_or(0) > 0,
            "lag recorded honestly: {g}"
        );
    }
    let g = get(
        server.addr,
        &format!("/v1/grants/{long_id}"),
        Some("t-admin"),
    )
    .json();
    assert_eq!(g["state"], "active", "{g}");
    assert_eq!(get(server.addr, "/readyz", None).status, 200);

    // Every event is delivered at least once: activation for all six, end for the five.
    let mut want: BTreeSet<String> = ids
        .iter()
        .flat_map(|id| [format!("{id}:grant-activated"), format!("{id}:grant-ended")])
        .collect();
    want.insert(format!("{long_id}:grant-activated"));
    let got = wait_for(Duration::from_secs(30), || {
        let got: BTreeSet<String> = receiver.event_ids().into_iter().collect();
        want.is_subset(&got).then_some(got)
    });
    assert!(
        got.is_some(),
        "missing deliveries: want {want:?}, got {:?}",
        receiver.event_ids()
    );

    // Deliveries are signed with the shared secret over timestamp.body.
    let deliveries = receiver
        .accepted
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    for d in &deliveries {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test-secret-0123456789").expect("key");
        mac.update(d.timestamp.as_bytes());
        mac.update(b".");
        mac.update(d.body.as_bytes());
        assert_eq!(
            d.signature,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        let v: serde_json::Value = serde_json::from_str(&d.body).expect("json body");
        assert_eq!(v["event-id"], json!(d.event_id));
    }
    let all = get(server.addr, "/v1/grants?limit=100", Some("t-admin")).json();
    assert_eq!(
        all["grants"].as_array().map(Vec::len),
        Some(6),
        "no grant lost"
    );
    let verify = get(server.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(verify["ok"], true, "{verify}");
    server.kill();

    let (ok, text) = jitgate_tests::jitgate_audit(&store.url, &["verify"]);
    assert!(ok, "{text}");
}

#[test]
fn sqlite_editing_one_audit_row_is_named_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let server = Server::start(&cfg);
    for i in 0..3 {
        post(
            server.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("e{i}"), "alice", "file-recovery", 600),
        );
    }
    server.kill();
    let db = dir.path().join("jitgate.db");
    let verify = || jitgate_tests::jitgate_audit(&db.to_string_lossy(), &["verify"]);
    let (ok, text) = verify();
    assert!(ok, "{text}");

    let conn = rusqlite::Connection::open(&db).expect("open db");
    // The append-only trigger refuses an honest mistake...
    assert!(
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 5", [])
            .is_err()
    );
    // ...and the chain catches a deliberate edit past it.
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 5;",
    )
    .expect("tamper");
    drop(conn);
    let (ok, text) = verify();
    assert!(!ok);
    assert!(
        text.contains("record 5: content does not match its hash"),
        "{text}"
    );

    let conn = rusqlite::Connection::open(&db).expect("open db");
    conn.execute_batch("UPDATE audit SET actor = (SELECT actor FROM audit WHERE seq = 4) WHERE seq = 5; DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;")
        .expect("tamper");
    drop(conn);
    let (ok, text) = verify();
    assert!(!ok);
    assert!(
        text.contains("record 4: does not follow record 2"),
        "{text}"
    );
}

#[test]
fn sqlite_export_writes_every_record_as_json_lines() {
    export_writes_every_record_as_json_lines(Backend::Sqlite);
}

#[test]
fn postgres_export_writes_every_record_as_json_lines() {
    export_writes_every_record_as_json_lines(Backend::Postgres);
}

fn export_writes_every_record_as_json_lines(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let cfg = write_config_with(dir.path(), &store.url, "");
    let server = Server::start(&cfg);
    let g = post(
        server.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("x1", "alice", "file-recovery", 600),
    )
    .json();
    server.kill();
    let db = &store.url;
    let (ok, text) = jitgate_tests::jitgate_audit(db, &["export"]);
    assert!(ok);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(lines.len() >= 4, "{text}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], json!(i + 1));
        // The stored Unix ms, and the same time in the answer format.
        assert_eq!(
            jitgate_tests::ms(&l["at-rfc3339"]),
            l["at"].as_i64().unwrap_or(-1),
            "{l}"
        );
    }
    let (ok, text) = jitgate_tests::jitgate_audit(db, &["grant", g["id"].as_str().unwrap_or("")]);
    assert!(ok, "{text}");
    for want in [
        "state active",
        "decision: allow",
        "file-recovery 0.1.0 sha256:",
        "issued ",
        "audit records:",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
}

/// The PostgreSQL twin of the tamper test: the triggers refuse an honest
/// edit, and `audit verify` names a deliberate one made past them.
#[test]
fn postgres_editing_one_audit_row_is_named_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(Backend::Postgres, dir.path());
    let cfg = write_config_with(dir.path(), &store.url, "");
    let server = Server::start(&cfg);
    for i in 0..3 {
        post(
            server.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("e{i}"), "alice", "file-recovery", 600),
        );
    }
    server.kill();
    let verify = || jitgate_tests::jitgate_audit(&store.url, &["verify"]);
    let (ok, text) = verify();
    assert!(ok, "{text}");
    let db = store.db.as_ref().expect("a postgres store");
    assert!(
        db.exec("UPDATE audit SET actor = 'mallory' WHERE seq = 5")
            .is_err()
    );
    assert!(db.exec("DELETE FROM audit WHERE seq = 3").is_err());
    db.exec(
        "ALTER TABLE audit DISABLE TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 5;",
    )
    .expect("tamper");
    let (ok, text) = verify();
    assert!(!ok);
    assert!(
        text.contains("record 5: content does not match its hash"),
        "{text}"
    );
    db.exec("UPDATE audit SET actor = (SELECT actor FROM audit WHERE seq = 4) WHERE seq = 5; ALTER TABLE audit DISABLE TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;")
        .expect("tamper");
    let (ok, text) = verify();
    assert!(!ok);
    assert!(
        text.contains("record 4: does not follow record 2"),
        "{text}"
    );
}
