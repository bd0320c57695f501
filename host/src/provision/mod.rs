//! Provisioning: telling the target systems that a grant began or ended.
//!
//! Events are queued in the store's outbox in the same transaction as the
//! transition, so a crash between commit and send loses nothing; the
//! [`dispatch`] loop delivers them at least once, retrying with exponential
//! backoff, and each carries a stable event id (`<grant>:<kind>`) so a
//! receiver can deduplicate. A grant is never reported active before its
//! activation event is queued.
//!
//! **Order per grant.** Each event carries its grant's `sequence` (1, 2, …).
//! The store hands out an event only once every earlier event of its grant
//! was delivered ([`crate::store::Store::outbox_claim`]), so a
//! `grant-activated` that waits out a backoff is never overtaken by the
//! grant's `grant-ended`, on one replica or across several. What remains is
//! at-least-once: a stale redelivery can still arrive late, which is why
//! receivers ignore a sequence at or below the last one they applied.
//!
//! Built in: [`LogProvisioner`] (the demo default: logs the event) and
//! `WebhookProvisioner` (HMAC-SHA256-signed JSON POST over HTTPS; feature
//! `server`). Embedders implement [`Provisioner`], or pass a closure to
//! [`from_fn`].
//!
//! These announce. Grants of entitlements mapped by `[[entitlements]]` are
//! *applied* at a target ([`targets`]: LDAP, SCIM, PostgreSQL, or an
//! announcer counted as applied once delivered) and are `active` only once
//! the target shows the access; their `provision-apply` /
//! `provision-remove` events go to the target, not to the announcer.

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod ldap;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod scim;
pub mod targets;
#[cfg(feature = "server")]
mod webhook;

use hmac::{KeyInit, Mac};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::service::{Service, now_millis};
use crate::store::OutboxEvent;
#[cfg(feature = "server")]
pub use webhook::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, WebhookProvisioner};

/// A boxed delivery future.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Delivers provisioning events. Must be idempotent per `event.id`.
pub trait Provisioner: Send + Sync {
    /// Deliver one event; `Err` schedules a retry.
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> Delivery<'a>;
}

/// A [`Provisioner`] made from a closure; see [`from_fn`].
pub struct FnProvisioner<F>(F);

/// A provisioner that calls `f` with each event (a clone: the future it
/// returns may keep it). `Err` schedules a retry with backoff, like any
/// provisioner's; delivery is at least once, so `f` must be idempotent per
/// `event.id`.
///
/// ```no_run
/// # // no_run: delivering needs a service and a runtime; this shows the shape.
/// use std::sync::Arc;
/// let provisioner = Arc::new(jitgate::provision::from_fn(|event| async move {
///     println!("{} {} (grant {})", event.kind, event.id, event.grant_id);
///     Ok::<(), std::convert::Infallible>(())
/// }));
/// # let _: Arc<dyn jitgate::provision::Provisioner> = provisioner;
/// ```
pub fn from_fn<F, Fut, E>(f: F) -> FnProvisioner<F>
where
    F: Fn(OutboxEvent) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    FnProvisioner(f)
}

impl<F, Fut, E> Provisioner for FnProvisioner<F>
where
    F: Fn(OutboxEvent) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> Delivery<'a> {
        let delivery = (self.0)(event.clone());
        Box::pin(async move { delivery.await.map_err(|e| e.to_string()) })
    }
}

/// Logs each event (demo default).
pub struct LogProvisioner;

impl Provisioner for LogProvisioner {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> Delivery<'a> {
        Box::pin(async move {
            tracing::info!(event = %event.id, kind = %event.kind, grant = %event.grant_id, payload = %event.payload, "provision");
            Ok(())
        })
    }
}

/// `sha256=<hex>` over `timestamp.body`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Backoff after `attempts` failures: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_millis((1000u64 << attempts.min(9)).min(300_000))
}

/// How long a claimed event stays reserved for the dispatcher that claimed
/// it. Other replicas skip it until then; if this one crashes it comes due
/// again after at most this long.
pub const LEASE: Duration = Duration::from_secs(30);

/// Longest deadline a delivery may have: no delivery starts after half the
/// lease, so one that starts last still ends 5 s before the lease does and
/// no other replica can claim (and send) the event while it is in flight.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// Events claimed per round.
pub const CLAIM: usize = 100;

/// Deliveries in flight at once. A claim holds at most one event per grant
/// (see [`crate::store::Store::outbox_claim`]), so sending a claim's events
/// side by side keeps each grant's order, and one receiver that stalls on
/// an event holds up only that event.
pub const PARALLEL: usize = 8;

/// Deliver queued events forever. Every replica runs this against the shared
/// outbox: claims are exclusive ([`crate::store::Store::outbox_claim`]), so
/// under normal operation each event is sent once; no delivery starts once
/// half the lease is gone, and each ends within its deadline (at most half
/// the lease), so a slow receiver cannot let a second replica send the same
/// event while this one still is.
pub async fn dispatch(service: Arc<Service>, provisioner: Arc<dyn Provisioner>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    loop {
        let svc = service.clone();
        let claimed_at = tokio::time::Instant::now();
        let due = tokio::task::spawn_blocking(move || {
            svc.store().outbox_claim(now_millis(), LEASE, CLAIM)
        })
        .await
        .unwrap_or_else(|e| Err(crate::store::StoreError::Backend(Box::new(e))));
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                Vec::new()
            }
        };
        let busy = !due.is_empty();
        for ev in due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            if claimed_at.elapsed() > LEASE / 2 {
                // The rest come due again when their lease ends.
                tracing::warn!("provisioning is slow; leaving the rest of this claim to its lease");
                break;
            }
            let (svc, provisioner) = (service.clone(), provisioner.clone());
            // Not awaited: the next claim cannot take an event in flight (it
            // is leased) nor its grant's later events (their predecessor is
            // undelivered), so a stalled delivery holds up nothing else.
            tokio::spawn(async move {
                // Events that apply or remove access go to their target;
                // the rest are announcements for `provisioner`.
                let is_target_event = ev.kind == crate::grant::PROVISION_APPLY
                    || ev.kind == crate::grant::PROVISION_REMOVE;
                if let (true, Some(targets)) = (is_target_event, svc.targets().cloned()) {
                    targets::run(svc.clone(), targets, ev).await;
                    drop(slot);
                    svc.outbox_changed.notify_one();
                    return;
                }
                let outcome = provisioner.deliver(&ev).await;
                let _ = tokio::task::spawn_blocking(move || {
                    record(&svc, &ev, outcome);
                    drop(slot);
                    // A delivered event makes its grant's next one claimable.
                    svc.outbox_changed.notify_one();
                })
                .await;
            });
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = service.outbox_changed.notified() => {}
            }
        }
    }
}

fn record(svc: &Service, ev: &OutboxEvent, outcome: Result<(), String>) {
    let now = now_millis();
    let r = match &outcome {
        Ok(()) => svc.store().outbox_delivered(&ev.id, now),
        Err(err) => {
            svc.metrics.webhook_failures.inc();
            tracing::warn!(event = %ev.id, attempt = ev.attempts + 1, error = %err, "provisioning failed; will retry");
            svc.store()
                .outbox_failed(&ev.id, now + backoff(ev.attempts).as_millis() as i64, err)
        }
    };
    if let Err(e) = r {
        tracing::error!(error = %e, "recording delivery failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        let s = signature(b"0123456789abcdef", "1700000000000", b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, signature(b"0123456789abcdef", "1700000000001", b"{}"));
    }

    #[test]
    fn webhook_refuses_weak_setup() {
        // https:// is supported since the client speaks TLS (see
        // webhook::tests); other schemes and short secrets are not.
        assert!(WebhookProvisioner::new("ftp://x", b"0123456789abcdef").is_err());
        assert!(WebhookProvisioner::new("http://x", b"short").is_err());
        assert!(WebhookProvisioner::new("https://x", b"short").is_err());
    }
}
