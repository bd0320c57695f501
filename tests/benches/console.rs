//! Console page times with N grants in the store (issue 16: "console pages
//! answer in under 50 ms with 10,000 grants in the store").
//!
//! A server is built in process from a config, as `jitgate serve` builds it
//! ([`App`]: SQLite store in a temp folder, the clock-free example policies,
//! the test tokens), on a [`ManualClock`]. The store is filled through the
//! service, as the pipeline, over the 28 days before now: 70 % of the grants
//! ended (expired, released, revoked, rejected, ended by their ticket
//! closing), 20 % active and 10 % pending, for 500 subjects (alice has one
//! in 200) on 200 tickets, a fiftieth break-glass (each opening a review).
//! Every record goes through the service, so the audit chain is the one a
//! real server writes (the bench checks it verifies).
//!
//! Then bob (approver), alice (requester), the auditor and the admin sign
//! in through the console's form and every page is asked for: 3 warm-ups,
//! then 30 timed runs through the router (in process: no socket, so the
//! figures are the handler's work, page rendering included).
//!
//! `./dev policies && cargo bench -p jitgate-tests --bench console -- [GRANTS] [RUNS]`
//! (defaults 10000 and 30).

use std::sync::Arc;
use std::time::Instant;

use jitgate::request::TicketState;
use jitgate::service::{Clock, ManualClock, Principal, Role, Service};
use jitgate_tests::app::{App, FullResponse};
use jitgate_tests::server::Backend;
use serde_json::{Value, json};

const HOST: &str = "127.0.0.1:8080";
const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
const SUBJECTS: usize = 500;
const TICKETS: usize = 200;
const WARMUPS: usize = 3;

fn get(app: &App, path: &str, cookie: &str) -> FullResponse {
    app.send_full("GET", path, &[("cookie", cookie), ("host", HOST)], b"")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sign `token`'s holder in through the console's form; the cookie header.
fn sign_in(app: &App, token: &str) -> String {
    let form = get(app, "/console/sign-in", "");
    assert_eq!(form.status, 200, "{}", form.body);
    let nonce = form.cookie("jitgate_sign_in").expect("sign-in cookie");
    let r = app.send_full(
        "POST",
        "/console/sign-in",
        &[
            ("cookie", &format!("jitgate_sign_in={nonce}")),
            ("host", HOST),
            ("origin", &format!("http://{HOST}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={nonce}&token={}", enc(token)).as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    format!(
        "jitgate_session={}",
        r.cookie("jitgate_session").expect("session cookie")
    )
}

/// What one grant of the mix is.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Allowed by policy at once.
    Allowed,
    /// Needs bob's approval (saas-owners or incident-commanders).
    NeedsApproval,
    /// Break-glass (allowed, opens a review).
    BreakGlass,
}

/// The request body of grant `i` at `now_ms`, and what it is. Grants
/// whose ticket is closed while they live (`i % 20 == 8`, among the ended
/// ones) have a ticket of their own.
fn request_body(i: usize, now_ms: i64, own_ticket: bool) -> (Value, Kind) {
    let now = now_ms / 1000;
    let subject = if i % 199 == 7 {
        "alice".to_string()
    } else {
        format!("user-{:03}", (i * 7919) % SUBJECTS)
    };
    let t = (i * 31) % TICKETS;
    // Tickets 0-39 are priority 1-2 incidents, the rest priority 3-5.
    let priority = if t < 40 { 1 + t % 2 } else { 3 + t % 3 };
    let (task, entitlement, kind) = match i % 50 {
        0 => ("break-glass", "operator", Kind::BreakGlass),
        1..=20 => ("file-recovery", "backup-operator", Kind::Allowed),
        21..=28 => ("saas-admin", "okta:read", Kind::Allowed),
        29..=40 => ("saas-admin", "okta:admin", Kind::NeedsApproval),
        _ => (
            "incident-triage",
            "operator",
            if priority <= 2 {
                Kind::Allowed
            } else {
                Kind::NeedsApproval
            },
        ),
    };
    let mut b = json!({
        "id": format!("b-{i}"),
        "subject": {"id": subject, "kind": "human", "roles": ["helpdesk", "it-admin"],
                    "groups": ["oncall", "break-glass"], "mfa-at": now - 60},
        "task": task,
        "resource": format!("host-{:02}", i % 40),
        "entitlement": entitlement,
        "justification": format!("restore service for the customer escalation in ticket T-{t:03} (step {})", i % 7),
        "requested-ttl": 1800,
    });
    if kind != Kind::BreakGlass {
        let id = if own_ticket {
            format!("C-{i}")
        } else {
            format!("T-{t:03}")
        };
        b["ticket"] = json!({"id": id, "state": "open", "priority": priority,
                             "opened-at": now - 3600});
    }
    (b, kind)
}

struct Seeder<'a> {
    svc: &'a Arc<Service>,
    clock: &'a ManualClock,
    pipe: Principal,
    bob: Principal,
    admin: Principal,
    made: usize,
}

impl Seeder<'_> {
    /// Request grant `i` at `at`; its id (it is pending or active).
    fn request(&mut self, i: usize, at: i64, own_ticket: bool) -> (String, Kind) {
        self.clock.set(at);
        let (body, kind) = request_body(i, at, own_ticket);
        let (g, _) = self.svc.request(&self.pipe, &body).expect("request");
        self.made += 1;
        let state = g.state.as_str();
        assert!(
            state == "active" || state == "pending",
            "grant {i} ({}): {state}: {}",
            body["task"],
            g.decision
        );
        (g.id, kind)
    }

    /// An ended grant, created at `at`: approved first if it needs it, then
    /// released, revoked, rejected, ended by its ticket closing or left to
    /// expire, by `i`.
    fn ended(&mut self, i: usize, at: i64) {
        let own_ticket = i % 20 == 8;
        let (id, kind) = self.request(i, at, own_ticket);
        self.clock.set(at + MIN_MS);
        if kind == Kind::NeedsApproval {
            if i % 10 == 3 {
                self.svc
                    .reject(&self.bob, &id, Some("not needed for this ticket any more"))
                    .expect("reject");
                return;
            }
            self.svc.approve(&self.bob, &id).expect("approve");
        }
        self.clock.set(at + 5 * MIN_MS);
        match i % 20 {
            0..=4 => {
                self.svc.release(&self.pipe, &id).expect("release");
            }
            5..=7 => {
                self.svc
                    .revoke(&self.admin, &id, Some("left the incident team"))
                    .expect("revoke");
            }
            8 if kind != Kind::BreakGlass => {
                self.svc
                    .ticket_event(&self.pipe, &format!("C-{i}"), TicketState::Closed)
                    .expect("ticket event");
            }
            // Expired by the sweep.
            _ => {}
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);

    let end_ms = jitgate::service::now_millis() / MIN_MS * MIN_MS;
    let start_ms = end_ms - 28 * DAY_MS;
    let clock = ManualClock::at(start_ms);
    let app = App::with_clock(
        Backend::Sqlite,
        "[tasks.break-glass]\nbreak-glass = true\n",
        Arc::new(clock.clone()),
    );
    let svc = app.service().clone();
    let mut s = Seeder {
        svc: &svc,
        clock: &clock,
        pipe: Principal::new("pipeline", [Role::Pipeline]),
        bob: Principal::new("bob", [Role::Approver]).with_groups([
            "incident-commanders",
            "saas-owners",
            "helpdesk-leads",
        ]),
        admin: Principal::new("admin", [Role::Admin]),
        made: 0,
    };

    let started = Instant::now();
    let ended = n * 7 / 10;
    let active = n * 2 / 10;
    let pending = n - ended - active;
    // Ended: spread over 27 days, the sweep run every 50 grants.
    let step = (27 * DAY_MS) / ended.max(1) as i64;
    for i in 0..ended {
        s.ended(i, start_ms + i as i64 * step);
        if i % 50 == 49 {
            svc.end_due(clock.now()).expect("sweep");
        }
    }
    // Everything else ended: expire it.
    clock.set(start_ms + 27 * DAY_MS + 10 * MIN_MS);
    svc.end_due(clock.now()).expect("sweep");
    // Active: the last 20 minutes (30-minute grants: all still live at the
    // end); pending: the last 10 (they lapse after an hour).
    let (mut live, mut waiting) = (Vec::new(), Vec::new());
    for i in ended.. {
        if live.len() == active && waiting.len() == pending {
            break;
        }
        match request_body(i, 0, false).1 {
            Kind::NeedsApproval if waiting.len() < pending => waiting.push(i),
            Kind::Allowed | Kind::BreakGlass if live.len() < active => live.push(i),
            _ => {}
        }
    }
    for (k, i) in live.iter().enumerate() {
        s.request(
            *i,
            end_ms - 20 * MIN_MS + (k as i64 * 9 * MIN_MS) / active as i64,
            false,
        );
    }
    for (k, i) in waiting.iter().enumerate() {
        s.request(
            *i,
            end_ms - 10 * MIN_MS + (k as i64 * 9 * MIN_MS) / pending as i64,
            false,
        );
    }
    clock.set(end_ms);
    let seeded = started.elapsed().as_secs_f64();
    let chain = svc.verify_audit().expect("verify");
    assert!(chain.bad.is_empty(), "the seeded chain does not verify");
    let count = |st: &str| {
        svc.store()
            .grants(&jitgate::store::GrantFilter {
                state: jitgate::grant::GrantState::parse(st),
                limit: usize::MAX,
                ..Default::default()
            })
            .map(|g| g.len())
            .unwrap_or(0)
    };
    let states = [
        "active", "pending", "expired", "released", "revoked", "rejected", "lapsed",
    ]
    .map(|st| format!("{st} {}", count(st)));
    let total = svc
        .store()
        .grants(&jitgate::store::GrantFilter {
            limit: usize::MAX,
            ..Default::default()
        })
        .map(|g| g.len())
        .unwrap_or(0);
    let ended_by_ticket = svc
        .store()
        .grants(&jitgate::store::GrantFilter {
            limit: usize::MAX,
            ..Default::default()
        })
        .unwrap_or_default()
        .iter()
        .filter(|g| {
            g.ended_by
                .as_deref()
                .is_some_and(|b| b.starts_with("ticket "))
        })
        .count();
    let alice = svc
        .store()
        .grants(&jitgate::store::GrantFilter {
            subject: Some("alice".into()),
            limit: usize::MAX,
            ..Default::default()
        })
        .unwrap_or_default();
    println!(
        "seeded {} grants in {seeded:.1} s through the service: {} ({ended_by_ticket} of them ended by their ticket closing), \
         {} break-glass reviews; alice has {}; audit chain: {} records, verified",
        s.made,
        states.join(", "),
        svc.store().reviews(false).map(|r| r.len()).unwrap_or(0),
        alice.len(),
        chain.checked,
    );

    // One of alice's ended grants that was approved: several records.
    let evidence_id = alice
        .iter()
        .find(|g| !g.approvals.is_empty() && g.ended_at.is_some())
        .or_else(|| alice.first())
        .map(|g| g.id.clone())
        .expect("alice has a grant");

    let bob = sign_in(&app, "t-bob");
    let alice_c = sign_in(&app, "t-alice");
    let auditor = sign_in(&app, "t-audit");
    let admin = sign_in(&app, "t-admin");
    // The first view that shows the chain's state walks it from record 1
    // (`review::Live`); later views read only what was appended.
    let rss_kb = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let before_kb = rss_kb();
    let t = Instant::now();
    let first = get(&app, &format!("/console/grants/{evidence_id}"), &auditor);
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("The whole chain verified"),
        "{}",
        first.body
    );
    println!(
        "first view of the chain's state after start (walks {} records from record 1): {first_ms:.0} ms; \
         kept for following it: {:.1} MB ({} bytes a record; resident memory grew {:+.1} MB over the walk, allocator high-water included)",
        chain.checked,
        svc.followed_chain_bytes() as f64 / 1e6,
        svc.followed_chain_bytes() / (chain.checked.max(1) as usize),
        (rss_kb() as f64 - before_kb as f64) / 1024.0
    );

    let pages: Vec<(String, &str, String)> = vec![
        ("approvals (bob)".into(), &bob, "/console/approvals".into()),
        (
            "my requests (alice)".into(),
            &alice_c,
            "/console/requests".into(),
        ),
        (
            "audit search, no filter".into(),
            &auditor,
            "/console/audit".into(),
        ),
        (
            "audit search, subject=user-042".into(),
            &auditor,
            "/console/audit?subject=user-042".into(),
        ),
        (
            "evidence of one grant".into(),
            &auditor,
            format!("/console/grants/{evidence_id}"),
        ),
        (
            "evidence, after a new audit record".into(),
            &auditor,
            format!("/console/grants/{evidence_id}"),
        ),
        (
            "evidence + walk the whole chain now (`?verify=chain`)".into(),
            &auditor,
            format!("/console/grants/{evidence_id}?verify=chain"),
        ),
        ("reviews".into(), &auditor, "/console/reviews".into()),
        ("admin".into(), &admin, "/console/admin".into()),
        (
            "access review (last 30 days)".into(),
            &auditor,
            "/console/access-review".into(),
        ),
        (
            "access review, after a new audit record".into(),
            &auditor,
            "/console/access-review".into(),
        ),
        (
            "access-review.csv (last 30 days)".into(),
            &auditor,
            "/console/access-review.csv".into(),
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a, b.as_str(), c))
    .collect();

    println!();
    println!("| page | grants in store | median ms | p95 ms | max ms | bytes |");
    println!("|---|---|---|---|---|---|");
    let mut extra = n;
    for (name, cookie, path) in &pages {
        // A dry-run decision (one audit record) before each view: what a
        // follower reads and checks on a live server.
        let mut append = || {
            if name.contains("new audit record") {
                extra += 1;
                let (body, _) = request_body(extra, clock.now(), false);
                let r = app.post("/v1/decisions", Some("t-pipe"), &body);
                assert_eq!(r.status, 200, "{}", r.body);
            }
        };
        let mut bytes = 0;
        for _ in 0..WARMUPS {
            append();
            let r = get(&app, path, cookie);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            bytes = r.body.len();
        }
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                append();
                let t = Instant::now();
                let r = get(&app, path, cookie);
                let el = t.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(r.status, 200, "{path}");
                el
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {total} | {:.1} | {:.1} | {:.1} | {bytes} |",
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms[ms.len() - 1],
        );
    }
}
