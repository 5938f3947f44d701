//! Bulk actions (`job_bulk`): each takes only the jobs its filter matches and
//! its action applies to, of one tenant, in bounded steps that resume after
//! the last id; and deleting single ended jobs and finished batches.

use std::sync::Arc;
use wasmq::domain::{AliasName, Digest, JobStatus, TenantId};
use wasmq::store::*;

use super::support::*;

fn job(id: &str, alias: &str, created_at: i64) -> NewJob {
    NewJob {
        alias: AliasName::parse(alias).unwrap(),
        created_at,
        ..new_job(id, Digest::of(b"bulk"), 0, 1_000)
    }
}

fn filter(statuses: &[JobStatus], alias: Option<&str>) -> JobFilter {
    JobFilter {
        tenant: tenant(),
        statuses: statuses.to_vec(),
        alias: alias.map(String::from),
        queue: None,
        context: None,
        created_after: None,
        created_before: None,
    }
}

/// Runs a bulk action to its end in steps of `limit`; the ids it changed
/// and how many steps it took.
async fn run(store: &dyn Store, filter: JobFilter, action: BulkAction, limit: u32) -> (Vec<String>, usize) {
    let (mut done, mut after, mut steps) = (Vec::new(), None, 0);
    loop {
        steps += 1;
        let step = store
            .job_bulk(JobBulk { filter: filter.clone(), action, after, limit, now: 5_000 })
            .await
            .unwrap();
        done.extend(step.done.into_iter().map(|(job, _)| job.id));
        match step.next {
            Some(next) => after = Some(next),
            None => return (done, steps),
        }
    }
}

async fn status(store: &dyn Store, id: &str) -> JobStatus {
    store.job_get(&tenant(), id).await.unwrap().status
}

/// Five dead jobs of two aliases, one succeeded, one left queued, one
/// cancelled, and another tenant's dead job.
async fn setup(store: &dyn Store) {
    let mut jobs: Vec<NewJob> =
        (0..5).map(|k| job(&format!("d-{k}"), if k < 3 { "a" } else { "b" }, 1_000 + k)).collect();
    jobs.push(job("s-0", "a", 1_010));
    store.job_insert(jobs, None).await.unwrap();
    let claimed = store.job_claim(claim("n", 2_000, 10)).await.unwrap();
    assert_eq!(claimed.len(), 6);
    let mut ends: Vec<JobCompletion> =
        (0..5).map(|k| done(&format!("d-{k}"), "n", JobStatus::Dead, 2_100)).collect();
    ends.push(done("s-0", "n", JobStatus::Succeeded, 2_100));
    assert_eq!(store.job_complete(ends).await.unwrap().applied.len(), 6);
    store.job_insert(vec![job("q-0", "a", 1_020), job("c-0", "a", 1_030)], None).await.unwrap();
    store.job_cancel(&tenant(), "c-0", 2_200).await.unwrap();
    let other = create_tenant(store, "other").await;
    store.job_insert(vec![NewJob { tenant: other, ..job("o-0", "a", 1_000) }], None).await.unwrap();
}

/// Retry takes the dead jobs of alias `a` only, in steps of 2 that resume
/// after the last id; cancel then takes everything not ended, and delete
/// everything ended; the other tenant's job is never touched.
pub async fn bulk_actions_take_what_their_filter_matches(store: Arc<dyn Store>) {
    setup(&*store).await;
    let (retried, steps) = run(&*store, filter(&[JobStatus::Dead], Some("a")), BulkAction::Retry, 2).await;
    assert_eq!(retried, ["d-0", "d-1", "d-2"]);
    assert_eq!(steps, 2, "a full step of 2, then the last one");
    for id in &retried {
        let j = store.job_get(&tenant(), id).await.unwrap();
        assert_eq!((j.status, j.attempt, j.error.clone()), (JobStatus::Queued, 0, None), "{id}");
    }
    assert_eq!(status(&*store, "d-3").await, JobStatus::Dead, "alias b is left");
    let (again, _) = run(&*store, filter(&[JobStatus::Dead], Some("a")), BulkAction::Retry, 2).await;
    assert!(again.is_empty(), "nothing left to retry: {again:?}");

    let (cancelled, _) = run(&*store, filter(&[], None), BulkAction::Cancel, 100).await;
    assert_eq!(cancelled, ["d-0", "d-1", "d-2", "q-0"], "every job not ended, none ended");
    for id in &cancelled {
        assert_eq!(status(&*store, id).await, JobStatus::Cancelled);
    }
    let (deleted, _) = run(&*store, filter(&[], None), BulkAction::Delete, 3).await;
    assert_eq!(deleted.len(), 8, "every ended job: {deleted:?}");
    assert!(all_jobs(&*store, &tenant()).await.is_empty());
    let other = TenantId::parse("other").unwrap();
    assert_eq!(all_jobs(&*store, &other).await.len(), 1, "the other tenant's job is untouched");
}

/// Creation times bound a filter (at or after, before), and statuses an
/// action does not apply to take nothing.
pub async fn bulk_filters_by_creation_time(store: Arc<dyn Store>) {
    setup(&*store).await;
    let mut f = filter(&[], None);
    f.created_after = Some(1_001);
    f.created_before = Some(1_004);
    let (retried, _) = run(&*store, f, BulkAction::Retry, 10).await;
    assert_eq!(retried, ["d-1", "d-2", "d-3"]);
    let (none, _) = run(&*store, filter(&[JobStatus::Running], None), BulkAction::Delete, 10).await;
    assert!(none.is_empty());
}

/// One ended job is deleted; one not ended is refused naming its status, a
/// missing one is not found. A batch goes with its jobs once all have ended.
pub async fn deletes_ended_jobs_and_finished_batches(store: Arc<dyn Store>) {
    setup(&*store).await;
    store.job_delete(&tenant(), "s-0").await.unwrap();
    assert!(matches!(store.job_get(&tenant(), "s-0").await, Err(StoreError::NotFound(_))));
    let busy = store.job_delete(&tenant(), "q-0").await.unwrap_err();
    assert!(matches!(&busy, StoreError::Conflict(m) if m.contains("queued")), "{busy}");
    assert!(matches!(store.job_delete(&tenant(), "nope").await, Err(StoreError::NotFound(_))));
    let other = TenantId::parse("other").unwrap();
    assert!(matches!(store.job_delete(&other, "d-3").await, Err(StoreError::NotFound(_))), "not its job");

    let batch =
        NewBatch { id: "b-1".into(), tenant: tenant(), callback: None, created_at: 3_000, trace: None };
    let jobs = vec![
        NewJob { batch_id: Some("b-1".into()), ..job("b-job-0", "a", 3_000) },
        NewJob { batch_id: Some("b-1".into()), ..job("b-job-1", "a", 3_000) },
    ];
    store.job_insert(jobs, Some(batch)).await.unwrap();
    let busy = store.batch_delete(&tenant(), "b-1").await.unwrap_err();
    assert!(matches!(&busy, StoreError::Conflict(m) if m.contains("2 jobs")), "{busy}");
    store.job_cancel(&tenant(), "b-job-0", 3_100).await.unwrap();
    store.job_cancel(&tenant(), "b-job-1", 3_100).await.unwrap();
    assert_eq!(store.batch_delete(&tenant(), "b-1").await.unwrap(), 2);
    assert!(matches!(store.batch_get(&tenant(), "b-1").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.job_get(&tenant(), "b-job-0").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.batch_delete(&tenant(), "b-1").await, Err(StoreError::NotFound(_))));
}
