//! # jitgate: a policy engine for just-in-time access
//!
//! Security teams ship access rules as sandboxed WebAssembly components
//! (see the `jitgate-sdk` crate and `wit/`); jitgate loads them, feeds each
//! the request's context, combines their verdicts deny-overrides and
//! default-deny, and explains the result.
//!
//! ```no_run
//! use jitgate::{Engine, EngineConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut engine = Engine::new(EngineConfig::default())?;
//! engine.load_dir(std::path::Path::new("target/policies"))?;
//! let req = jitgate::request::from_json(&std::fs::read_to_string("request.json")?)?;
//! let decision = engine.decide(&req)?;
//! println!("{} for {} s", decision.outcome, decision.ttl);
//! # Ok(()) }
//! ```
//!
//! The public surface is small: [`Engine`] and [`EngineConfig`], the
//! [`Request`] model, the [`Decision`] it returns, and the sandbox knobs in
//! [`SandboxLimits`]. [`fixture`] runs policy test files (`jitgate test`).

pub mod api;
pub mod audit;
pub mod config;
pub mod decision;
pub mod engine;
pub mod fixture;
pub mod grant;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod provision;
pub mod request;
pub mod service;
pub mod store;
pub mod text;

pub use decision::{ApprovalRequirement, Decision, LogLevel, Outcome, PolicyTrace, TraceVerdict};
pub use engine::{Engine, EngineConfig, EngineError, Isolation, LoadStats};
pub use policy::sandbox::{PolicyFailure, SandboxLimits};
pub use policy::{LoadError, PolicyMeta};
pub use request::{Request, RequestError};

#[cfg(doctest)]
#[doc = include_str!("../../docs/embedding.md")]
pub struct EmbeddingDoctests;
