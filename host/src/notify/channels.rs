//! The three transports: Slack incoming webhook, SMTP, signed webhook.

use std::collections::BTreeSet;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};

use super::config::{ChannelConfig, ChannelKind, NotifySettings, SmtpTls};
use super::{KINDS, clean, slack_literal};
use crate::outbound::Outbound;
use crate::provision::{MAX_TIMEOUT, Provisioner, WebhookProvisioner};
use crate::store::OutboxEvent;

/// Deadline of one delivery (below the dispatcher's lease bound).
const TIMEOUT: Duration = MAX_TIMEOUT;

/// A configured channel.
pub struct Channel {
    name: String,
    events: BTreeSet<String>,
    transport: Transport,
}

enum Transport {
    Slack { url: hyper::Uri, client: Outbound },
    Email(Box<Email>),
    Webhook(WebhookProvisioner),
}

struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    recipients: std::collections::BTreeMap<String, Vec<Mailbox>>,
}

type KeyError = (&'static str, String);

fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    key: &'static str,
    var: &str,
) -> Result<String, KeyError> {
    env(var)
        .filter(|v| !v.is_empty())
        .ok_or((key, format!("${var} is not set")))
}

impl Channel {
    /// Build one channel; errors name the key at fault.
    pub(crate) fn build(
        c: &ChannelConfig,
        _settings: &NotifySettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Channel, KeyError> {
        let kind_name = match c.kind {
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
        };
        let name = c.name.clone().unwrap_or_else(|| kind_name.to_string());
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(("name", "letters, digits, `-` and `_` only".into()));
        }
        let events: BTreeSet<String> = match &c.events {
            None => KINDS.iter().map(|k| k.to_string()).collect(),
            Some(list) => {
                for e in list {
                    if !KINDS.contains(&e.as_str()) {
                        return Err((
                            "events",
                            format!(
                                "unknown notice `{}` (one of {})",
                                clean(e),
                                KINDS.join(", ")
                            ),
                        ));
                    }
                }
                list.iter().cloned().collect()
            }
        };
        let url = || -> Result<String, KeyError> {
            match (&c.url, &c.url_env) {
                (Some(u), None) => Ok(u.clone()),
                (None, Some(var)) => secret(env, "url-env", var),
                _ => Err(("url", "set exactly one of `url` and `url-env`".into())),
            }
        };
        let client = || Outbound::new(c.ca_file.as_deref()).map_err(|e| ("ca-file", e.to_string()));
        let unused = |present: bool, key: &'static str| -> Result<(), KeyError> {
            if present {
                Err((key, format!("not used by a `{kind_name}` channel")))
            } else {
                Ok(())
            }
        };
        let transport = match c.kind {
            ChannelKind::Slack => {
                unused(c.secret_env.is_some(), "secret-env")?;
                unused(c.smtp_host.is_some(), "smtp-host")?;
                unused(!c.recipients.is_empty(), "recipients")?;
                let raw = url()?;
                let url: hyper::Uri = raw.parse().map_err(|_| ("url", "not a URL".to_string()))?;
                if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
                    return Err(("url", "must be an http:// or https:// URL".into()));
                }
                Transport::Slack {
                    url,
                    client: client()?,
                }
            }
            ChannelKind::Webhook => {
                unused(c.smtp_host.is_some(), "smtp-host")?;
                unused(!c.recipients.is_empty(), "recipients")?;
                let var = c
                    .secret_env
                    .as_deref()
                    .ok_or(("secret-env", "required for a webhook".to_string()))?;
                let key = secret(env, "secret-env", var)?;
                let hook = WebhookProvisioner::with_client(&url()?, key.as_bytes(), client()?)
                    .map_err(|e| ("url", e))?;
                Transport::Webhook(hook)
            }
            ChannelKind::Email => {
                unused(c.url.is_some() || c.url_env.is_some(), "url")?;
                unused(c.secret_env.is_some(), "secret-env")?;
                let host = c
                    .smtp_host
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .ok_or(("smtp-host", "required for an email channel".to_string()))?;
                let from: Mailbox = c
                    .from
                    .as_deref()
                    .ok_or(("from", "required for an email channel".to_string()))?
                    .parse()
                    .map_err(|e| ("from", format!("not an address: {e}")))?;
                let builder = match c.smtp_tls {
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| ("smtp-host", e.to_string()))?
                        .port(c.smtp_port.unwrap_or(587)),
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| ("smtp-host", e.to_string()))?
                        .port(c.smtp_port.unwrap_or(465)),
                    SmtpTls::None => {
                        let loopback = host == "localhost"
                            || host
                                .parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| ip.is_loopback());
                        if !loopback {
                            return Err((
                                "smtp-tls",
                                "`none` is only allowed for a relay on the loopback interface"
                                    .into(),
                            ));
                        }
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                            .port(c.smtp_port.unwrap_or(25))
                            .tls(Tls::None)
                    }
                };
                let builder = match (&c.smtp_username, &c.smtp_password_env) {
                    (Some(user), Some(var)) => builder.credentials(Credentials::new(
                        user.clone(),
                        secret(env, "smtp-password-env", var)?,
                    )),
                    (None, None) => builder,
                    _ => {
                        return Err((
                            "smtp-username",
                            "set both `smtp-username` and `smtp-password-env`, or neither".into(),
                        ));
                    }
                };
                if c.recipients.is_empty() {
                    return Err(("recipients", "an email channel needs recipients".into()));
                }
                let mut recipients = std::collections::BTreeMap::new();
                for (who, addrs) in &c.recipients {
                    let mut parsed = Vec::with_capacity(addrs.len());
                    for a in addrs {
                        parsed.push(a.parse::<Mailbox>().map_err(|e| {
                            (
                                "recipients",
                                format!("`{}` → `{}`: {e}", clean(who), clean(a)),
                            )
                        })?);
                    }
                    recipients.insert(who.clone(), parsed);
                }
                Transport::Email(Box::new(Email {
                    transport: builder.timeout(Some(TIMEOUT)).build(),
                    from,
                    recipients,
                }))
            }
        };
        Ok(Channel {
            name,
            events,
            transport,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it subscribes to `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.contains(kind)
    }

    /// Send one notice; `Err` is retried by the dispatcher with backoff.
    pub(crate) async fn send(&self, ev: &OutboxEvent) -> Result<(), String> {
        match &self.transport {
            Transport::Webhook(hook) => hook.deliver(ev).await,
            Transport::Slack { url, client } => {
                let body =
                    serde_json::to_vec(&slack_message(&ev.payload)).map_err(|e| e.to_string())?;
                let req = hyper::Request::post(url.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let answer = client
                    .send(req, TIMEOUT, 4096)
                    .await
                    .map_err(|e| e.to_string())?;
                if answer.status.is_success() {
                    Ok(())
                } else {
                    Err(format!("slack answered {}", answer.status))
                }
            }
            Transport::Email(mail) => {
                let to = mail.recipients_of(&ev.payload);
                if to.is_empty() {
                    tracing::debug!(event = %ev.id, "no e-mail recipient for this notice");
                    return Ok(());
                }
                let (subject, text) = mail_text(&ev.payload);
                let mut b = Message::builder()
                    .from(mail.from.clone())
                    .subject(subject)
                    // Delivery is at least once: a stable Message-ID lets
                    // mail systems fold a redelivered notice into one.
                    .message_id(Some(format!(
                        "<{}@jitgate>",
                        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ev.id.as_bytes()))
                    )))
                    .header(ContentType::TEXT_PLAIN);
                for m in to {
                    b = b.to(m);
                }
                // Quoted-printable always (never base64): a relay's content
                // filters can read it, and lines stay short.
                let body = lettre::message::Body::new_with_encoding(
                    text,
                    lettre::message::header::ContentTransferEncoding::QuotedPrintable,
                )
                .map_err(|_| "mail body could not be encoded".to_string())?;
                let msg = b.body(body).map_err(|e| e.to_string())?;
                tokio::time::timeout(TIMEOUT, mail.transport.send(msg))
                    .await
                    .map_err(|_| "smtp timed out".to_string())?
                    .map(|_| ())
                    .map_err(|e| format!("smtp: {e}"))
            }
        }
    }
}

impl Email {
    fn recipients_of(&self, p: &Value) -> Vec<Mailbox> {
        let mut keys: Vec<String> = Vec::new();
        if p["audience"] == "approvers" {
            if let Some(groups) = p["approver-groups"].as_array() {
                keys.extend(
                    groups
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|g| format!("group:{g}")),
                );
            }
        } else if let Some(subject) = p["subject"].as_str() {
            if self.recipients.contains_key(subject) {
                keys.push(subject.to_string());
            } else {
                keys.push("*".into());
            }
        }
        let mut seen = BTreeSet::new();
        keys.iter()
            .filter_map(|k| self.recipients.get(k))
            .flatten()
            .filter(|m| seen.insert(m.email.to_string()))
            .cloned()
            .collect()
    }
}

fn s<'a>(p: &'a Value, key: &str) -> &'a str {
    p[key].as_str().unwrap_or("")
}

fn when(p: &Value, key: &str) -> Option<String> {
    let ms = p[key].as_i64()?;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn headline(kind: &str) -> &'static str {
    match kind {
        super::APPROVAL_REQUESTED => "Approval requested",
        super::GRANT_APPROVED => "Grant approved",
        super::GRANT_REJECTED => "Grant rejected",
        super::GRANT_ACTIVATED => "Grant active",
        super::GRANT_EXPIRING => "Grant expiring soon",
        super::GRANT_ENDED => "Grant ended",
        _ => "Notice",
    }
}

/// The facts every notice shows, client-controlled ones made safe by `lit`.
fn facts(p: &Value, lit: &dyn Fn(&str) -> String) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Grant", lit(s(p, "grant-id"))),
        ("Subject", lit(s(p, "subject"))),
        ("Task", lit(s(p, "task"))),
        ("Resource", lit(s(p, "resource"))),
        ("Entitlement", lit(s(p, "entitlement"))),
    ];
    if let Some(t) = p["ticket"].as_str() {
        f.push(("Ticket", lit(t)));
    }
    f.push(("Justification", lit(s(p, "justification"))));
    if p["audience"] == "approvers" {
        let groups: Vec<&str> = p["approver-groups"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        f.push(("Approver groups", lit(&groups.join(", "))));
        f.push((
            "Duration",
            format!("{} s, counted from activation", p["ttl-seconds"]),
        ));
    }
    let approved: Vec<&str> = p["approved-by"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !approved.is_empty() {
        f.push(("Approved by", lit(&approved.join(", "))));
    }
    if let Some(t) = when(p, "expires-at") {
        f.push(("Expires", t));
    }
    if let Some(r) = p["end-reason"].as_str() {
        f.push(("Ended", lit(r)));
    }
    f
}

/// The Slack message: text only, no buttons (approving happens in the
/// console, signed in), link previews off.
pub(crate) fn slack_message(p: &Value) -> Value {
    let mut text = format!("*{}*", headline(s(p, "kind")));
    for (k, v) in facts(p, &slack_literal) {
        text.push_str(&format!("\n{k}: {v}"));
    }
    // The link is built from the checked console URL and a server-made id;
    // it is still refused if it holds anything that could end a Slack link.
    if let Some(link) = p["link"].as_str()
        && !link
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>|`&".contains(c))
    {
        text.push_str(&format!("\n<{link}|Open in jitgate>"));
    }
    json!({
        "text": text,
        "mrkdwn": true,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// Subject line and plain-text body of a mail (no HTML: nothing to inject
/// markup into). Every client field is [`clean`]ed, so no line break can
/// reach a header or forge a line of the body.
pub(crate) fn mail_text(p: &Value) -> (String, String) {
    let subject = clean(&format!(
        "[jitgate] {}: {} on {} for {}",
        headline(s(p, "kind")),
        s(p, "task"),
        s(p, "resource"),
        s(p, "subject")
    ));
    let mut body = format!("{}\n\n", headline(s(p, "kind")));
    for (k, v) in facts(p, &|t: &str| clean(t)) {
        body.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(link) = p["link"].as_str() {
        body.push_str(&format!("\nOpen in jitgate: {}\n", clean(link)));
    }
    body.push_str("\nThis message was sent by jitgate. Do not reply.\n");
    (subject, body)
}
