//! Several `jitgate serve` replicas sharing one PostgreSQL database, and what
//! a replica does when that database goes away.

use jitgate_tests::http::{get, post, send_with};
use jitgate_tests::pg::TestDb;
use jitgate_tests::server::{Receiver, Server, body, wait_for, write_config_with};
use jitgate_tests::tickets::{generic_event, now_ms, seed, sign_generic};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn id_of(g: &Value) -> String {
    g["id"].as_str().unwrap_or_default().to_string()
}

/// Three replicas, one database, requests round-robin, one replica SIGKILLed
/// while grants are due: each grant ends once, each `grant-ended` event is
/// sent at most once per lease, the audit chain is one unbroken line, and the
/// survivors keep answering.
#[test]
fn three_replicas_end_each_grant_once_through_a_sigkill() {
    let receiver = Receiver::start(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::create();
    let extra = format!(
        "approval-timeout = 3\n[provisioner]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\nsecret-env = \"JITGATE_WEBHOOK_SECRET\"\n",
        receiver.addr
    );
    let cfgs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            write_config_with(&d, &db.url, &extra)
        })
        .collect();
    // Started together: the migration lock makes them migrate once.
    let mut servers: Vec<Server> = std::thread::scope(|sc| {
        let hs: Vec<_> = cfgs
            .iter()
            .map(|c| sc.spawn(move || Server::start(c)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("start")).collect()
    });
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();

    let mut short = Vec::new();
    for i in 0..30 {
        let g = post(
            addrs[i % 3],
            "/v1/requests",
            Some("t-pipe"),
            &body(
                &format!("s{i}"),
                "alice",
                "file-recovery",
                2 + (i % 3) as u32,
            ),
        )
        .json();
        assert_eq!(g["state"], "active", "{g}");
        short.push(id_of(&g));
    }
    let mut pending = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let g = post(
            *addr,
            "/v1/requests",
            Some("t-carol"),
            &seed(
                *addr,
                &body(&format!("p{i}"), "carol", "incident-triage", 600),
            ),
        )
        .json();
        assert_eq!(g["state"], "pending", "{g}");
        pending.push(id_of(&g));
    }
    let t = post(
        addrs[0],
        "/v1/requests",
        Some("t-pipe"),
        // The pipeline names the ticket the generic source reported.
        &{
            let mut b = seed(addrs[0], &body("tk", "alice", "file-recovery", 600));
            b["subject"]["kind"] = json!("human");
            b
        },
    )
    .json();
    let ticket_grant = id_of(&t);
    // The ticket system closes it, its webhook landing on another replica.
    let closed = generic_event("tk-closed", "T-tk", "closed", Some("alice"), now_ms()).to_string();
    let r = send_with(
        addrs[1],
        "POST",
        "/v1/ticket-sources/generic/events",
        &sign_generic(closed.as_bytes(), now_ms()),
        Some(closed.as_bytes()),
    );
    assert_eq!(
        r.json()["revoked"],
        json!([ticket_grant.clone()]),
        "{}",
        r.body
    );

    // Kill one replica while the short grants are falling due.
    std::thread::sleep(Duration::from_millis(2200));
    servers.remove(0).kill();
    let survivors: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();

    let ended = |ids: &[String], want: &str| {
        ids.iter().enumerate().all(|(i, id)| {
            get(
                survivors[i % 2],
                &format!("/v1/grants/{id}"),
                Some("t-admin"),
            )
            .json()["state"]
                == want
        })
    };
    assert!(
        wait_for(Duration::from_secs(20), || ended(&short, "expired")
            .then_some(()))
        .is_some(),
        "not every short grant expired"
    );
    assert!(
        wait_for(Duration::from_secs(20), || ended(&pending, "lapsed")
            .then_some(()))
        .is_some(),
        "not every pending request lapsed"
    );

    // The survivors keep answering.
    for (i, addr) in survivors.iter().enumerate() {
        assert_eq!(get(*addr, "/readyz", None).status, 200);
        let g = post(
            *addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("after{i}"), "alice", "file-recovery", 600),
        )
        .json();
        assert_eq!(g["state"], "active", "{g}");
    }

    // Every grant ended exactly once: one transition record each. The
    // records are read with SQL, which sees only chained ones: a reader
    // first chains whatever is pending (staged by any replica, the dead one
    // included), as every store read does.
    let v = get(survivors[1], "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
    let rows = db.query(
        "SELECT grant_id, data::json->>'to', COUNT(*) FROM audit WHERE kind = 'transition'
         AND data::json->>'to' IN ('expired', 'lapsed', 'revoked') GROUP BY 1, 2",
    );
    let endings: BTreeMap<(String, String), i64> = rows
        .into_iter()
        .map(|r| {
            (
                (
                    r[0].clone().unwrap_or_default(),
                    r[1].clone().unwrap_or_default(),
                ),
                r[2].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
            )
        })
        .collect();
    for (ids, to) in [
        (&short, "expired"),
        (&pending, "lapsed"),
        (&vec![ticket_grant.clone()], "revoked"),
    ] {
        for id in ids {
            assert_eq!(
                endings.get(&(id.clone(), to.to_string())),
                Some(&1),
                "grant {id}: want exactly one `to {to}` record; all endings: {endings:?}"
            );
        }
    }
    assert_eq!(
        endings.len(),
        short.len() + pending.len() + 1,
        "{endings:?}"
    );

    // Every grant-ended event arrives; none twice within a lease (a second
    // send is only the crash case: a claim whose lease ran out).
    let ended_events: Vec<String> = short
        .iter()
        .chain([&ticket_grant])
        .map(|id| format!("{id}:grant-ended"))
        .collect();
    let all_there = wait_for(Duration::from_secs(60), || {
        let got = receiver.event_ids();
        ended_events.iter().all(|e| got.contains(e)).then_some(())
    });
    assert!(
        all_there.is_some(),
        "missing grant-ended deliveries: {:?}",
        receiver.event_ids()
    );
    let deliveries = receiver
        .accepted
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    let mut by_event: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for d in &deliveries {
        by_event
            .entry(d.event_id.clone())
            .or_default()
            .push(d.timestamp.parse().unwrap_or(0));
    }
    let mut doubles = 0;
    for e in &ended_events {
        let mut ts = by_event.get(e).cloned().unwrap_or_default();
        ts.sort();
        doubles += ts.len() - 1;
        for w in ts.windows(2) {
            assert!(
                w[1] - w[0] >= 25_000,
                "{e} sent twice {} ms apart (within a lease): {ts:?}",
                w[1] - w[0]
            );
        }
    }
    eprintln!(
        "replicas: {} grant-ended events, {} re-sent after a lease (crash window)",
        ended_events.len(),
        doubles
    );

    // No lost audit record: seq is 1..=n without gaps, and the chain verifies.
    let r = db.query("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit");
    let n: Vec<i64> = r[0]
        .iter()
        .map(|v| v.as_deref().and_then(|x| x.parse().ok()).unwrap_or(-1))
        .collect();
    assert_eq!((n[1], n[2]), (1, n[0]), "audit seq has gaps: {n:?}");
    let v = get(survivors[0], "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
    drop(servers);
    let (ok, text) = jitgate_tests::jitgate_audit(&db.url, &["verify"]);
    assert!(ok, "{text}");
}

/// A database outage: requests that need the store answer 503, nothing is
/// granted unrecorded, and service resumes when the database is back.
#[test]
fn database_outage_fails_closed_with_503_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::create();
    let cfg = write_config_with(dir.path(), &db.url, "");
    let s = Server::start(&cfg);
    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body("before", "alice", "file-recovery", 600),
    );
    assert_eq!(g.json()["state"], "active", "{}", g.body);

    // Cut the database off: no new connections, existing ones terminated.
    // Terminate repeatedly: a backend that was mid-start-up when the ALTER
    // landed is not yet visible to the first sweep (seen under CI load).
    jitgate_tests::pg::admin(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
        db.name
    ));
    for _ in 0..5 {
        jitgate_tests::pg::admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for i in 0..3 {
        let r = post(
            s.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("during{i}"), "alice", "file-recovery", 600),
        );
        assert_eq!(r.status, 503, "fails closed: {}", r.body);
        assert_ne!(r.json()["state"], "active");
    }
    let dry = post(
        s.addr,
        "/v1/decisions",
        Some("t-pipe"),
        &body("dry", "alice", "file-recovery", 600),
    );
    assert_eq!(
        dry.status, 503,
        "an unrecordable decision is not given: {}",
        dry.body
    );

    jitgate_tests::pg::admin(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
        db.name
    ));
    let back = wait_for(Duration::from_secs(20), || {
        let r = post(
            s.addr,
            "/v1/requests",
            Some("t-pipe"),
            &body("after", "alice", "file-recovery", 600),
        );
        (r.status == 200 || r.status == 201).then(|| r.json())
    });
    assert_eq!(back.map(|g| g["state"].clone()), Some(json!("active")));
    let rows = db.query("SELECT COUNT(*) FROM grants WHERE request_id LIKE 'during%'");
    assert_eq!(
        rows[0][0].as_deref(),
        Some("0"),
        "nothing granted during the outage"
    );
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
}

/// Three replicas receive a ticket system's webhooks round robin (and the
/// resolving one redelivered to all three at once): each ticket change is
/// applied once, and each grant on the ticket is revoked exactly once —
/// by re-verification (reassigned) or by the ticket resolving.
#[test]
fn three_replicas_receiving_ticket_webhooks_round_robin_revoke_each_grant_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::create();
    let cfgs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            write_config_with(&d, &db.url, "")
        })
        .collect();
    let servers: Vec<Server> = std::thread::scope(|sc| {
        let hs: Vec<_> = cfgs
            .iter()
            .map(|c| sc.spawn(move || Server::start(c)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("start")).collect()
    });
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let event = |i: usize, id: &str, ticket: &str, state: &str, who: &str, at: u64| {
        let body = generic_event(id, ticket, state, Some(who), at).to_string();
        send_with(
            addrs[i % 3],
            "POST",
            "/v1/ticket-sources/generic/events",
            &sign_generic(body.as_bytes(), now_ms()),
            Some(body.as_bytes()),
        )
    };
    let t0 = now_ms() - 60_000;
    // Two tickets, each with a file-recovery grant of alice's.
    let mut grants = Vec::new();
    for (i, ticket) in ["INC-R1", "INC-R2"].iter().enumerate() {
        assert_eq!(
            event(i, &format!("{ticket}-a"), ticket, "open", "alice", t0).status,
            200
        );
        let mut b = body(&format!("rr-{i}"), "alice", "file-recovery", 600);
        b["ticket"] = json!({"id": ticket});
        let g = post(addrs[(i + 1) % 3], "/v1/requests", Some("t-pipe"), &b).json();
        assert_eq!(g["state"], "active", "{g}");
        grants.push(id_of(&g));
    }
    // INC-R1 is reassigned (re-verification), INC-R2 resolved; each event
    // delivered to every replica at once.
    let changes = [
        ("INC-R1", "INC-R1-b", "in-progress", "bob"),
        ("INC-R2", "INC-R2-b", "resolved", "alice"),
    ];
    for (ticket, id, state, who) in changes {
        let answers: Vec<Value> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..3)
                .map(|i| sc.spawn(move || event(i, id, ticket, state, who, t0 + 1_000).json()))
                .collect();
            hs.into_iter().map(|h| h.join().expect("post")).collect()
        });
        let applied = answers.iter().filter(|a| a["result"] == "applied").count();
        assert_eq!(applied, 1, "{answers:?}");
        let revoked: usize = answers
            .iter()
            .map(|a| a["revoked"].as_array().map_or(0, Vec::len))
            .sum();
        // A redelivery that lands while the first is still re-verifying
        // may end the grant itself (a replay of the ticket's last event is
        // re-verified again) and lists nothing: at most one answer lists it.
        assert!(revoked <= 1, "{answers:?}");
    }
    for (g, why) in grants.iter().zip(["assigned to bob", "is resolved"]) {
        let now = get(addrs[2], &format!("/v1/grants/{g}"), Some("t-admin")).json();
        assert_eq!(now["state"], "revoked", "{now}");
        assert!(
            now["end-reason"].as_str().unwrap_or("").contains(why),
            "{now}"
        );
        let ev = get(
            addrs[0],
            &format!("/v1/grants/{g}/evidence"),
            Some("t-audit"),
        )
        .json();
        let endings = ev["audit"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|r| r["kind"] == "transition" && r["data"]["to"] == "revoked")
                .count()
        });
        assert_eq!(endings, 1, "revoked exactly once: {ev}");
    }
}
