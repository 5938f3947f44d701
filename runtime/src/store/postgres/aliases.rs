//! `aliases` and `alias_versions`: names pointing at modules, with a bounded
//! history. Each write holds the alias's advisory lock (its next version is
//! read, then written) and the module it points to (FOR KEY SHARE: a delete
//! of the module waits, then sees the alias).

use sqlx::{PgConnection, Postgres, Transaction};

use super::{Lock, PgStore, lock};
use crate::domain::{AliasName, Digest, TenantId};
use crate::store::rows::{AliasRow, AliasVersionRow, alias_config_json};
use crate::store::rules;
use crate::store::{
    AliasConfig, AliasHistory, AliasRecord, AliasRollback, AliasSet, AliasVersion, StoreResult,
};

/// Whether the module exists, held (FOR KEY SHARE) until the transaction ends.
async fn module_held(conn: &mut PgConnection, tenant: &TenantId, module: &Digest) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM modules WHERE tenant = $1 AND digest = $2 FOR KEY SHARE")
        .bind(tenant.as_str())
        .bind(module.to_string())
        .fetch_optional(conn)
        .await?
        .is_some())
}

pub(super) async fn set(s: &PgStore, p: AliasSet) -> StoreResult<AliasRecord> {
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Alias(&p.tenant, &p.name)).await?;
    if !module_held(&mut tx, &p.tenant, &p.module).await? {
        return Err(rules::module_missing(&p.module));
    }
    let record = put_alias_version(&mut tx, &p.tenant, &p.name, &p.module, &p.config, p.now).await?;
    prune_alias_versions(&mut tx, &p.tenant, &p.name, record.version, p.keep_versions).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn get(s: &PgStore, tenant: &TenantId, name: &AliasName) -> StoreResult<AliasRecord> {
    sqlx::query_as::<_, AliasRow>(
        "SELECT name, version, module, config, updated_at FROM aliases WHERE tenant = $1 AND name = $2",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| rules::alias_missing(name))?
    .try_into()
}

pub(super) async fn history(s: &PgStore, p: AliasHistory) -> StoreResult<Vec<AliasVersion>> {
    sqlx::query_as::<_, AliasVersionRow>(
        "SELECT version, module, config, created_at FROM alias_versions
         WHERE tenant = $1 AND name = $2 AND version < $3 ORDER BY version DESC LIMIT $4",
    )
    .bind(p.tenant.as_str())
    .bind(p.name.as_str())
    .bind(p.before.unwrap_or(i64::MAX))
    .bind(i64::from(p.limit))
    .fetch_all(&s.pool)
    .await?
    .into_iter()
    .map(AliasVersion::try_from)
    .collect()
}

pub(super) async fn list(s: &PgStore, tenant: &TenantId) -> StoreResult<Vec<AliasRecord>> {
    sqlx::query_as::<_, AliasRow>(
        "SELECT name, version, module, config, updated_at FROM aliases WHERE tenant = $1 ORDER BY name",
    )
    .bind(tenant.as_str())
    .fetch_all(&s.pool)
    .await?
    .into_iter()
    .map(AliasRecord::try_from)
    .collect()
}

pub(super) async fn rollback(s: &PgStore, p: AliasRollback) -> StoreResult<AliasRecord> {
    let (tenant, name, now) = (&p.tenant, &p.name, p.now);
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Alias(tenant, name)).await?;
    let current: i64 = sqlx::query_scalar("SELECT version FROM aliases WHERE tenant = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| rules::alias_missing(name))?;
    let previous = sqlx::query_as::<_, AliasVersionRow>(
        "SELECT version, module, config, created_at FROM alias_versions
         WHERE tenant = $1 AND name = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .bind(current - 1)
    .fetch_optional(&mut *tx)
    .await?
    .map(AliasVersion::try_from)
    .transpose()?;
    let target = rules::rollback_target(name, current, previous)?;
    let present = module_held(&mut tx, tenant, &target.module).await?;
    rules::rollback_module(name, &target, present)?;
    let record = put_alias_version(&mut tx, tenant, name, &target.module, &target.config, now).await?;
    prune_alias_versions(&mut tx, tenant, name, record.version, p.keep_versions).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn delete(s: &PgStore, tenant: &TenantId, name: &AliasName) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Alias(tenant, name)).await?;
    let deleted = sqlx::query("DELETE FROM aliases WHERE tenant = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(rules::alias_missing(name));
    }
    for delete in [
        "DELETE FROM alias_versions WHERE tenant = $1 AND name = $2",
        // A new alias of the same name starts without the old one's secrets.
        "DELETE FROM alias_secrets WHERE tenant = $1 AND alias = $2",
        // ... and without its limits (`store::alias_limits_name`).
        "DELETE FROM queues WHERE name = '@' || $1 || '/' || $2",
    ] {
        sqlx::query(delete).bind(tenant.as_str()).bind(name.as_str()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes the versions of an alias older than the newest `keep` (at least the
/// current one and the one before it are kept, so rollback always works).
async fn prune_alias_versions(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    name: &AliasName,
    current: i64,
    keep: u32,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM alias_versions WHERE tenant = $1 AND name = $2 AND version <= $3")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .bind(rules::pruned_up_to(current, keep))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes a new current version of an alias and its history row (under the
/// alias's lock).
async fn put_alias_version(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    name: &AliasName,
    module: &Digest,
    config: &AliasConfig,
    now: i64,
) -> StoreResult<AliasRecord> {
    let version: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM alias_versions WHERE tenant = $1 AND name = $2",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let config_json = alias_config_json(config);
    sqlx::query(
        "INSERT INTO aliases (tenant, name, version, module, config, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, name) DO UPDATE SET version = $3, module = $4, config = $5, updated_at = $6",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .bind(version)
    .bind(module.to_string())
    .bind(&config_json)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO alias_versions (tenant, name, version, module, config, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .bind(version)
    .bind(module.to_string())
    .bind(&config_json)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(AliasRecord { name: name.clone(), version, module: *module, config: config.clone(), updated_at: now })
}
