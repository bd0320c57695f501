//! [`Clock`]: where the service reads the time, so approval deadlines,
//! lapses and expiry can be tested to the millisecond without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::grant::Millis;

/// A source of the current time, Unix milliseconds.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Millis;
}

/// The system's wall clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        super::now_millis()
    }
}

/// A clock that moves only when told; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Stopped at `at`.
    pub fn at(at: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at)))
    }

    /// Set the time.
    pub fn set(&self, at: Millis) {
        self.0.store(at, Ordering::SeqCst);
    }

    /// Move the time by `ms` (may be negative).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}
