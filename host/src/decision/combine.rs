//! Deny-overrides, default-deny combination with TTL clamping.
//!
//! * any deny or any policy failure → deny, every reason kept;
//! * else any require-approval → require-approval, one requirement per policy;
//! * else any allow → allow;
//! * else (nothing applicable, or nothing selected) → deny.
//!
//! TTL = min(each allow/approval ttl, requested-ttl, each selected policy's
//! max-ttl, the task's cap, the global cap); 0 denies. `revoke-on-ticket-close`
//! is the OR of the allows, or forced on by config.

use super::{ApprovalRequirement, Decision, Outcome, PolicyTrace};
use crate::policy::Verdict;
use crate::policy::sandbox::PolicyFailure;

/// The reason given when no policy allows.
pub const NO_POLICY_PERMITS: &str = "no policy permits this request";

/// One policy's contribution.
pub struct Input<'a> {
    /// Policy name.
    pub name: &'a str,
    /// Its declared max-ttl.
    pub max_ttl: u32,
    /// What it answered.
    pub result: &'a Result<Verdict, PolicyFailure>,
}

/// The host-side caps.
pub struct Caps {
    /// What the requester asked for.
    pub requested_ttl: u32,
    /// Per-task cap from config.
    pub task_cap: Option<u32>,
    /// Global cap from config.
    pub global_cap: u32,
    /// Config forces revoke-on-ticket-close for this task.
    pub force_revoke_on_ticket_close: bool,
}

/// Combine. `traces` are filled in by the caller; this sets the rest.
pub fn combine(request_id: &str, task: &str, inputs: &[Input<'_>], caps: &Caps) -> Decision {
    let mut denies = Vec::new();
    let mut approvals = Vec::new();
    let mut approval_reasons = Vec::new();
    let mut allow_reasons = Vec::new();
    let mut revoke = caps.force_revoke_on_ticket_close;
    // (ttl, what bound it); ties keep the first binder found, in a stable order.
    // The label is built only when a bound binds: most policies' caps do not.
    let mut bound: (u32, String) = (caps.requested_ttl, "requested-ttl".into());
    let mut clamp = |ttl: u32, why: &dyn Fn() -> String| {
        if ttl < bound.0 {
            bound = (ttl, why());
        }
    };
    clamp(caps.global_cap, &|| "global cap".into());
    if let Some(c) = caps.task_cap {
        clamp(c, &|| format!("task cap for {task}"));
    }

    for i in inputs {
        clamp(i.max_ttl, &|| format!("policy {} max-ttl", i.name));
        match i.result {
            Err(f) => denies.push(format!("{}: policy failed: {f}", i.name)),
            Ok(Verdict::Deny { reason }) => denies.push(format!("{}: {reason}", i.name)),
            Ok(Verdict::RequireApproval {
                groups,
                min,
                ttl,
                reason,
                revoke_on_ticket_close,
            }) => {
                clamp(*ttl, &|| format!("policy {} approval ttl", i.name));
                revoke |= revoke_on_ticket_close;
                approvals.push(ApprovalRequirement {
                    policy: i.name.to_string(),
                    groups: groups.clone(),
                    min: *min,
                });
                approval_reasons.push(format!("{}: {reason}", i.name));
            }
            Ok(Verdict::Allow {
                ttl,
                reason,
                revoke_on_ticket_close,
            }) => {
                clamp(*ttl, &|| format!("policy {} ttl", i.name));
                revoke |= revoke_on_ticket_close;
                allow_reasons.push(format!("{}: {reason}", i.name));
            }
            Ok(Verdict::NotApplicable) => {}
        }
    }

    let deny = |reasons: Vec<String>| Decision {
        request_id: request_id.to_string(),
        task: task.to_string(),
        outcome: Outcome::Deny,
        ttl: 0,
        ttl_bound: None,
        revoke_on_ticket_close: false,
        approvals: Vec::new(),
        reasons,
        policies: Vec::<PolicyTrace>::new(),
        policy_set: String::new(),
        micros: 0,
    };

    if !denies.is_empty() {
        return deny(denies);
    }
    let (outcome, reasons) = if !approvals.is_empty() {
        (Outcome::RequireApproval, approval_reasons)
    } else if !allow_reasons.is_empty() {
        (Outcome::Allow, allow_reasons)
    } else {
        return deny(vec![NO_POLICY_PERMITS.to_string()]);
    };
    let (ttl, why) = bound;
    if ttl == 0 {
        return deny(vec![format!(
            "the granted duration would be 0 seconds ({why})"
        )]);
    }
    Decision {
        request_id: request_id.to_string(),
        task: task.to_string(),
        outcome,
        ttl,
        ttl_bound: Some(why),
        revoke_on_ticket_close: revoke,
        approvals: if outcome == Outcome::RequireApproval {
            approvals
        } else {
            Vec::new()
        },
        reasons,
        policies: Vec::new(),
        policy_set: String::new(),
        micros: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(ttl: u32, revoke: bool) -> Result<Verdict, PolicyFailure> {
        Ok(Verdict::Allow {
            ttl,
            reason: "ok".into(),
            revoke_on_ticket_close: revoke,
        })
    }
    fn deny(r: &str) -> Result<Verdict, PolicyFailure> {
        Ok(Verdict::Deny { reason: r.into() })
    }
    fn approval(g: &str, min: u8, ttl: u32) -> Result<Verdict, PolicyFailure> {
        Ok(Verdict::RequireApproval {
            groups: vec![g.into()],
            min,
            ttl,
            reason: format!("needs {g}"),
            revoke_on_ticket_close: false,
        })
    }
    const NA: Result<Verdict, PolicyFailure> = Ok(Verdict::NotApplicable);

    fn caps(requested: u32) -> Caps {
        Caps {
            requested_ttl: requested,
            task_cap: None,
            global_cap: 28_800,
            force_revoke_on_ticket_close: false,
        }
    }

    fn run(results: &[(&str, u32, Result<Verdict, PolicyFailure>)], caps: &Caps) -> Decision {
        let inputs: Vec<Input> = results
            .iter()
            .map(|(n, m, r)| Input {
                name: n,
                max_ttl: *m,
                result: r,
            })
            .collect();
        combine("r", "t", &inputs, caps)
    }

    #[test]
    fn nothing_selected_or_nothing_applicable_denies() {
        let d = run(&[], &caps(60));
        assert_eq!(
            (d.outcome, d.reasons[0].as_str()),
            (Outcome::Deny, NO_POLICY_PERMITS)
        );
        let d = run(&[("a", 100, NA), ("b", 100, NA)], &caps(60));
        assert_eq!(d.outcome, Outcome::Deny);
    }

    #[test]
    fn deny_overrides_allow_and_approval_keeping_every_reason() {
        let d = run(
            &[
                ("a", 100, allow(50, true)),
                ("b", 100, deny("no")),
                ("c", 100, approval("g", 1, 50)),
                ("d", 100, deny("never")),
            ],
            &caps(60),
        );
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(d.reasons, vec!["b: no".to_string(), "d: never".to_string()]);
        assert_eq!(d.ttl, 0);
        assert!(d.approvals.is_empty());
    }

    #[test]
    fn failure_denies_with_typed_reason() {
        let fail: Result<Verdict, PolicyFailure> = Err(PolicyFailure::OutOfFuel { fuel: 7 });
        let d = run(&[("a", 100, allow(50, false)), ("x", 100, fail)], &caps(60));
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(
            d.reasons,
            vec!["x: policy failed: ran out of fuel (7 units)".to_string()]
        );
    }

    #[test]
    fn approval_beats_allow_and_lists_each_requirement() {
        let d = run(
            &[
                ("a", 3600, allow(3000, true)),
                ("b", 3600, approval("owners", 1, 1800)),
                ("c", 28_800, approval("leads", 2, 3600)),
            ],
            &caps(7200),
        );
        assert_eq!(d.outcome, Outcome::RequireApproval);
        assert_eq!(d.ttl, 1800);
        assert!(d.revoke_on_ticket_close);
        assert_eq!(d.approvals.len(), 2);
        assert_eq!(
            (d.approvals[1].policy.as_str(), d.approvals[1].min),
            ("c", 2)
        );
    }

    #[test]
    fn ttl_is_min_of_every_cap() {
        let d = run(&[("a", 3600, allow(5000, false))], &caps(7200));
        assert_eq!(
            (d.ttl, d.ttl_bound.as_deref()),
            (3600, Some("policy a max-ttl"))
        );
        let d = run(&[("a", 3600, allow(3600, false))], &caps(60));
        assert_eq!((d.ttl, d.ttl_bound.as_deref()), (60, Some("requested-ttl")));
        let mut c = caps(7200);
        c.task_cap = Some(900);
        let d = run(&[("a", 3600, allow(3600, false))], &c);
        assert_eq!(
            (d.ttl, d.ttl_bound.as_deref()),
            (900, Some("task cap for t"))
        );
        let mut c = caps(90_000);
        c.global_cap = 100;
        let d = run(&[("a", 90_000, allow(90_000, false))], &c);
        assert_eq!((d.ttl, d.ttl_bound.as_deref()), (100, Some("global cap")));
        // A not-applicable policy's max-ttl still caps: it declared the task.
        let d = run(
            &[("a", 3600, allow(3600, false)), ("b", 600, NA)],
            &caps(7200),
        );
        assert_eq!(
            (d.ttl, d.ttl_bound.as_deref()),
            (600, Some("policy b max-ttl"))
        );
    }

    #[test]
    fn zero_ttl_denies() {
        let d = run(&[("a", 3600, allow(0, false))], &caps(60));
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.reasons[0].contains("0 seconds (policy a ttl)"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn revoke_flag_is_or_of_allows_or_forced() {
        let d = run(
            &[("a", 100, allow(50, false)), ("b", 100, allow(50, false))],
            &caps(60),
        );
        assert!(!d.revoke_on_ticket_close);
        let d = run(
            &[("a", 100, allow(50, false)), ("b", 100, allow(50, true))],
            &caps(60),
        );
        assert!(d.revoke_on_ticket_close);
        let mut c = caps(60);
        c.force_revoke_on_ticket_close = true;
        let d = run(&[("a", 100, allow(50, false))], &c);
        assert!(d.revoke_on_ticket_close);
    }

    #[test]
    fn an_approval_that_asks_to_end_with_the_ticket_is_kept_to_it() {
        let tied = Ok(Verdict::RequireApproval {
            groups: vec!["owners".into()],
            min: 1,
            ttl: 50,
            reason: "needs owners".into(),
            revoke_on_ticket_close: true,
        });
        let d = run(&[("a", 100, tied)], &caps(60));
        assert_eq!(d.outcome, Outcome::RequireApproval);
        assert!(d.revoke_on_ticket_close);
        let d = run(&[("a", 100, approval("owners", 1, 50))], &caps(60));
        assert!(!d.revoke_on_ticket_close);
    }
}
