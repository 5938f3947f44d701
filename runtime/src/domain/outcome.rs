//! What one run of a plugin produces: its result or a typed error, and the
//! measurements that go with it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;

/// The two plugin contracts wasmq runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A component of world `wasmq:plugin/job`: `run(input) -> result`.
    Job,
    /// A plain WASI program (p2 command component or p1 module with `_start`):
    /// payload on stdin, JSON result on stdout, exit code 0 for success.
    Command,
}

/// Why a run did not produce a result. Classified at the sandbox boundary, so no
/// caller ever parses trap messages. [`RunError::retryable`] decides retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunError {
    /// The plugin returned an error on purpose (or a command exited non-zero).
    /// Retried only if the plugin marked it retryable.
    #[error("{message}")]
    PluginError {
        /// The plugin's message (for a command: the tail of its stderr).
        message: String,
        /// The plugin's own verdict on whether another attempt may succeed.
        retryable: bool,
    },
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access, a
    /// stack overflow. Retryable (a flaky host call may have caused it).
    #[error("trap: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
        /// The guest's wasm backtrace, when one was captured.
        #[serde(skip_serializing_if = "Option::is_none")]
        backtrace: Option<String>,
    },
    /// The run used its whole fuel budget. Not retried: it would happen again.
    #[error("fuel exhausted after {used} units")]
    FuelExhausted {
        /// Fuel consumed, equal to the budget.
        used: u64,
    },
    /// The wall-clock limit passed. Retryable.
    #[error("timed out after {after_ms} ms")]
    Timeout {
        /// The limit that was exceeded, in milliseconds.
        after_ms: u64,
    },
    /// The guest asked for more memory than its limit. Not retried.
    #[error("memory limit of {limit} bytes exceeded")]
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The result (or a command's stdout) exceeded its limit. Not retried.
    #[error("output exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The run was cancelled from outside. Not retried.
    #[error("cancelled")]
    Cancelled,
    /// The payload (or the plugin's result) is not valid JSON. Not retried.
    #[error("invalid payload: {message}")]
    InvalidPayload {
        /// What is wrong with it, as serde_json says.
        message: String,
    },
    /// The module cannot be run: not wasm, truncated, unsupported imports, a
    /// component of another world. Not retried.
    #[error("invalid module: {reason}")]
    InvalidModule {
        /// Why, e.g. `unsupported import "env"."system"`.
        reason: String,
    },
}

impl RunError {
    /// Whether another attempt could succeed; the job server retries only these.
    pub fn retryable(&self) -> bool {
        match self {
            RunError::PluginError { retryable, .. } => *retryable,
            RunError::Trap { .. } | RunError::Timeout { .. } => true,
            RunError::FuelExhausted { .. }
            | RunError::MemoryLimit { .. }
            | RunError::OutputTooLarge { .. }
            | RunError::Cancelled
            | RunError::InvalidPayload { .. }
            | RunError::InvalidModule { .. } => false,
        }
    }

    /// The stable snake_case name of the variant (`fuel_exhausted`, ...), as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::PluginError { .. } => "plugin_error",
            RunError::Trap { .. } => "trap",
            RunError::FuelExhausted { .. } => "fuel_exhausted",
            RunError::Timeout { .. } => "timeout",
            RunError::MemoryLimit { .. } => "memory_limit",
            RunError::OutputTooLarge { .. } => "output_too_large",
            RunError::Cancelled => "cancelled",
            RunError::InvalidPayload { .. } => "invalid_payload",
            RunError::InvalidModule { .. } => "invalid_module",
        }
    }
}

/// Facts about the job that the plugin can ask for (`host.job-info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Job id; empty outside the server.
    pub id: String,
    /// Alias the job was dispatched to.
    pub alias: String,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// Owning tenant.
    pub tenant: String,
}

impl Default for JobInfo {
    fn default() -> Self {
        Self { id: String::new(), alias: String::new(), attempt: 1, tenant: "default".into() }
    }
}

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// 0..=100.
    pub percent: u8,
    /// The plugin's message.
    pub message: String,
    /// Milliseconds since the run started.
    pub at_ms: u64,
}

/// One line the plugin logged through the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// A captured, bounded output stream (stdout or stderr).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// What was kept (lossy UTF-8).
    pub text: String,
    /// True if output was dropped past the limit.
    pub truncated: bool,
}

/// Everything one run produced.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// The JSON result (present on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    /// The typed error (present on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Fuel consumed (0 when unmetered).
    pub fuel_used: u64,
    /// Wall time of the run, instantiation included.
    #[serde(rename = "duration_us", serialize_with = "as_micros")]
    pub duration: Duration,
    /// Of `duration`, the time until the instance was ready to be called
    /// (fresh store, instantiation); zero if the run never got that far.
    #[serde(rename = "instantiate_us", serialize_with = "as_micros")]
    pub instantiate: Duration,
    /// Largest total linear memory the guest had, in bytes.
    pub peak_memory_bytes: u64,
    /// Progress reports, oldest first (the latest 100; the latest is always kept).
    pub progress: Vec<Progress>,
    /// True if older progress reports were dropped to keep the latest.
    pub progress_truncated: bool,
    /// Lines logged through the host: every line, empty ones included, counts
    /// its bytes plus a fixed per-entry overhead against `max_log_bytes`.
    pub logs: Vec<LogEntry>,
    /// True if host log lines were dropped past the limit (every later line is).
    pub logs_truncated: bool,
    /// The guest's stdout (for a command plugin, stdout is the result instead).
    pub stdout: Captured,
    /// The guest's stderr.
    pub stderr: Captured,
    /// Outbound HTTP requests, oldest first (the first `MAX_RECORDED_CALLS`).
    pub http: Vec<super::HttpCall>,
    /// What every outbound request together cost (all of them, recorded or not).
    pub http_usage: super::HttpUsage,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl Outcome {
    /// An outcome for a run that failed before any guest code ran.
    pub fn rejected(error: RunError) -> Self {
        Self {
            status: "failed",
            result: None,
            error: Some(error),
            fuel_used: 0,
            duration: Duration::ZERO,
            instantiate: Duration::ZERO,
            peak_memory_bytes: 0,
            progress: Vec::new(),
            progress_truncated: false,
            logs: Vec::new(),
            logs_truncated: false,
            stdout: Captured::default(),
            stderr: Captured::default(),
            http: Vec::new(),
            http_usage: super::HttpUsage::default(),
        }
    }

    /// The result or the error, by reference.
    pub fn as_result(&self) -> Result<&RawValue, &RunError> {
        match &self.error {
            Some(e) => Err(e),
            None => Ok(self.result.as_deref().expect("an outcome without an error has a result")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_with_their_kind() {
        let e = RunError::FuelExhausted { used: 10 };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "fuel_exhausted");
        assert_eq!(v["kind"], e.kind());
        assert_eq!(v["used"], 10);
        assert!(!e.retryable());
        assert!(RunError::Timeout { after_ms: 5 }.retryable());
        assert!(RunError::PluginError { message: "x".into(), retryable: true }.retryable());
    }
}
