//! Where the service's decisions run: a fixed set of threads fed by a
//! bounded queue, off the async workers.
//!
//! A decision is CPU work whose cost a policy module chooses, within its
//! budget (50 ms of time by default). Run on the async workers, a few slow
//! decisions stall every other endpoint, `/healthz` included; run on
//! tokio's blocking pool, they are unbounded (512 threads) and each thread
//! may hold instance slots of its own. Here at most `workers` decisions run
//! at once and at most `queue` wait; past that a caller is told "busy" at
//! once (503 with `Retry-After`, nothing stored) instead of queueing
//! without bound.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::{Service, ServiceError};
use crate::decision::Decision;
use crate::engine::{EngineConfig, Isolation};
use crate::policy::POLICIES_PER_STORE;
use crate::request::{Request, RequestError};

type Job = Box<dyn FnOnce() + Send>;

/// Every worker is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every decision worker is busy and {queue} decisions are waiting; retry shortly")]
pub struct Busy {
    /// The queue bound.
    pub queue: usize,
}

/// The decision threads and their queue.
pub struct Evaluator {
    /// `None` when no thread could be started: every decision is then busy.
    tx: Option<SyncSender<Job>>,
    queue: usize,
}

/// Waiting decisions per worker, by default. An ordinary decision takes
/// tens of µs, so 64 waiting is a few ms of queue; a hostile policy at its
/// 50 ms budget makes it 3.2 s, still inside the request timeout. 16 (the
/// earlier default) refused a share of the answers with `busy` at 32
/// connections on two cores (docs/performance.md §14) while the CPU was
/// not saturated.
const QUEUE_PER_WORKER: usize = 64;

/// Threads and queue bound for `config` with `policies` loaded: one thread
/// per two CPUs unless configured (the async workers, one per CPU, parse,
/// authenticate, audit and answer; a decision is about half of a dry run's
/// CPU, and more decision threads than that only add context switches: on
/// two cores, two decision threads served 8,300 dry runs/s, one 10,300),
/// and never more than the instance pool can serve. A per-decision
/// decision holds one slot per policy it evaluates, up to
/// `POLICIES_PER_STORE` at once (they share one store until the decision
/// is done); a per-worker thread holds one per policy, twice over across a
/// reload.
pub fn size(config: &EngineConfig, policies: usize) -> (usize, usize) {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut workers = config.workers.unwrap_or(cpus.div_ceil(2)).max(1);
    if let Some(slots) = config.instance_pool {
        let per_worker = match config.isolation {
            Isolation::PerDecision => policies.clamp(1, POLICIES_PER_STORE),
            Isolation::PerWorker => 2 * policies.max(1),
        };
        workers = workers.min((slots as usize / per_worker).max(1));
    }
    let queue = config.queue.unwrap_or(workers * QUEUE_PER_WORKER).max(1);
    (workers, queue)
}

impl Evaluator {
    /// Start `workers` threads with room for `queue` waiting decisions. A
    /// thread the OS refuses is logged and done without; with none at all
    /// every decision is [`Busy`] (fail closed, never a hang).
    pub fn start(workers: usize, queue: usize) -> Evaluator {
        let queue = queue.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            match std::thread::Builder::new()
                .name(format!("jitgate-decide-{i}"))
                .spawn(move || work(&rx))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a decision thread"),
            }
        }
        Evaluator {
            tx: (started > 0).then_some(tx),
            queue,
        }
    }

    /// Queue `f`; its result arrives on the returned receiver (which errs if
    /// `f` panicked). Never blocks: a full queue is [`Busy`].
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<T>, Busy> {
        let (done, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        let busy = Busy { queue: self.queue };
        match self.tx.as_ref().map(|tx| tx.try_send(job)) {
            Some(Ok(())) => Ok(rx),
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => Err(busy),
        }
    }
}

/// A decision as a worker hands it back: the request, the result and how
/// long deciding took.
type Decided = (Request, Result<Decision, RequestError>, std::time::Duration);

impl Service {
    /// Queue `req`'s decision on the evaluator; `Busy` if it is full. The
    /// result goes to `send`.
    fn queue_decision(
        &self,
        req: Request,
        send: impl FnOnce(Decided) + Send + 'static,
    ) -> Result<(), ServiceError> {
        let maker = self.decision_maker();
        self.evaluator
            .submit(move || {
                let started = std::time::Instant::now();
                let out = maker.decide(&req);
                send((req, out, started.elapsed()));
            })
            .map(drop)
            .map_err(|b| {
                self.metrics.busy.inc();
                ServiceError::Busy(b.to_string())
            })
    }

    /// A finished decision (`None`: its worker panicked), or `Busy` if the
    /// host could not evaluate it (no instance slot): such a decision says
    /// nothing about the request and must never be stored.
    fn settle_decision(
        &self,
        done: Option<Decided>,
    ) -> Result<(Request, Result<Decision, RequestError>), ServiceError> {
        let (req, out, took) =
            done.ok_or_else(|| ServiceError::Unavailable("a decision worker failed".into()))?;
        if let Ok(d) = &out
            && d.policies
                .iter()
                .any(|p| p.failure.as_ref().is_some_and(|f| f.is_overload()))
        {
            self.metrics.busy.inc();
            return Err(ServiceError::Busy(
                "no policy instance slot is free; retry shortly".into(),
            ));
        }
        self.metrics
            .decision(out.as_ref().ok().map(|d| d.outcome), took);
        Ok((req, out))
    }

    /// Decide on the evaluator and wait, blocking this thread.
    ///
    /// The wait is on a std channel, not tokio's `blocking_recv`, which
    /// panics when called on an async worker ("Cannot block the current
    /// thread from within a runtime"): a sync call is then safe from any
    /// thread. Called on an async worker it still blocks that worker for
    /// the decision's duration (as any sync call does); async callers use
    /// [`Service::decide_async`]. The decision itself stays on the bounded
    /// evaluator rather than the caller's thread, so sync callers (the
    /// HTTP request handler among them) keep the same bound, the same
    /// `Busy` answer and the same instance-slot accounting as async ones.
    pub(super) fn decide(
        &self,
        req: Request,
    ) -> Result<(Request, Result<Decision, RequestError>), ServiceError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.queue_decision(req, move |d| {
            let _ = tx.send(d);
        })?;
        // A panicking job drops `tx`: `recv` errs instead of waiting forever.
        self.settle_decision(rx.recv().ok())
    }

    /// Decide on the evaluator; the wait holds no thread.
    pub(super) async fn decide_async(
        &self,
        req: Request,
    ) -> Result<(Request, Result<Decision, RequestError>), ServiceError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue_decision(req, move |d| {
            let _ = tx.send(d);
        })?;
        self.settle_decision(rx.await.ok())
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, never while running it.
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panicking job drops its result sender: the caller sees an error
        // and this thread lives on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_queue_is_busy_at_once_and_frees_up_after() {
        let ev = Evaluator::start(1, 2);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let mut pending = Vec::new();
        // One running, two waiting: the fourth is refused.
        for _ in 0..3 {
            let hold = hold.clone();
            pending.push(
                ev.submit(move || {
                    let _ = hold.lock().map(|h| h.recv_timeout(Duration::from_secs(10)));
                    7
                })
                .expect("room"),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(ev.submit(|| 0).err(), Some(Busy { queue: 2 }));
        for _ in 0..3 {
            release.send(()).expect("release");
        }
        for p in pending {
            assert_eq!(p.blocking_recv(), Ok(7));
        }
        assert_eq!(ev.submit(|| 8).expect("room").blocking_recv(), Ok(8));
    }

    #[test]
    fn a_panicking_job_errs_and_the_worker_survives() {
        let ev = Evaluator::start(1, 1);
        assert!(
            ev.submit(|| panic!("boom"))
                .expect("room")
                .blocking_recv()
                .is_err()
        );
        assert_eq!(ev.submit(|| 1).expect("room").blocking_recv(), Ok(1));
    }

    #[test]
    fn per_worker_threads_never_outnumber_the_instance_pool() {
        let config = EngineConfig {
            workers: Some(64),
            isolation: Isolation::PerWorker,
            instance_pool: Some(40),
            ..EngineConfig::default()
        };
        assert_eq!(size(&config, 5), (4, 4 * QUEUE_PER_WORKER));
        let fresh = EngineConfig {
            workers: Some(64),
            instance_pool: Some(40),
            queue: Some(3),
            ..EngineConfig::default()
        };
        // A fresh decision holds a slot per policy, at most a store's worth.
        assert_eq!(size(&fresh, 5), (8, 3));
        assert_eq!(size(&fresh, 100), (40 / POLICIES_PER_STORE, 3));
        assert_eq!(size(&fresh, 0), (40, 3));
    }
}
