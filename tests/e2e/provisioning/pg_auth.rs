//! Dynamic PostgreSQL logins against a private cluster that checks
//! passwords (SCRAM-SHA-256 over TCP; tests/support/pg_cluster.rs): the
//! shown password connects while the grant is active, a wrong one never
//! does, and after the end the login cannot connect. And a grant's
//! `expires-at` is the decided one: time spent provisioning counts against
//! it, and the login's `VALID UNTIL` is that same instant.

use super::*;
use jitgate_tests::pg_cluster::PgCluster;

const ROLE: &str = "app_readonly";

fn cluster_setup(b: Backend, admin_url: String, extra: &str) -> Setup {
    Setup::new(
        b,
        &format!(
            "[[provisioners]]\nname = \"db\"\nkind = \"postgres\"\nurl-env = \"JITGATE_DB_ADMIN_URL\"\n\
             dynamic = true\nretry-ms = 100\nreconcile-interval = 0\n{extra}\n\
             [[entitlements]]\nname = \"operator\"\nprovisioner = \"db\"\nrole = \"{ROLE}\"\n"
        ),
        admin_url,
    )
}

fn started_cluster() -> PgCluster {
    let c = PgCluster::start();
    exec(&c.admin_url(), &format!("CREATE ROLE {ROLE} NOLOGIN")).expect("create the role");
    // The cluster really checks: no password, or a wrong one, is refused.
    let no_password = format!("postgres://postgres@127.0.0.1:{}/postgres", c.port);
    assert!(exec(&no_password, "SELECT 1").is_err(), "trust auth on TCP");
    assert!(exec(&c.url("postgres", "wrong"), "SELECT 1").is_err());
    c
}

fn credential(g: &Value) -> (String, String) {
    let text = |k: &str| {
        g["credential"][k]
            .as_str()
            .unwrap_or_else(|| panic!("no credential.{k}: {g}"))
            .to_string()
    };
    (text("login"), text("password"))
}

fn role_exists(c: &PgCluster, login: &str) -> bool {
    !query(
        &c.admin_url(),
        &format!("SELECT 1 FROM pg_roles WHERE rolname = '{login}'"),
    )
    .expect("query")
    .is_empty()
}

/// Connect as `login` and say who the session is and whether it holds
/// the entitlement's role.
fn session(c: &PgCluster, login: &str, password: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    refused(&c.url(login, password))?;
    query(
        &c.url(login, password),
        &format!("SELECT current_user, pg_has_role('{ROLE}', 'MEMBER')"),
    )
}

/// Connect to `url`: `Err` with the server's own message (why a login
/// was refused) when it cannot.
fn refused(url: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string())),
        }
    })
}

fn dynamic_login_password_is_checked_while_active_and_refused_after(b: Backend) {
    let c = started_cluster();
    let setup = cluster_setup(b, c.admin_url(), "");
    let s = setup.start();
    let g = request(&s, "pw", "alice", 600);
    let (login, password) = credential(&g);
    let id = g["id"].as_str().expect("id").to_string();
    wait_state(&s, &id, "active");
    assert_eq!(
        session(&c, &login, &password).expect("the shown password connects while active"),
        vec![vec![Some(login.clone()), Some("t".to_string())]]
    );
    let wrong = format!("{password}x");
    let refused = session(&c, &login, &wrong).expect_err("a wrong password connected");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    revoke_and_wait(&s, &id);
    let after = session(&c, &login, &password).expect_err("connects after the end");
    assert!(after.contains("password authentication failed"), "{after}");
    assert!(!role_exists(&c, &login), "the login role was not dropped");
}

/// With jitgate down at the expiry, PostgreSQL itself refuses the login
/// (its `VALID UNTIL`); jitgate drops the role once it is back.
fn dynamic_login_expires_at_the_target_even_with_jitgate_down(b: Backend) {
    let c = started_cluster();
    let setup = cluster_setup(b, c.admin_url(), "");
    let s = setup.start();
    let g = request(&s, "vu", "bob", 6);
    let (login, password) = credential(&g);
    let id = g["id"].as_str().expect("id").to_string();
    let expires_at = jitgate_tests::ms(&g["expires-at"]);
    wait_state(&s, &id, "active");
    session(&c, &login, &password).expect("connects while active");
    s.kill();
    let past = wait_for(WAIT, || (now_ms() as i64 > expires_at + 1000).then_some(()));
    assert!(past.is_some());
    assert!(
        role_exists(&c, &login),
        "(jitgate is down: nobody dropped it)"
    );
    let refused = session(&c, &login, &password).expect_err("connects past VALID UNTIL");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    let s = setup.start();
    wait_state(&s, &id, "expired");
    assert!(!role_exists(&c, &login), "the login role was not dropped");
}

/// `expires-at` is fixed when the grant is decided (or approved): a slow
/// target delays `active` but does not extend the grant, and the login's
/// `VALID UNTIL` is that instant (to the second, never later).
fn expires_at_is_the_decided_one_not_counted_from_read_back(b: Backend) {
    let c = started_cluster();
    let proxy = Proxy::start(format!("127.0.0.1:{}", c.port).parse().expect("addr"));
    proxy.down();
    let admin = format!(
        "postgres://postgres:{}@{}/postgres",
        jitgate_tests::pg_cluster::SUPERUSER_PASSWORD,
        proxy.addr
    );
    let setup = cluster_setup(b, admin, "max-attempts = 1000");
    let s = setup.start();
    let g = request(&s, "late", "carol", 600);
    let (login, _) = credential(&g);
    let id = g["id"].as_str().expect("id").to_string();
    assert_eq!(g["state"], "provisioning", "{g}");
    let decided = jitgate_tests::ms(&g["expires-at"]);
    let issued = jitgate_tests::ms(&g["issued-at"]);
    assert_eq!(decided - issued, 600_000, "{g}");
    // The target is unreachable for a while (applies fail and are
    // retried); then it answers.
    std::thread::sleep(Duration::from_millis(1500));
    proxy.up();
    let active = wait_state(&s, &id, "active");
    let applied = jitgate_tests::ms(&active["provisioning"]["applied-at"]);
    assert!(applied > issued + 1000, "the target was down: {active}");
    assert_eq!(
        jitgate_tests::ms(&active["expires-at"]),
        decided,
        "moved at read-back: {active}"
    );
    let until = query(
        &c.admin_url(),
        &format!(
            "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '{login}'"
        ),
    )
    .expect("query");
    assert_eq!(
        until,
        vec![vec![Some((decided / 1000).to_string())]],
        "VALID UNTIL is not the grant's expires-at"
    );
    revoke_and_wait(&s, &id);
}

/// A target down for the whole of a short grant: the grant never becomes
/// `active`, expires at its decided `expires-at` (through
/// `deprovisioning`), and nothing is left once the target is back.
fn a_grant_still_provisioning_at_its_expiry_expires_without_activating(b: Backend) {
    let c = started_cluster();
    let proxy = Proxy::start(format!("127.0.0.1:{}", c.port).parse().expect("addr"));
    proxy.down();
    let admin = format!(
        "postgres://postgres:{}@{}/postgres",
        jitgate_tests::pg_cluster::SUPERUSER_PASSWORD,
        proxy.addr
    );
    let setup = cluster_setup(b, admin, "max-attempts = 1000");
    let s = setup.start();
    let g = request(&s, "never", "dave", 3);
    let (login, password) = credential(&g);
    let id = g["id"].as_str().expect("id").to_string();
    let decided = jitgate_tests::ms(&g["expires-at"]);
    let ending = wait_state(&s, &id, "deprovisioning");
    assert_eq!(
        jitgate_tests::ms(&ending["expires-at"]),
        decided,
        "{ending}"
    );
    proxy.up();
    let ended = wait_state(&s, &id, "expired");
    assert!(ended["provisioning"]["applied-at"].is_null(), "{ended}");
    let activations = audit(&s)
        .iter()
        .filter(|r| r["grant-id"] == id.as_str() && r["data"]["to"] == "active")
        .count();
    assert_eq!(activations, 0, "activated after its expiry");
    assert!(!role_exists(&c, &login), "a login left behind");
    assert!(session(&c, &login, &password).is_err());
}

both_stores!(
    dynamic_login_password_is_checked_while_active_and_refused_after,
    dynamic_login_expires_at_the_target_even_with_jitgate_down,
    expires_at_is_the_decided_one_not_counted_from_read_back,
    a_grant_still_provisioning_at_its_expiry_expires_without_activating,
);
