//! `signing_keys`: the sealed secrets of signed requests.

use super::{SqliteStore, tenants};
use crate::domain::TenantId;
use crate::store::rows::{KeyRow, key_grant_parts};
use crate::store::rules;
use crate::store::{KeyCreate, KeyGrant, KeyRecord, StoreResult};

pub(super) async fn create(s: &SqliteStore, p: KeyCreate) -> StoreResult<KeyRecord> {
    let mut tx = s.tx().await?;
    if !tenants::exists_in(&mut tx, &p.tenant).await? {
        return Err(rules::tenant_missing(&p.tenant));
    }
    let inserted = sqlx::query(
        "INSERT INTO signing_keys (id, tenant, scope, sealed, name, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&p.id)
    .bind(p.tenant.as_str())
    .bind(p.scope.as_str())
    .bind(&p.sealed)
    .bind(&p.name)
    .bind(p.now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(rules::key_exists(&p.id));
    }
    tx.commit().await?;
    Ok(KeyRecord { id: p.id, tenant: p.tenant, scope: p.scope, name: p.name, created_at: p.now })
}

pub(super) async fn list(s: &SqliteStore, tenant: &TenantId) -> StoreResult<Vec<KeyRecord>> {
    tenants::get(s, tenant).await?;
    sqlx::query_as::<_, KeyRow>(
        "SELECT id, tenant, scope, name, created_at FROM signing_keys WHERE tenant = ? ORDER BY created_at, id",
    )
    .bind(tenant.as_str())
    .fetch_all(&s.writer)
    .await?
    .into_iter()
    .map(KeyRecord::try_from)
    .collect()
}

pub(super) async fn revoke(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<()> {
    tenants::delete_owned(s, "signing_keys", tenant, id, rules::key_missing).await
}

pub(super) async fn lookup(s: &SqliteStore, id: &str) -> StoreResult<Option<KeyGrant>> {
    // The writer: a key made or revoked a moment ago is seen at once.
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT tenant, scope, sealed FROM signing_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&s.writer)
            .await?;
    row.map(|(tenant, scope, sealed)| {
        let (tenant, scope) = key_grant_parts(id, tenant, &scope)?;
        Ok(KeyGrant { id: id.to_string(), tenant, scope, sealed })
    })
    .transpose()
}

/// `seen_signatures`: a signed request's tag, kept until its window ends.
pub(super) async fn first_use(
    s: &SqliteStore,
    tenant: &TenantId,
    tag: &str,
    expires_at: i64,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO seen_signatures (tag, tenant, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (tag) DO NOTHING",
    )
    .bind(tag)
    .bind(tenant.as_str())
    .bind(expires_at)
    .execute(&s.writer)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub(super) async fn prune(s: &SqliteStore, now: i64) -> StoreResult<u64> {
    let deleted = sqlx::query("DELETE FROM seen_signatures WHERE expires_at < ?1")
        .bind(now)
        .execute(&s.writer)
        .await?
        .rows_affected();
    Ok(deleted)
}
