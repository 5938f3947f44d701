//! Modules: content-addressed plugin bytes, per tenant.

use crate::domain::{Digest, PluginKind, TenantId};

/// A stored module (its bytes are fetched separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRecord {
    /// Content address.
    pub digest: Digest,
    /// Bytes.
    pub size: u64,
    /// Contract.
    pub kind: PluginKind,
    /// Unix ms.
    pub created_at: i64,
}

/// `module_put` parameters.
pub struct ModulePut {
    /// Owner.
    pub tenant: TenantId,
    /// Content address of `bytes`.
    pub digest: Digest,
    /// Contract (validated by the engine before storing).
    pub kind: PluginKind,
    /// The module.
    pub bytes: Vec<u8>,
    /// Unix ms.
    pub now: i64,
}
