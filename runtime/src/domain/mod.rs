//! Pure domain types shared by every layer: what a plugin is, the limits a run
//! gets, what a run produces, jobs and their names. Nothing here imports
//! wasmtime, tokio, axum or sqlx.

pub mod capabilities;
mod day;
mod digest;
mod http_grant;
mod job;
pub mod json_int;
mod limits;
mod names;
mod net_policy;
mod outcome;
mod queue_limits;
pub mod schedule;
mod tenant;
pub mod time;
mod unique;

pub use capabilities::{
    CapabilityLimits, EnvSource, KvLimits, check_config_key, check_env_name, check_kv_key,
};
pub use day::Day;
pub use digest::{Digest, DigestParseError};
pub use http_grant::{
    HostPattern, HttpCall, HttpCeilings, HttpGrant, HttpLimits, HttpUsage, MAX_RECORDED_CALLS,
    check_allowed_hosts,
};
pub use job::{Callback, CallbackState, JobRef, JobStatus, MAX_RETRY_DELAY_MS, RetryPolicy};
pub use limits::{Limits, LimitsError};
pub use names::{AliasName, IdempotencyKey, KvStoreName, NameError, QueueName, ScheduleName, TenantId};
pub use net_policy::{NetPolicy, Refused, special_range};
pub use outcome::{Captured, JobInfo, LogEntry, LogLevel, Outcome, PluginKind, Progress, RunError};
pub use queue_limits::{Bucket, MAX_RATE, MAX_RATE_WINDOW_MS, QueueLimits, Rate};
pub use schedule::{CatchUp, Recurrence};
pub use tenant::{DispatchRate, Scope, TenantQuotas};
pub use unique::{DEFAULT_UNIQUE_STATES, UniqueField, UniqueFields, unique_key};
