//! An alias's limits as a claim sees them: the row `@<tenant>/<alias>` of
//! `queues` (`alias_limits_name`) bounds the alias's jobs running at once and
//! started per window on every claimer, apart from the other aliases and
//! tenants; where the alias's queue is limited too, both must have room; a
//! node that has not heard of the limit yet claims none of its jobs.

use std::sync::Arc;
use wasmq::domain::{AliasName, Digest, JobStatus, QueueLimits, QueueName, Rate};
use wasmq::store::*;

use super::support::*;

fn job(id: &str, alias: &str, queue: &str) -> NewJob {
    NewJob {
        alias: AliasName::parse(alias).unwrap(),
        queue: QueueName::parse(queue).unwrap(),
        ..new_job(id, Digest::of(b"alias limits"), 0, 1_000)
    }
}

async fn limit(store: &dyn Store, name: &str, limits: QueueLimits) {
    store
        .queue_update(QueueUpdate { name: name.into(), change: QueueChange::Limits(limits), now: 1 })
        .await
        .unwrap();
}

fn concurrency(n: u64) -> QueueLimits {
    QueueLimits { concurrency: Some(n), rate: None }
}

/// A claim that knows these names are governed, with `slots` idle workers.
fn knowing(names: &[&str], slots: u32, c: JobClaim) -> JobClaim {
    JobClaim { governed: names.iter().map(|q| q.to_string()).collect(), limited_slots: slots, ..c }
}

fn count(jobs: &[JobRecord], alias: &str) -> usize {
    jobs.iter().filter(|j| j.alias == alias).count()
}

pub async fn an_alias_limit_holds_across_claimers(store: Arc<dyn Store>) {
    let t = tenant();
    let mut jobs: Vec<NewJob> = (0..6).map(|k| job(&format!("resize-{k}"), "resize", "default")).collect();
    jobs.extend((0..4).map(|k| job(&format!("mail-{k}"), "mail", "default")));
    store.job_insert(jobs, None).await.unwrap();
    let other = create_tenant(store.as_ref(), "other").await;
    let theirs: Vec<NewJob> = (0..3)
        .map(|k| NewJob { tenant: other.clone(), ..job(&format!("their-{k}"), "resize", "default") })
        .collect();
    store.job_insert(theirs, None).await.unwrap();
    let key = alias_limits_name(t.as_str(), "resize");
    limit(&*store, &key, concurrency(2)).await;

    // A node that has not heard of the limit: the alias's jobs are left out.
    let unaware = store.job_claim(claim("n0", 2_000, 20)).await.unwrap();
    assert_eq!(count(&unaware, "resize"), 3, "only the other tenant's resize: {unaware:?}");
    assert!(unaware.iter().filter(|j| j.alias == "resize").all(|j| j.tenant == other));
    assert_eq!(count(&unaware, "mail"), 4);

    let first = store.job_claim(knowing(&[&key], 10, claim("n1", 2_000, 10))).await.unwrap();
    assert_eq!(count(&first, "resize"), 2, "2 at once: {first:?}");
    let second = store.job_claim(knowing(&[&key], 10, claim("n2", 2_000, 10))).await.unwrap();
    assert!(second.is_empty(), "at its limit on every node: {second:?}");
    store.job_complete(vec![done(&first[0].id, "n1", JobStatus::Succeeded, 2_100)]).await.unwrap();
    let third = store.job_claim(knowing(&[&key], 10, claim("n2", 2_200, 10))).await.unwrap();
    assert_eq!(count(&third, "resize"), 1, "one ended, one more: {third:?}");

    // Lifted: the rest run.
    limit(&*store, &key, QueueLimits::default()).await;
    let rest = store.job_claim(claim("n3", 2_300, 10)).await.unwrap();
    assert_eq!(count(&rest, "resize"), 3);
}

/// `resize` may run 3 at once and its queue `gpu` 1: one runs. Its jobs in
/// an unlimited queue are bounded by the alias alone.
pub async fn an_alias_and_its_queue_both_bound_it(store: Arc<dyn Store>) {
    let t = tenant();
    let mut jobs: Vec<NewJob> = (0..4).map(|k| job(&format!("g-{k}"), "resize", "gpu")).collect();
    jobs.extend((0..4).map(|k| job(&format!("d-{k}"), "resize", "default")));
    jobs.extend((0..2).map(|k| job(&format!("o-{k}"), "other", "gpu")));
    store.job_insert(jobs, None).await.unwrap();
    let key = alias_limits_name(t.as_str(), "resize");
    limit(&*store, &key, concurrency(3)).await;
    limit(&*store, "gpu", concurrency(1)).await;
    let names = [key.as_str(), "gpu"];
    let got = store.job_claim(knowing(&names, 10, claim("n1", 2_000, 10))).await.unwrap();
    let in_gpu = got.iter().filter(|j| j.queue == "gpu").count();
    assert_eq!(in_gpu, 1, "gpu's limit: {got:?}");
    assert_eq!(count(&got, "resize"), 3, "the alias's limit: {got:?}");
    let more = store.job_claim(knowing(&names, 10, claim("n2", 2_000, 10))).await.unwrap();
    assert!(more.is_empty(), "{more:?}");
    // A node consuming only `default` takes none of gpu's.
    limit(&*store, &key, concurrency(10)).await;
    let only_default =
        JobClaim { queues: Some(vec!["default".into()]), ..knowing(&names, 10, claim("n3", 2_100, 10)) };
    let got = store.job_claim(only_default).await.unwrap();
    assert!(got.iter().all(|j| j.queue == "default"), "{got:?}");
    assert_eq!(got.len(), 1, "the alias ran 3 of default before: one left: {got:?}");
}

/// A rate on an alias: one bucket for every claimer.
pub async fn an_alias_rate_is_one_bucket(store: Arc<dyn Store>) {
    let t = tenant();
    let jobs: Vec<NewJob> = (0..10).map(|k| job(&format!("r-{k}"), "rated", "default")).collect();
    store.job_insert(jobs, None).await.unwrap();
    let key = alias_limits_name(t.as_str(), "rated");
    let rate = QueueLimits { concurrency: None, rate: Some(Rate { max: 4, per_ms: 1_000, burst: Some(4) }) };
    limit(&*store, &key, rate).await;
    let a = store.job_claim(knowing(&[&key], 10, claim("n1", 10_000, 10))).await.unwrap();
    let b = store.job_claim(knowing(&[&key], 10, claim("n2", 10_000, 10))).await.unwrap();
    assert_eq!(a.len() + b.len(), 4, "the burst, shared: {a:?} {b:?}");
    let later = store.job_claim(knowing(&[&key], 10, claim("n2", 10_500, 10))).await.unwrap();
    assert_eq!(later.len(), 2, "half a second refills 2");
}
