//! One time format (issue 16 item 3): every time in every answer is RFC
//! 3339 UTC with milliseconds. A grant's whole life is walked through the
//! API — request, approval, the ticket, release, evidence, the audit log,
//! a break-glass review closed, the policy set, readiness — and every
//! time-named field of every answer (`at`, `*-at`, the request's `now`) is
//! checked, except where the answer shows a stored form on purpose: an
//! audit record's `at` (Unix ms, hashed; `at-rfc3339` beside it) and its
//! `data` (the evidence as stored).

use jitgate::timefmt::rfc3339_ms;
use jitgate_tests::app::App;
use jitgate_tests::server::{Backend, body};
use serde_json::{Value, json};

/// Walks `v`, collecting the path of every bad time field into `bad` and
/// counting the good ones.
fn walk(v: &Value, path: &str, seen: &mut usize, bad: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let record = m.contains_key("at-rfc3339");
            for (k, val) in m {
                let here = format!("{path}.{k}");
                if record && k == "at" {
                    let ok = val
                        .as_i64()
                        .is_some_and(|ms| m["at-rfc3339"] == json!(rfc3339_ms(ms)));
                    if !ok {
                        bad.push(format!("{here} = {val} (at-rfc3339 {})", m["at-rfc3339"]));
                    }
                    *seen += 1;
                    continue;
                }
                if (record && k == "data") || k == "decision" {
                    continue;
                }
                if k == "at" || k.ends_with("-at") || k == "now" {
                    match val {
                        Value::Null => {}
                        Value::String(s) if jitgate::timefmt::is_answer_format(s) => *seen += 1,
                        other => bad.push(format!("{here} = {other}")),
                    }
                    continue;
                }
                walk(val, &here, seen, bad);
            }
        }
        Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                walk(val, &format!("{path}[{i}]"), seen, bad);
            }
        }
        _ => {}
    }
}

/// Every time field of `answer` is in the answer format; returns how many
/// there were.
fn all_times_rfc3339(what: &str, answer: &Value) -> usize {
    let (mut seen, mut bad) = (0, Vec::new());
    walk(answer, what, &mut seen, &mut bad);
    assert!(
        bad.is_empty(),
        "times not in the answer format: {bad:#?}\nin {answer:#}"
    );
    seen
}

#[test]
fn every_time_in_a_grants_life_is_rfc3339_with_milliseconds() {
    let app = App::new(
        Backend::Sqlite,
        "[tasks.break-glass]\nbreak-glass = true\ncap = 900\n",
    );
    let mut checked = 0;
    let mut check = |what: &str, r: jitgate_tests::http::Response, status: u16| {
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let v = r.json();
        checked += all_times_rfc3339(what, &v);
        v
    };

    // Requested: pending, with its creation and lapse times.
    let asked = app.seed(&body("t1", "carol", "incident-triage", 600));
    let g = check(
        "request",
        app.post("/v1/requests", Some("t-carol"), &asked),
        201,
    );
    assert_eq!(g["state"], "pending", "{g}");
    let created = jitgate_tests::ms(&g["created-at"]);
    assert!(jitgate_tests::ms(&g["lapses-at"]) > created, "{g}");
    jitgate_tests::ms(&g["request"]["now"]);
    let id = g["id"].as_str().unwrap_or_default().to_string();

    // Approved: active, with the approval's time, issue and expiry.
    let g = check(
        "approve",
        app.post(
            &format!("/v1/grants/{id}/approve"),
            Some("t-bob"),
            &json!({}),
        ),
        200,
    );
    assert_eq!(g["state"], "active", "{g}");
    let issued = jitgate_tests::ms(&g["issued-at"]);
    assert_eq!(jitgate_tests::ms(&g["approvals"][0]["at"]), issued, "{g}");
    assert_eq!(jitgate_tests::ms(&g["expires-at"]), issued + 600_000, "{g}");
    assert!(issued >= created);

    check(
        "grant",
        app.get(&format!("/v1/grants/{id}"), Some("t-carol")),
        200,
    );
    let list = check(
        "grants",
        app.get("/v1/grants?state=active", Some("t-admin")),
        200,
    );
    assert_eq!(list["grants"][0]["id"], json!(id), "{list}");
    let t = check("ticket", app.get("/v1/tickets/T-t1", Some("t-carol")), 200);
    jitgate_tests::ms(&t["updated-at"]);
    jitgate_tests::ms(&t["recorded-at"]);
    jitgate_tests::ms(&t["grants"][0]["expires-at"]);

    // A ticket system's event: its answer carries the ticket too.
    let mut later = body("t1b", "carol", "incident-triage", 600);
    later["ticket"]["id"] = json!("T-t1");
    let (bytes, headers, _) =
        jitgate_tests::tickets::registry_event(&later).expect("an event for the ticket");
    let ev = check(
        "ticket event",
        app.send_with(
            "POST",
            "/v1/ticket-sources/generic/events",
            &headers,
            Some(&bytes),
        ),
        200,
    );
    jitgate_tests::ms(&ev["ticket"]["updated-at"]);

    // Released: ended.
    let g = check(
        "release",
        app.post(
            &format!("/v1/grants/{id}/release"),
            Some("t-carol"),
            &json!({}),
        ),
        200,
    );
    assert_eq!(g["state"], "released", "{g}");
    assert!(jitgate_tests::ms(&g["ended-at"]) >= issued, "{g}");

    // The evidence and the audit log: stored `at` beside `at-rfc3339`.
    let e = check(
        "evidence",
        app.get(&format!("/v1/grants/{id}/evidence"), Some("t-audit")),
        200,
    );
    let records = e["audit"].as_array().cloned().unwrap_or_default();
    assert!(records.len() >= 3, "{e}");
    for r in &records {
        assert!(r["at"].is_i64(), "the stored form stays: {r}");
        assert_eq!(
            jitgate_tests::ms(&r["at-rfc3339"]),
            r["at"].as_i64().unwrap_or(-1)
        );
    }
    let log = check(
        "audit",
        app.get("/v1/audit?limit=1000", Some("t-audit")),
        200,
    );
    assert!(
        log["records"]
            .as_array()
            .is_some_and(|r| r.len() > records.len()),
        "{log}"
    );

    // A break-glass review, opened and closed.
    let mut bg = body("t2", "carol", "break-glass", 3600);
    bg["justification"] = json!("production database is down and on-call cannot reach the DBA");
    let g = check(
        "break-glass",
        app.post("/v1/requests", Some("t-pipe"), &bg),
        201,
    );
    assert_eq!(g["state"], "active", "{g}");
    let open = check(
        "reviews",
        app.get("/v1/reviews?open=true", Some("t-audit")),
        200,
    );
    jitgate_tests::ms(&open["reviews"][0]["opened-at"]);
    let rid = open["reviews"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let closed = app.post(
        &format!("/v1/reviews/{rid}/close"),
        Some("t-audit"),
        &json!({"note": "checked with the on-call lead"}),
    );
    assert_eq!(closed.status, 200, "{}", closed.body);
    let all = check("reviews", app.get("/v1/reviews", Some("t-audit")), 200);
    jitgate_tests::ms(&all["reviews"][0]["closed-at"]);

    // Revoked while pending.
    let asked = app.seed(&body("t3", "carol", "incident-triage", 600));
    let g = check(
        "request",
        app.post("/v1/requests", Some("t-carol"), &asked),
        201,
    );
    let id3 = g["id"].as_str().unwrap_or_default().to_string();
    let g = check(
        "revoke",
        app.post(
            &format!("/v1/grants/{id3}/revoke"),
            Some("t-admin"),
            &json!({"reason": "not needed"}),
        ),
        200,
    );
    jitgate_tests::ms(&g["ended-at"]);

    check("policies", app.get("/v1/policies", Some("t-audit")), 200);
    let ready = check("readyz", app.get("/readyz", None), 200);
    jitgate_tests::ms(&ready["at"]);

    // Not vacuous: dozens of times were looked at.
    assert!(checked > 40, "only {checked} time fields checked");
}
