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
mod bulk;
mod callbacks;
mod claim;
mod jobs;
mod keys;
mod kv;
mod leases;
mod list;
mod modules;
mod nodes;
mod notices;
mod queues;
mod schedules;
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

super::impl_store!(PgStore, {
    async fn job_list(&self, p: JobList) -> StoreResult<JobListPage> {
        list::job_list(&self.pool, p).await
    }
    fn shared(&self) -> bool {
        true
    }
    async fn store_ping(&self) -> StoreResult<()> {
        // A read of the schema: the server answers, and this is a wasmq database.
        sqlx::query("SELECT 1 FROM tenants LIMIT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn notices(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<crate::store::Notice>>> {
        Ok(Some(notices::listen(self).await?))
    }

    async fn relay(&self, message: crate::store::Relay) -> StoreResult<()> {
        notices::relay(self, message).await
    }
});

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
