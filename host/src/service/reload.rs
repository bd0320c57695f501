//! Policy reloads: a candidate set is read once, verified (with `[trust]`),
//! compiled from those bytes, checked against the fixtures shipped beside
//! it, and only then accepted in the store and swapped in; otherwise the
//! running set stays and the rejection is audited, counted and shown. The
//! previous sets are kept for `POST /v1/policies/rollback`.
//!
//! Triggers: `POST /v1/policies/reload`, SIGHUP (`jitgate serve`), and
//! [`watch`], which polls the folder once a second. Polling rather than
//! inotify (`notify`): a handful of `stat` calls a second is nothing, it
//! works where file events do not (NFS, container volume swaps of a
//! ConfigMap's symlinked folder), adds no dependency, and a set copied in
//! over several seconds has to be waited out anyway: a change is acted on
//! once the folder has looked the same for one whole interval.
//!
//! A decision in flight finishes on the set it started with: each holds its
//! own `Arc` of the engine, and a swap only replaces the service's.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Principal, Role, Service, ServiceError};
use crate::audit;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::fixture::{ModuleSource, RunOptions};
use crate::policy::{LoadError, PolicyMeta};
use crate::policy_set::{PolicySetError, SetInfo, Trust, VerifiedModule};
use crate::store::{Store, StoreError};

/// Previous sets kept for rollback.
pub const ROLLBACK_DEPTH: usize = 8;

/// How often [`watch`] looks at the policy folder.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where a reload reads policy modules from, and with which engine settings.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// A module or a folder of modules (with `trust`: a signed set's folder).
    pub path: PathBuf,
    /// Settings for the engine each reload builds.
    pub engine: EngineConfig,
    /// `[trust]`: when set, only a set verified against these keys loads,
    /// and never one older than the store's last accepted sequence.
    pub trust: Option<Trust>,
}

/// Why a policy source did not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No engine could be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A module was refused.
    #[error("loading policies: {0}")]
    Load(#[from] LoadError),
    /// The signed set was refused.
    #[error("policy set refused: {0}")]
    Refused(#[from] PolicySetError),
    /// The last accepted sequence could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The candidate's own fixtures failed.
    #[error("the candidate's fixtures failed: {0}")]
    Fixtures(String),
}

impl From<SourceError> for ServiceError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Engine(e) => ServiceError::Unavailable(e.to_string()),
            SourceError::Store(e) => e.into(),
            e => ServiceError::BadRequest {
                field: "policies".into(),
                message: e.to_string(),
            },
        }
    }
}

impl PolicySource {
    /// A fresh engine with the source's policies: with `trust`, the set is
    /// verified first (its sequence against `store`'s floor) and the engine
    /// compiles the verified bytes. Nothing is recorded: accepting the set
    /// is [`Service::record_policies`]'s business.
    pub fn load(&self, store: &dyn Store) -> Result<Engine, SourceError> {
        self.read_and_load(store).map(|(engine, _)| engine)
    }

    /// The engine and the module bytes it was built from (each module read
    /// once).
    fn read_and_load(
        &self,
        store: &dyn Store,
    ) -> Result<(Engine, Vec<VerifiedModule>), SourceError> {
        let mut engine = Engine::new(self.engine.clone())?;
        let modules = match &self.trust {
            Some(trust) => {
                let floor = store.policy_set_sequence()?.map(|s| s.max(0) as u64);
                let set = crate::policy_set::verify(
                    &self.path,
                    trust,
                    floor,
                    self.engine.sandbox.max_module_bytes,
                )?;
                engine.load_set(&set)?;
                set.modules
            }
            None => {
                let files = if self.path.is_dir() {
                    crate::policy::loader::wasm_files(&self.path)?
                } else {
                    vec![self.path.clone()]
                };
                let mut modules = Vec::with_capacity(files.len());
                for f in files {
                    let bytes = crate::policy::loader::read_module(&f, &self.engine.sandbox)?;
                    engine.load_bytes(&f, &bytes)?;
                    modules.push(VerifiedModule {
                        name: f
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        bytes: bytes.into(),
                    });
                }
                modules
            }
        };
        Ok((engine, modules))
    }

    /// A candidate for a reload: [`PolicySource::load`], then the fixtures
    /// in the folder's `fixtures/` (when present), run against the same
    /// bytes, must all pass.
    pub fn candidate(&self, store: &dyn Store) -> Result<Engine, SourceError> {
        let (engine, modules) = self.read_and_load(store)?;
        let fixtures = self.path.join("fixtures");
        if self.path.is_dir() && fixtures.is_dir() {
            let mut config = self.engine.clone();
            // As `jitgate test`: fixtures judge rules, not this machine's
            // load; fuel still bounds every evaluation.
            config.sandbox.timeout = config.sandbox.timeout.max(Duration::from_secs(1));
            let opts = RunOptions {
                policy_dir: self.path.clone(),
                filter: None,
                engine: config,
                source: ModuleSource::InMemory(self.path.clone(), modules),
                coverage_modules: Default::default(),
            };
            let report = crate::fixture::run(&[fixtures], &opts);
            if report.failed() > 0 || report.cases.is_empty() {
                let first = report.file_errors.first().cloned().or_else(|| {
                    report.cases.iter().find(|c| !c.passed()).map(|c| {
                        format!(
                            "{}:{}: {}: expected {}, got {}",
                            c.file.display(),
                            c.line,
                            c.name,
                            c.expected,
                            c.actual
                        )
                    })
                });
                return Err(SourceError::Fixtures(format!(
                    "{} passed, {} failed; first: {}",
                    report.passed(),
                    report.failed(),
                    first.unwrap_or_else(|| "no cases".into())
                )));
            }
        }
        Ok(engine)
    }
}

impl Service {
    /// Load the policy source afresh and swap it in (admin), audited. All
    /// or nothing: a candidate that does not verify, load or pass its
    /// fixtures leaves the running set in place. Conflict when the service
    /// has no [`PolicySource`].
    pub fn reload_policies(&self, actor: &Principal) -> Result<Vec<PolicyMeta>, ServiceError> {
        actor.require_any(&[Role::Admin])?;
        self.reload_from_source(&actor.name, "api")
    }

    /// [`Service::reload_policies`] without a role check, for the host's own
    /// triggers (`trigger`: `watch`, `sighup`).
    pub fn reload_from_source(
        &self,
        actor: &str,
        trigger: &str,
    ) -> Result<Vec<PolicyMeta>, ServiceError> {
        let Some(source) = self.policy_source.clone() else {
            return Err(ServiceError::Conflict("reloading is disabled".into()));
        };
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let engine = match source.candidate(self.store.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                let message = e.to_string();
                self.reject_candidate(actor, trigger, &source.path, &message);
                return Err(e.into());
            }
        };
        if let Err(e) = self.record_policies(&engine, actor) {
            self.reject_candidate(actor, trigger, &source.path, &e.to_string());
            return Err(e);
        }
        let list: Vec<_> = engine.policies().cloned().collect();
        let old = self.swap_engine(Arc::new(engine));
        let mut previous = self.previous_sets.lock().unwrap_or_else(|p| p.into_inner());
        previous.push(old);
        if previous.len() > ROLLBACK_DEPTH {
            previous.remove(0);
        }
        self.metrics.policy_reload(true);
        drop(previous);
        tracing::info!(trigger, digest = %self.engine().policy_set().digest, "policy set reloaded");
        self.reverify_on_swap(actor);
        Ok(list)
    }

    /// With `reverify-on-reload`, decide every active grant again against
    /// the set just swapped in. The swap stands whatever this does: a
    /// grant it could not re-decide is left as it is (and logged).
    fn reverify_on_swap(&self, actor: &str) {
        if !self.config.reverify_on_reload {
            return;
        }
        match self.reverify_all(actor) {
            Ok(revoked) => {
                tracing::info!(
                    revoked = revoked.len(),
                    "active grants re-verified against the new policy set"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-verifying active grants after a reload failed")
            }
        }
    }

    /// Count, audit and remember a refused candidate.
    fn reject_candidate(&self, actor: &str, trigger: &str, path: &Path, message: &str) {
        self.metrics.policy_reload(false);
        tracing::warn!(trigger, path = %path.display(), "policy set candidate refused: {message}");
        let record = json!({
            "refused": message,
            "path": path,
            "trigger": trigger,
            "running": self.engine().policy_set().digest,
        });
        if let Err(e) = self.audit(audit::kind::POLICY_SET, actor, record.clone()) {
            tracing::warn!(error = %e, "could not audit a refused policy set");
        }
        let mut at = record;
        at["at"] = json!(crate::timefmt::rfc3339_ms(self.now()));
        *self
            .last_rejection
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    /// Return to the set that ran before the last accepted reload (admin),
    /// audited. In memory only: the folder and the store's sequence floor
    /// are unchanged, so a restart loads the folder again (re-sign the old
    /// set with a new sequence to make a rollback last).
    pub fn rollback_policies(&self, actor: &Principal) -> Result<SetInfo, ServiceError> {
        actor.require_any(&[Role::Admin])?;
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(previous) = self
            .previous_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        else {
            return Err(ServiceError::Conflict(
                "no previous policy set to return to".into(),
            ));
        };
        let to = previous.policy_set().clone();
        let from = self.engine().policy_set().digest.clone();
        self.audit(
            audit::kind::POLICY_SET,
            &actor.name,
            json!({"rollback": to, "from": from}),
        )?;
        self.swap_engine(previous);
        self.metrics.policy_rollbacks.inc();
        self.reverify_on_swap(&actor.name);
        Ok(to)
    }

    /// What `GET /v1/policies` shows beside the policies: the running set,
    /// the last refused candidate, and how many rollbacks are possible.
    pub fn policy_status(&self, actor: &Principal) -> Value {
        json!({
            "set": crate::answer::set_info(&self.policy_set(actor)),
            "last-rejection": *self.last_rejection.lock().unwrap_or_else(|p| p.into_inner()),
            "rollback-depth": self.previous_sets.lock().unwrap_or_else(|p| p.into_inner()).len(),
        })
    }
}

/// What a folder looks like: name, size and modification time of each
/// entry, and of each entry of its `fixtures/`. Any change means a
/// candidate to try.
fn fingerprint(path: &Path) -> Vec<(String, u64, u128)> {
    let mut out = Vec::new();
    let mut add = |p: &Path, prefix: &str| {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            if let Ok(m) = e.metadata() {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out.push((
                    format!("{prefix}{}", e.file_name().to_string_lossy()),
                    m.len(),
                    mtime,
                ));
            }
        }
    };
    if path.is_dir() {
        add(path, "");
        add(&path.join("fixtures"), "fixtures/");
    } else if let Ok(m) = std::fs::metadata(path) {
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        out.push((String::new(), m.len(), mtime));
    }
    out.sort();
    out
}

/// Poll the policy folder every `every` and reload once a change has held
/// still for one interval. Runs until the service is dropped elsewhere and
/// the task is aborted with the runtime.
///
/// The folder's first look is taken here, when the watcher is made (before
/// the server listens), not when the spawned task first runs: a module
/// dropped in just after start-up would otherwise become the baseline and
/// never count as a change (seen as a flaky
/// `watched_folder_keeps_the_old_set_on_a_broken_or_unsigned_candidate`).
pub fn watch(service: Arc<Service>, every: Duration) -> impl Future<Output = ()> + Send + 'static {
    let path = service.policy_source.as_ref().map(|s| s.path.clone());
    let baseline = path.as_deref().map(fingerprint);
    watching(service, every, path, baseline)
}

async fn watching(
    service: Arc<Service>,
    every: Duration,
    path: Option<PathBuf>,
    baseline: Option<Vec<(String, u64, u128)>>,
) {
    let (Some(path), Some(mut seen)) = (path, baseline) else {
        return;
    };
    let look = |p: PathBuf| async move {
        tokio::task::spawn_blocking(move || fingerprint(&p))
            .await
            .unwrap_or_default()
    };
    let mut settling: Option<Vec<_>> = None;
    loop {
        tokio::time::sleep(every).await;
        let now = look(path.clone()).await;
        if now == seen {
            settling = None;
            continue;
        }
        if settling.as_ref() != Some(&now) {
            settling = Some(now);
            continue;
        }
        seen = now;
        settling = None;
        let svc = service.clone();
        let r =
            tokio::task::spawn_blocking(move || svc.reload_from_source("system", "watch")).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "watched policy folder changed; candidate refused, running set kept");
        }
    }
}
