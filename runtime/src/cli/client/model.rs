//! The API's response bodies, as the client reads them (unknown fields ignored,
//! so a newer server still works).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::{Captured, LogEntry};

/// A stored module.
#[derive(Deserialize)]
pub(crate) struct Module {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) created_at: String,
}

/// Defaults an alias gives its jobs (also the body of `PUT /v1/aliases/{name}`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct AliasConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) priority: Option<u16>,
}

/// An alias.
#[derive(Deserialize)]
pub(crate) struct Alias {
    pub(crate) name: String,
    pub(crate) version: i64,
    pub(crate) module: String,
    #[serde(flatten)]
    pub(crate) config: AliasConfig,
    pub(crate) updated_at: String,
    #[serde(default)]
    pub(crate) history: Option<Vec<AliasVersion>>,
    /// Cursor of the next (older) history page.
    #[serde(default)]
    pub(crate) history_next_cursor: Option<String>,
}

/// One version of an alias.
#[derive(Deserialize)]
pub(crate) struct AliasVersion {
    pub(crate) version: i64,
    pub(crate) module: String,
    #[serde(flatten)]
    pub(crate) config: AliasConfig,
    pub(crate) created_at: String,
}

/// A job and a page of jobs: the server's own view types.
pub(crate) use crate::api::{JobPage, JobView as Job};

/// The answer of `POST /v1/batches`.
#[derive(Deserialize)]
pub(crate) struct BatchCreated {
    pub(crate) id: String,
    pub(crate) total: u64,
}

/// Worker slots of the server.
#[derive(Deserialize)]
pub(crate) struct Workers {
    pub(crate) max: u64,
    pub(crate) busy: u64,
    pub(crate) free: u64,
}

/// `GET /v1/status`.
#[derive(Deserialize)]
pub(crate) struct Status {
    pub(crate) jobs: BTreeMap<String, u64>,
    pub(crate) queues: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) workers: Workers,
}

/// `logs` of a job: what its latest attempt logged through the host and
/// printed on stdout and stderr (each kept up to a limit, truncation marked).
#[derive(Deserialize, Default)]
pub(crate) struct JobLogs {
    #[serde(default)]
    pub(crate) log: Vec<LogEntry>,
    #[serde(default)]
    pub(crate) log_truncated: bool,
    #[serde(default)]
    pub(crate) stdout: Captured,
    #[serde(default)]
    pub(crate) stderr: Captured,
}

impl JobLogs {
    /// The logs of a job as the server shows them (`None`: its latest attempt
    /// logged and printed nothing).
    pub(crate) fn of(job: &Job) -> super::http::Outcome<Option<JobLogs>> {
        job.logs
            .as_ref()
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|e| super::http::Failure::other(format!("unexpected logs from the server ({e})")))
    }
}

/// A batch's callback and its delivery.
#[derive(Deserialize)]
pub(crate) struct CallbackInfo {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) state: Option<String>,
    #[serde(default)]
    pub(crate) attempts: u32,
    #[serde(default)]
    pub(crate) last_error: Option<String>,
}

/// `GET /v1/batches/{id}`.
#[derive(Deserialize)]
pub(crate) struct Batch {
    pub(crate) id: String,
    pub(crate) total: u64,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) done: bool,
    pub(crate) callback: Option<CallbackInfo>,
    pub(crate) created_at: String,
}
