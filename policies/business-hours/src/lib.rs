//! `business-hours`: outside the requester's business hours, file recovery
//! and SaaS admin access need one approval from `helpdesk-leads` (and last at
//! most an hour); inside them this policy has no opinion.
//!
//! Local time is `now` shifted by the attribute `tz-offset-minutes` (minutes
//! east of UTC, an integer in −840..=840; absent means UTC). Business hours are
//! Monday to Friday, 07:00:00 up to but not including 19:00:00. A malformed
//! offset denies: the policy cannot tell what time it is for the requester.
#![cfg_attr(target_arch = "wasm32", no_std)]

use jitgate_sdk::prelude::*;

/// The longest grant this policy will ever allow, in seconds (8 hours).
pub const MAX_TTL: u32 = 28_800;

/// The longest out-of-hours grant, in seconds (1 hour).
pub const APPROVAL_CAP: u32 = 3600;

/// First hour inside business hours.
pub const OPENS_AT: u8 = 7;

/// First hour after business hours.
pub const CLOSES_AT: u8 = 19;

/// The attribute carrying the requester's offset from UTC in minutes.
pub const TZ_ATTRIBUTE: &str = "tz-offset-minutes";

/// Who approves out-of-hours work.
pub const APPROVERS: &str = "helpdesk-leads";

/// The policy.
pub struct BusinessHours;

impl Policy for BusinessHours {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "business-hours",
            "0.1.0",
            "outside Monday-Friday 07:00-19:00 local time, a helpdesk lead must approve (at most 1 hour)",
            &["file-recovery", "saas-admin"],
            MAX_TTL,
        )
    }

    fn evaluate(req: &Request) -> Verdict {
        let raw = req.attribute(TZ_ATTRIBUTE);
        let offset = match parse_tz_offset(raw) {
            Ok(offset) => offset,
            // The SDK reports an integer too large for i64 as "not an
            // integer"; say "out of range" for it, which is what it is.
            Err(TzOffsetError::NotAnInteger) if raw.is_some_and(looks_like_integer) => {
                return Verdict::deny(format!(
                    "the {TZ_ATTRIBUTE} attribute {} is outside -840 to 840 minutes \
                     (UTC-14:00 to UTC+14:00), so the requester's local time is unknown",
                    raw.unwrap_or_default()
                ));
            }
            Err(TzOffsetError::NotAnInteger) => {
                return Verdict::deny(format!(
                    "the {TZ_ATTRIBUTE} attribute {:?} is not a whole number of minutes, so the \
                     requester's local time is unknown; send an integer from -840 to 840",
                    raw.unwrap_or_default()
                ));
            }
            Err(TzOffsetError::OutOfRange(v)) => {
                return Verdict::deny(format!(
                    "the {TZ_ATTRIBUTE} attribute {v} is outside -840 to 840 minutes \
                     (UTC-14:00 to UTC+14:00), so the requester's local time is unknown"
                ));
            }
        };
        let local = LocalTime::at(req.now, offset);
        if is_business_hours(local) {
            return Verdict::not_applicable();
        }
        Verdict::require_approval(
            &[APPROVERS],
            1,
            clamp_ttl(req.requested_ttl, APPROVAL_CAP),
            format!(
                "it is {} {:02}:{:02} for the requester ({}), outside business hours \
                 (Monday to Friday, 07:00 to 19:00), so a member of {APPROVERS} must approve",
                weekday_name(local.weekday),
                local.hour,
                local.minute,
                utc_offset(offset)
            ),
        )
    }
}

/// An optional sign followed by one or more ASCII digits.
fn looks_like_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Monday to Friday, from 07:00:00 up to 18:59:59.
pub fn is_business_hours(t: LocalTime) -> bool {
    !t.weekday.is_weekend() && (OPENS_AT..CLOSES_AT).contains(&t.hour)
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// `UTC+01:00`, `UTC-09:30`, `UTC+00:00`.
fn utc_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

export_policy!(BusinessHours);

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_sdk::testing::{RequestBuilder, expect_approval, expect_deny};

    /// 2026-11-25T00:00:00Z, a Wednesday.
    const WED: Timestamp = 1_795_564_800;
    const DAY: Timestamp = 86_400;
    const FRI: Timestamp = WED + 2 * DAY;
    const SAT: Timestamp = WED + 3 * DAY;
    const SUN: Timestamp = WED + 4 * DAY;
    const MON: Timestamp = WED + 5 * DAY;

    fn at(day: Timestamp, h: u64, m: u64, s: u64) -> Timestamp {
        day + h * 3600 + m * 60 + s
    }

    fn req(now: Timestamp, tz: Option<&str>) -> RequestBuilder {
        let b = RequestBuilder::new("file-recovery").now(now);
        match tz {
            Some(v) => b.attribute(TZ_ATTRIBUTE, v),
            None => b,
        }
    }

    fn eval(b: RequestBuilder) -> Verdict {
        BusinessHours::evaluate(&b.build())
    }

    fn approval(b: RequestBuilder) -> ApprovalTerms {
        expect_approval(eval(b))
    }

    #[test]
    fn info_declares_two_tasks_and_eight_hours() {
        let info = BusinessHours::info();
        assert_eq!(info.name, "business-hours");
        assert_eq!(info.version, "0.1.0");
        assert_eq!(info.tasks, ["file-recovery", "saas-admin"]);
        assert_eq!(info.max_ttl, 28_800);
    }

    #[test]
    fn weekday_office_hours_are_not_applicable() {
        for now in [
            at(WED, 7, 0, 0),
            at(WED, 10, 0, 0),
            at(WED, 18, 59, 59),
            at(MON, 12, 0, 0),
        ] {
            assert_eq!(eval(req(now, None)), Verdict::NotApplicable, "{now}");
        }
    }

    #[test]
    fn before_seven_and_from_nineteen_need_a_helpdesk_lead() {
        for (now, text) in [
            (at(WED, 6, 59, 0), "Wednesday 06:59"),
            (at(WED, 6, 59, 59), "Wednesday 06:59"),
            (at(WED, 0, 0, 0), "Wednesday 00:00"),
            (at(WED, 19, 0, 0), "Wednesday 19:00"),
            (at(WED, 23, 59, 59), "Wednesday 23:59"),
        ] {
            let t = approval(req(now, None));
            assert_eq!(t.approver_groups, ["helpdesk-leads"]);
            assert_eq!(t.min_approvals, 1);
            assert_eq!(t.ttl, 1800);
            assert!(t.reason.contains(text), "{}", t.reason);
        }
    }

    #[test]
    fn weekend_needs_a_helpdesk_lead_all_day() {
        for now in [
            at(SAT, 0, 0, 0),
            at(SAT, 12, 0, 0),
            at(SUN, 10, 0, 0),
            at(SUN, 23, 59, 59),
        ] {
            approval(req(now, None));
        }
        let t = approval(req(at(SAT, 12, 0, 0), None));
        assert_eq!(
            t.reason,
            "it is Saturday 12:00 for the requester (UTC+00:00), outside business hours (Monday to Friday, 07:00 to 19:00), so a member of helpdesk-leads must approve"
        );
    }

    #[test]
    fn offset_moves_the_local_day_across_midnight() {
        // Friday 23:30 UTC is Saturday 00:30 at +01:00.
        assert!(
            approval(req(at(FRI, 23, 30, 0), Some("60")))
                .reason
                .contains("Saturday 00:30 for the requester (UTC+01:00)")
        );
        // Monday 00:30 UTC is Sunday 23:30 at -01:00.
        assert!(
            approval(req(at(MON, 0, 30, 0), Some("-60")))
                .reason
                .contains("Sunday 23:30 for the requester (UTC-01:00)")
        );
        // Sunday 22:00 UTC is Monday 08:00 at +10:00: in hours.
        assert_eq!(
            eval(req(at(SUN, 22, 0, 0), Some("600"))),
            Verdict::NotApplicable
        );
        // Saturday 03:00 UTC is Friday 17:00 at -10:00: in hours.
        assert_eq!(
            eval(req(at(SAT, 3, 0, 0), Some("-600"))),
            Verdict::NotApplicable
        );
        // Monday 07:30 UTC is Sunday 23:30 at -08:00: out of hours.
        approval(req(at(MON, 7, 30, 0), Some("-480")));
    }

    #[test]
    fn offset_moves_across_opening_and_closing() {
        assert_eq!(
            eval(req(at(WED, 6, 0, 0), Some("60"))),
            Verdict::NotApplicable
        );
        approval(req(at(WED, 6, 0, 0), Some("59")));
        approval(req(at(WED, 18, 0, 0), Some("60")));
        assert_eq!(
            eval(req(at(WED, 18, 0, 0), Some("59"))),
            Verdict::NotApplicable
        );
        // Half-hour zones.
        assert!(
            approval(req(at(WED, 13, 30, 0), Some("330")))
                .reason
                .contains("Wednesday 19:00 for the requester (UTC+05:30)")
        );
    }

    #[test]
    fn extreme_offsets_are_accepted() {
        // Wednesday 22:00 UTC at -14:00 is Wednesday 08:00.
        assert_eq!(
            eval(req(at(WED, 22, 0, 0), Some("-840"))),
            Verdict::NotApplicable
        );
        // Wednesday 00:00 UTC at +14:00 is Wednesday 14:00.
        assert_eq!(
            eval(req(at(WED, 0, 0, 0), Some("840"))),
            Verdict::NotApplicable
        );
        // Friday 17:00 UTC at +14:00 is Saturday 07:00.
        assert!(
            approval(req(at(FRI, 17, 0, 0), Some("840")))
                .reason
                .contains("Saturday 07:00 for the requester (UTC+14:00)")
        );
        // Explicit zero and a leading plus sign are integers too.
        assert_eq!(
            eval(req(at(WED, 10, 0, 0), Some("0"))),
            Verdict::NotApplicable
        );
        assert_eq!(
            eval(req(at(WED, 9, 0, 0), Some("+60"))),
            Verdict::NotApplicable
        );
    }

    #[test]
    fn out_of_range_offsets_deny() {
        for v in ["841", "-841", "100000", "99999999999999999999"] {
            let r = expect_deny(eval(req(at(WED, 10, 0, 0), Some(v))));
            assert!(r.contains("tz-offset-minutes attribute"), "{r}");
        }
        let r = expect_deny(eval(req(at(WED, 10, 0, 0), Some("-99999999999999999999"))));
        assert!(
            r.contains("-99999999999999999999 is outside -840 to 840"),
            "{r}"
        );
        let r = expect_deny(eval(req(at(WED, 10, 0, 0), Some("841"))));
        assert_eq!(
            r,
            "the tz-offset-minutes attribute 841 is outside -840 to 840 minutes (UTC-14:00 to UTC+14:00), so the requester's local time is unknown"
        );
    }

    #[test]
    fn non_integer_offsets_deny() {
        for v in ["abc", "1.5", "", " 60", "60m", "0x3c", "+", "-", "+-5"] {
            let r = expect_deny(eval(req(at(WED, 10, 0, 0), Some(v))));
            assert!(r.contains("is not a whole number of minutes"), "{v}: {r}");
        }
        let r = expect_deny(eval(req(at(WED, 10, 0, 0), Some("1.5"))));
        assert!(
            r.starts_with("the tz-offset-minutes attribute \"1.5\" is not"),
            "{r}"
        );
    }

    #[test]
    fn bad_offset_denies_even_out_of_hours() {
        assert!(eval(req(at(SAT, 12, 0, 0), Some("abc"))).is_deny());
    }

    #[test]
    fn approval_ttl_is_clamped_to_one_hour() {
        for (asked, got) in [
            (1, 1),
            (3599, 3599),
            (3600, 3600),
            (3601, 3600),
            (28_800, 3600),
        ] {
            let t = approval(req(at(SAT, 12, 0, 0), None).requested_ttl(asked));
            assert_eq!(t.ttl, got, "{asked}");
        }
    }

    #[test]
    fn saas_admin_is_judged_the_same_way() {
        let b = RequestBuilder::new("saas-admin").now(at(SUN, 12, 0, 0));
        assert!(matches!(eval(b), Verdict::RequireApproval(_)));
        let b = RequestBuilder::new("saas-admin").now(at(WED, 12, 0, 0));
        assert_eq!(eval(b), Verdict::NotApplicable);
    }

    #[test]
    fn utc_offsets_are_formatted() {
        assert_eq!(utc_offset(0), "UTC+00:00");
        assert_eq!(utc_offset(330), "UTC+05:30");
        assert_eq!(utc_offset(-570), "UTC-09:30");
        assert_eq!(utc_offset(-840), "UTC-14:00");
    }
}
