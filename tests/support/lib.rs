//! Shared support for the end-to-end tests: where the compiled example
//! policies, hostile guests and the `jitgate` binary are, and request
//! builders.
//!
//! The wasm modules are built by `./dev policies` and `./dev guests` (which
//! `./dev test` runs first); a test that finds them missing says so instead
//! of silently skipping.

use std::path::{Path, PathBuf};

pub mod idp;
pub mod wat;

/// The Unix milliseconds of an answer's time field, which must be RFC 3339
/// UTC with milliseconds (`2026-12-06T14:03:11.123Z`); panics naming the
/// value otherwise.
pub fn ms(v: &serde_json::Value) -> i64 {
    v.as_str()
        .and_then(jitgate::timefmt::parse_ms)
        .unwrap_or_else(|| panic!("not an RFC 3339 UTC time with milliseconds: {v}"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn dir_from(var: &str, default: &str, how: &str) -> PathBuf {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join(default));
    assert!(
        dir.is_dir(),
        "{} does not exist: run `{how}` first (or `./dev test`, which does)",
        dir.display()
    );
    dir
}

/// Folder of the compiled example policies (`<name>.wasm`).
pub fn policy_dir() -> PathBuf {
    dir_from("JITGATE_POLICY_DIR", "policies", "./dev policies")
}

/// Folder of the compiled hostile guests (`<name>.wasm`).
pub fn guest_dir() -> PathBuf {
    dir_from("JITGATE_GUEST_DIR", "guests", "./dev guests")
}

/// One example policy module.
pub fn policy(name: &str) -> PathBuf {
    policy_dir().join(format!("{name}.wasm"))
}

/// One hostile guest module.
pub fn guest(name: &str) -> PathBuf {
    let p = guest_dir().join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing: run `./dev guests`", p.display());
    p
}

/// The `jitgate` binary cargo built next to this test executable (or next
/// to a binary of the bench workspace, which uses these helpers too).
pub fn jitgate_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/e2e-xxxx → target/<profile>/jitgate;
    // target/bench/release/jitgate-bench → target/bench/release/jitgate.
    let beside = |dir: Option<&Path>| dir.map(|d| d.join("jitgate")).filter(|b| b.is_file());
    let bin = beside(exe.parent().and_then(Path::parent))
        .or_else(|| beside(exe.parent()))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "jitgate binary not found at {}",
        bin.display()
    );
    bin
}

/// 2026-11-25T10:00:00Z, a Wednesday.
pub const WED_10_UTC: u64 = 1_795_600_800;

/// A valid file-recovery request by a helpdesk engineer on their own ticket,
/// Wednesday 11:00 local (UTC+1), as JSON so tests can vary any field.
pub fn file_recovery_json() -> serde_json::Value {
    serde_json::json!({
        "id": "req-1",
        "subject": {"id": "alice", "kind": "human", "roles": ["helpdesk"], "groups": [], "mfa-at": WED_10_UTC - 60},
        "task": "file-recovery",
        "resource": "fileserver-01",
        "entitlement": "backup-operator",
        "justification": "restore the deleted finance share",
        "requested-ttl": 1800,
        "ticket": {"id": "INC-1", "state": "open", "priority": 3, "assignee": "alice", "opened-at": WED_10_UTC - 3600},
        "now": WED_10_UTC,
        "attributes": {"tz-offset-minutes": "60"}
    })
}

/// Parse a JSON request value.
pub fn request(v: &serde_json::Value) -> jitgate::Request {
    match jitgate::request::from_json(&v.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("test request does not parse: {e}"),
    }
}

/// A request for a hostile guest's task (no ticket needed: no baseline).
pub fn task_request(task: &str) -> jitgate::Request {
    let mut v = file_recovery_json();
    v["task"] = task.into();
    request(&v)
}

pub mod app;
pub mod browser;
pub mod http;
pub mod metrics;
pub mod pg;
pub mod pg_cluster;
pub mod proxy;
pub mod receiver;
pub mod scim;
pub mod server;
pub mod slapd;
pub mod smtp;
pub mod tickets;

/// Run `jitgate audit --store STORE ARGS…`: (exit success, stdout).
pub fn jitgate_audit(store: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(jitgate_bin())
        .args(["audit", "--store", store])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run jitgate audit: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
