//! The rules every key-value implementation shares, so a plugin sees the same
//! limits and the same error messages under `wasmq serve` and `wasmq run`.
//!
//! The sandbox applies the key and page rules itself before any
//! [`super::Capabilities`] implementation sees a call; value and store limits
//! depend on the store's settings, so implementations apply them with the
//! constructors here.

use super::CapabilityError;

/// Longest key, in bytes (UTF-8). Empty keys are refused too.
pub const MAX_KEY_BYTES: usize = 512;
/// Most keys one `kv-list-keys` call returns; larger limits are capped.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// The per-value limit unless the operator sets another (64 KiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;

/// The alias has no key-value store.
pub fn not_granted() -> CapabilityError {
    CapabilityError::NotGranted(
        "key-value state is not granted to this alias: set the alias's kv_store setting".into(),
    )
}

/// Checks a key against [`MAX_KEY_BYTES`].
pub fn check_key(key: &str) -> Result<(), CapabilityError> {
    if key.is_empty() {
        return Err(CapabilityError::Limit("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(CapabilityError::Limit(format!(
            "key is {} bytes, over the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against the store's per-value limit.
pub fn check_value(key: &str, value: &[u8], limit: usize) -> Result<(), CapabilityError> {
    if value.len() > limit {
        return Err(CapabilityError::Limit(format!(
            "value for key {key:?} is {} bytes, over the per-value limit of {limit} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// Adds `delta` to the value stored under `key` (absent: 0): the new value,
/// or a `Limit` error when the value is not a decimal i64 or the sum overflows.
pub fn increment(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, CapabilityError> {
    let current = match current {
        None => 0,
        Some(bytes) => {
            std::str::from_utf8(bytes).ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or_else(|| {
                CapabilityError::Limit(format!(
                    "the value of key {key:?} is not a decimal integer, so it cannot be incremented"
                ))
            })?
        }
    };
    current.checked_add(delta).ok_or_else(|| {
        CapabilityError::Limit(format!("incrementing key {key:?} by {delta} overflows a 64-bit integer"))
    })
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
            Err(CapabilityError::Limit("key is 513 bytes, over the limit of 512 bytes".into()))
        );
        assert!(matches!(check_key(""), Err(CapabilityError::Limit(_))));
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
        assert!(
            matches!(increment("n", Some(b"9223372036854775807"), 1), Err(CapabilityError::Limit(m)) if m.contains("overflows"))
        );
    }

    #[test]
    fn values_over_the_limit_name_key_and_limit() {
        assert!(check_value("k", &[0; 10], 10).is_ok());
        assert_eq!(
            check_value("k", &[0; 11], 10),
            Err(CapabilityError::Limit(
                "value for key \"k\" is 11 bytes, over the per-value limit of 10 bytes".into()
            ))
        );
    }
}
