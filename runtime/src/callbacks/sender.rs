//! The delivery loop: picks due callbacks from the store, POSTs them, and
//! records the result. Never blocks a worker: it runs on its own task, and each
//! delivery on a task of its own with a timeout.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use super::signature::{SIGNATURE_HEADER, sign};
use crate::domain::{CallbackState, retry_backoff, time::now_ms};
use crate::store::{CallbackDue, CallbackOwner, CallbackRecord, Store};

/// Delivery policy.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// Attempts before a callback is marked failed.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, with jitter).
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
        }
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
/// completer rings it) or every `poll` for retries and other nodes' work.
pub async fn run(store: Arc<dyn Store>, settings: CallbackSettings, wake: Arc<Notify>, poll: Duration) {
    let client = match reqwest::Client::builder().timeout(settings.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; callbacks are disabled");
            return;
        }
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
    loop {
        let due = match store.callback_due(now_ms(), settings.concurrency as u32).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading due callbacks failed");
                Vec::new()
            }
        };
        let mut handles = Vec::with_capacity(due.len());
        for item in due {
            let permit = limit.clone().acquire_owned().await.expect("semaphore open");
            let (client, store, settings) = (client.clone(), store.clone(), settings.clone());
            handles.push(tokio::spawn(async move {
                deliver(&client, store.as_ref(), &settings, item).await;
                drop(permit);
            }));
        }
        let busy = !handles.is_empty();
        for h in handles {
            let _ = h.await;
        }
        if busy {
            continue; // more may be due
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

async fn deliver(client: &reqwest::Client, store: &dyn Store, settings: &CallbackSettings, due: CallbackDue) {
    let body = serde_json::to_vec(&body(&due)).expect("callback body serializes");
    let mut request = client.post(&due.callback.url).header("content-type", "application/json");
    for (name, value) in &due.callback.headers {
        request = request.header(name, value);
    }
    if let Some(secret) = &due.callback.secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, now_ms() / 1000, &body));
    }
    let error = match request.body(body).send().await {
        Ok(resp) if resp.status().is_success() => None,
        Ok(resp) => Some(format!("receiver answered {}", resp.status())),
        Err(e) => Some(format!("request failed: {e}")),
    };
    let attempts = due.attempts + 1;
    let record = match error {
        None => CallbackRecord {
            owner: due.owner,
            id: due.id.clone(),
            state: CallbackState::Delivered,
            error: None,
            next_at: None,
        },
        Some(error) if attempts >= settings.max_attempts => {
            tracing::warn!(id = %due.id, %error, attempts, "callback failed for good");
            CallbackRecord {
                owner: due.owner,
                id: due.id.clone(),
                state: CallbackState::Failed,
                error: Some(error),
                next_at: None,
            }
        }
        Some(error) => {
            let delay = retry_backoff(attempts, settings.retry_base, settings.retry_max, fastrand::f64());
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
    if let Err(e) = store.callback_record(record).await {
        tracing::error!(id = %due.id, owner = ?matches!(due.owner, CallbackOwner::Batch), error = %e, "could not record callback delivery");
    }
}
