//! Hostile clients (issue 9): what one crafted request, path or token can
//! do to the service, each test named after its attack, on both stores.

use jitgate_tests::http::{get, post, send, send_with};
use jitgate_tests::jitgate_audit;
use jitgate_tests::server::{Backend, Server, TestStore, body, start, wait_for};
use jitgate_tests::tickets::{now_ms, seed, sign_generic};
use serde_json::{Value, json};
use std::time::Duration;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

fn grant(s: &Server, id: &str) -> Value {
    get(s.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json()
}

fn wait_state(s: &Server, id: &str, want: &str, secs: u64) -> Value {
    wait_for(Duration::from_secs(secs), || {
        let g = grant(s, id);
        (g["state"] == want).then_some(g)
    })
    .unwrap_or_else(|| panic!("grant {id} never became {want}: {}", grant(s, id)))
}

/// Run `f` on the grant document of `id` as stored, and store the result
/// as raw text: how a row written by an older jitgate, a bad restore or a
/// disk error looks to the service.
fn damage_doc(store: &TestStore, id: &str, f: impl FnOnce(&mut Value)) {
    let read = |doc: &str| -> Value { serde_json::from_str(doc).expect("stored doc is JSON") };
    match &store.db {
        None => {
            let c = rusqlite::Connection::open(&store.url).expect("open sqlite");
            c.busy_timeout(Duration::from_secs(10)).expect("busy");
            let doc: String = c
                .query_row("SELECT doc FROM grants WHERE id = ?1", [id], |r| r.get(0))
                .expect("row");
            let mut v = read(&doc);
            f(&mut v);
            c.execute(
                "UPDATE grants SET doc = ?2 WHERE id = ?1",
                [id, &v.to_string()],
            )
            .expect("update");
        }
        Some(db) => {
            let rows = db.query(&format!("SELECT doc FROM grants WHERE id = '{id}'"));
            let doc = rows[0][0].clone().expect("doc");
            let mut v = read(&doc);
            f(&mut v);
            let text = v.to_string().replace('\'', "''");
            db.exec(&format!(
                "UPDATE grants SET doc = '{text}' WHERE id = '{id}'"
            ))
            .expect("update");
        }
    }
}

fn audit_ok(s: &Server) {
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "audit chain: {v}");
}

/// Issue 9 item 1: one request with `opened-at: u64::MAX` was accepted,
/// could not be read back, and stopped every expiry sweep. Now it is
/// refused naming the field; and a row that is damaged anyway (older
/// versions, restores) is quarantined while the sweep, the listing and a
/// restart carry on, and that grant still ends on time.
fn poisoned_opened_at_cannot_stop_revocation(b: Backend) {
    let (guard, s) = start(b, "");
    let mut poison = body("poison", "alice", "file-recovery", 60);
    poison["ticket"]["opened-at"] = json!(18446744073709551615u64);
    // Only a trusted pipeline may send ticket facts at all.
    for path in ["/v1/requests", "/v1/decisions"] {
        let r = post(s.addr, path, Some("t-pipe"), &poison);
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["field"], "ticket.opened-at", "{}", r.body);
    }
    poison["ticket"]["opened-at"] = json!("10000-01-01T00:00:00Z");
    let r = post(s.addr, "/v1/requests", Some("t-pipe"), &poison);
    assert_eq!(r.json()["error"]["field"], "ticket.opened-at", "{}", r.body);

    // A grant whose stored document is damaged the way the old bug did it.
    let damaged = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("damaged", "alice", "file-recovery", 4)),
    );
    assert_eq!(damaged.status, 201, "{}", damaged.body);
    let damaged = id_of(&damaged.json());
    damage_doc(&guard.1, &damaged, |v| {
        v["request"]["ticket"]["opened-at"] = json!("18446744073709551615");
    });
    let canary = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("canary", "alice", "file-recovery", 1)),
    );
    assert_eq!(canary.status, 201, "{}", canary.body);
    let canary = id_of(&canary.json());

    // Reads carry on: the damaged grant reads back, flagged.
    let g = get(s.addr, &format!("/v1/grants/{damaged}"), Some("t-admin"));
    assert_eq!(g.status, 200, "{}", g.body);
    assert!(g.json()["quarantined"].is_string(), "{}", g.body);
    let list = get(s.addr, "/v1/grants?limit=500", Some("t-admin"));
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["grants"].as_array().map(Vec::len), Some(2));
    let own = get(s.addr, "/v1/grants", Some("t-alice"));
    assert_eq!(own.status, 200, "{}", own.body);

    // The sweep carries on: the canary and the damaged grant both end.
    wait_state(&s, &canary, "expired", 10);
    let ended = wait_state(&s, &damaged, "expired", 15);
    assert_eq!(ended["ended-by"], "scheduler", "{ended}");
    let m = get(s.addr, "/metrics", None).body;
    assert!(m.contains("jitgate_quarantined_grants 1"), "{m}");
    let (clean, out) = jitgate_audit(&guard.1.url, &["quarantine"]);
    assert!(!clean, "quarantine listed nothing: {out}");
    assert!(out.contains(&damaged), "{out}");
    assert!(out.contains("18446744073709551615"), "original kept: {out}");

    // A restart comes up, and a new grant still expires.
    let cfg = guard.0.path().join("jitgate.toml");
    s.kill();
    let s = Server::start(&cfg);
    assert_eq!(get(s.addr, "/readyz", None).status, 200);
    assert_eq!(grant(&s, &damaged)["state"], "expired");
    let after = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("after", "alice", "file-recovery", 1)),
    );
    wait_state(&s, &id_of(&after.json()), "expired", 10);
    audit_ok(&s);
}

/// Issue 9 item 6: a NUL in a request id once failed a whole PostgreSQL
/// group-commit batch (other clients got 503s); NULs and escapes in paths
/// reached the store.
fn nul_in_request_id_fails_nobody_else(b: Backend) {
    let (_g, s) = start(b, "");
    let mut bad = body("a\u{0}b", "alice", "file-recovery", 60);
    for path in ["/v1/decisions", "/v1/requests"] {
        let r = post(s.addr, path, Some("t-pipe"), &bad);
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["field"], "id");
    }
    bad["id"] = json!("ok-id");
    bad["subject"]["groups"] = json!(["x\u{1b}]0;pwned\u{7}"]);
    let r = post(s.addr, "/v1/requests", Some("t-pipe"), &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "subject.groups[0]");
    // Concurrent honest decisions are unaffected.
    let honest: Vec<_> = (0..8)
        .map(|i| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let mut v = body(&format!("h{i}"), "alice", "file-recovery", 60);
                if i % 2 == 0 {
                    v["id"] = json!(format!("n\u{0}{i}"));
                }
                (i, post(addr, "/v1/decisions", Some("t-pipe"), &v).status)
            })
        })
        .collect();
    for h in honest {
        let (i, status) = h.join().expect("thread");
        assert_eq!(status, if i % 2 == 0 { 422 } else { 200 }, "client {i}");
    }
    for path in [
        "/v1/grants/%00",
        "/v1/grants/x%1b%5b2J",
        "/v1/grants?subject=a%00b",
    ] {
        let r = get(s.addr, path, Some("t-admin"));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    let r = post(
        s.addr,
        "/v1/ticket-sources/T%00/events",
        None,
        &json!({"state": "closed"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    audit_ok(&s);
}

/// Issue 9 item 10: duplicate keys were accepted, the last one winning, so
/// a policy and an auditor could read different values.
fn duplicate_json_keys_are_refused(b: Backend) {
    let (_g, s) = start(b, "");
    let v = body("dup", "alice", "file-recovery", 60);
    let text = v.to_string();
    let dup_top = text.replacen("\"id\":\"dup\"", "\"id\":\"dup\",\"id\":\"other\"", 1);
    let dup_deep = text.replacen(
        "\"state\":\"open\"",
        "\"state\":\"closed\",\"state\":\"open\"",
        1,
    );
    assert_ne!(dup_top, text);
    assert_ne!(dup_deep, text);
    for raw in [dup_top, dup_deep] {
        for path in ["/v1/requests", "/v1/decisions"] {
            let r = send(s.addr, "POST", path, Some("t-pipe"), Some(raw.as_bytes()));
            assert_eq!(r.status, 400, "{path} {raw}: {}", r.body);
            assert!(r.body.contains("duplicate key"), "{}", r.body);
        }
    }
    // A ticket system's event, genuinely signed, with a duplicate key.
    let dup = br#"{"event-id":"e1","ticket":"T-1","state":"open","state":"closed","updated-at":"2026-11-25T10:00:00Z"}"#;
    let r = send_with(
        s.addr,
        "POST",
        "/v1/ticket-sources/generic/events",
        &sign_generic(dup, now_ms()),
        Some(dup),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("duplicate key"), "{}", r.body);
    let list = get(s.addr, "/v1/grants", Some("t-admin")).json();
    assert_eq!(list["grants"], json!([]));
}

/// Issue 9 item 13: request ids were one namespace across principals: a
/// requester could take an id a pipeline would use, and the 409 named the
/// other principal's grant.
fn request_id_squatting_does_not_reach_another_principal(b: Backend) {
    let (_g, s) = start(b, "");
    let mine = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("shared-1", "alice", "file-recovery", 600)),
    );
    assert_eq!(mine.status, 201, "{}", mine.body);
    let mine = id_of(&mine.json());
    let mut theirs_body = body("shared-1", "alice", "file-recovery", 300);
    theirs_body["justification"] = json!("a different body from the pipeline");
    let theirs = post(s.addr, "/v1/requests", Some("t-pipe"), &theirs_body);
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let theirs = id_of(&theirs.json());
    assert_ne!(mine, theirs);
    // Each principal's replay finds its own grant.
    let replay = post(s.addr, "/v1/requests", Some("t-pipe"), &theirs_body);
    assert_eq!(
        (replay.status, id_of(&replay.json())),
        (200, theirs.clone())
    );
    let clash = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("shared-1", "alice", "file-recovery", 900)),
    );
    assert_eq!(clash.status, 409, "{}", clash.body);
    assert!(!clash.body.contains(&theirs), "{}", clash.body);
}

/// Issue 9 item 15: 403 refusals were not audited.
fn forbidden_attempts_are_audited(b: Backend) {
    let (_g, s) = start(b, "");
    let r = get(s.addr, "/v1/audit", Some("t-alice"));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        s.addr,
        "/v1/grants/g-nope/revoke",
        Some("t-alice"),
        &json!({}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let records = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json();
    let refusals: Vec<&Value> = records["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["kind"] == "auth-failure" && r["data"]["status"] == 403)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(refusals.len(), 2, "{records}");
    assert!(
        refusals.iter().all(|r| r["actor"] == "alice"),
        "{refusals:?}"
    );
    assert_eq!(refusals[0]["data"]["route"], "/v1/audit");
    assert_eq!(refusals[1]["data"]["path"], "/v1/grants/g-nope/revoke");
    assert!(refusals[1]["data"]["reason"].is_string());
    audit_ok(&s);
}

/// Issue 9's principle: whatever is accepted reads back, through every
/// path (get, list, evidence, replay, sweep, restart), at every bound.
fn every_accepted_shape_at_its_bounds_reads_back(b: Backend) {
    let (guard, s) = start(b, "");
    let long = |c: char| c.to_string().repeat(1024 / c.len_utf8());
    let base = |id: &str| {
        let mut v = body(id, "alice", "file-recovery", 1);
        v["subject"]["roles"] = json!(["helpdesk"]);
        v
    };
    let mut shapes = Vec::new();
    // Longest strings, multi-byte and right-to-left text.
    let mut v = base(&long('i'));
    let who = long('é');
    v["subject"]["id"] = json!(who);
    v["ticket"]["assignee"] = json!(who);
    v["resource"] = json!(long('\u{05d0}'));
    v["entitlement"] = json!(long('😀'));
    v["justification"] = json!("line\n\t".repeat(4096 / 6) + "ok");
    v["ticket"]["id"] = json!(long('x'));
    shapes.push(v);
    // Most items, times at both ends, priorities at both ends.
    let mut v = base("items");
    v["subject"]["roles"] = json!(
        std::iter::once("helpdesk".to_string())
            .chain((1..64).map(|i| format!("role-{i}")))
            .collect::<Vec<_>>()
    );
    v["subject"]["groups"] = json!((0..64).map(|i| format!("g{i}")).collect::<Vec<_>>());
    let mut attrs = serde_json::Map::new();
    attrs.insert("tz-offset-minutes".into(), json!("60"));
    for i in 1..64 {
        attrs.insert(format!("k{i}"), json!("v\nw"));
    }
    v["attributes"] = Value::Object(attrs);
    v["subject"]["mfa-at"] = json!("9999-12-31T23:59:59Z");
    v["ticket"]["opened-at"] = json!(0);
    v["ticket"]["priority"] = json!(1);
    shapes.push(v);
    let mut v = base("ttl");
    v["requested-ttl"] = json!(u32::MAX);
    v["ticket"]["opened-at"] = json!(253_402_300_799u64);
    v["ticket"]["priority"] = json!(5);
    shapes.push(v);

    let mut ids = Vec::new();
    for v in &shapes {
        let r = post(s.addr, "/v1/requests", Some("t-pipe"), v);
        assert_eq!(r.status, 201, "{}", r.body);
        let id = id_of(&r.json());
        let replay = post(s.addr, "/v1/requests", Some("t-pipe"), v);
        assert_eq!((replay.status, id_of(&replay.json())), (200, id.clone()));
        let dry = post(s.addr, "/v1/decisions", Some("t-pipe"), v);
        assert_eq!(dry.status, 200, "{}", dry.body);
        let ev = get(
            s.addr,
            &format!("/v1/grants/{id}/evidence"),
            Some("t-audit"),
        );
        assert_eq!(ev.status, 200, "{}", ev.body);
        assert_eq!(
            ev.json()["grant"]["request"]["subject"],
            grant(&s, &id)["request"]["subject"]
        );
        ids.push(id);
    }
    let list = get(s.addr, "/v1/grants?limit=500", Some("t-admin"));
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["grants"].as_array().map(Vec::len), Some(3));
    // The sweep ends the short ones (the u32::MAX one is clamped by policy).
    for id in &ids[..2] {
        wait_state(&s, id, "expired", 10);
    }
    let cfg = guard.0.path().join("jitgate.toml");
    s.kill();
    let s = Server::start(&cfg);
    for (id, v) in ids.iter().zip(&shapes) {
        let g = grant(&s, id);
        assert_eq!(g["request"]["resource"], v["resource"], "{id}");
        assert_eq!(g["request"]["entitlement"], v["entitlement"], "{id}");
        assert_eq!(g["request"]["justification"], v["justification"], "{id}");
    }
    let m = get(s.addr, "/metrics", None).body;
    assert!(m.contains("jitgate_quarantined_grants 0"), "{m}");
    audit_ok(&s);
}

both_stores!(
    poisoned_opened_at_cannot_stop_revocation,
    nul_in_request_id_fails_nobody_else,
    duplicate_json_keys_are_refused,
    request_id_squatting_does_not_reach_another_principal,
    forbidden_attempts_are_audited,
    every_accepted_shape_at_its_bounds_reads_back,
);
