//! Pulls against a fake ticket server on loopback that speaks each
//! system's REST shape.

use super::*;
use crate::request::TicketState;
use crate::ticket::{TicketEventKind, TicketSourceConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &[u8] = b"0123456789abcdef0123";

fn source(kind: &str) -> TicketSource {
    let cfg: TicketSourceConfig = toml::from_str(&format!(
        "name = 'src'\nkind = '{kind}'\nsecret-env = 'X'\n"
    ))
    .expect("config");
    TicketSource::new(0, &cfg, SECRET.to_vec()).expect("source")
}

/// Answers `GET path` from `routes` (exact path and query), else 404; keeps
/// every request line and its Authorization header.
async fn fake(routes: BTreeMap<String, (u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (routes, log) = (routes.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let auth = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .unwrap_or("")
                    .to_string();
                if let Ok(mut l) = log.lock() {
                    l.push(format!("{target} {auth}"));
                }
                let (status, body) = routes.get(&target).cloned().unwrap_or((404, "{}".into()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

const NOW: Millis = 1_800_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_pull_reads_the_issue_through_the_webhook_mapping() {
    let issue = r#"{"id":"10001","key":"INC-7","fields":{
        "status":{"name":"Done","statusCategory":{"key":"done"}},
        "priority":{"name":"High"},
        "assignee":{"emailAddress":"alice@example.com","accountId":"5b10"},
        "created":"2026-11-25T09:30:00.000+0000",
        "updated":"2026-11-25T10:00:00.000+0000"}}"#;
    let (base, seen) = fake(BTreeMap::from([(
        "/rest/api/3/issue/INC%2D7?fields=status,priority,assignee,created,updated".to_string(),
        (200, issue.to_string()),
    )]))
    .await;
    let client = Outbound::new(None).expect("client");
    let got = source("jira")
        .pull(&client, &base, "bot@example.com:token", "INC-7", NOW)
        .await
        .expect("pulled");
    let Pulled::Found(ev) = got else {
        panic!("{got:?}")
    };
    assert_eq!(ev.ticket_id, "INC-7");
    assert_eq!(ev.state, TicketState::Resolved);
    assert_eq!(ev.priority, Some(2));
    assert_eq!(ev.assignee.as_deref(), Some("alice@example.com"));
    assert_eq!(ev.kind, TicketEventKind::Upsert);
    assert_eq!(ev.event_id, None, "a pull is not a replayable delivery");
    assert!(ev.updated_at < NOW, "the system's own update time");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen[0].ends_with("Basic Ym90QGV4YW1wbGUuY29tOnRva2Vu"),
        "basic auth from credentials-env: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servicenow_and_zendesk_pulls_and_gone_tickets() {
    let incident = r#"{"result":[{"number":"INC0010042","state":"7","priority":"2",
        "assigned_to":"alice@example.com","opened_at":"2026-11-25 09:30:00",
        "sys_updated_on":"2026-11-25 10:05:00"}]}"#;
    let ticket = r#"{"ticket":{"id":5158,"status":"solved","priority":"urgent",
        "assignee_id":8447388090494,"created_at":"2026-11-25T09:12:03Z",
        "updated_at":"2026-11-25T10:22:03Z"}}"#;
    let (base, _) = fake(BTreeMap::from([
        (
            "/api/now/table/incident?sysparm_query=number%3DINC0010042&sysparm_limit=1".into(),
            (200, incident.into()),
        ),
        (
            "/api/now/table/incident?sysparm_query=number%3DINC0000404&sysparm_limit=1".into(),
            (200, r#"{"result":[]}"#.into()),
        ),
        ("/api/v2/tickets/5158".into(), (200, ticket.into())),
    ]))
    .await;
    let client = Outbound::new(None).expect("client");
    let snow = source("servicenow");
    match snow.pull(&client, &base, "u:p", "INC0010042", NOW).await {
        Ok(Pulled::Found(ev)) => {
            assert_eq!(ev.state, TicketState::Closed);
            assert_eq!(ev.priority, Some(2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        snow.pull(&client, &base, "u:p", "INC0000404", NOW)
            .await
            .expect("answer"),
        Pulled::Gone,
        "an empty result is a ticket the system does not have"
    );
    match source("zendesk")
        .pull(&client, &base, "u/token:p", "5158", NOW)
        .await
    {
        Ok(Pulled::Found(ev)) => {
            assert_eq!(ev.state, TicketState::Resolved);
            assert_eq!(ev.priority, Some(1));
            assert_eq!(ev.ticket_id, "5158");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        source("zendesk")
            .pull(&client, &base, "u:p", "9999", NOW)
            .await
            .expect("answer"),
        Pulled::Gone,
        "404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_system_that_is_down_or_erring_is_unavailable_never_an_answer() {
    let (base, _) = fake(BTreeMap::from([(
        "/api/v2/tickets/1".into(),
        (503, "{}".to_string()),
    )]))
    .await;
    let client = Outbound::new(None).expect("client");
    let zd = source("zendesk");
    assert!(matches!(
        zd.pull(&client, &base, "u:p", "1", NOW).await,
        Err(PullError::Unavailable { .. })
    ));
    // Nothing listens on port 9 of loopback (discard is not served).
    assert!(matches!(
        zd.pull(&client, "http://127.0.0.1:9", "u:p", "1", NOW)
            .await,
        Err(PullError::Unavailable { .. })
    ));
    assert!(matches!(
        source("generic")
            .pull(&client, &base, "u:p", "1", NOW)
            .await,
        Err(PullError::NotPullable(_))
    ));
}

#[test]
fn hostile_ids_cannot_add_a_path_or_a_query() {
    let url = source("jira")
        .pull_url("https://x.atlassian.net/", "../../admin?x=1#")
        .expect("url");
    assert!(
        url.starts_with(
            "https://x.atlassian.net/rest/api/3/issue/%2E%2E%2F%2E%2E%2Fadmin%3Fx%3D1%23?"
        ),
        "{url}"
    );
}

#[test]
fn an_answer_about_another_ticket_is_refused() {
    let body = br#"{"ticket":{"id":7,"status":"open","updated_at":"2026-11-25T10:22:03Z"}}"#;
    assert!(matches!(
        source("zendesk").read_pulled("5158", 200, body, NOW),
        Err(PullError::Unavailable { .. })
    ));
}
