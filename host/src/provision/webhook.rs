//! [`WebhookProvisioner`]: each event POSTed as signed JSON over HTTP.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::time::Duration;

use super::{Delivery, MAX_TIMEOUT, Provisioner, signature};
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
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    timeout: Duration,
    max_response_bytes: usize,
}

/// Default deadline for one webhook delivery (connect, send, response head
/// and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on the webhook response body read.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

impl WebhookProvisioner {
    /// A webhook to `url` (http://) signed with `secret`.
    pub fn new(url: &str, secret: &[u8]) -> Result<Self, String> {
        let url: hyper::Uri = url
            .parse()
            .map_err(|e| format!("webhook url `{url}`: {e}"))?;
        if url.scheme_str() != Some("http") {
            return Err(format!(
                "webhook url `{url}`: only http:// is supported (terminate TLS in a local proxy)"
            ));
        }
        if secret.len() < 16 {
            return Err("webhook secret must be at least 16 bytes".into());
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
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
            let deadline = tokio::time::Instant::now() + self.timeout;
            let resp = tokio::time::timeout_at(deadline, self.client.request(req))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            // Read (and so free the connection for reuse) within what is left
            // of the deadline and the cap; past either, drop the connection.
            let limited = http_body_util::Limited::new(resp.into_body(), self.max_response_bytes);
            let drained = tokio::time::timeout_at(deadline, limited.collect()).await;
            let body_problem = match drained {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("response body not read before the deadline".to_string()),
            };
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
