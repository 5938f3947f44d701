//! The one path of a dispatch, whichever form it came in: `POST /v1/jobs`,
//! `POST /v1/dispatch/{alias}` and `POST /v1/batches` all call
//! [`submit_many`] (the first two through [`submit`], its one-job case):
//!
//! validate (alias resolved, module pinned, options checked against their
//! ranges and the tenant's quotas, callback against the address policy) ->
//! dispatch rate -> backpressure (the tenant's and the server's) -> insert
//! (one transaction, group-committed) -> wake the workers (only when a job
//! is new: a repeated idempotency key answers the existing one).
//!
//! The rules live here once, so a batch's jobs obey exactly what a single
//! job does; in a batch, a 400 or 409 names the job as `jobs[i]`.

use serde_json::value::RawValue;
use std::time::Duration;

use super::quota::within;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{
    Callback, IdempotencyKey, JobStatus, Limits, QueueName, TenantId, TenantQuotas, time::now_ms,
    time::parse_rfc3339, time::rfc3339,
};
use crate::store::{AliasConfig, Inserted, NewBatch, NewJob, StoreError};

/// Default priority: the middle of 0..=1000.
const DEFAULT_PRIORITY: i64 = 500;
/// Longest `context` tag, in characters (as JSON Schema's `maxLength` counts).
const MAX_CONTEXT: usize = 200;
/// Most jobs in one submission (a batch).
pub(super) const MAX_BATCH: usize = 10_000;
/// Furthest ahead a job may be scheduled (`delay_ms`, `run_at`): one year.
/// Bounding it keeps every stored time far inside what `i64` milliseconds and
/// RFC 3339 can hold, and a job due in a year is already a scheduling mistake.
pub const MAX_DELAY_MS: u64 = 365 * 24 * 3600 * 1000;
/// Largest `fuel` (what wasmtime's fuel counter can hold).
const MAX_FUEL: u64 = i64::MAX as u64;
/// Largest `timeout_ms`: one day, as [`Limits::validate`] allows.
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

/// Per-job options, from either form.
#[derive(Default)]
pub(super) struct JobOptions {
    pub(super) priority: Option<i64>,
    pub(super) queue: Option<String>,
    pub(super) context: Option<String>,
    pub(super) delay_ms: Option<u64>,
    pub(super) run_at: Option<String>,
    pub(super) max_attempts: Option<u32>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) fuel: Option<u64>,
    pub(super) memory_mb: Option<u64>,
    pub(super) idempotency_key: Option<String>,
    pub(super) callback: Option<Callback>,
    pub(super) unique: Option<super::unique::UniqueRequest>,
}

/// How the client spelled the callback's fields (for the message of a 400).
#[derive(Clone, Copy)]
pub(super) enum CallbackForm {
    /// `{"callback": {"url", "headers", "secret"}}`.
    Body,
    /// `?callback_url=&callback_secret=` of the short form.
    Query,
}

/// One job as a client asked for it, not yet checked.
pub(super) struct Submission {
    /// The alias to run, as given.
    pub(super) alias: String,
    /// The payload, valid JSON.
    pub(super) payload: Box<RawValue>,
    /// The job's own options.
    pub(super) options: JobOptions,
    /// How the request spelled the callback.
    pub(super) form: CallbackForm,
}

/// A batch created with the jobs of a submission: it owns the jobs it
/// creates, and its callback fires once all of them have ended.
pub(super) struct BatchSpec {
    /// The batch's id (a UUIDv7), chosen now.
    pub(super) id: String,
    /// The batch callback, not yet checked.
    callback: Option<Callback>,
}

impl BatchSpec {
    /// A new batch with this callback.
    pub(super) fn new(callback: Option<Callback>) -> Self {
        Self { id: uuid::Uuid::now_v7().to_string(), callback }
    }
}

/// Where a submission came from, for its trace (see `traces`): the request's
/// trace context and the route it came in by.
pub(super) struct Origin {
    pub(super) trace: Option<String>,
    pub(super) route: &'static str,
}

/// [`submit_many`] for one job without a batch.
pub(super) async fn submit(
    state: &AppState,
    tenant: &TenantId,
    job: Submission,
    origin: Origin,
) -> ApiResult<Inserted> {
    let mut inserted = submit_many(state, tenant, vec![job], None, origin).await?;
    inserted.pop().ok_or_else(|| ApiError::internal("the inserter answered no job for one"))
}

/// [`insert_many`] inside the dispatch's span (`wasmq.dispatch`), whose
/// trace context the jobs store.
pub(super) async fn submit_many(
    state: &AppState,
    tenant: &TenantId,
    jobs: Vec<Submission>,
    batch: Option<BatchSpec>,
    origin: Origin,
) -> ApiResult<Vec<Inserted>> {
    let dispatch = state.queue.traces().dispatch(origin.trace.as_deref(), origin.route);
    let inserted = insert_many(state, tenant, jobs, batch, dispatch.trace()).await;
    match &inserted {
        Ok(jobs) => dispatch.end(&jobs.iter().map(|i| i.job.id.as_str()).collect::<Vec<_>>(), None),
        Err(e) => dispatch.end(&[], Some((e.status().as_u16(), &e.message()))),
    }
    inserted
}

/// Validates every job (all or none: the first bad one refuses the whole
/// submission), admits them past backpressure, inserts them (with `batch`,
/// in one transaction) and wakes the workers if any job is new. Answers one
/// entry per job, in request order: the new job, or the one its idempotency
/// key named already (or its `unique` matched). With a batch, errors about one job name it as `jobs[i]`.
/// New jobs store `trace` as their parent.
async fn insert_many(
    state: &AppState,
    tenant: &TenantId,
    jobs: Vec<Submission>,
    batch: Option<BatchSpec>,
    trace: Option<&str>,
) -> ApiResult<Vec<Inserted>> {
    if jobs.is_empty() || jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "jobs must hold between 1 and {MAX_BATCH} jobs, got {}",
            jobs.len()
        )));
    }
    let named = batch.is_some();
    let name = |i: usize, e: ApiError| if named { e.prefixed(&format!("jobs[{i}]")) } else { e };
    let now = now_ms();
    let batch = match batch {
        Some(b) => {
            if let Some(c) = &b.callback {
                check_callback(state, tenant, c, CallbackForm::Body).await?;
            }
            Some(NewBatch {
                callback: b.callback.map(|c| stored_callback(state, c, &b.id)),
                id: b.id,
                tenant: tenant.clone(),
                created_at: now,
                trace: trace.map(str::to_string),
            })
        }
        None => None,
    };
    let batch_id = batch.as_ref().map(|b| b.id.clone());
    let quotas = state.quotas.of(state.store.as_ref(), tenant).await?;
    let mut prepared = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.into_iter().enumerate() {
        let mut job =
            prepare(state, tenant, &quotas, job, batch_id.clone(), now).await.map_err(|e| name(i, e))?;
        job.trace = trace.map(str::to_string);
        prepared.push(job);
    }
    let n = prepared.len() as u64;
    state.quotas.rates.take(tenant, quotas.dispatch_rate, n)?;
    if let Err(e) = state.backpressure.admit(state.store.as_ref(), tenant, quotas.max_waiting, n).await {
        // Not dispatched: the tokens were not spent.
        state.quotas.rates.refund(tenant, n);
        return Err(e);
    }
    let keys: Vec<Option<(String, Option<String>)>> = prepared
        .iter()
        .map(|j| {
            j.idempotency_key.as_ref().map(|k| (k.as_str().to_string(), j.idempotency_fingerprint.clone()))
        })
        .collect();
    // Jobs this node can start now are inserted leased to it (no claim write).
    let reservation = state.queue.reserve(tenant, quotas.max_running.is_some(), &mut prepared, now);
    let inserted = match state.inserter.insert(prepared, batch).await {
        Ok(inserted) => inserted,
        Err(StoreError::IdempotencyConflict { key }) => {
            let index = conflicting(&keys, &key);
            let error = ApiError::from(StoreError::IdempotencyConflict { key });
            return Err(match index {
                Some(i) => name(i, error),
                None => error,
            });
        }
        Err(e) => return Err(e.into()),
    };
    state.queue.hand_over(reservation, &inserted);
    if inserted.iter().any(|i| i.created && i.job.lease_owner.is_none()) {
        state.queue.notify_dispatch();
    }
    Ok(inserted)
}

/// Which job of a submission reused `key` with a different request: the first
/// one asking something else than the key's first job in it (which the store
/// met first), else that first job (it differs from the stored job).
fn conflicting(keys: &[Option<(String, Option<String>)>], key: &str) -> Option<usize> {
    let mut with_key = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_ref().filter(|(k, _)| k == key).map(|(_, fingerprint)| (i, fingerprint)));
    let (first, fingerprint) = with_key.next()?;
    Some(with_key.find(|(_, f)| *f != fingerprint).map_or(first, |(i, _)| i))
}

/// Validates one job and builds it for insertion, with the idempotency
/// fingerprint of the request as given. The alias is resolved and its module
/// pinned here, so a later rollback never changes queued work. The callback
/// is checked first: it needs no lookup.
pub(super) async fn prepare(
    state: &AppState,
    tenant: &TenantId,
    quotas: &TenantQuotas,
    job: Submission,
    batch_id: Option<String>,
    now: i64,
) -> ApiResult<NewJob> {
    let Submission { alias, payload, options: opts, form } = job;
    if let Some(c) = &opts.callback {
        check_callback(state, tenant, c, form).await?;
    }
    let fingerprint = super::idempotency::fingerprint(&alias, &payload, &opts);
    let alias = super::aliases::parse_alias(&alias)?;
    let record = state.aliases.get(state.store.as_ref(), tenant, &alias).await?;
    let cfg = &record.config;
    let priority = opts.priority.or(cfg.priority.map(i64::from)).unwrap_or(DEFAULT_PRIORITY);
    if !(0..=1000).contains(&priority) {
        return Err(ApiError::invalid(format!("priority must be between 0 and 1000, got {priority}")));
    }
    let max_attempts = opts.max_attempts.or(cfg.max_attempts).unwrap_or(state.default_max_attempts);
    if !(1..=100).contains(&max_attempts) {
        return Err(ApiError::invalid(format!("max_attempts must be between 1 and 100, got {max_attempts}")));
    }
    let queue = match opts.queue.as_deref() {
        Some(q) => QueueName::parse(q).map_err(|e| ApiError::invalid(e.to_string()))?,
        None => cfg.queue.clone().unwrap_or_else(QueueName::default_queue),
    };
    if let Some(c) = &opts.context
        && c.chars().count() > MAX_CONTEXT
    {
        return Err(ApiError::invalid(format!(
            "context must be at most {MAX_CONTEXT} characters, got {}",
            c.chars().count()
        )));
    }
    let run_at = due_at(opts.delay_ms, opts.run_at.as_deref(), now)?;
    let idempotency_key = opts
        .idempotency_key
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let limits = limits(state, cfg, &opts, quotas)?;
    let unique = match &opts.unique {
        Some(u) => Some(u.check(alias.as_str(), &payload, queue.as_str(), opts.context.as_deref(), now)?),
        None => None,
    };
    let id = uuid::Uuid::now_v7().to_string();
    let callback = opts.callback.map(|c| stored_callback(state, c, &id));
    Ok(NewJob {
        lease: None,
        id,
        tenant: tenant.clone(),
        alias,
        module: record.module,
        status: if run_at > now { JobStatus::Scheduled } else { JobStatus::Queued },
        priority: priority as i32,
        queue,
        context: opts.context,
        payload: payload.get().to_string(),
        max_attempts,
        limits,
        run_at,
        created_at: now,
        idempotency_key,
        idempotency_fingerprint: fingerprint,
        batch_id,
        callback,
        trace: None,
        unique,
    })
}

/// The limits of a job: server defaults, then the alias's, then the job's own,
/// within the tenant's quotas. Each field a client set is checked against its
/// range first, so the 400 names the field as the client spelled it
/// (`memory_mb`, not bytes), then against the quota (a 400 `quota_exceeded`
/// naming the quota and its value; an alias's value counts like the job's).
/// A server default above a quota is lowered to it: a job that asks nothing
/// still runs. The tenant's result and log sizes replace the server's.
pub(super) fn limits(
    state: &AppState,
    alias: &AliasConfig,
    job: &JobOptions,
    quotas: &TenantQuotas,
) -> ApiResult<Limits> {
    let mut l: Limits = state.default_limits.clone();
    let source = |own: Option<u64>| if own.is_some() { "" } else { " (the alias's default)" };
    if let Some(f) = job.fuel.or(alias.fuel) {
        check_range("fuel", f, 1, MAX_FUEL)?;
        within("fuel", source(job.fuel), f, "max_fuel", quotas.max_fuel)?;
        l.fuel = Some(f);
    } else if let Some(max) = quotas.max_fuel {
        l.fuel = Some(l.fuel.map_or(max, |f| f.min(max)));
    }
    if let Some(t) = job.timeout_ms.or(alias.timeout_ms) {
        check_range("timeout_ms", t, 1, MAX_TIMEOUT_MS)?;
        within("timeout_ms", source(job.timeout_ms), t, "max_timeout_ms", quotas.max_timeout_ms)?;
        l.timeout = Duration::from_millis(t);
    } else if let Some(max) = quotas.max_timeout_ms {
        l.timeout = l.timeout.min(Duration::from_millis(max));
    }
    if let Some(m) = job.memory_mb.or(alias.memory_mb) {
        let max_mb = state.engine.settings().max_memory_bytes >> 20;
        check_range("memory_mb", m, 1, max_mb)?;
        within("memory_mb", source(job.memory_mb), m, "max_memory_mb", quotas.max_memory_mb)?;
        l.memory_bytes = m << 20;
    } else if let Some(max) = quotas.max_memory_mb {
        l.memory_bytes = l.memory_bytes.min(max.saturating_mul(1 << 20));
    }
    if let Some(b) = quotas.max_result_bytes {
        l.max_result_bytes = b;
    }
    if let Some(b) = quotas.max_log_bytes {
        l.max_log_bytes = b;
    }
    // The alias's network grant, pinned on the job like its module.
    l.http =
        crate::domain::HttpGrant::of_alias(&alias.allowed_hosts, alias.http.as_ref(), &state.http_ceilings)
            .map_err(ApiError::invalid)?;
    // The alias's retry policy, pinned like its grant.
    l.retry = alias.retry;
    state.engine.validate_limits(&l).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(l)
}

/// A 400 naming `field` and its range unless `min <= value <= max`.
pub(super) fn check_range(field: &str, value: u64, min: u64, max: u64) -> ApiResult<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{field} must be between {min} and {max}, got {value}")))
    }
}

/// When a job is due: now, `delay_ms` from now, or `run_at`, at most
/// [`MAX_DELAY_MS`] ahead (a `run_at` in the past is due now).
fn due_at(delay_ms: Option<u64>, run_at: Option<&str>, now: i64) -> ApiResult<i64> {
    match (delay_ms, run_at) {
        (Some(_), Some(_)) => Err(ApiError::invalid("delay_ms and run_at cannot both be given")),
        (Some(d), None) => {
            if d > MAX_DELAY_MS {
                return Err(ApiError::invalid(format!(
                    "delay_ms must be between 0 and {MAX_DELAY_MS} (one year), got {d}"
                )));
            }
            // Both are far below i64::MAX: `now` is today, `d` at most a year.
            Ok(now.saturating_add(d as i64))
        }
        (None, Some(t)) => {
            let at = parse_rfc3339(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "run_at must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {t:?}"
                ))
            })?;
            let latest = now.saturating_add(MAX_DELAY_MS as i64);
            if at > latest {
                return Err(ApiError::invalid(format!(
                    "run_at must be at most one year ahead (no later than {}), got {t:?}",
                    rfc3339(latest)
                )));
            }
            Ok(at)
        }
        (None, None) => Ok(now),
    }
}

/// Checks a callback against the address policy and its rules (see
/// `callbacks::target`); a 400 names the field as the client spelled it. The
/// policy is the server's, widened by the tenant's `callback_allow` (read only
/// when the server's refuses: most callbacks need no lookup).
async fn check_callback(
    state: &AppState,
    tenant: &TenantId,
    c: &Callback,
    form: CallbackForm,
) -> ApiResult<()> {
    use crate::callbacks::target::{Field, check};
    let mut checked = check(c, &state.callback_policy).map(drop);
    if let Err(e) = &checked
        && e.refused_by_policy
    {
        let allow = state.store.tenant_get(tenant).await?.callback_allow;
        // An entry that does not parse (stored before entries were checked) widens nothing.
        if !allow.is_empty()
            && let Ok(policy) = state.callback_policy.widened(&allow)
        {
            checked = check(c, &policy).map(drop);
        }
    }
    checked.map_err(|e| {
        let field = match (e.field, form) {
            (Field::Url, CallbackForm::Body) => "callback.url",
            (Field::Url, CallbackForm::Query) => "callback_url",
            (Field::Headers, _) => "callback.headers",
            (Field::Secret, CallbackForm::Body) => "callback.secret",
            (Field::Secret, CallbackForm::Query) => "callback_secret",
        };
        ApiError::invalid(format!("{field} {}", e.message))
    })
}

/// The callback as stored: its URL normalized (what will be contacted, and
/// the form the sender's per-receiver cap matches on), its secret sealed for
/// the job or batch `owner_id`. `c` passed `check_callback`.
fn stored_callback(state: &AppState, c: Callback, owner_id: &str) -> Callback {
    Callback {
        url: reqwest::Url::parse(&c.url).map(String::from).unwrap_or(c.url),
        // Header values are credentials as often as not (`Authorization`):
        // sealed like the secret, opened by the sender.
        headers: c.headers.into_iter().map(|(k, v)| (k, state.callback_secrets.seal(&v, owner_id))).collect(),
        secret: c.secret.map(|s| state.callback_secrets.seal(&s, owner_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn a_job_is_due_now_after_a_delay_or_at_its_time() {
        assert_eq!(due_at(None, None, NOW).unwrap(), NOW);
        assert_eq!(due_at(Some(1000), None, NOW).unwrap(), NOW + 1000);
        let at = rfc3339(NOW + 5000);
        assert_eq!(due_at(None, Some(&at), NOW).unwrap(), NOW + 5000);
        // A time in the past is due now: stored as given, claimed at once.
        let past = rfc3339(NOW - 5000);
        assert_eq!(due_at(None, Some(&past), NOW).unwrap(), NOW - 5000);
    }

    #[test]
    fn a_due_time_is_at_most_one_year_ahead() {
        assert_eq!(due_at(Some(MAX_DELAY_MS), None, NOW).unwrap(), NOW + MAX_DELAY_MS as i64);
        let e = due_at(Some(MAX_DELAY_MS + 1), None, NOW).unwrap_err();
        assert!(format!("{e:?}").contains("delay_ms must be between 0 and 31536000000"), "{e:?}");
        let last = rfc3339(NOW + MAX_DELAY_MS as i64);
        assert_eq!(due_at(None, Some(&last), NOW).unwrap(), NOW + MAX_DELAY_MS as i64);
        let late = rfc3339(NOW + MAX_DELAY_MS as i64 + 1);
        let e = due_at(None, Some(&late), NOW).unwrap_err();
        assert!(format!("{e:?}").contains("run_at must be at most one year ahead"), "{e:?}");
    }

    #[test]
    fn a_due_time_is_given_once_and_well_formed() {
        let e = due_at(Some(1), Some("2026-01-01T00:00:00Z"), NOW).unwrap_err();
        assert!(format!("{e:?}").contains("delay_ms and run_at cannot both be given"), "{e:?}");
        let e = due_at(None, Some("tomorrow"), NOW).unwrap_err();
        assert!(format!("{e:?}").contains("run_at must be an RFC 3339 time"), "{e:?}");
    }

    #[test]
    fn the_conflicting_job_is_the_one_that_differs_from_the_first_with_its_key() {
        let k = |key: &str, f: &str| Some((key.to_string(), Some(f.to_string())));
        // Within the submission: the second "a" differs from the first.
        let keys = [k("a", "x"), None, k("b", "y"), k("a", "x"), k("a", "z")];
        assert_eq!(conflicting(&keys, "a"), Some(4));
        // All alike: the first one differs from the stored job.
        assert_eq!(conflicting(&keys, "b"), Some(2));
        assert_eq!(conflicting(&keys, "c"), None);
    }
}
