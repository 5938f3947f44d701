//! `kv` (with `kv_stores`, kept by triggers) and `alias_secrets`.
//!
//! A write runs in a transaction that first takes the tenant's key-value
//! lock (`Lock::Kv`): the change, then the store's and the tenant's sizes
//! checked against the limits (`rules::kv_within`; the transaction is
//! dropped, so rolled back, when over), then its usage. Without the lock, two
//! nodes writing at once could each pass the limit the other's write breaks.

use sqlx::{PgConnection, Postgres, Transaction};

use super::{Lock, PgStore, lock, usage};
use crate::domain::{AliasName, CapabilityLimits, KvStoreName, TenantId};
use crate::store::rules;
use crate::store::{KvIncrement, KvKey, KvList, KvSet, KvStoreSize, SecretPut, SecretRecord, StoreResult};

pub(super) async fn get(s: &PgStore, k: &KvKey) -> StoreResult<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT value FROM kv WHERE tenant = $1 AND store = $2 AND key = $3")
        .bind(k.tenant.as_str())
        .bind(k.store.as_str())
        .bind(&k.key)
        .fetch_optional(&s.pool)
        .await?)
}

/// A write's transaction, holding the tenant's key-value lock, and what the
/// tenant's stores held before it.
async fn begin_write(s: &PgStore, tenant: &TenantId) -> StoreResult<(Transaction<'static, Postgres>, u64)> {
    let mut tx = s.tx().await?;
    lock(&mut tx, Lock::Kv(tenant)).await?;
    let before = tenant_bytes(&mut tx, tenant).await?;
    Ok((tx, before))
}

pub(super) async fn set(s: &PgStore, p: KvSet) -> StoreResult<()> {
    let (mut tx, before) = begin_write(s, &p.at.tenant).await?;
    sqlx::query(
        "INSERT INTO kv (tenant, store, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
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

pub(super) async fn delete(s: &PgStore, k: &KvKey, now: i64) -> StoreResult<bool> {
    let (mut tx, before) = begin_write(s, &k.tenant).await?;
    let deleted = sqlx::query("DELETE FROM kv WHERE tenant = $1 AND store = $2 AND key = $3")
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

/// One statement adds `$4` to the canonical decimal i64 stored under the key
/// (absent: 0) and answers the new value; it changes nothing (and answers no
/// row) when the stored value is not one (its bytes are read through
/// `encode(.., 'escape')`, where any byte that is not printable ASCII shows
/// as a backslash escape, so the pattern sees raw bytes and never fails on
/// invalid UTF-8), or the sum would leave i64 (summed as numeric, which does
/// not overflow). `ON CONFLICT ... WHERE` is checked before the new value is
/// computed.
const INCREMENT: &str = "
    INSERT INTO kv (tenant, store, key, value, updated_at)
    VALUES ($1, $2, $3, convert_to($4::text, 'UTF8'), $5)
    ON CONFLICT (tenant, store, key) DO UPDATE SET
        value = convert_to((encode(kv.value, 'escape')::numeric + $4)::text, 'UTF8'),
        updated_at = excluded.updated_at
    WHERE CASE WHEN encode(kv.value, 'escape') ~ '^(0|-?[1-9][0-9]{0,18})$'
               THEN encode(kv.value, 'escape')::numeric
                        BETWEEN -9223372036854775808 AND 9223372036854775807
                    AND encode(kv.value, 'escape')::numeric + $4
                        BETWEEN -9223372036854775808 AND 9223372036854775807
               ELSE false END
    RETURNING convert_from(value, 'UTF8')";

pub(super) async fn increment(s: &PgStore, p: KvIncrement) -> StoreResult<i64> {
    let (mut tx, before) = begin_write(s, &p.at.tenant).await?;
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
            sqlx::query_scalar("SELECT value FROM kv WHERE tenant = $1 AND store = $2 AND key = $3")
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

pub(super) async fn list(s: &PgStore, p: KvList) -> StoreResult<Vec<String>> {
    // Byte order: `key` is in the "C" collation, which compares UTF-8 bytes;
    // the prefix is matched as a prefix (`starts_with`), so `%` and `_` in it
    // mean nothing, and bounds the scan of the primary key from below.
    Ok(sqlx::query_scalar(
        "SELECT key FROM kv WHERE tenant = $1 AND store = $2
           AND key >= $3 AND starts_with(key, $3)
           AND ($4::text IS NULL OR key > $4)
         ORDER BY key LIMIT $5",
    )
    .bind(p.tenant.as_str())
    .bind(p.store.as_str())
    .bind(&p.prefix)
    .bind(&p.after)
    .bind(i64::from(p.limit))
    .fetch_all(&s.pool)
    .await?)
}

pub(super) async fn size(s: &PgStore, tenant: &TenantId, store: &KvStoreName) -> StoreResult<KvStoreSize> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT bytes, keys FROM kv_stores WHERE tenant = $1 AND store = $2")
            .bind(tenant.as_str())
            .bind(store.as_str())
            .fetch_optional(&s.pool)
            .await?;
    Ok(row.map_or_else(KvStoreSize::default, |(b, k)| KvStoreSize {
        bytes: b.max(0) as u64,
        keys: k.max(0) as u64,
    }))
}

/// The bytes of all `tenant`'s stores (inside the caller's transaction).
async fn tenant_bytes(conn: &mut PgConnection, tenant: &TenantId) -> StoreResult<u64> {
    let bytes: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(bytes), 0)::bigint FROM kv_stores WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_one(conn)
            .await?;
    Ok(bytes.max(0) as u64)
}

/// After a write: the limits, then the write counted and the tenant's gauge moved.
async fn written(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    store: &KvStoreName,
    before: u64,
    limits: &CapabilityLimits,
    now: i64,
) -> StoreResult<()> {
    let (bytes, keys): (i64, i64) =
        sqlx::query_as("SELECT bytes, keys FROM kv_stores WHERE tenant = $1 AND store = $2")
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

pub(super) async fn secret_put(s: &PgStore, p: SecretPut) -> StoreResult<SecretRecord> {
    let mut tx = s.tx().await?;
    // The alias's lock: the count below stands until this commits.
    lock(&mut tx, Lock::Alias(&p.tenant, &p.alias)).await?;
    alias_exists(&mut tx, &p.tenant, &p.alias).await?;
    sqlx::query(
        "INSERT INTO alias_secrets (tenant, alias, key, sealed, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, alias, key) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(p.tenant.as_str())
    .bind(p.alias.as_str())
    .bind(&p.key)
    .bind(&p.sealed)
    .bind(p.now)
    .execute(&mut *tx)
    .await?;
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alias_secrets WHERE tenant = $1 AND alias = $2")
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
    s: &PgStore,
    tenant: &TenantId,
    alias: &AliasName,
) -> StoreResult<Vec<SecretRecord>> {
    let mut conn = s.pool.acquire().await?;
    alias_exists(&mut conn, tenant, alias).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, updated_at FROM alias_secrets WHERE tenant = $1 AND alias = $2 ORDER BY key",
    )
    .bind(tenant.as_str())
    .bind(alias.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(key, updated_at)| SecretRecord { key, updated_at }).collect())
}

pub(super) async fn secret_delete(
    s: &PgStore,
    tenant: &TenantId,
    alias: &AliasName,
    key: &str,
) -> StoreResult<()> {
    let deleted = sqlx::query("DELETE FROM alias_secrets WHERE tenant = $1 AND alias = $2 AND key = $3")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .bind(key)
        .execute(&s.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(rules::secret_missing(alias, key));
    }
    Ok(())
}

pub(super) async fn secret_get(
    s: &PgStore,
    tenant: &TenantId,
    alias: &AliasName,
    key: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT sealed FROM alias_secrets WHERE tenant = $1 AND alias = $2 AND key = $3")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .bind(key)
        .fetch_optional(&s.pool)
        .await?)
}

async fn alias_exists(conn: &mut PgConnection, tenant: &TenantId, alias: &AliasName) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM aliases WHERE tenant = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .fetch_optional(conn)
        .await?;
    found.map(drop).ok_or_else(|| rules::alias_missing(alias))
}
