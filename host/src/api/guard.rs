//! What a flood of unauthenticated requests may cost: authentication
//! failures are rate-limited per client address (a token bucket: a burst,
//! then a steady rate; past it 429 with `Retry-After`) and audited as one
//! record per address per window (with the count), written through group
//! commit, instead of one fsynced record per request.
//!
//! Only failures draw on an address's allowance: a valid token is always
//! served, so clients sharing an address (a NAT, a proxy) with a prober keep
//! working. Tokens are 192-bit random values, so the limiter is about the
//! cost of the flood, not about guessing.
//!
//! Memory is bounded: at most [`MAX_ADDRESSES`] addresses are tracked (IPv6
//! by /64, the unit a single host can rotate within); beyond that, new
//! addresses share one bucket and one tally, recorded as address `other`.
//!
//! **Refusals (403) of authenticated callers** are evidence too, and every
//! one is audited, but a caller with a valid token must not be able to
//! flood the audit chain with them: each caller has the same allowance
//! (burst, then rate) of records of its own; refusals beyond it are counted
//! into one record per caller per window (count, routes, reasons). The
//! answer stays 403 (the caller is known; slowing it is not needed to bound
//! the cost). At most [`MAX_ADDRESSES`] callers are tracked; beyond, one
//! shared bucket and tally (`other`).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::audit::{self, AuditDraft};
use crate::grant::Millis;

/// Most client addresses tracked at once (buckets, and tallies per window).
pub const MAX_ADDRESSES: usize = 10_000;

/// Distinct paths kept per address per window (the rest are only counted).
const MAX_PATHS: usize = 8;

/// The limits (`[limits]` in jitgate.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuthLimits {
    /// Failures allowed in a burst.
    pub burst: u32,
    /// Refill rate, failures per minute.
    pub per_minute: u32,
    /// Audit window.
    pub window: Duration,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            burst: 20,
            per_minute: 60,
            window: Duration::from_secs(60),
        }
    }
}

/// What to answer a failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 401.
    Unauthorized,
    /// 429: retry after this many seconds.
    Limited(u64),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Tally {
    count: u64,
    limited: u64,
    first_at: Millis,
    last_at: Millis,
    reasons: BTreeMap<&'static str, u64>,
    paths: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    tallies: BTreeMap<String, Tally>,
    /// Authenticated callers' 403 allowance, by name.
    refusal_buckets: HashMap<String, Bucket>,
    /// 403s beyond a caller's allowance in this window, by name.
    suppressed: BTreeMap<String, Tally>,
}

/// The limiter and the window's tallies.
#[derive(Debug)]
pub struct AuthGuard {
    limits: AuthLimits,
    state: Mutex<State>,
}

/// The key an address is limited and tallied under.
fn key(peer: Option<IpAddr>) -> String {
    match peer {
        None => "unknown".into(),
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl AuthGuard {
    /// A guard with `limits`.
    pub fn new(limits: AuthLimits) -> Self {
        AuthGuard {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// The audit window.
    pub fn window(&self) -> Duration {
        self.limits.window
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let rate = f64::from(self.limits.per_minute) / 60.0;
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(f64::from(self.limits.burst));
        b.at = now;
    }

    /// Take one from `k`'s bucket in `buckets` (bounded at
    /// [`MAX_ADDRESSES`]: past it, full buckets are forgotten, then new
    /// keys share `other`). Returns the key used and whether the bucket had
    /// one to give (else the seconds until it will).
    fn take(
        &self,
        buckets: &mut HashMap<String, Bucket>,
        mut k: String,
        now: Instant,
    ) -> (String, Result<(), u64>) {
        let burst = f64::from(self.limits.burst);
        let rate = f64::from(self.limits.per_minute) / 60.0;
        if !buckets.contains_key(&k) && buckets.len() >= MAX_ADDRESSES {
            // Forget keys whose allowance is back to full: they are
            // indistinguishable from new ones.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_ADDRESSES {
                k = "other".into();
            }
        }
        let fresh = Bucket {
            tokens: burst,
            at: now,
        };
        let mut bucket = buckets.get(&k).copied().unwrap_or(fresh);
        self.refill(&mut bucket, now);
        let taken = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        };
        buckets.insert(k.clone(), bucket);
        (k, taken)
    }

    /// A 403 answered to the authenticated caller `actor` on `route`:
    /// `true` when it gets an audit record of its own, `false` when it was
    /// over the caller's allowance and is only counted into the window's
    /// record for that caller.
    pub fn refusal(&self, actor: &str, route: &str, now: Instant, now_ms: Millis) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return true;
        };
        let st = &mut *st;
        let (k, taken) = self.take(&mut st.refusal_buckets, actor.to_string(), now);
        if taken.is_ok() {
            return true;
        }
        let tk = if st.suppressed.contains_key(&k) || st.suppressed.len() < MAX_ADDRESSES {
            k
        } else {
            "other".into()
        };
        let t = st.suppressed.entry(tk).or_default();
        if t.count == 0 {
            t.first_at = now_ms;
        }
        t.count += 1;
        t.last_at = now_ms;
        *t.reasons.entry("forbidden").or_default() += 1;
        if t.paths.len() < MAX_PATHS {
            t.paths.insert(route.to_string());
        }
        false
    }

    /// Count one failed authentication from `peer` (`reason`: what was
    /// wrong, `path`: the route) and say how to answer it.
    pub fn failure(
        &self,
        peer: Option<IpAddr>,
        reason: &'static str,
        path: &str,
        now: Instant,
        now_ms: Millis,
    ) -> Verdict {
        let Ok(mut st) = self.state.lock() else {
            return Verdict::Unauthorized;
        };
        let st = &mut *st;
        let (k, taken) = self.take(&mut st.buckets, key(peer), now);
        let verdict = match taken {
            Ok(()) => Verdict::Unauthorized,
            Err(wait) => Verdict::Limited(wait),
        };

        let tk = if st.tallies.contains_key(&k) || st.tallies.len() < MAX_ADDRESSES {
            k
        } else {
            "other".into()
        };
        let t = st.tallies.entry(tk).or_default();
        if t.count == 0 {
            t.first_at = now_ms;
        }
        t.count += 1;
        t.last_at = now_ms;
        if matches!(verdict, Verdict::Limited(_)) {
            t.limited += 1;
        }
        *t.reasons.entry(reason).or_default() += 1;
        if t.paths.len() < MAX_PATHS {
            t.paths.insert(path.to_string());
        }
        verdict
    }

    /// The window's records (one per address, with counts), emptying it.
    pub fn drain(&self, now_ms: Millis) -> Vec<AuditDraft> {
        let (tallies, suppressed) = match self.state.lock() {
            Ok(mut st) => (
                std::mem::take(&mut st.tallies),
                std::mem::take(&mut st.suppressed),
            ),
            Err(_) => return Vec::new(),
        };
        let refusals = suppressed.into_iter().map(|(actor, t)| {
            let data: Value = json!({
                "status": 403,
                "count": t.count,
                "over-allowance": true,
                "reasons": t.reasons,
                "routes": t.paths,
                "first-at": t.first_at,
                "last-at": t.last_at,
                "window-secs": self.limits.window.as_secs(),
            });
            AuditDraft::new(now_ms, audit::kind::AUTH_FAILURE, &actor, data)
        });
        tallies
            .into_iter()
            .map(|(address, t)| {
                let data: Value = json!({
                    "address": address,
                    "count": t.count,
                    "rate-limited": t.limited,
                    "reasons": t.reasons,
                    "paths": t.paths,
                    "first-at": t.first_at,
                    "last-at": t.last_at,
                    "window-secs": self.limits.window.as_secs(),
                });
                AuditDraft::new(now_ms, audit::kind::AUTH_FAILURE, "anonymous", data)
            })
            .chain(refusals)
            .collect()
    }
}

/// Write each window's records through group commit, forever.
pub async fn flush_every_window(
    guard: std::sync::Arc<AuthGuard>,
    service: std::sync::Arc<crate::service::Service>,
) {
    let mut tick = tokio::time::interval(guard.window());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        flush(&guard, &service).await;
    }
}

/// Write what the current window holds (also called at shutdown).
pub async fn flush(guard: &AuthGuard, service: &crate::service::Service) {
    let drafts = guard.drain(service.now());
    let pending: Vec<_> = drafts
        .into_iter()
        .map(|d| service.submit_audit(d))
        .collect();
    for p in pending {
        if let Err(e) = p.await {
            tracing::error!(error = %e, "auditing authentication failures failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(burst: u32, per_minute: u32) -> AuthGuard {
        AuthGuard::new(AuthLimits {
            burst,
            per_minute,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_burst_then_429_with_retry_after_then_refills() {
        let g = guard(3, 60);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                g.failure(Some(ip), "unknown token", "/v1/grants", t0, 1),
                Verdict::Unauthorized
            );
        }
        assert_eq!(
            g.failure(Some(ip), "unknown token", "/v1/grants", t0, 2),
            Verdict::Limited(1)
        );
        // Another address has its own allowance.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            g.failure(Some(other), "no bearer token", "/v1/grants", t0, 3),
            Verdict::Unauthorized
        );
        // One per second refills.
        let later = t0 + Duration::from_millis(1100);
        assert_eq!(
            g.failure(Some(ip), "unknown token", "/v1/grants", later, 4),
            Verdict::Unauthorized
        );
    }

    #[test]
    fn a_flood_is_one_record_per_address_per_window() {
        let g = guard(5, 60);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b2: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        for i in 0..1000 {
            g.failure(Some(a), "unknown token", &format!("/p{}", i % 20), t0, i);
        }
        g.failure(Some(b), "no bearer token", "/v1/audit", t0, 5);
        g.failure(Some(b2), "no bearer token", "/v1/audit", t0, 6);
        let records = g.drain(2000);
        assert_eq!(records.len(), 2, "{records:?}");
        let ra = records
            .iter()
            .find(|r| r.data["address"] == "192.0.2.1")
            .expect("a's record");
        assert_eq!(ra.data["count"], 1000);
        assert_eq!(ra.data["rate-limited"], 995);
        assert_eq!(ra.data["paths"].as_array().map(Vec::len), Some(MAX_PATHS));
        assert_eq!(ra.kind, audit::kind::AUTH_FAILURE);
        let rb = records
            .iter()
            .find(|r| r.data["address"] == "2001:db8:1:2::/64")
            .expect("the /64's record");
        assert_eq!(rb.data["count"], 2);
        assert!(g.drain(3000).is_empty(), "a window is written once");
    }

    #[test]
    fn a_caller_flooding_refusals_gets_its_allowance_then_one_record_per_window() {
        let g = guard(5, 60);
        let t0 = Instant::now();
        let own: usize = (0..1000)
            .filter(|i| g.refusal("mallory", &format!("/v1/r{}", i % 20), t0, *i))
            .count();
        assert_eq!(own, 5, "the burst is written record by record");
        // Another caller keeps its own allowance.
        assert!(g.refusal("carol", "/v1/audit", t0, 7));
        let records = g.drain(2000);
        let m = records
            .iter()
            .find(|r| r.actor == "mallory")
            .expect("mallory's window record");
        assert_eq!(m.data["count"], 995);
        assert_eq!(m.data["status"], 403);
        assert_eq!(m.data["routes"].as_array().map(Vec::len), Some(MAX_PATHS));
        assert!(records.iter().all(|r| r.actor != "carol"), "{records:?}");
        assert!(g.drain(3000).is_empty(), "a window is written once");
        // The allowance refills with time.
        assert!(g.refusal("mallory", "/v1/audit", t0 + Duration::from_secs(2), 3001));
    }

    #[test]
    fn addresses_past_the_cap_share_one_bucket_and_record() {
        let g = guard(1, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.failure(Some(ip), "unknown token", "/v1/grants", t0, 1);
        }
        let records = g.drain(2);
        assert_eq!(records.len(), MAX_ADDRESSES + 1);
        let other = records
            .iter()
            .find(|r| r.data["address"] == "other")
            .expect("overflow record");
        assert_eq!(other.data["count"], 50);
    }
}
