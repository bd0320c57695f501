//! Logging from a policy.
//!
//! On wasm a line goes to the host's `log` import, which keeps a bounded
//! number of lines in the decision's explanation. Natively it is captured per
//! thread so that unit tests can assert on it with [`crate::testing::take_logs`].

/// Severity of a log line.
///
/// Levels are ordered from [`Trace`](LogLevel::Trace) (least) to
/// [`Error`](LogLevel::Error) (most severe).
///
/// ```
/// use jitgate_sdk::LogLevel;
///
/// assert!(LogLevel::Warn > LogLevel::Info);
/// assert!(LogLevel::Trace < LogLevel::Debug);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something wrong.
    Error,
}

/// Record one line in the decision's explanation.
///
/// The host keeps at most 32 lines per evaluation and fails the evaluation
/// (deny) past that, so log facts, not loops. Natively the line is captured
/// for [`testing::take_logs`](crate::testing::take_logs).
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, take_logs};
///
/// let req = RequestBuilder::new("file-recovery").no_ticket().build();
/// if req.ticket.is_none() {
///     log(LogLevel::Info, "no ticket: asking for approval");
/// }
/// assert_eq!(
///     take_logs(),
///     [(LogLevel::Info, "no ticket: asking for approval".to_string())]
/// );
/// ```
pub fn log(level: LogLevel, message: &str) {
    imp::log(level, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::LogLevel;
    use crate::__private::bindings::jitgate::policy::host;

    pub fn log(level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => host::LogLevel::Trace,
            LogLevel::Debug => host::LogLevel::Debug,
            LogLevel::Info => host::LogLevel::Info,
            LogLevel::Warn => host::LogLevel::Warn,
            LogLevel::Error => host::LogLevel::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use super::LogLevel;
    use std::cell::RefCell;
    use std::string::{String, ToString};
    use std::vec::Vec;

    std::thread_local! {
        pub(crate) static CAPTURED: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn log(level: LogLevel, message: &str) {
        CAPTURED.with(|c| c.borrow_mut().push((level, message.to_string())));
    }
}
