//! [`Background`]: the tasks that make a service run on its own — the
//! scheduler that ends grants when they expire or lapse, and the dispatcher
//! that delivers provisioning events — started together by
//! [`Service::start_background`].

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Service;
use crate::provision::Provisioner;

/// The running background tasks of a [`Service`]. Dropping it stops them
/// (each is aborted at its next await point; a commit already under way on
/// a blocking thread completes, and anything left undone is picked up on
/// the next start: deadlines and the outbox live in the store).
#[must_use = "dropping Background stops the scheduler and the dispatcher"]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

/// [`Service::start_background`] was called outside a tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Service::start_background must be called within a tokio runtime (it spawns tasks)")]
pub struct NoRuntime;

impl Background {
    /// Keep `task` too: it is aborted with the others.
    pub fn adopt(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// How many tasks are held.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is held.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether every task still runs. The loops never return, so a
    /// finished task panicked or was aborted.
    pub fn is_running(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }

    /// Stop every task now (what dropping does).
    pub fn stop(self) {}
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("tasks", &self.tasks.len())
            .field("running", &self.is_running())
            .finish()
    }
}

impl Service {
    /// Start the expiry scheduler ([`super::scheduler::run`]) and the
    /// provisioning dispatcher ([`crate::provision::dispatch`], delivering
    /// through `provisioner`) on the current tokio runtime. Without them no
    /// grant ends on time and no provisioning event is sent. Keep the
    /// returned [`Background`] for as long as the service should run.
    ///
    /// Several replicas (or several calls) may run these against one
    /// store: endings and deliveries are claimed under the store's locks.
    pub fn start_background(
        self: &Arc<Self>,
        provisioner: Arc<dyn Provisioner>,
    ) -> Result<Background, NoRuntime> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        let mut tasks = vec![
            rt.spawn(super::scheduler::run(self.clone())),
            rt.spawn(crate::provision::dispatch(self.clone(), provisioner)),
        ];
        if let Some(targets) = &self.targets {
            for name in targets.names() {
                if let Some(every) = targets.get(name).and_then(|s| s.reconcile_interval) {
                    tasks.push(rt.spawn(crate::provision::targets::reconcile_every(
                        self.clone(),
                        targets.clone(),
                        name.to_string(),
                        every,
                    )));
                }
            }
        }
        // The console's chain state and the access review follow the chain
        // (`review::Live`): walking it from record 1 now, off the async
        // workers, spares the first auditor to look the wait. Fire and
        // forget: a view that comes first simply does the walk itself.
        let svc = self.clone();
        rt.spawn_blocking(move || {
            if let Err(e) = svc.live_chain.status(&svc.store, svc.now()) {
                tracing::warn!(error = %e, "following the audit chain failed; views will retry");
            }
        });
        Ok(Background { tasks })
    }
}
