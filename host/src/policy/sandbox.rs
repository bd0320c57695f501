//! The sandbox every policy evaluation runs in, and its budget.
//!
//! A policy module is code a security team wrote, but the host must survive
//! it being wrong or hostile: an endless loop, a runaway allocation, a
//! bottomless recursion, a trap, an answer of absurd size, a torrent of log
//! lines. Each evaluation therefore gets a fresh `Store` (no state survives
//! between decisions) with these knobs, all explicit in [`SandboxLimits`]:
//!
//! * **epoch deadline** — wall-clock bound. A ticker thread advances the
//!   engine's epoch every [`TICK`]; a store traps once `timeout` worth of
//!   ticks have passed. Costs one relaxed atomic load per loop back-edge.
//! * **fuel** — deterministic instruction budget, independent of machine
//!   load. Costs a counter update per basic block.
//! * **memory / tables / instances caps** — enforced by a
//!   [`wasmtime::ResourceLimiter`] that also records *which* cap was hit, so
//!   the failure is reported as "memory limit", not as the trap that follows.
//! * **wasm stack** — native stack given to wasm frames.
//! * **bounded output** — at most `max_log_lines` lines of at most
//!   `max_reason_bytes` each; reasons truncated to `max_reason_bytes`; any
//!   string over `max_output_bytes` is a malformed answer.
//!
//! Every failure becomes a typed [`PolicyFailure`], which the combiner treats
//! as a deny.

use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

use super::bindings::host;

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(1);

/// The budget of one policy evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock bound per evaluation (epoch deadline). Default 50 ms.
    pub timeout: Duration,
    /// Instruction budget per evaluation. Default 10,000,000 (a small rule
    /// uses a few thousand).
    pub fuel: u64,
    /// Linear memory cap, bytes. Default 16 MiB.
    pub max_memory_bytes: usize,
    /// Table elements cap. Default 10,000.
    pub max_table_elements: usize,
    /// Instances per store (a component instantiates a few core instances).
    pub max_instances: usize,
    /// Tables per store.
    pub max_tables: usize,
    /// Memories per store.
    pub max_memories: usize,
    /// Native stack for wasm frames, bytes. Default 512 KiB.
    pub max_wasm_stack: usize,
    /// Log lines kept per evaluation; more is a malformed answer. Default 32.
    pub max_log_lines: usize,
    /// Reason and log line length kept, bytes. Default 1 KiB.
    pub max_reason_bytes: usize,
    /// Any returned string longer than this is a malformed answer. Default 64 KiB.
    pub max_output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            timeout: Duration::from_millis(50),
            fuel: 10_000_000,
            max_memory_bytes: 16 << 20,
            max_table_elements: 10_000,
            max_instances: 16,
            max_tables: 16,
            max_memories: 4,
            max_wasm_stack: 512 << 10,
            max_log_lines: 32,
            max_reason_bytes: 1024,
            max_output_bytes: 64 << 10,
        }
    }
}

impl SandboxLimits {
    /// Epoch ticks that make up `timeout` (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.timeout.as_micros() / TICK.as_micros()).max(1) as u64
    }
}

/// Why a policy produced no usable verdict. Every variant denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PolicyFailure {
    /// The epoch deadline passed.
    #[error("timed out after {limit_ms} ms")]
    Timeout {
        /// The deadline.
        limit_ms: u64,
    },
    /// The fuel budget ran out.
    #[error("ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The budget.
        fuel: u64,
    },
    /// Linear memory or tables would have grown past the cap.
    #[error("exceeded the memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap.
        limit_bytes: usize,
    },
    /// Recursion exhausted the wasm stack.
    #[error("overflowed its stack")]
    StackOverflow,
    /// Any other trap: a panic, `unreachable`, an out-of-bounds access.
    #[error("trapped: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
    },
    /// The answer broke the contract's bounds.
    #[error("returned a malformed answer: {detail}")]
    BadOutput {
        /// What was wrong.
        detail: String,
    },
    /// The module could not be instantiated in the sandbox.
    #[error("could not be instantiated: {message}")]
    Instantiate {
        /// wasmtime's description.
        message: String,
    },
}

/// One log line written by a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: &'static str,
    /// Text, truncated to `max_reason_bytes`.
    pub message: String,
}

/// Per-evaluation store data: limits bookkeeping and captured logs.
pub struct StoreState {
    limits: SandboxLimits,
    /// Set when the limiter refused growth, so the trap that follows is
    /// reported as the cap that caused it.
    pub(crate) memory_limit_hit: bool,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) log_overflow: usize,
}

impl StoreState {
    /// Fresh state for one evaluation.
    pub fn new(limits: SandboxLimits) -> Self {
        StoreState {
            limits,
            memory_limit_hit: false,
            logs: Vec::new(),
            log_overflow: 0,
        }
    }

    /// Forget the previous call's bookkeeping, for a reused (per-worker)
    /// store, and take this call's limits.
    pub(crate) fn reset(&mut self, limits: SandboxLimits) {
        self.limits = limits;
        self.memory_limit_hit = false;
        self.logs.clear();
        self.log_overflow = 0;
    }
}

/// Raised from the limiter so the guest traps at the growth attempt instead
/// of continuing with a failed allocation.
#[derive(Debug, thiserror::Error)]
#[error("resource limit reached")]
pub(crate) struct LimitReached;

impl wasmtime::ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.max_memory_bytes {
            self.memory_limit_hit = true;
            return Err(wasmtime::Error::new(LimitReached));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.max_table_elements {
            self.memory_limit_hit = true;
            return Err(wasmtime::Error::new(LimitReached));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.max_instances
    }

    fn tables(&self) -> usize {
        self.limits.max_tables
    }

    fn memories(&self) -> usize {
        self.limits.max_memories
    }
}

// The `types` interface has no functions; the bindings still want it named.
impl super::bindings::wit::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        if self.logs.len() >= self.limits.max_log_lines {
            self.log_overflow += 1;
            return;
        }
        let level = match level {
            host::LogLevel::Trace => "trace",
            host::LogLevel::Debug => "debug",
            host::LogLevel::Info => "info",
            host::LogLevel::Warn => "warn",
            host::LogLevel::Error => "error",
        };
        let message = truncate(message, self.limits.max_reason_bytes);
        self.logs.push(LogLine { level, message });
    }
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    const MARK: &str = "…[truncated]";
    if s.len() <= max {
        return s;
    }
    let mut cut = max.saturating_sub(MARK.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(MARK);
    s
}

/// Classify an error from instantiation or a call into a [`PolicyFailure`].
pub fn classify(
    err: &wasmtime::Error,
    state: &StoreState,
    limits: &SandboxLimits,
) -> PolicyFailure {
    if state.memory_limit_hit || err.downcast_ref::<LimitReached>().is_some() {
        return PolicyFailure::MemoryLimit {
            limit_bytes: limits.max_memory_bytes,
        };
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PolicyFailure::Timeout {
            limit_ms: limits.timeout.as_millis() as u64,
        },
        Some(wasmtime::Trap::OutOfFuel) => PolicyFailure::OutOfFuel { fuel: limits.fuel },
        Some(wasmtime::Trap::StackOverflow) => PolicyFailure::StackOverflow,
        Some(trap) => {
            let last_error_log = state
                .logs
                .iter()
                .rev()
                .find(|l| l.level == "error")
                .map(|l| format!(" (policy logged: {})", l.message))
                .unwrap_or_default();
            PolicyFailure::Trap {
                message: format!("{trap}{last_error_log}"),
            }
        }
        None => PolicyFailure::Trap {
            message: format!("{err:#}"),
        },
    }
}

/// Advances an engine's epoch every [`TICK`] while evaluations run, and
/// parks while none do (an idle service should not wake 1,000 times a
/// second). Evaluations hold a [`Ticking`] guard; the first guard wakes the
/// thread. A deadline is set relative to the current epoch, so a parked
/// ticker loses no time: ticks resume before any guest code runs.
pub struct EpochTicker {
    shared: Arc<TickerShared>,
    handle: Option<std::thread::JoinHandle<()>>,
}

struct TickerShared {
    /// (evaluations in flight, stop requested)
    state: std::sync::Mutex<(usize, bool)>,
    wake: std::sync::Condvar,
}

/// Keeps the ticker ticking while held.
pub struct Ticking<'a>(&'a TickerShared);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.0.state.lock() {
            st.0 = st.0.saturating_sub(1);
        }
    }
}

impl EpochTicker {
    /// Start the ticker thread for `engine` (parked until first used).
    pub fn start(engine: wasmtime::Engine) -> std::io::Result<Self> {
        let shared = Arc::new(TickerShared {
            state: std::sync::Mutex::new((0, false)),
            wake: std::sync::Condvar::new(),
        });
        let t = shared.clone();
        let handle = std::thread::Builder::new()
            .name("jitgate-epoch".into())
            .spawn(move || {
                loop {
                    {
                        let Ok(mut st) = t.state.lock() else { return };
                        while st.0 == 0 && !st.1 {
                            st = match t.wake.wait(st) {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                        }
                        if st.1 {
                            return;
                        }
                    }
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            shared,
            handle: Some(handle),
        })
    }

    /// Mark an evaluation in flight for as long as the guard lives.
    pub fn ticking(&self) -> Ticking<'_> {
        if let Ok(mut st) = self.shared.state.lock() {
            st.0 += 1;
            if st.0 == 1 {
                self.shared.wake.notify_one();
            }
        }
        Ticking(&self.shared)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.1 = true;
        }
        self.shared.wake.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries_and_bound() {
        let s = "é".repeat(1000); // 2000 bytes
        let t = truncate(s, 1024);
        assert!(t.len() <= 1024, "{}", t.len());
        assert!(t.ends_with("…[truncated]"));
        assert_eq!(truncate("short".into(), 1024), "short");
    }

    #[test]
    fn deadline_ticks_round_down_but_never_zero() {
        let mut l = SandboxLimits::default();
        assert_eq!(l.deadline_ticks(), 50);
        l.timeout = Duration::from_micros(10);
        assert_eq!(l.deadline_ticks(), 1);
    }
}
