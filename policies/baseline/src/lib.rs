//! `baseline`: the hygiene every request must meet, whatever its task.
//!
//! It never grants anything itself (it answers `not-applicable` when the
//! request is sound), so it must be combined with a policy that does. It
//! denies, in this order, when:
//! 1. there is no ticket and the task is not `break-glass`;
//! 2. the ticket is `resolved` or `closed`;
//! 3. the trimmed justification is shorter than 10 characters;
//! 4. the requested TTL is over 8 hours (28800 s).
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest grant any request may ask for, in seconds (8 hours).
pub const CAP: u32 = 28_800;

/// Fewest characters (after trimming) a justification may have.
pub const MIN_JUSTIFICATION_CHARS: usize = 10;

/// The one task that may proceed without a ticket.
pub const BREAK_GLASS_TASK: &str = "break-glass";

/// The policy.
pub struct Baseline;

impl Policy for Baseline {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "baseline",
            "0.1.0",
            "every request needs a live ticket (except break-glass), a real justification and a TTL of at most 8 hours",
            &["*"],
            CAP,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        match &req.ticket {
            None if req.task != BREAK_GLASS_TASK => {
                return Verdict::deny(format!(
                    "a ticket is required for task {}: only break-glass may proceed without one, \
                     so link the ticket this work is for and ask again",
                    req.task
                ));
            }
            Some(t) if t.state.is_finished() => {
                return Verdict::deny(format!(
                    "ticket {} is {}, so it can no longer justify new access; \
                     reopen it or open a new ticket",
                    t.id,
                    state_name(t.state)
                ));
            }
            _ => {}
        }
        let chars = req.justification_chars();
        if chars < MIN_JUSTIFICATION_CHARS {
            return Verdict::deny(format!(
                "the justification is too short ({chars} characters after trimming); \
                 write at least {MIN_JUSTIFICATION_CHARS} characters saying why you need this access"
            ));
        }
        if req.requested_ttl > CAP {
            return Verdict::deny(format!(
                "the requested TTL of {} seconds exceeds the {CAP}-second (8-hour) maximum \
                 for any grant; ask for {CAP} seconds or less",
                req.requested_ttl
            ));
        }
        Verdict::not_applicable()
    }
}

/// The ticket state as the contract spells it.
fn state_name(state: TicketState) -> &'static str {
    match state {
        TicketState::Open => "open",
        TicketState::InProgress => "in-progress",
        TicketState::OnHold => "on-hold",
        TicketState::Resolved => "resolved",
        TicketState::Closed => "closed",
    }
}

export_policy!(Baseline);

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_sdk::testing::{RequestBuilder, expect_deny};

    fn eval(b: RequestBuilder) -> Verdict {
        Baseline::evaluate(&b.build())
    }

    #[test]
    fn info_covers_every_task_with_an_eight_hour_cap() {
        let info = Baseline::info();
        assert_eq!(info.name, "baseline");
        assert_eq!(info.version, "0.1.0");
        assert_eq!(info.tasks, ["*"]);
        assert_eq!(info.max_ttl, 28_800);
    }

    #[test]
    fn sound_request_is_not_applicable() {
        assert_eq!(
            eval(RequestBuilder::new("file-recovery")),
            Verdict::NotApplicable
        );
    }

    #[test]
    fn missing_ticket_is_denied_for_ordinary_tasks() {
        let r = expect_deny(eval(RequestBuilder::new("file-recovery").no_ticket()));
        assert!(
            r.contains("a ticket is required for task file-recovery"),
            "{r}"
        );
        assert!(r.contains("only break-glass"), "{r}");
    }

    #[test]
    fn break_glass_needs_no_ticket() {
        let req = RequestBuilder::new("break-glass").no_ticket();
        assert_eq!(eval(req), Verdict::NotApplicable);
    }

    #[test]
    fn break_glass_still_gets_the_other_checks() {
        let r = expect_deny(eval(
            RequestBuilder::new("break-glass")
                .no_ticket()
                .justification("fire"),
        ));
        assert!(r.contains("too short (4 characters"), "{r}");
        let r = expect_deny(eval(
            RequestBuilder::new("break-glass")
                .no_ticket()
                .requested_ttl(28_801),
        ));
        assert!(r.contains("28801 seconds"), "{r}");
    }

    #[test]
    fn finished_tickets_are_denied() {
        for (state, word) in [
            (TicketState::Resolved, "resolved"),
            (TicketState::Closed, "closed"),
        ] {
            let r = expect_deny(eval(
                RequestBuilder::new("file-recovery").ticket(state, 3, None),
            ));
            assert!(r.contains(&format!("ticket INC-1 is {word}")), "{r}");
        }
        // A finished ticket cannot back a break-glass request either.
        let req = RequestBuilder::new("break-glass").ticket(TicketState::Closed, 1, None);
        assert!(eval(req).is_deny());
    }

    #[test]
    fn live_ticket_states_pass() {
        for state in [
            TicketState::Open,
            TicketState::InProgress,
            TicketState::OnHold,
        ] {
            let req = RequestBuilder::new("file-recovery").ticket(state, 3, None);
            assert_eq!(eval(req), Verdict::NotApplicable, "{state:?}");
        }
    }

    #[test]
    fn justification_of_nine_characters_is_denied_ten_passes() {
        let r = expect_deny(eval(
            RequestBuilder::new("file-recovery").justification("db outage"),
        ));
        assert!(r.contains("9 characters after trimming"), "{r}");
        assert!(r.contains("at least 10 characters"), "{r}");
        let ok = RequestBuilder::new("file-recovery").justification("db outages");
        assert_eq!(eval(ok), Verdict::NotApplicable);
    }

    #[test]
    fn justification_is_measured_after_trimming() {
        let padded9 = RequestBuilder::new("file-recovery").justification("  \t db outage \n ");
        assert!(expect_deny(eval(padded9)).contains("9 characters"));
        let padded10 = RequestBuilder::new("file-recovery").justification("   db outages   ");
        assert_eq!(eval(padded10), Verdict::NotApplicable);
        let blank = RequestBuilder::new("file-recovery").justification("            ");
        assert!(expect_deny(eval(blank)).contains("0 characters"));
        let empty = RequestBuilder::new("file-recovery").justification("");
        assert!(eval(empty).is_deny());
    }

    #[test]
    fn justification_counts_characters_not_bytes() {
        // 10 characters, 12 bytes.
        let ok = RequestBuilder::new("file-recovery").justification("überprüfen");
        assert_eq!(eval(ok), Verdict::NotApplicable);
        // 9 characters, 11 bytes.
        let short = RequestBuilder::new("file-recovery").justification("überprüfe");
        assert!(expect_deny(eval(short)).contains("9 characters"));
    }

    #[test]
    fn ttl_up_to_the_cap_passes_one_more_is_denied() {
        for ttl in [1, 1800, 28_800] {
            let req = RequestBuilder::new("file-recovery").requested_ttl(ttl);
            assert_eq!(eval(req), Verdict::NotApplicable, "{ttl}");
        }
        let r = expect_deny(eval(
            RequestBuilder::new("file-recovery").requested_ttl(28_801),
        ));
        assert!(r.contains("28801 seconds exceeds the 28800-second"), "{r}");
        assert!(eval(RequestBuilder::new("file-recovery").requested_ttl(u32::MAX)).is_deny());
    }

    #[test]
    fn checks_run_in_order_ticket_first() {
        let req = RequestBuilder::new("file-recovery")
            .no_ticket()
            .justification("x")
            .requested_ttl(99_999);
        assert!(expect_deny(eval(req)).contains("a ticket is required"));
        let req = RequestBuilder::new("file-recovery")
            .justification("x")
            .requested_ttl(99_999);
        assert!(expect_deny(eval(req)).contains("too short"));
    }

    #[test]
    fn never_allows_and_never_logs() {
        let _ = jitgate_sdk::testing::take_logs();
        let v = eval(RequestBuilder::new("saas-admin"));
        assert!(!matches!(
            v,
            Verdict::Allow(_) | Verdict::RequireApproval(_)
        ));
        assert!(jitgate_sdk::testing::take_logs().is_empty());
    }
}
