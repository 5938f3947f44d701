//! `kv` (with `kv_stores`, kept by triggers) and `alias_secrets`.
//!
//! A write runs on the writer in a transaction: the change, then the store's
//! and the tenant's sizes checked against the limits (`rules::kv_within`;
//! the transaction is dropped, so rolled back, when over), then its usage.

use sqlx::{Sqlite, Transaction};

use super::{SqliteStore, usage};
use crate::domain::{AliasName, CapabilityLimits, KvStoreName, TenantId};
use crate::store::rules;
use crate::store::{KvIncrement, KvKey, KvList, KvSet, KvStoreSize, SecretPut, SecretRecord, StoreResult};

pub(super) async fn get(s: &SqliteStore, k: &KvKey) -> StoreResult<Option<Vec<u8>>> {
    // The writer: a value set a moment ago (by this node or a job) is seen at once.
    Ok(sqlx::query_scalar("SELECT value FROM kv WHERE tenant = ? AND store = ? AND key = ?")
        .bind(k.tenant.as_str())
        .bind(k.store.as_str())
        .bind(&k.key)
        .fetch_optional(&s.writer)
        .await?)
}

pub(super) async fn set(s: &SqliteStore, p: KvSet) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    let before = tenant_bytes(&mut tx, &p.at.tenant).await?;
    sqlx::query(
        "INSERT INTO kv (tenant, store, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, store, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(p.at.tenant.as_str())
    .bind(p.at.store.as_str())
    .bind(&p.at.key)
    .bind(&p.value)
    .bind(p.now)
    .execute(&mut *tx)
    .await?;
    written(&mut tx, &p.at.tenant, &p.at.store, before, &p.limits, p.now).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(s: &SqliteStore, k: &KvKey, now: i64) -> StoreResult<bool> {
    let mut tx = s.tx().await?;
    let before = tenant_bytes(&mut tx, &k.tenant).await?;
    let deleted = sqlx::query("DELETE FROM kv WHERE tenant = ? AND store = ? AND key = ?")
        .bind(k.tenant.as_str())
        .bind(k.store.as_str())
        .bind(&k.key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        // Nothing changed: nothing counted.
        return Ok(false);
    }
    // A delete only frees space: no limit applies.
    written(&mut tx, &k.tenant, &k.store, before, &CapabilityLimits::default(), now).await?;
    tx.commit().await?;
    Ok(true)
}

/// One statement adds `delta` to the canonical decimal i64 stored under the
/// key (absent: 0) and answers the new value; it changes nothing (and answers
/// no row) when the stored value is not one, or the sum would overflow
/// (SQLite would turn it into a float).
const INCREMENT: &str = "
    INSERT INTO kv (tenant, store, key, value, updated_at)
    VALUES (?1, ?2, ?3, CAST(CAST(?4 AS TEXT) AS BLOB), ?5)
    ON CONFLICT (tenant, store, key) DO UPDATE SET
        value = CAST(CAST(CAST(CAST(value AS TEXT) AS INTEGER) + ?4 AS TEXT) AS BLOB),
        updated_at = excluded.updated_at
    WHERE CAST(CAST(CAST(value AS TEXT) AS INTEGER) AS TEXT) = CAST(value AS TEXT)
      AND CASE WHEN ?4 >= 0 THEN CAST(CAST(value AS TEXT) AS INTEGER) <= 9223372036854775807 - ?4
               ELSE CAST(CAST(value AS TEXT) AS INTEGER) >= -9223372036854775807 - 1 - ?4 END
    RETURNING CAST(value AS TEXT)";

pub(super) async fn increment(s: &SqliteStore, p: KvIncrement) -> StoreResult<i64> {
    let mut tx = s.tx().await?;
    let before = tenant_bytes(&mut tx, &p.at.tenant).await?;
    let new: Option<String> = sqlx::query_scalar(INCREMENT)
        .bind(p.at.tenant.as_str())
        .bind(p.at.store.as_str())
        .bind(&p.at.key)
        .bind(p.delta)
        .bind(p.now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(new) = new else {
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM kv WHERE tenant = ? AND store = ? AND key = ?")
                .bind(p.at.tenant.as_str())
                .bind(p.at.store.as_str())
                .bind(&p.at.key)
                .fetch_optional(&mut *tx)
                .await?;
        return Err(rules::kv_not_incremented(&p.at.key, stored.as_deref(), p.delta));
    };
    let new = new.parse::<i64>().map_err(|_| crate::store::rows::corrupt(format!("kv increment {new:?}")))?;
    written(&mut tx, &p.at.tenant, &p.at.store, before, &p.limits, p.now).await?;
    tx.commit().await?;
    Ok(new)
}

pub(super) async fn list(s: &SqliteStore, p: KvList) -> StoreResult<Vec<String>> {
    // Byte order: keys compared as BLOBs (their UTF-8 bytes); the prefix as a
    // byte range, so `%` and `_` in it mean nothing.
    Ok(sqlx::query_scalar(
        "SELECT key FROM kv WHERE tenant = ?1 AND store = ?2
           AND substr(CAST(key AS BLOB), 1, length(CAST(?3 AS BLOB))) = CAST(?3 AS BLOB)
           AND (?4 IS NULL OR CAST(key AS BLOB) > CAST(?4 AS BLOB))
         ORDER BY CAST(key AS BLOB) LIMIT ?5",
    )
    .bind(p.tenant.as_str())
    .bind(p.store.as_str())
    .bind(&p.prefix)
    .bind(&p.after)
    .bind(p.limit)
    .fetch_all(&s.reader)
    .await?)
}

pub(super) async fn size(
    s: &SqliteStore,
    tenant: &TenantId,
    store: &KvStoreName,
) -> StoreResult<KvStoreSize> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT bytes, keys FROM kv_stores WHERE tenant = ? AND store = ?")
            .bind(tenant.as_str())
            .bind(store.as_str())
            .fetch_optional(&s.writer)
            .await?;
    Ok(row.map_or_else(KvStoreSize::default, |(b, k)| KvStoreSize {
        bytes: b.max(0) as u64,
        keys: k.max(0) as u64,
    }))
}

/// The bytes of all `tenant`'s stores (inside `tx`).
async fn tenant_bytes(tx: &mut Transaction<'_, Sqlite>, tenant: &TenantId) -> StoreResult<u64> {
    let bytes: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(bytes), 0) FROM kv_stores WHERE tenant = ?")
        .bind(tenant.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(bytes.max(0) as u64)
}

/// After a write: the limits, then the write counted and the tenant's gauge moved.
async fn written(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    store: &KvStoreName,
    before: u64,
    limits: &CapabilityLimits,
    now: i64,
) -> StoreResult<()> {
    let (bytes, keys): (i64, i64) =
        sqlx::query_as("SELECT bytes, keys FROM kv_stores WHERE tenant = ? AND store = ?")
            .bind(tenant.as_str())
            .bind(store.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or((0, 0));
    let after = tenant_bytes(tx, tenant).await?;
    let size = KvStoreSize { bytes: bytes.max(0) as u64, keys: keys.max(0) as u64 };
    rules::kv_within(store, size, after, limits)?;
    let mut tally = rules::UsageTally::default();
    tally.kv_write(tenant, now);
    usage::add(tx, &tally).await?;
    if after != before {
        usage::gauge_changed(tx, usage::Gauge::Kv, tenant, now, before, after).await?;
    }
    Ok(())
}

pub(super) async fn secret_put(s: &SqliteStore, p: SecretPut) -> StoreResult<SecretRecord> {
    let mut tx = s.tx().await?;
    alias_exists(&mut tx, &p.tenant, &p.alias).await?;
    sqlx::query(
        "INSERT INTO alias_secrets (tenant, alias, key, sealed, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, alias, key) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(p.tenant.as_str())
    .bind(p.alias.as_str())
    .bind(&p.key)
    .bind(&p.sealed)
    .bind(p.now)
    .execute(&mut *tx)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alias_secrets WHERE tenant = ? AND alias = ?")
        .bind(p.tenant.as_str())
        .bind(p.alias.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if count > i64::from(p.max_secrets) {
        return Err(rules::too_many_secrets(&p.alias, p.max_secrets));
    }
    tx.commit().await?;
    Ok(SecretRecord { key: p.key, updated_at: p.now })
}

pub(super) async fn secret_list(
    s: &SqliteStore,
    tenant: &TenantId,
    alias: &AliasName,
) -> StoreResult<Vec<SecretRecord>> {
    let mut tx = s.writer.begin().await?;
    alias_exists(&mut tx, tenant, alias).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, updated_at FROM alias_secrets WHERE tenant = ? AND alias = ? ORDER BY key",
    )
    .bind(tenant.as_str())
    .bind(alias.as_str())
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(key, updated_at)| SecretRecord { key, updated_at }).collect())
}

pub(super) async fn secret_delete(
    s: &SqliteStore,
    tenant: &TenantId,
    alias: &AliasName,
    key: &str,
) -> StoreResult<()> {
    let deleted = sqlx::query("DELETE FROM alias_secrets WHERE tenant = ? AND alias = ? AND key = ?")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .bind(key)
        .execute(&s.writer)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(rules::secret_missing(alias, key));
    }
    Ok(())
}

pub(super) async fn secret_get(
    s: &SqliteStore,
    tenant: &TenantId,
    alias: &AliasName,
    key: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT sealed FROM alias_secrets WHERE tenant = ? AND alias = ? AND key = ?")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .bind(key)
        .fetch_optional(&s.writer)
        .await?)
}

async fn alias_exists(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    alias: &AliasName,
) -> StoreResult<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM aliases WHERE tenant = ? AND name = ?")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    found.map(drop).ok_or_else(|| rules::alias_missing(alias))
}
