//! Rows of `tenants`, `tokens` and `signing_keys` and their decoding, and the
//! encoding of a tenant's quotas and callback ranges (JSON text, NULL when
//! they say nothing).

use sqlx::FromRow;

use crate::domain::{Scope, TenantId, TenantQuotas};
use crate::store::{KeyRecord, StoreError, StoreResult, TenantRecord, TokenGrant, TokenRecord};

/// Columns of `tenants` in the order [`TenantRow`] reads them.
pub(in crate::store) const TENANT_COLUMNS: &str =
    "id, weight, quotas, callback_allow, created_at, updated_at";
/// Columns of `tokens` in the order [`TokenRow`] reads them.
pub(in crate::store) const TOKEN_COLUMNS: &str = "id, tenant, scope, name, created_at, expires_at";

/// A row of `tenants` ([`TENANT_COLUMNS`]).
#[derive(FromRow)]
pub(in crate::store) struct TenantRow {
    id: String,
    weight: i64,
    quotas: Option<String>,
    callback_allow: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TenantRow> for TenantRecord {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> StoreResult<Self> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("tenant {}: {what}: {e}", r.id))
        };
        let quotas = match &r.quotas {
            None => TenantQuotas::default(),
            Some(q) => serde_json::from_str(q).map_err(|e| corrupt("quotas", &e))?,
        };
        let callback_allow = match &r.callback_allow {
            None => Vec::new(),
            Some(c) => serde_json::from_str(c).map_err(|e| corrupt("callback_allow", &e))?,
        };
        Ok(TenantRecord {
            id: TenantId::parse(r.id.clone()).map_err(|e| corrupt("id", &e))?,
            weight: u32::try_from(r.weight).map_err(|e| corrupt("weight", &e))?,
            quotas,
            callback_allow,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A row of `tokens` ([`TOKEN_COLUMNS`]).
#[derive(FromRow)]
pub(in crate::store) struct TokenRow {
    id: String,
    tenant: String,
    scope: String,
    name: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(r: TokenRow) -> StoreResult<Self> {
        Ok(TokenRecord {
            tenant: TenantId::parse(r.tenant)
                .map_err(|e| StoreError::Corrupt(format!("token {}: {e}", r.id)))?,
            scope: token_scope(&r.scope)?,
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

/// A token lookup's row: `(token id, tenant, scope, expires_at)`.
pub(in crate::store) type TokenGrantRow = (String, String, String, Option<i64>);

/// What a token lookup found.
pub(in crate::store) fn token_grant(
    (token, tenant, scope, expires_at): TokenGrantRow,
) -> StoreResult<TokenGrant> {
    Ok(TokenGrant {
        tenant: TenantId::parse(tenant).map_err(|e| StoreError::Corrupt(format!("token {token}: {e}")))?,
        scope: token_scope(&scope)?,
        token,
        expires_at,
    })
}

/// A stored token scope.
pub(in crate::store) fn token_scope(s: &str) -> StoreResult<Scope> {
    Scope::parse(s).ok_or_else(|| StoreError::Corrupt(format!("token scope {s:?}")))
}

/// A tenant's quotas as stored: `None` (NULL) when they are the defaults.
pub(in crate::store) fn quotas_json(q: &TenantQuotas) -> Option<String> {
    (*q != TenantQuotas::default()).then(|| serde_json::to_string(q).expect("quotas serialize"))
}

/// A tenant's extra callback ranges as stored: `None` (NULL) when there are none.
pub(in crate::store) fn allow_json(a: &[String]) -> Option<String> {
    (!a.is_empty()).then(|| serde_json::to_string(a).expect("strings serialize"))
}

/// A row of `signing_keys` without its secret: `id, tenant, scope, name, created_at`.
#[derive(FromRow)]
pub(in crate::store) struct KeyRow {
    id: String,
    tenant: String,
    scope: String,
    name: Option<String>,
    created_at: i64,
}

fn key_corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("signing key {id}: {what}"))
}

/// The tenant and scope of signing key `id`, as stored.
pub(in crate::store) fn key_grant_parts(
    id: &str,
    tenant: String,
    scope: &str,
) -> StoreResult<(TenantId, Scope)> {
    let tenant = TenantId::parse(tenant).map_err(|e| key_corrupt(id, &e.to_string()))?;
    let scope = Scope::parse(scope).ok_or_else(|| key_corrupt(id, &format!("scope {scope:?}")))?;
    Ok((tenant, scope))
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    fn try_from(r: KeyRow) -> StoreResult<Self> {
        let (tenant, scope) = key_grant_parts(&r.id, r.tenant, &r.scope)?;
        Ok(KeyRecord { id: r.id, tenant, scope, name: r.name, created_at: r.created_at })
    }
}
