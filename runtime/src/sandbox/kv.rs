//! The rules every key-value implementation shares, so a plugin sees the same
//! limits and the same error messages under `wasmq serve` and `wasmq run`.
//!
//! The sandbox applies the key and page rules itself before any
//! [`super::Capabilities`] implementation sees a call; value and store limits
//! depend on the store's settings, so implementations apply them with the
//! constructors here.

use super::CapabilityError;
use crate::domain::capabilities::{
    DEFAULT_KV_MAX_VALUE_BYTES, MAX_KV_KEY_BYTES, check_kv_key, check_kv_value, kv_increment_overflows,
    kv_integer, kv_not_an_integer,
};

/// Longest key, in bytes (UTF-8). Empty keys are refused too.
pub const MAX_KEY_BYTES: usize = MAX_KV_KEY_BYTES;
/// Most keys one `kv-list-keys` call returns; larger limits are capped.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// The per-value limit unless the operator sets another (64 KiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = DEFAULT_KV_MAX_VALUE_BYTES as usize;

/// The alias has no key-value store.
pub fn not_granted() -> CapabilityError {
    CapabilityError::NotGranted(
        "key-value state is not granted to this alias: set the alias's kv_store setting".into(),
    )
}

/// Checks a key against the key rules the server applies too
/// ([`check_kv_key`]: 1 to [`MAX_KEY_BYTES`] bytes, no control characters).
pub fn check_key(key: &str) -> Result<(), CapabilityError> {
    check_kv_key(key).map_err(CapabilityError::Limit)
}

/// Checks a value against the store's per-value limit ([`check_kv_value`]).
pub fn check_value(key: &str, value: &[u8], limit: usize) -> Result<(), CapabilityError> {
    check_kv_value(key, value.len(), limit as u64).map_err(CapabilityError::Limit)
}

/// Adds `delta` to the value stored under `key` (absent: 0): the new value,
/// or a `Limit` error when the value is not a canonical decimal i64
/// ([`kv_integer`], as the server's store requires) or the sum overflows.
pub fn increment(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, CapabilityError> {
    let current = match current {
        None => 0,
        Some(bytes) => kv_integer(bytes).ok_or_else(|| CapabilityError::Limit(kv_not_an_integer(key)))?,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| CapabilityError::Limit(kv_increment_overflows(key, delta, current)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_and_non_empty() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert_eq!(
            check_key(&"k".repeat(MAX_KEY_BYTES + 1)),
            Err(CapabilityError::Limit("key must be 1 to 512 bytes, got 513".into()))
        );
        assert!(matches!(check_key(""), Err(CapabilityError::Limit(_))));
        assert!(matches!(check_key("a\u{7}b"), Err(CapabilityError::Limit(m)) if m.contains("control")));
    }

    #[test]
    fn increments_decimal_text_and_refuses_the_rest() {
        assert_eq!(increment("n", None, 5), Ok(5));
        assert_eq!(increment("n", Some(b"41"), 1), Ok(42));
        assert_eq!(increment("n", Some(b"-3"), -4), Ok(-7));
        assert!(
            matches!(increment("n", Some(b"x"), 1), Err(CapabilityError::Limit(m)) if m.contains("\"n\""))
        );
        assert!(matches!(increment("n", Some(&[0xff]), 1), Err(CapabilityError::Limit(_))));
        // Canonical text only, as the server's store: no sign, padding or zeros in front.
        for text in ["+1", " 1", "1\n", "01"] {
            assert!(
                matches!(increment("n", Some(text.as_bytes()), 1), Err(CapabilityError::Limit(_))),
                "{text:?}"
            );
        }
        assert!(
            matches!(increment("n", Some(b"9223372036854775807"), 1), Err(CapabilityError::Limit(m)) if m.contains("would overflow"))
        );
    }

    #[test]
    fn values_over_the_limit_name_key_and_limit() {
        assert!(check_value("k", &[0; 10], 10).is_ok());
        assert_eq!(
            check_value("k", &[0; 11], 10),
            Err(CapabilityError::Limit(
                "the value for key \"k\" is 11 bytes, over the per-value limit of 10 bytes (kv_max_value_size)"
                    .into()
            ))
        );
    }
}
