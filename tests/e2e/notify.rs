//! Notifications end to end: a fake Slack incoming webhook and an SMTP sink
//! on loopback receive every notice of an approve → activate → expire
//! cycle; a channel that is down gets its notices after it comes back and
//! never holds up a decision; a hostile justification reaches neither
//! channel as markup, mentions, links or extra header lines.

use jitgate_tests::http::post;
use jitgate_tests::receiver::{Answer, ScriptedReceiver};
use jitgate_tests::server::{Backend, body, start, wait_for};
use jitgate_tests::smtp::SmtpSink;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const HOSTILE: &str = "restore share <!channel> @here <https://evil.example/login|Open in jitgate> *bold* `tick` \u{202E}txt.exe\r\nBcc: victim@evil.example\r\nX-Injected: 1\r\n\r\nSubject: forged";

fn config(slack: &ScriptedReceiver, smtp: &SmtpSink) -> String {
    format!(
        r#"
[notify]
console-url = "https://jitgate.example.com/console"
expiring-lead-seconds = 2

[[notifications]]
name = "team-slack"
kind = "slack"
url = "http://{}/services/T000/B000/XXXX"

[[notifications]]
name = "mail"
kind = "email"
smtp-host = "127.0.0.1"
smtp-port = {}
smtp-tls = "none"
from = "jitgate@example.com"
[notifications.recipients]
"group:saas-owners" = ["owners@example.com"]
alice = ["alice@example.com"]
"#,
        slack.addr,
        smtp.addr.port()
    )
}

fn slack_texts(r: &ScriptedReceiver) -> Vec<String> {
    r.accepted()
        .iter()
        .filter_map(|a| a.body["text"].as_str().map(str::to_string))
        .collect()
}

const HEADLINES: [&str; 5] = [
    "Approval requested",
    "Grant approved",
    "Grant active",
    "Grant expiring soon",
    "Grant ended",
];

#[test]
fn approve_activate_expire_cycle_reaches_slack_and_mail_with_hostile_text_neutralised() {
    full_cycle(Backend::Sqlite);
}

#[test]
fn approve_activate_expire_cycle_reaches_slack_and_mail_on_postgres() {
    full_cycle(Backend::Postgres);
}

fn full_cycle(backend: Backend) {
    let slack = ScriptedReceiver::start(|_, _| Answer::Accept);
    let smtp = SmtpSink::start();
    let (_guard, server) = start(backend, &config(&slack, &smtp));
    let mut req = body("n1", "alice", "saas-admin", 4);
    req["justification"] = json!(HOSTILE);
    let r = post(server.addr, "/v1/requests", Some("t-pipe"), &req);
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "pending", "{g}");
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let r = post(
        server.addr,
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Slack: one message per notice, in the grant's order.
    let texts = wait_for(Duration::from_secs(60), || {
        let t = slack_texts(&slack);
        (t.len() >= 5).then_some(t)
    })
    .unwrap_or_else(|| panic!("slack got {:?}", slack_texts(&slack)));
    let order: Vec<&str> = texts
        .iter()
        .filter_map(|t| {
            HEADLINES
                .iter()
                .copied()
                .find(|h| t.starts_with(&format!("*{h}*")))
        })
        .collect();
    for h in HEADLINES {
        assert!(order.contains(&h), "no `{h}` message in {texts:#?}");
    }
    assert_eq!(order.last(), Some(&"Grant ended"), "{texts:#?}");
    let link = format!("<https://jitgate.example.com/console/grants/{id}|Open in jitgate>");
    for t in &texts {
        assert!(t.contains(&link), "no deep link in {t}");
        // No mention, link or formatting smuggled in by the requester.
        for bad in [
            "<!channel>",
            "@here",
            "<https://evil",
            "\u{202E}",
            "\r",
            "Bcc:\n",
        ] {
            assert!(!t.contains(bad), "`{bad}` got through into {t}");
        }
        assert_eq!(t.matches("|Open in jitgate>").count(), 1, "{t}");
    }
    for a in slack.accepted() {
        assert!(
            a.body.get("blocks").is_none() && a.body.get("attachments").is_none(),
            "no interactive parts (approve buttons) in Slack: {}",
            a.body
        );
    }
    let requested = &texts[0];
    assert!(
        requested.contains("Justification: `restore share &lt;!channel&gt;"),
        "{requested}"
    );
    assert!(
        requested.contains("txt.exe Bcc: victim"),
        "line breaks flattened: {requested}"
    );
    assert!(requested.contains("saas-owners"), "{requested}");

    // Mail: approvers for the request, the requester for the rest.
    let mails = wait_for(Duration::from_secs(60), || {
        let m = smtp.mails();
        (m.len() >= 5).then_some(m)
    })
    .unwrap_or_else(|| panic!("smtp got {:?}", smtp.mails()));
    let subject = |m: &jitgate_tests::smtp::Mail| {
        m.header_lines()
            .iter()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .unwrap_or_default()
    };
    let first = mails
        .iter()
        .find(|m| subject(m).contains("Approval requested"))
        .expect("approval-requested mail");
    assert_eq!(first.to, vec!["owners@example.com"]);
    for h in &HEADLINES[1..] {
        let m = mails
            .iter()
            .find(|m| subject(m).contains(h))
            .unwrap_or_else(|| panic!("no `{h}` mail in {mails:#?}"));
        assert_eq!(m.to, vec!["alice@example.com"], "{h}");
        assert_eq!(m.from, "jitgate@example.com");
    }
    for m in &mails {
        assert!(
            m.header_lines()
                .contains(&"Content-Transfer-Encoding: quoted-printable"),
            "{}",
            m.data
        );
        for l in m.header_lines() {
            let lower = l.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc") && !lower.starts_with("x-injected"),
                "header injected: {l}"
            );
        }
        assert!(
            !m.body()
                .lines()
                .any(|l| l.starts_with("Subject: forged") || l.starts_with("Bcc:")),
            "body line forged: {}",
            m.body()
        );
        assert!(!m.data.contains('\u{202E}'), "bidi override in mail");
    }
    assert!(
        first
            .body()
            .contains(&format!("https://jitgate.example.com/console/grants/{id}"))
    );
}

#[test]
fn channel_down_then_up_gets_notices_later_and_never_blocks_the_decision() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let slack = ScriptedReceiver::start(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Answer::Accept
        } else {
            Answer::Refuse
        }
    });
    let smtp = SmtpSink::start();
    smtp.set_down(true);
    let (_guard, server) = start(Backend::Sqlite, &config(&slack, &smtp));

    // Both channels refuse: the request and the approval are still answered.
    let r = post(
        server.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("n2", "alice", "saas-admin", 600),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap_or_default().to_string();
    let refused = wait_for(Duration::from_secs(30), || {
        (!slack.arrivals().is_empty()).then_some(())
    });
    assert!(refused.is_some(), "slack was never tried");
    let r = post(
        server.addr,
        &format!("/v1/grants/{id}/approve"),
        Some("t-bob"),
        &json!({}),
    );
    assert_eq!(
        r.status, 200,
        "a channel that is down held up the approval: {}",
        r.body
    );
    assert_eq!(r.json()["state"], "active");
    assert!(slack.accepted().is_empty() && smtp.mails().is_empty());

    up.store(true, Ordering::SeqCst);
    smtp.set_down(false);
    let texts = wait_for(Duration::from_secs(90), || {
        let t = slack_texts(&slack);
        (t.iter().any(|t| t.starts_with("*Grant active*"))).then_some(t)
    })
    .unwrap_or_else(|| {
        panic!(
            "slack never got the notices after coming back: {:?}",
            slack.arrivals().len()
        )
    });
    assert!(texts[0].starts_with("*Approval requested*"), "{texts:#?}");
    assert!(
        slack.arrivals().iter().any(|a| a.answer == Answer::Refuse),
        "the first attempts were refused"
    );
    let mails = wait_for(Duration::from_secs(90), || {
        let m = smtp.mails();
        (m.len() >= 3).then_some(m)
    })
    .unwrap_or_else(|| panic!("mail never arrived after the relay came back"));
    assert!(mails.iter().any(|m| m.to == vec!["owners@example.com"]));
}
