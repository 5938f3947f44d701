//! Configuration, secrets and key-value state (contract `wasmq:plugin@0.2.0`).
//!
//! Nothing is granted by default: an alias without configuration answers
//! `None` to [`config::get`] and [`secret::get`], and one without a key-value
//! store (its `kv_store` setting) fails every [`kv`] call with
//! [`CapabilityError::NotGranted`]. Every error converts into [`crate::Error`]
//! with `?` (retryable only for [`CapabilityError::Unavailable`]).

use crate::bindings::wasmq::plugin::{host, types};
use std::fmt;

/// Why a capability call failed; the message names the setting or limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityError {
    /// The alias was not granted this capability (e.g. no `kv_store`).
    NotGranted(String),
    /// A size or quota limit refused the call; nothing changed.
    Limit(String),
    /// The store failed for a moment; the job may pass on a retry.
    Unavailable(String),
}

impl CapabilityError {
    /// The host's message.
    pub fn message(&self) -> &str {
        match self {
            Self::NotGranted(m) | Self::Limit(m) | Self::Unavailable(m) => m,
        }
    }

    /// Whether running the job again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Not `std::error::Error` on purpose: that would take the blanket
/// (always permanent) conversion instead of this one.
impl From<CapabilityError> for crate::Error {
    fn from(e: CapabilityError) -> Self {
        if e.is_retryable() { crate::Error::retryable(e.message()) } else { crate::Error::new(e.message()) }
    }
}

impl From<types::CapabilityError> for CapabilityError {
    fn from(e: types::CapabilityError) -> Self {
        match e {
            types::CapabilityError::NotGranted(m) => Self::NotGranted(m),
            types::CapabilityError::Limit(m) => Self::Limit(m),
            types::CapabilityError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

/// The alias's plain configuration (`config` on the alias).
pub mod config {
    use super::host;

    /// The value of `key`, or `None` when the alias does not set it.
    pub fn get(key: &str) -> Option<String> {
        host::config_get(key)
    }

    /// The value of `key`, or a permanent error naming the missing setting.
    pub fn require(key: &str) -> Result<String, crate::Error> {
        get(key).ok_or_else(|| crate::Error::new(format!("the alias has no config value {key:?}")))
    }
}

/// The alias's secrets (write-only through the API, decrypted for this run).
/// Never put a secret in the result, a log line or progress.
pub mod secret {
    use super::{CapabilityError, host};

    /// The secret `key`, or `None` when the alias has none by that name.
    pub fn get(key: &str) -> Result<Option<String>, CapabilityError> {
        host::secret_get(key).map_err(Into::into)
    }

    /// The secret `key`, or a permanent error naming the missing secret.
    pub fn require(key: &str) -> Result<String, crate::Error> {
        get(key)?.ok_or_else(|| crate::Error::new(format!("the alias has no secret {key:?}")))
    }
}

/// Key-value state kept between runs in the alias's store (`kv_store`),
/// shared by every run of every alias naming the same store.
pub mod kv {
    use super::{CapabilityError, host};

    /// The value under `key`, or `None`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
        host::kv_get(key).map_err(Into::into)
    }

    /// The value under `key` as UTF-8 text, or `None`. A value that is not
    /// UTF-8 is a permanent error naming the key.
    pub fn get_string(key: &str) -> Result<Option<String>, crate::Error> {
        match get(key)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| crate::Error::new(format!("the value of key {key:?} is not UTF-8 text"))),
        }
    }

    /// Stores `value` under `key`, replacing any value.
    pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), CapabilityError> {
        host::kv_set(key, value.as_ref()).map_err(Into::into)
    }

    /// Removes `key`; whether it existed.
    pub fn delete(key: &str) -> Result<bool, CapabilityError> {
        host::kv_delete(key).map_err(Into::into)
    }

    /// Adds `delta` to the integer under `key` (absent: 0) atomically and
    /// returns the new value; concurrent runs never lose an update.
    pub fn increment(key: &str, delta: i64) -> Result<i64, CapabilityError> {
        host::kv_increment(key, delta).map_err(Into::into)
    }

    /// One page of keys starting with `prefix`, in byte order, after `after`
    /// (the previous page's last key), at most `limit` (capped at 1000).
    pub fn list_keys(prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<String>, CapabilityError> {
        host::kv_list_keys(prefix, after, limit).map_err(Into::into)
    }

    /// Every key starting with `prefix`, in byte order (pages of 1000).
    pub fn all_keys(prefix: &str) -> Result<Vec<String>, CapabilityError> {
        let mut keys: Vec<String> = Vec::new();
        loop {
            let page = list_keys(prefix, keys.last().map(String::as_str), 1000)?;
            if page.is_empty() {
                return Ok(keys);
            }
            keys.extend(page);
        }
    }
}
