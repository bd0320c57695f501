//! Request validation: the bounds every request must respect before any
//! policy runs. Bounds exist so that a policy's fuel budget is
//! spent on its rule, not on copying megabytes of attacker-chosen strings in,
//! and so that every rejection names the field a caller must fix.

use super::Request;
use std::collections::BTreeSet;

/// Why a request was refused before evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {field}: {message}")]
pub struct RequestError {
    /// The offending field, in the contract's spelling, e.g. `subject.roles`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl RequestError {
    /// A new error on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Size bounds on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest string field, bytes.
    pub max_string: usize,
    /// Longest justification, bytes.
    pub max_justification: usize,
    /// Most items in any list (roles, groups, attributes).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_string: 1024,
            max_justification: 4096,
            max_items: 64,
        }
    }
}

fn string(field: &str, v: &str, max: usize, required: bool) -> Result<(), RequestError> {
    string_at(|| field.to_string(), v, max, required)?;
    no_controls(field, v, Text::Name)
}

/// Which control characters a string may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    /// Identifiers and names: none at all.
    Name,
    /// Prose (justification, attribute values): line breaks and tabs.
    Prose,
}

/// Control characters are refused, naming the field: NUL cannot be stored
/// by PostgreSQL (one such id once failed a whole batch of other clients'
/// audit records), and escapes or line breaks in a name forge lines in
/// logs and auditors' terminals.
fn no_controls(field: &str, v: &str, text: Text) -> Result<(), RequestError> {
    let bad = v
        .chars()
        .find(|c| c.is_control() && !(text == Text::Prose && matches!(c, '\n' | '\r' | '\t')));
    match bad {
        None => Ok(()),
        Some(c) => Err(RequestError::new(
            field,
            format!(
                "contains the control character U+{:04X}; {}",
                c as u32,
                if text == Text::Name {
                    "names and identifiers may hold none"
                } else {
                    "only line breaks and tabs are allowed"
                }
            ),
        )),
    }
}

fn timestamp(field: &str, ts: super::Timestamp) -> Result<(), RequestError> {
    super::check_timestamp(ts)
        .map(drop)
        .map_err(|m| RequestError::new(field, m))
}

/// [`string`] for fields whose name must be built (`subject.roles[3]`): the
/// name is only formatted when the field is wrong, not on every request.
fn string_at(
    field: impl FnOnce() -> String,
    v: &str,
    max: usize,
    required: bool,
) -> Result<(), RequestError> {
    if required && v.trim().is_empty() {
        return Err(RequestError::new(field(), "must not be empty"));
    }
    if v.len() > max {
        return Err(RequestError::new(
            field(),
            format!("is {} bytes; at most {max} are allowed", v.len()),
        ));
    }
    Ok(())
}

fn list(field: &str, items: &[String], limits: &Limits) -> Result<(), RequestError> {
    if items.len() > limits.max_items {
        return Err(RequestError::new(
            field,
            format!(
                "has {} items; at most {} are allowed",
                items.len(),
                limits.max_items
            ),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        string_at(|| format!("{field}[{i}]"), item, limits.max_string, true)?;
        if item.chars().any(char::is_control) {
            no_controls(&format!("{field}[{i}]"), item, Text::Name)?;
        }
    }
    Ok(())
}

impl Request {
    /// Check bounds, required fields and that `task` is one the loaded
    /// policies declare.
    pub fn validate(
        &self,
        limits: &Limits,
        known_tasks: &BTreeSet<String>,
    ) -> Result<(), RequestError> {
        self.validate_shape(limits)?;
        if !known_tasks.contains(&self.task) {
            let known: Vec<&str> = known_tasks.iter().map(String::as_str).collect();
            return Err(RequestError::new(
                "task",
                format!(
                    "`{}` is not a task any loaded policy declares (known: {})",
                    self.task,
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Every rule of [`Request::validate`] but whether a loaded policy
    /// declares `task`, which only an engine knows ([`Request::builder`]
    /// checks this much).
    pub fn validate_shape(&self, limits: &Limits) -> Result<(), RequestError> {
        let max = limits.max_string;
        string("id", &self.id, max, true)?;
        string("subject.id", &self.subject.id, max, true)?;
        list("subject.roles", &self.subject.roles, limits)?;
        list("subject.groups", &self.subject.groups, limits)?;
        string("task", &self.task, max, true)?;
        string("resource", &self.resource, max, true)?;
        string("entitlement", &self.entitlement, max, true)?;
        string_at(
            || "justification".into(),
            &self.justification,
            limits.max_justification,
            false,
        )?;
        no_controls("justification", &self.justification, Text::Prose)?;
        timestamp("now", self.now)?;
        if let Some(m) = self.subject.mfa_at {
            timestamp("subject.mfa-at", m)?;
        }
        if self.requested_ttl == 0 {
            return Err(RequestError::new(
                "requested-ttl",
                "must be at least 1 second",
            ));
        }
        if let Some(t) = &self.ticket {
            string("ticket.id", &t.id, max, true)?;
            if !(1..=5).contains(&t.priority) {
                return Err(RequestError::new(
                    "ticket.priority",
                    format!("is {}; must be 1 (highest) to 5", t.priority),
                ));
            }
            if let Some(a) = &t.assignee {
                string("ticket.assignee", a, max, true)?;
            }
            timestamp("ticket.opened-at", t.opened_at)?;
        }
        if self.attributes.0.len() > limits.max_items {
            return Err(RequestError::new(
                "attributes",
                format!(
                    "has {} items; at most {} are allowed",
                    self.attributes.0.len(),
                    limits.max_items
                ),
            ));
        }
        for (k, v) in &self.attributes.0 {
            string("attributes", k, max, true)?;
            string_at(|| format!("attributes.{k}"), v, max, false)?;
            if v.chars().any(char::is_control) {
                no_controls(&format!("attributes.{k}"), v, Text::Prose)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Attributes, Subject, SubjectKind, Ticket, TicketState};

    fn req() -> Request {
        Request {
            id: "r".into(),
            subject: Subject {
                id: "alice".into(),
                kind: SubjectKind::Human,
                roles: vec!["helpdesk".into()],
                groups: vec![],
                mfa_at: None,
            },
            task: "file-recovery".into(),
            resource: "fs".into(),
            entitlement: "op".into(),
            justification: "because".into(),
            requested_ttl: 60,
            ticket: Some(Ticket {
                id: "INC-1".into(),
                state: TicketState::Open,
                priority: 3,
                assignee: None,
                opened_at: 0,
            }),
            now: 100,
            attributes: Attributes::default(),
        }
    }

    fn tasks() -> BTreeSet<String> {
        ["file-recovery".to_string()].into()
    }

    fn field_of(r: &Request) -> String {
        r.validate(&Limits::default(), &tasks()).unwrap_err().field
    }

    #[test]
    fn valid_request_passes() {
        req().validate(&Limits::default(), &tasks()).unwrap();
    }

    #[test]
    fn each_bound_names_its_field() {
        let mut r = req();
        r.requested_ttl = 0;
        assert_eq!(field_of(&r), "requested-ttl");

        let mut r = req();
        r.subject.roles = vec!["x".into(); 65];
        assert_eq!(field_of(&r), "subject.roles");

        let mut r = req();
        r.subject.groups = vec!["".into()];
        assert_eq!(field_of(&r), "subject.groups[0]");

        let mut r = req();
        r.resource = "x".repeat(1025);
        assert_eq!(field_of(&r), "resource");

        let mut r = req();
        r.justification = "x".repeat(4096);
        r.validate(&Limits::default(), &tasks()).unwrap();
        r.justification.push('x');
        assert_eq!(field_of(&r), "justification");

        let mut r = req();
        r.ticket.as_mut().unwrap().priority = 0;
        assert_eq!(field_of(&r), "ticket.priority");

        let mut r = req();
        r.attributes = Attributes((0..65).map(|i| (format!("k{i}"), "v".into())).collect());
        assert_eq!(field_of(&r), "attributes");

        let mut r = req();
        r.task = "saas-admin".into();
        assert_eq!(field_of(&r), "task");

        let mut r = req();
        r.id = "  ".into();
        assert_eq!(field_of(&r), "id");
    }

    #[test]
    fn nul_in_request_id_is_refused_naming_the_field() {
        let mut r = req();
        r.id = "a\0b".into();
        assert_eq!(field_of(&r), "id");
        let mut r = req();
        r.subject.groups = vec!["ok".into(), "x\u{1b}[2J".into()];
        assert_eq!(field_of(&r), "subject.groups[1]");
        let mut r = req();
        r.ticket.as_mut().unwrap().assignee = Some("bob\nalice".into());
        assert_eq!(field_of(&r), "ticket.assignee");
        // Prose keeps its line breaks, but not escapes.
        let mut r = req();
        r.justification = "line one\nline two\tend".into();
        r.validate(&Limits::default(), &tasks()).unwrap();
        r.justification.push('\u{1b}');
        assert_eq!(field_of(&r), "justification");
    }

    #[test]
    fn timestamps_past_year_9999_are_refused_naming_the_field() {
        let mut r = req();
        r.ticket.as_mut().unwrap().opened_at = u64::MAX;
        assert_eq!(field_of(&r), "ticket.opened-at");
        let mut r = req();
        r.subject.mfa_at = Some(crate::request::MAX_TIMESTAMP + 1);
        assert_eq!(field_of(&r), "subject.mfa-at");
        let mut r = req();
        r.subject.mfa_at = Some(crate::request::MAX_TIMESTAMP);
        r.ticket.as_mut().unwrap().opened_at = crate::request::MAX_TIMESTAMP;
        r.validate(&Limits::default(), &tasks()).unwrap();
    }
}
