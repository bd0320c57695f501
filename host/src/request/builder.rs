//! [`RequestBuilder`]: a [`Request`] built in code, checked by the same
//! rules (and with the same field names in errors) as a JSON one.

use super::{Attributes, Request, RequestError, RequestLimits, Subject, SubjectKind, Ticket};

/// Builds a [`Request`]; start with [`Request::builder`].
///
/// `now` is left 0 unless set: the grant service decides at its own time,
/// and [`crate::Engine::decide_now`] at the system clock's.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    task: String,
    id: Option<String>,
    subject: Option<Subject>,
    resource: Option<String>,
    entitlement: Option<String>,
    justification: Option<String>,
    requested_ttl: Option<u32>,
    ticket: Option<Ticket>,
    now: u64,
    attributes: Vec<(String, String)>,
    limits: RequestLimits,
}

impl Request {
    /// A request for `task`, built field by field.
    pub fn builder(task: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            task: task.into(),
            id: None,
            subject: None,
            resource: None,
            entitlement: None,
            justification: None,
            requested_ttl: None,
            ticket: None,
            now: 0,
            attributes: Vec::new(),
            limits: RequestLimits::default(),
        }
    }
}

impl RequestBuilder {
    /// The caller's id for this request (required; the service's
    /// idempotency key).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Who asks: a person (required, or [`RequestBuilder::service_subject`]).
    pub fn subject(mut self, id: impl Into<String>) -> Self {
        self.subject = Some(subject(id.into(), SubjectKind::Human));
        self
    }

    /// Who asks: a workload.
    pub fn service_subject(mut self, id: impl Into<String>) -> Self {
        self.subject = Some(subject(id.into(), SubjectKind::Service));
        self
    }

    /// The subject's job roles (after [`RequestBuilder::subject`]).
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        if let Some(s) = &mut self.subject {
            s.roles = roles.into_iter().map(Into::into).collect();
        }
        self
    }

    /// The subject's directory groups (after [`RequestBuilder::subject`]).
    pub fn groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        if let Some(s) = &mut self.subject {
            s.groups = groups.into_iter().map(Into::into).collect();
        }
        self
    }

    /// The subject's last MFA, Unix seconds (after [`RequestBuilder::subject`]).
    pub fn mfa_at(mut self, at: u64) -> Self {
        if let Some(s) = &mut self.subject {
            s.mfa_at = Some(at);
        }
        self
    }

    /// The target system (required).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// What to grant (required).
    pub fn entitlement(mut self, entitlement: impl Into<String>) -> Self {
        self.entitlement = Some(entitlement.into());
        self
    }

    /// Why (required; may be empty).
    pub fn justification(mut self, justification: impl Into<String>) -> Self {
        self.justification = Some(justification.into());
        self
    }

    /// Requested duration, seconds (required, at least 1).
    pub fn ttl(mut self, secs: u32) -> Self {
        self.requested_ttl = Some(secs);
        self
    }

    /// The ticket the access is for.
    pub fn ticket(mut self, ticket: Ticket) -> Self {
        self.ticket = Some(ticket);
        self
    }

    /// One attribute; keys must be unique (a repeat is an error at build).
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Pin the decision time, Unix seconds (fixtures, replays). The
    /// service replaces it with its own clock's time.
    pub fn now(mut self, now: u64) -> Self {
        self.now = now;
        self
    }

    /// Check against `limits` instead of the defaults (use the engine's,
    /// `engine.config().request_limits`, when they differ).
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The request, checked by the rules a JSON request meets (bounds,
    /// required fields, no control characters, times in 1970-9999), each
    /// error naming the field in the JSON spelling (`subject.id`,
    /// `requested-ttl`). Whether a policy declares `task` is checked when
    /// an engine decides it.
    pub fn build(self) -> Result<Request, RequestError> {
        let missing = |field: &str| RequestError::new(field, "is required");
        let mut attributes: Vec<(String, String)> = Vec::with_capacity(self.attributes.len());
        for (k, v) in self.attributes {
            if attributes.iter().any(|(seen, _)| *seen == k) {
                return Err(RequestError::new(
                    "attributes",
                    format!("duplicate attribute `{k}`"),
                ));
            }
            attributes.push((k, v));
        }
        let req = Request {
            id: self.id.ok_or_else(|| missing("id"))?,
            subject: self.subject.ok_or_else(|| missing("subject"))?,
            task: self.task,
            resource: self.resource.ok_or_else(|| missing("resource"))?,
            entitlement: self.entitlement.ok_or_else(|| missing("entitlement"))?,
            justification: self.justification.ok_or_else(|| missing("justification"))?,
            requested_ttl: self.requested_ttl.ok_or_else(|| missing("requested-ttl"))?,
            ticket: self.ticket,
            now: self.now,
            attributes: Attributes(attributes),
        };
        req.validate_shape(&self.limits)?;
        Ok(req)
    }
}

fn subject(id: String, kind: SubjectKind) -> Subject {
    Subject {
        id,
        kind,
        roles: Vec::new(),
        groups: Vec::new(),
        mfa_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RequestBuilder {
        Request::builder("file-recovery")
            .id("r-1")
            .subject("alice")
            .roles(["sre"])
            .resource("fs-01")
            .entitlement("read")
            .justification("restore a deleted file")
            .ttl(600)
    }

    #[test]
    fn a_built_request_equals_the_same_request_parsed_from_json() {
        let built = full().attribute("env", "prod").build().expect("valid");
        let parsed = crate::request::from_value(serde_json::json!({
            "id": "r-1", "subject": {"id": "alice", "kind": "human", "roles": ["sre"]},
            "task": "file-recovery", "resource": "fs-01", "entitlement": "read",
            "justification": "restore a deleted file", "requested-ttl": 600, "now": 0,
            "attributes": {"env": "prod"}
        }))
        .expect("valid json");
        assert_eq!(built, parsed);
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = Request::builder("t")
            .id("r")
            .subject("a")
            .resource("x")
            .justification("")
            .ttl(1)
            .build()
            .expect_err("no entitlement");
        assert_eq!(e.field, "entitlement");
    }

    #[test]
    fn builder_errors_name_the_same_fields_as_json_validation() {
        assert_eq!(
            full().ttl(0).build().expect_err("ttl 0").field,
            "requested-ttl"
        );
        assert_eq!(
            full().subject("").build().expect_err("empty subject").field,
            "subject.id"
        );
        assert_eq!(
            full()
                .justification("line\u{1b}[2Jspoof")
                .build()
                .expect_err("terminal escape")
                .field,
            "justification"
        );
        assert_eq!(
            full()
                .mfa_at(u64::MAX)
                .build()
                .expect_err("year 9999+")
                .field,
            "subject.mfa-at"
        );
    }

    #[test]
    fn duplicate_attributes_are_refused_as_in_json() {
        let e = full()
            .attribute("k", "1")
            .attribute("k", "2")
            .build()
            .expect_err("duplicate");
        assert_eq!(e.field, "attributes");
    }
}
