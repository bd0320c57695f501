//! Automatic ending: grants expire at `expires-at`, pending requests lapse.
//!
//! Not a coarse poll: the store knows the next deadline, so the task sleeps
//! until exactly then, and wakes early when the service signals that a
//! nearer deadline may exist (a grant was created or activated). Ending is
//! idempotent per grant (re-checked under the store's lock), so a restart, a
//! second replica or an overlapping sweep cannot end a grant twice.

use std::sync::Arc;
use std::time::Duration;

use super::Service;

/// Longest sleep without checking (guards against clock jumps).
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Shortest time between two sweeps. Expiries a few milliseconds apart are
/// ended together instead of one wake-up (and one commit) each: at most 40
/// sweeps a second, for at most 25 ms of added lag.
pub const MIN_INTERVAL: Duration = Duration::from_millis(25);

/// Run forever: end what is due, then sleep until the next deadline.
pub async fn run(service: Arc<Service>) {
    loop {
        let swept_at = tokio::time::Instant::now();
        let svc = service.clone();
        let next = tokio::task::spawn_blocking(move || {
            if let Err(e) = svc.end_due(svc.now()) {
                tracing::error!(error = %e, "ending due grants failed; retrying");
                return Some(svc.now() + 1000);
            }
            match svc.store().next_deadline() {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "reading the next deadline failed; retrying");
                    Some(svc.now() + 1000)
                }
            }
        })
        .await
        .unwrap_or(Some(service.now() + 1000));
        let until_next = match next {
            Some(t) => Duration::from_millis((t - service.now()).max(0) as u64).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        let wake = (tokio::time::Instant::now() + until_next).max(swept_at + MIN_INTERVAL);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = service.deadline_changed.notified() => {
                // A nearer deadline may exist; still respect the interval.
                tokio::time::sleep_until(swept_at + MIN_INTERVAL).await;
            }
        }
    }
}
