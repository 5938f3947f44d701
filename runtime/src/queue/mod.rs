//! Orchestration: turns stored jobs into sandbox runs and their outcomes back
//! into stored results.
//!
//! - `producer`: claims runnable jobs in batches (at most `workers + prefetch`
//!   held), woken in-process by dispatches and completions instead of polling;
//!   sleeps until the next delayed job is due.
//! - `buffer`: the node-local priority buffer of claimed jobs and the `workers`
//!   runner tasks that drain it (a queue's concurrency limit holds there too).
//! - `executor`: runs one claimed job in the engine and decides what its outcome
//!   means (succeeded, failed and retried with backoff, dead).
//! - `progress`: a running job's progress, written delayed and throttled (a short
//!   job's last progress travels with its outcome instead).
//! - `completer`: writes outcomes in batches (one transaction for many jobs).
//! - `maintenance`: renews the leases of running jobs (stopping the runs whose
//!   claim this node lost) and rescues jobs whose lease expired (their worker
//!   died or stalled): requeued, or `dead` on their last attempt.
//! - `inserter`: group commit for dispatches.
//! - `registry`: this node's row in the node registry, renewed every beat.
//! - `controls`: the queues' controls (pause, cluster-wide concurrency and
//!   rate) as this node last read them, which route its claims.
//! - `direct`: claim in the insert: a dispatch this node has room for is
//!   inserted leased to it and buffered at once, without a claim write.
//! - `events`: publishes claims, progress, completions and cancels in-process
//!   to the requests watching a job (`wait`, event streams); `follow` is one
//!   request's view of a job, pushed by `events`, polled narrowly as a fallback.
//!
//! Every claim carries a fencing token (`store::Lease`): the node's bookkeeping
//! is keyed by it, and everything a run writes presents it, so a run that lost
//! its claim (even to a new claim of the same job on this node) is stopped and
//! its outcome never lands.

mod announce;
mod buffer;
mod completer;
mod controls;
mod direct;
mod events;
mod executor;
mod follow;
mod inserter;
mod maintenance;
mod producer;
mod progress;
mod registry;

pub use controls::{CONTROLS_TTL, Known, QueueControls};
pub use direct::Reservation;
pub use events::{JobEvents, WatchCounts};
pub use follow::Follow;
pub use inserter::Inserter;
pub use registry::{NODE_BEAT, NODE_LOST, NodeInfo};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::domain::TenantId;
use crate::sandbox::{CancelToken, Engine};
use crate::store::{JobCompletion, Lease, Store, StoreResult};

/// How the worker pool behaves.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Jobs run at once on this node.
    pub workers: usize,
    /// Most jobs claimed ahead of free workers (held under lease, run as soon as
    /// a worker frees up): one claim transaction then serves many short jobs.
    /// The node adapts below this: it holds about `HELD_WORK` of work per
    /// worker, judged by recent run times, so long jobs are not hoarded.
    pub prefetch: usize,
    /// The queues this node runs jobs of (`None`: every queue).
    pub queues: Option<Vec<String>>,
    /// Most jobs of one tenant running at once across the server, for tenants
    /// whose quota sets no `max_running` (`None`: unbounded).
    pub tenant_max_running: Option<u64>,
    /// How long a claim holds a job without renewal before it is rescued.
    pub lease: Duration,
    /// First retry delay; doubles per attempt, with jitter.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long running jobs may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Fallback poll for other nodes' work and changes (in-process dispatches
    /// wake the producer at once, and this node's job changes are pushed to
    /// waits and event streams; they poll the store this often only for
    /// changes made elsewhere).
    pub poll_interval: Duration,
    /// Finished jobs are deleted this long after they ended (`None`: kept forever).
    pub retention: Option<Duration>,
}

impl QueueSettings {
    /// Whether this node runs jobs of `queue`.
    pub fn consumes(&self, queue: &str) -> bool {
        self.queues.as_ref().is_none_or(|only| only.iter().any(|q| q == queue))
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            prefetch: 256,
            queues: None,
            tenant_max_running: None,
            lease: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Engine,
    /// This node's metrics (finished attempts, compiles).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) settings: QueueSettings,
    /// Lease owner name of this node.
    pub(crate) node: String,
    /// Wakes the producer: a job was dispatched, a slot freed, or shutdown began.
    pub(crate) wake: Notify,
    /// Runs this node holds a claim for: running, or claimed and waiting for a
    /// worker. Keyed by claim (job id and fencing token), not by job id: after
    /// a stall the same node may hold a stale run and the job's new claim at
    /// once, and neither's exit may drop the other's entry.
    pub(crate) running: Mutex<HashMap<Lease, RunHandle>>,
    /// Claimed jobs waiting for a worker.
    pub(crate) buffer: Mutex<buffer::Buffer>,
    /// Wakes runners: jobs were added to the buffer or a queue slot freed.
    pub(crate) ready: Notify,
    /// Jobs running in a sandbox now.
    pub(crate) busy: std::sync::atomic::AtomicUsize,
    /// Moving average of recent run times, in microseconds (sizes the prefetch).
    pub(crate) avg_run_us: std::sync::atomic::AtomicU64,
    /// The store holds no job this node would claim now, as far as it knows:
    /// set by a claim that came back short while one tenant had work, cleared
    /// by a full claim and by every dispatch it did not take in its insert.
    /// While set, a dispatch may fill the whole prefetch window in its insert
    /// (see `direct`): the claim would have taken exactly those jobs next.
    pub(crate) backlog_clear: std::sync::atomic::AtomicBool,
    /// Progress writes scheduled for running jobs (see `progress`).
    pub(crate) progress: progress::Board,
    pub(crate) events: JobEvents,
    /// The node's event stream (`GET /v1/events`).
    pub(crate) bus: crate::bus::Bus,
    /// The node's OpenTelemetry tracer (spans of claims, runs, completions).
    pub(crate) traces: crate::traces::Traces,
    /// This node's id, shared by the events that name it.
    pub(crate) node_name: Arc<str>,
    /// Set when shutdown starts: claim nothing more.
    pub(crate) stopping: CancelToken,
    /// Set when the grace period is over: interrupted jobs are released, not failed.
    pub(crate) abandoning: CancelToken,
    pub(crate) completions: mpsc::UnboundedSender<CompleterMsg>,
    /// Wakes the callback sender after completions.
    pub(crate) callbacks_wake: Arc<Notify>,
    /// What a job's alias grants its run (`None`: nothing, as in unit tests).
    pub(crate) grants: Option<Arc<crate::capabilities::Grants>>,
    /// What this node says of itself in the node registry.
    pub(crate) info: NodeInfo,
    /// The queues' controls as this node last read them.
    pub(crate) controls: QueueControls,
}

impl Shared {
    /// Stops this node's runs of job `id` (see `Queue::cancel_running`).
    pub(crate) fn cancel_running(&self, id: &str) -> bool {
        let running = self.running.lock().expect("running lock");
        let mut found = false;
        for run in running.iter().filter(|(lease, _)| lease.id == id).map(|(_, run)| run) {
            run.stop();
            found = true;
        }
        found
    }
}

/// How this node stops one run.
#[derive(Clone)]
pub(crate) struct RunHandle {
    /// Watched by the sandbox.
    cancel: CancelToken,
    /// A one-way flag shared by the clones: set when the claim was lost.
    lost: CancelToken,
}

impl RunHandle {
    pub(crate) fn new() -> Self {
        Self { cancel: CancelToken::new(), lost: CancelToken::new() }
    }

    /// What the sandbox watches.
    pub(crate) fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Stops the run (cancelled by request, shutdown); its outcome is still
    /// reported (the store decides whether it applies).
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }

    /// The store says this claim is no longer the job's: stop the run and
    /// never report its outcome.
    pub(crate) fn lose(&self) {
        self.lost.cancel();
        self.cancel.cancel();
    }

    /// Whether `lose` was called.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }
}

/// What the completer receives.
pub(crate) enum CompleterMsg {
    /// An attempt ended.
    Complete {
        /// The outcome to store.
        completion: Box<JobCompletion>,
        /// The attempt it ends (what watchers are told ended).
        attempt: u32,
        /// Whether a callback may now be due.
        callback: bool,
        /// The job (for the event stream).
        job: Arc<crate::bus::JobRef>,
        /// The parent of its `wasmq.complete` span and the run's end, when traced.
        trace: Option<(crate::traces::Parent, std::time::SystemTime)>,
    },
    /// Answer once everything sent before is committed.
    Flush(oneshot::Sender<()>),
}

/// Where a node's queue reports what it does.
pub struct Observers {
    /// Counters and histograms (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The event stream (`/v1/events`).
    pub bus: crate::bus::Bus,
    /// OpenTelemetry traces (off unless an endpoint is set).
    pub traces: crate::traces::Traces,
}

/// The worker pool of one node. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
    /// The background tasks, by name; one that finished before shutdown died.
    tasks: Arc<[(&'static str, tokio::task::AbortHandle)]>,
}

/// Background tasks of a started queue; `stop` shuts them down gracefully.
pub struct QueueTasks {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    completer: tokio::task::JoinHandle<()>,
}

impl Queue {
    /// Starts the producer, completer and maintenance tasks.
    pub fn start(
        store: Arc<dyn Store>,
        engine: Engine,
        settings: QueueSettings,
        callbacks_wake: Arc<Notify>,
        grants: Option<Arc<crate::capabilities::Grants>>,
        node: NodeInfo,
        observed: Observers,
    ) -> (Queue, QueueTasks) {
        let Observers { metrics, bus, traces } = observed;
        let (tx, rx) = mpsc::unbounded_channel();
        let node_id = node.id.clone();
        let shared = Arc::new(Shared {
            store,
            engine,
            metrics,
            buffer: Mutex::new(buffer::Buffer::default()),
            ready: Notify::new(),
            busy: std::sync::atomic::AtomicUsize::new(0),
            // Until jobs have been measured, assume they are long: no hoarding.
            avg_run_us: std::sync::atomic::AtomicU64::new(u64::MAX / 2),
            backlog_clear: std::sync::atomic::AtomicBool::new(false),
            progress: progress::Board::default(),
            settings,
            node_name: Arc::from(node_id.as_str()),
            node: node_id,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            events: JobEvents::default(),
            bus,
            traces,
            stopping: CancelToken::new(),
            abandoning: CancelToken::new(),
            completions: tx,
            callbacks_wake,
            grants,
            info: node,
            controls: QueueControls::default(),
        });
        let completer = tokio::spawn(completer::run(
            shared.store.clone(),
            shared.events.clone(),
            shared.bus.clone(),
            shared.traces.clone(),
            shared.callbacks_wake.clone(),
            {
                let shared = Arc::downgrade(&shared);
                move || {
                    if let Some(shared) = shared.upgrade() {
                        shared.wake.notify_one();
                    }
                }
            },
            rx,
        ));
        let mut tasks = JoinSet::new();
        let mut alive = vec![("completer", completer.abort_handle())];
        alive.push(("producer", tasks.spawn(producer::run(shared.clone()))));
        for _ in 0..shared.settings.workers {
            alive.push(("runner", tasks.spawn(buffer::runner(shared.clone()))));
        }
        alive.push(("heartbeat", tasks.spawn(maintenance::heartbeat(shared.clone()))));
        alive.push(("notices", tasks.spawn(maintenance::notices(shared.clone()))));
        alive.push(("rescuer", tasks.spawn(maintenance::rescuer(shared.clone()))));
        alive.push(("pruner", tasks.spawn(maintenance::pruner(shared.clone()))));
        // Not among the tasks that must stay alive: it ends when shutdown begins.
        tasks.spawn(registry::run(shared.clone()));
        let queue = Queue { shared: shared.clone(), tasks: alive.into() };
        (queue, QueueTasks { shared, tasks, completer })
    }

    /// Tells the producer that new work may be runnable.
    pub fn notify_dispatch(&self) {
        self.shared.wake.notify_one();
    }

    /// Interrupts every run of a job on this node (after the store marked it
    /// cancelled): a stale run not yet stopped as well as the current one.
    pub fn cancel_running(&self, id: &str) -> bool {
        self.shared.cancel_running(id)
    }

    /// A queue's controls changed (through this node): read them again now
    /// (before this node's next dispatch may start a job in its insert), and
    /// claim (a resumed queue's jobs may start).
    pub async fn queues_changed(&self) {
        self.shared.controls.invalidate();
        self.shared.controls.fresh(&*self.shared.store).await;
        self.shared.wake.notify_one();
    }

    /// Jobs running in a sandbox on this node now.
    pub fn busy(&self) -> usize {
        self.shared.busy.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes this node's row in the node registry (at start, before the
    /// node serves; its beats renew it from then on).
    pub async fn register(&self) -> StoreResult<()> {
        registry::register(&self.shared).await
    }

    /// This node's id: its row in the node registry and the lease owner of
    /// the jobs it claims.
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// This node's tracer.
    pub fn traces(&self) -> &crate::traces::Traces {
        &self.shared.traces
    }

    /// Worker slots of this node.
    pub fn workers(&self) -> usize {
        self.shared.settings.workers
    }

    /// The in-process publication of job changes.
    pub fn events(&self) -> &JobEvents {
        &self.shared.events
    }

    /// The node's event stream.
    pub fn bus(&self) -> &crate::bus::Bus {
        &self.shared.bus
    }

    /// Follows one job for a request (`NotFound` if it does not exist): pushed
    /// by this node, polled every `poll_interval` for other nodes' changes.
    pub async fn follow(&self, tenant: &TenantId, id: &str) -> StoreResult<Follow> {
        let (store, poll) = (self.shared.store.clone(), self.shared.settings.poll_interval);
        Follow::start(&self.shared.events, store, tenant, id, poll).await
    }

    /// The name of a background task that has ended (they only end at
    /// shutdown, or by a panic), if any: such a node cannot do its work.
    pub fn stopped_task(&self) -> Option<&'static str> {
        self.tasks.iter().find(|(_, task)| task.is_finished()).map(|(name, _)| *name)
    }
}

impl QueueTasks {
    /// Graceful shutdown: stop claiming, let running jobs finish within the grace
    /// period, then interrupt the rest and return them to the queue.
    pub async fn stop(mut self) {
        let shared = self.shared.clone();
        shared.stopping.cancel();
        shared.wake.notify_waiters();
        // Held jobs that never started go back to the queue (`job_release`).
        // Claims and direct inserts finishing from now on see `stopping`
        // under this lock and push nothing.
        let held = shared.buffer.lock().expect("buffer lock").drain_leases();
        {
            let mut running = shared.running.lock().expect("running lock");
            for lease in held {
                running.remove(&lease);
            }
        }
        let deadline = tokio::time::Instant::now() + shared.settings.shutdown_grace;
        while !shared.running.lock().expect("running lock").is_empty() {
            if tokio::time::Instant::now() >= deadline {
                shared.abandoning.cancel();
                for run in shared.running.lock().expect("running lock").values() {
                    run.stop();
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while !shared.running.lock().expect("running lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        // Commit the completions of finished jobs, then hand back what is left.
        let (flushed, done) = oneshot::channel();
        if shared.completions.send(CompleterMsg::Flush(flushed)).is_ok() {
            let _ = done.await;
        }
        self.completer.abort();
        match shared.store.job_release(&shared.node).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "released interrupted jobs to the queue"),
            Err(e) => {
                tracing::error!(error = %e, "could not release interrupted jobs; their leases will expire")
            }
        }
        registry::stopped(&shared).await;
    }
}
