//! The delivery loop: claims due callbacks from the store, POSTs them, and
//! records the result. Never blocks a worker: it runs on its own task, and each
//! delivery on a task of its own with a timeout.
//!
//! Deliveries run in a bounded pool that is refilled as soon as any delivery
//! ends, so a receiver that takes the whole timeout holds one slot, not the
//! others' turn; at most `per_host` deliveries go to one receiver (scheme,
//! host and port) at once, so one slow receiver cannot take every slot either:
//! while it is full, the store skips its callbacks and hands out others, and
//! the few claimed in the same round as the one that filled it wait in memory
//! for its next free place.

use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::client::{self, Failure};
use super::secrets::SecretBox;
use super::signature::{SIGNATURE_HEADER, sign};
use super::target;
use super::tenant_policy::TenantClients;
use crate::domain::{CallbackState, NetPolicy, RetryPolicy, time::now_ms};
use crate::store::{CallbackClaim, CallbackDue, CallbackOwner, CallbackRecord, Store};

/// Delivery policy.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// Attempts before a callback is marked failed.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, with jitter).
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Per-request timeout (connect, send, and the receiver's answer).
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight to one host (`host:port`) at once.
    pub per_host: usize,
    /// Which addresses callbacks may reach.
    pub policy: NetPolicy,
    /// The key that seals callback secrets at rest; `None`: beside the
    /// SQLite database (`<database>.callback-key`), or in memory only for an
    /// in-memory database.
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            per_host: 4,
            policy: NetPolicy::default(),
            key_file: None,
        }
    }
}

impl CallbackSettings {
    /// How long a claimed callback stays invisible to other senders: time to
    /// wait (parked) for its receiver to have room, the delivery's timeout,
    /// and time to record it. A sender that dies mid-way leaves it due again
    /// after this.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

/// The JSON body of a job or batch callback.
pub(crate) fn body(due: &CallbackDue) -> serde_json::Value {
    match (&due.job, &due.batch) {
        (Some(job), _) => {
            let result: Option<serde_json::Value> =
                job.result.as_deref().and_then(|r| serde_json::from_str(r).ok());
            json!({
                "job_id": job.id,
                "alias": job.alias,
                "status": job.status.as_str(),
                "result": result,
                "error": job.error.as_ref().map(|(kind, message)| json!({"kind": kind, "message": message})),
                "fuel_used": job.fuel_used,
                "duration_ms": job.duration_ms,
                "attempt": job.attempt,
                "batch_id": job.batch_id,
                "context": job.context,
            })
        }
        (None, Some(batch)) => json!({
            "batch_id": batch.id,
            "status": "done",
            "total": batch.total,
            "counts": batch.counts,
        }),
        (None, None) => json!({}),
    }
}

/// Runs until the process stops: delivers due callbacks, woken by `wake` (the
/// completer rings it), by a delivery ending (a free slot), or every `poll`
/// for retries and other nodes' work.
pub async fn run(
    store: Arc<dyn Store>,
    settings: CallbackSettings,
    secrets: SecretBox,
    wake: Arc<Notify>,
    poll: Duration,
    metrics: Arc<crate::metrics::Metrics>,
    traces: crate::traces::Traces,
) {
    let http = match client::build(&settings, &settings.policy) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; callbacks are disabled");
            return;
        }
    };
    let clients = TenantClients::new(settings.clone(), http);
    let shared = Arc::new(Deliverer { store, settings, secrets, clients, metrics, traces });
    let mut pool = Pool::new(shared.clone());
    loop {
        pool.unpark();
        let free = pool.concurrency - pool.running.len();
        // Whether more may be due right now than this round took.
        let mut more = false;
        if free > 0 {
            let lease_until = now_ms() + shared.settings.lease().as_millis() as i64;
            let claim = CallbackClaim {
                now: now_ms(),
                limit: free as u32,
                lease_until,
                skip_url_prefixes: pool.full_receivers(),
            };
            match shared.store.callback_due(claim).await {
                Ok(due) => {
                    more = due.len() == free;
                    for item in due {
                        pool.take(item, lease_until);
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading due callbacks failed"),
            }
        }
        let room = pool.running.len() < pool.concurrency;
        if more && room {
            continue; // some went to full receivers: look further (the store now skips those)
        }
        tokio::select! {
            Some(done) = pool.running.join_next_with_id(), if !pool.running.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "a callback delivery task failed");
                        e.id()
                    }
                };
                pool.finished(id);
            }
            () = wake.notified(), if room => {}
            () = tokio::time::sleep(poll), if room => {}
        }
    }
}

/// The deliveries in flight, per receiver, and the claimed ones waiting for
/// their receiver to have room.
struct Pool {
    shared: Arc<Deliverer>,
    concurrency: usize,
    per_host: usize,
    running: JoinSet<()>,
    /// The receiver of each running delivery.
    host_of: HashMap<tokio::task::Id, String>,
    /// Running deliveries per receiver.
    hosts: HashMap<String, usize>,
    /// Claimed (until the `i64`) for a receiver that was full. At most
    /// `concurrency` per receiver: a full receiver is skipped by the next claims.
    parked: VecDeque<(CallbackDue, String, i64)>,
}

impl Pool {
    fn new(shared: Arc<Deliverer>) -> Self {
        Self {
            concurrency: shared.settings.concurrency.max(1),
            per_host: shared.settings.per_host.max(1),
            shared,
            running: JoinSet::new(),
            host_of: HashMap::new(),
            hosts: HashMap::new(),
            parked: VecDeque::new(),
        }
    }

    fn has_room(&self, host: &str) -> bool {
        self.hosts.get(host).copied().unwrap_or(0) < self.per_host
    }

    /// Receivers with `per_host` deliveries in flight.
    fn full_receivers(&self) -> Vec<String> {
        self.hosts.iter().filter(|(_, n)| **n >= self.per_host).map(|(h, _)| h.clone()).collect()
    }

    /// A claimed callback: delivered now if its receiver has room, else parked.
    fn take(&mut self, item: CallbackDue, lease_until: i64) {
        let host = host_key(&item);
        if self.has_room(&host) && self.running.len() < self.concurrency {
            self.start(item, host);
        } else {
            self.parked.push_back((item, host, lease_until));
        }
    }

    fn start(&mut self, item: CallbackDue, host: String) {
        *self.hosts.entry(host.clone()).or_default() += 1;
        let shared = self.shared.clone();
        let task = self.running.spawn(async move { shared.deliver(item).await });
        self.host_of.insert(task.id(), host);
    }

    /// Starts parked deliveries whose receiver has room now. One whose claim
    /// would lapse before a full delivery could end is let go instead: another
    /// sender may claim it then, and must not find it mid-delivery here.
    fn unpark(&mut self) {
        let deadline = now_ms() + self.shared.settings.timeout.as_millis() as i64;
        let mut waiting = VecDeque::with_capacity(self.parked.len());
        while let Some((item, host, lease_until)) = self.parked.pop_front() {
            if lease_until < deadline {
                tracing::debug!(id = %item.id, "callback claim lapses while its receiver is full; released");
            } else if self.has_room(&host) && self.running.len() < self.concurrency {
                self.start(item, host);
            } else {
                waiting.push_back((item, host, lease_until));
            }
        }
        self.parked = waiting;
    }

    fn finished(&mut self, id: tokio::task::Id) {
        let host = self.host_of.remove(&id).unwrap_or_default();
        if let Some(n) = self.hosts.get_mut(&host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.hosts.remove(&host);
            }
        }
    }
}

/// The receiver a callback goes to, as the prefix of its (normalized, see
/// `api::submit::stored_callback`) URL: `http://host:port/`. What the per-host
/// cap counts, and what the store skips while that receiver is full.
fn host_key(due: &CallbackDue) -> String {
    match reqwest::Url::parse(&due.callback.url) {
        Ok(url) => format!("{}/", url.origin().ascii_serialization()),
        Err(_) => String::new(),
    }
}

struct Deliverer {
    store: Arc<dyn Store>,
    settings: CallbackSettings,
    secrets: SecretBox,
    /// The server's client, and tenants' with their own callback ranges.
    clients: TenantClients,
    /// Deliveries by outcome.
    metrics: Arc<crate::metrics::Metrics>,
    /// A span per delivery of a traced job; its `traceparent` on the request.
    traces: crate::traces::Traces,
}

impl Deliverer {
    async fn deliver(&self, due: CallbackDue) {
        let outcome = self.attempt(&due).await;
        let attempts = due.attempts + 1;
        self.metrics.callback(match &outcome {
            Ok(()) => "delivered",
            Err(f) if !f.retryable() || attempts >= self.settings.max_attempts => "failed",
            Err(_) => "retry",
        });
        let record = match outcome {
            Ok(()) => CallbackRecord {
                owner: due.owner,
                id: due.id.clone(),
                state: CallbackState::Delivered,
                error: None,
                next_at: None,
            },
            Err(failure) if !failure.retryable() || attempts >= self.settings.max_attempts => {
                let error = failure.to_string();
                tracing::warn!(id = %due.id, %error, attempts, "callback failed for good");
                CallbackRecord {
                    owner: due.owner,
                    id: due.id.clone(),
                    state: CallbackState::Failed,
                    error: Some(error),
                    next_at: None,
                }
            }
            Err(failure) => {
                let error = failure.to_string();
                let delay = RetryPolicy::doubling(self.settings.retry_base, self.settings.retry_max)
                    .delay(attempts, fastrand::f64());
                tracing::debug!(id = %due.id, %error, attempts, ?delay, "callback will be retried");
                CallbackRecord {
                    owner: due.owner,
                    id: due.id.clone(),
                    state: CallbackState::Sending,
                    error: Some(error),
                    next_at: Some(now_ms() + delay.as_millis() as i64),
                }
            }
        };
        if let Err(e) = self.store.callback_record(record).await {
            tracing::error!(id = %due.id, batch = matches!(due.owner, CallbackOwner::Batch), error = %e, "could not record callback delivery");
        }
    }

    /// One POST. The target is checked again here: the policy may have
    /// changed since dispatch, and an address-literal host never reaches the
    /// resolver (which checks every resolved address).
    async fn attempt(&self, due: &CallbackDue) -> Result<(), Failure> {
        // Header values are sealed at rest (as the secret): opened here, then
        // checked as they were at dispatch.
        let mut callback = due.callback.clone();
        for value in callback.headers.values_mut() {
            *value = self.secrets.open(value, &due.id).map_err(|_| Failure::Secret)?;
        }
        // The tenant's policy: the server's, widened by its `callback_allow`.
        let (policy, http) = self.clients.for_tenant(self.store.as_ref(), &due.tenant).await;
        let url = target::check_stored(&callback, &policy)
            .map_err(|e| if e.refused_by_policy { Failure::Refused } else { Failure::Invalid(e.message) })?;
        let body = serde_json::to_vec(&body(due)).expect("callback body serializes");
        let (trace, of) = match (&due.job, &due.batch) {
            (Some(job), _) => (job.trace.as_deref(), ("wasmq.job.id", due.id.as_str())),
            (None, batch) => {
                (batch.as_ref().and_then(|b| b.trace.as_deref()), ("wasmq.batch.id", due.id.as_str()))
            }
        };
        let delivery = self.traces.callback(trace, of, &url, due.attempts + 1);
        let mut request = http.post(url).header("content-type", "application/json");
        let traced = delivery.traceparent().is_some();
        for (name, value) in &callback.headers {
            // The job's trace, not one a client fixed at dispatch.
            let trace_header = name.eq_ignore_ascii_case(crate::traces::TRACEPARENT)
                || name.eq_ignore_ascii_case(crate::traces::TRACESTATE);
            if !(traced && trace_header) {
                request = request.header(name, value);
            }
        }
        if let Some(traceparent) = delivery.traceparent() {
            request = request.header(crate::traces::TRACEPARENT, traceparent);
        }
        if let Some(tracestate) = delivery.tracestate() {
            request = request.header(crate::traces::TRACESTATE, tracestate);
        }
        if let Some(sealed) = &due.callback.secret {
            let secret = self.secrets.open(sealed, &due.id).map_err(|_| Failure::Secret)?;
            request = request.header(SIGNATURE_HEADER, sign(&secret, now_ms() / 1000, &body));
        }
        let sent = client::send(request.body(body)).await;
        delivery.end(sent.as_ref().err().map(|f| f.to_string()).as_deref());
        sent
    }
}
