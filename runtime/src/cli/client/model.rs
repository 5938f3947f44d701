//! The API's response bodies, as the client reads them (unknown fields ignored,
//! so a newer server still works).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stored module.
#[derive(Deserialize)]
pub(crate) struct Module {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) kind: String,
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

impl AliasConfig {
    /// `fuel=… timeout_ms=…`, or `-` when nothing is set.
    pub(crate) fn summary(&self) -> String {
        let parts: Vec<String> = [
            self.fuel.map(|v| format!("fuel={v}")),
            self.timeout_ms.map(|v| format!("timeout_ms={v}")),
            self.memory_mb.map(|v| format!("memory_mb={v}")),
            self.max_attempts.map(|v| format!("max_attempts={v}")),
            self.queue.as_ref().map(|v| format!("queue={v}")),
            self.priority.map(|v| format!("priority={v}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() { "-".into() } else { parts.join(" ") }
    }
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
