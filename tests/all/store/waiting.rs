//! Waiting jobs per tenant: the figures behind per-tenant backpressure.

use std::sync::Arc;
use wasmq::domain::{Digest, JobStatus, TenantId, TenantQuotas};
use wasmq::store::*;

use super::support::*;

/// `job_waiting` counts queued, scheduled and retrying jobs per tenant, and
/// leaves out running and finished ones and tenants with none.
pub async fn exercise_waiting_per_tenant(store: Arc<dyn Store>) {
    let other = TenantId::parse("other").unwrap();
    let create = TenantCreate {
        id: other.clone(),
        weight: 1,
        quotas: TenantQuotas::default(),
        callback_allow: vec![],
        now: 1_000,
    };
    store.tenant_create(create).await.unwrap();
    assert_eq!(store.job_waiting().await.unwrap(), []);
    let digest = Digest::of(b"waiting");
    let later = NewJob { status: JobStatus::Scheduled, ..new_job("later", digest, 1, 50_000) };
    let jobs = vec![new_job("a", digest, 1, 1_000), new_job("b", digest, 1, 1_000), later];
    store.job_insert(jobs, None).await.unwrap();
    let theirs = NewJob { tenant: other.clone(), ..new_job("c", digest, 1, 1_000) };
    store.job_insert(vec![theirs], None).await.unwrap();
    let mut counts = store.job_waiting().await.unwrap();
    counts.sort();
    assert_eq!(counts, [(tenant(), 3), (other.clone(), 1)]);

    // Claimed and finished jobs wait no more.
    let claimed = store.job_claim(claim("n1", 2_000, 10)).await.unwrap();
    assert_eq!(claimed.len(), 3, "a, b and c are due; later is not");
    let first = claimed.iter().find(|j| j.tenant == tenant()).unwrap();
    store.job_complete(vec![done(&first.id, "n1", JobStatus::Succeeded, 2_100)]).await.unwrap();
    assert_eq!(store.job_waiting().await.unwrap(), [(tenant(), 1)], "only `later` waits");
}
