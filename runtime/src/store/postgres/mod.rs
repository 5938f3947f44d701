//! PostgreSQL backend: several wasmq nodes share one database. A pool of
//! connections (`max_connections` in the URL's query, else
//! [`DEFAULT_POOL_SIZE`]); migrations from `migrations/postgres` run on open
//! (sqlx holds an advisory lock while it migrates, so nodes starting together
//! migrate once).
//!
//! What SQLite's single writer serializes, this backend makes hold across
//! nodes and connections:
//! - claims take jobs `FOR NO KEY UPDATE SKIP LOCKED` in claim order, so two
//!   claimers never take one job and never wait for each other's rows; a
//!   claim that plans for a tenant with a `max_running` bound first takes that
//!   tenant's advisory lock (`claim::lock_bounded`), so claimers count its running
//!   jobs one after the other (`claim`);
//! - callback deliveries are claimed like jobs (`callbacks`);
//! - an idempotency key is one row by a unique index: the insert does nothing
//!   on a conflict and reads the row that won (`jobs`);
//! - completions, heartbeats and releases lock the jobs they name in id order,
//!   and every write transaction takes its rows in one order (jobs, then
//!   batches, then usage), so two of them never wait for each other in a
//!   cycle; the rescuer skips rows another transaction holds;
//! - "is this batch done?" is asked after taking the batch's row lock, so two
//!   transactions that end a batch's last jobs cannot both miss it (`batches`);
//! - checks made before a write (key-value limits, an alias's next version,
//!   a module still unused) run under an advisory lock of what they guard
//!   ([`Lock`]).
//!
//! Rows are locked `FOR NO KEY UPDATE` (the strength of an UPDATE that keeps
//! the key), which foreign-key checks (`usage_runs` names its job) do not wait for.
//!
//! Times are i64 unix milliseconds and JSON is TEXT, as in SQLite, so the rows
//! decode through the same `store::rows` types; row lists travel as one JSON
//! parameter read with `jsonb_to_recordset`.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

mod aliases;
mod batches;
mod callbacks;
mod claim;
mod jobs;
mod keys;
mod kv;
mod leases;
mod list;
mod modules;
mod notices;
mod tenants;
mod usage;

use super::keys::*;
use super::records::*;
use super::tenants::*;
use super::usage::{UsageQuery, UsageRecord};
use super::{BackendError, Store, StoreError, StoreResult};
use crate::domain::{AliasName, Digest, KvStoreName, TenantId};

/// Connections in the pool when the URL does not say (`?max_connections=N`).
pub(super) const DEFAULT_POOL_SIZE: u32 = 10;

/// The query parameter of the database URL that sizes the pool (not passed on
/// to the driver).
const POOL_SIZE_PARAM: &str = "max_connections";

/// The PostgreSQL store.
#[derive(Clone)]
pub(super) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`) and
    /// applies pending migrations.
    pub(super) async fn connect(url: &str) -> StoreResult<Self> {
        let (url, size) = pool_size(url)?;
        let options = PgConnectOptions::from_str(&url)?;
        // Migrated over a connection of its own, made once: a database that
        // cannot be reached fails the start at once (the pool would retry a
        // refused connection until its acquire timeout).
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(BackendError::new(e)))?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

/// Takes the pool size out of the URL's query: the URL without it, and the size.
fn pool_size(url: &str) -> StoreResult<(String, u32)> {
    let bad = |why: String| StoreError::Unsupported(format!("the PostgreSQL database URL: {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut size = DEFAULT_POOL_SIZE;
    let mut kept = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if k == POOL_SIZE_PARAM {
            size = v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                bad(format!("{POOL_SIZE_PARAM}={v:?} is not a number of connections from 1 to 1000"))
            })?;
        } else {
            kept.push((k.into_owned(), v.into_owned()));
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.into(), size))
}

/// What a transaction-scoped advisory lock guards: held from [`lock`] to
/// the end of the transaction, so writers of the same thing on any node take
/// turns while writers of other things go on. (A claim's locks of bounded
/// tenants are taken apart, several at once: `claim::lock_bounded`.)
pub(super) enum Lock<'a> {
    /// A tenant's key-value stores: a write's limits are checked against
    /// sizes no other write changes meanwhile.
    Kv(&'a TenantId),
    /// A tenant's modules: the storage gauge moves by one write at a time,
    /// and a delete's checks stand until it commits.
    Modules(&'a TenantId),
    /// An alias: its next version number, and its secrets' count.
    Alias(&'a TenantId, &'a AliasName),
}

/// Takes `what`'s advisory lock for the rest of the transaction (waiting for
/// a transaction that holds it). The key hashes a text naming what it guards
/// with seed 1; the claims' keys hash the bare tenant id with seed 0, so no
/// key of one kind stands for another.
pub(super) async fn lock(conn: &mut PgConnection, what: Lock<'_>) -> StoreResult<()> {
    let key = match what {
        Lock::Kv(t) => format!("kv {t}"),
        Lock::Modules(t) => format!("modules {t}"),
        Lock::Alias(t, a) => format!("alias {t} {a}"),
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))").bind(key).execute(conn).await?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn module_put(&self, p: ModulePut) -> StoreResult<(ModuleRecord, bool)> {
        modules::put(self, p).await
    }
    async fn module_get(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord> {
        modules::get(self, tenant, digest).await
    }
    async fn module_bytes(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>> {
        modules::bytes(self, tenant, digest).await
    }
    async fn module_list(&self, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>> {
        modules::list(self, tenant).await
    }
    async fn module_delete(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<()> {
        modules::delete(self, tenant, digest).await
    }

    async fn alias_set(&self, p: AliasSet) -> StoreResult<AliasRecord> {
        aliases::set(self, p).await
    }
    async fn alias_get(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<AliasRecord> {
        aliases::get(self, tenant, name).await
    }
    async fn alias_history(&self, p: AliasHistory) -> StoreResult<Vec<AliasVersion>> {
        aliases::history(self, p).await
    }
    async fn alias_list(&self, tenant: &TenantId) -> StoreResult<Vec<AliasRecord>> {
        aliases::list(self, tenant).await
    }
    async fn alias_rollback(&self, p: AliasRollback) -> StoreResult<AliasRecord> {
        aliases::rollback(self, p).await
    }
    async fn alias_delete(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<()> {
        aliases::delete(self, tenant, name).await
    }

    async fn job_insert(&self, new: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>> {
        jobs::insert(self, new, batch).await
    }
    async fn job_get(&self, tenant: &TenantId, id: &str) -> StoreResult<JobRecord> {
        jobs::get(self, tenant, id).await
    }
    async fn job_watch(&self, tenant: &TenantId, id: &str) -> StoreResult<JobWatch> {
        jobs::watch(self, tenant, id).await
    }
    async fn job_list(&self, p: JobList) -> StoreResult<JobListPage> {
        list::job_list(&self.pool, p).await
    }
    async fn job_claim(&self, p: JobClaim) -> StoreResult<Vec<JobRecord>> {
        claim::claim(self, p).await
    }
    async fn job_heartbeat(&self, p: JobHeartbeat) -> StoreResult<Vec<Lease>> {
        leases::heartbeat(self, p).await
    }
    async fn job_complete(&self, completions: Vec<JobCompletion>) -> StoreResult<Vec<Lease>> {
        leases::complete(self, completions).await
    }
    async fn job_progress(&self, lease: &Lease, percent: u8, message: &str) -> StoreResult<bool> {
        leases::progress(self, lease, percent, message).await
    }
    async fn job_cancel(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
        jobs::cancel(self, tenant, id, now).await
    }
    async fn job_retry(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
        jobs::retry(self, tenant, id, now).await
    }
    async fn job_rescue_expired(&self, now: i64) -> StoreResult<Rescued> {
        leases::rescue_expired(self, now).await
    }
    async fn job_release(&self, owner: &str) -> StoreResult<u64> {
        leases::release(self, owner).await
    }
    async fn job_waiting(&self) -> StoreResult<Vec<(TenantId, u64)>> {
        jobs::waiting(self).await
    }
    async fn job_prune(&self, finished_before: i64, limit: u32) -> StoreResult<u64> {
        jobs::prune(self, finished_before, limit).await
    }
    async fn job_next_due(&self) -> StoreResult<Option<i64>> {
        jobs::next_due(self).await
    }

    async fn callback_due(&self, p: CallbackClaim) -> StoreResult<Vec<CallbackDue>> {
        callbacks::due(self, p).await
    }
    async fn callback_record(&self, p: CallbackRecord) -> StoreResult<()> {
        callbacks::record(self, p).await
    }

    async fn batch_get(&self, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
        batches::get(self, tenant, id).await
    }

    async fn status_counts(&self, tenant: &TenantId) -> StoreResult<StatusCounts> {
        jobs::status_counts(self, tenant).await
    }

    async fn store_ping(&self) -> StoreResult<()> {
        // A read of the schema: the server answers, and this is a wasmq database.
        sqlx::query("SELECT 1 FROM tenants LIMIT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn notices(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<crate::store::Notice>>> {
        Ok(Some(notices::listen(self).await?))
    }

    async fn tenant_create(&self, p: TenantCreate) -> StoreResult<TenantRecord> {
        tenants::create(self, p).await
    }
    async fn tenant_get(&self, id: &TenantId) -> StoreResult<TenantRecord> {
        tenants::get(self, id).await
    }
    async fn tenant_list(&self) -> StoreResult<Vec<TenantRecord>> {
        tenants::list(self).await
    }
    async fn tenant_update(&self, p: TenantUpdate) -> StoreResult<TenantRecord> {
        tenants::update(self, p).await
    }
    async fn tenant_delete(&self, id: &TenantId) -> StoreResult<()> {
        tenants::delete(self, id).await
    }
    async fn token_create(&self, p: TokenCreate) -> StoreResult<TokenRecord> {
        tenants::token_create(self, p).await
    }
    async fn token_list(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        tenants::token_list(self, tenant).await
    }
    async fn token_revoke(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        tenants::token_revoke(self, tenant, id).await
    }
    async fn token_lookup(&self, hash: &blake3::Hash, now: i64) -> StoreResult<Option<TokenGrant>> {
        tenants::token_lookup(self, hash, now).await
    }

    async fn usage_list(&self, q: UsageQuery) -> StoreResult<Vec<UsageRecord>> {
        usage::list(self, q).await
    }
    async fn key_create(&self, p: KeyCreate) -> StoreResult<KeyRecord> {
        keys::create(self, p).await
    }
    async fn key_list(&self, tenant: &TenantId) -> StoreResult<Vec<KeyRecord>> {
        keys::list(self, tenant).await
    }
    async fn key_revoke(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        keys::revoke(self, tenant, id).await
    }
    async fn key_lookup(&self, id: &str) -> StoreResult<Option<KeyGrant>> {
        keys::lookup(self, id).await
    }

    async fn kv_get(&self, k: &KvKey) -> StoreResult<Option<Vec<u8>>> {
        kv::get(self, k).await
    }
    async fn kv_set(&self, p: KvSet) -> StoreResult<()> {
        kv::set(self, p).await
    }
    async fn kv_delete(&self, k: &KvKey, now: i64) -> StoreResult<bool> {
        kv::delete(self, k, now).await
    }
    async fn kv_increment(&self, p: KvIncrement) -> StoreResult<i64> {
        kv::increment(self, p).await
    }
    async fn kv_list(&self, p: KvList) -> StoreResult<Vec<String>> {
        kv::list(self, p).await
    }
    async fn kv_size(&self, tenant: &TenantId, store: &KvStoreName) -> StoreResult<KvStoreSize> {
        kv::size(self, tenant, store).await
    }

    async fn secret_put(&self, p: SecretPut) -> StoreResult<SecretRecord> {
        kv::secret_put(self, p).await
    }
    async fn secret_list(&self, tenant: &TenantId, alias: &AliasName) -> StoreResult<Vec<SecretRecord>> {
        kv::secret_list(self, tenant, alias).await
    }
    async fn secret_delete(&self, tenant: &TenantId, alias: &AliasName, key: &str) -> StoreResult<()> {
        kv::secret_delete(self, tenant, alias, key).await
    }
    async fn secret_get(
        &self,
        tenant: &TenantId,
        alias: &AliasName,
        key: &str,
    ) -> StoreResult<Option<String>> {
        kv::secret_get(self, tenant, alias, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_comes_out_of_the_url() {
        let (url, size) = pool_size("postgres://u@db/wasmq").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@db/wasmq", DEFAULT_POOL_SIZE));
        let (url, size) = pool_size("postgres://u@db/wasmq?max_connections=25&sslmode=disable").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@db/wasmq?sslmode=disable", 25));
        let (url, _) = pool_size("postgresql://u@db/wasmq?max_connections=3").unwrap();
        assert_eq!(url, "postgresql://u@db/wasmq");
        for bad in ["0", "x", "1001"] {
            let err = pool_size(&format!("postgres://db/w?max_connections={bad}")).unwrap_err().to_string();
            assert!(err.contains("max_connections") && err.contains("1 to 1000"), "{err}");
        }
    }
}
