//! End-to-end revocation lag at real targets: N provisioned grants (access
//! applied at the target) whose expiries fall within one second, ended by
//! the real scheduler and removed by the real dispatcher; the lag is from
//! each grant's `expires-at` to its removal read back at the target.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin provision_lag -- [N] [KIND…]`
//! (defaults 1000, `postgres ldap scim`). PostgreSQL is the machine's
//! (`JITGATE_TEST_PG`); slapd and scim2-server are started on loopback as
//! the end-to-end tests do (`./dev test` installs them). Prints one
//! markdown row per provisioner.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::grant::{Grant, GrantState, Provisioning};
use jitgate::provision::targets::{Target, TargetSettings, Targets};
use jitgate::service::{Service, ServiceConfig, now_millis};
use jitgate::store::{Effects, GrantFilter, Store};
use jitgate::{Engine, EngineConfig};

fn grant(
    i: usize,
    kind: &str,
    target: &str,
    subject: &str,
    now: i64,
    at: i64,
    template: &jitgate::Request,
) -> Grant {
    let mut request = template.clone();
    request.id = format!("bench-{kind}-{i}");
    request.subject.id = subject.to_string();
    Grant {
        id: format!("g-{kind}-{i:06}"),
        requested_by: "bench".into(),
        state: GrantState::Active,
        outcome: jitgate::Outcome::Allow,
        decision: serde_json::json!({}),
        ttl: ((at - now) / 1000).max(1) as u32,
        created_at: now,
        issued_at: Some(now),
        expires_at: Some(at),
        provisioning: Some(Provisioning {
            provisioner: kind.to_string(),
            target: target.to_string(),
            login: None,
            verifier: None,
            ending_as: None,
            applied_at: Some(now),
            removed_at: None,
            last_error: None,
        }),
        ..Grant::of(request)
    }
}

fn pct(v: &[i64], q: f64) -> i64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A target with `n` members already applied: (target, group/role, subject of i, cleanup).
struct Prepared {
    target: Arc<dyn Target>,
    group: String,
    subject: Box<dyn Fn(usize) -> String>,
    remaining: Box<dyn Fn() -> usize>,
    _keep: Box<dyn std::any::Any>,
}

fn postgres(n: usize) -> Prepared {
    use jitgate_tests::pg::{admin, admin_url, query};
    let tag = std::process::id();
    let role = format!("jgb_role_{tag}");
    admin(&format!(
        "CREATE ROLE {role} NOLOGIN;
         DO $$ BEGIN FOR i IN 0..{} LOOP
           EXECUTE format('CREATE ROLE jgb_{tag}_%s LOGIN IN ROLE {role}', i);
         END LOOP; END $$;",
        n - 1
    ));
    struct Drop_(String, u32, usize);
    impl Drop for Drop_ {
        fn drop(&mut self) {
            let _ = jitgate_tests::pg::exec(
                &jitgate_tests::pg::admin_url(),
                &format!(
                    "DO $$ BEGIN FOR i IN 0..{} LOOP EXECUTE format('DROP ROLE IF EXISTS jgb_{}_%s', i); END LOOP; END $$; DROP ROLE IF EXISTS {}",
                    self.2 - 1,
                    self.1,
                    self.0
                ),
            );
        }
    }
    let r2 = role.clone();
    Prepared {
        target: Arc::new(
            jitgate::provision::postgres::PostgresTarget::new(&admin_url(), false).expect("target"),
        ),
        group: role.clone(),
        subject: Box::new(move |i| format!("jgb_{tag}_{i}")),
        remaining: Box::new(move || {
            query(
                &admin_url(),
                &format!("SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = '{r2}'"),
            )
            .map(|rows| rows.len())
            .unwrap_or(usize::MAX)
        }),
        _keep: Box::new(Drop_(role, tag, n)),
    }
}

fn ldap(n: usize) -> Prepared {
    use jitgate_tests::slapd::{ADMIN_DN, ADMIN_PASSWORD, GROUP, Slapd};
    let slapd = Slapd::start();
    let mut ldif = format!("dn: {GROUP}\nchangetype: modify\nadd: member\n");
    for i in 0..n {
        ldif.push_str(&format!("member: uid=u{i},ou=people,dc=example,dc=org\n"));
    }
    slapd.ldif("ldapmodify", &ldif).expect("seed members");
    let target = jitgate::provision::ldap::LdapTarget::new(
        &slapd.url,
        ADMIN_DN,
        ADMIN_PASSWORD,
        jitgate::provision::ldap::UserLookup::Template(
            "uid={subject},ou=people,dc=example,dc=org".into(),
        ),
        None,
        false,
        None,
    )
    .expect("target");
    let slapd = Arc::new(slapd);
    let s2 = slapd.clone();
    Prepared {
        target: Arc::new(target),
        group: GROUP.to_string(),
        subject: Box::new(|i| format!("u{i}")),
        // The placeholder member stays.
        remaining: Box::new(move || s2.members(GROUP).len().saturating_sub(1)),
        _keep: Box::new(slapd),
    }
}

fn scim(n: usize) -> Prepared {
    use jitgate_tests::scim::{ScimServer, TOKEN};
    let server = ScimServer::start();
    let group = server.group("Helpdesk Admins");
    for i in 0..n {
        let id = server.user(&format!("u{i}"));
        server.add_member(&group, &id);
    }
    let target = jitgate::provision::scim::ScimTarget::new(&server.base, TOKEN).expect("target");
    let server = Arc::new(server);
    let s2 = server.clone();
    Prepared {
        target: Arc::new(target),
        group: "Helpdesk Admins".into(),
        subject: Box::new(|i| format!("u{i}")),
        remaining: Box::new(move || s2.members(&group).len()),
        _keep: Box::new(server),
    }
}

fn run(kind: &str, n: usize, template: &jitgate::Request) -> String {
    let prep_started = Instant::now();
    let p = match kind {
        "postgres" => postgres(n),
        "ldap" => ldap(n),
        "scim" => scim(n),
        other => panic!("unknown kind {other}: postgres, ldap or scim"),
    };
    let prep = prep_started.elapsed();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        jitgate::store::open(&dir.path().join("bench.db").display().to_string()).expect("store");
    let now = now_millis();
    let first_expiry = now + n as i64 + 3000;
    for i in 0..n {
        let at = first_expiry + (i as i64 * 1000) / n as i64;
        store
            .create_grant(
                &grant(i, kind, &p.group, &(p.subject)(i), now, at, template),
                Effects::default(),
            )
            .expect("insert");
    }
    assert!(
        now_millis() < first_expiry,
        "insert overran the first expiry"
    );
    let targets = Targets::new().with_provisioner(
        kind,
        TargetSettings {
            reconcile_interval: None,
            retry_base: Duration::from_millis(100),
            ..TargetSettings::new(p.target.clone())
        },
    );
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let service = Arc::new(
        Service::new(engine, store.clone(), ServiceConfig::default())
            .with_targets(Arc::new(targets)),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let wall = Instant::now();
    rt.block_on(async {
        let _bg = service
            .start_background(Arc::new(jitgate::provision::LogProvisioner))
            .expect("background");
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let st = store.clone();
            let done = tokio::task::spawn_blocking(move || {
                st.grants(&GrantFilter {
                    state: Some(GrantState::Expired),
                    limit: usize::MAX / 2,
                    ..GrantFilter::default()
                })
                .expect("list")
                .len()
            })
            .await
            .expect("join");
            if done >= n {
                break;
            }
        }
    });
    let wall = wall.elapsed();
    let mut lags: Vec<i64> = store
        .grants(&GrantFilter {
            state: Some(GrantState::Expired),
            limit: usize::MAX / 2,
            ..GrantFilter::default()
        })
        .expect("list")
        .iter()
        .filter_map(|g| g.revocation_lag_ms)
        .collect();
    lags.sort_unstable();
    assert_eq!(lags.len(), n, "every grant expired once");
    let left = (p.remaining)();
    assert_eq!(left, 0, "{kind}: {left} memberships left behind");
    format!(
        "| {kind} | {n} | 1 | {} | {} | {} | {:.1} | {:.1} |",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.last().copied().unwrap_or(0),
        wall.as_secs_f64() - (first_expiry - now) as f64 / 1000.0,
        prep.as_secs_f64()
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut kinds: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if kinds.is_empty() {
        kinds = vec!["postgres", "ldap", "scim"];
    }
    let template = jitgate_tests::request(&jitgate_tests::file_recovery_json());
    println!(
        "| provisioner | grants | window s | p50 lag ms | p99 lag ms | max lag ms | wall s after first expiry | setup s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for kind in kinds {
        println!("{}", run(kind, n, &template));
    }
}
