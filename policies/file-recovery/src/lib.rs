//! `file-recovery`: a helpdesk engineer may restore files for a ticket they
//! are working on, for at most an hour, and the access ends with the ticket.
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest file-recovery grant, in seconds.
pub const CAP: u32 = 3600;

/// The policy.
pub struct FileRecovery;

impl Policy for FileRecovery {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "file-recovery",
            "0.1.0",
            "helpdesk may recover files for an active ticket assigned to them",
            &["file-recovery"],
            CAP,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        if !req.subject.has_role("helpdesk") {
            return Verdict::deny("file recovery requires the helpdesk role");
        }
        let Some(ticket) = req.ticket.as_ref().filter(|t| t.is_active()) else {
            return Verdict::deny("file recovery requires an open or in-progress ticket");
        };
        if let Some(assignee) = &ticket.assignee
            && *assignee != req.subject.id
        {
            return Verdict::deny(format!(
                "ticket {} is assigned to {assignee}, not to {}",
                ticket.id, req.subject.id
            ));
        }
        Verdict::allow_until_ticket_closed(
            clamp_ttl(req.requested_ttl, CAP),
            format!("helpdesk file recovery for ticket {}", ticket.id),
        )
    }
}

export_policy!(FileRecovery);

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_sdk::testing::RequestBuilder;

    #[test]
    fn helpdesk_on_own_ticket_is_allowed_and_capped() {
        let v = FileRecovery::evaluate(
            &RequestBuilder::new("file-recovery")
                .requested_ttl(7200)
                .build(),
        );
        assert_eq!(
            v,
            Verdict::allow_until_ticket_closed(3600, "helpdesk file recovery for ticket INC-1")
        );
    }

    #[test]
    fn other_assignee_is_denied() {
        let req = RequestBuilder::new("file-recovery")
            .ticket(TicketState::InProgress, 3, Some("bob"))
            .build();
        assert!(FileRecovery::evaluate(&req).is_deny());
    }
}
