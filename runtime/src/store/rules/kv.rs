//! Key-value and secret rules every backend shares: the limits a write is
//! checked against after it is made (inside its transaction, which the
//! backend rolls back on an error), what an increment refuses, and the
//! wording of their errors.

use crate::domain::capabilities::{kv_increment_overflows, kv_integer, kv_not_an_integer};
use crate::domain::{AliasName, CapabilityLimits, KvStoreName};
use crate::store::{KvStoreSize, StoreError};

/// Checks what a store and its tenant hold after a write against `limits`;
/// the error names the limit, its value and the store.
pub(in crate::store) fn kv_within(
    store: &KvStoreName,
    size: KvStoreSize,
    tenant_bytes: u64,
    limits: &CapabilityLimits,
) -> Result<(), StoreError> {
    if let Some(max) = limits.max_store_keys
        && size.keys > max
    {
        return Err(StoreError::Limit(format!(
            "key-value store {store} would hold {} keys, over kv_max_store_keys {max}",
            size.keys
        )));
    }
    if let Some(max) = limits.max_store_bytes
        && size.bytes > max
    {
        return Err(StoreError::Limit(format!(
            "key-value store {store} would hold {} bytes, over kv_max_store_bytes {max}",
            size.bytes
        )));
    }
    if let Some(max) = limits.max_tenant_bytes
        && tenant_bytes > max
    {
        return Err(StoreError::Limit(format!(
            "this tenant's key-value stores would hold {tenant_bytes} bytes, over its max_kv_bytes {max}"
        )));
    }
    Ok(())
}

/// Why an increment of `key` did not apply, given its stored value (the
/// statement refuses a value that is not a canonical decimal i64, and a sum
/// that would overflow); worded as `wasmq run` words it (`domain::capabilities`).
pub(in crate::store) fn kv_not_incremented(key: &str, stored: Option<&[u8]>, delta: i64) -> StoreError {
    match stored.and_then(kv_integer) {
        Some(n) => StoreError::Limit(kv_increment_overflows(key, delta, n)),
        None => StoreError::Limit(kv_not_an_integer(key)),
    }
}

/// An alias would get more than `max` secrets.
pub(in crate::store) fn too_many_secrets(alias: &AliasName, max: u32) -> StoreError {
    StoreError::Limit(format!(
        "alias {alias} has {max} secrets, the most an alias may have; delete one first"
    ))
}

/// No such secret on the alias.
pub(in crate::store) fn secret_missing(alias: &AliasName, key: &str) -> StoreError {
    StoreError::NotFound(format!("secret {key} of alias {alias}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_named() {
        let store = KvStoreName::parse("s").unwrap();
        let limits = CapabilityLimits {
            max_store_bytes: Some(10),
            max_store_keys: Some(2),
            max_tenant_bytes: Some(20),
        };
        assert!(kv_within(&store, KvStoreSize { bytes: 10, keys: 2 }, 20, &limits).is_ok());
        let e = kv_within(&store, KvStoreSize { bytes: 1, keys: 3 }, 1, &limits).unwrap_err().to_string();
        assert!(e.contains("kv_max_store_keys 2"), "{e}");
        let e = kv_within(&store, KvStoreSize { bytes: 11, keys: 1 }, 11, &limits).unwrap_err().to_string();
        assert!(e.contains("kv_max_store_bytes 10"), "{e}");
        let e = kv_within(&store, KvStoreSize { bytes: 1, keys: 1 }, 21, &limits).unwrap_err().to_string();
        assert!(e.contains("max_kv_bytes 20"), "{e}");
        let e = kv_not_incremented("c", Some(b"abc"), 1).to_string();
        assert!(e.contains("does not hold a decimal"), "{e}");
        let e = kv_not_incremented("c", Some(i64::MAX.to_string().as_bytes()), 1).to_string();
        assert!(e.contains("overflow"), "{e}");
    }
}
