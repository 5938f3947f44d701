//! Response bodies: the API's view of stored records. They are also what the
//! CLI client deserializes (`cli::client::model`): one type per wire message,
//! unknown fields ignored (no `deny_unknown_fields` here) so a newer server
//! still works.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::domain::{CallbackState, JobStatus, PluginKind, time::rfc3339};
use crate::store::{
    AliasConfig, AliasRecord, AliasVersion, BatchRecord, BatchSummary, JobRecord, ModuleRecord,
};

/// A stored module.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModuleView {
    /// `blake3:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// `job` or `command`.
    #[schema(value_type = String, example = "job")]
    pub kind: PluginKind,
    /// RFC 3339.
    pub created_at: String,
}

impl From<ModuleRecord> for ModuleView {
    fn from(m: ModuleRecord) -> Self {
        Self { digest: m.digest.to_string(), size: m.size, kind: m.kind, created_at: rfc3339(m.created_at) }
    }
}

/// An alias.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AliasView {
    /// Name.
    pub name: String,
    /// Counts up with every change.
    pub version: i64,
    /// `blake3:<hex>` of the module it points to.
    pub module: String,
    /// Defaults for its jobs.
    #[serde(flatten)]
    pub config: AliasConfig,
    /// RFC 3339 of the last change.
    pub updated_at: String,
    /// A page of the kept versions, newest first (on `GET /v1/aliases/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<AliasVersionView>>,
    /// Pass as `cursor` for the next (older) page of `history`; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_next_cursor: Option<String>,
    /// Its jobs' limits across the cluster (on `GET /v1/aliases/{name}`;
    /// absent: none), set with `PUT /v1/aliases/{name}/limits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::domain::QueueLimits>,
}

/// One version of an alias.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AliasVersionView {
    /// Version.
    pub version: i64,
    /// Module of that version.
    pub module: String,
    /// Config of that version.
    #[serde(flatten)]
    pub config: AliasConfig,
    /// RFC 3339.
    pub created_at: String,
}

impl AliasView {
    pub(crate) fn new(a: AliasRecord, history: Option<Vec<AliasVersion>>) -> Self {
        Self {
            name: a.name.to_string(),
            version: a.version,
            module: a.module.to_string(),
            config: a.config,
            updated_at: rfc3339(a.updated_at),
            history: history.map(|h| {
                h.into_iter()
                    .map(|v| AliasVersionView {
                        version: v.version,
                        module: v.module.to_string(),
                        config: v.config,
                        created_at: rfc3339(v.created_at),
                    })
                    .collect()
            }),
            history_next_cursor: None,
            limits: None,
        }
    }

    /// The same view with its limits (`None`: none set).
    pub(crate) fn with_limits(mut self, limits: Option<crate::domain::QueueLimits>) -> Self {
        self.limits = limits.filter(|l| l.any());
        self
    }

    /// The same view with the cursor of the history's next page.
    pub(crate) fn with_history_cursor(mut self, cursor: Option<String>) -> Self {
        self.history_next_cursor = cursor;
        self
    }
}

/// Error of a job's latest failure.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobErrorView {
    /// `plugin_error`, `trap`, `fuel_exhausted`, `timeout`, `memory_limit`,
    /// `output_too_large`, `cancelled`, `invalid_payload`, `invalid_module`.
    pub kind: String,
    /// Human-readable reason.
    pub message: String,
}

/// Latest progress of a job.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    /// 0..=100.
    pub percent: u8,
    /// The plugin's message.
    pub message: String,
}

/// Delivery state of a callback.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CallbackView {
    /// Target URL.
    pub url: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub state: Option<CallbackState>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
}

/// The limits of a job's attempts.
#[derive(Serialize, Deserialize, ToSchema, Default, Debug, Clone, PartialEq, Eq)]
pub struct JobLimitsView {
    /// Fuel per attempt (absent: unmetered, only the timeout bounds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock limit per attempt, in ms.
    pub timeout_ms: u64,
    /// Linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest result, in bytes.
    pub max_result_bytes: u64,
}

impl From<&crate::domain::Limits> for JobLimitsView {
    fn from(l: &crate::domain::Limits) -> Self {
        Self {
            fuel: l.fuel,
            timeout_ms: l.timeout.as_millis() as u64,
            memory_bytes: l.memory_bytes,
            max_result_bytes: l.max_result_bytes,
        }
    }
}

/// A job.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// UUIDv7.
    pub id: String,
    /// Alias it was dispatched to.
    pub alias: String,
    /// Module digest pinned at dispatch.
    pub module: String,
    /// Status.
    pub status: JobStatus,
    /// 0..=1000, higher first.
    pub priority: i32,
    /// Queue.
    pub queue: String,
    /// Free tag.
    pub context: Option<String>,
    /// Attempts started.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The limits of each attempt, as pinned at dispatch.
    #[serde(default)]
    pub limits: JobLimitsView,
    /// The JSON payload: any JSON value.
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    /// The JSON result (on success): any JSON value.
    #[schema(value_type = Option<Value>)]
    pub result: Option<Box<RawValue>>,
    /// Latest error.
    pub error: Option<JobErrorView>,
    /// Latest progress.
    pub progress: Option<ProgressView>,
    /// Logs of the latest attempt: `{log, log_truncated, stdout, stderr}`,
    /// and when the plugin sent HTTP requests, `http` (each request's
    /// `method`, `origin`, `status` or `error`, `sent_bytes`,
    /// `received_bytes`, `duration_ms`; the first 100) and `http_truncated`.
    #[schema(value_type = Option<Object>)]
    pub logs: Option<Box<RawValue>>,
    /// Fuel of the latest attempt.
    pub fuel_used: Option<u64>,
    /// Duration of the latest attempt.
    pub duration_ms: Option<u64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Batch.
    pub batch_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// When it is (or was) due.
    pub run_at: String,
    /// Start of the latest attempt.
    pub started_at: Option<String>,
    /// End.
    pub finished_at: Option<String>,
    /// Callback and its delivery.
    pub callback: Option<CallbackView>,
}

fn raw(s: String) -> Box<RawValue> {
    RawValue::from_string(s).unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

fn callback_view(
    callback: Option<crate::domain::Callback>,
    state: Option<CallbackState>,
    attempts: u32,
    last_error: Option<String>,
) -> Option<CallbackView> {
    callback.map(|c| CallbackView { url: c.url, state, attempts, last_error })
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            callback: callback_view(j.callback, j.callback_state, j.callback_attempts, j.callback_last_error),
            limits: (&j.limits).into(),
            module: j.module.to_string(),
            payload: raw(j.payload),
            result: j.result.map(raw),
            error: j.error.map(|(kind, message)| JobErrorView { kind, message }),
            progress: j.progress.map(|(percent, message)| ProgressView { percent, message }),
            logs: j.logs.map(raw),
            created_at: rfc3339(j.created_at),
            run_at: rfc3339(j.run_at),
            started_at: j.started_at.map(rfc3339),
            finished_at: j.finished_at.map(rfc3339),
            id: j.id,
            alias: j.alias,
            status: j.status,
            priority: j.priority,
            queue: j.queue,
            context: j.context,
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            fuel_used: j.fuel_used,
            duration_ms: j.duration_ms,
            idempotency_key: j.idempotency_key,
            batch_id: j.batch_id,
        }
    }
}

impl JobView {
    /// The job as one line of JSON. Raw line breaks can only be whitespace in
    /// JSON (inside strings they are escaped), e.g. in a client's pretty-printed
    /// payload; they become spaces, so the text is also one SSE `data:` line.
    pub(crate) fn one_line_json(&self) -> Result<bytes::Bytes, serde_json::Error> {
        let mut json = serde_json::to_vec(self)?;
        for b in json.iter_mut().filter(|b| **b == b'\n' || **b == b'\r') {
            *b = b' ';
        }
        Ok(json.into())
    }
}

/// A page of jobs.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A batch.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchView {
    /// UUIDv7.
    pub id: String,
    /// Jobs in it.
    pub total: u64,
    /// Jobs per status.
    pub counts: BTreeMap<String, u64>,
    /// Every job is terminal.
    pub done: bool,
    /// Callback and its delivery.
    pub callback: Option<CallbackView>,
    /// RFC 3339.
    pub created_at: String,
}

/// A batch as listed: its row, without counting its jobs (`GET
/// /v1/batches/{id}` counts them).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchSummaryView {
    /// UUIDv7.
    pub id: String,
    /// Jobs in it.
    pub total: u64,
    /// Every job has ended.
    pub done: bool,
    /// RFC 3339: when its last job ended (absent until then).
    pub done_at: Option<String>,
    /// Callback and its delivery.
    pub callback: Option<CallbackView>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<BatchSummary> for BatchSummaryView {
    fn from(b: BatchSummary) -> Self {
        Self {
            callback: callback_view(b.callback, b.callback_state, b.callback_attempts, b.callback_last_error),
            id: b.id,
            total: b.total,
            done: b.done_at.is_some(),
            done_at: b.done_at.map(rfc3339),
            created_at: rfc3339(b.created_at),
        }
    }
}

/// A page of batches, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchPage {
    /// The batches.
    pub batches: Vec<BatchSummaryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<BatchRecord> for BatchView {
    fn from(b: BatchRecord) -> Self {
        Self {
            callback: callback_view(b.callback, b.callback_state, b.callback_attempts, b.callback_last_error),
            id: b.id,
            total: b.total,
            counts: b.counts,
            done: b.done,
            created_at: rfc3339(b.created_at),
        }
    }
}
