//! The sweep: ending grants whose expiry or approval deadline has passed.

use super::{Service, ServiceError};
use crate::grant::{GrantEvent, GrantState, Millis};

impl Service {
    /// End every grant whose expiry or approval deadline is at or before
    /// `now`; returns how many ended. Safe to run concurrently: each grant is
    /// re-checked under the store's lock.
    pub fn end_due(&self, now: Millis) -> Result<usize, ServiceError> {
        let mut ended = 0;
        loop {
            let ids = self.store.due(now, SWEEP_BATCH)?;
            if ids.is_empty() {
                break;
            }
            let batch = ids.len();
            let mut lags = Vec::new();
            let mut changed = 0;
            self.store.update_grants::<ServiceError>(&ids, &mut |g| {
                let t = self.now();
                let event = match g.state {
                    GrantState::Active | GrantState::Provisioning => {
                        GrantEvent::Expire { due_by: now }
                    }
                    GrantState::Pending => GrantEvent::Lapse { due_by: now },
                    // Someone else ended it first: nothing to do.
                    _ => return Ok(None),
                };
                // Not due (changed since listed): nothing to do.
                let Ok(fx) = g.apply(event, "scheduler", t) else {
                    return Ok(None);
                };
                lags.extend(
                    g.revocation_lag_ms
                        .filter(|_| g.state == GrantState::Expired),
                );
                changed += 1;
                Ok(Some(fx))
            })?;
            // Lags count only once the batch committed.
            for lag in lags {
                self.metrics.revocation_lag(lag);
            }
            ended += changed;
            if batch < SWEEP_BATCH {
                break;
            }
        }
        if ended > 0 {
            self.outbox_changed.notify_one();
        }
        Ok(ended)
    }
}

/// Grants ended per transaction by a sweep: one fsync for the batch. Larger
/// batches cut commit overhead in bursts (10,000 expiring in one second).
pub const SWEEP_BATCH: usize = 2000;
