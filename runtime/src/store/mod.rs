//! Persistence layer: the [`Store`] trait every backend implements, its record
//! and parameter types, [`connect`] (the one place a backend is chosen, by the
//! URL's scheme), and one module per backend (`sqlite`, the embedded default;
//! `postgres`, for several nodes sharing one queue).
//!
//! Methods are noun-first (`job_insert`, `job_claim`, `job_complete`,
//! `job_rescue_expired`) and take parameter structs; every method is scoped by
//! tenant. The conformance suite in `tests/all/store/` runs against each
//! backend; extend it whenever semantics change.

mod keys;
mod postgres;
mod records;
mod rows;
mod rules;
mod sqlite;
mod tenants;
mod usage;

pub use keys::*;
pub use records::*;
pub use tenants::*;
pub use usage::*;

use std::sync::Arc;
use tokio::sync::mpsc;

use crate::domain::{AliasName, Digest, KvStoreName, TenantId};

/// Opens the store `url` names, by its scheme: `sqlite:` (a file, created if
/// missing) or `postgres:` / `postgresql:` (a database that exists, with a
/// pool of `max_connections` connections, 10 unless the URL's query says
/// `?max_connections=N`); either is migrated on open. This is the only place
/// a backend is named.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::PgStore::connect(url).await?)),
        _ => Err(StoreError::Unsupported(format!(
            "the database URL {:?} names no known backend: use sqlite://<file> or \
             postgres://<user>@<host>/<database> (set by `--database`, WASMQ_DATABASE_URL or `database` \
             in the config file)",
            redacted(url)
        ))),
    }
}

/// A change committed by some node that every node should act on now, not at
/// its next poll or lease renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Jobs became runnable (inserted, retried, requeued): claim. Also sent
    /// after the stream lost its connection, since what it missed is unknown.
    JobsRunnable,
    /// The running job with this id was cancelled: stop its run if it is here.
    Cancelled(String),
    /// A queue's controls changed (paused, resumed, limited): read them
    /// again before the next claim, and claim.
    QueuesChanged,
    /// Another node's event-stream traffic (see [`Relay`]).
    Relayed(Relay),
}

/// What the nodes of a cluster tell each other for their event streams
/// (`GET /v1/events`): best effort, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// Events a node published: its id on the first line, then one event's
    /// JSON per line.
    Events(String),
    /// The node with this id has event streams open (or had, lately):
    /// relay your events for a while.
    Demand(String),
    /// The node with this id started relaying: whoever has streams open,
    /// say so now.
    Hello(String),
}

/// `url` as it may be shown (logs, errors): its password, if any, masked.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        _ => url.to_string(),
    }
}

/// Why a store operation failed. `NotFound` and `Conflict` are the caller's
/// (4xx); `Database` is ours (5xx, logged).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (for this tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The operation conflicts with the record's state (e.g. deleting a module
    /// an alias points to, cancelling a finished job).
    #[error("{0}")]
    Conflict(String),
    /// A write would take a key-value store or its tenant past a limit
    /// (bytes, keys, the tenant's quota), or an increment met a value that is
    /// not an integer; the message names the limit or the key. The caller's
    /// (409), never retried as is; nothing was written.
    #[error("{0}")]
    Limit(String),
    /// The database failed (connection, I/O, migration, a statement): ours
    /// (5xx, logged). Opaque: no backend's error type shows above the store.
    #[error("database error: {0}")]
    Database(BackendError),
    /// The database URL names a backend this build does not have, or a
    /// setting its backend does not take; the server does not start.
    #[error("{0}")]
    Unsupported(String),
    /// A stored value could not be decoded (a bug or a corrupted row).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A job with this idempotency key exists, made by a different request
    /// (payload, alias or options). Nothing of the insert is written; the
    /// caller's fault (409), never retried as is.
    #[error("idempotency_key {key:?} was already used by a different request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
}

/// A backend's own failure, carried above the store as its message (and its
/// source chain, for logs) but not its type, so nothing above the store
/// depends on a database driver.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    /// Wraps a backend's error (or a message).
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(e.into())
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Every backend speaks sqlx: its errors are the backend's own.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(BackendError::new(e))
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The storage contract of wasmq. Implementations must be safe to share across
/// tasks and (for multi-node backends) across processes: `job_claim` hands each
/// runnable job to exactly one claimer.
///
/// Fencing: each claim of a job gets a token (a per-job counter that only
/// grows). Everything a run writes (heartbeat, progress, completion) presents
/// its [`Lease`] (job id and token), and the store applies it only while that
/// claim is current. A run that lost its claim (the job was cancelled, or
/// rescued after its node stalled and perhaps claimed again, even by the same
/// node) can therefore never overwrite the outcome or progress of the run that
/// holds the job now.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a module's bytes; returns the record and whether it was new.
    async fn module_put(&self, p: ModulePut) -> StoreResult<(ModuleRecord, bool)>;
    /// One module's metadata.
    async fn module_get(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord>;
    /// One module's bytes.
    async fn module_bytes(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>>;
    /// Every module of the tenant, newest first.
    async fn module_list(&self, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>>;
    /// Deletes a module; `Conflict` while an alias points to it.
    async fn module_delete(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<()>;

    /// Points an alias at a module with a config; the version counts up, and
    /// versions beyond the newest `keep_versions` are deleted.
    async fn alias_set(&self, p: AliasSet) -> StoreResult<AliasRecord>;
    /// One alias.
    async fn alias_get(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<AliasRecord>;
    /// A page of an alias's kept versions, newest first (none for an unknown alias).
    async fn alias_history(&self, p: AliasHistory) -> StoreResult<Vec<AliasVersion>>;
    /// Every alias of the tenant, by name.
    async fn alias_list(&self, tenant: &TenantId) -> StoreResult<Vec<AliasRecord>>;
    /// Re-applies the version before the current one as a new version (and
    /// prunes as `alias_set` does).
    async fn alias_rollback(&self, p: AliasRollback) -> StoreResult<AliasRecord>;
    /// Deletes an alias with its history and its secrets.
    async fn alias_delete(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<()>;

    /// Inserts jobs in one transaction (a batch, or one dispatch). A job whose
    /// idempotency key exists already is not inserted: the first job is returned
    /// with `created = false`, or, when the two requests' fingerprints differ,
    /// the whole insert fails with `IdempotencyConflict`. A batch's `total` is
    /// the jobs it owns: those inserted with it, not earlier jobs returned for
    /// their key; a batch that owns none is done at once (its callback is due).
    async fn job_insert(&self, jobs: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>>;
    /// One job.
    async fn job_get(&self, tenant: &TenantId, id: &str) -> StoreResult<JobRecord>;
    /// Status, attempt and progress of one job, read without its payload,
    /// result or logs: what `wait` and event streams poll.
    async fn job_watch(&self, tenant: &TenantId, id: &str) -> StoreResult<JobWatch>;
    /// A page of jobs (keyset pagination on the id / priority): at most
    /// `limit` jobs within `max_bytes` (but always one, if any is left), and
    /// whether more follow.
    async fn job_list(&self, p: JobList) -> StoreResult<JobListPage>;
    /// Claims up to `limit` runnable jobs for `owner`; marks them running with
    /// a lease, counts the attempt and gives each claim the job's next fencing
    /// token (`JobRecord::lease_token`). A job that has used all its attempts
    /// is never claimed (`job_rescue_expired` ends it).
    ///
    /// Fair across tenants (`rules/fair.rs`): the slots are shared among the
    /// tenants with waiting work by weight, counting what each runs across the
    /// server; a tenant never runs more than its `max_running` (its quota, else
    /// `p.default_max_running`), even alone. Within a tenant, highest priority
    /// first, then earliest due, then oldest. The jobs come back interleaved
    /// in the order a node should start them. Atomic: a job is claimed once,
    /// and concurrent claims never take a tenant past its `max_running`.
    async fn job_claim(&self, p: JobClaim) -> StoreResult<Vec<JobRecord>>;
    /// Extends the leases `p.owner` holds; returns the claims it still holds.
    /// A claim is held while the job is running under that exact token and its
    /// lease has not lapsed (`lease_expires_at >= p.now`): a lease that lapsed
    /// is lost even before another node rescues the job, so a node that stalled
    /// past its leases never revives them. A claim missing from the answer was
    /// cancelled, rescued or superseded: its run should stop, since its outcome
    /// would be ignored anyway.
    async fn job_heartbeat(&self, p: JobHeartbeat) -> StoreResult<Vec<Lease>>;
    /// Records how attempts ended, in one transaction. A completion applies only
    /// while its claim is the job's current one (running, same `owner`, same
    /// `token`); one from a stale run (cancelled, or rescued after a stall and
    /// perhaps claimed again) is ignored. Returns the claims that were applied.
    async fn job_complete(&self, completions: Vec<JobCompletion>) -> StoreResult<Completed>;
    /// Stores the latest progress of a running job, if `lease` is still its
    /// current claim; returns whether it was stored.
    async fn job_progress(&self, lease: &Lease, percent: u8, message: &str) -> StoreResult<bool>;
    /// Cancels a job that has not finished; `Conflict` if it has.
    async fn job_cancel(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<Cancelled>;
    /// Queues a failed, dead or cancelled job again with a fresh attempt budget
    /// (its fencing token keeps counting: the next claim still gets a new one).
    async fn job_retry(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord>;
    /// One step of a bulk action: up to `p.limit` of the tenant's jobs the
    /// filter matches, after `p.after` in id order, retried, cancelled or
    /// deleted (each only if the action still applies to it when written);
    /// the ids changed, and where the next step starts. A bulk action is
    /// these steps in a loop, each a short transaction of its own.
    async fn job_bulk(&self, p: JobBulk) -> StoreResult<BulkStep>;
    /// Deletes an ended job whose callback is settled; `Conflict` naming
    /// its status otherwise.
    async fn job_delete(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// Deletes a finished batch (every job ended, every callback settled)
    /// with its jobs; how many jobs went. `Conflict` while any has not.
    async fn batch_delete(&self, tenant: &TenantId, id: &str) -> StoreResult<u64>;
    /// Ends the claims of running jobs whose lease lapsed before `now` (their
    /// worker died or stalled): a job with attempts left goes back to `queued`,
    /// one on its last attempt becomes `dead`; both record the error
    /// `lease_expired` ("the worker running attempt 2 of 2 stopped renewing its
    /// lease"). A dead job ends like any other (finished_at, its callback and
    /// its batch's callback become due). Queued jobs with no attempt left
    /// (stored before claims checked the budget) end `dead` the same way.
    async fn job_rescue_expired(&self, now: i64) -> StoreResult<Rescued>;
    /// Returns every job `owner` holds to `queued` (graceful shutdown).
    async fn job_release(&self, owner: &str) -> StoreResult<u64>;
    /// Jobs waiting to run (queued, scheduled or failed-and-retrying) per
    /// tenant (tenants with none are left out): the figures behind
    /// backpressure (429 when the queue or a tenant's share of it is full).
    async fn job_waiting(&self) -> StoreResult<Vec<(TenantId, u64)>>;
    /// Deletes up to `limit` finished jobs (succeeded, dead, cancelled) that
    /// ended before `finished_before` and have no callback still to deliver,
    /// then up to `limit` batches created before `finished_before` whose jobs
    /// are all gone and whose callback (if any) is delivered or failed; returns
    /// how many records (jobs and batches) went. Retention keeps the tables
    /// from growing without bound.
    async fn job_prune(&self, finished_before: i64, limit: u32) -> StoreResult<u64>;
    /// When the next scheduled or retrying job becomes due, if any.
    async fn job_next_due(&self) -> StoreResult<Option<i64>>;

    /// Claims up to `limit` callbacks (job and batch) due for delivery at
    /// `now`, earliest due first, skipping those whose URL starts with one of
    /// `skip_url_prefixes`: their next attempt moves to `lease_until`, so no
    /// other sender (on this node or another) picks them while this one
    /// delivers; one whose sender dies is due again at `lease_until`. The
    /// delivery's `callback_record` then sets the real state.
    async fn callback_due(&self, p: CallbackClaim) -> StoreResult<Vec<CallbackDue>>;
    /// Records a delivery attempt.
    async fn callback_record(&self, p: CallbackRecord) -> StoreResult<()>;

    /// A batch with its per-status counts.
    async fn batch_get(&self, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord>;
    /// A tenant's batches, newest first, without counting their jobs.
    async fn batch_list(&self, p: BatchList) -> StoreResult<Vec<BatchSummary>>;

    /// Counts per status and per queue.
    async fn status_counts(&self, tenant: &TenantId) -> StoreResult<StatusCounts>;

    /// Checks cheaply that the database answers reads and that its file is the
    /// one opened at start (for `/readyz`); an error says what is wrong.
    async fn store_ping(&self) -> StoreResult<()>;

    /// What any node commits that the others should act on at once (see
    /// [`Notice`]), as a stream; `None` for a backend only one node uses
    /// (SQLite), whose own changes reach its queue in process.
    async fn notices(&self) -> StoreResult<Option<mpsc::Receiver<Notice>>> {
        Ok(None)
    }

    /// Tells every node listening to [`notices`](Store::notices) (none on a
    /// backend only one node uses, where this does nothing).
    async fn relay(&self, message: Relay) -> StoreResult<()> {
        let _ = message;
        Ok(())
    }

    /// Writes a node's registry row (registering it, or renewing its
    /// heartbeat and counts; a node that stopped and beats again is running
    /// again), and deletes the rows of nodes silent since before
    /// `p.forget_before`.
    async fn node_beat(&self, p: NodeBeat) -> StoreResult<()>;
    /// Marks a node stopped (a clean shutdown); an unknown node: nothing.
    async fn node_stop(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Every registered node, by id.
    async fn node_list(&self) -> StoreResult<Vec<NodeRecord>>;

    /// Every queue's controls (the queues something was set on), by name.
    async fn queue_list(&self) -> StoreResult<Vec<QueueRecord>>;
    /// Pauses, resumes or limits a queue (creating its row); the queue's row
    /// after the change. Every node's next claim obeys it (PostgreSQL tells
    /// the other nodes at once).
    async fn queue_update(&self, p: QueueUpdate) -> StoreResult<QueueRecord>;
    /// The jobs not yet finished per queue and status: of `tenant`, or of
    /// every tenant (`None`). Counted along the indexes of the waiting and
    /// running jobs, never over the finished ones.
    async fn queue_depths(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<QueueDepth>>;

    /// Creates or replaces a tenant's schedule; the schedule as stored (see
    /// `SchedulePut::next_due_at` for what a second put keeps).
    async fn schedule_put(&self, p: SchedulePut) -> StoreResult<ScheduleRecord>;
    /// One schedule; `NotFound` for an unknown one.
    async fn schedule_get(&self, tenant: &TenantId, name: &str) -> StoreResult<ScheduleRecord>;
    /// A page of a tenant's schedules by name, after `after`.
    async fn schedule_list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ScheduleRecord>>;
    /// Deletes a schedule (jobs it made stay); `NotFound` for an unknown one.
    async fn schedule_delete(&self, tenant: &TenantId, name: &str) -> StoreResult<()>;
    /// Resumes a schedule from `next_due_at` (`Some`), or pauses it (`None`).
    async fn schedule_enable(
        &self,
        tenant: &TenantId,
        name: &str,
        next_due_at: Option<i64>,
        now: i64,
    ) -> StoreResult<ScheduleRecord>;
    /// The enabled schedules due at `now` (every tenant's), soonest first.
    async fn schedule_due(&self, now: i64, limit: u32) -> StoreResult<Vec<ScheduleRecord>>;
    /// The soonest due time of any enabled schedule.
    async fn schedule_next_due(&self) -> StoreResult<Option<i64>>;
    /// Fires a schedule: moves its next due time on if it is still
    /// `f.expected_next_due` and inserts the jobs, in one transaction; else
    /// (another node fired it first, or it changed) does nothing. Each due
    /// time fires once however many nodes race for it.
    async fn schedule_fire(&self, f: ScheduleFiring) -> StoreResult<Fired>;

    /// Creates a tenant; `Conflict` if the id is taken.
    async fn tenant_create(&self, p: TenantCreate) -> StoreResult<TenantRecord>;
    /// One tenant.
    async fn tenant_get(&self, id: &TenantId) -> StoreResult<TenantRecord>;
    /// Every tenant, by id.
    async fn tenant_list(&self) -> StoreResult<Vec<TenantRecord>>;
    /// Changes a tenant's weight, quotas or callback ranges.
    async fn tenant_update(&self, p: TenantUpdate) -> StoreResult<TenantRecord>;
    /// Deletes a tenant with everything it owns (tokens, modules, aliases,
    /// jobs, batches) in one transaction. `Conflict` while it has unfinished
    /// jobs (queued, scheduled, running, retrying) and for `default`, which
    /// always exists.
    async fn tenant_delete(&self, id: &TenantId) -> StoreResult<()>;
    /// Stores a token (its hash only); `NotFound` for an unknown tenant.
    async fn token_create(&self, p: TokenCreate) -> StoreResult<TokenRecord>;
    /// A tenant's tokens, oldest first, without secrets; `NotFound` for an
    /// unknown tenant.
    async fn token_list(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes (deletes) a token of the tenant; `NotFound` if it has none by that id.
    async fn token_revoke(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// The tenant and scope of the token whose secret hashes to `hash`, if it
    /// exists, has not expired at `now` and its tenant exists.
    async fn token_lookup(&self, hash: &blake3::Hash, now: i64) -> StoreResult<Option<TokenGrant>>;

    /// Usage per tenant per UTC day from `q.from` to `q.to` (see
    /// [`UsageCounters`] for what is counted), by tenant then day: a record
    /// for each day with a counted event or modules stored; one tenant's, or
    /// every tenant's (deleted tenants' too).
    async fn usage_list(&self, q: UsageQuery) -> StoreResult<Vec<UsageRecord>>;
    /// Stores a signing key (its secret sealed); `NotFound` for an unknown
    /// tenant, `Conflict` if the id is taken.
    async fn key_create(&self, p: KeyCreate) -> StoreResult<KeyRecord>;
    /// A tenant's signing keys, oldest first, without secrets; `NotFound`
    /// for an unknown tenant.
    async fn key_list(&self, tenant: &TenantId) -> StoreResult<Vec<KeyRecord>>;
    /// Revokes (deletes) a signing key of the tenant; `NotFound` if it has
    /// none by that id. Requests signed with it are refused from then on.
    async fn key_revoke(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// The key `id` with its sealed secret, if it exists (deleting a tenant
    /// deletes its keys). Read so that a key made or revoked a moment ago is
    /// seen at once.
    async fn key_lookup(&self, id: &str) -> StoreResult<Option<KeyGrant>>;
    /// Records the tag of a signed request of `tenant` until `expires_at`
    /// (unix ms); `false` if it was recorded already, through any node: a
    /// replay. Only a store several nodes share is asked (see [`Store::shared`]).
    async fn signature_first_use(&self, tenant: &TenantId, tag: &str, expires_at: i64) -> StoreResult<bool>;
    /// Deletes the signature tags that expired before `now`; how many.
    async fn signature_prune(&self, now: i64) -> StoreResult<u64>;
    /// Whether several nodes may share this store (PostgreSQL): what a node
    /// keeps in memory alone (the signatures it has seen) must then go
    /// through the store too.
    fn shared(&self) -> bool {
        false
    }

    /// The value of a key-value key, if set. Read so that a value written a
    /// moment ago (by a job on another node too) is seen at once.
    async fn kv_get(&self, k: &KvKey) -> StoreResult<Option<Vec<u8>>>;
    /// Stores a value, replacing any; `Limit` (nothing written) when the
    /// store or the tenant would then be over `p.limits`. Counts a
    /// `kv_writes` and moves the tenant's key-value gauge.
    async fn kv_set(&self, p: KvSet) -> StoreResult<()>;
    /// Deletes a key; whether it existed. Counted like `kv_set` when it did.
    async fn kv_delete(&self, k: &KvKey, now: i64) -> StoreResult<bool>;
    /// Adds `p.delta` to the canonical decimal i64 stored under the key
    /// (absent: 0) in one atomic statement and returns the new value:
    /// concurrent increments never lose one. `Limit` for a value that is not
    /// such an integer, a sum that would overflow, or the limits of `kv_set`.
    async fn kv_increment(&self, p: KvIncrement) -> StoreResult<i64>;
    /// A page of keys starting with `p.prefix`, in byte order, after `p.after`.
    async fn kv_list(&self, p: KvList) -> StoreResult<Vec<String>>;
    /// What one store holds (an unknown store: nothing).
    async fn kv_size(&self, tenant: &TenantId, store: &KvStoreName) -> StoreResult<KvStoreSize>;

    /// Stores an alias's secret (sealed by the caller), replacing any;
    /// `NotFound` for an unknown alias, `Limit` past `p.max_secrets`.
    async fn secret_put(&self, p: SecretPut) -> StoreResult<SecretRecord>;
    /// An alias's secrets by key, without values; `NotFound` for an unknown alias.
    async fn secret_list(&self, tenant: &TenantId, alias: &AliasName) -> StoreResult<Vec<SecretRecord>>;
    /// Deletes a secret; `NotFound` if the alias has none by that key.
    async fn secret_delete(&self, tenant: &TenantId, alias: &AliasName, key: &str) -> StoreResult<()>;
    /// A secret's sealed value, if set.
    async fn secret_get(
        &self,
        tenant: &TenantId,
        alias: &AliasName,
        key: &str,
    ) -> StoreResult<Option<String>>;
}

/// The [`Store`] impl of a backend (`impl_store!(SqliteStore, { ... })`):
/// every method hands its call to the backend's module function of the same
/// concept (`modules::put`, `jobs::insert`, ...), which each backend names
/// alike, so the delegation is written once here; the block adds the methods
/// that differ (`job_list`, `store_ping`, `notices`).
macro_rules! impl_store {
    ($store:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl Store for $store {
            $($own)*

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

            async fn node_beat(&self, p: NodeBeat) -> StoreResult<()> {
                nodes::beat(self, p).await
            }
            async fn node_stop(&self, id: &str, now: i64) -> StoreResult<()> {
                nodes::stop(self, id, now).await
            }
            async fn node_list(&self) -> StoreResult<Vec<NodeRecord>> {
                nodes::list(self).await
            }

            async fn queue_list(&self) -> StoreResult<Vec<QueueRecord>> {
                queues::list(self).await
            }
            async fn queue_update(&self, p: QueueUpdate) -> StoreResult<QueueRecord> {
                queues::update(self, p).await
            }
            async fn queue_depths(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<QueueDepth>> {
                queues::depths(self, tenant).await
            }

            async fn schedule_put(&self, p: SchedulePut) -> StoreResult<ScheduleRecord> {
                schedules::put(self, p).await
            }
            async fn schedule_get(&self, tenant: &TenantId, name: &str) -> StoreResult<ScheduleRecord> {
                schedules::get(self, tenant, name).await
            }
            async fn schedule_list(
                &self,
                tenant: &TenantId,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<ScheduleRecord>> {
                schedules::list(self, tenant, after, limit).await
            }
            async fn schedule_delete(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
                schedules::delete(self, tenant, name).await
            }
            async fn schedule_enable(
                &self,
                tenant: &TenantId,
                name: &str,
                next_due_at: Option<i64>,
                now: i64,
            ) -> StoreResult<ScheduleRecord> {
                schedules::enable(self, tenant, name, next_due_at, now).await
            }
            async fn schedule_due(&self, now: i64, limit: u32) -> StoreResult<Vec<ScheduleRecord>> {
                schedules::due(self, now, limit).await
            }
            async fn schedule_next_due(&self) -> StoreResult<Option<i64>> {
                schedules::next_due(self).await
            }
            async fn schedule_fire(&self, f: ScheduleFiring) -> StoreResult<Fired> {
                schedules::fire(self, f).await
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
            async fn job_claim(&self, p: JobClaim) -> StoreResult<Vec<JobRecord>> {
                claim::claim(self, p).await
            }
            async fn job_heartbeat(&self, p: JobHeartbeat) -> StoreResult<Vec<Lease>> {
                leases::heartbeat(self, p).await
            }
            async fn job_complete(&self, completions: Vec<JobCompletion>) -> StoreResult<Completed> {
                leases::complete(self, completions).await
            }
            async fn job_progress(&self, lease: &Lease, percent: u8, message: &str) -> StoreResult<bool> {
                leases::progress(self, lease, percent, message).await
            }
            async fn job_cancel(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<Cancelled> {
                jobs::cancel(self, tenant, id, now).await
            }
            async fn job_retry(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
                jobs::retry(self, tenant, id, now).await
            }
            async fn job_bulk(&self, p: JobBulk) -> StoreResult<BulkStep> {
                bulk::step(self, p).await
            }
            async fn job_delete(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
                bulk::delete_job(self, tenant, id).await
            }
            async fn batch_delete(&self, tenant: &TenantId, id: &str) -> StoreResult<u64> {
                bulk::delete_batch(self, tenant, id).await
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
            async fn batch_list(&self, p: BatchList) -> StoreResult<Vec<BatchSummary>> {
                batches::list(self, p).await
            }

            async fn status_counts(&self, tenant: &TenantId) -> StoreResult<StatusCounts> {
                jobs::status_counts(self, tenant).await
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
            async fn signature_first_use(&self, tenant: &TenantId, tag: &str, expires_at: i64) -> StoreResult<bool> {
                keys::first_use(self, tenant, tag, expires_at).await
            }
            async fn signature_prune(&self, now: i64) -> StoreResult<u64> {
                keys::prune(self, now).await
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
    };
}
pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connect_chooses_the_backend_by_scheme_and_names_the_setting_otherwise() {
        // Both PostgreSQL schemes reach the PostgreSQL backend: here it finds
        // no server (port 1), and says so as a database error, or rejects a
        // setting it does not take.
        for url in ["postgres://127.0.0.1:1/wasmq", "postgresql://u@127.0.0.1:1/wasmq"] {
            let err = connect(url).await.err().expect("nothing listens on port 1");
            assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        }
        let err = connect("postgres://127.0.0.1:1/wasmq?max_connections=0").await.err().expect("bad size");
        assert!(err.to_string().contains("max_connections"), "{err}");
        let err = connect("mysql://db/wasmq").await.err().expect("no such backend").to_string();
        assert!(err.contains("mysql://db/wasmq") && err.contains("WASMQ_DATABASE_URL"), "{err}");
        assert!(err.contains("sqlite://") && err.contains("postgres://"), "{err}");
        let err = connect("mysql://u:hunter2@db/wasmq").await.err().expect("no such backend").to_string();
        assert!(err.contains("mysql://u:***@db/wasmq"), "{err}");
        assert_eq!(
            redacted("postgres://u:hunter2@db/wasmq?max_connections=2"),
            "postgres://u:***@db/wasmq?max_connections=2"
        );
        assert_eq!(redacted("postgres://u@db/wasmq"), "postgres://u@db/wasmq");
        assert_eq!(redacted("sqlite://wasmq.db"), "sqlite://wasmq.db");
        let store = connect("sqlite::memory:").await.expect("an in-memory SQLite store opens");
        store.store_ping().await.expect("and answers");
    }
}
