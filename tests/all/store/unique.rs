//! Unique jobs: an insert carrying a uniqueness answers the matching job of
//! its tenant (in the given states, created since the given time) instead of
//! inserting, in a batch too; racing inserts through two stores make one job.

use futures_util::FutureExt;
use std::sync::Arc;
use wasmq::domain::{Digest, IdempotencyKey, JobStatus};
use wasmq::store::*;

use super::support::*;

fn unique(key: &str, states: &[JobStatus], since: Option<i64>) -> UniqueCheck {
    UniqueCheck { key: key.into(), states: states.to_vec(), since }
}

const PENDING: [JobStatus; 4] =
    [JobStatus::Queued, JobStatus::Scheduled, JobStatus::Running, JobStatus::Failed];

fn job(id: &str, key: &str, created_at: i64) -> NewJob {
    NewJob {
        unique: Some(unique(key, &PENDING, None)),
        created_at,
        ..new_job(id, Digest::of(b"unique"), 1, created_at)
    }
}

async fn insert_one(store: &Arc<dyn Store>, job: NewJob) -> Inserted {
    store.job_insert(vec![job], None).await.unwrap().remove(0)
}

pub async fn matching_jobs_are_answered_instead_of_inserted(store: Arc<dyn Store>) {
    let first = insert_one(&store, job("u-1", "k", 1_000)).await;
    assert!(first.created);
    let again = insert_one(&store, job("u-2", "k", 2_000)).await;
    assert!(!again.created, "a queued job matches");
    assert_eq!(again.job.id, "u-1");
    assert!(insert_one(&store, job("other-key", "k2", 2_000)).await.created, "another key is another job");

    // Other tenants never match.
    let other = create_tenant(store.as_ref(), "other").await;
    let theirs = insert_one(&store, NewJob { tenant: other.clone(), ..job("theirs", "k", 2_000) }).await;
    assert!(theirs.created, "the key is per tenant");

    // Ended: the default states let the next one in.
    let claimed = store.job_claim(claim("n", 3_000, 10)).await.unwrap();
    assert!(claimed.iter().any(|j| j.id == "u-1"), "{claimed:?}");
    store.job_complete(vec![done("u-1", "n", JobStatus::Succeeded, 3_500)]).await.unwrap();
    let after = insert_one(&store, job("u-3", "k", 4_000)).await;
    assert!(after.created, "a succeeded job does not block the default states");
    // Unless the states name `succeeded`.
    let with_done =
        NewJob { unique: Some(unique("k", &[JobStatus::Succeeded], None)), ..job("u-4", "k", 5_000) };
    let got = insert_one(&store, with_done.clone()).await;
    assert_eq!((got.created, got.job.id.as_str()), (false, "u-1"));
    // And only within the period: u-1 was created at 1,000.
    let recent = NewJob { unique: Some(unique("k", &[JobStatus::Succeeded], Some(1_001))), ..with_done };
    assert!(insert_one(&store, recent).await.created, "a job created before the period does not match");
}

pub async fn a_batch_makes_one_job_per_key(store: Arc<dyn Store>) {
    let digest = Digest::of(b"unique batch");
    let jobs: Vec<NewJob> = (0..6)
        .map(|i| NewJob {
            batch_id: Some("ub".into()),
            unique: Some(unique(&format!("bk-{}", i % 2), &PENDING, None)),
            ..new_job(&format!("b-{i}"), digest, 1, 1_000)
        })
        .collect();
    let batch =
        NewBatch { id: "ub".into(), tenant: tenant(), callback: None, created_at: 1_000, trace: None };
    let got = store.job_insert(jobs, Some(batch)).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|i| i.job.id.as_str()).collect();
    assert_eq!(ids, ["b-0", "b-1", "b-0", "b-1", "b-0", "b-1"]);
    assert_eq!(got.iter().filter(|i| i.created).count(), 2);
    assert_eq!(store.batch_get(&tenant(), "ub").await.unwrap().total, 2, "the batch owns the two it made");

    // With an idempotency key too: the key's own rule still applies when
    // nothing matches the uniqueness.
    let keyed = |id: &str, key: &str| NewJob {
        idempotency_key: Some(IdempotencyKey::parse("ik").unwrap()),
        idempotency_fingerprint: Some("fp".into()),
        ..job(id, key, 2_000)
    };
    assert!(insert_one(&store, keyed("ik-1", "uk-1")).await.created);
    let by_key = insert_one(&store, keyed("ik-2", "uk-2")).await;
    assert_eq!((by_key.created, by_key.job.id.as_str()), (false, "ik-1"), "the idempotency key answers");
}

/// 50 inserts of one uniqueness key at once through two stores (two
/// nodes), 5 times over: one job each time, and every insert answers it.
pub async fn racing_unique_inserts_make_one_job(url: String) {
    let stores = super::concurrency::two(&url).await;
    for round in 0..5 {
        let answers = super::concurrency::at_once(&stores, 50, |store, i| {
            let job = job(&format!("r{round}-{i:02}"), &format!("race-{round}"), 1_000);
            async move { store.job_insert(vec![job], None).await.expect("no error").remove(0) }.boxed()
        })
        .await;
        let made: Vec<&Inserted> = answers.iter().filter(|i| i.created).collect();
        assert_eq!(made.len(), 1, "round {round}: one job");
        assert!(answers.iter().all(|i| i.job.id == made[0].job.id), "round {round}: all answer it");
    }
    // Two batches naming the same keys in opposite orders: no deadlock.
    let answers = super::concurrency::at_once(&stores, 2, |store, i| {
        let mut keys: Vec<String> = (0..20).map(|k| format!("both-{k:02}")).collect();
        if i == 1 {
            keys.reverse();
        }
        let jobs: Vec<NewJob> = keys.iter().map(|k| job(&format!("{k}-by-{i}"), k, 1_000)).collect();
        async move { store.job_insert(jobs, None).await.expect("no deadlock") }.boxed()
    })
    .await;
    let made: usize = answers.iter().flatten().filter(|i| i.created).count();
    assert_eq!(made, 20, "one job per key");
}
