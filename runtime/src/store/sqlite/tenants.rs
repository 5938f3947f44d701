//! `tenants` and `tokens`: who may use the server, and as whom.

use super::{SqliteStore, usage};
use crate::domain::TenantId;
use crate::store::rows::{
    TENANT_COLUMNS, TOKEN_COLUMNS, TenantRow, TokenGrantRow, TokenRow, allow_json, quotas_json, token_grant,
};
use crate::store::rules::{self, TERMINAL};
use crate::store::{
    StoreError, StoreResult, TenantCreate, TenantRecord, TenantUpdate, TokenCreate, TokenGrant, TokenRecord,
};

/// Whether the tenant exists, read inside the caller's transaction.
pub(super) async fn exists_in(conn: &mut sqlx::SqliteConnection, id: &TenantId) -> StoreResult<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Deletes the row of `table` (tokens, signing keys) with this tenant and id;
/// `missing` names it when there is none.
pub(super) async fn delete_owned(
    s: &SqliteStore,
    table: &str,
    tenant: &TenantId,
    id: &str,
    missing: fn(&str) -> StoreError,
) -> StoreResult<()> {
    let deleted = sqlx::query(&format!("DELETE FROM {table} WHERE tenant = ? AND id = ?"))
        .bind(tenant.as_str())
        .bind(id)
        .execute(&s.writer)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(missing(id));
    }
    Ok(())
}

pub(super) async fn create(s: &SqliteStore, p: TenantCreate) -> StoreResult<TenantRecord> {
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, weight, quotas, callback_allow, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(p.id.as_str())
    .bind(i64::from(p.weight))
    .bind(quotas_json(&p.quotas))
    .bind(allow_json(&p.callback_allow))
    .bind(p.now)
    .bind(p.now)
    .execute(&s.writer)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(rules::tenant_exists(&p.id));
    }
    get(s, &p.id).await
}

pub(super) async fn get(s: &SqliteStore, id: &TenantId) -> StoreResult<TenantRecord> {
    sqlx::query_as::<_, TenantRow>(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"))
        .bind(id.as_str())
        .fetch_optional(&s.writer)
        .await?
        .ok_or_else(|| rules::tenant_missing(id))?
        .try_into()
}

pub(super) async fn list(s: &SqliteStore) -> StoreResult<Vec<TenantRecord>> {
    sqlx::query_as::<_, TenantRow>(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
        .fetch_all(&s.reader)
        .await?
        .into_iter()
        .map(TenantRecord::try_from)
        .collect()
}

pub(super) async fn update(s: &SqliteStore, p: TenantUpdate) -> StoreResult<TenantRecord> {
    let mut tx = s.tx().await?;
    let current: TenantRecord =
        sqlx::query_as::<_, TenantRow>(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"))
            .bind(p.id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| rules::tenant_missing(&p.id))?
            .try_into()?;
    let weight = p.weight.unwrap_or(current.weight);
    let quotas = p.quotas.unwrap_or(current.quotas);
    let allow = p.callback_allow.unwrap_or(current.callback_allow);
    sqlx::query("UPDATE tenants SET weight = ?, quotas = ?, callback_allow = ?, updated_at = ? WHERE id = ?")
        .bind(i64::from(weight))
        .bind(quotas_json(&quotas))
        .bind(allow_json(&allow))
        .bind(p.now)
        .bind(p.id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    get(s, &p.id).await
}

pub(super) async fn delete(s: &SqliteStore, id: &TenantId) -> StoreResult<()> {
    if *id == TenantId::default_tenant() {
        return Err(rules::default_tenant_kept());
    }
    let mut tx = s.tx().await?;
    if !exists_in(&mut tx, id).await? {
        return Err(rules::tenant_missing(id));
    }
    let unfinished: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND status NOT IN {TERMINAL}"
    ))
    .bind(id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if unfinished > 0 {
        return Err(rules::tenant_busy(id, unfinished));
    }
    // Its usage stays (it is billed on), and its module storage ends today.
    let stored = usage::module_bytes(&mut tx, id).await?;
    if stored > 0 {
        usage::modules_changed(&mut tx, id, crate::domain::time::now_ms(), stored, 0).await?;
    }
    // Its key-value state ends today too (the gauge drops to 0).
    let kv: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(bytes), 0) FROM kv_stores WHERE tenant = ?")
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if kv > 0 {
        let now = crate::domain::time::now_ms();
        usage::gauge_changed(&mut tx, usage::Gauge::Kv, id, now, kv as u64, 0).await?;
    }
    for table in [
        "tokens",
        "schedules",
        "jobs",
        "batches",
        "alias_secrets",
        "alias_versions",
        "aliases",
        "modules",
        "kv",
        "kv_stores",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE tenant = ?"))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    // Its aliases' limits (`store::alias_limits_name`).
    sqlx::query("DELETE FROM queues WHERE substr(name, 1, length(?1)) = ?1")
        .bind(format!("@{}/", id.as_str()))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM tenants WHERE id = ?").bind(id.as_str()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn token_create(s: &SqliteStore, p: TokenCreate) -> StoreResult<TokenRecord> {
    let mut tx = s.tx().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE id = ?")
        .bind(p.tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(rules::tenant_missing(&p.tenant));
    }
    sqlx::query(
        "INSERT INTO tokens (id, tenant, scope, hash, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&p.id)
    .bind(p.tenant.as_str())
    .bind(p.scope.as_str())
    .bind(p.hash.to_hex().as_str())
    .bind(&p.name)
    .bind(p.now)
    .bind(p.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TokenRecord {
        id: p.id,
        tenant: p.tenant,
        scope: p.scope,
        name: p.name,
        created_at: p.now,
        expires_at: p.expires_at,
    })
}

pub(super) async fn token_list(s: &SqliteStore, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
    get(s, tenant).await?;
    sqlx::query_as::<_, TokenRow>(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant = ? ORDER BY created_at, id"
    ))
    .bind(tenant.as_str())
    .fetch_all(&s.writer)
    .await?
    .into_iter()
    .map(TokenRecord::try_from)
    .collect()
}

pub(super) async fn token_revoke(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<()> {
    delete_owned(s, "tokens", tenant, id, rules::token_missing).await
}

pub(super) async fn token_lookup(
    s: &SqliteStore,
    hash: &blake3::Hash,
    now: i64,
) -> StoreResult<Option<TokenGrant>> {
    // The writer: a token made or revoked a moment ago is seen at once.
    let row: Option<TokenGrantRow> = sqlx::query_as(
        "SELECT t.id, t.tenant, t.scope, t.expires_at FROM tokens t JOIN tenants n ON n.id = t.tenant
         WHERE t.hash = ? AND (t.expires_at IS NULL OR t.expires_at > ?)",
    )
    .bind(hash.to_hex().as_str())
    .bind(now)
    .fetch_optional(&s.writer)
    .await?;
    row.map(token_grant).transpose()
}
