//! Pure domain types shared by every layer: what a plugin is, the limits a run
//! gets, and what a run produces. Nothing here imports wasmtime, tokio, axum or sqlx.

mod digest;
mod limits;
mod outcome;

pub use digest::{Digest, DigestParseError};
pub use limits::{Limits, LimitsError};
pub use outcome::{Captured, JobInfo, LogEntry, LogLevel, Outcome, PluginKind, Progress, RunError};
