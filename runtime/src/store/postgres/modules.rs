//! `modules`: content-addressed plugin bytes (BYTEA), per tenant.

use super::{Lock, PgStore, lock, usage};
use crate::domain::time::now_ms;
use crate::domain::{Digest, TenantId};
use crate::store::rows::{ModuleRow, kind_str};
use crate::store::rules::{self, TERMINAL};
use crate::store::{ModulePut, ModuleRecord, StoreResult};

pub(super) async fn put(s: &PgStore, p: ModulePut) -> StoreResult<(ModuleRecord, bool)> {
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Modules(&p.tenant)).await?;
    let inserted = sqlx::query(
        "INSERT INTO modules (tenant, digest, size, kind, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, digest) DO NOTHING",
    )
    .bind(p.tenant.as_str())
    .bind(p.digest.to_string())
    .bind(p.bytes.len() as i64)
    .bind(kind_str(p.kind))
    .bind(&p.bytes)
    .bind(p.now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        // The usage gauge moves with the write that moves it.
        let after = usage::module_bytes(&mut tx, &p.tenant).await?;
        let before = after.saturating_sub(p.bytes.len() as u64);
        usage::modules_changed(&mut tx, &p.tenant, p.now, before, after).await?;
    }
    tx.commit().await?;
    let record = get(s, &p.tenant, &p.digest).await?;
    Ok((record, inserted))
}

pub(super) async fn get(s: &PgStore, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord> {
    sqlx::query_as::<_, ModuleRow>(
        "SELECT digest, size, kind, created_at FROM modules WHERE tenant = $1 AND digest = $2",
    )
    .bind(tenant.as_str())
    .bind(digest.to_string())
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| rules::module_missing(digest))?
    .try_into()
}

pub(super) async fn bytes(s: &PgStore, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>> {
    sqlx::query_scalar::<_, Vec<u8>>("SELECT bytes FROM modules WHERE tenant = $1 AND digest = $2")
        .bind(tenant.as_str())
        .bind(digest.to_string())
        .fetch_optional(&s.pool)
        .await?
        .ok_or_else(|| rules::module_missing(digest))
}

pub(super) async fn list(s: &PgStore, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>> {
    sqlx::query_as::<_, ModuleRow>(
        "SELECT digest, size, kind, created_at FROM modules WHERE tenant = $1
         ORDER BY created_at DESC, digest",
    )
    .bind(tenant.as_str())
    .fetch_all(&s.pool)
    .await?
    .into_iter()
    .map(ModuleRecord::try_from)
    .collect()
}

pub(super) async fn delete(s: &PgStore, tenant: &TenantId, digest: &Digest) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Modules(tenant)).await?;
    let d = digest.to_string();
    // The row first: an alias write that checked this module holds it (FOR KEY
    // SHARE) until it commits, so the checks below see that alias.
    sqlx::query("SELECT 1 FROM modules WHERE tenant = $1 AND digest = $2 FOR UPDATE")
        .bind(tenant.as_str())
        .bind(&d)
        .execute(&mut *tx)
        .await?;
    let users: Vec<String> =
        sqlx::query_scalar("SELECT name FROM aliases WHERE tenant = $1 AND module = $2 ORDER BY name")
            .bind(tenant.as_str())
            .bind(&d)
            .fetch_all(&mut *tx)
            .await?;
    let pending: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND module = $2 AND status NOT IN {TERMINAL}"
    ))
    .bind(tenant.as_str())
    .bind(&d)
    .fetch_one(&mut *tx)
    .await?;
    rules::module_deletable(digest, &users, pending)?;
    let deleted: Option<i64> =
        sqlx::query_scalar("DELETE FROM modules WHERE tenant = $1 AND digest = $2 RETURNING size")
            .bind(tenant.as_str())
            .bind(&d)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(size) = deleted else {
        return Err(rules::module_missing(digest));
    };
    // The usage gauge, on the day of the delete (the trait's delete takes no time).
    let after = usage::module_bytes(&mut tx, tenant).await?;
    let before = after.saturating_add(size.max(0) as u64);
    usage::modules_changed(&mut tx, tenant, now_ms(), before, after).await?;
    tx.commit().await?;
    Ok(())
}
