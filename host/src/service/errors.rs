//! [`ServiceError`]: why a service call failed, one HTTP status each.

use crate::grant::IllegalTransition;
use crate::request::RequestError;
use crate::store::StoreError;

/// Why a service call failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request failed validation (422), naming the field.
    #[error("{0}")]
    Invalid(#[from] RequestError),
    /// Malformed input (400), naming the field.
    #[error("{field}: {message}")]
    BadRequest {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The caller may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such thing (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with stored state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The lifecycle does not allow this change (409).
    #[error("grant {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        /// The grant.
        id: String,
        /// Its state.
        from: &'static str,
        /// The refused target.
        to: &'static str,
    },
    /// The store (and so the audit log) is unavailable (503): fail closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many decisions in flight (503 with `Retry-After`); nothing was
    /// decided and nothing stored.
    #[error("busy: {0}")]
    Busy(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ServiceError::NotFound(format!("grant {id}")),
            StoreError::DuplicateRequest(id) => {
                ServiceError::Conflict(format!("request id already used by grant {id}"))
            }
            other => ServiceError::Unavailable(other.to_string()),
        }
    }
}

impl From<IllegalTransition> for ServiceError {
    fn from(e: IllegalTransition) -> Self {
        match e {
            IllegalTransition::State { id, from, to } => {
                ServiceError::IllegalTransition { id, from, to }
            }
            IllegalTransition::NotEligible(why) => ServiceError::Forbidden(why),
            e @ (IllegalTransition::Quarantined { .. }
            | IllegalTransition::AlreadyApproved { .. }) => ServiceError::Conflict(e.to_string()),
        }
    }
}
