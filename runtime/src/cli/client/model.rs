//! The API's wire types, as the client uses them: the server's own request and
//! view types (one definition of each message; views ignore unknown fields, so
//! a newer server still works), plus what the client reads out of raw fields.

use serde::Deserialize;

use crate::domain::{Captured, HttpCall, LogEntry};

pub(crate) use crate::api::{
    AliasLimitsView, AliasRequest, AliasView as Alias, BatchCreated, BatchDeleted, BatchView as Batch,
    BulkDone, JobPage, JobRequest, JobView as Job, KeyCreated, KeyRequest, KeyView, KvEntry, KvKeysPage,
    KvRequest, ModuleView as Module, NodeList, QueueList, QueueView, SchedulePage, ScheduleRequest,
    ScheduleView, SecretRequest, SecretView, StatusView as Status, TenantPatch, TenantRequest,
    TenantView as Tenant, TokenCreated, TokenRequest, TokenView,
};
pub(crate) use crate::domain::Scope;
pub(crate) use crate::store::AliasConfig;

/// `logs` of a job: what its latest attempt logged through the host and
/// printed on stdout and stderr (each kept up to a limit, truncation marked).
/// The server keeps them as raw JSON (`JobView::logs`); this reads them.
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
    /// Outbound HTTP requests (the first 100).
    #[serde(default)]
    pub(crate) http: Vec<HttpCall>,
    #[serde(default)]
    pub(crate) http_truncated: bool,
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

/// The name a value has on the wire (`job`, `delivered`, ...): how the
/// client shows the server's enums without a second list of their names.
pub(crate) fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}
