//! Builders the cases share.

use wasmq::domain::{AliasName, Digest, JobStatus, Limits, QueueName, TenantId};
use wasmq::store::*;

pub fn tenant() -> TenantId {
    TenantId::default_tenant()
}

pub fn new_job(id: &str, module: Digest, priority: i32, run_at: i64) -> NewJob {
    NewJob {
        id: id.into(),
        tenant: tenant(),
        alias: AliasName::parse("echo").unwrap(),
        module,
        status: JobStatus::Queued,
        priority,
        queue: QueueName::default_queue(),
        context: None,
        payload: format!("{{\"id\":\"{id}\"}}"),
        max_attempts: 3,
        limits: Limits::default(),
        run_at,
        created_at: 1_000,
        idempotency_key: None,
        idempotency_fingerprint: None,
        batch_id: None,
        callback: None,
        unique: None,
        lease: None,
        trace: None,
    }
}

pub fn lease(id: &str, token: u64) -> Lease {
    Lease { id: id.into(), token }
}

pub fn beat(owner: &str, leases: &[Lease], now: i64, until: i64) -> JobHeartbeat {
    JobHeartbeat { owner: owner.into(), leases: leases.to_vec(), now, lease_expires_at: until }
}

pub fn claim(owner: &str, now: i64, limit: u32) -> JobClaim {
    JobClaim {
        owner: owner.into(),
        now,
        lease_expires_at: now + 1_000,
        limit,
        queues: None,
        governed: vec![],
        limited_slots: limit,
        default_max_running: None,
    }
}

pub fn due_at(now: i64, limit: u32, lease_until: i64) -> CallbackClaim {
    CallbackClaim { now, limit, lease_until, skip_url_prefixes: vec![] }
}

/// The completion of a job's first claim (token 1).
pub fn done(id: &str, owner: &str, status: JobStatus, at: i64) -> JobCompletion {
    JobCompletion {
        id: id.into(),
        tenant: tenant(),
        token: 1,
        owner: owner.into(),
        status,
        result: (status == JobStatus::Succeeded).then(|| "{\"ok\":true}".into()),
        error: (status != JobStatus::Succeeded).then(|| ("trap".into(), "boom".into())),
        fuel_used: 10,
        duration_ms: 1,
        logs: Some("{}".into()),
        progress: Some((100, "done".into())),
        started_at: at - 50,
        finished_at: at,
        run_at: at + 500,
        usage_only: false,
        http: Default::default(),
    }
}

pub async fn all_jobs(store: &dyn Store, t: &TenantId) -> Vec<JobRecord> {
    let list = JobList {
        tenant: t.clone(),
        status: None,
        alias: None,
        queue: None,
        context: None,
        batch: None,
        order: JobOrder::Created,
        limit: 100,
        after: None,
        max_bytes: u64::MAX,
    };
    store.job_list(list).await.unwrap().jobs
}

/// Creates tenant `id` (weight 1, no quotas) and returns it.
pub async fn create_tenant(store: &dyn Store, id: &str) -> TenantId {
    let id = TenantId::parse(id).unwrap();
    let p = TenantCreate {
        id: id.clone(),
        weight: 1,
        quotas: Default::default(),
        callback_allow: vec![],
        now: 1,
    };
    store.tenant_create(p).await.unwrap().id
}

/// A rescue's report as `(requeued id, attempt)` and dead ids, each sorted.
pub fn rescued_ids(r: &wasmq::store::Rescued) -> (Vec<(String, u32)>, Vec<String>) {
    let mut requeued: Vec<(String, u32)> = r.requeued.iter().map(|(j, a)| (j.id.clone(), *a)).collect();
    let mut dead: Vec<String> = r.dead.iter().map(|(j, _)| j.id.clone()).collect();
    requeued.sort();
    dead.sort();
    (requeued, dead)
}
