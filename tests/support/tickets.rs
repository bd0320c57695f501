//! Ticket sources for tests: one `[[ticket-sources]]` of each kind, their
//! shared webhook secret, and each system's signature made the way the
//! system makes it (docs/tickets.md).

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// HTTP headers, name and value.
pub type Headers = Vec<(String, String)>;

/// The environment variable every test ticket source reads its secret from.
pub const SECRET_ENV: &str = "JITGATE_TEST_TICKET_SECRET";
/// Its value.
pub const SECRET: &str = "ticket-secret-0123456789";

/// One source of each kind: `jira`, `snow` (servicenow), `zendesk`,
/// `generic`.
pub const SOURCES: &str = "
[[ticket-sources]]
name = \"jira\"
kind = \"jira\"
secret-env = \"JITGATE_TEST_TICKET_SECRET\"
states = { \"Closed\" = \"closed\" }

[[ticket-sources]]
name = \"snow\"
kind = \"servicenow\"
secret-env = \"JITGATE_TEST_TICKET_SECRET\"

[[ticket-sources]]
name = \"zendesk\"
kind = \"zendesk\"
secret-env = \"JITGATE_TEST_TICKET_SECRET\"

[[ticket-sources]]
name = \"generic\"
kind = \"generic\"
secret-env = \"JITGATE_TEST_TICKET_SECRET\"
";

/// The environment as a test server sees it: the ticket secret, else the
/// process's own.
pub fn env(key: &str) -> Option<String> {
    if key == SECRET_ENV {
        Some(SECRET.to_string())
    } else {
        std::env::var(key).ok()
    }
}

fn mac(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(SECRET.as_bytes()).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// Now, Unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 of Unix ms (second precision).
pub fn rfc3339(ms: u64) -> String {
    jitgate::request::format_rfc3339(ms / 1000)
}

/// Headers of a `generic` event signed at `ts_ms`.
pub fn sign_generic(body: &[u8], ts_ms: u64) -> Vec<(String, String)> {
    let ts = ts_ms.to_string();
    let sig = hex::encode(mac(&[ts.as_bytes(), b".", body]));
    vec![
        ("x-jitgate-timestamp".into(), ts),
        ("x-jitgate-signature".into(), format!("sha256={sig}")),
    ]
}

/// Headers of a Jira webhook with delivery id `delivery`.
pub fn sign_jira(body: &[u8], delivery: &str) -> Vec<(String, String)> {
    vec![
        (
            "x-hub-signature".into(),
            format!("sha256={}", hex::encode(mac(&[body]))),
        ),
        ("x-atlassian-webhook-identifier".into(), delivery.into()),
    ]
}

/// Headers of a Zendesk webhook signed at `ts_ms`.
pub fn sign_zendesk(body: &[u8], ts_ms: u64) -> Vec<(String, String)> {
    let ts = rfc3339(ts_ms);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac(&[ts.as_bytes(), body]));
    vec![
        ("x-zendesk-webhook-signature-timestamp".into(), ts),
        ("x-zendesk-webhook-signature".into(), sig),
    ]
}

/// Headers of a ServiceNow business rule's post.
pub fn sign_servicenow() -> Vec<(String, String)> {
    vec![("x-jitgate-secret".into(), SECRET.into())]
}

/// A `generic` event body.
pub fn generic_event(
    event_id: &str,
    ticket: &str,
    state: &str,
    assignee: Option<&str>,
    updated_at_ms: u64,
) -> Value {
    let mut v = json!({
        "event-id": event_id,
        "ticket": ticket,
        "state": state,
        "priority": 3,
        "opened-at": rfc3339(updated_at_ms.saturating_sub(3_600_000)),
        "updated-at": rfc3339(updated_at_ms),
    });
    if let Some(a) = assignee {
        v["assignee"] = json!(a);
    }
    v
}

/// A sample payload from `tests/tickets/`.
pub fn sample(name: &str) -> Value {
    let path = crate::root().join("tests/tickets").join(name);
    let text = std::fs::read_to_string(&path).expect("sample payload");
    serde_json::from_str(&text).expect("sample is JSON")
}

/// Alice's file-recovery request (`server::body`) on `ticket`, named by
/// id only.
pub fn requester_body(id: &str, ticket: &str) -> Value {
    let mut v = as_requester(&crate::server::body(id, "alice", "file-recovery", 600));
    v["ticket"] = json!({"id": ticket});
    v
}

/// The signed `generic` event that makes the registry hold `body`'s ticket
/// facts (a request body as a trusted pipeline would send it), and the
/// body as a requester sends it: the ticket named by id only. `None` when
/// the body has no ticket. The body returned has no subject kind or MFA
/// time either ([`as_requester`]).
pub fn registry_event(body: &Value) -> Option<(Vec<u8>, Headers, Value)> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = body.get("ticket").filter(|t| t.is_object())?;
    let id = t["id"].as_str()?.to_string();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = now_ms();
    let mut ev = json!({
        "event-id": format!("seed-{}-{n}-{now}", std::process::id()),
        "ticket": id,
        "state": t["state"],
        "priority": t["priority"],
        "updated-at": rfc3339(now),
    });
    if let Some(a) = t.get("assignee").filter(|a| !a.is_null()) {
        ev["assignee"] = a.clone();
    }
    if let Some(o) = t.get("opened-at").and_then(Value::as_u64) {
        ev["opened-at"] = json!(jitgate::request::format_rfc3339(o));
    }
    let bytes = ev.to_string().into_bytes();
    let headers = sign_generic(&bytes, now);
    let mut stripped = as_requester(body);
    stripped["ticket"] = json!({"id": id});
    Some((bytes, headers, stripped))
}

/// Make the registry of the server at `addr` hold `body`'s ticket facts
/// (see [`registry_event`]); returns the body as a requester sends it.
pub fn seed(addr: std::net::SocketAddr, body: &Value) -> Value {
    let Some((bytes, headers, stripped)) = registry_event(body) else {
        return body.clone();
    };
    let r = crate::http::send_with(
        addr,
        "POST",
        "/v1/ticket-sources/generic/events",
        &headers,
        Some(&bytes),
    );
    assert_eq!(r.status, 200, "seeding the ticket registry: {}", r.body);
    stripped
}

/// Make `svc`'s registry hold `body`'s ticket facts (as the `generic`
/// source would); returns the body as a requester sends it.
pub fn seed_service(svc: &jitgate::service::Service, body: &Value) -> Value {
    let Some(t) = body.get("ticket").filter(|t| t.is_object()) else {
        return body.clone();
    };
    let id = t["id"].as_str().unwrap_or_default().to_string();
    let state: jitgate::request::TicketState =
        serde_json::from_value(t["state"].clone()).expect("ticket state");
    let facts = jitgate::store::TicketFacts {
        source: "generic".into(),
        event_id: None,
        ticket_id: id.clone(),
        deleted: false,
        state,
        priority: t["priority"].as_u64().map(|p| p as u8),
        assignee: t["assignee"].as_str().map(str::to_string),
        opened_at: t["opened-at"].as_i64().map(|s| s * 1000),
        updated_at: svc.now(),
    };
    svc.apply_ticket_facts(&facts, "generic", true, true)
        .expect("seed the ticket registry");
    let mut stripped = as_requester(body);
    stripped["ticket"] = json!({"id": id});
    stripped
}

/// `body` without a ticket (for tasks whose policies do not read it).
pub fn without_ticket(body: &Value) -> Value {
    let mut v = body.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("ticket");
    }
    v
}

/// `body` as a requester sends it: no `subject.kind` or `subject.mfa-at`
/// (jitgate sets them from the requester's credential).
pub fn as_requester(body: &Value) -> Value {
    let mut v = body.clone();
    if let Some(s) = v.get_mut("subject").and_then(Value::as_object_mut) {
        s.remove("kind");
        s.remove("mfa-at");
    }
    v
}
