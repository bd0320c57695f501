//! Ticket source tests: the samples under `tests/tickets/` as each system
//! sends them, and the attacks on each scheme, named after the attack.
//!
//! One file past 500 lines: per system, the same attacks on the same fixtures,
//! side by side.

use super::*;
use crate::request::TicketState;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use hmac::{KeyInit, Mac};

const JIRA: &str = include_str!("../../../tests/tickets/jira-issue-updated.json");
const SNOW: &str = include_str!("../../../tests/tickets/servicenow-incident.json");
const ZENDESK: &str = include_str!("../../../tests/tickets/zendesk-status-changed.json");
const GENERIC: &str = include_str!("../../../tests/tickets/generic.json");

/// The secret docs/tickets.md signs its examples with.
const SECRET: &str = "test-secret-0123456789";

/// 2026-11-25T09:12:03Z and 10:22:03Z, ms.
const OPENED: Millis = 1_795_597_923_000;
const UPDATED: Millis = 1_795_602_123_000;
/// A little after the samples were sent.
const NOW: Millis = UPDATED + 2_000;

/// Produced by the commands in docs/tickets.md ("Signing a test event by
/// hand") from the files under tests/tickets/, with SECRET.
const OPENSSL_JIRA_SIG: &str = "f75a931794527f6ad65975c27ce79d4268c76a614f872c7c322b6920ce8bcb8c";
const OPENSSL_GENERIC_TS: &str = "1795602123000";
const OPENSSL_GENERIC_SIG: &str =
    "22390624ad55a56f45c8a87bd40dd6bdfce47f1c2db627234c10fafe46ee305b";
const OPENSSL_ZENDESK_TS: &str = "2026-11-25T10:22:05Z";
const OPENSSL_ZENDESK_SIG: &str = "wwgPRzjvWY2J76ixCW0fI5qtnLvSmZbyNfyBtQXPfFQ=";

fn source(doc: &str) -> TicketSource {
    source_with(doc, SECRET)
}

fn source_with(doc: &str, secret: &str) -> TicketSource {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Doc {
        ticket_sources: Vec<TicketSourceConfig>,
    }
    let d: Doc = toml::from_str(doc).unwrap();
    check_sources(&d.ticket_sources).unwrap();
    TicketSource::new(0, &d.ticket_sources[0], secret.as_bytes().to_vec()).unwrap()
}

fn jira() -> TicketSource {
    source("[[ticket-sources]]\nname='jira'\nkind='jira'\nsecret-env='J'\n")
}
fn snow() -> TicketSource {
    source("[[ticket-sources]]\nname='snow'\nkind='servicenow'\nsecret-env='S'\n")
}
/// A basic-auth secret is `user:password`.
const BASIC: &str = "jitgate:correct-horse-battery";

fn snow_basic() -> TicketSource {
    source_with(
        "[[ticket-sources]]\nname='snow'\nkind='servicenow'\nsecret-env='S'\nauth='basic'\n",
        BASIC,
    )
}
fn zendesk() -> TicketSource {
    source("[[ticket-sources]]\nname='zd'\nkind='zendesk'\nsecret-env='Z'\n")
}
fn generic() -> TicketSource {
    source("[[ticket-sources]]\nname='pipeline'\nkind='generic'\nsecret-env='G'\n")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn hmac(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn jira_headers(body: &str) -> HeaderMap {
    headers(&[
        (
            "X-Hub-Signature",
            &format!("sha256={}", hex::encode(hmac(&[body.as_bytes()]))),
        ),
        (
            "X-Atlassian-Webhook-Identifier",
            "3a1d7c42-9b5e-4f1a-8c2d-6e0f9b8a7d21",
        ),
    ])
}

fn zendesk_headers(ts: &str, body: &str) -> HeaderMap {
    let sig =
        base64::engine::general_purpose::STANDARD.encode(hmac(&[ts.as_bytes(), body.as_bytes()]));
    headers(&[
        ("X-Zendesk-Webhook-Signature", &sig),
        ("X-Zendesk-Webhook-Signature-Timestamp", ts),
    ])
}

fn generic_headers(ts: Millis, body: &str) -> HeaderMap {
    let ts = ts.to_string();
    let sig = crate::provision::signature(SECRET.as_bytes(), &ts, body.as_bytes());
    headers(&[("X-Jitgate-Timestamp", &ts), ("X-Jitgate-Signature", &sig)])
}

fn snow_headers() -> HeaderMap {
    headers(&[("X-Jitgate-Secret", SECRET)])
}

fn auth_err(r: Result<TicketEvent, TicketError>) -> AuthError {
    match r {
        Err(TicketError::Auth(a)) => a,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

fn event_err(r: Result<TicketEvent, TicketError>) -> EventError {
    match r {
        Err(TicketError::Event(e)) => e,
        other => panic!("expected an event error, got {other:?}"),
    }
}

// --- valid events, per system ---------------------------------------------

#[test]
fn jira_sample_is_parsed() {
    let e = jira()
        .verify_and_parse(&jira_headers(JIRA), JIRA.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        e,
        TicketEvent {
            source: "jira".into(),
            event_id: Some("3a1d7c42-9b5e-4f1a-8c2d-6e0f9b8a7d21".into()),
            ticket_id: "OPS-142".into(),
            kind: TicketEventKind::Upsert,
            state: TicketState::InProgress,
            priority: Some(2),
            assignee: Some("alice@example.com".into()),
            opened_at: Some(OPENED + 512),
            updated_at: UPDATED + 612,
        }
    );
}

#[test]
fn jira_categories_deletes_unassigned_and_account_id() {
    let body = JIRA
        .replace("\"key\": \"indeterminate\"", "\"key\": \"done\"")
        .replace("jira:issue_updated", "jira:issue_deleted");
    let e = jira()
        .verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::Resolved);
    assert_eq!(e.kind, TicketEventKind::Deleted);

    let s = source(
        "[[ticket-sources]]\nname='jira'\nkind='jira'\nsecret-env='J'\nassignee-field='accountId'\n",
    );
    let e = s
        .verify_and_parse(&jira_headers(JIRA), JIRA.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        e.assignee.as_deref(),
        Some("712020:4bd4c1f4-cc8e-4d3a-9f0e-5d2b8d1c3e7a")
    );

    let mut v: serde_json::Value = serde_json::from_str(JIRA).unwrap();
    v["issue"]["fields"]["assignee"] = serde_json::Value::Null;
    v["issue"]["fields"]["priority"] = serde_json::Value::Null;
    v["issue"]["fields"]["status"]["statusCategory"]["key"] = "new".into();
    let body = v.to_string();
    let e = jira()
        .verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        (e.assignee, e.priority, e.state),
        (None, None, TicketState::Open)
    );
}

#[test]
fn servicenow_sample_is_parsed() {
    let e = snow()
        .verify_and_parse(&snow_headers(), SNOW.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        e,
        TicketEvent {
            source: "snow".into(),
            event_id: Some("INC0010023@2026-11-25 10:22:03".into()),
            ticket_id: "INC0010023".into(),
            kind: TicketEventKind::Upsert,
            state: TicketState::InProgress,
            priority: Some(2),
            assignee: Some("alice@example.com".into()),
            opened_at: Some(OPENED),
            updated_at: UPDATED,
        }
    );
}

#[test]
fn servicenow_every_state_code_as_text_number_or_object() {
    for (code, want) in [
        ("1", TicketState::Open),
        ("2", TicketState::InProgress),
        ("3", TicketState::OnHold),
        ("6", TicketState::Resolved),
        ("7", TicketState::Closed),
        ("8", TicketState::Closed),
    ] {
        for repr in [
            format!("\"{code}\""),
            code.to_string(),
            format!("{{\"value\": \"{code}\", \"display_value\": \"whatever\"}}"),
        ] {
            let body = SNOW.replace("\"state\": \"2\"", &format!("\"state\": {repr}"));
            let e = snow()
                .verify_and_parse(&snow_headers(), body.as_bytes(), NOW)
                .unwrap();
            assert_eq!(e.state, want, "{repr}");
        }
    }
    // Display values alone, and an assignee object: email before sys_id.
    let body = SNOW
        .replace(
            "\"state\": \"2\"",
            "\"state\": {\"display_value\": \"On Hold\"}",
        )
        .replace(
            "\"priority\": \"2\"",
            "\"priority\": {\"value\": \"1\", \"display_value\": \"1 - Critical\"}",
        )
        .replace(
            "\"assigned_to\": \"alice@example.com\"",
            "\"assigned_to\": {\"value\": \"5137153cc611227c000bbd1bd8cd2005\", \"display_value\": \"Alice Helpdesk\", \"email\": \"alice@example.com\"}",
        );
    let e = snow()
        .verify_and_parse(&snow_headers(), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::OnHold);
    assert_eq!(e.priority, Some(1));
    assert_eq!(e.assignee.as_deref(), Some("alice@example.com"));
    // An empty reference is "unassigned".
    let body = SNOW.replace(
        "\"assigned_to\": \"alice@example.com\"",
        "\"assigned_to\": \"\"",
    );
    let e = snow()
        .verify_and_parse(&snow_headers(), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.assignee, None);
}

#[test]
fn servicenow_basic_auth_is_accepted() {
    let s = snow_basic();
    assert_eq!(s.auth, WebhookAuth::Basic);
    let ok = base64::engine::general_purpose::STANDARD.encode(BASIC);
    let h = headers(&[("Authorization", &format!("Basic {ok}"))]);
    let e = s.verify_and_parse(&h, SNOW.as_bytes(), NOW).unwrap();
    assert_eq!(e.ticket_id, "INC0010023");
    // The shared-secret header is no way in when basic is configured.
    assert!(
        s.verify_and_parse(&snow_headers(), SNOW.as_bytes(), NOW)
            .is_err()
    );
}

#[test]
fn zendesk_sample_is_parsed() {
    let ts = "2026-11-25T10:22:05Z";
    let e = zendesk()
        .verify_and_parse(&zendesk_headers(ts, ZENDESK), ZENDESK.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        e,
        TicketEvent {
            source: "zd".into(),
            event_id: Some("cbe4028c-7239-495d-b020-f22348516046".into()),
            ticket_id: "5158".into(),
            kind: TicketEventKind::Upsert,
            state: TicketState::OnHold,
            priority: Some(2),
            assignee: Some("alice@example.com".into()),
            opened_at: Some(OPENED),
            updated_at: UPDATED + 672,
        }
    );
}

#[test]
fn zendesk_statuses_priorities_and_deletes() {
    let ts = "2026-11-25T10:22:05Z";
    for (status, want) in [
        ("new", TicketState::Open),
        ("OPEN", TicketState::Open),
        ("hold", TicketState::OnHold),
        ("SOLVED", TicketState::Resolved),
        ("closed", TicketState::Closed),
    ] {
        let body = ZENDESK.replace(
            "\"status\": \"PENDING\"",
            &format!("\"status\": \"{status}\""),
        );
        let e = zendesk()
            .verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW)
            .unwrap();
        assert_eq!(e.state, want, "{status}");
    }
    for (p, want) in [("urgent", 1), ("HIGH", 2), ("normal", 3), ("low", 4)] {
        let body = ZENDESK.replace("\"priority\": \"HIGH\"", &format!("\"priority\": \"{p}\""));
        let e = zendesk()
            .verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW)
            .unwrap();
        assert_eq!(e.priority, Some(want), "{p}");
    }
    let body = ZENDESK.replace("ticket.status_changed", "ticket.soft_deleted");
    let e = zendesk()
        .verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.kind, TicketEventKind::Deleted);
}

#[test]
fn generic_sample_is_parsed() {
    let e = generic()
        .verify_and_parse(&generic_headers(NOW, GENERIC), GENERIC.as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        e,
        TicketEvent {
            source: "pipeline".into(),
            event_id: Some("pipeline-7f3a9c".into()),
            ticket_id: "INC-7".into(),
            kind: TicketEventKind::Upsert,
            state: TicketState::InProgress,
            priority: Some(2),
            assignee: Some("alice@example.com".into()),
            opened_at: Some(OPENED),
            updated_at: UPDATED,
        }
    );
}

// --- signatures made by hand with openssl (docs/tickets.md) ---------------

#[test]
fn signatures_made_with_openssl_as_documented_are_accepted() {
    let h = headers(&[("X-Hub-Signature", &format!("sha256={OPENSSL_JIRA_SIG}"))]);
    jira().verify_and_parse(&h, JIRA.as_bytes(), NOW).unwrap();

    let h = headers(&[
        ("X-Jitgate-Timestamp", OPENSSL_GENERIC_TS),
        (
            "X-Jitgate-Signature",
            &format!("sha256={OPENSSL_GENERIC_SIG}"),
        ),
    ]);
    generic()
        .verify_and_parse(&h, GENERIC.as_bytes(), NOW)
        .unwrap();

    let h = headers(&[
        ("X-Zendesk-Webhook-Signature", OPENSSL_ZENDESK_SIG),
        ("X-Zendesk-Webhook-Signature-Timestamp", OPENSSL_ZENDESK_TS),
    ]);
    zendesk()
        .verify_and_parse(&h, ZENDESK.as_bytes(), NOW)
        .unwrap();
}

// --- forged, missing, replayed --------------------------------------------

#[test]
fn forged_signature_with_a_wrong_secret_is_refused() {
    let wrong = |body: &str| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"guessed-secret-0000").unwrap();
        m.update(body.as_bytes());
        format!("sha256={}", hex::encode(m.finalize().into_bytes()))
    };
    let h = headers(&[("X-Hub-Signature", &wrong(JIRA))]);
    assert_eq!(
        auth_err(jira().verify_and_parse(&h, JIRA.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let ts = NOW.to_string();
    let h = headers(&[
        ("X-Jitgate-Timestamp", &ts),
        (
            "X-Jitgate-Signature",
            &crate::provision::signature(b"guessed-secret-0000", &ts, GENERIC.as_bytes()),
        ),
    ]);
    assert_eq!(
        auth_err(generic().verify_and_parse(&h, GENERIC.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let h = headers(&[("X-Jitgate-Secret", "guessed-secret-0000")]);
    assert_eq!(
        auth_err(snow().verify_and_parse(&h, SNOW.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    // A prefix of the real secret must not pass either.
    let h = headers(&[("X-Jitgate-Secret", &SECRET[..SECRET.len() - 1])]);
    assert_eq!(
        auth_err(snow().verify_and_parse(&h, SNOW.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let bad = base64::engine::general_purpose::STANDARD.encode("jitgate:wrong");
    let h = headers(&[("Authorization", &format!("Basic {bad}"))]);
    assert!(
        snow_basic()
            .verify_and_parse(&h, SNOW.as_bytes(), NOW)
            .is_err()
    );
}

#[test]
fn missing_signature_is_refused_naming_the_header() {
    assert_eq!(
        auth_err(jira().verify_and_parse(&HeaderMap::new(), JIRA.as_bytes(), NOW)),
        AuthError::MissingHeader("x-hub-signature".into())
    );
    assert_eq!(
        auth_err(snow().verify_and_parse(&HeaderMap::new(), SNOW.as_bytes(), NOW)),
        AuthError::MissingHeader("x-jitgate-secret".into())
    );
    assert_eq!(
        auth_err(snow_basic().verify_and_parse(&HeaderMap::new(), SNOW.as_bytes(), NOW)),
        AuthError::MissingHeader("authorization".into())
    );
    let only_ts = headers(&[(
        "X-Zendesk-Webhook-Signature-Timestamp",
        "2026-11-25T10:22:05Z",
    )]);
    assert_eq!(
        auth_err(zendesk().verify_and_parse(&only_ts, ZENDESK.as_bytes(), NOW)),
        AuthError::MissingHeader("x-zendesk-webhook-signature".into())
    );
    let mut h = generic_headers(NOW, GENERIC);
    h.remove("x-jitgate-timestamp");
    assert_eq!(
        auth_err(generic().verify_and_parse(&h, GENERIC.as_bytes(), NOW)),
        AuthError::MissingHeader("x-jitgate-timestamp".into())
    );
}

#[test]
fn signature_over_a_different_body_is_refused() {
    let closed = JIRA.replace("\"key\": \"indeterminate\"", "\"key\": \"new\"");
    assert_eq!(
        auth_err(jira().verify_and_parse(&jira_headers(JIRA), closed.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let ts = "2026-11-25T10:22:05Z";
    let other = ZENDESK.replace("PENDING", "OPEN");
    assert_eq!(
        auth_err(zendesk().verify_and_parse(&zendesk_headers(ts, ZENDESK), other.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let other = GENERIC.replace("in-progress", "open");
    assert_eq!(
        auth_err(generic().verify_and_parse(&generic_headers(NOW, GENERIC), other.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    // One trailing byte is a different body.
    let mut longer = JIRA.as_bytes().to_vec();
    longer.push(b' ');
    assert_eq!(
        auth_err(jira().verify_and_parse(&jira_headers(JIRA), &longer, NOW)),
        AuthError::BadSignature
    );
}

#[test]
fn signed_timestamp_swapped_for_a_fresh_one_is_refused() {
    // A captured event replayed with a new timestamp header: the
    // timestamp is under the signature.
    let old = zendesk_headers("2026-11-25T09:00:00Z", ZENDESK);
    let mut h = old.clone();
    h.insert(
        "x-zendesk-webhook-signature-timestamp",
        HeaderValue::from_static("2026-11-25T10:22:05Z"),
    );
    assert_eq!(
        auth_err(zendesk().verify_and_parse(&h, ZENDESK.as_bytes(), NOW)),
        AuthError::BadSignature
    );
    let mut h = generic_headers(NOW - 3_600_000, GENERIC);
    h.insert(
        "x-jitgate-timestamp",
        HeaderValue::from_str(&NOW.to_string()).unwrap(),
    );
    assert_eq!(
        auth_err(generic().verify_and_parse(&h, GENERIC.as_bytes(), NOW)),
        AuthError::BadSignature
    );
}

#[test]
fn replayed_zendesk_event_older_than_five_minutes_is_refused() {
    let ts = "2026-11-25T10:16:00Z"; // 6 min 5 s before NOW
    let err = auth_err(zendesk().verify_and_parse(
        &zendesk_headers(ts, ZENDESK),
        ZENDESK.as_bytes(),
        NOW,
    ));
    assert!(
        matches!(err, AuthError::OutOfWindow { future: false, ref header, .. } if header == ZENDESK_TIMESTAMP),
        "{err:?}"
    );
    // Just inside the window passes.
    let ts = "2026-11-25T10:19:06Z";
    zendesk()
        .verify_and_parse(&zendesk_headers(ts, ZENDESK), ZENDESK.as_bytes(), NOW)
        .unwrap();
}

#[test]
fn zendesk_event_presigned_for_the_future_is_refused() {
    let ts = "2026-11-25T10:40:00Z";
    let err = auth_err(zendesk().verify_and_parse(
        &zendesk_headers(ts, ZENDESK),
        ZENDESK.as_bytes(),
        NOW,
    ));
    assert!(
        matches!(err, AuthError::OutOfWindow { future: true, .. }),
        "{err:?}"
    );
}

#[test]
fn replayed_generic_event_older_than_five_minutes_is_refused() {
    let at = NOW - MAX_SKEW_MS - 1;
    let err = auth_err(generic().verify_and_parse(
        &generic_headers(at, GENERIC),
        GENERIC.as_bytes(),
        NOW,
    ));
    assert!(
        matches!(err, AuthError::OutOfWindow { future: false, .. }),
        "{err:?}"
    );
    let at = NOW - MAX_SKEW_MS;
    generic()
        .verify_and_parse(&generic_headers(at, GENERIC), GENERIC.as_bytes(), NOW)
        .unwrap();
}

#[test]
fn generic_event_presigned_for_the_future_is_refused() {
    let at = NOW + MAX_SKEW_MS + 1;
    let err = auth_err(generic().verify_and_parse(
        &generic_headers(at, GENERIC),
        GENERIC.as_bytes(),
        NOW,
    ));
    assert!(
        matches!(err, AuthError::OutOfWindow { future: true, .. }),
        "{err:?}"
    );
}

#[test]
fn generic_timestamp_of_u64_max_or_text_is_refused() {
    for ts in [
        "18446744073709551615",
        "99999999999999999999999",
        "-5",
        "1e12",
        "",
    ] {
        let sig = crate::provision::signature(SECRET.as_bytes(), ts, GENERIC.as_bytes());
        let h = headers(&[("X-Jitgate-Timestamp", ts), ("X-Jitgate-Signature", &sig)]);
        let err = auth_err(generic().verify_and_parse(&h, GENERIC.as_bytes(), NOW));
        assert!(
            matches!(
                err,
                AuthError::Malformed { .. } | AuthError::OutOfWindow { .. }
            ),
            "{ts}: {err:?}"
        );
    }
}

#[test]
fn repeated_signature_header_is_refused() {
    // Two signatures: which one a proxy keeps is not defined.
    let mut h = jira_headers(JIRA);
    h.append(
        "x-hub-signature",
        HeaderValue::from_static(
            "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        ),
    );
    assert_eq!(
        auth_err(jira().verify_and_parse(&h, JIRA.as_bytes(), NOW)),
        AuthError::RepeatedHeader("x-hub-signature".into())
    );
    let mut h = snow_headers();
    h.append("x-jitgate-secret", HeaderValue::from_static("other"));
    assert!(matches!(
        auth_err(snow().verify_and_parse(&h, SNOW.as_bytes(), NOW)),
        AuthError::RepeatedHeader(_)
    ));
}

#[test]
fn truncated_or_non_hex_signature_is_refused_as_malformed() {
    for sig in [
        "sha256=abcd",
        "sha1=00",
        "f75a931794527f6ad65975c27ce79d4268c76a614f872c7c322b6920ce8bcb8c",
        "sha256=zz5a931794527f6ad65975c27ce79d4268c76a614f872c7c322b6920ce8bcb8c",
    ] {
        let h = headers(&[("X-Hub-Signature", sig)]);
        assert!(
            matches!(
                auth_err(jira().verify_and_parse(&h, JIRA.as_bytes(), NOW)),
                AuthError::Malformed { .. }
            ),
            "{sig}"
        );
    }
    let h = headers(&[
        ("X-Zendesk-Webhook-Signature", "not base64!"),
        (
            "X-Zendesk-Webhook-Signature-Timestamp",
            "2026-11-25T10:22:05Z",
        ),
    ]);
    assert!(matches!(
        auth_err(zendesk().verify_and_parse(&h, ZENDESK.as_bytes(), NOW)),
        AuthError::Malformed { .. }
    ));
}

#[test]
fn ten_megabyte_body_is_refused_before_hashing() {
    let body = vec![b' '; 10 << 20];
    let r = jira().verify_and_parse(&jira_headers(""), &body, NOW);
    assert!(matches!(r, Err(TicketError::TooLarge { .. })), "{r:?}");
    assert_eq!(r.unwrap_err().status(), 413);
}

// --- hostile fields in authentic bodies -----------------------------------

#[test]
fn state_overrides_win_over_the_default_mapping() {
    let s = source(
        "[[ticket-sources]]\nname='jira'\nkind='jira'\nsecret-env='J'\n\
         states = { 'In Progress' = 'on-hold', 'Closed' = 'closed' }\n",
    );
    let e = s
        .verify_and_parse(&jira_headers(JIRA), JIRA.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::OnHold);
    // "Closed" sits in Jira's done category (resolved by default).
    let body = JIRA
        .replace(
            "\"name\": \"In Progress\",\n        \"id\": \"3\"",
            "\"name\": \"Closed\",\n        \"id\": \"6\"",
        )
        .replace("\"key\": \"indeterminate\"", "\"key\": \"done\"");
    let e = s
        .verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::Closed);

    let s = source(
        "[[ticket-sources]]\nname='snow'\nkind='servicenow'\nsecret-env='S'\n\
         states = { '6' = 'closed', '-40' = 'on-hold' }\n",
    );
    let body = SNOW.replace("\"state\": \"2\"", "\"state\": \"6\"");
    let e = s
        .verify_and_parse(&snow_headers(), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::Closed);
    let body = SNOW.replace("\"state\": \"2\"", "\"state\": -40");
    let e = s
        .verify_and_parse(&snow_headers(), body.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::OnHold);

    let s = source(
        "[[ticket-sources]]\nname='zd'\nkind='zendesk'\nsecret-env='Z'\nstates = { pending = 'open' }\n",
    );
    let ts = "2026-11-25T10:22:05Z";
    let e = s
        .verify_and_parse(&zendesk_headers(ts, ZENDESK), ZENDESK.as_bytes(), NOW)
        .unwrap();
    assert_eq!(e.state, TicketState::Open);
}

#[test]
fn unknown_status_is_refused_naming_the_field() {
    let body = JIRA.replace("\"key\": \"indeterminate\"", "\"key\": \"undefined\"");
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "issue.fields.status.statusCategory.key");
    assert!(e.message.contains("In Progress"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(JIRA).unwrap();
    v["issue"]["fields"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let body = v.to_string();
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "issue.fields.status");

    let body = SNOW.replace("\"state\": \"2\"", "\"state\": \"42\"");
    let e = event_err(snow().verify_and_parse(&snow_headers(), body.as_bytes(), NOW));
    assert_eq!(e.field, "state");

    let ts = "2026-11-25T10:22:05Z";
    let body = ZENDESK.replace("\"status\": \"PENDING\"", "\"status\": \"escalated\"");
    let e =
        event_err(zendesk().verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "detail.status");

    let body = GENERIC.replace("in-progress", "done");
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "state");
}

#[test]
fn unrecognised_shapes_are_refused_naming_the_field() {
    let cases: Vec<(TicketSource, String, &str)> = vec![
        (
            jira(),
            JIRA.replace("jira:issue_updated", "comment_created"),
            "webhookEvent",
        ),
        (
            jira(),
            JIRA.replace("\"key\": \"OPS-142\"", "\"key\": 142"),
            "issue.key",
        ),
        (
            jira(),
            JIRA.replace("\"name\": \"High\"", "\"name\": \"Whenever\""),
            "issue.fields.priority.name",
        ),
        (
            jira(),
            JIRA.replace(
                "\"timestamp\": 1795602123612",
                "\"timestamp\": \"yesterday\"",
            ),
            "timestamp",
        ),
        (
            snow(),
            SNOW.replace("\"priority\": \"2\"", "\"priority\": \"9\""),
            "priority",
        ),
        (
            snow(),
            SNOW.replace(
                "\"sys_updated_on\": \"2026-11-25 10:22:03\"",
                "\"sys_updated_on\": \"25/11/2026 10:22\"",
            ),
            "sys_updated_on",
        ),
        (
            snow(),
            SNOW.replace("\"number\": \"INC0010023\",", ""),
            "number",
        ),
        (
            generic(),
            GENERIC.replace("\"ticket\"", "\"ticket-id\""),
            "ticket-id",
        ),
        (
            generic(),
            GENERIC.replace("\"priority\": 2", "\"priority\": 0"),
            "priority",
        ),
        (generic(), "[1, 2]".to_string(), "body"),
    ];
    for (s, body, field) in cases {
        let h = match s.kind {
            TicketSourceKind::Jira => jira_headers(&body),
            TicketSourceKind::Servicenow => snow_headers(),
            _ => generic_headers(NOW, &body),
        };
        let e = event_err(s.verify_and_parse(&h, body.as_bytes(), NOW));
        assert_eq!(e.field, field, "{e}");
    }
    let ts = "2026-11-25T10:22:05Z";
    for (body, field) in [
        (
            ZENDESK.replace(
                "zen:event-type:ticket.status_changed",
                "zen:event-type:user.active_changed",
            ),
            "type",
        ),
        (
            ZENDESK.replace("\"id\": \"5158\"", "\"id\": [5158]"),
            "detail.id",
        ),
        (
            ZENDESK.replace("\"priority\": \"HIGH\"", "\"priority\": \"meh\""),
            "detail.priority",
        ),
    ] {
        let e = event_err(zendesk().verify_and_parse(
            &zendesk_headers(ts, &body),
            body.as_bytes(),
            NOW,
        ));
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn ansi_escape_in_assignee_is_refused() {
    let body = JIRA.replace(
        "alice@example.com",
        "mallory\\u001b[2J\\u001b]0;pwned\\u0007",
    );
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "issue.fields.assignee.emailAddress");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");

    let body = SNOW.replace("alice@example.com", "bob\\nalice");
    let e = event_err(snow().verify_and_parse(&snow_headers(), body.as_bytes(), NOW));
    assert_eq!(e.field, "assigned_to");

    let ts = "2026-11-25T10:22:05Z";
    let body = ZENDESK.replace("alice@example.com", "alice\\u0000@example.com");
    let e =
        event_err(zendesk().verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "detail.assignee_email");

    // A bidi override makes "moc.elpmaxe@ecila" read as alice@example.com.
    let body = GENERIC.replace("alice@example.com", "\\u202emoc.elpmaxe@ecila");
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "assignee");
}

#[test]
fn oversized_strings_in_fields_are_refused_naming_the_field() {
    // 10 MB does not get past the body cap; just over the field bound does
    // not get past the field check.
    let huge = "a".repeat(10 << 20);
    let body = GENERIC.replace("alice@example.com", &huge);
    let r = generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW);
    assert!(matches!(r, Err(TicketError::TooLarge { .. })), "{r:?}");

    let long = "a".repeat(MAX_FIELD_BYTES + 1);
    let body = GENERIC.replace("alice@example.com", &long);
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "assignee");
    assert!(
        e.to_string().len() < 300,
        "the error must not echo the value"
    );

    let body = JIRA.replace("OPS-142", &long);
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "issue.key");

    let ts = "2026-11-25T10:22:05Z";
    let body = ZENDESK.replace("PENDING", &long);
    let e =
        event_err(zendesk().verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "detail.status");
    assert!(e.to_string().len() < 400, "{}", e.to_string().len());

    let body = SNOW.replace("\"state\": \"2\"", &format!("\"state\": \"{long}\""));
    let e = event_err(snow().verify_and_parse(&snow_headers(), body.as_bytes(), NOW));
    assert_eq!(e.field, "state");
}

#[test]
fn timestamp_of_u64_max_is_refused_naming_the_field() {
    let body = JIRA.replace("1795602123612", "18446744073709551615");
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "timestamp");
    assert!(e.message.contains("9999"), "{e}");
    // Just past year 9999 in ms.
    let body = JIRA.replace("1795602123612", &(MAX_TIMESTAMP_MS + 1).to_string());
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert_eq!(e.field, "timestamp");
    let body = JIRA.replace("1795602123612", &MAX_TIMESTAMP_MS.to_string());
    jira()
        .verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW)
        .unwrap();

    let body = GENERIC.replace("2026-11-25T10:22:03Z", "10000-01-01T00:00:00Z");
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "updated-at");
    let body = GENERIC.replace("2026-11-25T09:12:03Z", "1969-12-31T23:59:59Z");
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "opened-at");

    let body = SNOW.replace("2026-11-25 09:12:03", "1969-12-31 23:59:59");
    let e = event_err(snow().verify_and_parse(&snow_headers(), body.as_bytes(), NOW));
    assert_eq!(e.field, "opened_at");

    let ts = "2026-11-25T10:22:05Z";
    let body = ZENDESK.replace(
        "\"created_at\": \"2026-11-25T09:12:03Z\"",
        "\"created_at\": \"+999999-01-01T00:00:00Z\"",
    );
    let e =
        event_err(zendesk().verify_and_parse(&zendesk_headers(ts, &body), body.as_bytes(), NOW));
    assert_eq!(e.field, "detail.created_at");
}

#[test]
fn duplicate_json_keys_are_refused() {
    // Last-one-wins would let a reader of the raw body (an auditor, the
    // ticket system's own log) see `in-progress` where jitgate saw `closed`.
    let body = GENERIC.replace(
        "\"state\": \"in-progress\"",
        "\"state\": \"in-progress\", \"state\": \"closed\"",
    );
    let e =
        event_err(generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW));
    assert!(e.message.contains("duplicate key `state`"), "{e}");

    let body = JIRA.replace(
        "\"key\": \"OPS-142\"",
        "\"key\": \"OPS-142\", \"key\": \"OPS-1\"",
    );
    let e = event_err(jira().verify_and_parse(&jira_headers(&body), body.as_bytes(), NOW));
    assert!(e.field.starts_with("issue"), "{e:?}");
    assert!(e.message.contains("duplicate key `key`"), "{e}");
}

#[test]
fn hostile_jira_delivery_id_is_refused() {
    let mut h = jira_headers(JIRA);
    h.insert(
        "x-atlassian-webhook-identifier",
        HeaderValue::from_str(&"x".repeat(MAX_FIELD_BYTES + 1)).unwrap(),
    );
    let e = event_err(jira().verify_and_parse(&h, JIRA.as_bytes(), NOW));
    assert_eq!(e.field, JIRA_WEBHOOK_ID);
}

#[test]
fn errors_map_to_statuses() {
    let r = jira().verify_and_parse(&HeaderMap::new(), JIRA.as_bytes(), NOW);
    assert_eq!(r.unwrap_err().status(), 401);
    let body = GENERIC.replace("in-progress", "done");
    let r = generic().verify_and_parse(&generic_headers(NOW, &body), body.as_bytes(), NOW);
    assert_eq!(r.unwrap_err().status(), 400);
}
