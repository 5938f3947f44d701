//! What the store keeps about tenants and their tokens, and the parameters of
//! its tenant methods.

use crate::domain::{Scope, TenantId, TenantQuotas};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// Its id (the `TenantId` rule).
    pub id: TenantId,
    /// Share of the workers when tenants compete (at least 1).
    pub weight: u32,
    /// Its own limits (`None` fields: the server's settings).
    pub quotas: TenantQuotas,
    /// Extra address ranges or hosts its callbacks may reach (besides the
    /// server's policy; applied at dispatch and at delivery).
    pub callback_allow: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// `tenant_create` parameters.
#[derive(Debug, Clone)]
pub struct TenantCreate {
    /// Its id; `Conflict` if taken.
    pub id: TenantId,
    /// Share of the workers.
    pub weight: u32,
    /// Its own limits.
    pub quotas: TenantQuotas,
    /// Extra callback ranges or hosts.
    pub callback_allow: Vec<String>,
    /// Unix ms.
    pub now: i64,
}

/// `tenant_update` parameters: each `Some` replaces the stored value.
#[derive(Debug, Clone)]
pub struct TenantUpdate {
    /// Which tenant.
    pub id: TenantId,
    /// New weight.
    pub weight: Option<u32>,
    /// New quotas (the whole set).
    pub quotas: Option<TenantQuotas>,
    /// New callback ranges (the whole list).
    pub callback_allow: Option<Vec<String>>,
    /// Unix ms.
    pub now: i64,
}

/// A token as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id (not secret: used to revoke it).
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// What it may do.
    pub scope: Scope,
    /// A label chosen by the operator.
    pub name: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which it is refused; `None` never expires.
    pub expires_at: Option<i64>,
}

/// `token_create` parameters: the hash of the secret, never the secret.
#[derive(Debug, Clone)]
pub struct TokenCreate {
    /// Its id.
    pub id: String,
    /// Its tenant; `NotFound` if it does not exist.
    pub tenant: TenantId,
    /// What it may do.
    pub scope: Scope,
    /// blake3 of the secret.
    pub hash: blake3::Hash,
    /// A label.
    pub name: Option<String>,
    /// Unix ms.
    pub now: i64,
    /// Unix ms after which it is refused.
    pub expires_at: Option<i64>,
}

/// Who a valid token acts for (`token_lookup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The token's id.
    pub token: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// What it may do.
    pub scope: Scope,
    /// When it stops being valid, if ever (a cache must not outlive it).
    pub expires_at: Option<i64>,
}
