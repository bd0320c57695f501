//! The ticket registry (issue 12): ticket facts come from the ticket
//! systems' signed webhooks, never from a requester's body. In process
//! (the router `jitgate serve` builds), on both stores.

use jitgate_tests::app::App;
use jitgate_tests::http::Response;
use jitgate_tests::server::Backend;
use jitgate_tests::server::wait_for;
use jitgate_tests::tickets::{
    generic_event, now_ms, requester_body, rfc3339, sample, sign_generic, sign_jira,
    sign_servicenow, sign_zendesk,
};
use serde_json::{Value, json};
use std::time::Duration;

fn app(b: Backend) -> App {
    App::new(b, "")
}

fn post_event(app: &App, source: &str, body: &[u8], headers: &[(String, String)]) -> Response {
    app.send_with(
        "POST",
        &format!("/v1/ticket-sources/{source}/events"),
        headers,
        Some(body),
    )
}

/// Post a signed `generic` event; its answer.
fn generic(
    app: &App,
    event_id: &str,
    ticket: &str,
    state: &str,
    assignee: Option<&str>,
    updated_ms: u64,
) -> Response {
    let body = generic_event(event_id, ticket, state, assignee, updated_ms).to_string();
    post_event(
        app,
        "generic",
        body.as_bytes(),
        &sign_generic(body.as_bytes(), now_ms()),
    )
}

fn ticket(app: &App, id: &str) -> Response {
    app.get(&format!("/v1/tickets/{id}"), Some("t-audit"))
}

fn request(app: &App, token: &str, body: &Value) -> Value {
    let r = app.post("/v1/requests", Some(token), body);
    assert!(
        r.status == 201 || r.status == 200,
        "{} {}",
        r.status,
        r.body
    );
    r.json()
}

fn reasons(grant: &Value) -> String {
    grant["decision"]["reasons"].to_string()
}

fn ticket_events(app: &App) -> Vec<Value> {
    app.get("/v1/audit?limit=1000", Some("t-audit")).json()["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["kind"] == "ticket-event")
        .collect()
}

fn spoofed_unknown_ticket_fake_999_is_denied_as_not_known(b: Backend) {
    let app = app(b);
    let g = request(&app, "t-alice", &requester_body("r-fake", "FAKE-999"));
    assert_eq!(g["state"], "denied", "{g}");
    assert!(
        reasons(&g).contains("ticket FAKE-999 is not known to any ticket source"),
        "{g}"
    );
    // The evidence says where the (missing) facts came from.
    let id = g["id"].as_str().unwrap_or_default();
    let ev = app
        .get(&format!("/v1/grants/{id}/evidence"), Some("t-audit"))
        .json();
    let facts = ev["audit"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["kind"] == "request"))
        .map(|r| r["data"]["ticket-facts"].clone())
        .unwrap_or_default();
    assert_eq!(facts["known"], false, "{ev}");
    // Claiming the ticket's facts in the body is refused, naming the field.
    let mut claimed = requester_body("r-fake2", "FAKE-999");
    claimed["ticket"] = json!({"id": "FAKE-999", "state": "open", "priority": 1,
        "assignee": "alice", "opened-at": 1_795_600_000});
    let r = app.post("/v1/requests", Some("t-alice"), &claimed);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("ticket."),
        "{}",
        r.body
    );
    // A requester's subject kind and MFA time come from its credential.
    for field in ["kind", "mfa-at"] {
        let mut b = requester_body("r-mfa", "FAKE-999");
        b["subject"][field] = if field == "kind" {
            json!("human")
        } else {
            json!(1_795_600_000)
        };
        let r = app.post("/v1/requests", Some("t-alice"), &b);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            r.json()["error"]["field"],
            format!("subject.{field}"),
            "{}",
            r.body
        );
    }
    // So is a dry run, and so is a pipeline not trusted with ticket facts.
    assert_eq!(
        app.post("/v1/decisions", Some("t-alice"), &claimed).status,
        400
    );
    claimed["id"] = json!("r-fake3");
    claimed["subject"]["kind"] = json!("human");
    let r = app.post("/v1/requests", Some("t-pipe2"), &claimed);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("trusted-context"), "{}", r.body);
}

fn spoofed_open_state_of_a_closed_ticket_inc_7_is_denied(b: Backend) {
    let app = app(b);
    let t0 = now_ms();
    let r = generic(&app, "e-7a", "INC-7", "closed", Some("alice"), t0);
    assert_eq!(r.status, 200, "{}", r.body);
    let g = request(&app, "t-alice", &requester_body("r-7", "INC-7"));
    assert_eq!(g["state"], "denied", "{g}");
    assert_eq!(g["request"]["ticket"]["state"], "closed", "{g}");
    // A trusted pipeline claiming it open: the ticket is the generic
    // source's, so the claim changes nothing and the registry decides.
    let mut claimed = requester_body("r-7p", "INC-7");
    claimed["subject"]["kind"] = json!("human");
    claimed["ticket"] = json!({"id": "INC-7", "state": "open", "priority": 1,
        "assignee": "alice", "opened-at": 1_795_600_000});
    let g = request(&app, "t-pipe", &claimed);
    assert_eq!(g["state"], "denied", "{g}");
    assert_eq!(ticket(&app, "INC-7").json()["state"], "closed");
    // Nor does a pipeline's own body reopen a ticket it closed.
    let mut own = claimed.clone();
    own["id"] = json!("r-8a");
    own["ticket"] = json!({"id": "INC-8", "state": "closed", "priority": 3,
        "assignee": "alice", "opened-at": 1_795_600_000});
    request(&app, "t-pipe", &own);
    own["id"] = json!("r-8b");
    own["ticket"]["state"] = json!("open");
    let g = request(&app, "t-pipe", &own);
    assert_eq!(g["state"], "denied", "{g}");
    let t = ticket(&app, "INC-8").json();
    assert_eq!(
        (&t["state"], &t["source"]),
        (&json!("closed"), &json!("pipeline")),
        "{t}"
    );
    let evs = ticket_events(&app);
    assert!(
        evs.iter().any(|e| e["data"]["result"] == "foreign-source"),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| e["data"]["result"] == "reopen-refused"),
        "{evs:?}"
    );
}

fn spoofed_assignee_is_decided_on_the_registrys_assignee(b: Backend) {
    let app = app(b);
    let r = generic(&app, "e-9", "INC-9", "in-progress", Some("bob"), now_ms());
    assert_eq!(r.status, 200, "{}", r.body);
    let g = request(&app, "t-alice", &requester_body("r-9", "INC-9"));
    assert_eq!(g["state"], "denied", "{g}");
    assert_eq!(g["request"]["ticket"]["assignee"], "bob", "{g}");
    assert!(reasons(&g).contains("assigned to bob"), "{g}");
}

fn reassignment_changes_the_decision_of_a_new_request(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-10a", "INC-10", "open", Some("bob"), t0);
    let g = request(&app, "t-alice", &requester_body("r-10a", "INC-10"));
    assert_eq!(g["state"], "denied", "{g}");
    generic(&app, "e-10b", "INC-10", "open", Some("alice"), t0 + 1_000);
    let g = request(&app, "t-alice", &requester_body("r-10b", "INC-10"));
    assert_eq!(g["state"], "active", "{g}");
    // Where the facts came from is in the decision's audit record.
    let facts = ticket_events_request_facts(&app, g["id"].as_str().unwrap_or_default());
    assert_eq!(facts["source"], "generic", "{facts}");
    assert_eq!(facts["event-id"], "e-10b", "{facts}");
    assert_eq!(
        facts["updated-at"],
        json!(t0 / 1000 * 1000 + 1_000),
        "{facts}"
    );
}

fn ticket_events_request_facts(app: &App, grant: &str) -> Value {
    let ev = app
        .get(&format!("/v1/grants/{grant}/evidence"), Some("t-audit"))
        .json();
    ev["audit"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["kind"] == "request"))
        .map(|r| r["data"]["ticket-facts"].clone())
        .unwrap_or_default()
}

fn resolving_event_revokes_the_tickets_revoke_on_close_grant(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-11a", "INC-11", "in-progress", Some("alice"), t0);
    let g = request(&app, "t-alice", &requester_body("r-11", "INC-11"));
    assert_eq!(g["state"], "active", "{g}");
    assert_eq!(g["revoke-on-ticket-close"], true, "{g}");
    let r = generic(
        &app,
        "e-11b",
        "INC-11",
        "resolved",
        Some("alice"),
        t0 + 1_000,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = g["id"].as_str().unwrap_or_default();
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    let now = app.get(&format!("/v1/grants/{id}"), Some("t-alice")).json();
    assert_eq!(now["state"], "revoked", "{now}");
    assert_eq!(now["end-reason"], "ticket INC-11 is resolved", "{now}");
}

/// A valid event, then forgeries and replays: (source, headers for a body).
fn assert_forgeries_change_nothing(
    app: &App,
    source: &str,
    ticket_id: &str,
    forged_body: &[u8],
    missing: &[(String, String)],
    wrong: &[(String, String)],
) {
    let before = ticket(app, ticket_id).json();
    for (what, headers) in [("missing signature", missing), ("wrong signature", wrong)] {
        let r = post_event(app, source, forged_body, headers);
        assert_eq!(r.status, 401, "{source} {what}: {}", r.body);
    }
    assert_eq!(ticket(app, ticket_id).json(), before, "{source}");
}

fn jira_signed_event_changes_the_ticket_and_forged_replayed_or_older_ones_do_not(b: Backend) {
    let app = app(b);
    let mut v = sample("jira-issue-updated.json");
    let t0 = v["timestamp"].as_u64().unwrap_or(0);
    v["issue"]["fields"]["assignee"]["emailAddress"] = json!("alice");
    let body = v.to_string();
    let r = post_event(
        &app,
        "jira",
        body.as_bytes(),
        &sign_jira(body.as_bytes(), "d-1"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    let t = ticket(&app, "OPS-142").json();
    assert_eq!(
        (&t["state"], &t["assignee"], &t["priority"]),
        (&json!("in-progress"), &json!("alice"), &json!(2)),
        "{t}"
    );
    // Forged: "Closed" without the secret.
    let mut closed = v.clone();
    closed["issue"]["fields"]["status"]["name"] = json!("Closed");
    closed["timestamp"] = json!(t0 + 5_000);
    let forged = closed.to_string();
    let mut wrong = sign_jira(b"another body", "d-2");
    wrong.truncate(1);
    assert_forgeries_change_nothing(&app, "jira", "OPS-142", forged.as_bytes(), &[], &wrong);
    // Replayed delivery id: nothing.
    let r = post_event(
        &app,
        "jira",
        forged.as_bytes(),
        &sign_jira(forged.as_bytes(), "d-1"),
    );
    assert_eq!(r.json()["result"], "replayed", "{}", r.body);
    // Older than what is stored: nothing.
    let mut older = closed.clone();
    older["timestamp"] = json!(t0 - 5_000);
    let older = older.to_string();
    let r = post_event(
        &app,
        "jira",
        older.as_bytes(),
        &sign_jira(older.as_bytes(), "d-3"),
    );
    assert_eq!(r.json()["result"], "stale", "{}", r.body);
    assert_eq!(ticket(&app, "OPS-142").json()["state"], "in-progress");
    // Genuine and newer: closed.
    let r = post_event(
        &app,
        "jira",
        forged.as_bytes(),
        &sign_jira(forged.as_bytes(), "d-4"),
    );
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "OPS-142").json()["state"], "closed");
    // A bad shape names the field.
    let bad = json!({"webhookEvent": "jira:issue_updated", "timestamp": t0}).to_string();
    let r = post_event(
        &app,
        "jira",
        bad.as_bytes(),
        &sign_jira(bad.as_bytes(), "d-5"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "issue", "{}", r.body);
}

fn servicenow_shared_secret_event_changes_the_ticket_and_forged_replayed_or_older_ones_do_not(
    b: Backend,
) {
    let app = app(b);
    let mut v = sample("servicenow-incident.json");
    v["assigned_to"] = json!("alice");
    let body = v.to_string();
    let r = post_event(&app, "snow", body.as_bytes(), &sign_servicenow());
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "INC0010023").json()["state"], "in-progress");
    let mut resolved = v.clone();
    resolved["state"] = json!("6");
    resolved["sys_updated_on"] = json!("2026-11-25 11:00:00");
    let forged = resolved.to_string();
    let wrong = vec![(
        "x-jitgate-secret".to_string(),
        "not-the-secret-at-all".to_string(),
    )];
    assert_forgeries_change_nothing(&app, "snow", "INC0010023", forged.as_bytes(), &[], &wrong);
    // The same record again (same number@sys_updated_on): a replay.
    let r = post_event(&app, "snow", body.as_bytes(), &sign_servicenow());
    assert_eq!(r.json()["result"], "replayed", "{}", r.body);
    let mut older = v.clone();
    older["state"] = json!("7");
    older["sys_updated_on"] = json!("2026-11-25 10:00:00");
    let older = older.to_string();
    let r = post_event(&app, "snow", older.as_bytes(), &sign_servicenow());
    assert_eq!(r.json()["result"], "stale", "{}", r.body);
    let r = post_event(&app, "snow", forged.as_bytes(), &sign_servicenow());
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "INC0010023").json()["state"], "resolved");
}

fn zendesk_signed_event_changes_the_ticket_and_forged_stale_replayed_or_older_ones_do_not(
    b: Backend,
) {
    let app = app(b);
    let mut v = sample("zendesk-status-changed.json");
    v["detail"]["assignee_email"] = json!("alice");
    v["detail"]["status"] = json!("OPEN");
    let body = v.to_string();
    let r = post_event(
        &app,
        "zendesk",
        body.as_bytes(),
        &sign_zendesk(body.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "5158").json()["state"], "open");
    let mut solved = v.clone();
    solved["id"] = json!("zd-event-2");
    solved["detail"]["status"] = json!("SOLVED");
    solved["time"] = json!("2026-11-25T11:00:00Z");
    solved["detail"]["updated_at"] = json!("2026-11-25T11:00:00Z");
    let forged = solved.to_string();
    let mut wrong = sign_zendesk(b"another body", now_ms());
    wrong.truncate(2);
    assert_forgeries_change_nothing(&app, "zendesk", "5158", forged.as_bytes(), &[], &wrong);
    // A genuine signature from six minutes ago: a replay, refused.
    let stale = sign_zendesk(forged.as_bytes(), now_ms() - 6 * 60_000);
    let r = post_event(&app, "zendesk", forged.as_bytes(), &stale);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(ticket(&app, "5158").json()["state"], "open");
    // The first event's id again: nothing.
    let r = post_event(
        &app,
        "zendesk",
        body.as_bytes(),
        &sign_zendesk(body.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["result"], "replayed", "{}", r.body);
    let mut older = solved.clone();
    older["id"] = json!("zd-event-0");
    older["time"] = json!("2026-11-25T09:00:00Z");
    older["detail"]["updated_at"] = json!("2026-11-25T09:00:00Z");
    let older = older.to_string();
    let r = post_event(
        &app,
        "zendesk",
        older.as_bytes(),
        &sign_zendesk(older.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["result"], "stale", "{}", r.body);
    let r = post_event(
        &app,
        "zendesk",
        forged.as_bytes(),
        &sign_zendesk(forged.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "5158").json()["state"], "resolved");
}

fn generic_signed_event_changes_the_ticket_and_forged_stale_replayed_or_older_ones_do_not(
    b: Backend,
) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    let r = generic(&app, "g-1", "INC-20", "open", Some("alice"), t0);
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    let closed = generic_event("g-2", "INC-20", "closed", Some("alice"), t0 + 1_000).to_string();
    let wrong = sign_generic(b"another body", now_ms());
    assert_forgeries_change_nothing(&app, "generic", "INC-20", closed.as_bytes(), &[], &wrong);
    let stale = sign_generic(closed.as_bytes(), now_ms() - 6 * 60_000);
    assert_eq!(
        post_event(&app, "generic", closed.as_bytes(), &stale).status,
        401
    );
    let r = generic(&app, "g-1", "INC-20", "closed", Some("alice"), t0 + 2_000);
    assert_eq!(r.json()["result"], "replayed", "{}", r.body);
    let r = generic(&app, "g-0", "INC-20", "closed", Some("alice"), t0 - 1_000);
    assert_eq!(r.json()["result"], "stale", "{}", r.body);
    assert_eq!(ticket(&app, "INC-20").json()["state"], "open");
    let r = post_event(
        &app,
        "generic",
        closed.as_bytes(),
        &sign_generic(closed.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    assert_eq!(ticket(&app, "INC-20").json()["state"], "closed");
    // Every event, applied or not, is audited.
    assert!(ticket_events(&app).len() >= 4);
    // Bad shape: 400 naming the field; unknown source: 404.
    let bad = json!({"event-id": "g-9", "ticket": "INC-20", "state": "finished",
        "updated-at": rfc3339(now_ms())})
    .to_string();
    let r = post_event(
        &app,
        "generic",
        bad.as_bytes(),
        &sign_generic(bad.as_bytes(), now_ms()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "state", "{}", r.body);
    let r = post_event(
        &app,
        "github",
        bad.as_bytes(),
        &sign_generic(bad.as_bytes(), now_ms()),
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

fn a_source_reporting_another_sources_ticket_is_refused_and_audited(b: Backend) {
    let app = app(b);
    let mut v = sample("jira-issue-updated.json");
    v["issue"]["fields"]["assignee"]["emailAddress"] = json!("alice");
    let body = v.to_string();
    post_event(
        &app,
        "jira",
        body.as_bytes(),
        &sign_jira(body.as_bytes(), "d-1"),
    );
    let r = generic(&app, "g-x", "OPS-142", "closed", Some("mallory"), now_ms());
    assert_eq!(r.json()["result"], "foreign-source", "{}", r.body);
    let t = ticket(&app, "OPS-142").json();
    assert_eq!(
        (&t["source"], &t["state"]),
        (&json!("jira"), &json!("in-progress")),
        "{t}"
    );
    assert!(
        ticket_events(&app)
            .iter()
            .any(|e| e["data"]["result"] == "foreign-source" && e["data"]["source"] == "generic")
    );
}

fn forged_webhooks_are_counted_as_failed_authentications(b: Backend) {
    let app = App::new(
        b,
        "\n[limits]\nauth-failure-burst = 2\nauth-failure-per-minute = 1\n",
    );
    let body = generic_event("g-1", "INC-30", "closed", None, now_ms()).to_string();
    let wrong = sign_generic(b"x", now_ms());
    let codes: Vec<u16> = (0..3)
        .map(|_| post_event(&app, "generic", body.as_bytes(), &wrong).status)
        .collect();
    assert_eq!(codes, [401, 401, 429]);
    assert_eq!(ticket(&app, "INC-30").status, 404);
}

fn a_webhook_body_above_the_api_limit_but_within_the_event_limit_is_taken(b: Backend) {
    let app = app(b);
    let mut v = generic_event("g-big", "INC-31", "open", Some("alice"), now_ms());
    // Unknown keys are not part of `generic`: pad a string field instead.
    v["assignee"] = json!("alice");
    let mut body = v.to_string();
    body.push_str(&" ".repeat(100 * 1024));
    let r = post_event(
        &app,
        "generic",
        body.as_bytes(),
        &sign_generic(body.as_bytes(), now_ms()),
    );
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);
    let huge = " ".repeat(jitgate::ticket::MAX_EVENT_BYTES + 1);
    let r = post_event(
        &app,
        "generic",
        huge.as_bytes(),
        &sign_generic(huge.as_bytes(), now_ms()),
    );
    assert_eq!(r.status, 413, "{}", r.body);
}

fn get_ticket_shows_a_requester_only_its_own_tickets(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-1", "INC-40", "open", Some("alice"), t0);
    generic(&app, "e-2", "INC-41", "open", Some("carol"), t0);
    let g = request(&app, "t-alice", &requester_body("r-40", "INC-40"));
    let r = app.get("/v1/tickets/INC-40", Some("t-alice"));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    for k in [
        "id",
        "source",
        "state",
        "priority",
        "assignee",
        "opened-at",
        "updated-at",
        "grants",
    ] {
        assert!(t.get(k).is_some(), "{k} missing: {t}");
    }
    assert_eq!(t["grants"][0]["id"], g["id"], "{t}");
    // Someone else's ticket, and one that does not exist: no difference.
    assert_eq!(app.get("/v1/tickets/INC-41", Some("t-alice")).status, 403);
    assert_eq!(app.get("/v1/tickets/NOPE-1", Some("t-alice")).status, 403);
    for tok in ["t-bob", "t-pipe", "t-admin", "t-audit"] {
        assert_eq!(
            app.get("/v1/tickets/INC-41", Some(tok)).status,
            200,
            "{tok}"
        );
    }
    assert_eq!(app.get("/v1/tickets/NOPE-1", Some("t-audit")).status, 404);
    assert_eq!(app.get("/v1/tickets/INC-41", None).status, 401);
    // The legacy unsigned endpoint is gone.
    let r = app.post(
        "/v1/tickets/INC-40/events",
        Some("t-pipe"),
        &json!({"state": "closed"}),
    );
    assert!(
        r.status == 404 || r.status == 405,
        "{} {}",
        r.status,
        r.body
    );
}

fn a_refused_pipeline_request_records_no_ticket_event(b: Backend) {
    let app = app(b);
    let mut bad = jitgate_tests::server::body("r-50", "alice", "file-recovery", 600);
    bad["requested-ttl"] = json!(0);
    let r = app.post("/v1/requests", Some("t-pipe"), &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "requested-ttl", "{}", r.body);
    assert_eq!(ticket(&app, "T-r-50").status, 404);
    // The same request, valid, records the pipeline's facts as its event.
    bad["requested-ttl"] = json!(600);
    let g = request(&app, "t-pipe", &bad);
    assert_eq!(g["state"], "active", "{g}");
    let t = ticket(&app, "T-r-50").json();
    assert_eq!(
        (&t["source"], &t["last-event-id"]),
        (&json!("pipeline"), &json!("r-50")),
        "{t}"
    );
}

/// A fake Jira REST API on loopback: `GET /rest/api/3/issue/{key}` answers
/// what `answer` holds (status, body) at the time of the call.
fn fake_jira(answer: std::sync::Arc<std::sync::Mutex<(u16, String)>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 8192];
            let n = conn.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) = if head.starts_with("GET /rest/api/3/issue/OPS%2D142?") {
                answer
                    .lock()
                    .map(|a| a.clone())
                    .unwrap_or((500, "{}".into()))
            } else {
                (404, "{}".to_string())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Jira closes OPS-142 and its webhook never arrives: the reconciler pulls
/// the ticket within one `reconcile-interval` and ends its grant; while
/// Jira is down, nothing changes and the failure is counted.
fn a_ticket_closed_without_a_webhook_is_revoked_by_the_reconciler(b: Backend) {
    use jitgate_tests::http::{get, post, send_with};
    use std::sync::{Arc, Mutex};
    let answer = Arc::new(Mutex::new((503u16, "{}".to_string())));
    let jira = fake_jira(answer.clone());
    let sources = jitgate_tests::tickets::SOURCES.replace(
        "states = { \"Closed\" = \"closed\" }\n",
        &format!(
            "states = {{ \"Closed\" = \"closed\" }}\nbase-url = \"{jira}\"\n\
             credentials-env = \"{}\"\nreconcile-interval = 1\n",
            jitgate_tests::tickets::SECRET_ENV
        ),
    );
    let (_guard, server) = jitgate_tests::server::start(b, &sources);
    let mut v = sample("jira-issue-updated.json");
    let t0 = v["timestamp"].as_u64().unwrap_or(0);
    v["issue"]["fields"]["assignee"]["emailAddress"] = json!("alice");
    let body = v.to_string();
    let r = send_with(
        server.addr,
        "POST",
        "/v1/ticket-sources/jira/events",
        &sign_jira(body.as_bytes(), "d-1"),
        Some(body.as_bytes()),
    );
    assert_eq!(r.json()["result"], "applied", "{}", r.body);
    let g = post(
        server.addr,
        "/v1/requests",
        Some("t-alice"),
        &requester_body("rec-1", "OPS-142"),
    )
    .json();
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default().to_string();

    // Jira is down for a few passes: the grant stays, the failures count.
    let failures = wait_for(Duration::from_secs(15), || {
        let m = get(server.addr, "/metrics", None).body;
        m.lines()
            .find_map(|l| l.strip_prefix("jitgate_ticket_pull_failures_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .filter(|n| *n >= 2)
    });
    assert!(failures.is_some(), "pull failures are counted");
    let still = get(server.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json();
    assert_eq!(
        still["state"], "active",
        "a ticket system that is down never ends (or grants) access: {still}"
    );

    // Jira comes back with the issue closed; no webhook is sent.
    let mut issue = v["issue"].clone();
    issue["fields"]["status"] = json!({"name": "Closed", "statusCategory": {"key": "done"}});
    issue["fields"]["updated"] = json!(rfc3339(t0 + 60_000));
    if let Ok(mut a) = answer.lock() {
        *a = (200, issue.to_string());
    }
    let ended = wait_for(Duration::from_secs(15), || {
        let g = get(server.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json();
        (g["state"] != "active").then_some(g)
    });
    let ended = ended.expect("the reconciler ended the grant");
    assert_eq!(ended["state"], "revoked", "{ended}");
    let t = get(server.addr, "/v1/tickets/OPS-142", Some("t-audit")).json();
    assert_eq!(t["state"], "closed", "{t}");
}

// ---- Continuous verification: a ticket's new facts decide its live grants again. ----

/// A signed `generic` event with every fact given.
fn generic_full(
    app: &App,
    event_id: &str,
    ticket: &str,
    state: &str,
    priority: u8,
    assignee: &str,
    updated_ms: u64,
) -> Response {
    let mut v = generic_event(event_id, ticket, state, Some(assignee), updated_ms);
    v["priority"] = json!(priority);
    let body = v.to_string();
    post_event(
        app,
        "generic",
        body.as_bytes(),
        &sign_generic(body.as_bytes(), now_ms()),
    )
}

fn grant(app: &App, id: &str) -> Value {
    app.get(&format!("/v1/grants/{id}"), Some("t-admin")).json()
}

/// The transition record that ended grant `id`.
fn ending_record(app: &App, id: &str) -> Value {
    let ev = app
        .get(&format!("/v1/grants/{id}/evidence"), Some("t-audit"))
        .json();
    ev["audit"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .rfind(|r| r["kind"] == "transition" && r["data"]["to"] == "revoked")
        })
        .cloned()
        .unwrap_or_default()
}

fn a_reassigned_ticket_revokes_the_previous_assignees_grant(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-60a", "INC-60", "in-progress", Some("alice"), t0);
    let g = request(&app, "t-alice", &requester_body("r-60", "INC-60"));
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    // The ticket is reassigned to bob in its system.
    let r = generic(
        &app,
        "e-60b",
        "INC-60",
        "in-progress",
        Some("bob"),
        t0 + 1_000,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    let now = grant(&app, id);
    assert_eq!(now["state"], "revoked", "{now}");
    let reason = now["end-reason"].as_str().unwrap_or_default();
    assert!(reason.contains("assigned to bob, not to alice"), "{now}");
    // The evidence: what triggered it, the facts and the new decision.
    let rec = ending_record(&app, id);
    let re = &rec["data"]["reverified"];
    assert_eq!(re["trigger"], "ticket-change", "{rec}");
    assert_eq!(re["ticket"]["assignee"], "bob", "{rec}");
    assert_eq!(re["ticket"]["last-event-id"], "e-60b", "{rec}");
    assert_eq!(re["request"]["ticket"]["assignee"], "bob", "{rec}");
    assert_eq!(re["decision"]["outcome"], "deny", "{rec}");
    assert_eq!(rec["actor"], "ticket-source:generic", "{rec}");
    // The same event redelivered revokes nothing more and changes nothing.
    let r = generic(
        &app,
        "e-60b",
        "INC-60",
        "in-progress",
        Some("bob"),
        t0 + 1_000,
    );
    assert_eq!(r.json()["result"], "replayed", "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "revoked");
}

fn a_ticket_put_on_hold_revokes_its_grants(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-61a", "INC-61", "open", Some("alice"), t0);
    let g = request(&app, "t-alice", &requester_body("r-61", "INC-61"));
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    // A change no decision looks at (opened-at only) re-decides nothing.
    let mut same = generic_event("e-61b", "INC-61", "open", Some("alice"), t0 + 500);
    same["opened-at"] = json!(rfc3339(t0 - 7_200_000));
    let body = same.to_string();
    let r = post_event(
        &app,
        "generic",
        body.as_bytes(),
        &sign_generic(body.as_bytes(), now_ms()),
    );
    assert_eq!(r.json()["revoked"], json!([]), "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "active");
    let r = generic(
        &app,
        "e-61c",
        "INC-61",
        "on-hold",
        Some("alice"),
        t0 + 1_000,
    );
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    let now = grant(&app, id);
    assert_eq!(now["state"], "revoked", "{now}");
    assert!(
        now["end-reason"]
            .as_str()
            .unwrap_or_default()
            .contains("requires an open or in-progress ticket"),
        "{now}"
    );
}

/// Carol's incident-triage request on `ticket`, named by id.
fn triage_body(id: &str, ticket: &str) -> Value {
    let mut v = jitgate_tests::tickets::as_requester(&jitgate_tests::server::body(
        id,
        "carol",
        "incident-triage",
        600,
    ));
    v["ticket"] = json!({"id": ticket});
    v
}

fn a_lowered_priority_revokes_a_triage_grant_given_without_approval(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic_full(&app, "e-62a", "INC-62", "open", 1, "carol", t0);
    let g = request(&app, "t-carol", &triage_body("r-62", "INC-62"));
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    // Priority 1 → 2: still granted at once.
    let r = generic_full(&app, "e-62b", "INC-62", "open", 2, "carol", t0 + 1_000);
    assert_eq!(r.json()["revoked"], json!([]), "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "active");
    // Priority 2 → 3: triage now needs an incident commander's approval,
    // which this grant never had.
    let r = generic_full(&app, "e-62c", "INC-62", "open", 3, "carol", t0 + 2_000);
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    let now = grant(&app, id);
    assert_eq!(now["state"], "revoked", "{now}");
    let reason = now["end-reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("now needs approval") && reason.contains("incident-commanders"),
        "{now}"
    );
    let rec = ending_record(&app, id);
    assert_eq!(
        rec["data"]["reverified"]["decision"]["outcome"], "require-approval",
        "{rec}"
    );
    assert_eq!(rec["data"]["reverified"]["ticket"]["priority"], 3, "{rec}");
}

fn an_approved_grant_survives_a_change_its_approval_still_covers(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic_full(&app, "e-63a", "INC-63", "open", 3, "carol", t0);
    let g = request(&app, "t-carol", &triage_body("r-63", "INC-63"));
    assert_eq!(g["state"], "pending", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    // Pending, and the priority drops further: still waiting for approval.
    generic_full(&app, "e-63b", "INC-63", "open", 4, "carol", t0 + 1_000);
    assert_eq!(grant(&app, id)["state"], "pending");
    let r = app.post(
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "active");
    // Priority 4 → 5: still approval by incident-commanders, which it has.
    let r = generic_full(
        &app,
        "e-63c",
        "INC-63",
        "in-progress",
        5,
        "carol",
        t0 + 2_000,
    );
    assert_eq!(r.json()["revoked"], json!([]), "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "active");
    // Put on hold: the policy denies; even an approved grant ends.
    let r = generic_full(&app, "e-63d", "INC-63", "on-hold", 5, "carol", t0 + 3_000);
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
}

fn a_pending_grant_is_revoked_when_its_ticket_now_denies_it(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic_full(&app, "e-64a", "INC-64", "open", 4, "carol", t0);
    let g = request(&app, "t-carol", &triage_body("r-64", "INC-64"));
    assert_eq!(g["state"], "pending", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    let r = generic_full(&app, "e-64b", "INC-64", "on-hold", 4, "carol", t0 + 1_000);
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "revoked");
    // Nobody can approve it into being any more.
    let r = app.post(
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
}

fn a_trusted_pipelines_reassignment_revokes_the_previous_assignees_grant(b: Backend) {
    let app = app(b);
    let first = jitgate_tests::server::body("r-65a", "alice", "file-recovery", 600);
    let g = request(&app, "t-pipe", &first);
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    // The pipeline's next request says ticket T-r-65a is now bob's.
    let mut second = jitgate_tests::server::body("r-65b", "bob", "file-recovery", 600);
    second["ticket"] = first["ticket"].clone();
    second["ticket"]["assignee"] = json!("bob");
    let g2 = request(&app, "t-pipe", &second);
    assert_eq!(g2["state"], "active", "{g2}");
    let now = grant(&app, id);
    assert_eq!(now["state"], "revoked", "{now}");
    assert!(
        now["end-reason"]
            .as_str()
            .unwrap_or_default()
            .contains("assigned to bob"),
        "{now}"
    );
    assert_eq!(ending_record(&app, id)["actor"], "pipeline");
}

fn reverify_on_reload_revokes_grants_the_new_policy_set_no_longer_allows(b: Backend) {
    for reverify in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = jitgate_tests::server::TestStore::new(b, dir.path());
        let extra = if reverify {
            "reverify-on-reload = true\n"
        } else {
            ""
        };
        let cfg = jitgate_tests::server::write_config_with(dir.path(), &store.url, extra);
        let policies = dir.path().join("policies");
        let app = App::from_file(&cfg, (dir, store));
        let t0 = now_ms() - 60_000;
        generic(&app, "e-66a", "INC-66", "open", Some("alice"), t0);
        let g = request(&app, "t-alice", &requester_body("r-66", "INC-66"));
        assert_eq!(g["state"], "active", "{g}");
        let id = g["id"].as_str().unwrap_or_default();
        generic_full(&app, "e-66b", "INC-67", "open", 1, "carol", t0);
        let kept = request(&app, "t-carol", &triage_body("r-67", "INC-67"));
        assert_eq!(kept["state"], "active", "{kept}");
        // The new set no longer has a file-recovery policy.
        std::fs::remove_file(policies.join("file-recovery.wasm")).expect("remove");
        let r = app.post("/v1/policies/reload", Some("t-admin"), &json!({}));
        assert_eq!(r.status, 200, "{}", r.body);
        let now = grant(&app, id);
        if reverify {
            assert_eq!(now["state"], "revoked", "{now}");
            let rec = ending_record(&app, id);
            assert_eq!(
                rec["data"]["reverified"]["trigger"], "policy-reload",
                "{rec}"
            );
            assert_eq!(
                rec["data"]["reverified"]["decision"]["outcome"], "deny",
                "{rec}"
            );
        } else {
            assert_eq!(now["state"], "active", "reverify-on-reload is off: {now}");
        }
        // A grant the new set still allows stays.
        assert_eq!(
            grant(&app, kept["id"].as_str().unwrap_or_default())["state"],
            "active"
        );
    }
}

/// A typed request (the library's `Service::submit`) is decided on the
/// registry's facts too: its struct's ticket facts are not believed.
fn a_typed_request_is_decided_on_the_registrys_ticket(b: Backend) {
    use jitgate::request::{Ticket, TicketState};
    use jitgate::service::{Principal, Role};
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-68", "INC-68", "in-progress", Some("bob"), t0);
    let typed = |id: &str, ticket: &str| {
        jitgate::Request::builder("file-recovery")
            .id(id)
            .subject("alice")
            .roles(["helpdesk"])
            .resource("fileserver-01")
            .entitlement("operator")
            .justification("restore the deleted finance share for the incident")
            .ttl(600)
            .ticket(Ticket {
                id: ticket.into(),
                state: TicketState::Open,
                priority: 1,
                assignee: Some("alice".into()),
                opened_at: t0 / 1000,
            })
            .build()
            .expect("valid request")
    };
    let untrusted = Principal::new("untrusted-pipeline", [Role::Pipeline]);
    let svc = app.service();
    let (g, _) = svc
        .submit(&untrusted, typed("r-68", "INC-68"))
        .expect("submit");
    assert_eq!(g.state.as_str(), "denied", "{g:?}");
    assert_eq!(
        g.request
            .ticket
            .as_ref()
            .and_then(|t| t.assignee.as_deref()),
        Some("bob")
    );
    let (g, _) = svc
        .submit(&untrusted, typed("r-69", "FAKE-69"))
        .expect("submit");
    assert_eq!(g.state.as_str(), "denied", "{g:?}");
    assert!(g.request.ticket.is_none(), "{g:?}");
    let d = svc
        .dry_run_request(&untrusted, typed("r-70", "FAKE-69"))
        .expect("dry run");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("ticket FAKE-69 is not known to any ticket source")),
        "{d:?}"
    );
    // The trusted pipeline's facts are recorded as its event first.
    let trusted = Principal::new("pipeline", [Role::Pipeline]);
    let (g, _) = svc.submit(&trusted, typed("r-71", "T-71")).expect("submit");
    assert_eq!(g.state.as_str(), "active", "{g:?}");
    let t = ticket(&app, "T-71").json();
    assert_eq!(
        (&t["source"], &t["assignee"]),
        (&json!("pipeline"), &json!("alice")),
        "{t}"
    );
}

/// Event ids are remembered for a day, not forever: one older than that
/// is pruned as new events arrive (a redelivery is then judged on its
/// time: stale, or the same facts again).
fn seen_event_ids_older_than_the_retention_are_pruned(b: Backend) {
    use jitgate::request::TicketState;
    use jitgate::store::TicketFacts;
    use jitgate::store::tickets::SEEN_EVENT_RETENTION_MS;
    let app = app(b);
    let svc = app.service();
    let facts = |event: &str, ticket: &str, updated_at: i64| TicketFacts {
        source: "generic".into(),
        event_id: Some(event.into()),
        ticket_id: ticket.into(),
        deleted: false,
        state: TicketState::Open,
        priority: Some(3),
        assignee: Some("alice".into()),
        opened_at: None,
        updated_at,
    };
    let t0 = svc.now();
    let first = facts("old-1", "INC-80", t0);
    assert_eq!(
        svc.apply_ticket_facts(&first, "ticket-source:generic", true, true)
            .expect("apply")
            .as_str(),
        "applied"
    );
    assert_eq!(
        svc.apply_ticket_facts(&first, "ticket-source:generic", true, true)
            .expect("apply")
            .as_str(),
        "replayed"
    );
    // Events arriving later than the retention (their `seen_at` is the
    // service's time: the store is written with a time past it).
    let store = svc.store();
    let later = facts("new-1", "INC-81", t0);
    let change = jitgate::store::TicketChange {
        event: &later,
        actor: "ticket-source:generic",
        at: t0 + SEEN_EVENT_RETENTION_MS + 1,
        may_reopen: true,
        resolved_ends_grants: true,
    };
    let applied = store
        .apply_ticket_change(&change, &mut |_| Ok(None))
        .map_err(|e| format!("{e:?}"))
        .expect("apply");
    assert_eq!(applied.as_str(), "applied");
    // old-1 is forgotten: delivered again it is judged on its time (the
    // same time and facts as stored: applied again, changing nothing).
    let again = svc
        .apply_ticket_facts(&first, "ticket-source:generic", true, true)
        .expect("apply");
    assert_eq!(again.as_str(), "applied", "{again:?}");
    // new-1 is still remembered.
    let change = jitgate::store::TicketChange {
        at: t0 + SEEN_EVENT_RETENTION_MS + 2,
        ..change
    };
    let replay = store
        .apply_ticket_change(&change, &mut |_| Ok(None))
        .map_err(|e| format!("{e:?}"))
        .expect("apply");
    assert_eq!(replay.as_str(), "replayed");
}

/// A request naming a ticket the registry does not know: its system is
/// asked (the fake Jira on loopback), and the answer decides.
fn an_unknown_ticket_is_pulled_from_its_system_at_request_time(b: Backend) {
    use std::sync::{Arc, Mutex};
    let answer = Arc::new(Mutex::new((503u16, "{}".to_string())));
    let jira = fake_jira(answer.clone());
    let sources = jitgate_tests::tickets::SOURCES.replace(
        "states = { \"Closed\" = \"closed\" }\n",
        &format!(
            "states = {{ \"Closed\" = \"closed\" }}\nbase-url = \"{jira}\"\n\
             credentials-env = \"{}\"\nreconcile-interval = 3600\n",
            jitgate_tests::tickets::SECRET_ENV
        ),
    );
    let app = App::new(b, &sources);
    // Jira is down: nothing is known, nothing granted, the failure counted.
    let g = request(&app, "t-alice", &requester_body("r-90", "OPS-142"));
    assert_eq!(g["state"], "denied", "{g}");
    assert!(
        reasons(&g).contains("OPS-142 is not known to any ticket source"),
        "{g}"
    );
    assert_eq!(ticket(&app, "OPS-142").status, 404);
    let m = app.get("/metrics", None).body;
    assert!(
        m.lines()
            .any(|l| l.starts_with("jitgate_ticket_pull_failures_total ") && !l.ends_with(" 0")),
        "{m}"
    );
    // Jira answers: the issue is bob's. Pulled, recorded, decided on it.
    let v = sample("jira-issue-updated.json");
    let mut issue = v["issue"].clone();
    issue["fields"]["assignee"]["emailAddress"] = json!("bob");
    if let Ok(mut a) = answer.lock() {
        *a = (200, issue.to_string());
    }
    let g = request(&app, "t-alice", &requester_body("r-91", "OPS-142"));
    assert_eq!(g["state"], "denied", "{g}");
    assert!(reasons(&g).contains("assigned to bob"), "{g}");
    let t = ticket(&app, "OPS-142").json();
    assert_eq!(
        (&t["source"], &t["assignee"]),
        (&json!("jira"), &json!("bob")),
        "{t}"
    );
    let facts = ticket_events_request_facts(&app, g["id"].as_str().unwrap_or_default());
    assert_eq!(facts["source"], "jira", "{facts}");
    // A ticket Jira does not have stays unknown.
    let g = request(&app, "t-alice", &requester_body("r-92", "OPS-999"));
    assert_eq!(g["state"], "denied", "{g}");
    assert_eq!(ticket(&app, "OPS-999").status, 404);
}

/// Contract 0.2.0: saas-admin asks that an approved write grant end with
/// its ticket (`approval-terms.revoke-on-ticket-close`), and it does.
fn an_approved_saas_admin_write_grant_ends_with_its_ticket(b: Backend) {
    let app = app(b);
    let t0 = now_ms() - 60_000;
    generic(&app, "e-70a", "INC-70", "in-progress", Some("alice"), t0);
    let mut body = jitgate_tests::server::body("r-70", "alice", "saas-admin", 600);
    body["ticket"] = json!({"id": "INC-70"});
    let g = request(&app, "t-pipe", &body);
    assert_eq!(g["state"], "pending", "{g}");
    assert_eq!(g["revoke-on-ticket-close"], true, "{g}");
    let id = g["id"].as_str().unwrap_or_default();
    let r = app.post(
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(grant(&app, id)["state"], "active");
    let r = generic(&app, "e-70b", "INC-70", "closed", Some("alice"), t0 + 1_000);
    assert_eq!(r.json()["revoked"], json!([id]), "{}", r.body);
    let now = grant(&app, id);
    assert_eq!(now["state"], "revoked", "{now}");
    assert_eq!(now["end-reason"], "ticket INC-70 is closed", "{now}");
}

both_stores!(
    an_approved_saas_admin_write_grant_ends_with_its_ticket,
    a_reassigned_ticket_revokes_the_previous_assignees_grant,
    a_ticket_put_on_hold_revokes_its_grants,
    a_lowered_priority_revokes_a_triage_grant_given_without_approval,
    an_approved_grant_survives_a_change_its_approval_still_covers,
    a_pending_grant_is_revoked_when_its_ticket_now_denies_it,
    a_trusted_pipelines_reassignment_revokes_the_previous_assignees_grant,
    reverify_on_reload_revokes_grants_the_new_policy_set_no_longer_allows,
    a_typed_request_is_decided_on_the_registrys_ticket,
    seen_event_ids_older_than_the_retention_are_pruned,
    an_unknown_ticket_is_pulled_from_its_system_at_request_time,
    a_ticket_closed_without_a_webhook_is_revoked_by_the_reconciler,
    a_refused_pipeline_request_records_no_ticket_event,
    spoofed_unknown_ticket_fake_999_is_denied_as_not_known,
    spoofed_open_state_of_a_closed_ticket_inc_7_is_denied,
    spoofed_assignee_is_decided_on_the_registrys_assignee,
    reassignment_changes_the_decision_of_a_new_request,
    resolving_event_revokes_the_tickets_revoke_on_close_grant,
    jira_signed_event_changes_the_ticket_and_forged_replayed_or_older_ones_do_not,
    servicenow_shared_secret_event_changes_the_ticket_and_forged_replayed_or_older_ones_do_not,
    zendesk_signed_event_changes_the_ticket_and_forged_stale_replayed_or_older_ones_do_not,
    generic_signed_event_changes_the_ticket_and_forged_stale_replayed_or_older_ones_do_not,
    a_source_reporting_another_sources_ticket_is_refused_and_audited,
    forged_webhooks_are_counted_as_failed_authentications,
    a_webhook_body_above_the_api_limit_but_within_the_event_limit_is_taken,
    get_ticket_shows_a_requester_only_its_own_tickets,
);
