//! `jitgate serve` end to end: the real binary on a free port, driven over
//! HTTP, with grants that expire on their own, approvals, ticket events,
//! release, roles, malformed input, and the audit chain.

use jitgate_tests::http::{get, post, send_with};
use jitgate_tests::server::{Backend, Server, body, start, wait_for};
use jitgate_tests::tickets::{generic_event, now_ms, seed, sign_generic};
use serde_json::{Value, json};
use std::time::Duration;

fn grant_state(s: &Server, id: &str) -> Value {
    get(s.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json()
}

fn wait_state(s: &Server, id: &str, want: &str, secs: u64) -> Value {
    wait_for(Duration::from_secs(secs), || {
        let g = grant_state(s, id);
        (g["state"] == want).then_some(g)
    })
    .unwrap_or_else(|| panic!("grant {id} never became {want}: {}", grant_state(s, id)))
}

fn allowed_grant_is_active_then_expires_on_time(b: Backend) {
    let (_d, s) = start(b, "");
    let r = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("r1", "alice", "file-recovery", 2)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "active");
    assert_eq!(g["ttl"], 2);
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let expires = jitgate_tests::ms(&g["expires-at"]);
    let ended = wait_state(&s, &id, "expired", 10);
    let lag = ended["revocation-lag-ms"].as_i64().expect("lag recorded");
    assert!(lag >= 0, "ended before expiry: {ended}");
    assert!(jitgate_tests::ms(&ended["ended-at"]) >= expires);
    assert_eq!(ended["ended-by"], "scheduler");
    // The lag is counted just after the sweep's commit, which the read
    // above may have seen first.
    let m = wait_for(Duration::from_secs(5), || {
        let m = get(s.addr, "/metrics", None).body;
        m.contains("jitgate_revocation_lag_seconds_count 1")
            .then_some(m)
    })
    .unwrap_or_else(|| get(s.addr, "/metrics", None).body);
    assert!(m.contains("jitgate_revocation_lag_seconds_count 1"), "{m}");
    assert!(
        m.contains("jitgate_decisions_total{outcome=\"allow\"} 1"),
        "{m}"
    );
}

fn approval_flow_refuses_self_and_outsiders_and_activates_on_quorum(b: Backend) {
    let (_d, s) = start(b, "");
    // carol (oncall, incident commander) asks for a priority-3 triage: needs an incident commander.
    let r = post(
        s.addr,
        "/v1/requests",
        Some("t-carol"),
        &seed(s.addr, &body("r2", "carol", "incident-triage", 600)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "pending", "{g}");
    assert_eq!(g["required"][0]["groups"], json!(["incident-commanders"]));
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/v1/grants/{id}/approve");

    let own = post(s.addr, &path, Some("t-carol"), &json!({}));
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(own.body.contains("own request"), "{}", own.body);
    let outsider = post(s.addr, &path, Some("t-dave"), &json!({}));
    assert_eq!(outsider.status, 403);
    assert!(
        outsider.body.contains("none of the approver groups"),
        "{}",
        outsider.body
    );
    let requester = post(s.addr, &path, Some("t-alice"), &json!({}));
    assert_eq!(requester.status, 403);

    let ok = post(s.addr, &path, Some("t-bob"), &json!({}));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let g = ok.json();
    assert_eq!(g["state"], "active");
    assert_eq!(g["approvals"][0]["approver"], "bob");
    let again = post(s.addr, &path, Some("t-bob"), &json!({}));
    assert_eq!(again.status, 409, "{}", again.body);
}

fn pending_request_lapses_and_rejection_ends_it(b: Backend) {
    let (_d, s) = start(b, "approval-timeout = 1\n");
    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-carol"),
        &seed(s.addr, &body("r3", "carol", "incident-triage", 600)),
    )
    .json();
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let lapsed = wait_state(&s, &id, "lapsed", 10);
    assert_eq!(lapsed["ended-by"], "scheduler");
    let late = post(
        s.addr,
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(
        late.status, 409,
        "approving a lapsed grant is an illegal transition: {}",
        late.body
    );

    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("r3b", "erin", "incident-triage", 600),
    )
    .json();
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let r = post(
        s.addr,
        &format!("/v1/grants/{id}/reject"),
        Some("t-bob"),
        &json!({"reason": "not this week"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "rejected");
    assert_eq!(r.json()["end-reason"], "not this week");
}

fn ticket_close_revokes_and_holder_can_release(b: Backend) {
    let (_d, s) = start(b, "");
    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("r4", "alice", "file-recovery", 600)),
    )
    .json();
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default().to_string();
    // In-progress does nothing; closed revokes (signed `generic` events).
    let event = |id: &str, state: &str| {
        let body = generic_event(id, "T-r4", state, Some("alice"), now_ms()).to_string();
        send_with(
            s.addr,
            "POST",
            "/v1/ticket-sources/generic/events",
            &sign_generic(body.as_bytes(), now_ms()),
            Some(body.as_bytes()),
        )
    };
    let r = event("ev-1", "in-progress");
    assert_eq!((r.status, r.json()["revoked"].clone()), (200, json!([])));
    let r = event("ev-2", "closed");
    assert_eq!(r.json()["revoked"], json!([id.clone()]), "{}", r.body);
    let g = grant_state(&s, &id);
    assert_eq!(
        (g["state"].as_str(), g["ended-by"].as_str()),
        (Some("revoked"), Some("ticket T-r4"))
    );

    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-alice"),
        &seed(s.addr, &body("r5", "alice", "file-recovery", 600)),
    )
    .json();
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let other = post(
        s.addr,
        &format!("/v1/grants/{id}/release"),
        Some("t-carol"),
        &json!({}),
    );
    assert_eq!(other.status, 403, "{}", other.body);
    let mine = post(
        s.addr,
        &format!("/v1/grants/{id}/release"),
        Some("t-alice"),
        &json!({}),
    );
    assert_eq!(
        (mine.status, mine.json()["state"].clone()),
        (200, json!("released"))
    );
    let twice = post(
        s.addr,
        &format!("/v1/grants/{id}/release"),
        Some("t-alice"),
        &json!({}),
    );
    assert_eq!(twice.status, 409);
}

fn idempotent_by_request_id(b: Backend) {
    let (_d, s) = start(b, "");
    let b = seed(s.addr, &body("r6", "alice", "file-recovery", 600));
    let first = post(s.addr, "/v1/requests", Some("t-alice"), &b);
    assert_eq!(first.status, 201);
    let second = post(s.addr, "/v1/requests", Some("t-alice"), &b);
    assert_eq!(second.status, 200);
    assert_eq!(first.json()["id"], second.json()["id"]);
    let mut changed = b.clone();
    changed["requested-ttl"] = json!(60);
    let conflict = post(s.addr, "/v1/requests", Some("t-alice"), &changed);
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(conflict.json()["error"]["code"], "conflict");
}

fn dry_run_stores_only_its_audit_record(b: Backend) {
    let (_d, s) = start(b, "");
    let before = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json()["records"]
        .as_array()
        .map(Vec::len);
    let r = post(
        s.addr,
        "/v1/decisions",
        Some("t-pipe"),
        &body("d9", "alice", "file-recovery", 600),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outcome"], "allow");
    let after = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json();
    let records = after["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(Some(records.len()), before.map(|b| b + 1));
    assert_eq!(
        records.last().map(|r| r["kind"].clone()),
        Some(json!("decision"))
    );
    assert_eq!(
        get(s.addr, "/v1/grants", Some("t-admin")).json()["grants"],
        json!([])
    );
}

fn break_glass_grants_open_a_review_an_auditor_closes(b: Backend) {
    let (_d, s) = start(b, "[tasks.break-glass]\nbreak-glass = true\ncap = 900\n");
    let mut b = body("bg1", "carol", "break-glass", 3600);
    b["justification"] = json!("production database is down and on-call cannot reach the DBA");
    let g = post(s.addr, "/v1/requests", Some("t-pipe"), &b).json();
    assert_eq!(g["state"], "active", "{g}");
    assert_eq!(g["ttl"], 900, "task cap applies");
    assert_eq!(g["break-glass"], true);
    let reviews = get(s.addr, "/v1/reviews?open=true", Some("t-audit")).json();
    let list = reviews["reviews"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{reviews}");
    assert_eq!(list[0]["grant-id"], g["id"]);
    let rid = list[0]["id"].as_str().unwrap_or_default().to_string();
    let r = post(
        s.addr,
        &format!("/v1/reviews/{rid}/close"),
        Some("t-audit"),
        &json!({"note": ""}),
    );
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("note"))
    );
    let r = post(
        s.addr,
        &format!("/v1/reviews/{rid}/close"),
        Some("t-admin"),
        &json!({"note": "ok"}),
    );
    assert_eq!(r.status, 403);
    let r = post(
        s.addr,
        &format!("/v1/reviews/{rid}/close"),
        Some("t-audit"),
        &json!({"note": "DBA confirmed outage INC-9"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let open = get(s.addr, "/v1/reviews?open=true", Some("t-audit")).json();
    assert_eq!(open["reviews"], json!([]));
    let ev = get(
        s.addr,
        &format!("/v1/grants/{}/evidence", g["id"].as_str().unwrap_or("")),
        Some("t-audit"),
    )
    .json();
    let kinds: Vec<String> = ev["audit"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(kinds.contains(&"review".to_string()), "{kinds:?}");
    let verify = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(verify["ok"], true, "{verify}");
}

both_stores!(
    allowed_grant_is_active_then_expires_on_time,
    approval_flow_refuses_self_and_outsiders_and_activates_on_quorum,
    pending_request_lapses_and_rejection_ends_it,
    ticket_close_revokes_and_holder_can_release,
    idempotent_by_request_id,
    dry_run_stores_only_its_audit_record,
    break_glass_grants_open_a_review_an_auditor_closes,
);

#[test]
fn policies_reload_swaps_the_set_all_or_nothing() {
    let (guard, s) = start(Backend::Sqlite, "");
    let dir = guard.0.path().join("policies");
    let count = |s: &Server| {
        get(s.addr, "/v1/policies", Some("t-alice")).json()["policies"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(count(&s), Some(5));
    assert_eq!(
        post(s.addr, "/v1/policies/reload", Some("t-pipe"), &json!({})).status,
        403
    );

    std::fs::remove_file(dir.join("break-glass.wasm")).expect("remove");
    let r = post(s.addr, "/v1/policies/reload", Some("t-admin"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(count(&s), Some(4));
    let gone = post(
        s.addr,
        "/v1/decisions",
        Some("t-pipe"),
        &body("bg", "carol", "break-glass", 60),
    );
    assert_eq!(
        (gone.status, gone.json()["error"]["field"].clone()),
        (422, json!("task")),
        "{}",
        gone.body
    );

    // A broken folder is refused and the running set stays.
    std::fs::write(dir.join("broken.wasm"), b"not wasm").expect("write");
    let r = post(s.addr, "/v1/policies/reload", Some("t-admin"), &json!({}));
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("policies")),
        "{}",
        r.body
    );
    assert!(r.body.contains("broken.wasm"), "{}", r.body);
    assert_eq!(count(&s), Some(4));
    let ok = post(
        s.addr,
        "/v1/decisions",
        Some("t-pipe"),
        &body("fr", "alice", "file-recovery", 60),
    );
    assert_eq!(ok.json()["outcome"], "allow", "{}", ok.body);

    let audit = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json();
    let loads = audit["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["kind"] == "policy-load" && r["actor"] == "admin")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(loads, 4, "the reload's four policies are audited");
}
