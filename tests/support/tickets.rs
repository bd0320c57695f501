//! Ticket sources for tests: one `[[ticket-sources]]` of each kind, their
//! shared webhook secret, and each system's signature made the way the
//! system makes it (docs/tickets.md).

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

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
    let mut v = crate::server::body(id, "alice", "file-recovery", 600);
    v["ticket"] = json!({"id": ticket});
    v
}
