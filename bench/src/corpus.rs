//! The requests every way is checked on and timed with: the fixture cases
//! of `file-recovery` and `business-hours` whose task is `file-recovery`
//! and whose request is valid (cases that test validation decide nothing).

use anyhow::{Context, Result};
use std::path::Path;

use jitgate::fixture::model::{ExpectedOutcome, FixtureFile};

/// One fixture case, merged into a complete request.
pub struct Case {
    /// Fixture file, relative to the repository.
    pub file: String,
    /// Case name.
    pub name: String,
    /// The request.
    pub request: jitgate::Request,
}

const FILES: [&str; 3] = [
    "policies/file-recovery/fixtures/file-recovery.yaml",
    "policies/business-hours/fixtures/business-hours.yaml",
    "policies/business-hours/fixtures/business-hours-without-grantor.yaml",
];

/// Every relevant case of [`FILES`].
pub fn load(root: &Path) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for file in FILES {
        let text = std::fs::read_to_string(root.join(file)).with_context(|| file.to_string())?;
        let fixture: FixtureFile =
            serde_norway::from_str(&text).with_context(|| file.to_string())?;
        for case in fixture.cases {
            if case.expect.outcome == ExpectedOutcome::Invalid {
                continue;
            }
            let mut patch = fixture.defaults.clone();
            patch.merge(case.request);
            let Ok(request) = patch.into_request(&case.name) else {
                continue;
            };
            if request.task != "file-recovery" {
                continue;
            }
            out.push(Case {
                file: file.to_string(),
                name: case.name,
                request,
            });
        }
    }
    anyhow::ensure!(out.len() >= 20, "only {} relevant fixture cases", out.len());
    Ok(out)
}

/// A ticket state as the contract spells it.
pub fn state(s: jitgate::request::TicketState) -> &'static str {
    use jitgate::request::TicketState;
    match s {
        TicketState::Open => "open",
        TicketState::InProgress => "in-progress",
        TicketState::OnHold => "on-hold",
        TicketState::Resolved => "resolved",
        TicketState::Closed => "closed",
    }
}
