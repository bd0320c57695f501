//! [`WebhookProvisioner`]: each event POSTed as signed JSON over HTTPS (or
//! HTTP to a loopback receiver).

use http_body_util::Full;
use hyper::body::Bytes;
use std::time::Duration;

use super::{Delivery, MAX_TIMEOUT, Provisioner, signature};
use crate::outbound::Outbound;
use crate::service::now_millis;
use crate::store::OutboxEvent;

/// POSTs each event as JSON, signed: header `X-Jitgate-Signature:
/// sha256=<hex HMAC-SHA256(secret, timestamp "." body)>`, plus
/// `X-Jitgate-Timestamp` (Unix ms), `X-Jitgate-Event-Id` and
/// `X-Jitgate-Sequence` (the event's position among its grant's events).
///
/// One deadline covers the whole exchange, the response body included, and
/// at most `max_response_bytes` of the body are read: a receiver that
/// answers and then stalls or streams forever costs one deadline, not the
/// dispatcher. A 2xx status is the receiver's acceptance; a body cut short
/// after it does not turn the delivery into a failure (it would be sent
/// again), it only closes the connection.
pub struct WebhookProvisioner {
    url: hyper::Uri,
    secret: Vec<u8>,
    client: Outbound,
    timeout: Duration,
    max_response_bytes: usize,
}

/// Default deadline for one webhook delivery (connect, send, response head
/// and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on the webhook response body read.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

impl WebhookProvisioner {
    /// A webhook to `url` (`https://`, or `http://` for a loopback
    /// receiver or a local TLS proxy) signed with `secret`, trusting the
    /// system's CA roots.
    pub fn new(url: &str, secret: &[u8]) -> Result<Self, String> {
        let client = Outbound::new(None).map_err(|e| e.to_string())?;
        Self::with_client(url, secret, client)
    }

    /// Like [`WebhookProvisioner::new`], over `client` (e.g. one that also
    /// trusts a private CA: `[provisioner] ca-file`).
    pub fn with_client(url: &str, secret: &[u8], client: Outbound) -> Result<Self, String> {
        let url: hyper::Uri = url
            .parse()
            .map_err(|e| format!("webhook url `{url}`: {e}"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(format!(
                "webhook url `{url}`: must be an http:// or https:// URL with a host"
            ));
        }
        if secret.len() < 16 {
            return Err("webhook secret must be at least 16 bytes".into());
        }
        Ok(WebhookProvisioner {
            url,
            secret: secret.to_vec(),
            client,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Set the per-delivery deadline and the response body cap. The deadline
    /// is clamped to [`MAX_TIMEOUT`], so a delivery always ends before
    /// another replica could claim the same event.
    pub fn with_limits(mut self, timeout: Duration, max_response_bytes: usize) -> Self {
        self.timeout = timeout.min(MAX_TIMEOUT).max(Duration::from_millis(1));
        self.max_response_bytes = max_response_bytes;
        self
    }
}

impl Provisioner for WebhookProvisioner {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> Delivery<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&event.payload).map_err(|e| e.to_string())?;
            let ts = now_millis().to_string();
            let sig = signature(&self.secret, &ts, &body);
            let req = hyper::Request::post(self.url.clone())
                .header("content-type", "application/json")
                .header("x-jitgate-event-id", &event.id)
                .header("x-jitgate-sequence", event.sequence.to_string())
                .header("x-jitgate-timestamp", &ts)
                .header("x-jitgate-signature", sig)
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let answer = self
                .client
                .send(req, self.timeout, self.max_response_bytes)
                .await
                .map_err(|e| e.to_string())?;
            let status = answer.status;
            let body_problem = answer.body.err();
            match (status.is_success(), body_problem) {
                (true, None) => Ok(()),
                (true, Some(problem)) => {
                    tracing::warn!(event = %event.id, %problem, "webhook accepted the event; its response body was cut off");
                    Ok(())
                }
                (false, _) => Err(format!("receiver answered {status}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::tests::TlsServer;

    fn event() -> OutboxEvent {
        OutboxEvent {
            id: "g-1:grant-activated".into(),
            grant_id: "g-1".into(),
            kind: "grant-activated".into(),
            payload: serde_json::json!({"grant": "g-1"}),
            created_at: 0,
            attempts: 0,
            sequence: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_over_https_to_a_private_ca_is_delivered_signed() {
        let server = TlsServer::start(200).await;
        let client = Outbound::new(Some(server.ca_file.path())).expect("client");
        let secret = b"0123456789abcdef-secret";
        let hook =
            WebhookProvisioner::with_client(&server.url("/hook"), secret, client).expect("webhook");
        hook.deliver(&event()).await.expect("delivered");
        let seen = server.received.lock().expect("lock").clone();
        let (head, body) = seen[0].split_once("\r\n\r\n").expect("request");
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let ts = header("x-jitgate-timestamp");
        assert_eq!(
            header("x-jitgate-signature"),
            signature(secret, &ts, body.as_bytes()),
            "signed over timestamp.body"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_to_an_untrusted_https_receiver_is_a_retried_failure() {
        let server = TlsServer::start(200).await;
        let hook =
            WebhookProvisioner::new(&server.url("/hook"), b"0123456789abcdef").expect("webhook");
        assert!(hook.deliver(&event()).await.is_err());
        assert!(server.received.lock().expect("lock").is_empty());
    }

    #[test]
    fn webhook_urls_must_be_http_or_https_with_a_host() {
        for bad in ["ftp://x/y", "file:///etc/passwd", "/relative", "https://"] {
            assert!(
                WebhookProvisioner::new(bad, b"0123456789abcdef").is_err(),
                "{bad}"
            );
        }
    }
}
