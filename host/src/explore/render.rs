//! A counterexample as a fixture file `jitgate test` reads: the set's
//! `policies:` and `settings:`, and one case with the complete request and,
//! as its `expect`, what the policies answer now. Pasted into a
//! `fixtures/*.yaml`, it passes (it reproduces the violation); changed to
//! what the policies should answer, it fails until they are fixed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::properties::{Observed, OutcomeName};
use crate::fixture::model::Settings;
use crate::request::{Attributes, Request, Subject, Ticket, Timestamp};

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct FileOut<'a> {
    policies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<SettingsOut>,
    cases: Vec<CaseOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SettingsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    global_ttl_cap: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tasks: BTreeMap<String, TaskOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct TaskOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    cap: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    revoke_on_ticket_close: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct CaseOut<'a> {
    name: String,
    request: RequestOut<'a>,
    expect: ExpectOut,
}

/// The request without its id (a case's id defaults to its name).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RequestOut<'a> {
    subject: &'a Subject,
    task: &'a str,
    resource: &'a str,
    entitlement: &'a str,
    justification: &'a str,
    requested_ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<&'a Ticket>,
    #[serde(with = "crate::request::timestamp")]
    now: Timestamp,
    #[serde(skip_serializing_if = "Attributes::is_empty")]
    attributes: &'a Attributes,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ExpectOut {
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoke_on_ticket_close: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<Vec<ApprovalOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    policies: BTreeMap<String, &'static str>,
}

#[derive(Serialize)]
struct ApprovalOut {
    groups: Vec<String>,
    min: u8,
}

/// The fixture file for `request` decided as `observed` in the set
/// (`policies` as its fixture names them, `settings`); the case is named
/// `case`.
pub fn fixture_yaml(
    policies: &[String],
    settings: &Settings,
    case: &str,
    request: &Request,
    observed: &Observed,
) -> Result<String, serde_norway::Error> {
    let settings =
        (settings.global_ttl_cap.is_some() || !settings.tasks.is_empty()).then(|| SettingsOut {
            global_ttl_cap: settings.global_ttl_cap,
            tasks: settings
                .tasks
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        TaskOut {
                            cap: t.cap,
                            revoke_on_ticket_close: t.revoke_on_ticket_close,
                        },
                    )
                })
                .collect(),
        });
    let invalid = observed.outcome == OutcomeName::Invalid;
    let expect = ExpectOut {
        outcome: observed.outcome.as_str(),
        ttl: (!invalid).then_some(observed.ttl),
        revoke_on_ticket_close: (!invalid).then_some(observed.revoke_on_ticket_close),
        approvals: (observed.outcome == OutcomeName::RequireApproval).then(|| {
            observed
                .approvals
                .iter()
                .map(|(_, groups, min)| ApprovalOut {
                    groups: groups.clone(),
                    min: *min,
                })
                .collect()
        }),
        field: observed.invalid_field.clone(),
        policies: observed
            .policies
            .iter()
            .map(|(name, verdict, _, _)| (name.clone(), verdict.as_str()))
            .collect(),
    };
    let file = FileOut {
        policies,
        settings,
        cases: vec![CaseOut {
            name: case.to_string(),
            request: RequestOut {
                subject: &request.subject,
                task: &request.task,
                resource: &request.resource,
                entitlement: &request.entitlement,
                justification: &request.justification,
                requested_ttl: request.requested_ttl,
                ticket: request.ticket.as_ref(),
                now: request.now,
                attributes: &request.attributes,
            },
            expect,
        }],
    };
    serde_norway::to_string(&file)
}
