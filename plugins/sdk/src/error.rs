//! The error a plugin function returns.

use std::fmt;

/// Why a job failed, and whether trying again could help.
///
/// Any `std::error::Error` converts into a non-retryable `Error`, so `?` works
/// on I/O, parsing and decoding errors. Use [`Error::retryable`] for failures
/// that may pass on a later attempt (wasmq then retries with backoff).
pub struct Error {
    message: String,
    retryable: bool,
}

impl Error {
    /// A permanent failure: the job ends as failed without another attempt.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }

    /// A transient failure: wasmq may run the job again.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }

    /// Whether the job may be retried.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message shown as the job's error.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_message(self) -> String {
        self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("message", &self.message).field("retryable", &self.retryable).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Like `anyhow`, `Error` deliberately does not implement `std::error::Error`
/// itself, which is what allows this blanket conversion.
impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}
