//! Prometheus metrics, rendered by hand: a few counters and two histograms
//! do not justify a metrics framework and its registry.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::decision::Outcome;

const LATENCY_BUCKETS_US: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];
const LAG_BUCKETS_MS: [u64; 9] = [5, 10, 50, 100, 250, 500, 1_000, 5_000, 60_000];

/// A fixed-bucket histogram.
#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[u64; N], v: u64) {
        for (b, bound) in self.buckets.iter().zip(bounds) {
            if v <= *bound {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, bounds: &[u64; N], scale: f64) {
        for (b, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {}",
                *bound as f64 / scale,
                b.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum.load(Relaxed) as f64 / scale);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: [AtomicU64; 4],
    latency: Histogram<10>,
    lag: Histogram<9>,
    /// Failed webhook deliveries.
    pub webhook_failures: AtomicU64,
    /// Failed audit writes (each one refused a decision).
    pub audit_failures: AtomicU64,
    /// Decisions refused with 503 `busy` (queue full or no instance slot):
    /// what tells an operator to raise `[sandbox] workers`/`queue`.
    pub busy: AtomicU64,
    /// Policy reloads that swapped a new set in.
    pub policy_reloads_accepted: AtomicU64,
    /// Candidate sets refused (did not verify, load, or pass fixtures).
    pub policy_reloads_rejected: AtomicU64,
    /// Returns to a previous set.
    pub policy_rollbacks: AtomicU64,
    /// Ticket pulls that got no answer (the ticket system down or erring).
    pub ticket_pull_failures: AtomicU64,
}

impl Metrics {
    /// Count a decision (None = invalid request) and its latency.
    pub fn decision(&self, outcome: Option<Outcome>, took: Duration) {
        let i = match outcome {
            Some(Outcome::Allow) => 0,
            Some(Outcome::Deny) => 1,
            Some(Outcome::RequireApproval) => 2,
            None => 3,
        };
        self.decisions[i].fetch_add(1, Relaxed);
        self.latency
            .observe(&LATENCY_BUCKETS_US, took.as_micros() as u64);
    }

    /// Record one grant's revocation lag.
    pub fn revocation_lag(&self, lag_ms: i64) {
        self.lag.observe(&LAG_BUCKETS_MS, lag_ms.max(0) as u64);
    }

    /// Decisions so far with this outcome.
    pub fn decisions(&self, outcome: Option<Outcome>) -> u64 {
        let i = match outcome {
            Some(Outcome::Allow) => 0,
            Some(Outcome::Deny) => 1,
            Some(Outcome::RequireApproval) => 2,
            None => 3,
        };
        self.decisions[i].load(Relaxed)
    }

    /// Prometheus text format.
    pub fn render(&self, active_grants: u64, outbox_pending: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP jitgate_decisions_total Decisions by outcome.\n# TYPE jitgate_decisions_total counter\n");
        for (i, name) in ["allow", "deny", "require-approval", "invalid"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                out,
                "jitgate_decisions_total{{outcome=\"{name}\"}} {}",
                self.decisions[i].load(Relaxed)
            );
        }
        out.push_str("# HELP jitgate_decision_seconds Decision latency.\n# TYPE jitgate_decision_seconds histogram\n");
        self.latency.render(
            &mut out,
            "jitgate_decision_seconds",
            &LATENCY_BUCKETS_US,
            1e6,
        );
        out.push_str(
            "# HELP jitgate_active_grants Grants now active.\n# TYPE jitgate_active_grants gauge\n",
        );
        let _ = writeln!(out, "jitgate_active_grants {active_grants}");
        out.push_str("# HELP jitgate_revocation_lag_seconds From expires-at to the grant ended.\n# TYPE jitgate_revocation_lag_seconds histogram\n");
        self.lag.render(
            &mut out,
            "jitgate_revocation_lag_seconds",
            &LAG_BUCKETS_MS,
            1e3,
        );
        out.push_str("# HELP jitgate_busy_total Decisions refused with 503 busy (queue full or no instance slot).\n# TYPE jitgate_busy_total counter\n");
        let _ = writeln!(out, "jitgate_busy_total {}", self.busy.load(Relaxed));
        out.push_str("# HELP jitgate_ticket_pull_failures_total Ticket pulls the ticket system did not answer (grants left as they were).\n# TYPE jitgate_ticket_pull_failures_total counter\n");
        let _ = writeln!(
            out,
            "jitgate_ticket_pull_failures_total {}",
            self.ticket_pull_failures.load(Relaxed)
        );
        out.push_str("# HELP jitgate_webhook_failures_total Failed webhook deliveries.\n# TYPE jitgate_webhook_failures_total counter\n");
        let _ = writeln!(
            out,
            "jitgate_webhook_failures_total {}",
            self.webhook_failures.load(Relaxed)
        );
        out.push_str("# HELP jitgate_policy_reloads_total Policy set candidates, by result.\n# TYPE jitgate_policy_reloads_total counter\n");
        let _ = writeln!(
            out,
            "jitgate_policy_reloads_total{{result=\"accepted\"}} {}",
            self.policy_reloads_accepted.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "jitgate_policy_reloads_total{{result=\"rejected\"}} {}",
            self.policy_reloads_rejected.load(Relaxed)
        );
        out.push_str("# HELP jitgate_policy_rollbacks_total Returns to a previous policy set.\n# TYPE jitgate_policy_rollbacks_total counter\n");
        let _ = writeln!(
            out,
            "jitgate_policy_rollbacks_total {}",
            self.policy_rollbacks.load(Relaxed)
        );
        out.push_str("# HELP jitgate_outbox_pending Provisioning events not yet delivered.\n# TYPE jitgate_outbox_pending gauge\n");
        let _ = writeln!(out, "jitgate_outbox_pending {outbox_pending}");
        out
    }
}

/// The `jitgate_quarantined_grants` gauge: grant rows whose stored document
/// did not parse (listed by `jitgate audit quarantine`).
pub fn quarantine_gauge(n: u64) -> String {
    format!(
        "# HELP jitgate_quarantined_grants Grant rows whose stored document did not parse.\n\
         # TYPE jitgate_quarantined_grants gauge\njitgate_quarantined_grants {n}\n"
    )
}
