//! `log-flood`: a policy whose `evaluate` logs 100,000 lines.
//!
//! Models a policy that logs in a loop and would flood the decision's
//! explanation and the host's memory. It then returns an ordinary allow for
//! 60 seconds. `info` is well behaved, so the module loads; the host must bound
//! the log (the contract keeps at most 32 lines) and deny the request with a
//! typed reason once the guest goes past the bound, not grant it.
#![no_std]

use core::hint::black_box;
use jitgate_sdk::prelude::*;

/// How many lines to log.
const LINES: u32 = 100_000;

/// The policy.
pub struct LogFlood;

impl Policy for LogFlood {
    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "log-flood",
            "0.1.0",
            "hostile: evaluate logs 100000 lines",
            &["hostile-log-flood"],
            3600,
        )
    }

    fn evaluate(_req: &Request) -> Verdict {
        for i in 0..black_box(LINES) {
            log(LogLevel::Info, &format!("flood line {i}"));
        }
        Verdict::allow(60, "logged 100000 lines")
    }
}

export_policy!(LogFlood);
