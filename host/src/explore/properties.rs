//! The properties file: invariants over decisions, in YAML
//! (`docs/properties.md`).
//!
//! ```yaml
//! properties:
//!   - name: a finished ticket never grants access
//!     never: {outcome: allow, when: {ticket.state: [resolved, closed]}}
//!   - name: file recovery lasts at most an hour
//!     always: {ttl: {max: 3600}, when: {task: file-recovery}}
//! ```
//!
//! A property is `never: CLAIM` (no request matching `when` and not
//! `unless` gets a decision the claim describes) or `always: CLAIM` (every
//! such request does). A claim's decision keys (`outcome`, `ttl`,
//! `revoke-on-ticket-close`, `approvals`, `reason-contains`) must all hold
//! for it to hold; with `policy: NAME` they speak of that one policy's
//! verdict instead of the combined decision.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::decision::{Decision, Outcome, TraceVerdict};
use crate::request::{Request, RequestError, SubjectKind, TicketState};

/// A whole properties file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PropertiesFile {
    /// The invariants.
    pub properties: Vec<Property>,
}

/// One invariant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Property {
    /// Shown when it fails (default: `property N`).
    #[serde(default)]
    pub name: Option<String>,
    /// No matching request may get this decision.
    #[serde(default)]
    pub never: Option<Claim>,
    /// Every matching request must get this decision.
    #[serde(default)]
    pub always: Option<Claim>,
}

/// One value or a list of values (any of them).
#[derive(Debug, Clone)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Any of these.
    Many(Vec<T>),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    /// A list, or one value; the value's own error (`unknown variant
    /// `alow`, expected one of …`) is kept, where an untagged enum would
    /// only say that nothing matched.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_norway::Value::deserialize(d)? {
            v @ serde_norway::Value::Sequence(_) => serde_norway::from_value(v)
                .map(OneOrMany::Many)
                .map_err(D::Error::custom),
            v => serde_norway::from_value(v)
                .map(OneOrMany::One)
                .map_err(D::Error::custom),
        }
    }
}

impl<T: PartialEq> OneOrMany<T> {
    /// Whether `v` is (one of) the value(s).
    pub fn contains(&self, v: &T) -> bool {
        match self {
            OneOrMany::One(x) => x == v,
            OneOrMany::Many(xs) => xs.contains(v),
        }
    }

    /// Every value.
    pub fn values(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(xs) => xs,
        }
    }
}

/// An inclusive range; either end may be left open.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest value included.
    pub min: Option<u64>,
    /// Highest value included.
    pub max: Option<u64>,
}

impl Range {
    /// Whether `v` lies in the range.
    pub fn contains(&self, v: u64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    /// The bounds, for the generator (each ±1 is explored too).
    pub fn bounds(&self) -> impl Iterator<Item = u64> {
        self.min.into_iter().chain(self.max)
    }
}

/// A decision, or one policy's verdict, as a claim names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeName {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Needs approval.
    RequireApproval,
    /// Refused as invalid before any policy ran (decisions only).
    Invalid,
    /// The policy had no opinion (`policy:` claims only).
    NotApplicable,
    /// The policy failed (`policy:` claims only).
    Error,
    /// The task did not select the policy (`policy:` claims only).
    NotSelected,
}

impl OutcomeName {
    /// The spelling in properties and fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeName::Allow => "allow",
            OutcomeName::Deny => "deny",
            OutcomeName::RequireApproval => "require-approval",
            OutcomeName::Invalid => "invalid",
            OutcomeName::NotApplicable => "not-applicable",
            OutcomeName::Error => "error",
            OutcomeName::NotSelected => "not-selected",
        }
    }

    fn of_outcome(o: Outcome) -> Self {
        match o {
            Outcome::Allow => OutcomeName::Allow,
            Outcome::Deny => OutcomeName::Deny,
            Outcome::RequireApproval => OutcomeName::RequireApproval,
        }
    }

    fn of_verdict(v: TraceVerdict) -> Self {
        match v {
            TraceVerdict::Allow => OutcomeName::Allow,
            TraceVerdict::Deny => OutcomeName::Deny,
            TraceVerdict::RequireApproval => OutcomeName::RequireApproval,
            TraceVerdict::NotApplicable => OutcomeName::NotApplicable,
            TraceVerdict::Error => OutcomeName::Error,
        }
    }
}

/// What a claim says about a decision, and which requests it is about.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Claim {
    /// Speak of this policy's own verdict, not the combined decision.
    #[serde(default)]
    pub policy: Option<String>,
    /// Check the property only on sets that load every one of these
    /// policies.
    #[serde(default)]
    pub sets_with: Option<OneOrMany<String>>,
    /// The outcome is (one of) this.
    #[serde(default)]
    pub outcome: Option<OneOrMany<OutcomeName>>,
    /// The TTL lies in this range (0 for a deny or an invalid request).
    #[serde(default)]
    pub ttl: Option<Range>,
    /// The grant ends with its ticket (false unless allowed or approved).
    #[serde(default)]
    pub revoke_on_ticket_close: Option<bool>,
    /// The number of approval requirements lies in this range.
    #[serde(default)]
    pub approvals: Option<Range>,
    /// Some reason contains this text.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// The requests the claim is about (default: every request).
    #[serde(default)]
    pub when: Condition,
    /// …except these.
    #[serde(default)]
    pub unless: Option<Condition>,
}

/// Whose ticket it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssigneeIs {
    /// Nobody is assigned (or there is no ticket).
    None,
    /// The requester.
    Subject,
    /// Someone other than the requester.
    Other,
}

/// A ticket state, or `none` for a request without a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateOrNone {
    /// No ticket.
    None,
    /// `open`.
    Open,
    /// `in-progress`.
    InProgress,
    /// `on-hold`.
    OnHold,
    /// `resolved`.
    Resolved,
    /// `closed`.
    Closed,
}

impl StateOrNone {
    fn of(t: Option<TicketState>) -> Self {
        match t {
            None => StateOrNone::None,
            Some(TicketState::Open) => StateOrNone::Open,
            Some(TicketState::InProgress) => StateOrNone::InProgress,
            Some(TicketState::OnHold) => StateOrNone::OnHold,
            Some(TicketState::Resolved) => StateOrNone::Resolved,
            Some(TicketState::Closed) => StateOrNone::Closed,
        }
    }
}

/// A day of the week (of `now`, in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// The UTC weekday of Unix second `t`.
    pub fn of(t: u64) -> Self {
        // 1970-01-01 was a Thursday.
        match (t / 86_400 + 3) % 7 {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }
}

/// Which requests a claim is about: every stated key must match (a list
/// matches any of its values).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The task.
    #[serde(default)]
    pub task: Option<OneOrMany<String>>,
    /// The resource.
    #[serde(default)]
    pub resource: Option<OneOrMany<String>>,
    /// The entitlement.
    #[serde(default)]
    pub entitlement: Option<OneOrMany<String>>,
    /// The subject's id.
    #[serde(default, rename = "subject.id")]
    pub subject_id: Option<OneOrMany<String>>,
    /// `human` or `service`.
    #[serde(default, rename = "subject.kind")]
    pub subject_kind: Option<OneOrMany<SubjectKind>>,
    /// The subject has any of these roles.
    #[serde(default, rename = "subject.roles")]
    pub subject_roles: Option<OneOrMany<String>>,
    /// The subject is in any of these groups.
    #[serde(default, rename = "subject.groups")]
    pub subject_groups: Option<OneOrMany<String>>,
    /// Seconds since the last MFA (a missing or future MFA never matches).
    #[serde(default, rename = "subject.mfa-age")]
    pub mfa_age: Option<Range>,
    /// The ticket's state, `none` for no ticket.
    #[serde(default, rename = "ticket.state")]
    pub ticket_state: Option<OneOrMany<StateOrNone>>,
    /// The ticket's priority (no ticket never matches).
    #[serde(default, rename = "ticket.priority")]
    pub ticket_priority: Option<OneOrMany<u8>>,
    /// `none`, `subject` or `other`.
    #[serde(default, rename = "ticket.assignee")]
    pub ticket_assignee: Option<OneOrMany<AssigneeIs>>,
    /// The requested TTL.
    #[serde(default, rename = "requested-ttl")]
    pub requested_ttl: Option<Range>,
    /// The weekday of `now`, UTC.
    #[serde(default, rename = "now.weekday")]
    pub weekday: Option<OneOrMany<Weekday>>,
    /// The hour of `now` (0-23), UTC.
    #[serde(default, rename = "now.hour")]
    pub hour: Option<Range>,
    /// Attribute values by key; `null` matches an absent attribute.
    #[serde(default)]
    pub attributes: BTreeMap<String, OneOrMany<Option<String>>>,
}

impl Condition {
    /// Whether `r` matches every stated key.
    pub fn matches(&self, r: &Request) -> bool {
        let any = |c: &Option<OneOrMany<String>>, v: &str| {
            c.as_ref().is_none_or(|c| c.values().iter().any(|x| x == v))
        };
        let has = |c: &Option<OneOrMany<String>>, have: &[String]| {
            c.as_ref()
                .is_none_or(|c| c.values().iter().any(|x| have.contains(x)))
        };
        any(&self.task, &r.task)
            && any(&self.resource, &r.resource)
            && any(&self.entitlement, &r.entitlement)
            && any(&self.subject_id, &r.subject.id)
            && self
                .subject_kind
                .as_ref()
                .is_none_or(|k| k.contains(&r.subject.kind))
            && has(&self.subject_roles, &r.subject.roles)
            && has(&self.subject_groups, &r.subject.groups)
            && self.mfa_age.is_none_or(|range| {
                r.subject
                    .mfa_at
                    .and_then(|m| r.now.checked_sub(m))
                    .is_some_and(|age| range.contains(age))
            })
            && self
                .ticket_state
                .as_ref()
                .is_none_or(|s| s.contains(&StateOrNone::of(r.ticket.as_ref().map(|t| t.state))))
            && self
                .ticket_priority
                .as_ref()
                .is_none_or(|p| r.ticket.as_ref().is_some_and(|t| p.contains(&t.priority)))
            && self.ticket_assignee.as_ref().is_none_or(|a| {
                let is = match r.ticket.as_ref().and_then(|t| t.assignee.as_ref()) {
                    None => AssigneeIs::None,
                    Some(x) if *x == r.subject.id => AssigneeIs::Subject,
                    Some(_) => AssigneeIs::Other,
                };
                a.contains(&is)
            })
            && self
                .requested_ttl
                .is_none_or(|t| t.contains(u64::from(r.requested_ttl)))
            && self
                .weekday
                .as_ref()
                .is_none_or(|w| w.contains(&Weekday::of(r.now)))
            && self.hour.is_none_or(|h| h.contains(r.now % 86_400 / 3600))
            && self
                .attributes
                .iter()
                .all(|(k, want)| want.contains(&r.attributes.get(k).map(str::to_string)))
    }
}

/// A decision reduced to what claims speak of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The combined outcome, `invalid` when validation refused the request.
    pub outcome: OutcomeName,
    /// 0 for a deny or an invalid request.
    pub ttl: u32,
    /// The revoke flag.
    pub revoke_on_ticket_close: bool,
    /// Approval requirements: policy, groups, distinct approvers.
    pub approvals: Vec<(String, Vec<String>, u8)>,
    /// `policy: reason` lines, or the validation message.
    pub reasons: Vec<String>,
    /// Each selected policy: name, verdict, TTL it offered.
    pub policies: Vec<(String, OutcomeName, Option<u32>, Option<String>)>,
    /// The field validation named, for an invalid request.
    pub invalid_field: Option<String>,
}

impl Observed {
    /// Reduce an engine answer.
    pub fn of(answer: &Result<Decision, RequestError>) -> Observed {
        match answer {
            Err(e) => Observed {
                outcome: OutcomeName::Invalid,
                ttl: 0,
                revoke_on_ticket_close: false,
                approvals: Vec::new(),
                reasons: vec![e.message.clone()],
                policies: Vec::new(),
                invalid_field: Some(e.field.clone()),
            },
            Ok(d) => Observed {
                outcome: OutcomeName::of_outcome(d.outcome),
                ttl: d.ttl,
                revoke_on_ticket_close: d.revoke_on_ticket_close,
                approvals: d
                    .approvals
                    .iter()
                    .map(|a| (a.policy.clone(), a.groups.clone(), a.min))
                    .collect(),
                reasons: d.reasons.clone(),
                policies: d
                    .policies
                    .iter()
                    .map(|t| {
                        (
                            t.name.clone(),
                            OutcomeName::of_verdict(t.verdict),
                            t.ttl,
                            t.reason.clone(),
                        )
                    })
                    .collect(),
                invalid_field: None,
            },
        }
    }
}

impl Claim {
    /// Whether the claim applies to `r`.
    pub fn applies(&self, r: &Request) -> bool {
        self.when.matches(r) && !self.unless.as_ref().is_some_and(|u| u.matches(r))
    }

    /// Whether the decision is what the claim describes.
    pub fn describes(&self, o: &Observed) -> bool {
        let (outcome, ttl, revoke, approvals, reasons): (_, _, _, usize, Vec<&str>) =
            match &self.policy {
                None => (
                    o.outcome,
                    o.ttl,
                    o.revoke_on_ticket_close,
                    o.approvals.len(),
                    o.reasons.iter().map(String::as_str).collect(),
                ),
                Some(name) => {
                    let trace = o.policies.iter().find(|p| p.0 == *name);
                    let verdict = match (trace, o.outcome) {
                        (Some(t), _) => t.1,
                        (None, OutcomeName::Invalid) => OutcomeName::Invalid,
                        (None, _) => OutcomeName::NotSelected,
                    };
                    (
                        verdict,
                        trace.and_then(|t| t.2).unwrap_or(0),
                        false,
                        // A policy that asks for approval adds exactly
                        // one requirement.
                        usize::from(verdict == OutcomeName::RequireApproval),
                        trace.and_then(|t| t.3.as_deref()).into_iter().collect(),
                    )
                }
            };
        self.outcome.as_ref().is_none_or(|w| w.contains(&outcome))
            && self.ttl.is_none_or(|r| r.contains(u64::from(ttl)))
            && self.revoke_on_ticket_close.is_none_or(|w| w == revoke)
            && self.approvals.is_none_or(|r| r.contains(approvals as u64))
            && self
                .reason_contains
                .as_ref()
                .is_none_or(|t| reasons.iter().any(|r| r.contains(t.as_str())))
    }
}

/// A property after checking: its name, its kind, its claim.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Where it is in the file, for errors: `properties[2].never`.
    pub path: String,
    /// Its name.
    pub name: String,
    /// `true` for `always`, `false` for `never`.
    pub always: bool,
    /// What it claims.
    pub claim: Claim,
}

impl Checked {
    /// `never` or `always`.
    pub fn kind(&self) -> &'static str {
        if self.always { "always" } else { "never" }
    }

    /// Whether `r` (decided as `o`) breaks the property; `None` when the
    /// property does not apply to `r`.
    pub fn violated_by(&self, r: &Request, o: &Observed) -> Option<bool> {
        if !self.claim.applies(r) {
            return None;
        }
        Some(self.claim.describes(o) != self.always)
    }
}

/// A properties file that cannot be used: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PropertiesError(pub String);

/// Parse a properties file; every error names the field (`properties[2].never.when: unknown field ...`).
pub fn parse(text: &str) -> Result<Vec<Checked>, PropertiesError> {
    let de = serde_norway::Deserializer::from_str(text);
    let file: PropertiesFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The YAML error may name a (coarser) path of its own: one is enough.
        let inner = match inner.split_once(": ") {
            Some((head, rest)) if head.starts_with("properties") && !head.contains(' ') => {
                rest.to_string()
            }
            _ => inner,
        };
        PropertiesError(if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        })
    })?;
    if file.properties.is_empty() {
        return Err(PropertiesError("properties: the list is empty".into()));
    }
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in file.properties.into_iter().enumerate() {
        let at = format!("properties[{i}]");
        let name = p.name.unwrap_or_else(|| format!("property {}", i + 1));
        if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 200 {
            return Err(PropertiesError(format!(
                "{at}.name: must be 1-200 characters with no control characters"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(PropertiesError(format!(
                "{at}.name: `{name}` is used twice"
            )));
        }
        let (always, claim) = match (p.never, p.always) {
            (Some(c), None) => (false, c),
            (None, Some(c)) => (true, c),
            (None, None) => {
                return Err(PropertiesError(format!("{at}: needs `never` or `always`")));
            }
            (Some(_), Some(_)) => {
                return Err(PropertiesError(format!(
                    "{at}: has both `never` and `always`; write two properties"
                )));
            }
        };
        let kind = if always { "always" } else { "never" };
        check_claim(&claim, &format!("{at}.{kind}"))?;
        out.push(Checked {
            path: format!("{at}.{kind}"),
            name,
            always,
            claim,
        });
    }
    Ok(out)
}

fn check_claim(c: &Claim, at: &str) -> Result<(), PropertiesError> {
    if c.outcome.is_none()
        && c.ttl.is_none()
        && c.revoke_on_ticket_close.is_none()
        && c.approvals.is_none()
        && c.reason_contains.is_none()
    {
        return Err(PropertiesError(format!(
            "{at}: states nothing about the decision (give outcome, ttl, revoke-on-ticket-close, approvals or reason-contains)"
        )));
    }
    if let Some(o) = &c.outcome {
        if o.values().is_empty() {
            return Err(PropertiesError(format!("{at}.outcome: the list is empty")));
        }
        let policy_only = [
            OutcomeName::NotApplicable,
            OutcomeName::Error,
            OutcomeName::NotSelected,
        ];
        if c.policy.is_none()
            && let Some(v) = o.values().iter().find(|v| policy_only.contains(v))
        {
            return Err(PropertiesError(format!(
                "{at}.outcome: `{}` is a policy's verdict, not a decision's; add `policy: NAME`",
                v.as_str()
            )));
        }
    }
    if c.policy.is_some() && c.revoke_on_ticket_close.is_some() {
        return Err(PropertiesError(format!(
            "{at}.revoke-on-ticket-close: speaks of the combined decision only, not of one policy's verdict"
        )));
    }
    if c.sets_with.as_ref().is_some_and(|s| s.values().is_empty()) {
        return Err(PropertiesError(format!(
            "{at}.sets-with: the list is empty"
        )));
    }
    for (field, r) in [("ttl", c.ttl), ("approvals", c.approvals)] {
        check_range(r, &format!("{at}.{field}"))?;
    }
    check_condition(&c.when, &format!("{at}.when"))?;
    if let Some(u) = &c.unless {
        check_condition(u, &format!("{at}.unless"))?;
    }
    Ok(())
}

fn check_range(r: Option<Range>, at: &str) -> Result<(), PropertiesError> {
    match r {
        Some(Range {
            min: None,
            max: None,
        }) => Err(PropertiesError(format!("{at}: give min, max or both"))),
        Some(Range {
            min: Some(a),
            max: Some(b),
        }) if a > b => Err(PropertiesError(format!(
            "{at}: min {a} is greater than max {b}"
        ))),
        _ => Ok(()),
    }
}

fn check_condition(c: &Condition, at: &str) -> Result<(), PropertiesError> {
    for (field, r) in [
        ("subject.mfa-age", c.mfa_age),
        ("requested-ttl", c.requested_ttl),
        ("now.hour", c.hour),
    ] {
        check_range(r, &format!("{at}.{field}"))?;
    }
    let lists: [(&str, Option<usize>); 10] = [
        ("task", c.task.as_ref().map(|v| v.values().len())),
        ("resource", c.resource.as_ref().map(|v| v.values().len())),
        (
            "entitlement",
            c.entitlement.as_ref().map(|v| v.values().len()),
        ),
        (
            "subject.id",
            c.subject_id.as_ref().map(|v| v.values().len()),
        ),
        (
            "subject.kind",
            c.subject_kind.as_ref().map(|v| v.values().len()),
        ),
        (
            "subject.roles",
            c.subject_roles.as_ref().map(|v| v.values().len()),
        ),
        (
            "subject.groups",
            c.subject_groups.as_ref().map(|v| v.values().len()),
        ),
        (
            "ticket.state",
            c.ticket_state.as_ref().map(|v| v.values().len()),
        ),
        (
            "ticket.priority",
            c.ticket_priority.as_ref().map(|v| v.values().len()),
        ),
        ("now.weekday", c.weekday.as_ref().map(|v| v.values().len())),
    ];
    if let Some((field, _)) = lists.iter().find(|(_, n)| *n == Some(0)) {
        return Err(PropertiesError(format!(
            "{at}.{field}: the list is empty, so nothing would match"
        )));
    }
    if let Some(p) = &c.ticket_priority
        && let Some(bad) = p.values().iter().find(|p| !(1..=5).contains(*p))
    {
        return Err(PropertiesError(format!(
            "{at}.ticket.priority: {bad} is not a priority (1 to 5)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Attributes, Subject, Ticket};

    fn req() -> Request {
        Request {
            id: "r".into(),
            subject: Subject {
                id: "alice".into(),
                kind: SubjectKind::Human,
                roles: vec!["helpdesk".into()],
                groups: vec![],
                mfa_at: Some(1_795_600_000 - 900),
            },
            task: "file-recovery".into(),
            resource: "fs".into(),
            entitlement: "op".into(),
            justification: "because of the ticket".into(),
            requested_ttl: 3600,
            ticket: Some(Ticket {
                id: "INC-1".into(),
                state: TicketState::Closed,
                priority: 2,
                assignee: Some("bob".into()),
                opened_at: 1_795_500_000,
            }),
            // Wednesday 2026-11-25 09:46:40 UTC.
            now: 1_795_600_000,
            attributes: Attributes(vec![("tz-offset-minutes".into(), "60".into())]),
        }
    }

    fn when(yaml: &str) -> Condition {
        serde_norway::from_str(yaml).expect("condition")
    }

    #[test]
    fn every_condition_key_matches_what_it_names() {
        let r = req();
        for (yaml, expected) in [
            ("{}", true),
            ("{task: file-recovery}", true),
            ("{task: [saas-admin, break-glass]}", false),
            ("{subject.kind: service}", false),
            ("{subject.roles: [sre, helpdesk]}", true),
            ("{subject.groups: oncall}", false),
            ("{subject.mfa-age: {min: 900, max: 900}}", true),
            ("{subject.mfa-age: {min: 901}}", false),
            ("{ticket.state: [resolved, closed]}", true),
            ("{ticket.state: none}", false),
            ("{ticket.priority: [1, 2]}", true),
            ("{ticket.assignee: other}", true),
            ("{ticket.assignee: [none, subject]}", false),
            ("{requested-ttl: {min: 3601}}", false),
            ("{now.weekday: wednesday}", true),
            ("{now.weekday: [saturday, sunday]}", false),
            ("{now.hour: {min: 9, max: 9}}", true),
            ("{attributes: {tz-offset-minutes: \"60\"}}", true),
            ("{attributes: {tz-offset-minutes: [null, \"0\"]}}", false),
            ("{attributes: {other: null}}", true),
            ("{task: file-recovery, subject.kind: service}", false),
        ] {
            assert_eq!(when(yaml).matches(&r), expected, "{yaml}");
        }
        let mut none = r.clone();
        none.ticket = None;
        none.subject.mfa_at = None;
        assert!(when("{ticket.state: none}").matches(&none));
        assert!(when("{ticket.assignee: none}").matches(&none));
        assert!(!when("{ticket.priority: [1, 2, 3, 4, 5]}").matches(&none));
        assert!(!when("{subject.mfa-age: {min: 0}}").matches(&none));
    }

    #[test]
    fn never_and_always_and_unless() {
        let props = parse(
            "properties:
  - never: {outcome: allow, when: {ticket.state: closed}}
  - always: {ttl: {max: 1800}, when: {task: file-recovery}, unless: {subject.roles: helpdesk}}
",
        )
        .expect("parse");
        let allow = Observed {
            outcome: OutcomeName::Allow,
            ttl: 3600,
            revoke_on_ticket_close: true,
            approvals: vec![],
            reasons: vec![],
            policies: vec![("file-recovery".into(), OutcomeName::Allow, Some(3600), None)],
            invalid_field: None,
        };
        assert_eq!(props[0].violated_by(&req(), &allow), Some(true));
        assert_eq!(props[0].name, "property 1");
        assert_eq!(props[0].path, "properties[0].never");
        // `unless` takes the helpdesk subject out of the second property.
        assert_eq!(props[1].violated_by(&req(), &allow), None);
        let mut sre = req();
        sre.subject.roles = vec!["sre".into()];
        assert_eq!(props[1].violated_by(&sre, &allow), Some(true));
    }

    #[test]
    fn a_policy_claim_reads_that_policys_verdict() {
        let props = parse(
            "properties:
  - always: {policy: business-hours, outcome: require-approval, approvals: {min: 1, max: 1}}
  - never: {policy: baseline, outcome: not-selected}
",
        )
        .expect("parse");
        let o = Observed {
            outcome: OutcomeName::Deny,
            ttl: 0,
            revoke_on_ticket_close: false,
            approvals: vec![],
            reasons: vec![],
            policies: vec![
                (
                    "baseline".into(),
                    OutcomeName::Deny,
                    None,
                    Some("no".into()),
                ),
                (
                    "business-hours".into(),
                    OutcomeName::RequireApproval,
                    Some(3600),
                    None,
                ),
            ],
            invalid_field: None,
        };
        assert_eq!(props[0].violated_by(&req(), &o), Some(false));
        assert_eq!(props[1].violated_by(&req(), &o), Some(false));
        let mut alone = o.clone();
        alone.policies.remove(0);
        assert_eq!(props[1].violated_by(&req(), &alone), Some(true));
    }

    #[test]
    fn errors_name_the_field() {
        for (text, wanted) in [
            (
                "properties:\n  - never: {outcome: allow, when: {ticket.stat: closed}}\n",
                "properties[0].never.when.ticket.stat: unknown field `ticket.stat`",
            ),
            (
                "properties:\n  - never: {outcome: allow, when: {now.hour: {}}}\n",
                "properties[0].never.when.now.hour: give min, max or both",
            ),
            (
                "properties:\n  - always: {revoke-on-ticket-close: true, policy: baseline}\n",
                "properties[0].always.revoke-on-ticket-close",
            ),
            (
                "properties:\n  - always: {outcome: allow, sets-with: []}\n",
                "properties[0].always.sets-with: the list is empty",
            ),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.0.contains(wanted), "{text}: {e}");
        }
    }

    #[test]
    fn weekdays_follow_the_calendar() {
        // 1970-01-01 was a Thursday; 2026-11-28 a Saturday.
        assert_eq!(Weekday::of(0), Weekday::Thursday);
        assert_eq!(Weekday::of(1_795_824_000), Weekday::Saturday);
        assert_eq!(Weekday::of(1_795_824_000 - 1), Weekday::Friday);
    }
}
