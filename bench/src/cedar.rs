//! The rules in Cedar (`bench/rules/*.cedar`), evaluated as an integration
//! would: policies parsed once; the principal entity, the request and its
//! context built for every decision.
//!
//! Cedar answers permit or deny, so the integration adds what the contract
//! has and Cedar has not: the TTL (`@max_ttl` of the permitting policies),
//! require-approval (a second policy set, asked once the main set permits)
//! and the context values Cedar cannot compute (local weekday and hour,
//! the trimmed justification's length). That work is inside the timing.

use anyhow::{Context as _, Result};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, Response, RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use jitgate_sdk::{LocalTime, Weekday, parse_tz_offset};

use crate::{Answer, Rule};

/// Parsed policy sets and the fixed parts of every request.
pub struct Rules {
    file_recovery: PolicySet,
    main: PolicySet,
    escalation: PolicySet,
    authorizer: Authorizer,
    user: EntityTypeName,
    resource: EntityTypeName,
    action: EntityUid,
}

fn read(dir: &Path, names: &[&str]) -> Result<PolicySet> {
    let mut text = String::new();
    for n in names {
        text.push_str(&std::fs::read_to_string(dir.join(n)).with_context(|| n.to_string())?);
        text.push('\n');
    }
    PolicySet::from_str(&text).map_err(|e| anyhow::anyhow!("{names:?}: {e}"))
}

impl Rules {
    /// Parse the `.cedar` files in `dir`.
    pub fn load(dir: &Path) -> Result<Rules> {
        Ok(Rules {
            file_recovery: read(dir, &["file-recovery.cedar"])?,
            main: read(
                dir,
                &[
                    "baseline.cedar",
                    "file-recovery.cedar",
                    "business-hours.cedar",
                ],
            )?,
            escalation: read(dir, &["business-hours-escalation.cedar"])?,
            authorizer: Authorizer::new(),
            user: EntityTypeName::from_str("User")?,
            resource: EntityTypeName::from_str("Resource")?,
            action: EntityUid::from_str(r#"Action::"request""#)?,
        })
    }

    /// Decide `req` under `rule`.
    pub fn answer(&self, rule: Rule, req: &jitgate::Request) -> Result<Answer> {
        let (request, entities) = self.request(req)?;
        let set = match rule {
            Rule::FileRecovery => &self.file_recovery,
            Rule::Composed => &self.main,
        };
        let main = self.authorizer.is_authorized(&request, set, &entities);
        if main.decision() == Decision::Deny {
            return Ok(Answer::DENY);
        }
        let ttl = max_ttl(set, &main).min(req.requested_ttl);
        if rule == Rule::Composed {
            let esc = self
                .authorizer
                .is_authorized(&request, &self.escalation, &entities);
            if esc.decision() == Decision::Allow {
                // Approvers come from @approvers; the answer compared here is
                // outcome and TTL, which is what all five ways express.
                return Ok(Answer {
                    outcome: "require-approval",
                    ttl: Some(ttl.min(max_ttl(&self.escalation, &esc))),
                });
            }
        }
        Ok(Answer {
            outcome: "allow",
            ttl: Some(ttl),
        })
    }

    fn request(&self, req: &jitgate::Request) -> Result<(Request, Entities)> {
        let principal =
            EntityUid::from_type_name_and_id(self.user.clone(), EntityId::new(&req.subject.id));
        let roles = RestrictedExpression::new_set(
            req.subject
                .roles
                .iter()
                .map(|r| RestrictedExpression::new_string(r.clone())),
        );
        let entity = Entity::new(
            principal.clone(),
            HashMap::from([("roles".to_string(), roles)]),
            HashSet::new(),
        )?;
        let entities = Entities::from_entities([entity], None)?;

        let mut ctx: Vec<(String, RestrictedExpression)> = vec![
            (
                "task".into(),
                RestrictedExpression::new_string(req.task.clone()),
            ),
            (
                "subject_id".into(),
                RestrictedExpression::new_string(req.subject.id.clone()),
            ),
            (
                "requested_ttl".into(),
                RestrictedExpression::new_long(req.requested_ttl.into()),
            ),
            (
                "justification_chars".into(),
                RestrictedExpression::new_long(req.justification.trim().chars().count() as i64),
            ),
        ];
        if let Some(t) = &req.ticket {
            let mut fields = vec![
                (
                    "id".to_string(),
                    RestrictedExpression::new_string(t.id.clone()),
                ),
                (
                    "state".to_string(),
                    RestrictedExpression::new_string(crate::corpus::state(t.state).to_string()),
                ),
            ];
            if let Some(a) = &t.assignee {
                fields.push((
                    "assignee".to_string(),
                    RestrictedExpression::new_string(a.clone()),
                ));
            }
            ctx.push(("ticket".into(), RestrictedExpression::new_record(fields)?));
        }
        let offset = parse_tz_offset(req.attributes.get("tz-offset-minutes"));
        ctx.push((
            "local_known".into(),
            RestrictedExpression::new_bool(offset.is_ok()),
        ));
        let local = LocalTime::at(req.now, offset.unwrap_or(0));
        ctx.push((
            "local_weekday".into(),
            RestrictedExpression::new_long(weekday(local.weekday)),
        ));
        ctx.push((
            "local_hour".into(),
            RestrictedExpression::new_long(local.hour.into()),
        ));
        let context = Context::from_pairs(ctx)?;

        let resource =
            EntityUid::from_type_name_and_id(self.resource.clone(), EntityId::new(&req.resource));
        let request = Request::new(principal, self.action.clone(), resource, context, None)?;
        Ok((request, entities))
    }
}

/// Least `@max_ttl` among the policies that permitted.
fn max_ttl(set: &PolicySet, resp: &Response) -> u32 {
    resp.diagnostics()
        .reason()
        .filter_map(|id| set.policy(id)?.annotation("max_ttl")?.parse().ok())
        .min()
        .unwrap_or(u32::MAX)
}

fn weekday(d: Weekday) -> i64 {
    match d {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}
