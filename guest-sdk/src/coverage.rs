//! Branch coverage for `jitgate test --coverage` (the `coverage` feature).
//!
//! Built with the SDK's `coverage` feature (off by default; `jitgate test
//! --coverage` turns it on for its own build), every [`Verdict`]
//! constructor reports the `file:line:column` it was called from, through
//! the host's existing `log` import: no import is added to the contract. The
//! line starts with [`MARKER`], which a host in coverage mode takes out of
//! the policy's log (it never counts as a log line) and every other host
//! keeps as an ordinary, escaped log line.
//!
//! A coverage build also carries a custom section named `jitgate-coverage`,
//! and a host refuses to load such a module unless it runs `jitgate test
//! --coverage`: it is never served, evaluated or reloaded in production.
//!
//! Natively (a policy's `cargo test`) the feature does nothing.
//!
//! [`Verdict`]: crate::Verdict

/// What a coverage marker line starts with; then `LINE:COLUMN FILE`.
pub const MARKER: &str = "jitgate-coverage/1 ";

/// Report the caller of the calling constructor (coverage builds on wasm).
/// The constructors are `#[track_caller]` only with the feature on, so an
/// ordinary build is exactly what it was without coverage.
#[cfg_attr(feature = "coverage", track_caller)]
#[inline(always)]
pub(crate) fn reached() {
    #[cfg(all(target_arch = "wasm32", feature = "coverage"))]
    {
        let at = core::panic::Location::caller();
        let line = alloc::format!("{MARKER}{}:{} {}", at.line(), at.column(), at.file());
        crate::log(crate::LogLevel::Trace, &line);
    }
}

/// The mark of a coverage build, which hosts outside `jitgate test
/// --coverage` refuse to load.
#[cfg(all(target_arch = "wasm32", feature = "coverage"))]
#[used]
#[unsafe(link_section = "jitgate-coverage")]
static COVERAGE_BUILD: [u8; 51] = *b"jitgate-sdk coverage build: never serve this module";
