//! The HTTP API in process: the router that `jitgate serve` builds
//! (`jitgate::api::Server`), driven with `tower::ServiceExt::oneshot` —
//! role × endpoint rules and bad bodies, without a process or a socket.

use jitgate_tests::app::App;
use jitgate_tests::server::{Backend, body};
use jitgate_tests::tickets::{now_ms, sign_generic};
use serde_json::{Value, json};

fn roles_gate_every_endpoint(b: Backend) {
    let app = App::new(b, "");
    let g = app
        .post(
            "/v1/requests",
            Some("t-pipe"),
            &body("r7", "alice", "file-recovery", 600),
        )
        .json();
    let id = g["id"].as_str().unwrap_or_default().to_string();
    // Requesters name their ticket by id; the registry holds its facts.
    let as_alice = |id: &str| app.seed(&body(id, "alice", "file-recovery", 60));
    let mut req_for_bob = body("r8", "bob", "file-recovery", 600);
    req_for_bob["ticket"] = json!({"id": "T-r8"});
    let cases: Vec<(&str, String, Option<Value>, &str, u16)> = vec![
        (
            "POST",
            "/v1/decisions".into(),
            Some(as_alice("d1")),
            "t-alice",
            200,
        ),
        (
            "POST",
            "/v1/decisions".into(),
            Some(body("d2", "alice", "file-recovery", 60)),
            "t-pipe",
            200,
        ),
        (
            "POST",
            "/v1/decisions".into(),
            Some(body("d3", "alice", "file-recovery", 60)),
            "t-bob",
            403,
        ),
        (
            "POST",
            "/v1/decisions".into(),
            Some(body("d4", "alice", "file-recovery", 60)),
            "t-audit",
            403,
        ),
        (
            "POST",
            "/v1/requests".into(),
            Some(req_for_bob.clone()),
            "t-alice",
            403,
        ),
        (
            "POST",
            "/v1/requests".into(),
            Some(req_for_bob),
            "t-audit",
            403,
        ),
        ("GET", "/v1/grants".into(), None, "t-alice", 200),
        ("GET", "/v1/grants?subject=bob".into(), None, "t-alice", 403),
        ("GET", format!("/v1/grants/{id}"), None, "t-alice", 200),
        ("GET", format!("/v1/grants/{id}"), None, "t-carol", 200),
        (
            "GET",
            format!("/v1/grants/{id}/evidence"),
            None,
            "t-audit",
            200,
        ),
        (
            "GET",
            format!("/v1/grants/{id}/evidence"),
            None,
            "t-alice",
            403,
        ),
        (
            "POST",
            format!("/v1/grants/{id}/revoke"),
            Some(json!({})),
            "t-alice",
            403,
        ),
        (
            "POST",
            format!("/v1/grants/{id}/revoke"),
            Some(json!({})),
            "t-bob",
            403,
        ),
        ("GET", "/v1/tickets/T-r7".into(), None, "t-alice", 200),
        ("GET", "/v1/tickets/T-d1".into(), None, "t-alice", 403),
        ("GET", "/v1/tickets/T-d1".into(), None, "t-dave", 200),
        ("GET", "/v1/tickets/T-r7".into(), None, "t-audit", 200),
        ("GET", "/v1/audit".into(), None, "t-alice", 403),
        ("GET", "/v1/audit".into(), None, "t-audit", 200),
        ("GET", "/v1/audit/verify".into(), None, "t-pipe", 403),
        ("GET", "/v1/audit/verify".into(), None, "t-audit", 200),
        ("GET", "/v1/policies".into(), None, "t-alice", 200),
        ("GET", "/v1/reviews".into(), None, "t-alice", 403),
        ("GET", "/v1/reviews".into(), None, "t-audit", 200),
        (
            "POST",
            format!("/v1/grants/{id}/revoke"),
            Some(json!({"reason": "test"})),
            "t-admin",
            200,
        ),
    ];
    let refused = cases.iter().filter(|c| c.4 == 403).count();
    for (method, path, b, token, want) in cases {
        let bytes = b.map(|v| v.to_string());
        let r = app.send(
            method,
            &path,
            Some(token),
            bytes.as_deref().map(str::as_bytes),
        );
        assert_eq!(r.status, want, "{method} {path} as {token}: {}", r.body);
        if want == 403 {
            assert_eq!(r.json()["error"]["code"], "forbidden", "{}", r.body);
        }
    }
    // No token and a wrong token are 401 (their audit tallies are per
    // client address per window, flushed by a background task of the
    // process: tests/e2e/http.rs).
    assert_eq!(app.get("/v1/grants", None).status, 401);
    assert_eq!(app.get("/v1/grants", Some("nope")).status, 401);
    // Every 403 of the table is audited too, one record each.
    let audit = app.get("/v1/audit?limit=1000", Some("t-audit")).json();
    let forbidden = audit["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["kind"] == "auth-failure" && r["data"]["status"] == 403)
                .count()
        })
        .unwrap_or(0);
    assert_eq!(forbidden, refused, "403s");
}

fn bad_bodies_are_refused_naming_the_field(b: Backend) {
    let app = App::new(b, "");
    let r = app.send("POST", "/v1/requests", Some("t-pipe"), Some(b"{not json"));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("bad-json"))
    );

    let mut b = body("r9", "alice", "file-recovery", 600);
    b["subject"]["colour"] = json!("blue");
    let r = app.post("/v1/requests", Some("t-pipe"), &b);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "subject.colour");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour"),
        "{}",
        r.body
    );

    let mut b = body("r10", "alice", "file-recovery", 600);
    b["requested-ttl"] = json!(0);
    let r = app.post("/v1/requests", Some("t-pipe"), &b);
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (422, json!("requested-ttl")),
        "{}",
        r.body
    );

    let mut b = body("r11", "alice", "file-recovery", 600);
    b["now"] = json!(0);
    let r = app.post("/v1/requests", Some("t-pipe"), &b);
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("now")),
        "{}",
        r.body
    );

    let big = format!("{{\"id\": \"{}\"}}", "x".repeat(70_000));
    let r = app.send("POST", "/v1/requests", Some("t-pipe"), Some(big.as_bytes()));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (413, json!("too-large")),
        "{}",
        r.body
    );

    // A ticket system's event, genuinely signed, that jitgate does not
    // understand.
    let event = |v: Value| {
        let bytes = v.to_string().into_bytes();
        app.send_with(
            "POST",
            "/v1/ticket-sources/generic/events",
            &sign_generic(&bytes, now_ms()),
            Some(&bytes),
        )
    };
    let at = jitgate_tests::tickets::rfc3339(now_ms());
    let r = event(
        json!({"event-id": "e1", "ticket": "T", "state": "closed", "updated-at": at, "by": "me"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("by"), "{}", r.body);
    let r = event(json!({"event-id": "e2", "ticket": "T", "state": "gone", "updated-at": at}));
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("state")),
        "{}",
        r.body
    );

    let r = app.get("/v1/grants?colour=blue", Some("t-pipe"));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = app.get("/v1/grants?state=sleeping", Some("t-pipe"));
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("state"))
    );
    let r = app.get("/v1/grants/nope", Some("t-admin"));
    assert_eq!(r.status, 404);
    // Nothing invalid was stored as a grant.
    let all = app.get("/v1/grants", Some("t-admin")).json();
    assert_eq!(all["grants"].as_array().map(Vec::len), Some(0));
}

/// Reasons are evidence and land in every copy of the grant: bounded, and
/// only where an action takes one.
fn oversized_or_misplaced_reasons_are_refused_naming_the_field(b: Backend) {
    let app = App::new(b, "");
    let g = app
        .post(
            "/v1/requests",
            Some("t-pipe"),
            &body("r1", "alice", "file-recovery", 600),
        )
        .json();
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let long = json!({ "reason": "x".repeat(1025) });
    let r = app.post(&format!("/v1/grants/{id}/revoke"), Some("t-admin"), &long);
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("reason")),
        "{}",
        r.body
    );
    let r = app.post(
        &format!("/v1/grants/{id}/release"),
        Some("t-alice"),
        &json!({"reason": "done"}),
    );
    assert_eq!(r.status, 400, "release takes no body: {}", r.body);
    // Refused input changed nothing: the grant is still active, and a
    // reason of exactly the limit is taken.
    let back = app.get(&format!("/v1/grants/{id}"), Some("t-admin")).json();
    assert_eq!(back["state"], "active", "{back}");
    let ok = json!({ "reason": "y".repeat(1024) });
    let r = app.post(&format!("/v1/grants/{id}/revoke"), Some("t-admin"), &ok);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "revoked", "{}", r.body);
}

/// An unknown action is authenticated like every route before it is 404.
fn unknown_grant_actions_authenticate_first(b: Backend) {
    let app = App::new(b, "");
    assert_eq!(
        app.post("/v1/grants/g/explode", None, &json!({})).status,
        401
    );
    let r = app.post("/v1/grants/g/explode", Some("t-admin"), &json!({}));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("not-found")),
        "{}",
        r.body
    );
}

/// A caller with a valid token cannot flood the audit chain with refused
/// calls: its first refusals (the `[limits]` burst, 20 by default) are
/// records of their own, the rest only counted into one record per window.
fn a_flood_of_403s_writes_the_callers_allowance_then_only_counts(b: Backend) {
    let app = App::new(b, "");
    for _ in 0..200 {
        assert_eq!(app.get("/v1/audit", Some("t-alice")).status, 403);
    }
    // Another caller's refusals are not crowded out.
    assert_eq!(app.get("/v1/audit", Some("t-pipe")).status, 403);
    let audit = app.get("/v1/audit?limit=1000", Some("t-audit")).json();
    let refusals_of = |who: &str| {
        audit["records"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter(|r| {
                        r["kind"] == "auth-failure"
                            && r["data"]["status"] == 403
                            && r["actor"] == who
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(refusals_of("alice"), 20, "the burst, then counted");
    assert_eq!(refusals_of("pipeline"), 1);
}

both_stores!(
    a_flood_of_403s_writes_the_callers_allowance_then_only_counts,
    roles_gate_every_endpoint,
    bad_bodies_are_refused_naming_the_field,
    oversized_or_misplaced_reasons_are_refused_naming_the_field,
    unknown_grant_actions_authenticate_first,
);
