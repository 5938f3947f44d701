//! Key-value state and alias secrets: what the store keeps and the
//! parameters of their methods.
//!
//! A key-value store belongs to a tenant and has a name (`KvStoreName`);
//! every write is checked against the limits it carries inside its own
//! transaction (bytes count keys plus values), so concurrent writers never
//! take a store or a tenant past a limit. Secrets are stored sealed by the
//! caller; the store never sees them in clear.

use crate::domain::{AliasName, CapabilityLimits, KvStoreName, TenantId};

/// Which key of which store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvKey {
    /// Owner.
    pub tenant: TenantId,
    /// The store.
    pub store: KvStoreName,
    /// The key (validated by the caller: `domain::check_kv_key`).
    pub key: String,
}

/// `kv_set` parameters.
#[derive(Debug, Clone)]
pub struct KvSet {
    /// Where.
    pub at: KvKey,
    /// The value (its size is checked by the caller against `kv_max_value_size`).
    pub value: Vec<u8>,
    /// Limits of the store and the tenant.
    pub limits: CapabilityLimits,
    /// Unix ms.
    pub now: i64,
}

/// `kv_increment` parameters.
#[derive(Debug, Clone)]
pub struct KvIncrement {
    /// Where.
    pub at: KvKey,
    /// Added to the stored decimal integer (absent: 0).
    pub delta: i64,
    /// Limits of the store and the tenant.
    pub limits: CapabilityLimits,
    /// Unix ms.
    pub now: i64,
}

/// `kv_list` parameters: a page of keys in byte order.
#[derive(Debug, Clone)]
pub struct KvList {
    /// Owner.
    pub tenant: TenantId,
    /// The store.
    pub store: KvStoreName,
    /// Only keys starting with this.
    pub prefix: String,
    /// Only keys after this one (the previous page's last key).
    pub after: Option<String>,
    /// Most keys.
    pub limit: u32,
}

/// What one store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvStoreSize {
    /// Bytes of keys plus values.
    pub bytes: u64,
    /// Keys.
    pub keys: u64,
}

/// A secret of an alias as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Its key.
    pub key: String,
    /// Unix ms of the last set.
    pub updated_at: i64,
}

/// `secret_put` parameters.
#[derive(Debug, Clone)]
pub struct SecretPut {
    /// Owner.
    pub tenant: TenantId,
    /// The alias (must exist).
    pub alias: AliasName,
    /// Its key (validated by the caller).
    pub key: String,
    /// The value, sealed for (tenant, alias, key).
    pub sealed: String,
    /// Most secrets the alias may have (a new key past it is refused).
    pub max_secrets: u32,
    /// Unix ms.
    pub now: i64,
}
