//! The rules every backend would otherwise copy, written once above them: the
//! job status and callback state sets and the claim order (rendered into SQL
//! from the domain enums, in `sql`),
//! the module-delete and alias-rollback checks, alias pruning, batch
//! completion and counts, idempotent reuse, the byte budget of a list page,
//! the assembly of due callbacks, the fair share of a claim across tenants
//! (`fair`) and the queues it reads (`queues`), and the wording of errors (`errors`). A backend runs
//! the statements and hands what it read to these functions; it decides no
//! outcome and words no error itself.

mod bulk;
mod errors;
mod fair;
mod kv;
mod queues;
mod sql;
mod usage;

pub(super) use bulk::{bulk_select, bulk_takes};
pub(super) use errors::*;
pub(super) use fair::{FairClaim, TenantLoad};
pub(super) use kv::*;
pub(super) use queues::{Governed, QueueFilter, claim_queues, queue_rooms};
pub(super) use sql::*;
pub(super) use usage::*;

use std::collections::{BTreeMap, HashMap};

use super::rows::{BatchRow, callback_state, corrupt, parse_callback, status};
use super::{
    AliasVersion, BatchRecord, CallbackDue, CallbackOwner, JOB_FIXED_BYTES, JobRecord, StatusCounts,
    StoreError, StoreResult,
};
use crate::domain::{AliasName, Callback, CallbackState, Digest, IdempotencyKey, JobStatus, TenantId};

/// The tenants an insert must find (and hold) before it writes their jobs:
/// every tenant of `jobs` but `default`, which is never deleted. Sorted, so
/// inserts take their locks in one order. Without this, a dispatch
/// authenticated before its tenant's deletion and written after it would
/// leave jobs of a tenant that no longer exists.
pub(super) fn tenants_to_hold(jobs: &[crate::store::NewJob]) -> Vec<&TenantId> {
    let default = TenantId::default_tenant();
    let mut tenants: Vec<&TenantId> = jobs.iter().map(|j| &j.tenant).filter(|t| **t != default).collect();
    tenants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    tenants.dedup();
    tenants
}

/// The advisory lock of a uniqueness key of `tenant` (PostgreSQL's locks
/// are named by one `bigint`): the first 8 bytes of blake3 over both.
pub(super) fn unique_lock(tenant: &TenantId, key: &str) -> i64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(tenant.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(key.as_bytes());
    let bytes: [u8; 8] = hasher.finalize().as_bytes()[..8].try_into().expect("8 of 32 bytes");
    i64::from_le_bytes(bytes)
}

/// Whether an insert is the common dispatch that needs no transaction: no
/// batch, no idempotency key, no uniqueness, no tenant to hold (see
/// [`tenants_to_hold`]).
/// One statement inserts it, atomic on its own; no BEGIN and COMMIT round
/// trips, which were most of an idle dispatch's insert.
pub(super) fn lone_insert(jobs: &[crate::store::NewJob], batch: &Option<super::NewBatch>) -> bool {
    batch.is_none()
        && tenants_to_hold(jobs).is_empty()
        && jobs.iter().all(|j| j.idempotency_key.is_none() && j.unique.is_none())
}

/// What jobs a bulk cancel ended mean beyond their rows (`(id, batch)` as
/// its statement returns them): the batches that may now be done (sorted,
/// once each), and the usage of `tenant` the cancels count.
pub(super) fn bulk_cancelled(
    rows: &[(crate::domain::JobRef, u32)],
    tenant: &TenantId,
    now: i64,
) -> (Vec<String>, UsageTally) {
    let mut batches: Vec<String> = rows.iter().filter_map(|(job, _)| job.batch.clone()).collect();
    batches.sort();
    batches.dedup();
    let mut tally = UsageTally::default();
    for _ in rows {
        tally.outcome(tenant, JobStatus::Cancelled, now);
    }
    (batches, tally)
}

/// The jobs a bulk step changed, read back with [`JOB_REF_COLUMNS`](super::rows::JOB_REF_COLUMNS),
/// in id order (the order the step took them; `RETURNING` gives none).
pub(super) fn bulk_changed(
    rows: Vec<super::rows::JobRefRow>,
) -> StoreResult<Vec<(crate::domain::JobRef, u32)>> {
    let mut done = super::rows::JobRefRow::into_refs(rows)?;
    done.sort_by(|(a, _), (b, _)| a.id.cmp(&b.id));
    Ok(done)
}

/// Sorts claimed jobs into [`CLAIM_ORDER`] (an `UPDATE ... RETURNING` gives
/// its rows in no particular order).
pub(super) fn claim_order(jobs: &mut [JobRecord]) {
    jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)).then(a.id.cmp(&b.id)));
}

/// A module may go only when no alias points to it (`users`, by name) and no
/// job that still needs it is unfinished.
pub(super) fn module_deletable(digest: &Digest, users: &[String], unfinished: i64) -> StoreResult<()> {
    if !users.is_empty() {
        return Err(StoreError::Conflict(format!(
            "module {digest} is used by alias {}; point the alias elsewhere or delete it first",
            users.join(", ")
        )));
    }
    if unfinished > 0 {
        return Err(StoreError::Conflict(format!("module {digest} has {unfinished} unfinished jobs")));
    }
    Ok(())
}

/// The version a rollback re-applies: the one before `current` (the alias's
/// version), as stored (`previous`; gone when pruned or never written).
pub(super) fn rollback_target(
    name: &AliasName,
    current: i64,
    previous: Option<AliasVersion>,
) -> StoreResult<AliasVersion> {
    previous.ok_or_else(|| StoreError::Conflict(format!("alias {name} has no version before {current}")))
}

/// A rollback needs the module of the version it re-applies (`present`: it
/// still exists).
pub(super) fn rollback_module(name: &AliasName, target: &AliasVersion, present: bool) -> StoreResult<()> {
    if present {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "alias {name} version {} points to module {}, which was deleted",
        target.version, target.module
    )))
}

/// The alias versions at or below this one go when `current` is written with
/// `keep` versions kept: at least the current one and the one before it stay,
/// so rollback always works.
pub(super) fn pruned_up_to(current: i64, keep: u32) -> i64 {
    current - i64::from(keep.max(2))
}

/// The error a cancel records on the job: kind and message.
pub(super) const CANCELLED_BY_REQUEST: (&str, &str) = ("cancelled", "cancelled by request");

/// Whether a job stored under an idempotency key (with `stored`
/// fingerprint) may stand for a new request (with `given`): yes unless both
/// fingerprints are known and differ. A row from before fingerprints, or a
/// caller that gives none, matches any request.
pub(super) fn idempotent_reuse(
    key: &IdempotencyKey,
    stored: Option<&str>,
    given: Option<&str>,
) -> StoreResult<()> {
    match (stored, given) {
        (Some(stored), Some(given)) if stored != given => {
            Err(StoreError::IdempotencyConflict { key: key.as_str().into() })
        }
        _ => Ok(()),
    }
}

/// The ids of the leading jobs of a list page (`sized`: id and stored text
/// size, in the page's order) whose sizes plus [`JOB_FIXED_BYTES`] each fit
/// `max_bytes`; at least the first, so a page always makes progress.
pub(super) fn within_budget(sized: &[(String, i64)], max_bytes: u64) -> Vec<&str> {
    let mut used = 0u64;
    let mut ids = Vec::new();
    for (id, size) in sized {
        used = used.saturating_add((*size).max(0) as u64 + JOB_FIXED_BYTES);
        if used > max_bytes && !ids.is_empty() {
            break;
        }
        ids.push(id.as_str());
    }
    ids
}

/// Sorts `jobs` into the order of `ids` (a backend that reads a page's rows
/// by id gets them in no particular order).
pub(super) fn in_order_of(ids: &[&str], jobs: &mut [JobRecord]) {
    let rank: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    jobs.sort_by_key(|j| rank.get(j.id.as_str()).copied());
}

/// The state a new job's or batch's callback starts in: `pending`, when it
/// has one (it becomes due when the job, or every job of the batch, ends).
pub(super) fn initial_callback_state(callback: &Option<Callback>) -> Option<CallbackState> {
    callback.as_ref().map(|_| CallbackState::Pending)
}

/// What a rescue did, from the rows it changed (`requeued`: back to the
/// queue; `dead`: out of attempts): the report (its finished batches still
/// to be found), the usage to add (a lost attempt with another to come
/// failed, one on its last ended the job dead; the lost run's own fuel is
/// counted if its node ever reports it, keyed by its claim), and the batches
/// to check for completion.
pub(super) fn rescued(
    requeued: Vec<super::rows::JobRefRow>,
    dead: Vec<super::rows::JobRefRow>,
    now: i64,
) -> StoreResult<(super::Rescued, UsageTally, Vec<String>)> {
    let requeued = super::rows::JobRefRow::into_refs(requeued)?;
    let dead = super::rows::JobRefRow::into_refs(dead)?;
    let mut tally = UsageTally::default();
    for (job, _) in &requeued {
        tally.outcome(&job.tenant, JobStatus::Failed, now);
    }
    for (job, _) in &dead {
        tally.outcome(&job.tenant, JobStatus::Dead, now);
    }
    let batches = ended_batches(dead.iter().map(|(j, _)| (JobStatus::Dead, j.batch.as_ref())));
    Ok((super::Rescued { requeued, dead, batches_done: Vec::new() }, tally, batches))
}

/// The batches to check for completion after jobs changed status: those of
/// the jobs (`(status, batch)`) that are now terminal, each once.
pub(super) fn ended_batches<'a>(
    jobs: impl IntoIterator<Item = (JobStatus, Option<&'a String>)>,
) -> Vec<String> {
    let mut batches: Vec<String> =
        jobs.into_iter().filter(|(s, _)| TERMINAL.contains(*s)).filter_map(|(_, b)| b.cloned()).collect();
    batches.sort();
    batches.dedup();
    batches
}

/// A batch from its row and its jobs' counts per status (`counted`): done when
/// every job it owns is terminal; every status is counted, zero included.
pub(super) fn batch_record(id: &str, row: BatchRow, counted: Vec<(String, i64)>) -> StoreResult<BatchRecord> {
    let mut counts: BTreeMap<String, u64> = JobStatus::ALL.iter().map(|s| (s.as_str().into(), 0)).collect();
    let mut terminal = 0;
    for (name, n) in counted {
        if status(&name).is_ok_and(|s| TERMINAL.contains(s)) {
            terminal += n as u64;
        }
        counts.insert(name, n as u64);
    }
    Ok(BatchRecord {
        id: id.to_string(),
        total: row.total as u64,
        done: terminal == row.total as u64,
        counts,
        callback: parse_callback(row.callback)?,
        callback_state: callback_state(row.callback_state.as_deref()),
        callback_attempts: row.callback_attempts as u32,
        callback_last_error: row.callback_last_error,
        created_at: row.created_at,
        trace: row.trace,
    })
}

/// Job counts from `(queue, status, count)` rows: every status present in
/// `by_status` (zero included), only non-zero ones per queue.
pub(super) fn status_counts(rows: Vec<(String, String, i64)>) -> StatusCounts {
    let mut counts = StatusCounts {
        by_status: JobStatus::ALL.iter().map(|s| (s.as_str().into(), 0)).collect(),
        by_queue: BTreeMap::new(),
    };
    for (queue, status, n) in rows {
        *counts.by_status.entry(status.clone()).or_default() += n as u64;
        counts.by_queue.entry(queue).or_default().insert(status, n as u64);
    }
    counts
}

/// A job's callback, claimed for delivery.
pub(super) fn job_callback_due(job: JobRecord) -> StoreResult<CallbackDue> {
    let callback = job.callback.clone().ok_or_else(|| corrupt("sending callback without target"))?;
    Ok(CallbackDue {
        owner: CallbackOwner::Job,
        tenant: job.tenant.clone(),
        id: job.id.clone(),
        callback,
        attempts: job.callback_attempts,
        job: Some(job),
        batch: None,
    })
}

/// A batch's callback (of `tenant`'s batch), claimed for delivery after `attempts` earlier ones.
pub(super) fn batch_callback_due(
    batch: BatchRecord,
    tenant: TenantId,
    attempts: i64,
) -> StoreResult<CallbackDue> {
    let callback = batch.callback.clone().ok_or_else(|| corrupt("sending callback without target"))?;
    Ok(CallbackDue {
        owner: CallbackOwner::Batch,
        tenant,
        id: batch.id.clone(),
        callback,
        attempts: attempts as u32,
        job: None,
        batch: Some(batch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_takes_jobs_while_they_fit_and_always_one() {
        let sized: Vec<(String, i64)> = (0..5).map(|i| (format!("j{i}"), 10_000)).collect();
        let each = 10_000 + JOB_FIXED_BYTES;
        assert_eq!(within_budget(&sized, 2 * each), ["j0", "j1"]);
        assert_eq!(within_budget(&sized, 2 * each - 1), ["j0"]);
        assert_eq!(within_budget(&sized, 1), ["j0"], "the first job goes even past the budget");
        assert_eq!(within_budget(&sized, u64::MAX).len(), 5);
        assert!(within_budget(&[], 1).is_empty());
    }

    #[test]
    fn an_idempotency_key_is_reused_unless_both_fingerprints_differ() {
        let key = IdempotencyKey::parse("k").unwrap();
        assert!(idempotent_reuse(&key, Some("a"), Some("a")).is_ok());
        assert!(idempotent_reuse(&key, None, Some("a")).is_ok(), "a row from before fingerprints");
        assert!(idempotent_reuse(&key, Some("a"), None).is_ok(), "a caller that gives none");
        let err = idempotent_reuse(&key, Some("a"), Some("b")).unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyConflict { key } if key == "k"));
    }

    #[test]
    fn ended_batches_are_those_of_terminal_jobs_once() {
        let (a, b) = ("a".to_string(), "b".to_string());
        let jobs = [
            (JobStatus::Succeeded, Some(&b)),
            (JobStatus::Failed, Some(&a)),
            (JobStatus::Dead, Some(&b)),
            (JobStatus::Cancelled, None),
        ];
        assert_eq!(ended_batches(jobs), ["b"]);
    }
}
