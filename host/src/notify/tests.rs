//! Sanitising and configuration checks; the transports are exercised end
//! to end in tests/e2e/notify.rs.

use super::*;
use crate::store::sqlite::SqliteStore;

fn build(toml_text: &str) -> Result<Option<Arc<Notifier>>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        notify: NotifySettings,
        notifications: Vec<ChannelConfig>,
    }
    let doc: Doc = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().map_err(|e| e.to_string())?);
    let env = |k: &str| (k == "SET").then(|| "0123456789abcdef-secret".to_string());
    Notifier::from_config(&doc.notify, &doc.notifications, &env, store)
}

fn err(toml_text: &str) -> String {
    match build(toml_text) {
        Err(e) => e,
        Ok(_) => panic!("accepted: {toml_text}"),
    }
}

#[test]
fn clean_strips_line_breaks_bidi_and_zero_width_and_bounds_length() {
    assert_eq!(clean("a\r\nBcc: x\u{202E}y\u{200B}z\tq"), "a Bcc: xyz q");
    let long = "é".repeat(MAX_FIELD + 50);
    let c = clean(&long);
    assert_eq!(c.chars().count(), MAX_FIELD + 1);
    assert!(c.ends_with('…'));
}

#[test]
fn slack_literal_cannot_mention_link_or_close_the_code_span() {
    let s = slack_literal("<!channel> <@U123> <https://evil|ok> `x` @here & *b*");
    assert!(!s.contains('<') && !s.contains('>'), "{s}");
    assert!(!s.contains("@here"), "{s}");
    assert_eq!(s.matches('`').count(), 2, "{s}");
    assert!(s.contains("&amp;") && s.contains("&lt;!channel&gt;"), "{s}");
}

#[test]
fn mail_subject_holds_no_line_break_from_client_fields() {
    let p = json!({"kind": "grant-approved", "task": "t\r\nBcc: a@b", "resource": "r", "subject": "s",
                   "justification": "x\r\n.\r\nMAIL FROM:<a@b>"});
    let (subject, body) = channels::mail_text(&p);
    assert!(
        !subject.contains('\n') && !subject.contains('\r'),
        "{subject}"
    );
    assert!(
        !body.lines().any(|l| l == "." || l.starts_with("MAIL FROM")),
        "{body}"
    );
}

#[test]
fn bad_channel_config_names_the_field() {
    assert!(build("notifications = []").is_ok_and(|n| n.is_none()));
    assert!(err("[[notifications]]\nkind = \"slack\"\n").starts_with("notifications[0].url:"));
    assert!(
        err("[[notifications]]\nkind = \"slack\"\nurl-env = \"UNSET\"\n")
            .starts_with("notifications[0].url-env:")
    );
    assert!(
        err("[[notifications]]\nkind = \"slack\"\nurl = \"ftp://x\"\n")
            .starts_with("notifications[0].url:")
    );
    assert!(
        err("[[notifications]]\nkind = \"slack\"\nurl = \"https://h/x\"\nevents = [\"grant-exploded\"]\n")
            .starts_with("notifications[0].events:")
    );
    assert!(
        err("[[notifications]]\nkind = \"webhook\"\nurl = \"https://h/x\"\n")
            .starts_with("notifications[0].secret-env:")
    );
    let mail = "[[notifications]]\nkind = \"email\"\nfrom = \"j@example.com\"\n";
    assert!(err(mail).starts_with("notifications[0].smtp-host:"));
    assert!(
        err(&format!("{mail}smtp-host = \"smtp.example.com\"\nsmtp-tls = \"none\"\n[notifications.recipients]\na = [\"a@example.com\"]\n"))
            .starts_with("notifications[0].smtp-tls:"),
        "plaintext SMTP off loopback is refused"
    );
    assert!(
        err(&format!("{mail}smtp-host = \"smtp.example.com\"\n[notifications.recipients]\na = [\"not an address\"]\n"))
            .starts_with("notifications[0].recipients:")
    );
    assert!(
        err("[notify]\nconsole-url = \"javascript:alert(1)\"\n[[notifications]]\nkind = \"slack\"\nurl = \"https://h/x\"\n")
            .starts_with("notify.console-url:")
    );
    assert!(
        err("[[notifications]]\nkind = \"slack\"\nurl = \"https://h/x\"\n[[notifications]]\nkind = \"slack\"\nurl = \"https://h/y\"\n")
            .starts_with("notifications[1].name:")
    );
    assert!(
        build(
            "[[notifications]]\nkind = \"webhook\"\nurl = \"https://h/x\"\nsecret-env = \"SET\"\n"
        )
        .is_ok_and(|n| n.is_some())
    );
}
