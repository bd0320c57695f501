//! Ticket sources: the webhooks of Jira, ServiceNow, Zendesk and a generic
//! signed body, authenticated and normalised into one [`TicketEvent`].
//!
//! This is the pure core: no store, no clock, no HTTP routing. A handler
//! for `POST /v1/ticket-sources/{name}/events` does
//!
//! ```ignore
//! let verified = source.verify(&headers, &body, now_ms)?; // 401 / 413
//! let event = source.parse(verified)?;                    // 400 naming the field
//! ```
//!
//! and applies the event to the registry. Verification runs over the raw
//! bytes before anything is parsed, and [`TicketSource::parse`] only takes
//! what [`TicketSource::verify`] returned. Every field of a body is treated
//! as hostile: identifiers are bounded and free of control and format
//! characters, times lie in years 1970–9999, duplicate JSON keys are
//! refused.

mod config;
mod parse;
mod verify;

pub use config::{
    DEFAULT_RECONCILE_INTERVAL, DEFAULT_SECRET_HEADER, MAX_SOURCE_NAME, MIN_SECRET_BYTES,
    ServiceNowAuth, TicketSource, TicketSourceConfig, TicketSourceKind, WebhookAuth, check_sources,
    parse_state,
};
pub use parse::{MAX_FIELD_BYTES, MAX_TIMESTAMP_MS};
pub use verify::{
    JIRA_SIGNATURE, JIRA_WEBHOOK_ID, JITGATE_SIGNATURE, JITGATE_TIMESTAMP, MAX_EVENT_BYTES,
    MAX_SKEW_MS, Verified, ZENDESK_SIGNATURE, ZENDESK_TIMESTAMP,
};

use crate::request::TicketState;

/// Unix milliseconds, UTC.
pub type Millis = u64;

/// What an event does to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketEventKind {
    /// Created or changed: these are now its facts.
    Upsert,
    /// Deleted in the ticket system.
    Deleted,
}

/// One ticket event, whatever system sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    /// The source's configured name.
    pub source: String,
    /// The system's id for this delivery or change, to recognise a replay:
    /// jira `X-Atlassian-Webhook-Identifier` (not covered by Jira's
    /// signature), zendesk top-level `id`, generic `event-id`, servicenow
    /// `<number>@<sys_updated_on>`.
    pub event_id: Option<String>,
    /// The ticket's id in its system (`PROJ-12`, `INC0010023`, `5158`).
    pub ticket_id: String,
    /// Upsert or delete.
    pub kind: TicketEventKind,
    /// Where the ticket stands.
    pub state: TicketState,
    /// 1 (highest) … 5, if the system sent one.
    pub priority: Option<u8>,
    /// The jitgate subject the ticket is assigned to; `None`: unassigned.
    pub assignee: Option<String>,
    /// When the ticket was opened, if sent.
    pub opened_at: Option<Millis>,
    /// The system's time of this change: later wins.
    pub updated_at: Millis,
}

/// Why a webhook's sender was not believed (answer 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No signature / secret / timestamp header.
    #[error("missing header `{0}`")]
    MissingHeader(String),
    /// The header appears more than once.
    #[error("header `{0}` appears more than once")]
    RepeatedHeader(String),
    /// The header is not in the scheme's format.
    #[error("header `{header}` {message}")]
    Malformed {
        /// Which header.
        header: String,
        /// What is wrong with it.
        message: String,
    },
    /// The proof does not match the body and secret.
    #[error("signature does not match the body")]
    BadSignature,
    /// A genuine signature over a timestamp too far from now.
    #[error(
        "header `{header}` is {skew_ms} ms {} now; at most {MAX_SKEW_MS} ms either way",
        if *future { "ahead of" } else { "behind" }
    )]
    OutOfWindow {
        /// Which header.
        header: String,
        /// Distance from now, ms.
        skew_ms: u64,
        /// Ahead of now (else behind: a replay).
        future: bool,
    },
}

/// Why a verified body was not taken (answer 400), naming the field path
/// (e.g. `issue.fields.status`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ticket event: {field}: {message}")]
pub struct EventError {
    /// The field, in the system's own spelling.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EventError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        EventError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<crate::request::RequestError> for EventError {
    fn from(e: crate::request::RequestError) -> Self {
        EventError::new(e.field, e.message)
    }
}

/// Anything that stops a webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Not from the system (401).
    #[error("unauthenticated ticket event: {0}")]
    Auth(#[from] AuthError),
    /// The body is larger than [`MAX_EVENT_BYTES`] (413).
    #[error("ticket event is {bytes} bytes; at most {max} are accepted")]
    TooLarge {
        /// Size received.
        bytes: usize,
        /// Most accepted.
        max: usize,
    },
    /// Authentic but not understood (400).
    #[error(transparent)]
    Event(#[from] EventError),
}

impl TicketError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            TicketError::Auth(_) => 401,
            TicketError::TooLarge { .. } => 413,
            TicketError::Event(_) => 400,
        }
    }
}

impl TicketSource {
    /// [`TicketSource::verify`] then [`TicketSource::parse`].
    pub fn verify_and_parse(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        now_ms: Millis,
    ) -> Result<TicketEvent, TicketError> {
        let v = self.verify(headers, body, now_ms)?;
        Ok(self.parse(v)?)
    }
}

#[cfg(test)]
mod tests;
