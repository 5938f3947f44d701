//! The hard limits one run of a plugin gets.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-run limits. Every field has a sane default and can be overridden per job.
///
/// Invariant: a run never exceeds any of these; exceeding one ends the run with the
/// matching [`crate::domain::RunError`] (fuel, timeout, memory, output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Instruction budget (wasmtime fuel units, roughly one per wasm instruction).
    /// `None` means unmetered: only the timeout bounds the run.
    pub fuel: Option<u64>,
    /// Wall-clock limit for the whole run, instantiation included.
    #[serde(with = "duration_ms", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Linear memory, in bytes, summed over every memory of the instance.
    pub memory_bytes: u64,
    /// Elements per table (function tables of the guest).
    pub table_elements: u64,
    /// Core instances a component may create (a Rust component uses a handful).
    pub instances: u32,
    /// Size of the JSON result, in bytes (for a command plugin: its stdout).
    pub max_result_bytes: u64,
    /// Bytes kept of each of stdout and stderr, and of the host log; the rest is
    /// dropped and the capture marked truncated.
    pub max_log_bytes: u64,
    /// Outbound HTTP granted to the run (`None`: no network), pinned from the
    /// alias at dispatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<super::HttpGrant>,
    /// How the job waits between attempts (`None`: the server's backoff),
    /// pinned from the alias at dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<super::RetryPolicy>,
}

/// Default fuel: about a second of CPU-heavy guest code on this class of machine.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Some(DEFAULT_FUEL),
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 32,
            max_result_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            http: None,
            retry: None,
        }
    }
}

/// A limit outside what the engine can enforce.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    /// A limit is zero or larger than the engine's ceiling.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The offending field, as named in the API.
        field: &'static str,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
        /// What was given.
        value: u64,
    },
}

impl Limits {
    /// Checks every limit against its range; `max_memory_bytes` is the engine's
    /// ceiling (the pooling allocator's slot size).
    pub fn validate(&self, max_memory_bytes: u64) -> Result<(), LimitsError> {
        let check = |field, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(LimitsError::OutOfRange { field, min, max, value })
            }
        };
        if let Some(fuel) = self.fuel {
            check("fuel", fuel, 1, u64::MAX / 2)?;
        }
        check("timeout_ms", self.timeout.as_millis() as u64, 1, 24 * 3600 * 1000)?;
        check("memory_bytes", self.memory_bytes, 64 << 10, max_memory_bytes)?;
        check("table_elements", self.table_elements, 1, 10_000_000)?;
        check("instances", u64::from(self.instances), 1, 10_000)?;
        check("max_result_bytes", self.max_result_bytes, 1, 1 << 30)?;
        check("max_log_bytes", self.max_log_bytes, 0, 1 << 30)?;
        Ok(())
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::default().validate(4 << 30).unwrap();
    }

    #[test]
    fn out_of_range_names_the_field() {
        let limits = Limits { memory_bytes: 8 << 30, ..Limits::default() };
        let err = limits.validate(1 << 30).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("memory_bytes must be between 65536 and 1073741824, got {}", 8u64 << 30)
        );
        let limits = Limits { timeout: Duration::ZERO, ..Limits::default() };
        assert!(limits.validate(1 << 30).unwrap_err().to_string().starts_with("timeout_ms"));
    }
}
