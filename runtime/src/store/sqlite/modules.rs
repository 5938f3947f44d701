//! `modules`: content-addressed plugin bytes, per tenant.

use super::SqliteStore;
use crate::domain::{Digest, TenantId};
use crate::store::rows::{ModuleRow, kind_str};
use crate::store::rules::{self, TERMINAL};
use crate::store::{ModulePut, ModuleRecord, StoreResult};

pub(super) async fn put(s: &SqliteStore, p: ModulePut) -> StoreResult<(ModuleRecord, bool)> {
    let inserted = sqlx::query(
        "INSERT INTO modules (tenant, digest, size, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, digest) DO NOTHING",
    )
    .bind(p.tenant.as_str())
    .bind(p.digest.to_string())
    .bind(p.bytes.len() as i64)
    .bind(kind_str(p.kind))
    .bind(&p.bytes)
    .bind(p.now)
    .execute(&s.writer)
    .await?
    .rows_affected()
        == 1;
    let record = get(s, &p.tenant, &p.digest).await?;
    Ok((record, inserted))
}

pub(super) async fn get(s: &SqliteStore, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord> {
    sqlx::query_as::<_, ModuleRow>(
        "SELECT digest, size, kind, created_at FROM modules WHERE tenant = ? AND digest = ?",
    )
    .bind(tenant.as_str())
    .bind(digest.to_string())
    .fetch_optional(&s.writer)
    .await?
    .ok_or_else(|| rules::module_missing(digest))?
    .try_into()
}

pub(super) async fn bytes(s: &SqliteStore, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>> {
    sqlx::query_scalar::<_, Vec<u8>>("SELECT bytes FROM modules WHERE tenant = ? AND digest = ?")
        .bind(tenant.as_str())
        .bind(digest.to_string())
        .fetch_optional(&s.reader)
        .await?
        .ok_or_else(|| rules::module_missing(digest))
}

pub(super) async fn list(s: &SqliteStore, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>> {
    sqlx::query_as::<_, ModuleRow>(
        "SELECT digest, size, kind, created_at FROM modules WHERE tenant = ? ORDER BY created_at DESC, digest",
    )
    .bind(tenant.as_str())
    .fetch_all(&s.reader)
    .await?
    .into_iter()
    .map(ModuleRecord::try_from)
    .collect()
}

pub(super) async fn delete(s: &SqliteStore, tenant: &TenantId, digest: &Digest) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    let d = digest.to_string();
    let users: Vec<String> =
        sqlx::query_scalar("SELECT name FROM aliases WHERE tenant = ? AND module = ? ORDER BY name")
            .bind(tenant.as_str())
            .bind(&d)
            .fetch_all(&mut *tx)
            .await?;
    let pending: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND module = ? AND status NOT IN {TERMINAL}"
    ))
    .bind(tenant.as_str())
    .bind(&d)
    .fetch_one(&mut *tx)
    .await?;
    rules::module_deletable(digest, &users, pending)?;
    let deleted = sqlx::query("DELETE FROM modules WHERE tenant = ? AND digest = ?")
        .bind(tenant.as_str())
        .bind(&d)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(rules::module_missing(digest));
    }
    tx.commit().await?;
    Ok(())
}
