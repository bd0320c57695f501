//! The rules in Rego (`bench/rules/jitgate.rego`) on regorus: the policy
//! parsed once; the input document built from the request for every
//! decision, as an integration would.

use anyhow::{Context, Result, bail};
use regorus::Value;
use std::path::Path;

use crate::{Answer, Rule};

/// An engine with the rules loaded, to clone per thread of use.
pub struct Rules {
    engine: regorus::Engine,
}

impl Rules {
    /// Parse the Rego file.
    pub fn load(path: &Path) -> Result<Rules> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy_from_file(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Rules { engine })
    }

    /// A ready engine (regorus evaluates with `&mut self`).
    pub fn engine(&self) -> regorus::Engine {
        self.engine.clone()
    }
}

/// The input document: the request's fields the rules read, kebab-case as
/// in jitgate's JSON.
fn input(req: &jitgate::Request) -> Value {
    let mut subject = serde_json::Map::new();
    subject.insert("id".into(), req.subject.id.clone().into());
    subject.insert("roles".into(), req.subject.roles.clone().into());
    let mut doc = serde_json::Map::new();
    doc.insert("subject".into(), subject.into());
    doc.insert("task".into(), req.task.clone().into());
    doc.insert("justification".into(), req.justification.clone().into());
    doc.insert("requested-ttl".into(), req.requested_ttl.into());
    doc.insert("now".into(), req.now.into());
    if let Some(t) = &req.ticket {
        let mut ticket = serde_json::Map::new();
        ticket.insert("id".into(), t.id.clone().into());
        ticket.insert("state".into(), crate::corpus::state(t.state).into());
        if let Some(a) = &t.assignee {
            ticket.insert("assignee".into(), a.clone().into());
        }
        doc.insert("ticket".into(), ticket.into());
    }
    let attrs: serde_json::Map<String, serde_json::Value> = req
        .attributes
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    doc.insert("attributes".into(), attrs.into());
    Value::from(serde_json::Value::Object(doc))
}

/// Decide `req` under `rule`.
pub fn answer(engine: &mut regorus::Engine, rule: Rule, req: &jitgate::Request) -> Result<Answer> {
    engine.set_input(input(req));
    let path = match rule {
        Rule::FileRecovery => "data.jitgate.file_recovery",
        Rule::Composed => "data.jitgate.decision",
    };
    let v = engine
        .eval_rule(path.to_string())
        .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let outcome = v["outcome"]
        .as_string()
        .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let outcome = match outcome.as_ref() {
        "deny" => return Ok(Answer::DENY),
        "allow" => "allow",
        "require-approval" => "require-approval",
        other => bail!("{path}: outcome {other}"),
    };
    let ttl = v["ttl"]
        .as_u64()
        .ok()
        .and_then(|t| u32::try_from(t).ok())
        .context("no ttl")?;
    Ok(Answer {
        outcome,
        ttl: Some(ttl),
    })
}
