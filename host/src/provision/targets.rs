//! Targets: provisioners that really apply access (a directory group, a
//! SCIM group, a database role) and read it back, driving a provisioned
//! grant through `provisioning → active → deprovisioning → final`.
//!
//! One piece because the three parts share one invariant: the outbox run
//! ([`run`]), the reconciliation ([`reconcile_every`]) and the metrics
//! ([`TargetMetrics`]) all decide from what the *target* shows, never from
//! what jitgate last sent it.
//!
//! **Why the outbox.** `provision-apply` and `provision-remove` are queued
//! in the transaction that changes the grant, so a crash at any point
//! leaves either the event (run again after restart or by another
//! replica's dispatcher) or its effect. Both operations are idempotent at
//! the target (add a member already there, remove one already gone), and
//! each run first re-reads the grant: an apply for a grant that ended
//! meanwhile is skipped, so access is never given after its end. The store
//! hands out a grant's events in order, so a removal never overtakes its
//! apply.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LogProvisioner, MAX_TIMEOUT, Provisioner};
use crate::audit::AuditDraft;
use crate::grant::{
    Credential, Grant, GrantEvent, GrantState, Millis, PROVISION_APPLY, PROVISION_REMOVE,
    Provisioning,
};
use crate::service::{Service, ServiceError};
use crate::store::{GrantFilter, OutboxEvent, StoreError};

/// Audit kind of a reconciliation report.
pub const RECONCILIATION: &str = "reconciliation";

/// A boxed target operation.
pub type Op<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// One grant's access as a target sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The grant.
    pub grant_id: String,
    /// Who holds it (the request's subject id).
    pub subject: String,
    /// The group or role.
    pub target: String,
    /// A login made for this grant (`dynamic = true`), used instead of
    /// `subject`.
    pub login: Option<String>,
    /// That login's SCRAM-SHA-256 password verifier.
    pub verifier: Option<String>,
    /// When the grant ends (a dynamic login's `VALID UNTIL`).
    pub expires_at: Option<Millis>,
    /// The outbox event being run (what a webhook target sends).
    pub event: Option<OutboxEvent>,
}

impl Access {
    /// The access a grant holds, or `None` for a grant not provisioned.
    pub fn of(grant: &Grant) -> Option<Access> {
        let p = grant.provisioning.as_ref()?;
        Some(Access {
            grant_id: grant.id.clone(),
            subject: grant.request.subject.id.clone(),
            target: p.target.clone(),
            login: p.login.clone(),
            verifier: p.verifier.clone(),
            expires_at: grant.expires_at,
            event: None,
        })
    }

    /// The account the target adds to the group or role.
    pub fn account(&self) -> &str {
        self.login.as_deref().unwrap_or(&self.subject)
    }
}

/// A provisioner that applies access at a target and reads it back. Every
/// operation must be idempotent: it is repeated after a crash, a lost
/// answer, or on another replica.
pub trait Target: Send + Sync {
    /// Give `access` (a member already present is success).
    fn apply<'a>(&'a self, access: &'a Access) -> Op<'a, ()>;
    /// Take `access` away (a member already absent is success).
    fn remove<'a>(&'a self, access: &'a Access) -> Op<'a, ()>;
    /// Read back: `Some(true)` present, `Some(false)` absent, `None` when
    /// the target cannot be read (log, webhook): then a delivery counts as
    /// applied or removed.
    fn present<'a>(&'a self, access: &'a Access) -> Op<'a, Option<bool>>;
    /// The accounts (as [`Access::account`] names them) that are members
    /// of `target` now, for reconciliation; `None` when the target cannot
    /// list them.
    fn members<'a>(&'a self, target: &'a str) -> Op<'a, Option<BTreeSet<String>>>;
    /// How [`Target::members`] names the account of `access` (a directory
    /// names it by DN). Default: [`Access::account`].
    fn account<'a>(&'a self, access: &'a Access) -> Op<'a, String> {
        Box::pin(async move { Ok(access.account().to_string()) })
    }
    /// Remove `account` from `target` (reconciliation found it without a
    /// grant).
    fn remove_account<'a>(&'a self, target: &'a str, account: &'a str) -> Op<'a, ()>;
    /// [`Target::apply`], then [`Target::present`]: `Err` unless the
    /// target shows the access (or cannot be read). A target may do both
    /// in one session (one LDAP connection and bind).
    fn apply_and_read_back<'a>(&'a self, access: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            self.apply(access).await?;
            read_back(self.present(access).await?, true)
        })
    }
    /// [`Target::remove`], then [`Target::present`]: `Err` unless the
    /// target shows the access gone (or cannot be read).
    fn remove_and_read_back<'a>(&'a self, access: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            self.remove(access).await?;
            read_back(self.present(access).await?, false)
        })
    }
}

/// What a read-back after an apply (`applied` true) or a removal means.
pub fn read_back(present: Option<bool>, applied: bool) -> Result<(), String> {
    match (present, applied) {
        (Some(false), true) => Err("applied, but the target does not show it".into()),
        (Some(true), false) => Err("removed, but the target still shows it".into()),
        _ => Ok(()),
    }
}

/// Wraps an announcing [`Provisioner`] (log, webhook, an embedder's) as a
/// [`Target`]: it cannot read back, so a delivery counts as applied.
pub struct Announcer(pub Arc<dyn Provisioner>);

impl Target for Announcer {
    fn apply<'a>(&'a self, access: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            match &access.event {
                Some(ev) => self.0.deliver(ev).await,
                None => Ok(()),
            }
        })
    }
    fn remove<'a>(&'a self, access: &'a Access) -> Op<'a, ()> {
        self.apply(access)
    }
    fn present<'a>(&'a self, _: &'a Access) -> Op<'a, Option<bool>> {
        Box::pin(async { Ok(None) })
    }
    fn members<'a>(&'a self, _: &'a str) -> Op<'a, Option<BTreeSet<String>>> {
        Box::pin(async { Ok(None) })
    }
    fn remove_account<'a>(&'a self, _: &'a str, _: &'a str) -> Op<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer(Arc::new(LogProvisioner))
    }
}

/// What an entitlement is at its target (`[[entitlements]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The `[[provisioners]]` name.
    pub provisioner: String,
    /// The group or role.
    pub target: String,
}

/// How one provisioner is run.
#[derive(Clone)]
pub struct TargetSettings {
    /// The target.
    pub target: Arc<dyn Target>,
    /// A login is made per grant (`dynamic = true`, PostgreSQL).
    pub dynamic: bool,
    /// How often reconciliation runs. `None`: never.
    pub reconcile_interval: Option<Duration>,
    /// Access that vanished from an active grant is re-applied (`true`,
    /// the default) or only reported.
    pub reapply_missing: bool,
    /// Failed applies before a grant is given up as `failed`.
    pub max_apply_attempts: u32,
    /// First retry delay; doubles per attempt, capped at 5 minutes.
    pub retry_base: Duration,
}

impl TargetSettings {
    /// `target` with the defaults: reconciled every 5 minutes, missing
    /// access re-applied, 5 apply attempts, retries from 1 s.
    pub fn new(target: Arc<dyn Target>) -> Self {
        TargetSettings {
            target,
            dynamic: false,
            reconcile_interval: Some(Duration::from_secs(300)),
            reapply_missing: true,
            max_apply_attempts: 5,
            retry_base: Duration::from_secs(1),
        }
    }

    /// Delay before retry number `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        (self.retry_base * (1u32 << attempts.min(12))).min(Duration::from_secs(300))
    }
}

/// The configured targets and entitlement mapping.
pub struct Targets {
    provisioners: BTreeMap<String, TargetSettings>,
    entitlements: BTreeMap<String, Entitlement>,
    /// Counters and histograms for `/metrics`.
    pub metrics: TargetMetrics,
}

impl Targets {
    /// No provisioner, no entitlement.
    pub fn new() -> Self {
        Targets {
            provisioners: BTreeMap::new(),
            entitlements: BTreeMap::new(),
            metrics: TargetMetrics::default(),
        }
    }

    /// Add a provisioner under `name`.
    pub fn with_provisioner(mut self, name: &str, settings: TargetSettings) -> Self {
        self.metrics.register(name);
        self.provisioners.insert(name.to_string(), settings);
        self
    }

    /// Map entitlement `name` to `target` at provisioner `provisioner`.
    pub fn with_entitlement(mut self, name: &str, provisioner: &str, target: &str) -> Self {
        self.entitlements.insert(
            name.to_string(),
            Entitlement {
                provisioner: provisioner.to_string(),
                target: target.to_string(),
            },
        );
        self
    }

    /// The provisioner named `name`.
    pub fn get(&self, name: &str) -> Option<&TargetSettings> {
        self.provisioners.get(name)
    }

    /// The provisioner names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.provisioners.keys().map(String::as_str)
    }

    /// Mark a just-built grant as provisioned if its entitlement is
    /// mapped; a dynamic provisioner gets a fresh login and password. The
    /// grant keeps only the password's verifier; the clear password is
    /// returned, to be shown once.
    pub fn attach(&self, grant: &mut Grant) -> Option<Credential> {
        let e = self.entitlements.get(&grant.request.entitlement)?;
        let dynamic = self.get(&e.provisioner).is_some_and(|s| s.dynamic);
        let mut p = Provisioning {
            provisioner: e.provisioner.clone(),
            target: e.target.clone(),
            login: None,
            verifier: None,
            ending_as: None,
            applied_at: None,
            removed_at: None,
            last_error: None,
        };
        let credential = if dynamic {
            dynamic_credential(&grant.id, &mut p)
        } else {
            None
        };
        grant.provisioning = Some(p);
        credential
    }
}

impl Default for Targets {
    fn default() -> Self {
        Self::new()
    }
}

/// Role name of a grant's dynamic login: `jg_` and the grant id's hex,
/// which needs no quoting and cannot collide with a person's login.
pub fn dynamic_login(grant_id: &str) -> String {
    let tail: String = grant_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("jg_{tail}")
}

/// A fresh login and password for `grant_id`; `p` keeps the login and the
/// password's verifier only. Dynamic logins exist only with PostgreSQL
/// provisioners, so without the `postgres` feature there are none.
#[cfg(feature = "postgres")]
fn dynamic_credential(grant_id: &str, p: &mut Provisioning) -> Option<Credential> {
    let login = dynamic_login(grant_id);
    let password = random_password();
    p.verifier = Some(scram_verifier(&password));
    p.login = Some(login.clone());
    Some(Credential { login, password })
}

#[cfg(not(feature = "postgres"))]
fn dynamic_credential(_grant_id: &str, _p: &mut Provisioning) -> Option<Credential> {
    None
}

#[cfg(feature = "postgres")]
fn random_password() -> String {
    let mut b = [0u8; 24];
    if getrandom::fill(&mut b).is_err() {
        // No OS entropy: no password is better than a guessable one; the
        // login gets one that nobody knows.
        return String::new();
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(b)
        .replace(['+', '/'], "x")
}

/// A SCRAM-SHA-256 verifier (RFC 7677, PostgreSQL's stored form) of
/// `password`: PostgreSQL accepts it as the password, so the server never
/// needs the clear text and jitgate never stores it. Made by the PostgreSQL
/// driver's own protocol crate (SASLprep, random salt, 4096 iterations),
/// not by hand.
#[cfg(feature = "postgres")]
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

/// Per-provisioner counters and the revocation-lag histograms: metric
/// families labelled `provisioner`, registered into the service's registry
/// ([`TargetMetrics::register_into`]) so `/metrics` encodes them with the
/// rest.
pub struct TargetMetrics {
    per: Mutex<BTreeMap<String, Arc<Per>>>,
    lag: Family<ProvisionerLabel, Histogram, fn() -> Histogram>,
    apply_failures: Family<ProvisionerLabel, Counter>,
    remove_failures: Family<ProvisionerLabel, Counter>,
    failed_grants: Family<ProvisionerLabel, Counter>,
    reconcile_runs: Family<ProvisionerLabel, Counter>,
    reconcile_removed: Family<ProvisionerLabel, Counter>,
    reconcile_missing: Family<ProvisionerLabel, Counter>,
    reconcile_errors: Family<ProvisionerLabel, Counter>,
    provisioning: Gauge,
    deprovisioning: Gauge,
    alarm: Gauge,
    failing: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProvisionerLabel {
    provisioner: String,
}

/// One provisioner's handles into the families (shared counters).
struct Per {
    lag: Histogram,
    /// How many lags `lag` holds (the client reads a histogram's count
    /// only in its own tests).
    lag_count: Counter,
    apply_failures: Counter,
    remove_failures: Counter,
    failed_grants: Counter,
    reconcile_runs: Counter,
    reconcile_removed: Counter,
    reconcile_missing: Counter,
    reconcile_errors: Counter,
}

/// Upper bounds (seconds) of the revocation-lag buckets.
const LAG_BOUNDS_S: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0];

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BOUNDS_S)
}

impl Default for TargetMetrics {
    fn default() -> Self {
        TargetMetrics {
            per: Mutex::default(),
            lag: Family::new_with_constructor(lag_histogram),
            apply_failures: Family::default(),
            remove_failures: Family::default(),
            failed_grants: Family::default(),
            reconcile_runs: Family::default(),
            reconcile_removed: Family::default(),
            reconcile_missing: Family::default(),
            reconcile_errors: Family::default(),
            provisioning: Gauge::default(),
            deprovisioning: Gauge::default(),
            alarm: Gauge::default(),
            failing: Gauge::default(),
        }
    }
}

impl TargetMetrics {
    fn register(&self, name: &str) {
        let _ = self.per(name);
    }

    fn per(&self, name: &str) -> Arc<Per> {
        let mut map = self.per.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                let l = ProvisionerLabel {
                    provisioner: name.to_string(),
                };
                Arc::new(Per {
                    lag: self.lag.get_or_create_owned(&l),
                    lag_count: Counter::default(),
                    apply_failures: self.apply_failures.get_or_create_owned(&l),
                    remove_failures: self.remove_failures.get_or_create_owned(&l),
                    failed_grants: self.failed_grants.get_or_create_owned(&l),
                    reconcile_runs: self.reconcile_runs.get_or_create_owned(&l),
                    reconcile_removed: self.reconcile_removed.get_or_create_owned(&l),
                    reconcile_missing: self.reconcile_missing.get_or_create_owned(&l),
                    reconcile_errors: self.reconcile_errors.get_or_create_owned(&l),
                })
            })
            .clone()
    }

    /// One end-to-end revocation lag at `provisioner`.
    pub fn revocation_lag(&self, provisioner: &str, lag_ms: i64) {
        let p = self.per(provisioner);
        p.lag.observe(lag_ms.max(0) as f64 / 1000.0);
        p.lag_count.inc();
    }

    /// Revocation lags observed at `provisioner` so far.
    pub fn revocation_lags(&self, provisioner: &str) -> u64 {
        self.per(provisioner).lag_count.get()
    }

    /// Access reconciliation removed at `provisioner` so far.
    pub fn reconcile_removed(&self, provisioner: &str) -> u64 {
        self.per(provisioner).reconcile_removed.get()
    }

    /// Set the gauges of grants in transit: (provisioning, deprovisioning,
    /// removals that failed and are being retried), read from the store
    /// at each scrape.
    pub fn set_in_transit(&self, (prov, deprov, stuck): (u64, u64, u64)) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.provisioning.set(clamp(prov));
        self.deprovisioning.set(clamp(deprov));
        self.alarm.set(i64::from(stuck > 0));
        self.failing.set(clamp(stuck));
    }

    /// Register every family and gauge into `registry` (the service's).
    pub fn register_into(&self, registry: &mut Registry) {
        registry.register(
            "jitgate_grants_provisioning",
            "Grants whose access is being applied",
            self.provisioning.clone(),
        );
        registry.register(
            "jitgate_grants_deprovisioning",
            "Grants ended whose access is not yet read back as removed",
            self.deprovisioning.clone(),
        );
        registry.register(
            "jitgate_deprovisioning_alarm",
            "1 while a grant's access removal has failed and is being retried",
            self.alarm.clone(),
        );
        registry.register(
            "jitgate_deprovisioning_failing_grants",
            "Grants whose access removal has failed and is being retried",
            self.failing.clone(),
        );
        registry.register(
            "jitgate_revocation_lag_seconds_by_provisioner",
            "From expiry (or the end being decided) to the access read back as gone",
            self.lag.clone(),
        );
        for (name, help, family) in [
            (
                "jitgate_provision_apply_failures",
                "Failed attempts to apply access",
                &self.apply_failures,
            ),
            (
                "jitgate_provision_remove_failures",
                "Failed attempts to remove access",
                &self.remove_failures,
            ),
            (
                "jitgate_provision_failed_grants",
                "Grants given up as failed",
                &self.failed_grants,
            ),
            (
                "jitgate_reconcile_runs",
                "Reconciliation runs",
                &self.reconcile_runs,
            ),
            (
                "jitgate_reconcile_removed",
                "Access found without a grant and removed",
                &self.reconcile_removed,
            ),
            (
                "jitgate_reconcile_missing",
                "Active grants whose access had vanished",
                &self.reconcile_missing,
            ),
            (
                "jitgate_reconcile_errors",
                "Reconciliation runs that could not read or fix the target",
                &self.reconcile_errors,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
    }
}

/// Grants in `state`, all of them (paged).
pub(crate) fn grants_in(service: &Service, state: GrantState) -> Result<Vec<Grant>, StoreError> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = service.store().grants(&GrantFilter {
            state: Some(state),
            limit: 1000,
            before: before.clone(),
            ..GrantFilter::default()
        })?;
        let n = page.len();
        before = page.last().map(|g| (g.created_at, g.id.clone()));
        all.extend(page);
        if n < 1000 {
            return Ok(all);
        }
    }
}

/// The `/metrics` gauges of grants in transit.
pub(crate) fn in_transit(service: &Service) -> Result<(u64, u64, u64), StoreError> {
    let prov = grants_in(service, GrantState::Provisioning)?.len() as u64;
    let deprov = grants_in(service, GrantState::Deprovisioning)?;
    let failing = deprov
        .iter()
        .filter(|g| {
            g.provisioning
                .as_ref()
                .is_some_and(|p| p.last_error.is_some())
        })
        .count() as u64;
    Ok((prov, deprov.len() as u64, failing))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ServiceError::Unavailable(e.to_string())))
}

/// Apply `event` to grant `id` if it still applies (a grant another
/// replica moved on is left alone). Returns the grant as stored.
fn transition(
    service: &Service,
    id: &str,
    actor: &str,
    event: GrantEvent,
) -> Result<Grant, ServiceError> {
    let now = service.now();
    service
        .store()
        .update_grant::<ServiceError>(id, &mut |g| Ok(g.apply(event.clone(), actor, now).ok()))
}

/// Run one `provision-apply` or `provision-remove` event and record its
/// outcome in the outbox (delivered, or failed with a retry time).
pub async fn run(service: Arc<Service>, targets: Arc<Targets>, ev: OutboxEvent) {
    let outcome = attempt(&service, &targets, &ev).await;
    let svc = service.clone();
    let _ = blocking(move || {
        let now = crate::service::now_millis();
        let store = svc.store();
        let r = match outcome {
            Ok(()) => store.outbox_delivered(&ev.id, now),
            Err(err) => {
                tracing::warn!(event = %ev.id, attempt = ev.attempts + 1, error = %err, "provisioning failed; will retry");
                let delay = ev.payload["provisioner"]
                    .as_str()
                    .and_then(|n| targets.get(n))
                    .map_or(super::backoff(ev.attempts), |s| s.backoff(ev.attempts));
                let next = now + delay.as_millis() as i64;
                store.outbox_failed(&ev.id, next, &err)
            }
        };
        r.map_err(ServiceError::from)
    })
    .await
    .map_err(|e| tracing::error!(error = %e, "recording a provisioning outcome failed"));
}

async fn attempt(
    service: &Arc<Service>,
    targets: &Targets,
    ev: &OutboxEvent,
) -> Result<(), String> {
    let svc = service.clone();
    let id = ev.grant_id.clone();
    let grant = blocking(move || Ok(svc.store().grant(&id)?))
        .await
        .map_err(|e| e.to_string())?;
    let Some(grant) = grant else { return Ok(()) };
    let Some(p) = grant.provisioning.clone() else {
        return Ok(());
    };
    let Some(mut access) = Access::of(&grant) else {
        return Ok(());
    };
    access.event = Some(ev.clone());
    let actor = format!("provisioner {}", p.provisioner);
    let settings = targets.get(&p.provisioner);
    let per = targets.metrics.per(&p.provisioner);
    if ev.kind == PROVISION_APPLY {
        // Ended (or given up) meanwhile: applying now would give access
        // after its end; the queued removal takes care of any part applied.
        if grant.state != GrantState::Provisioning {
            return Ok(());
        }
        let result = match settings {
            None => Err(format!(
                "no provisioner named `{}` is configured",
                p.provisioner
            )),
            Some(s) => bounded(s.target.apply_and_read_back(&access)).await,
        };
        let svc = service.clone();
        match result {
            Ok(()) => {
                let gid = ev.grant_id.clone();
                blocking(move || transition(&svc, &gid, &actor, GrantEvent::Applied))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Err(error) => {
                per.apply_failures.inc();
                let most = settings.map_or(1, |s| s.max_apply_attempts);
                if ev.attempts + 1 < most {
                    return Err(error);
                }
                tracing::error!(grant = %ev.grant_id, %error, "the target refused the access; the grant fails");
                per.failed_grants.inc();
                let gid = ev.grant_id.clone();
                blocking(move || transition(&svc, &gid, &actor, GrantEvent::ApplyFailed { error }))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    } else if ev.kind == PROVISION_REMOVE {
        if grant.state != GrantState::Deprovisioning {
            return Ok(());
        }
        let result = match settings {
            None => Err(format!(
                "no provisioner named `{}` is configured",
                p.provisioner
            )),
            Some(s) => bounded(s.target.remove_and_read_back(&access)).await,
        };
        let svc = service.clone();
        let gid = ev.grant_id.clone();
        match result {
            Ok(()) => {
                let g = blocking(move || transition(&svc, &gid, &actor, GrantEvent::Removed))
                    .await
                    .map_err(|e| e.to_string())?;
                if g.state != GrantState::Deprovisioning
                    && let Some(lag) = g.revocation_lag_ms
                {
                    targets.metrics.revocation_lag(&p.provisioner, lag);
                }
                Ok(())
            }
            Err(error) => {
                per.remove_failures.inc();
                // Recorded on the grant: what `/metrics` alarms on and an
                // operator reads in `GET /v1/grants/{id}`.
                let recorded = error.clone();
                let _ = blocking(move || {
                    svc.store()
                        .update_grant::<ServiceError>(
                            &gid,
                            &mut |g| match g.provisioning.as_mut() {
                                Some(p) if g.state == GrantState::Deprovisioning => {
                                    p.last_error = Some(recorded.clone());
                                    Ok(Some(Default::default()))
                                }
                                _ => Ok(None),
                            },
                        )
                })
                .await;
                Err(error)
            }
        }
    } else {
        Ok(())
    }
}

/// A target call ends within the dispatcher's deadline, so the event's
/// lease cannot run out while it is in flight.
async fn bounded(op: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(MAX_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err("the target did not answer in time".into()))
}

/// What one reconciliation of one provisioner found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The provisioner.
    pub provisioner: String,
    /// `target → accounts` found without a grant and removed.
    pub removed: BTreeMap<String, Vec<String>>,
    /// Grants whose access had vanished.
    pub missing: Vec<String>,
    /// Of those, re-applied.
    pub reapplied: Vec<String>,
    /// What could not be read or fixed.
    pub errors: Vec<String>,
}

impl Targets {
    /// Compare, for every group/role `name` manages (mapped by
    /// `[[entitlements]]` or held by a grant), who the target shows with who
    /// jitgate granted; remove the strays and re-apply (or report) missing
    /// access. Grants in transit are left to the outbox. The report is
    /// audited when it found anything.
    pub async fn reconcile(&self, service: &Arc<Service>, name: &str) -> Result<Report, String> {
        let settings = self
            .get(name)
            .ok_or_else(|| format!("no provisioner named `{name}`"))?
            .clone();
        let per = self.metrics.per(name);
        per.reconcile_runs.inc();
        // Members are read between two listings of the grants: a member
        // applied after the first listing belongs to a grant the second one
        // holds, so a grant racing this run is never taken for a stray; and
        // only grants active in both listings were active when the members
        // were read, so only they can be missing.
        let (active0, transit0) = self.held_by(service, name).await?;
        let mut managed: BTreeSet<String> = self
            .entitlements
            .values()
            .filter(|e| e.provisioner == name)
            .map(|e| e.target.clone())
            .collect();
        managed.extend(active0.iter().chain(&transit0).map(|a| a.target.clone()));
        let mut report = Report {
            provisioner: name.to_string(),
            ..Report::default()
        };
        let mut read = Vec::new();
        for target in &managed {
            match settings.target.members(target).await {
                Ok(Some(m)) => read.push((target.clone(), m)),
                Ok(None) => {}
                Err(e) => report.errors.push(format!("{target}: {e}")),
            }
        }
        let (active, transit) = self.held_by(service, name).await?;
        let was_active: BTreeSet<&str> = active0.iter().map(|a| a.grant_id.as_str()).collect();
        let stable: Vec<&Access> = active
            .iter()
            .filter(|a| was_active.contains(a.grant_id.as_str()))
            .collect();
        for (target, members) in &read {
            let mut granted = BTreeMap::new();
            let mut unresolved = false;
            for a in active
                .iter()
                .chain(&transit)
                .filter(|a| &a.target == target)
            {
                match settings.target.account(a).await {
                    Ok(account) => {
                        granted.insert(a.grant_id.clone(), account);
                    }
                    Err(e) => {
                        unresolved = true;
                        report
                            .errors
                            .push(format!("{target}: resolving {}: {e}", a.grant_id));
                    }
                }
            }
            let held: BTreeSet<&str> = granted.values().map(String::as_str).collect();
            // A grant whose account cannot be resolved might be any member:
            // removing nothing beats removing a legitimate one.
            let strays: Vec<&String> = if unresolved {
                Vec::new()
            } else {
                members
                    .iter()
                    .filter(|m| !held.contains(m.as_str()))
                    .collect()
            };
            for stray in strays {
                match settings.target.remove_account(target, stray).await {
                    Ok(()) => report
                        .removed
                        .entry(target.clone())
                        .or_default()
                        .push(stray.clone()),
                    Err(e) => report
                        .errors
                        .push(format!("{target}: removing {stray}: {e}")),
                }
            }
            for a in stable.iter().filter(|a| &a.target == target) {
                match granted.get(&a.grant_id) {
                    Some(account) if !members.contains(account) => {}
                    _ => continue,
                }
                report.missing.push(a.grant_id.clone());
                // Re-read: a grant ended since the listing must not get its
                // access back after its removal ran.
                let (svc, gid) = (service.clone(), a.grant_id.clone());
                let still_active = blocking(move || Ok(svc.store().grant(&gid)?))
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|g| g.state == GrantState::Active);
                if settings.reapply_missing && still_active {
                    match settings.target.apply_and_read_back(a).await {
                        Ok(()) => report.reapplied.push(a.grant_id.clone()),
                        Err(e) => report
                            .errors
                            .push(format!("re-applying {}: {e}", a.grant_id)),
                    }
                }
            }
        }
        let removed: usize = report.removed.values().map(Vec::len).sum();
        per.reconcile_removed.inc_by(removed as u64);
        per.reconcile_missing.inc_by(report.missing.len() as u64);
        if !report.errors.is_empty() {
            per.reconcile_errors.inc();
        }
        if removed > 0 || !report.missing.is_empty() || !report.errors.is_empty() {
            let svc = service.clone();
            let draft = AuditDraft::new(
                service.now(),
                RECONCILIATION,
                &format!("provisioner {name}"),
                json!(report),
            );
            blocking(move || Ok(svc.store().append_audit(vec![draft])?))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(report)
    }
}

impl Targets {
    /// The accesses provisioner `name` holds now: (active, in transit).
    async fn held_by(
        &self,
        service: &Arc<Service>,
        name: &str,
    ) -> Result<(Vec<Access>, Vec<Access>), String> {
        let svc = service.clone();
        let (active, transit) = blocking(move || {
            let mut transit = grants_in(&svc, GrantState::Provisioning)?;
            transit.extend(grants_in(&svc, GrantState::Deprovisioning)?);
            Ok((grants_in(&svc, GrantState::Active)?, transit))
        })
        .await
        .map_err(|e| e.to_string())?;
        let mine = |g: &&Grant| {
            g.provisioning
                .as_ref()
                .is_some_and(|p| p.provisioner == name)
        };
        Ok((
            active.iter().filter(mine).filter_map(Access::of).collect(),
            transit.iter().filter(mine).filter_map(Access::of).collect(),
        ))
    }
}

/// Reconcile provisioner `name` every `every`, forever.
pub async fn reconcile_every(
    service: Arc<Service>,
    targets: Arc<Targets>,
    name: String,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        match targets.reconcile(&service, &name).await {
            Ok(r) if !r.removed.is_empty() || !r.missing.is_empty() => {
                tracing::warn!(provisioner = %name, report = %json!(r), "reconciliation corrected the target");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(provisioner = %name, error = %e, "reconciliation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn a_scram_verifier_never_contains_the_password() {
        let v = scram_verifier("s3cret-password");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"), "{v}");
        assert!(!v.contains("s3cret"));
        assert_ne!(v, scram_verifier("s3cret-password"), "salted");
    }

    #[test]
    fn dynamic_logins_are_plain_identifiers() {
        assert_eq!(dynamic_login("g-0aF\"; DROP"), "jg_g0afdrop");
    }
}
