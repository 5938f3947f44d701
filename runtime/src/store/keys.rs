//! What the store keeps about signing keys (the shared secrets of signed
//! requests), and the parameters of its key methods. The secret is stored
//! sealed by the caller (`callbacks::SecretBox`); the store never sees it in clear.

use crate::domain::{Scope, TenantId};

/// A signing key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Its id: what `X-Wasmq-Key` names (not secret).
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// What a request signed with it may do.
    pub scope: Scope,
    /// A label chosen by the operator.
    pub name: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// `key_create` parameters.
#[derive(Debug, Clone)]
pub struct KeyCreate {
    /// Its id; `Conflict` if taken.
    pub id: String,
    /// Its tenant; `NotFound` if it does not exist.
    pub tenant: TenantId,
    /// What it may do.
    pub scope: Scope,
    /// The secret, sealed for the key's id.
    pub sealed: String,
    /// A label.
    pub name: Option<String>,
    /// Unix ms.
    pub now: i64,
}

/// What verifying a request signed with a key needs (`key_lookup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// The key's id.
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// What it may do.
    pub scope: Scope,
    /// The secret, sealed for the key's id.
    pub sealed: String,
}
