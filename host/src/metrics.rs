//! Prometheus metrics through the Prometheus organisation's Rust client
//! (`prometheus-client`): typed counters, gauges and histograms in one
//! registry, encoded as OpenMetrics text (what Prometheus scrapes), so
//! escaping, `_total` suffixes, histogram buckets and `# EOF` are the
//! client's job, not hand-written strings. The provisioners' metrics
//! ([`crate::provision::targets::TargetMetrics`]) register into the same
//! registry when targets are attached.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

use crate::decision::Outcome;

/// Decision latency bucket bounds, seconds (50 µs … 250 ms).
const LATENCY_BUCKETS_S: [f64; 10] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25,
];
/// Revocation lag bucket bounds, seconds (5 ms … 60 s).
pub(crate) const LAG_BUCKETS_S: [f64; 9] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0];

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

fn outcome_label(outcome: Option<Outcome>) -> OutcomeLabel {
    OutcomeLabel {
        outcome: match outcome {
            Some(Outcome::Allow) => "allow",
            Some(Outcome::Deny) => "deny",
            Some(Outcome::RequireApproval) => "require-approval",
            None => "invalid",
        },
    }
}

/// The service's metrics and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<OutcomeLabel, Counter>,
    latency: Histogram,
    lag: Histogram,
    /// How many lags `lag` holds (the client reads a histogram's count
    /// only in its own tests).
    lag_count: Counter,
    reloads: Family<ResultLabel, Counter>,
    /// Failed webhook deliveries.
    pub webhook_failures: Counter,
    /// Failed audit writes (each one refused a decision).
    pub audit_failures: Counter,
    /// Decisions refused with 503 `busy` (queue full or no instance slot):
    /// what tells an operator to raise `[sandbox] workers`/`queue`.
    pub busy: Counter,
    /// Returns to a previous set.
    pub policy_rollbacks: Counter,
    /// Ticket pulls that got no answer (the ticket system down or erring).
    pub ticket_pull_failures: Counter,
    active_grants: Gauge,
    outbox_pending: Gauge,
    quarantined: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            decisions: Family::default(),
            latency: Histogram::new(LATENCY_BUCKETS_S),
            lag: Histogram::new(LAG_BUCKETS_S),
            lag_count: Counter::default(),
            reloads: Family::default(),
            webhook_failures: Counter::default(),
            audit_failures: Counter::default(),
            busy: Counter::default(),
            policy_rollbacks: Counter::default(),
            ticket_pull_failures: Counter::default(),
            active_grants: Gauge::default(),
            outbox_pending: Gauge::default(),
            quarantined: Gauge::default(),
        };
        // Every series exists from the first scrape, at zero.
        for o in [
            Some(Outcome::Allow),
            Some(Outcome::Deny),
            Some(Outcome::RequireApproval),
            None,
        ] {
            drop(m.decisions.get_or_create(&outcome_label(o)));
        }
        for result in ["accepted", "rejected"] {
            drop(m.reloads.get_or_create(&ResultLabel { result }));
        }
        m.registered()
    }
}

impl Metrics {
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "jitgate_decisions",
            "Decisions by outcome",
            self.decisions.clone(),
        );
        r.register(
            "jitgate_decision_seconds",
            "Decision latency",
            self.latency.clone(),
        );
        r.register(
            "jitgate_active_grants",
            "Grants now active",
            self.active_grants.clone(),
        );
        r.register(
            "jitgate_revocation_lag_seconds",
            "From expires-at to the grant ended",
            self.lag.clone(),
        );
        r.register(
            "jitgate_busy",
            "Decisions refused with 503 busy (queue full or no instance slot)",
            self.busy.clone(),
        );
        r.register(
            "jitgate_ticket_pull_failures",
            "Ticket pulls the ticket system did not answer (grants left as they were)",
            self.ticket_pull_failures.clone(),
        );
        r.register(
            "jitgate_webhook_failures",
            "Failed webhook deliveries",
            self.webhook_failures.clone(),
        );
        r.register(
            "jitgate_audit_failures",
            "Audit writes that failed (each refused its decision)",
            self.audit_failures.clone(),
        );
        r.register(
            "jitgate_policy_reloads",
            "Policy set candidates, by result",
            self.reloads.clone(),
        );
        r.register(
            "jitgate_policy_rollbacks",
            "Returns to a previous policy set",
            self.policy_rollbacks.clone(),
        );
        r.register(
            "jitgate_outbox_pending",
            "Provisioning events not yet delivered",
            self.outbox_pending.clone(),
        );
        r.register(
            "jitgate_quarantined_grants",
            "Grant rows whose stored document did not parse",
            self.quarantined.clone(),
        );
        self
    }

    /// The registry, for metrics that live elsewhere (the provisioners')
    /// to register into when the service is built.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Count a decision (None = invalid request) and its latency.
    pub fn decision(&self, outcome: Option<Outcome>, took: Duration) {
        self.decisions.get_or_create(&outcome_label(outcome)).inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Record one grant's revocation lag.
    pub fn revocation_lag(&self, lag_ms: i64) {
        self.lag.observe(lag_ms.max(0) as f64 / 1000.0);
        self.lag_count.inc();
    }

    /// Revocation lags recorded so far.
    pub fn revocation_lags(&self) -> u64 {
        self.lag_count.get()
    }

    /// Decisions so far with this outcome.
    pub fn decisions(&self, outcome: Option<Outcome>) -> u64 {
        self.decisions.get_or_create(&outcome_label(outcome)).get()
    }

    /// Count a policy reload, swapped in or refused.
    pub fn policy_reload(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// The OpenMetrics text, with the gauges the store knows set first.
    pub fn encode(&self, active_grants: u64, outbox_pending: u64, quarantined: u64) -> String {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.active_grants.set(clamp(active_grants));
        self.outbox_pending.set(clamp(outbox_pending));
        self.quarantined.set(clamp(quarantined));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a
        // bug in a metric's own encoder, and the scrape then says so.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            out = format!("# metrics encoding failed: {e}\n# EOF\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_at_zero_and_counts_go_up() {
        let m = Metrics::default();
        let text = m.encode(0, 0, 0);
        for line in [
            "jitgate_decisions_total{outcome=\"allow\"} 0",
            "jitgate_decisions_total{outcome=\"invalid\"} 0",
            "jitgate_policy_reloads_total{result=\"rejected\"} 0",
            "jitgate_busy_total 0",
            "jitgate_active_grants 0",
            "jitgate_decision_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        m.decision(Some(Outcome::Deny), Duration::from_micros(70));
        m.busy.inc();
        m.policy_reload(true);
        m.revocation_lag(-5);
        let text = m.encode(3, 2, 1);
        for line in [
            "jitgate_decisions_total{outcome=\"deny\"} 1",
            "jitgate_decision_seconds_bucket{le=\"0.0001\"} 1",
            "jitgate_decision_seconds_bucket{le=\"0.00005\"} 0",
            "jitgate_busy_total 1",
            "jitgate_policy_reloads_total{result=\"accepted\"} 1",
            "jitgate_revocation_lag_seconds_count 1",
            "jitgate_revocation_lag_seconds_sum 0.0",
            "jitgate_active_grants 3",
            "jitgate_outbox_pending 2",
            "jitgate_quarantined_grants 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(m.decisions(Some(Outcome::Deny)), 1);
        assert_eq!(m.revocation_lags(), 1);
    }
}
