//! What a decision amounts to for replay, and how two of them differ: a
//! pure function of the recorded and candidate answers, so the rules that
//! call a change "widening" are tested without wasm or a store.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::decision::{ApprovalRequirement, Decision, Outcome, TraceVerdict};
use crate::request::RequestError;

/// A column (or row) of the transition matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Granted at once.
    Allow,
    /// Granted once approved.
    RequireApproval,
    /// Refused.
    Deny,
    /// Refused before any policy ran: the request is not valid for the set
    /// (most often a task no policy of it declares).
    Invalid,
}

impl Answer {
    /// Every answer, in the matrix's order.
    pub const ALL: [Answer; 4] = [
        Answer::Allow,
        Answer::RequireApproval,
        Answer::Deny,
        Answer::Invalid,
    ];

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Allow => "allow",
            Answer::RequireApproval => "require-approval",
            Answer::Deny => "deny",
            Answer::Invalid => "invalid",
        }
    }

    /// How much access it gives: nothing (deny, invalid), access once
    /// approved, access now.
    fn access(self) -> u8 {
        match self {
            Answer::Deny | Answer::Invalid => 0,
            Answer::RequireApproval => 1,
            Answer::Allow => 2,
        }
    }

    /// Whether a grant follows (at once or once approved).
    fn grants(self) -> bool {
        self.access() > 0
    }
}

impl From<Outcome> for Answer {
    fn from(o: Outcome) -> Answer {
        match o {
            Outcome::Allow => Answer::Allow,
            Outcome::RequireApproval => Answer::RequireApproval,
            Outcome::Deny => Answer::Deny,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One policy's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyPart {
    /// The policy's name.
    pub name: String,
    /// What it answered.
    pub verdict: TraceVerdict,
    /// The TTL it offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

/// What a decision amounts to: the parts replay compares, and what
/// explains them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Verdict {
    /// The answer.
    pub outcome: Answer,
    /// Seconds granted (0 unless a grant follows).
    pub ttl: u32,
    /// Approval requirements (require-approval only), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRequirement>,
    /// The grant ends with its ticket.
    #[serde(default)]
    pub revoke_on_ticket_close: bool,
    /// Why the request was invalid (`field: message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// Each selected policy's verdict, in evaluation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyPart>,
    /// The digest of the set that decided (empty if not recorded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_set: String,
}

impl Verdict {
    /// What a decision amounts to.
    pub fn decided(
        outcome: Outcome,
        ttl: u32,
        approvals: &[ApprovalRequirement],
        revoke_on_ticket_close: bool,
        policies: Vec<PolicyPart>,
        policy_set: String,
    ) -> Verdict {
        let outcome = Answer::from(outcome);
        let grants = outcome.grants();
        let mut approvals: Vec<ApprovalRequirement> = if outcome == Answer::RequireApproval {
            approvals
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    a.groups.sort();
                    a.groups.dedup();
                    a
                })
                .collect()
        } else {
            Vec::new()
        };
        approvals.sort_by(|a, b| (&a.policy, &a.groups, a.min).cmp(&(&b.policy, &b.groups, b.min)));
        Verdict {
            outcome,
            ttl: if grants { ttl } else { 0 },
            approvals,
            revoke_on_ticket_close: grants && revoke_on_ticket_close,
            invalid: None,
            policies,
            policy_set,
        }
    }

    /// What an engine's answer amounts to.
    pub fn of(result: &Result<Decision, RequestError>) -> Verdict {
        match result {
            Ok(d) => Verdict::decided(
                d.outcome,
                d.ttl,
                &d.approvals,
                d.revoke_on_ticket_close,
                d.policies
                    .iter()
                    .map(|p| PolicyPart {
                        name: p.name.clone(),
                        verdict: p.verdict,
                        ttl: p.ttl,
                    })
                    .collect(),
                d.policy_set.clone(),
            ),
            Err(e) => Verdict::invalid(&e.field, &e.message, String::new()),
        }
    }

    /// A request refused as invalid.
    pub fn invalid(field: &str, message: &str, policy_set: String) -> Verdict {
        Verdict {
            outcome: Answer::Invalid,
            ttl: 0,
            approvals: Vec::new(),
            revoke_on_ticket_close: false,
            invalid: Some(format!("{field}: {message}")),
            policies: Vec::new(),
            policy_set,
        }
    }

    /// Total distinct approvers needed.
    fn approvers(&self) -> u32 {
        self.approvals.iter().map(|a| u32::from(a.min)).sum()
    }

    /// The verdict of the policy `name` (`None`: not selected).
    pub fn policy(&self, name: &str) -> Option<&PolicyPart> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// One way a decision changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Aspect {
    /// `outcome`, `ttl`, `approvals` or `revoke-on-ticket-close`.
    pub what: String,
    /// Recorded → candidate, in words.
    pub change: String,
    /// Whether it gives more access than the recorded decision did.
    pub widens: bool,
}

fn aspect(what: &str, change: String, widens: bool) -> Aspect {
    Aspect {
        what: what.into(),
        change,
        widens,
    }
}

/// Every way `new` differs from `old` as a decision (outcome, TTL,
/// approval requirements, revoke-on-ticket-close); empty when the candidate
/// decides the same. Policy traces and reasons are not compared: the same
/// decision for other reasons is no change in access.
///
/// Widening: more access by outcome (deny or invalid → require-approval or
/// allow, require-approval → allow); a longer TTL on a grant; fewer
/// approvers, or an approval requirement dropped or loosened (a lower
/// `min`, or groups that were not allowed to approve before); a grant no
/// longer revoked when its ticket closes.
pub fn compare(old: &Verdict, new: &Verdict) -> Vec<Aspect> {
    let mut out = Vec::new();
    if old.outcome != new.outcome {
        out.push(aspect(
            "outcome",
            format!("{} → {}", old.outcome, new.outcome),
            new.outcome.access() > old.outcome.access(),
        ));
    }
    let both_grant = old.outcome.grants() && new.outcome.grants();
    if both_grant && old.ttl != new.ttl {
        let longer = new.ttl > old.ttl;
        out.push(aspect(
            "ttl",
            format!(
                "{} s → {} s ({})",
                old.ttl,
                new.ttl,
                if longer { "longer" } else { "shorter" }
            ),
            longer,
        ));
    }
    if old.outcome == Answer::RequireApproval
        && new.outcome == Answer::RequireApproval
        && old.approvals != new.approvals
    {
        let (before, after) = (old.approvers(), new.approvers());
        let loosened = old.approvals.iter().any(|r| !kept(r, &new.approvals));
        let words = if after < before {
            format!("{before} → {after} approver(s) (fewer)")
        } else if after > before {
            format!("{before} → {after} approver(s) (more)")
        } else {
            format!("{before} approver(s), requirements changed")
        };
        out.push(aspect(
            "approvals",
            format!(
                "{words}: [{}] → [{}]",
                describe(&old.approvals),
                describe(&new.approvals)
            ),
            after < before || loosened,
        ));
    }
    if both_grant && old.revoke_on_ticket_close != new.revoke_on_ticket_close {
        let on = |b: bool| if b { "on" } else { "off" };
        out.push(aspect(
            "revoke-on-ticket-close",
            format!(
                "{} → {}",
                on(old.revoke_on_ticket_close),
                on(new.revoke_on_ticket_close)
            ),
            !new.revoke_on_ticket_close,
        ));
    }
    out
}

/// Whether `r` still holds in `new`: the same policy asks for at least as
/// many approvers, from no group `r` did not already allow.
fn kept(r: &ApprovalRequirement, new: &[ApprovalRequirement]) -> bool {
    let allowed: BTreeSet<&String> = r.groups.iter().collect();
    new.iter().any(|n| {
        n.policy == r.policy && n.min >= r.min && n.groups.iter().all(|g| allowed.contains(g))
    })
}

/// `policy: N of g1|g2; …`.
pub fn describe(reqs: &[ApprovalRequirement]) -> String {
    reqs.iter()
        .map(|a| format!("{}: {} of {}", a.policy, a.min, a.groups.join("|")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(policy: &str, groups: &[&str], min: u8) -> ApprovalRequirement {
        ApprovalRequirement {
            policy: policy.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            min,
        }
    }

    fn v(outcome: Outcome, ttl: u32, approvals: &[ApprovalRequirement], revoke: bool) -> Verdict {
        Verdict::decided(outcome, ttl, approvals, revoke, Vec::new(), String::new())
    }

    fn widening(old: &Verdict, new: &Verdict) -> Vec<String> {
        compare(old, new)
            .into_iter()
            .filter(|a| a.widens)
            .map(|a| a.what)
            .collect()
    }

    #[test]
    fn the_same_decision_is_no_change() {
        let a = v(Outcome::Allow, 600, &[], true);
        assert!(compare(&a, &a.clone()).is_empty());
        let i = Verdict::invalid("task", "unknown", String::new());
        let j = Verdict::invalid("task", "other words", "sha256:x".into());
        assert!(compare(&i, &j).is_empty());
        // A deny's TTL and flags are not part of it.
        let d1 = v(Outcome::Deny, 0, &[req("p", &["g"], 1)], true);
        let d2 = v(Outcome::Deny, 0, &[], false);
        assert!(compare(&d1, &d2).is_empty());
        // Approval requirements compare as sets, groups in any order.
        let r1 = v(
            Outcome::RequireApproval,
            60,
            &[req("a", &["x", "y"], 1), req("b", &["z"], 2)],
            false,
        );
        let r2 = v(
            Outcome::RequireApproval,
            60,
            &[req("b", &["z"], 2), req("a", &["y", "x"], 1)],
            false,
        );
        assert!(compare(&r1, &r2).is_empty());
    }

    #[test]
    fn more_access_by_outcome_widens_and_less_does_not() {
        let allow = v(Outcome::Allow, 600, &[], false);
        let approval = v(Outcome::RequireApproval, 600, &[req("p", &["g"], 1)], false);
        let deny = v(Outcome::Deny, 0, &[], false);
        let invalid = Verdict::invalid("task", "unknown", String::new());
        for (old, new) in [
            (&deny, &allow),
            (&deny, &approval),
            (&approval, &allow),
            (&invalid, &allow),
            (&invalid, &approval),
        ] {
            assert_eq!(widening(old, new), vec!["outcome"], "{old:?} → {new:?}");
        }
        for (old, new) in [
            (&allow, &deny),
            (&allow, &approval),
            (&approval, &deny),
            (&allow, &invalid),
            (&deny, &invalid),
            (&invalid, &deny),
        ] {
            let c = compare(old, new);
            assert_eq!(c.len(), 1, "{c:?}");
            assert!(!c[0].widens, "{old:?} → {new:?}");
        }
    }

    #[test]
    fn a_longer_ttl_widens_a_shorter_one_narrows() {
        let a = v(Outcome::Allow, 600, &[], false);
        let b = v(Outcome::Allow, 1800, &[], false);
        assert_eq!(widening(&a, &b), vec!["ttl"]);
        let c = compare(&b, &a);
        assert_eq!(c[0].change, "1800 s → 600 s (shorter)");
        assert!(!c[0].widens);
        // Approval → allow with a shorter TTL still widens, by outcome.
        let ap = v(
            Outcome::RequireApproval,
            1800,
            &[req("p", &["g"], 1)],
            false,
        );
        assert_eq!(widening(&ap, &a), vec!["outcome"]);
    }

    #[test]
    fn fewer_or_looser_approvals_widen() {
        let two = v(Outcome::RequireApproval, 60, &[req("p", &["g"], 2)], false);
        let one = v(Outcome::RequireApproval, 60, &[req("p", &["g"], 1)], false);
        assert_eq!(widening(&two, &one), vec!["approvals"]);
        assert!(widening(&one, &two).is_empty());
        // Same count, but a group that could not approve now can.
        let wider = v(
            Outcome::RequireApproval,
            60,
            &[req("p", &["g", "h"], 2)],
            false,
        );
        assert_eq!(widening(&two, &wider), vec!["approvals"]);
        assert!(widening(&wider, &two).is_empty());
        // One policy's requirement dropped, another's added: widens.
        let other = v(Outcome::RequireApproval, 60, &[req("q", &["g"], 2)], false);
        assert_eq!(widening(&two, &other), vec!["approvals"]);
    }

    #[test]
    fn a_grant_outliving_its_ticket_widens() {
        let on = v(Outcome::Allow, 60, &[], true);
        let off = v(Outcome::Allow, 60, &[], false);
        assert_eq!(widening(&on, &off), vec!["revoke-on-ticket-close"]);
        assert!(widening(&off, &on).is_empty());
    }
}
