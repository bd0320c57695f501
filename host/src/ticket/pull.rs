//! Pulling a ticket's current facts from its system's REST API: when a
//! request names a ticket the registry does not know, and for the
//! reconciler that re-checks the tickets of active grants. Webhooks are
//! best effort; this is the safety net.
//!
//! Each system answers with the same record its webhooks carry (Jira's
//! issue, ServiceNow's incident row, Zendesk's ticket), so a pulled answer
//! is wrapped in that system's event envelope and read by the same parser
//! as a webhook: one mapping of states, priorities and assignees, one set
//! of hostile-field checks. Credentials (`credentials-env`) are
//! `user:secret` for HTTP basic auth, which all three accept (Jira:
//! `email:api-token`; Zendesk: `email/token:api-token`).

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::time::Duration;

use super::parse::rfc3339_ms;
use super::{EventError, Millis, TicketEvent, TicketSource, TicketSourceKind};
use crate::outbound::Outbound;

/// Deadline for one pull, response body included.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a pulled answer read (Jira issues with many fields are
/// large; the fields asked for are not).
pub const MAX_PULL_BYTES: usize = super::MAX_EVENT_BYTES;

/// What the ticket system says of a ticket now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulled {
    /// Its current facts, as an event of this source.
    Found(TicketEvent),
    /// The system does not know it (deleted, or never existed).
    Gone,
}

/// Why a pull gave no answer. A pull that fails changes nothing: grants
/// stay as they are (the caller counts it), and nothing is ever granted
/// because a ticket system was unreachable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The system could not be asked, or did not answer usefully.
    #[error("ticket source {source_name}: {message}")]
    Unavailable {
        /// The source.
        source_name: String,
        /// What happened (status, timeout, TLS error).
        message: String,
    },
    /// The answer had a shape this source cannot read.
    #[error("ticket source answer: {0}")]
    Event(#[from] EventError),
    /// Generic sources have no standard API to pull from.
    #[error("ticket source {0}: a generic source cannot be pulled")]
    NotPullable(String),
}

impl TicketSource {
    fn unavailable(&self, message: impl Into<String>) -> PullError {
        PullError::Unavailable {
            source_name: self.name.clone(),
            message: message.into(),
        }
    }

    /// The URL that reads `ticket_id` under `base_url` (the id is
    /// percent-encoded whole: a hostile id cannot add a path or a query).
    pub fn pull_url(&self, base_url: &str, ticket_id: &str) -> Result<String, PullError> {
        let base = base_url.trim_end_matches('/');
        let id = utf8_percent_encode(ticket_id, NON_ALPHANUMERIC);
        match self.kind {
            TicketSourceKind::Jira => Ok(format!(
                "{base}/rest/api/3/issue/{id}?fields=status,priority,assignee,created,updated"
            )),
            TicketSourceKind::Servicenow => Ok(format!(
                "{base}/api/now/table/incident?sysparm_query=number%3D{id}&sysparm_limit=1"
            )),
            TicketSourceKind::Zendesk => Ok(format!("{base}/api/v2/tickets/{id}")),
            TicketSourceKind::Generic => Err(PullError::NotPullable(self.name.clone())),
        }
    }

    /// Read a pulled answer (`status`, `body`) for `ticket_id`; `now` stands
    /// for the system's own update time when the answer has none.
    pub fn read_pulled(
        &self,
        ticket_id: &str,
        status: u16,
        body: &[u8],
        now: Millis,
    ) -> Result<Pulled, PullError> {
        if status == 404 {
            return Ok(Pulled::Gone);
        }
        if !(200..300).contains(&status) {
            return Err(self.unavailable(format!("answered {status}")));
        }
        let root = crate::request::parse_json_strict(body).map_err(EventError::from)?;
        let envelope = match self.kind {
            TicketSourceKind::Jira => {
                let updated = root
                    .pointer("/fields/updated")
                    .and_then(Value::as_str)
                    .and_then(jira_time)
                    .unwrap_or(now);
                json!({"webhookEvent": "jira:issue_updated", "timestamp": updated, "issue": root})
            }
            TicketSourceKind::Servicenow => match root.get("result").and_then(Value::as_array) {
                Some(rows) if rows.is_empty() => return Ok(Pulled::Gone),
                Some(rows) => rows[0].clone(),
                None => {
                    return Err(EventError::new("result", "is not a list of incidents").into());
                }
            },
            TicketSourceKind::Zendesk => {
                let Some(ticket) = root.get("ticket").and_then(Value::as_object) else {
                    return Err(EventError::new("ticket", "is not an object").into());
                };
                json!({"type": "zen:event-type:ticket.pulled", "detail": ticket})
            }
            TicketSourceKind::Generic => return Err(PullError::NotPullable(self.name.clone())),
        };
        let Value::Object(envelope) = envelope else {
            return Err(EventError::new("body", "is not an object").into());
        };
        let mut event = self.parse_root(&envelope, None)?;
        if event.ticket_id != ticket_id {
            return Err(self.unavailable(format!(
                "asked for ticket {ticket_id:?}, answered about another ticket"
            )));
        }
        // A pull is an observation, not a delivery: no event id to replay.
        event.event_id = None;
        Ok(Pulled::Found(event))
    }

    /// Ask the system for `ticket_id`'s current facts, with HTTP basic
    /// `credentials` (`user:secret`).
    pub async fn pull(
        &self,
        client: &Outbound,
        base_url: &str,
        credentials: &str,
        ticket_id: &str,
        now: Millis,
    ) -> Result<Pulled, PullError> {
        let url = self.pull_url(base_url, ticket_id)?;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let req = hyper::Request::get(url)
            .header("accept", "application/json")
            .header("authorization", auth)
            .body(Full::new(Bytes::new()))
            .map_err(|e| self.unavailable(e.to_string()))?;
        let answer = client
            .send(req, PULL_TIMEOUT, MAX_PULL_BYTES)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        let body = answer.body.map_err(|e| self.unavailable(e))?;
        self.read_pulled(ticket_id, answer.status.as_u16(), &body, now)
    }
}

/// Jira writes `2026-11-25T10:00:00.000+0000` (no colon in the offset).
fn jira_time(s: &str) -> Option<Millis> {
    rfc3339_ms(s).ok().or_else(|| {
        let (head, off) = s.split_at(s.len().checked_sub(5)?);
        let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
        rfc3339_ms(&fixed).ok()
    })
}

#[cfg(test)]
mod tests;
