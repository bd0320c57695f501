//! Run the real `jitgate serve` binary on a free loopback port, and a
//! webhook receiver that records what it is sent.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (token, name, roles, groups, subject-roles).
pub type TokenSpec = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// Tokens every test server knows.
pub const TOKENS: &[TokenSpec] = &[
    (
        "t-alice",
        "alice",
        &["requester"],
        &["helpdesk-tier2"],
        &["helpdesk"],
    ),
    (
        "t-carol",
        "carol",
        &["requester", "approver"],
        &["incident-commanders", "oncall"],
        &["sre"],
    ),
    ("t-pipe", "pipeline", &["pipeline"], &[], &[]),
    ("t-pipe2", "untrusted-pipeline", &["pipeline"], &[], &[]),
    (
        "t-bob",
        "bob",
        &["approver"],
        &["incident-commanders", "saas-owners", "helpdesk-leads"],
        &[],
    ),
    ("t-dave", "dave", &["approver"], &["finance"], &[]),
    ("t-admin", "admin", &["admin"], &[], &[]),
    ("t-audit", "auditor", &["auditor"], &[], &[]),
];

/// A temp folder of example policies without `business-hours`, so that
/// decisions do not depend on the wall clock's weekday.
pub fn clock_free_policies(dir: &Path) -> PathBuf {
    let p = dir.join("policies");
    let _ = std::fs::create_dir_all(&p);
    for name in [
        "baseline",
        "file-recovery",
        "saas-admin",
        "incident-triage",
        "break-glass",
    ] {
        let _ = std::fs::copy(crate::policy(name), p.join(format!("{name}.wasm")));
    }
    p
}

/// Which store a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `dir/jitgate.db`.
    Sqlite,
    /// A fresh PostgreSQL database, dropped with the [`TestStore`].
    Postgres,
}

/// The store of a test: its config value, and the database to drop after.
pub struct TestStore {
    /// The `store = "…"` value.
    pub url: String,
    /// The PostgreSQL database, if any (dropped with this value).
    pub db: Option<crate::pg::TestDb>,
}

impl TestStore {
    /// A store of `backend` for a test whose files live in `dir`.
    pub fn new(backend: Backend, dir: &Path) -> TestStore {
        match backend {
            Backend::Sqlite => TestStore {
                url: dir.join("jitgate.db").display().to_string(),
                db: None,
            },
            Backend::Postgres => {
                let db = crate::pg::TestDb::create();
                TestStore {
                    url: db.url.clone(),
                    db: Some(db),
                }
            }
        }
    }
}

/// Keeps a test's files and database alive (dropped after its server).
pub type Guard = (tempfile::TempDir, TestStore);

/// A server on a fresh store of `backend`, configured with `extra` TOML.
pub fn start(backend: Backend, extra: &str) -> (Guard, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(backend, dir.path());
    let cfg = write_config_with(dir.path(), &store.url, extra);
    let server = Server::start(&cfg);
    ((dir, store), server)
}

/// Write a config for a test server into `dir` (SQLite in `dir`).
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    write_config_with(dir, &dir.join("jitgate.db").display().to_string(), extra)
}

/// Write a config for a test server into `dir` using `store`.
pub fn write_config_with(dir: &Path, store: &str, extra: &str) -> PathBuf {
    let mut toml = format!(
        "store = \"{}\"\npolicies = \"{}\"\ncache-dir = \"{}\"\n",
        store,
        clock_free_policies(dir).display(),
        dir.join("cache").display()
    );
    toml.push_str(extra);
    // Every test server believes the test ticket systems (tests/support/tickets.rs).
    if !extra.contains("[[ticket-sources]]") {
        toml.push_str(crate::tickets::SOURCES);
    }
    // Test servers are debug builds sharing two cores with many other tests;
    // a preempted evaluation must not turn into a spurious timeout denial.
    // (The 50 ms default itself is exercised by tests/e2e/hostile.rs.)
    toml.push_str("\n[sandbox]\ntimeout-ms = 2000\n");
    for (token, name, roles, groups, subject_roles) in TOKENS {
        toml.push_str(&format!(
            "\n[[tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = {roles:?}\ngroups = {groups:?}\nsubject-roles = {subject_roles:?}\n",
            hex::encode(Sha256::digest(token.as_bytes()))
        ));
        // The test pipeline speaks for its ticket system (its bodies carry
        // ticket facts); `t-pipe2` does not.
        if *name == "pipeline" {
            toml.push_str("trusted-context = true\n");
        }
    }
    // An IdP run: people may also sign in with the suite IdP's tokens
    // (tests/support/idp.rs), which the request helpers then send.
    if crate::idp::enabled() && !extra.contains("[[identity-providers]]") {
        toml.push_str(&crate::idp::suite_config(dir));
    }
    let path = dir.join("jitgate.toml");
    let _ = std::fs::write(&path, toml);
    path
}

/// A running `jitgate serve`.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout/stderr lines so far.
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start with `config` and wait until it listens.
    pub fn start(config: &Path) -> Server {
        Server::start_with_env(config, &[])
    }

    /// Start with `config` and these extra environment variables.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_listening(config, "127.0.0.1:0", env)
    }

    /// Start with `config` on `listen` (a test that must name the port in
    /// its config first, e.g. an OIDC `redirect-uri`).
    pub fn start_listening(config: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(crate::jitgate_bin())
            .args(["serve", "--listen", listen, "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("JITGATE_LOG", "info")
            .env("JITGATE_WEBHOOK_SECRET", "test-secret-0123456789")
            .env(crate::tickets::SECRET_ENV, crate::tickets::SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn jitgate serve");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let (output, tx) = (output.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let announced = line
                        .split("listening on http://")
                        .nth(1)
                        .or_else(|| line.split("listening on https://").nth(1));
                    if let Some(rest) = announced {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                    if let Ok(mut o) = output.lock() {
                        o.push(line);
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if let Ok(mut o) = output.lock() {
                        o.push(line);
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {:?}",
                    output.lock().map(|o| o.clone())
                );
            }
        };
        Server {
            child,
            addr,
            output,
        }
    }

    /// Its process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL it (no graceful shutdown).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One webhook delivery received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-Jitgate-Event-Id`.
    pub event_id: String,
    /// `X-Jitgate-Signature`.
    pub signature: String,
    /// `X-Jitgate-Timestamp`.
    pub timestamp: String,
    /// Body.
    pub body: String,
}

/// A webhook receiver on a free port; answers 503 while `failing` is set.
pub struct Receiver {
    /// Its address.
    pub addr: SocketAddr,
    /// Deliveries answered 200.
    pub accepted: Arc<Mutex<Vec<Delivery>>>,
    /// Deliveries refused.
    pub refused: Arc<AtomicUsize>,
    /// Refuse everything while true.
    pub failing: Arc<AtomicBool>,
}

impl Receiver {
    /// Start listening.
    pub fn start(failing: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(failing));
        let (a, r, f) = (accepted.clone(), refused.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(s) => s,
                    Err(_) => continue,
                });
                let Some(req) = crate::receiver::read_request(&mut reader) else {
                    continue;
                };
                let header = |name: &str| req.header(name);
                let body = &req.body;
                let mut stream = stream;
                if f.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                } else {
                    if let Ok(mut list) = a.lock() {
                        list.push(Delivery {
                            event_id: header("x-jitgate-event-id"),
                            signature: header("x-jitgate-signature"),
                            timestamp: header("x-jitgate-timestamp"),
                            body: String::from_utf8_lossy(body).into_owned(),
                        });
                    }
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
        Receiver {
            addr,
            accepted,
            refused,
            failing,
        }
    }

    /// Event ids accepted so far.
    pub fn event_ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .map(|l| l.iter().map(|d| d.event_id.clone()).collect())
            .unwrap_or_default()
    }
}

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A request body (no `now`: the server sets it) for `task`.
pub fn body(id: &str, subject: &str, task: &str, ttl: u32) -> serde_json::Value {
    let now = now_secs();
    serde_json::json!({
        "id": id,
        "subject": {"id": subject, "kind": "human", "roles": ["helpdesk", "it-admin"], "groups": ["oncall", "break-glass"], "mfa-at": now},
        "task": task,
        "resource": "fileserver-01",
        "entitlement": if task == "saas-admin" { "okta:admin" } else { "operator" },
        "justification": "restore the deleted finance share for the incident",
        "requested-ttl": ttl,
        "ticket": {"id": format!("T-{id}"), "state": "open", "priority": 3, "assignee": subject, "opened-at": now - 600},
    })
}
