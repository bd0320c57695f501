//! `wasi-filesystem`: a policy that reads the host's files.
//!
//! Models a policy that tries to escape its sandbox: it is built with `std`
//! and bindings of its own (not the SDK), and `evaluate` reads `/etc/passwd`
//! and returns a deny carrying its length. The component therefore imports
//! `wasi:filesystem` (and the other `wasi:cli`/`wasi:io` interfaces `std`
//! brings). The host offers nothing but `jitgate:policy/host`, so it must fail
//! the load with a clear error naming the forbidden import; it must never
//! instantiate it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "policy-module",
});

use exports::jitgate::policy::policy::Guest;
use jitgate::policy::types::{PolicyInfo, Request, Verdict};

struct WasiFilesystem;

impl Guest for WasiFilesystem {
    fn info() -> PolicyInfo {
        PolicyInfo {
            name: "wasi-filesystem".to_string(),
            version: "0.1.0".to_string(),
            description: "hostile: evaluate reads /etc/passwd".to_string(),
            tasks: vec!["hostile-fs".to_string()],
            max_ttl: 3600,
        }
    }

    fn evaluate(_req: Request) -> Verdict {
        match std::fs::read_to_string(std::hint::black_box("/etc/passwd")) {
            Ok(text) => Verdict::Deny(format!("read /etc/passwd: {} bytes", text.len())),
            Err(e) => Verdict::Deny(format!("could not read /etc/passwd: {e}")),
        }
    }
}

export!(WasiFilesystem);
