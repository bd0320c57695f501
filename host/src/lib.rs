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
//! [`SandboxLimits`]; [`fixture`] runs policy test files (`jitgate test`).
//! With more features: the grant `service` over a `store`, and the HTTP
//! `api` built from a `config` (`jitgate::api::Server::from_config`). The sandbox, the generated bindings, the
//! compile cache and the loader are private.
//!
//! ## Cargo features
//!
//! | feature | adds | brings in |
//! |---|---|---|
//! | `engine` | load policies, decide, run fixtures | wasmtime, serde (137 crates in all) |
//! | `service` | grants, approvals, revocation, audit chain, provisioning events, SQLite store | rusqlite, tokio (152) |
//! | `postgres` | the PostgreSQL store | tokio-postgres, deadpool |
//! | `server` | `jitgate.toml`, the HTTP API, webhook provisioner, ticket sources, OIDC identity providers | axum, hyper, toml, jsonwebtoken (244) |
//! | `cli` (default) | the `jitgate` binary | clap, tracing-subscriber, mimalloc (267) |
//!
//! An embedder that only decides uses `default-features = false, features =
//! ["engine"]`. Crate counts are `cargo tree -e normal,build` of each set.

#![warn(missing_docs)]

pub mod decision;
pub mod engine;
pub mod explore;
pub mod fixture;
pub mod keys;
pub mod policy;
pub mod policy_set;
pub mod request;
pub mod text;
pub mod timefmt;

#[cfg(feature = "service")]
pub mod answer;
#[cfg(feature = "service")]
pub mod audit;
#[cfg(feature = "service")]
pub mod grant;
#[cfg(feature = "service")]
pub mod metrics;
#[cfg(feature = "service")]
pub mod provision;
#[cfg(feature = "service")]
pub mod replay;
#[cfg(feature = "service")]
pub mod review;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod store;

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod console;
#[cfg(feature = "server")]
pub mod identity;
#[cfg(feature = "server")]
pub mod notify;
#[cfg(feature = "server")]
pub mod outbound;
#[cfg(feature = "server")]
pub mod ticket;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use decision::{ApprovalRequirement, Decision, LogLevel, Outcome, PolicyTrace, TraceVerdict};
pub use engine::{Engine, EngineConfig, EngineError, Isolation, LoadStats};
pub use policy::{LoadError, PolicyFailure, PolicyMeta, SandboxLimits};
pub use request::{Request, RequestError};

#[cfg(all(doctest, feature = "service"))]
#[doc = include_str!("../../docs/embedding.md")]
pub struct EmbeddingDoctests;
