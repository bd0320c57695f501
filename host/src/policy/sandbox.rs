//! The sandbox every policy evaluation runs in, and its budget.
//!
//! One file past 500 lines: every limit of an evaluation and the code that
//! enforces it, side by side, so no knob is documented in one place and
//! applied in another.
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
//!   [`wasmtime::ResourceLimiter`] that sums every memory and table of the
//!   instance into one byte budget (a component may define several), and
//!   records *which* cap was hit, so the failure is reported as the cap, not
//!   as the trap that follows.
//! * **bytes copied out per call** — wasmtime's hostcall fuel, sized from the
//!   output bounds: lifting an answer (or a `log` argument) stops with a
//!   malformed-answer failure once it has copied more than the largest
//!   well-formed answer, so the host never allocates for a string the
//!   bounds would refuse anyway.
//! * **deadline inside host functions** — `log` checks the deadline itself,
//!   so a guest that spends its time in host calls cannot outrun it.
//! * **wasm stack** — native stack given to wasm frames.
//! * **bounded output** — at most `max_log_lines` lines of at most
//!   `max_reason_bytes` each, copied into a buffer of their kept size;
//!   reasons truncated to `max_reason_bytes`; any string over
//!   `max_output_bytes` is a malformed answer. Control characters in kept
//!   text are escaped, so no policy string can drive a terminal or forge a
//!   log line.
//!
//! Every failure becomes a typed [`PolicyFailure`], which the combiner treats
//! as a deny.
//!
//! One file past 500 lines: every budget of one evaluation (deadline, fuel, memory, copy caps, output bounds) and its failure taxonomy; the budget is only reviewable whole.

use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::host;
use crate::decision::LogLevel;

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
    /// A module file larger than this is refused before it is compiled.
    /// Default 4 MiB (the example policies are 60-200 KiB).
    pub max_module_bytes: usize,
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
            max_module_bytes: 4 << 20,
        }
    }
}

/// Approver groups one require-approval may name (the contract's bound).
pub const MAX_APPROVER_GROUPS: usize = 64;

/// Tasks one policy may declare.
pub const MAX_TASKS: usize = 64;

/// Bounds on `info` strings, bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// See [`MAX_NAME_BYTES`].
pub const MAX_VERSION_BYTES: usize = 64;
/// See [`MAX_NAME_BYTES`].
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// See [`MAX_NAME_BYTES`].
pub const MAX_TASK_BYTES: usize = 1024;

/// What wasmtime charges per element when it lifts a `list<string>`: the
/// host-side `String` it allocates.
const LIST_STRING_ELEMENT: usize = std::mem::size_of::<String>();

/// What a table element costs the host, bytes: one pointer-sized slot.
/// Tables count against the same budget as memories.
pub const TABLE_ELEMENT_BYTES: usize = 8;

impl SandboxLimits {
    /// Epoch ticks that make up `timeout` (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.timeout.as_micros() / TICK.as_micros()).max(1) as u64
    }

    /// Bytes wasmtime may copy out of the guest in one call during an
    /// evaluation: the largest well-formed verdict (one reason of
    /// `max_output_bytes` and `MAX_APPROVER_GROUPS` groups of
    /// `max_reason_bytes`), which also bounds one `log` argument. Anything
    /// larger is refused while it is being lifted, before the host has
    /// allocated for it.
    pub fn verdict_copy_bytes(&self) -> usize {
        self.max_output_bytes.saturating_add(
            MAX_APPROVER_GROUPS.saturating_mul(self.max_reason_bytes + LIST_STRING_ELEMENT),
        )
    }

    /// The same for `info`: the largest answer `check_info` accepts.
    pub fn info_copy_bytes(&self) -> usize {
        MAX_NAME_BYTES
            + MAX_VERSION_BYTES
            + MAX_DESCRIPTION_BYTES
            + MAX_TASKS * (MAX_TASK_BYTES + LIST_STRING_ELEMENT)
    }
}

/// Why a policy produced no usable verdict. Every variant denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
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
    /// Its memories and tables together would have grown past the cap.
    #[error("exceeded the memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap.
        limit_bytes: usize,
    },
    /// A table would have grown past the element cap.
    #[error("exceeded the table limit of {limit_elements} elements")]
    TableLimit {
        /// The cap.
        limit_elements: usize,
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
    /// The host had no instance slot free: every slot of the pool is in
    /// use. Not the policy's fault and not a verdict: the caller must answer
    /// "busy, retry" and record nothing.
    #[error("the host is overloaded: no policy instance slot is free")]
    Overloaded,
}

impl PolicyFailure {
    /// The failure says nothing about the request (the host was busy), so
    /// no decision may be recorded from it.
    pub fn is_overload(&self) -> bool {
        matches!(self, PolicyFailure::Overloaded)
    }
}

/// One log line written by a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Text, truncated to `max_reason_bytes`.
    pub message: String,
}

/// Which cap the limiter refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// The summed memory-and-table byte budget.
    Memory,
    /// One table's element cap.
    Table,
}

/// Per-evaluation store data: limits bookkeeping and captured logs.
pub struct StoreState {
    limits: SandboxLimits,
    /// Set when the limiter refused growth, so the trap that follows is
    /// reported as the cap that caused it.
    pub(crate) limit_hit: Option<LimitHit>,
    /// Bytes of every memory and table of the instance, summed: the budget
    /// is per instance, not per memory (a component may define several).
    /// Lives as long as the instance (a warm instance keeps its memories).
    /// In a store shared by the policies of one decision it is restarted
    /// for each policy ([`StoreState::next_policy`]): an earlier policy's
    /// memories can no longer grow (nothing calls into that instance
    /// again), so the count is the current policy's alone.
    reserved: usize,
    /// Policies instantiated in this store so far (at least 1). wasmtime
    /// counts instances, memories and tables per store, so the store-wide
    /// count limits are the per-policy ones times this.
    policies: usize,
    /// When this call's time is up; host functions check it themselves, as
    /// the epoch is only seen by guest code.
    deadline: Option<Instant>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) log_overflow: usize,
    /// Coverage mode (`jitgate test --coverage`, a coverage build): lines
    /// starting with [`COVERAGE_MARKER`] are taken out of the log into
    /// `coverage` instead. `false` everywhere else, where such a line is an
    /// ordinary log line.
    pub(crate) divert_coverage: bool,
    /// Distinct coverage markers of this call, at most
    /// [`MAX_COVERAGE_MARKERS`], each at most `max_reason_bytes`.
    pub(crate) coverage: Vec<String>,
}

/// What a coverage marker line starts with (the SDK's
/// `jitgate_sdk::coverage::MARKER`), then `LINE:COLUMN FILE`.
pub const COVERAGE_MARKER: &str = "jitgate-coverage/1 ";

/// Distinct coverage markers kept per evaluation; more are dropped.
pub const MAX_COVERAGE_MARKERS: usize = 1024;

impl StoreState {
    /// Fresh state for one evaluation.
    pub fn new(limits: SandboxLimits) -> Self {
        StoreState {
            limits,
            limit_hit: None,
            reserved: 0,
            policies: 1,
            deadline: None,
            logs: Vec::new(),
            log_overflow: 0,
            divert_coverage: false,
            coverage: Vec::new(),
        }
    }

    /// Forget the previous call's bookkeeping, for a reused (per-worker)
    /// store, and take this call's limits. The memory count stays: the
    /// instance keeps its memories.
    pub(crate) fn reset(&mut self, limits: SandboxLimits) {
        self.limits = limits;
        self.limit_hit = None;
        self.deadline = None;
        self.logs.clear();
        self.log_overflow = 0;
        self.coverage.clear();
    }

    /// Make way for the next policy of a decision in the same store: the
    /// previous policy's bookkeeping is forgotten (its logs and coverage
    /// must have been taken already), its memory budget starts over, and
    /// the store-wide instance/memory/table counts admit one more policy.
    /// The caller must then re-install the limiter so wasmtime reads the
    /// new counts.
    pub(crate) fn next_policy(&mut self, limits: SandboxLimits, divert_coverage: bool) {
        self.reset(limits);
        self.reserved = 0;
        self.policies = self.policies.saturating_add(1);
        self.divert_coverage = divert_coverage;
    }

    /// Start this call's clock (with the epoch deadline).
    pub(crate) fn start_deadline(&mut self) {
        self.deadline = Instant::now().checked_add(self.limits.timeout);
    }

    fn grow(&mut self, current: usize, desired: usize, hit: LimitHit) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        let total = self.reserved.saturating_add(delta);
        if total > self.limits.max_memory_bytes {
            self.limit_hit = Some(hit);
            return Err(wasmtime::Error::new(LimitReached));
        }
        // Counted once allowed, even if wasmtime then fails the growth for
        // another reason: over-counting only ever refuses sooner, while
        // taking a growth back on `memory_grow_failed` could be tricked
        // (wasmtime also calls it for growth the limiter never saw).
        self.reserved = total;
        Ok(true)
    }
}

/// Raised from the limiter so the guest traps at the growth attempt instead
/// of continuing with a failed allocation.
#[derive(Debug, thiserror::Error)]
#[error("resource limit reached")]
pub(crate) struct LimitReached;

/// Raised from a host function called after the deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline passed in a host call")]
pub(crate) struct DeadlinePassed;

impl wasmtime::ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired, LimitHit::Memory)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.max_table_elements {
            self.limit_hit = Some(LimitHit::Table);
            return Err(wasmtime::Error::new(LimitReached));
        }
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
            LimitHit::Memory,
        )
    }

    // Store-wide counts: per policy times the policies in the store. With
    // the pooling allocator (the default) each component is also held to
    // the per-policy counts exactly (`max_*_per_component`); on demand, a
    // later policy of a shared store may use what earlier ones left, and
    // the decision as a whole never exceeds what separate stores allowed.
    fn instances(&self) -> usize {
        self.limits.max_instances.saturating_mul(self.policies)
    }

    fn tables(&self) -> usize {
        self.limits.max_tables.saturating_mul(self.policies)
    }

    fn memories(&self) -> usize {
        self.limits.max_memories.saturating_mul(self.policies)
    }
}

// The `types` interface has no functions; the bindings still want it named.
impl super::bindings::wit::Host for StoreState {}

impl super::bindings::v0_1::wit::Host for StoreState {}

/// A 0.1.0 module's `log`: the same function under the old interface name.
impl super::bindings::v0_1::host::Host for StoreState {
    fn log(
        &mut self,
        level: super::bindings::v0_1::host::LogLevel,
        message: String,
    ) -> wasmtime::Result<()> {
        use super::bindings::v0_1::host::LogLevel as Old;
        let level = match level {
            Old::Trace => host::LogLevel::Trace,
            Old::Debug => host::LogLevel::Debug,
            Old::Info => host::LogLevel::Info,
            Old::Warn => host::LogLevel::Warn,
            Old::Error => host::LogLevel::Error,
        };
        host::Host::log(self, level, message)
    }
}

impl host::Host for StoreState {
    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        // Guest code sees the epoch only between host calls; a guest that
        // spends its time here (long lines, back to back) is stopped here.
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(wasmtime::Error::new(DeadlinePassed));
        }
        if self.divert_coverage
            && let Some(at) = message.strip_prefix(COVERAGE_MARKER)
        {
            // Not a log line: neither counted nor kept in the explanation.
            if at.len() <= self.limits.max_reason_bytes
                && self.coverage.len() < MAX_COVERAGE_MARKERS
                && !self.coverage.iter().any(|c| c == at)
            {
                self.coverage.push(at.to_string());
            }
            return Ok(());
        }
        if self.logs.len() >= self.limits.max_log_lines {
            self.log_overflow += 1;
            return Ok(());
        }
        let level = match level {
            host::LogLevel::Trace => LogLevel::Trace,
            host::LogLevel::Debug => LogLevel::Debug,
            host::LogLevel::Info => LogLevel::Info,
            host::LogLevel::Warn => LogLevel::Warn,
            host::LogLevel::Error => LogLevel::Error,
        };
        // A fresh buffer of the kept size: truncating `message` in place
        // would keep its whole allocation alive with the line.
        let message = keep_owned(message, self.limits.max_reason_bytes);
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

/// Characters escaped in kept text: C0 and C1 controls (newlines, ESC that
/// starts ANSI/OSC sequences, DEL) and the bidirectional overrides that make
/// a terminal show text in another order than it is stored.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

fn escaped_len(c: char) -> usize {
    match c {
        '\n' | '\r' | '\t' => 2,
        c if needs_escape(c) => format!("{:x}", c as u32).len() + 4,
        c => c.len_utf8(),
    }
}

/// `s` with every character `needs_escape` says written as an escape
/// (`\n`, `\u{1b}`), so that it prints as one inert line.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    std::borrow::Cow::Owned(out)
}

/// A new string of at most `max` bytes: `s` escaped (see [`escape`]) and,
/// if that does not fit, cut on a character boundary with a mark. The
/// result owns a buffer of its own size, never `s`'s.
pub fn keep(s: &str, max: usize) -> String {
    const MARK: &str = "…[truncated]";
    let full: usize = s.chars().map(escaped_len).sum();
    let room = if full <= max {
        max
    } else {
        max.saturating_sub(MARK.len())
    };
    let mut out = String::with_capacity(full.min(max));
    for c in s.chars() {
        if out.len() + escaped_len(c) > room {
            break;
        }
        push_escaped(&mut out, c);
    }
    if full > max {
        out.push_str(MARK);
    }
    out
}

/// [`keep`] for an owned string: returned as it is (no copy) when it is
/// already within `max`, owns no more than `max` bytes and has nothing to
/// escape, which is the ordinary case.
pub fn keep_owned(s: String, max: usize) -> String {
    if s.capacity() <= max && !s.chars().any(needs_escape) {
        return s;
    }
    keep(&s, max)
}

/// The text wasmtime gives a call that copied more than its hostcall fuel.
/// Its error type is private; the message is the one stable handle (a test
/// fails if it changes).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Classify an error from instantiation or a call into a [`PolicyFailure`].
pub fn classify(
    err: &wasmtime::Error,
    state: &StoreState,
    limits: &SandboxLimits,
) -> PolicyFailure {
    match state.limit_hit {
        Some(LimitHit::Table) => {
            return PolicyFailure::TableLimit {
                limit_elements: limits.max_table_elements,
            };
        }
        Some(LimitHit::Memory) => {
            return PolicyFailure::MemoryLimit {
                limit_bytes: limits.max_memory_bytes,
            };
        }
        None => {}
    }
    if err.downcast_ref::<DeadlinePassed>().is_some() {
        return PolicyFailure::Timeout {
            limit_ms: limits.timeout.as_millis() as u64,
        };
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return PolicyFailure::Overloaded;
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
                .find(|l| l.level == LogLevel::Error)
                .map(|l| format!(" (policy logged: {})", l.message))
                .unwrap_or_default();
            PolicyFailure::Trap {
                message: format!("{trap}{last_error_log}"),
            }
        }
        None => {
            let message = format!("{err:#}");
            if message.contains(HOSTCALL_FUEL_EXHAUSTED) {
                return PolicyFailure::BadOutput {
                    detail: "copied more bytes out of the sandbox in one call than the largest \
                             well-formed answer"
                        .into(),
                };
            }
            PolicyFailure::Trap {
                message: keep(&message, limits.max_output_bytes),
            }
        }
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
    fn keep_respects_char_boundaries_and_bound() {
        let s = "é".repeat(1000); // 2000 bytes
        let t = keep(&s, 1024);
        assert!(t.len() <= 1024, "{}", t.len());
        assert!(t.ends_with("…[truncated]"));
        assert!(t.capacity() <= 1024, "{}", t.capacity());
        assert_eq!(keep("short", 1024), "short");
        let big = String::from("x").repeat(4096);
        let kept = keep_owned(big, 1024);
        assert!(kept.len() <= 1024 && kept.capacity() <= 1024);
        assert_eq!(keep_owned("a\u{1b}".into(), 1024), "a\\u{1b}");
    }

    #[test]
    fn keep_escapes_terminal_controls_within_the_bound() {
        let forged = "deny\u{1b}[2J\u{1b}]0;x\u{7}\ndecision: ALLOW\u{202e}";
        let k = keep(forged, 1024);
        assert!(!k.chars().any(needs_escape), "{k:?}");
        assert_eq!(
            k,
            "deny\\u{1b}[2J\\u{1b}]0;x\\u{7}\\ndecision: ALLOW\\u{202e}"
        );
        let long = "\u{1b}".repeat(1000);
        let k = keep(&long, 100);
        assert!(k.len() <= 100 && k.ends_with("…[truncated]"), "{k}");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn deadline_ticks_round_down_but_never_zero() {
        let mut l = SandboxLimits::default();
        assert_eq!(l.deadline_ticks(), 50);
        l.timeout = Duration::from_micros(10);
        assert_eq!(l.deadline_ticks(), 1);
    }
}
