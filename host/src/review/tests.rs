//! The builder over chains made by the real lifecycle ([`Grant::apply`]):
//! a known answer, the window's edges, statistics, an edited record, and
//! hostile strings in CSV and text.
//!
//! One file past 500 lines: one scenario chain and every rule read off it.

use serde_json::{Value, json};

use super::build::{median, p99};
use super::*;
use crate::audit::{AuditDraft, GENESIS, seal};
use crate::decision::{ApprovalRequirement, Outcome};
use crate::grant::{Grant, GrantEvent};
use crate::request::TicketState;

pub(super) const MIN: i64 = 60_000;
/// 2026-12-01T08:00:00Z.
pub(super) const T0: Millis = 1_796_112_000_000;

#[derive(Default)]
pub(super) struct Log {
    pub(super) records: Vec<AuditRecord>,
}

impl Log {
    fn push(&mut self, drafts: Vec<AuditDraft>) {
        for d in drafts {
            let prev = self
                .records
                .last()
                .map_or_else(|| GENESIS.to_string(), |r| r.hash.clone());
            let seq = self.records.len() as i64 + 1;
            self.records.push(seal(&prev, seq, d));
        }
    }

    /// A decided request: its request record and the decision's effects.
    fn request(&mut self, g: &mut Grant, at: Millis, policies: Value, source: Option<&str>) {
        let decision = json!({"outcome": g.outcome, "ttl": g.ttl, "policies": policies});
        let facts = g
            .ticket_id()
            .map(|t| json!({"ticket": t, "known": true, "source": source}));
        let record = AuditDraft::new(
            at,
            audit::kind::REQUEST,
            &g.requested_by,
            json!({"request": g.request, "decision": decision, "ticket-facts": facts}),
        )
        .grant(&g.id)
        .request(&g.request.id);
        let fx = g
            .apply(
                GrantEvent::Decided {
                    decision,
                    approval_timeout_ms: 3_600_000,
                    review_id: None,
                },
                &g.requested_by.clone(),
                at,
            )
            .expect("decided");
        self.push(std::iter::once(record).chain(fx.audit).collect());
    }

    fn apply(&mut self, g: &mut Grant, event: GrantEvent, actor: &str, at: Millis) {
        let fx = g.apply(event, actor, at).expect("legal");
        self.push(fx.audit);
    }
}

fn grant(id: &str, subject: &str, task: &str, ttl: u32, outcome: Outcome) -> Grant {
    let req = crate::request::from_value(json!({
        "id": format!("r-{id}"), "subject": {"id": subject, "kind": "human"}, "task": task,
        "resource": "fileserver-01", "entitlement": "operator",
        "justification": "restore the finance share", "requested-ttl": ttl, "now": 0,
        "ticket": {"id": format!("INC-{id}"), "state": "open", "priority": 3, "opened-at": 1_796_000_000},
    }))
    .expect("request");
    Grant {
        id: format!("g-{id}"),
        requested_by: "pipeline".into(),
        outcome,
        ttl,
        revoke_on_ticket_close: true,
        required: if outcome == Outcome::RequireApproval {
            vec![ApprovalRequirement {
                policy: "p".into(),
                groups: vec!["leads".into()],
                min: 1,
            }]
        } else {
            Vec::new()
        },
        ..Grant::of(req)
    }
}

fn allow(name: &str) -> Value {
    json!([{"name": "baseline", "verdict": "not-applicable"},
           {"name": name, "verdict": "allow", "reason": format!("{name} says yes")}])
}

/// Six grants and their lives; the window is 09:00 .. 11:00.
pub(super) fn scenario() -> Log {
    let mut log = Log::default();
    // Outside: active 08:00 .. 08:05, released.
    let mut g0 = grant("0", "alice", "file-recovery", 600, Outcome::Allow);
    log.request(&mut g0, T0, allow("file-recovery"), Some("generic"));
    log.apply(&mut g0, GrantEvent::Release, "alice", T0 + 5 * MIN);
    // Straddles `since`: 08:55 .. expires 09:05, swept 2.5 s late.
    let mut g1 = grant("1", "alice", "file-recovery", 600, Outcome::Allow);
    log.request(
        &mut g1,
        T0 + 55 * MIN,
        allow("file-recovery"),
        Some("generic"),
    );
    let swept = T0 + 65 * MIN + 2500;
    log.apply(
        &mut g1,
        GrantEvent::Expire { due_by: swept },
        "scheduler",
        swept,
    );
    // Approved at 09:25 by bob, released at 09:40.
    let mut g2 = grant(
        "2",
        "carol",
        "incident-triage",
        3600,
        Outcome::RequireApproval,
    );
    let ask = json!([{"name": "incident-triage", "verdict": "require-approval", "reason": "p3"}]);
    log.request(&mut g2, T0 + 80 * MIN, ask, None);
    let approve = GrantEvent::Approve {
        groups: vec!["leads".into()],
        review_id: None,
        also_known_as: Vec::new(),
        sign_in: None,
    };
    log.apply(&mut g2, approve, "bob", T0 + 85 * MIN);
    log.apply(&mut g2, GrantEvent::Release, "carol", T0 + 100 * MIN);
    // Ticket closed at 09:45, 15 min after activation.
    let mut g4 = grant("4", "alice", "saas-admin", 1800, Outcome::Allow);
    log.request(&mut g4, T0 + 90 * MIN, allow("saas-admin"), Some("generic"));
    let closed = T0 + 105 * MIN;
    let end = GrantEvent::TicketEnd {
        ticket: "INC-4".into(),
        state: TicketState::Closed,
    };
    log.apply(&mut g4, end, "ticket INC-4", closed);
    log.push(vec![AuditDraft::new(
        closed,
        audit::kind::TICKET_EVENT,
        "ticket-source:generic",
        json!({"source": "generic", "ticket": "INC-4", "result": "applied", "revoked": ["g-4"]}),
    )]);
    // Revoked by an admin at 10:20.
    let mut g5 = grant("5", "alice", "file-recovery", 3600, Outcome::Allow);
    log.request(
        &mut g5,
        T0 + 120 * MIN,
        allow("file-recovery"),
        Some("generic"),
    );
    let revoke = GrantEvent::Revoke {
        reason: "suspicious activity".into(),
    };
    log.apply(&mut g5, revoke, "admin", T0 + 140 * MIN);
    // Break-glass at 10:30, still active at 11:00 (ends 11:30, after).
    let mut g3 = grant("3", "dave", "break-glass", 3600, Outcome::Allow);
    g3.break_glass = true;
    log.request(&mut g3, T0 + 150 * MIN, allow("break-glass"), None);
    let expired = T0 + 210 * MIN;
    log.apply(
        &mut g3,
        GrantEvent::Expire { due_by: expired },
        "scheduler",
        expired,
    );
    // Never elevated: denied, and a pending grant that lapsed.
    let mut gd = grant("d", "mallory", "file-recovery", 600, Outcome::Deny);
    log.request(&mut gd, T0 + 95 * MIN, allow("file-recovery"), None);
    let mut gl = grant(
        "l",
        "erin",
        "incident-triage",
        600,
        Outcome::RequireApproval,
    );
    log.request(&mut gl, T0 + 96 * MIN, json!([]), None);
    let lapse = T0 + 156 * MIN;
    log.apply(
        &mut gl,
        GrantEvent::Lapse { due_by: lapse },
        "scheduler",
        lapse,
    );
    // Activated after `until`.
    let mut g6 = grant("6", "alice", "file-recovery", 600, Outcome::Allow);
    log.request(&mut g6, T0 + 181 * MIN, allow("file-recovery"), None);
    log
}

const SINCE: Millis = T0 + 60 * MIN;
const UNTIL: Millis = T0 + 180 * MIN;

fn review(log: &Log) -> AccessReview {
    AccessReview::from_records(&log.records, SINCE, UNTIL).expect("report")
}

#[test]
fn known_answer_rows_and_totals() {
    let log = scenario();
    let r = review(&log);
    let ids: Vec<&str> = r.rows.iter().map(|r| r.grant_id.as_str()).collect();
    assert_eq!(ids, ["g-1", "g-2", "g-4", "g-5", "g-3"]);
    let ends: Vec<(&str, End, Decided, i64, Option<i64>)> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.grant_id.as_str(),
                r.end,
                r.decided,
                r.duration_ms,
                r.revocation_lag_ms,
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            (
                "g-1",
                End::Expired,
                Decided::AllowedByPolicy,
                10 * MIN + 2500,
                Some(2500)
            ),
            (
                "g-2",
                End::Released,
                Decided::ApprovedByPeople,
                15 * MIN,
                None
            ),
            (
                "g-4",
                End::TicketClosed,
                Decided::AllowedByPolicy,
                15 * MIN,
                Some(0)
            ),
            (
                "g-5",
                End::Revoked,
                Decided::AllowedByPolicy,
                20 * MIN,
                None
            ),
            ("g-3", End::StillActive, Decided::BreakGlass, 30 * MIN, None),
        ]
    );
    let g2 = &r.rows[1];
    assert_eq!(
        g2.approvers,
        [Approver {
            name: "bob".into(),
            at: T0 + 85 * MIN
        }]
    );
    assert_eq!(g2.activated_at, T0 + 85 * MIN);
    assert_eq!(g2.ended_by.as_deref(), Some("carol"));
    assert_eq!(
        g2.ticket,
        Some(TicketRef {
            id: "INC-2".into(),
            source: None
        })
    );
    let g5 = &r.rows[3];
    assert_eq!(
        (g5.ended_by.as_deref(), g5.end_reason.as_deref()),
        (Some("admin"), Some("suspicious activity"))
    );
    let g1 = &r.rows[0];
    assert_eq!(g1.activated_at, T0 + 55 * MIN);
    assert_eq!(g1.expires_at, Some(T0 + 65 * MIN));
    assert_eq!(
        g1.ticket,
        Some(TicketRef {
            id: "INC-1".into(),
            source: Some("generic".into())
        })
    );
    assert_eq!(
        g1.policies[1].reason.as_deref(),
        Some("file-recovery says yes")
    );
    assert_eq!(g1.policies[0].reason, None);
    let g3 = &r.rows[4];
    assert_eq!((g3.ended_at, g3.ended_by.as_ref()), (None, None));
    assert!(r.rows.iter().all(|r| r.records_intact));

    let fr = &r.totals["file-recovery"];
    assert_eq!(
        *fr,
        Totals {
            states: 2,
            allowed_by_policy: 2,
            ended: 2,
            median_duration_ms: Some((10 * MIN + 2500 + 20 * MIN) / 2),
            share_ended_by_ticket: Some(0.0),
            revocation_lag_p99_ms: Some(2500),
            ..Totals::default()
        }
    );
    assert_eq!(r.totals["break-glass"].median_duration_ms, None);
    assert_eq!(r.totals["break-glass"].share_ended_by_ticket, None);
    assert_eq!(r.totals["saas-admin"].share_ended_by_ticket, Some(1.0));
    assert_eq!(
        r.overall,
        Totals {
            states: 5,
            allowed_by_policy: 3,
            approved_by_people: 1,
            break_glass: 1,
            ended: 4,
            still_active: 1,
            median_duration_ms: Some(15 * MIN),
            ended_by_ticket: 1,
            share_ended_by_ticket: Some(0.25),
            revocation_lag_p99_ms: Some(2500),
        }
    );
    assert_eq!(r.chain.state, ChainState::Verified);
    assert_eq!(r.chain.records_read, log.records.len() as u64);
}

#[test]
fn the_window_is_half_open_and_later_records_do_not_change_it() {
    let log = scenario();
    // Ending exactly at `since` is outside; activating exactly at `until` too.
    let r = AccessReview::from_records(&log.records, T0 + 5 * MIN, T0 + 55 * MIN).expect("report");
    assert!(r.rows.is_empty(), "{:?}", r.rows);
    let r = AccessReview::from_records(&log.records, T0 + 5 * MIN - 1, T0 + 55 * MIN + 1)
        .expect("report");
    let ids: Vec<&str> = r.rows.iter().map(|r| r.grant_id.as_str()).collect();
    assert_eq!(ids, ["g-0", "g-1"]);
    // g-1 had not expired by this `until`.
    assert_eq!(r.rows[1].end, End::StillActive);
    assert_eq!(r.rows[1].duration_ms, 1);
    for (since, until) in [(SINCE, SINCE), (UNTIL, SINCE)] {
        match AccessReview::from_records(&log.records, since, until) {
            Err(ReviewError::Window { field, .. }) => assert_eq!(field, "until"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn median_and_nearest_rank_p99() {
    assert_eq!(median(vec![]), None);
    assert_eq!(median(vec![5, 1, 3]), Some(3));
    assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
    assert_eq!(median(vec![i64::MAX, i64::MAX]), Some(i64::MAX));
    assert_eq!(p99(vec![]), None);
    assert_eq!(p99(vec![7]), Some(7));
    assert_eq!(p99((1..=100).rev().collect()), Some(99));
    assert_eq!(p99((1..=101).collect()), Some(100));
    assert_eq!(p99((1..=1000).collect()), Some(990));
}

#[test]
fn an_edited_record_makes_the_chain_broken_and_flags_its_row() {
    let mut log = scenario();
    let i = log
        .records
        .iter()
        .position(|r| {
            r.draft.kind == audit::kind::REQUEST && r.draft.grant_id.as_deref() == Some("g-5")
        })
        .expect("g-5's request");
    let seq = log.records[i].seq;
    log.records[i].draft.data["request"]["justification"] = json!("routine maintenance");
    log.records[i].stored_data = crate::audit::data_json(&log.records[i].draft);
    let r = review(&log);
    assert_eq!(r.chain.state, ChainState::Broken);
    assert_eq!(r.chain.first_bad_seq, Some(seq));
    assert_eq!(r.chain.faults, 1);
    let flagged: Vec<&str> = r
        .rows
        .iter()
        .filter(|r| !r.records_intact)
        .map(|r| r.grant_id.as_str())
        .collect();
    assert_eq!(flagged, ["g-5"]);
    let text = text(&r, "db");
    assert!(
        text.contains(&format!("audit chain: BROKEN at record {seq} (1 fault(s)")),
        "{text}"
    );
    assert!(text.contains("[EDITED RECORDS]"), "{text}");
    assert!(r.to_csv().contains(&format!("\"broken\",\"{seq}\",\"1\"")));
}

fn hostile_report(justification: &str, subject: &str) -> AccessReview {
    let mut log = Log::default();
    let mut g = grant("x", "alice", "file-recovery", 600, Outcome::Allow);
    g.request.justification = justification.into();
    g.request.subject.id = subject.into();
    log.request(
        &mut g,
        SINCE,
        allow("file-recovery"),
        Some("=HYPERLINK(\"http://evil\")"),
    );
    review(&log)
}

/// Parse one RFC 4180 table line of quoted cells.
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut cell = String::new();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                Some('"') => break,
                Some(c) => cell.push(c),
                None => panic!("unterminated: {line}"),
            }
        }
        out.push(cell);
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("{c:?} after a cell: {line}"),
        }
    }
    out
}

#[test]
fn csv_formula_injection_in_a_justification_or_subject_is_neutralised() {
    for lead in ["=", "+", "-", "@", "\t", "\r"] {
        let j = format!("{lead}cmd|' /C calc'!A0, \"quoted\"\nnext line");
        let s = format!("{lead}SUM(1+1)");
        let csv = hostile_report(&j, &s).to_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            csv::STATE_HEADER.map(|h| format!("\"{h}\"")).join(",")
        );
        let row = cells(lines[1]);
        assert_eq!(row.len(), csv::STATE_HEADER.len(), "{csv}");
        let safe_lead = crate::text::terminal_safe(lead).into_owned();
        let want_lead = if safe_lead.starts_with('\\') {
            safe_lead
        } else {
            format!("'{lead}")
        };
        assert_eq!(
            row[9],
            format!("{want_lead}cmd|' /C calc'!A0, \"quoted\"\\nnext line"),
            "justification"
        );
        assert_eq!(row[2], format!("{want_lead}SUM(1+1)"), "subject");
        assert_eq!(row[8], "'=HYPERLINK(\"http://evil\")", "ticket source");
        // No cell of any line begins with a formula character.
        for l in lines.iter().filter(|l| !l.is_empty()) {
            for c in cells(l) {
                assert!(
                    !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{c:?} in {l}"
                );
            }
        }
        // Records end only at CRLF: no raw newline inside a cell.
        assert!(!csv.replace("\r\n", "").contains(['\n', '\r']), "{csv:?}");
    }
}

#[test]
fn terminal_escapes_in_a_justification_cannot_drive_the_terminal() {
    let evil = "ok\napproved by ciso\r\x1b[2K\x1b]0;pwned\x07\u{9b}1m\u{202e}txt.exe";
    let r = hostile_report(evil, "alice\u{202e}");
    let out = text(&r, "db");
    for bad in ['\r', '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} in {out}");
    }
    assert!(
        !out.lines().any(|l| l.starts_with("approved by ciso")),
        "{out}"
    );
    assert!(
        out.contains("  justification: ok\\napproved by ciso\\r\\u{1b}[2K"),
        "{out}"
    );
    assert!(out.contains("alice\\u{202e}"), "{out}");
    let csv = r.to_csv();
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!csv.contains(bad), "{bad:?} in {csv}");
    }
    // The JSON keeps the string exactly.
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(v["rows"][0]["justification"], evil);
}

#[test]
fn times_are_rfc3339_ms_in_json() {
    let r = review(&scenario());
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(v["since"], "2026-12-01T09:00:00.000Z");
    assert_eq!(v["until"], "2026-12-01T11:00:00.000Z");
    assert_eq!(v["rows"][0]["activated-at"], "2026-12-01T08:55:00.000Z");
    assert_eq!(v["rows"][0]["ended-at"], "2026-12-01T09:05:02.500Z");
    assert_eq!(
        v["rows"][1]["approvers"][0]["at"],
        "2026-12-01T09:25:00.000Z"
    );
    assert_eq!(v["rows"][4]["ended-at"], Value::Null);
    assert_eq!(v["chain"]["state"], "verified");
}

#[test]
fn window_bounds_parse_rfc3339_and_name_their_field() {
    assert_eq!(parse_time("since", "2026-12-01T08:00:00Z").ok(), Some(T0));
    assert_eq!(
        parse_time("since", "2026-12-01T09:00:00.250+01:00").ok(),
        Some(T0 + 250)
    );
    for bad in ["yesterday", "2026-12-01", "1796112000000", ""] {
        match parse_time("until", bad) {
            Err(e @ ReviewError::Window { field: "until", .. }) => {
                assert!(e.to_string().starts_with("until: "), "{e}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let long = "9".repeat(10_000);
    assert!(parse_time("since", &long).is_err());
}

#[test]
fn durations_read_as_words() {
    use render::duration;
    assert_eq!(duration(750), "750ms");
    assert_eq!(duration(2500), "2.5s");
    assert_eq!(duration(15 * MIN), "15m 0s");
    assert_eq!(duration(10 * MIN + 2500), "10m 2.5s");
    assert_eq!(duration(2 * 60 * MIN + 3 * MIN + 4010), "2h 3m 4.01s");
}

/// A provisioned entitlement: elevated from the grant (provisioning)
/// until its removal reads back; ended as the deprovisioning record said,
/// by whom it said; the lag runs from the expiry to the removal.
#[test]
fn a_provisioned_grant_lasts_until_its_removal_reads_back() {
    let mut log = Log::default();
    let mut g = grant("p", "alice", "file-recovery", 600, Outcome::Allow);
    g.provisioning = Some(crate::grant::Provisioning {
        provisioner: "ldap".into(),
        target: "cn=ops".into(),
        login: None,
        verifier: None,
        ending_as: None,
        applied_at: None,
        removed_at: None,
        last_error: None,
    });
    log.request(&mut g, SINCE, allow("file-recovery"), None);
    log.apply(&mut g, GrantEvent::Applied, "dispatcher", SINCE + 1000);
    let due = SINCE + 10 * MIN;
    log.apply(
        &mut g,
        GrantEvent::Expire { due_by: due },
        "scheduler",
        due + 100,
    );
    log.apply(&mut g, GrantEvent::Removed, "dispatcher", due + 4000);
    let r = review(&log);
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(
        (
            row.activated_at,
            row.ended_at,
            row.end,
            row.revocation_lag_ms
        ),
        (SINCE, Some(due + 4000), End::Expired, Some(4000))
    );
    assert_eq!(
        (row.ended_by.as_deref(), row.end_reason.as_deref()),
        (Some("scheduler"), Some("expired"))
    );
    // Between the end and the removal it is still elevated.
    let r = AccessReview::from_records(&log.records, SINCE, due + 2000).expect("report");
    assert_eq!(r.rows[0].end, End::StillActive);
    assert_eq!(r.rows[0].duration_ms, 10 * MIN + 2000);
}
