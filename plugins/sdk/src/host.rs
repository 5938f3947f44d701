//! What the host offers a running plugin: progress, logging and job facts.

use crate::bindings::wasmq::plugin::host;

pub use crate::bindings::wasmq::plugin::types::{JobInfo, LogLevel as Level};

/// Reports progress (`percent` is clamped to 100 by the host) with a short message.
pub fn progress(percent: u8, message: impl AsRef<str>) {
    host::progress(percent, message.as_ref());
}

/// Writes one line to the job's log.
pub fn log(level: Level, message: impl AsRef<str>) {
    host::log(level, message.as_ref());
}

/// The job being run: id, alias, attempt and tenant.
pub fn job_info() -> JobInfo {
    host::job_info()
}

/// Logs at `info` level with `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, ::std::format!($($arg)*)) };
}

/// Logs at `warn` level with `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, ::std::format!($($arg)*)) };
}

/// Logs at `debug` level with `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, ::std::format!($($arg)*)) };
}
