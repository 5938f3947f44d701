//! Fair claims across tenants: shares by weight (counting what runs), priority
//! within a tenant only, `max_running` (quota or server default) holding even
//! when one tenant's backlog is the only work, and never a job twice.

use std::collections::HashSet;
use std::sync::Arc;
use wasmq::domain::{Digest, JobStatus, TenantId, TenantQuotas};
use wasmq::store::*;

use super::support::{claim, done, new_job};

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

async fn create(store: &dyn Store, id: &str, weight: u32, max_running: Option<u64>) -> TenantId {
    let quotas = TenantQuotas { max_running, ..TenantQuotas::default() };
    let p = TenantCreate { id: tenant(id), weight, quotas, callback_allow: vec![], now: 1 };
    store.tenant_create(p).await.unwrap().id
}

/// Inserts `n` queued jobs of `t` (ids `<t>-<k>`), all due at 1,000.
async fn flood(store: &dyn Store, t: &TenantId, n: usize, priority: i32) {
    let digest = Digest::of(b"fairness module");
    let jobs = (0..n)
        .map(|k| NewJob { tenant: t.clone(), ..new_job(&format!("{t}-{k:03}"), digest, priority, 1_000) })
        .collect();
    store.job_insert(jobs, None).await.unwrap();
}

fn tenants_of(jobs: &[JobRecord]) -> Vec<&str> {
    jobs.iter().map(|j| j.tenant.as_str()).collect()
}

fn count(jobs: &[JobRecord], t: &TenantId) -> usize {
    jobs.iter().filter(|j| &j.tenant == t).count()
}

pub async fn claims_share_by_weight(store: Arc<dyn Store>) {
    let heavy = create(&*store, "heavy", 3, None).await;
    let light = create(&*store, "light", 1, None).await;
    flood(&*store, &heavy, 30, 0).await;
    flood(&*store, &light, 30, 0).await;

    let first = store.job_claim(claim("n1", 2_000, 8)).await.unwrap();
    assert_eq!((count(&first, &heavy), count(&first, &light)), (6, 2), "3:1 by weight");
    assert_eq!(
        tenants_of(&first)[..4],
        ["heavy", "light", "heavy", "heavy"],
        "interleaved in the order a node should start them"
    );
    // Another node's claim counts what runs already: the share holds overall.
    let second = store.job_claim(claim("n2", 2_000, 4)).await.unwrap();
    assert_eq!((count(&second, &heavy), count(&second, &light)), (3, 1));
    // Finished jobs stop counting: light finished both of its first jobs, so
    // it is the one furthest below its share now.
    let light_done: Vec<JobCompletion> = first
        .iter()
        .filter(|j| j.tenant == light)
        .map(|j| done(&j.id, "n1", JobStatus::Succeeded, 2_100))
        .collect();
    assert_eq!(store.job_complete(light_done).await.unwrap().applied.len(), 2);
    let third = store.job_claim(claim("n1", 2_200, 2)).await.unwrap();
    assert_eq!(tenants_of(&third), ["light", "light"]);

    // Claimed once each, and each tenant's jobs in its own claim order.
    let all: Vec<&JobRecord> = first.iter().chain(&second).chain(&third).collect();
    let ids: HashSet<&str> = all.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "no job claimed twice");
    let heavy_ids: Vec<&str> = all.iter().filter(|j| j.tenant == heavy).map(|j| j.id.as_str()).collect();
    assert!(heavy_ids.is_sorted(), "oldest first within a tenant: {heavy_ids:?}");
}

pub async fn priorities_apply_within_a_tenant(store: Arc<dyn Store>) {
    let urgent = create(&*store, "urgent", 1, None).await;
    let calm = create(&*store, "calm", 1, None).await;
    flood(&*store, &urgent, 10, 1_000).await;
    let digest = Digest::of(b"fairness module");
    let calm_jobs = [("calm-low", 1), ("calm-high", 9), ("calm-mid", 5)]
        .into_iter()
        .map(|(id, p)| NewJob { tenant: calm.clone(), ..new_job(id, digest, p, 1_000) })
        .collect();
    store.job_insert(calm_jobs, None).await.unwrap();

    // Another tenant's higher priorities do not starve this one...
    let got = store.job_claim(claim("n1", 2_000, 4)).await.unwrap();
    assert_eq!((count(&got, &urgent), count(&got, &calm)), (2, 2));
    // ...and its own jobs come highest priority first.
    let calm_ids: Vec<&str> = got.iter().filter(|j| j.tenant == calm).map(|j| j.id.as_str()).collect();
    assert_eq!(calm_ids, ["calm-high", "calm-mid"]);
    // Once a tenant runs out, its slots go to the others.
    let got = store.job_claim(claim("n1", 2_000, 10)).await.unwrap();
    assert_eq!((count(&got, &urgent), count(&got, &calm)), (8, 1));
    assert!(store.job_claim(claim("n1", 2_000, 10)).await.unwrap().is_empty());
}

pub async fn max_running_holds_even_alone(store: Arc<dyn Store>) {
    let capped = create(&*store, "capped", 5, Some(2)).await;
    flood(&*store, &capped, 10, 0).await;
    let got = store.job_claim(claim("n1", 2_000, 10)).await.unwrap();
    assert_eq!(got.len(), 2, "its quota, though it is the only work");
    assert!(store.job_claim(claim("n2", 2_000, 10)).await.unwrap().is_empty(), "across nodes too");
    store.job_complete(vec![done(&got[0].id, "n1", JobStatus::Succeeded, 2_100)]).await.unwrap();
    assert_eq!(
        store.job_claim(claim("n2", 2_200, 10)).await.unwrap().len(),
        1,
        "a finished job frees a slot"
    );

    // The server's default binds tenants whose quota says nothing, and a
    // capped tenant's slots go to the others.
    let other = create(&*store, "other", 1, None).await;
    flood(&*store, &other, 10, 0).await;
    let with_default = |now| JobClaim { default_max_running: Some(3), ..claim("n1", now, 10) };
    let got = store.job_claim(with_default(2_300)).await.unwrap();
    assert_eq!((count(&got, &other), count(&got, &capped)), (3, 0));
    assert!(store.job_claim(with_default(2_400)).await.unwrap().is_empty());

    // Concurrent claims never take a tenant past its quota together.
    let many = create(&*store, "many", 1, None).await;
    flood(&*store, &many, 20, 0).await;
    let claims = (0..6).map(|k| {
        let store = store.clone();
        tokio::spawn(async move { store.job_claim(with_default(3_000 + k)).await.unwrap() })
    });
    let mut total = 0;
    for c in claims {
        let got = c.await.unwrap();
        assert!(got.iter().all(|j| j.tenant == many), "the others are at their limits");
        total += got.len();
    }
    assert_eq!(total, 3);
}

pub async fn delayed_work_takes_no_share(store: Arc<dyn Store>) {
    let later = create(&*store, "later", 10, None).await;
    let now = create(&*store, "now", 1, None).await;
    let digest = Digest::of(b"fairness module");
    let delayed = (0..5)
        .map(|k| NewJob {
            tenant: later.clone(),
            status: JobStatus::Scheduled,
            ..new_job(&format!("later-{k}"), digest, 0, 50_000)
        })
        .collect();
    store.job_insert(delayed, None).await.unwrap();
    flood(&*store, &now, 6, 0).await;
    let got = store.job_claim(claim("n1", 2_000, 4)).await.unwrap();
    assert_eq!(tenants_of(&got), ["now"; 4], "the slots of a tenant with nothing due go to the others");
    let got = store.job_claim(claim("n1", 60_000, 10)).await.unwrap();
    assert_eq!((count(&got, &later), count(&got, &now)), (5, 2));
}
