//! [`DecisionMaker`]: what the service asks to decide a request. In
//! production it is the running [`Engine`] (swapped on reload); an embedder
//! or a test may put a decision maker of its own in front (a scripted one
//! makes the grant workflow testable to the millisecond without wasm).

use crate::decision::Decision;
use crate::engine::Engine;
use crate::request::{Request, RequestError};

/// Decides one request whose `now` the service has already set.
pub trait DecisionMaker: Send + Sync {
    /// The decision, or why the request is invalid (naming the field).
    fn decide(&self, req: &Request) -> Result<Decision, RequestError>;
}

impl DecisionMaker for Engine {
    fn decide(&self, req: &Request) -> Result<Decision, RequestError> {
        Engine::decide(self, req)
    }
}
