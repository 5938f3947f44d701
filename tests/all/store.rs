//! The storage conformance suite: one set of semantics every backend must meet.
//! `exercise` takes any `Store`; each backend gets a test that runs it.

use std::sync::Arc;
use wasmq::domain::{
    AliasName, Callback, CallbackState, Digest, IdempotencyKey, JobStatus, Limits, PluginKind, QueueName,
    TenantId,
};
use wasmq::store::*;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn new_job(id: &str, module: Digest, priority: i32, run_at: i64) -> NewJob {
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
        batch_id: None,
        callback: None,
    }
}

fn claim(owner: &str, now: i64, limit: u32) -> JobClaim {
    JobClaim { owner: owner.into(), now, lease_expires_at: now + 1_000, limit, exclude_queues: vec![] }
}

fn done(id: &str, owner: &str, status: JobStatus, at: i64) -> JobCompletion {
    JobCompletion {
        id: id.into(),
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
    }
}

async fn all_jobs(store: &dyn Store, t: &TenantId) -> Vec<JobRecord> {
    let list = JobList {
        tenant: t.clone(),
        status: None,
        alias: None,
        queue: None,
        context: None,
        order: JobOrder::Created,
        limit: 100,
        after: None,
    };
    store.job_list(list).await.unwrap()
}

pub async fn exercise(store: Arc<dyn Store>) {
    let t = tenant();
    store.store_ping().await.expect("a healthy store answers its ping");
    // Modules: content-addressed, deduplicated.
    let bytes = b"\0asm fake module bytes".to_vec();
    let digest = Digest::of(&bytes);
    let put = || ModulePut { tenant: t.clone(), digest, kind: PluginKind::Job, bytes: bytes.clone(), now: 1 };
    let (m, created) = store.module_put(put()).await.unwrap();
    assert!(created);
    assert_eq!((m.size, m.kind), (bytes.len() as u64, PluginKind::Job));
    assert!(!store.module_put(put()).await.unwrap().1);
    assert_eq!(store.module_bytes(&t, &digest).await.unwrap(), bytes);
    let other = TenantId::parse("other").unwrap();
    assert!(
        matches!(store.module_get(&other, &digest).await, Err(StoreError::NotFound(_))),
        "tenant scoping"
    );

    // Aliases: versions count up; rollback re-applies the previous version.
    let name = AliasName::parse("echo").unwrap();
    let set = |priority| AliasSet {
        tenant: t.clone(),
        name: name.clone(),
        module: digest,
        config: AliasConfig { priority: Some(priority), ..AliasConfig::default() },
        now: 2,
    };
    assert_eq!(store.alias_set(set(1)).await.unwrap().version, 1);
    assert_eq!(store.alias_set(set(2)).await.unwrap().version, 2);
    let rolled = store.alias_rollback(&t, &name, 3).await.unwrap();
    assert_eq!((rolled.version, rolled.config.priority), (3, Some(1)));
    assert_eq!(store.alias_history(&t, &name).await.unwrap().len(), 3);
    assert!(matches!(store.module_delete(&t, &digest).await, Err(StoreError::Conflict(_))));

    // Claims: priority first, then due time; never a job twice; delayed jobs wait.
    let jobs = vec![
        new_job("a", digest, 100, 1_000),
        new_job("b", digest, 900, 1_000),
        new_job("c", digest, 900, 900),
        NewJob { status: JobStatus::Scheduled, ..new_job("d", digest, 1000, 5_000) },
    ];
    store.job_insert(jobs, None).await.unwrap();
    let first = store.job_claim(claim("n1", 2_000, 2)).await.unwrap();
    assert_eq!(first.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["c", "b"]);
    assert!(first.iter().all(|j| j.status == JobStatus::Running && j.attempt == 1));
    let second = store.job_claim(claim("n2", 2_000, 10)).await.unwrap();
    assert_eq!(second.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["a"], "d is not due yet");
    // Heartbeats renew only what the owner holds, and say so.
    let ids: Vec<String> = ["c", "b", "a"].iter().map(|s| s.to_string()).collect();
    let mut held = store.job_heartbeat("n1", &ids, 3_000).await.unwrap();
    held.sort();
    assert_eq!(held, ["b", "c"]);
    assert_eq!(store.job_next_due().await.unwrap(), Some(5_000));

    // Completions apply only for the lease holder.
    let applied = store
        .job_complete(vec![
            done("c", "n1", JobStatus::Succeeded, 2_100),
            done("b", "intruder", JobStatus::Succeeded, 2_100),
        ])
        .await
        .unwrap();
    assert_eq!(applied, vec!["c".to_string()]);
    let c = store.job_get(&t, "c").await.unwrap();
    assert_eq!(
        (c.status, c.result.as_deref(), c.finished_at),
        (JobStatus::Succeeded, Some("{\"ok\":true}"), Some(2_100))
    );
    // A retryable failure goes back with its next due time.
    store.job_complete(vec![done("b", "n1", JobStatus::Failed, 2_200)]).await.unwrap();
    let b = store.job_get(&t, "b").await.unwrap();
    assert_eq!((b.status, b.run_at, b.finished_at), (JobStatus::Failed, 2_700, None));
    assert!(store.job_claim(claim("n1", 2_300, 10)).await.unwrap().is_empty());
    let again = store.job_claim(claim("n1", 2_800, 10)).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("b", 2));

    // Expired leases are rescued; released jobs do not lose an attempt.
    assert_eq!(store.job_rescue_expired(3_900).await.unwrap(), 2, "a (n2) and b (n1) expired");
    let a = store.job_get(&t, "a").await.unwrap();
    assert_eq!((a.status, a.lease_owner.as_deref()), (JobStatus::Queued, None));
    let reclaimed = store.job_claim(claim("n3", 3_950, 10)).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert_eq!(store.job_release("n3").await.unwrap(), 2);
    let b = store.job_get(&t, "b").await.unwrap();
    assert_eq!((b.status, b.attempt), (JobStatus::Queued, 2));

    // Cancel and retry.
    let cancelled = store.job_cancel(&t, "a", 4_000).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(matches!(store.job_cancel(&t, "a", 4_001).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.job_cancel(&t, "zzz", 4_001).await, Err(StoreError::NotFound(_))));
    let retried = store.job_retry(&t, "a", 4_100).await.unwrap();
    assert_eq!((retried.status, retried.attempt), (JobStatus::Queued, 0));
    assert!(matches!(store.job_retry(&t, "a", 4_200).await, Err(StoreError::Conflict(_))));

    // Idempotency keys deduplicate per tenant.
    let key = IdempotencyKey::parse("k-1").unwrap();
    let with_key = |id: &str| NewJob { idempotency_key: Some(key.clone()), ..new_job(id, digest, 1, 5_000) };
    let one = store.job_insert(vec![with_key("e")], None).await.unwrap();
    let two = store.job_insert(vec![with_key("f")], None).await.unwrap();
    assert!(one[0].created && !two[0].created);
    assert_eq!(two[0].job.id, "e");

    // Batches: the callback becomes due once every job is terminal.
    let hook = Callback {
        url: "http://127.0.0.1:9/hook".into(),
        headers: Default::default(),
        secret: Some("s".into()),
    };
    let batch =
        NewBatch { id: "batch-1".into(), tenant: t.clone(), callback: Some(hook.clone()), created_at: 5_000 };
    let in_batch = |id: &str| NewJob {
        batch_id: Some("batch-1".into()),
        callback: Some(hook.clone()),
        ..new_job(id, digest, 1, 5_000)
    };
    store.job_insert(vec![in_batch("g"), in_batch("h")], Some(batch)).await.unwrap();
    let b = store.batch_get(&t, "batch-1").await.unwrap();
    assert_eq!((b.total, b.done, b.callback_state), (2, false, Some(CallbackState::Pending)));
    let mut claimed = Vec::new();
    while claimed.len() < 2 {
        for j in store.job_claim(claim("n4", 6_000, 10)).await.unwrap() {
            if j.batch_id.is_some() {
                claimed.push(j.id);
            } else {
                store.job_cancel(&t, &j.id, 6_000).await.unwrap();
            }
        }
    }
    store.job_complete(vec![done("g", "n4", JobStatus::Succeeded, 6_100)]).await.unwrap();
    assert_eq!(store.batch_get(&t, "batch-1").await.unwrap().callback_state, Some(CallbackState::Pending));
    store.job_complete(vec![done("h", "n4", JobStatus::Dead, 6_200)]).await.unwrap();
    let b = store.batch_get(&t, "batch-1").await.unwrap();
    assert!(b.done);
    assert_eq!((b.counts["succeeded"], b.counts["dead"]), (1, 1));
    let due = store.callback_due(7_000, 10).await.unwrap();
    let owners: Vec<(CallbackOwner, &str)> = due.iter().map(|d| (d.owner, d.id.as_str())).collect();
    assert!(owners.contains(&(CallbackOwner::Batch, "batch-1")), "{owners:?}");
    assert!(owners.contains(&(CallbackOwner::Job, "g")) && owners.contains(&(CallbackOwner::Job, "h")));
    assert_eq!(due.iter().find(|d| d.id == "g").unwrap().callback.secret.as_deref(), Some("s"));
    for d in &due {
        let record = CallbackRecord {
            owner: d.owner,
            id: d.id.clone(),
            state: CallbackState::Delivered,
            error: None,
            next_at: None,
        };
        store.callback_record(record).await.unwrap();
    }
    assert!(store.callback_due(8_000, 10).await.unwrap().is_empty(), "delivered once");

    // Listing: keyset pages cover everything exactly once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .job_list(JobList {
                tenant: t.clone(),
                status: None,
                alias: None,
                queue: None,
                context: None,
                order: JobOrder::Priority,
                limit: 2,
                after: after.clone(),
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|j| j.id.clone());
        seen.extend(page.into_iter().map(|j| (j.priority, j.id)));
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 7, "{seen:?}");
    let counts = store.status_counts(&t).await.unwrap();
    assert_eq!(counts.by_status.values().sum::<u64>(), 7);

    // Retention: only finished jobs past the cutoff whose callbacks are settled.
    let before: Vec<String> =
        all_jobs(store.as_ref(), &t).await.into_iter().map(|j| format!("{}:{:?}", j.id, j.status)).collect();
    assert_eq!(store.job_prune(2_000, 100).await.unwrap(), 0, "nothing finished before 2000: {before:?}");
    let pruned = store.job_prune(10_000, 100).await.unwrap();
    let left = all_jobs(store.as_ref(), &t).await;
    assert_eq!(pruned as usize + left.len(), 7);
    assert!(left.iter().all(|j| !j.status.is_terminal()), "a finished job survived: {left:?}");
    assert!(pruned >= 4, "c, g, h and the cancelled ones go: {pruned}");
}

#[tokio::test]
async fn sqlite_meets_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    exercise(Arc::new(store)).await;
}

#[tokio::test]
async fn a_sqlite_store_whose_file_was_removed_or_replaced_fails_its_ping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    store.store_ping().await.unwrap();
    // Open connections keep working on the removed file; the ping notices.
    std::fs::rename(&path, dir.path().join("moved.db")).unwrap();
    let err = store.store_ping().await.unwrap_err().to_string();
    assert!(err.contains("ping.db") && err.contains("no longer the one opened"), "{err}");
    std::fs::write(&path, b"").unwrap();
    let err = store.store_ping().await.unwrap_err().to_string();
    assert!(err.contains("another file is at its path"), "{err}");
    std::fs::rename(dir.path().join("moved.db"), &path).unwrap();
    store.store_ping().await.expect("the original file is back");
}
