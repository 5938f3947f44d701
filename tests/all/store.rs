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
        idempotency_fingerprint: None,
        batch_id: None,
        callback: None,
    }
}

fn lease(id: &str, token: u64) -> Lease {
    Lease { id: id.into(), token }
}

fn beat(owner: &str, leases: &[Lease], now: i64, until: i64) -> JobHeartbeat {
    JobHeartbeat { owner: owner.into(), leases: leases.to_vec(), now, lease_expires_at: until }
}

fn claim(owner: &str, now: i64, limit: u32) -> JobClaim {
    JobClaim { owner: owner.into(), now, lease_expires_at: now + 1_000, limit, exclude_queues: vec![] }
}

fn due_at(now: i64, limit: u32, lease_until: i64) -> CallbackClaim {
    CallbackClaim { now, limit, lease_until, skip_url_prefixes: vec![] }
}

/// The completion of a job's first claim (token 1).
fn done(id: &str, owner: &str, status: JobStatus, at: i64) -> JobCompletion {
    JobCompletion {
        id: id.into(),
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
        max_bytes: u64::MAX,
    };
    store.job_list(list).await.unwrap().jobs
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
        keep_versions: 100,
    };
    assert_eq!(store.alias_set(set(1)).await.unwrap().version, 1);
    assert_eq!(store.alias_set(set(2)).await.unwrap().version, 2);
    let rollback = AliasRollback { tenant: t.clone(), name: name.clone(), now: 3, keep_versions: 100 };
    let rolled = store.alias_rollback(rollback).await.unwrap();
    assert_eq!((rolled.version, rolled.config.priority), (3, Some(1)));
    let history = AliasHistory { tenant: t.clone(), name: name.clone(), limit: 100, before: None };
    assert_eq!(store.alias_history(history).await.unwrap().len(), 3);
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
    let leases: Vec<Lease> = ["c", "b", "a"].iter().map(|s| lease(s, 1)).collect();
    let mut held = store.job_heartbeat(beat("n1", &leases, 2_000, 3_000)).await.unwrap();
    held.sort();
    assert_eq!(held, [lease("b", 1), lease("c", 1)]);
    assert_eq!(store.job_next_due().await.unwrap(), Some(5_000));

    // Completions apply only for the lease holder.
    let applied = store
        .job_complete(vec![
            done("c", "n1", JobStatus::Succeeded, 2_100),
            done("b", "intruder", JobStatus::Succeeded, 2_100),
        ])
        .await
        .unwrap();
    assert_eq!(applied, vec![lease("c", 1)]);
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
    assert_eq!((again[0].id.as_str(), again[0].attempt, again[0].lease_token), ("b", 2, 2));

    // Expired leases are rescued; released jobs do not lose an attempt.
    let rescued = store.job_rescue_expired(3_900).await.unwrap();
    assert_eq!(rescued, Rescued { requeued: 2, dead: vec![] }, "a (n2) and b (n1) expired");
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
    // Claims respect the limit (batches first) and hand a callback to one sender.
    let mut due = store.callback_due(due_at(7_000, 1, 60_000)).await.unwrap();
    assert_eq!(
        due.iter().map(|d| (d.owner, d.id.as_str())).collect::<Vec<_>>(),
        [(CallbackOwner::Batch, "batch-1")]
    );
    due.extend(store.callback_due(due_at(7_000, 10, 60_000)).await.unwrap());
    assert_eq!(due.len(), 3);
    assert!(
        store.callback_due(due_at(7_500, 10, 60_000)).await.unwrap().is_empty(),
        "claimed: not handed out twice"
    );
    // A claim whose sender died lapses at its lease: due again, except for
    // receivers the caller skips (by URL prefix: scheme, host, port).
    let skip =
        |prefix: &str| CallbackClaim { skip_url_prefixes: vec![prefix.into()], ..due_at(60_000, 10, 70_000) };
    assert_eq!(store.callback_due(skip("http://127.0.0.1:9/")).await.unwrap().len(), 0);
    assert_eq!(store.callback_due(skip("http://127.0.0.1:90/")).await.unwrap().len(), 3);
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
    assert!(store.callback_due(due_at(80_000, 10, 90_000)).await.unwrap().is_empty(), "delivered once");

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
                max_bytes: u64::MAX,
            })
            .await
            .unwrap()
            .jobs;
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
    assert_eq!(pruned as usize + left.len(), 7 + 1, "the jobs, and batch-1 once its jobs are gone");
    assert!(left.iter().all(|j| !j.status.is_terminal()), "a finished job survived: {left:?}");
    assert!(pruned >= 5, "c, g, h, the cancelled ones and batch-1 go: {pruned}");
    assert!(matches!(store.batch_get(&t, "batch-1").await, Err(StoreError::NotFound(_))));

    // A finished batch goes with its jobs, but only once its callback is final.
    for (batch, callback) in [("batch-2", None), ("batch-3", Some(hook.clone()))] {
        let b = NewBatch { id: batch.into(), tenant: t.clone(), callback, created_at: 20_000 };
        let job =
            NewJob { batch_id: Some(batch.into()), ..new_job(&format!("{batch}-job"), digest, 900, 20_000) };
        store.job_insert(vec![job], Some(b)).await.unwrap();
    }
    let mut ran = Vec::new();
    while ran.len() < 2 {
        for j in store.job_claim(claim("n5", 21_000, 10)).await.unwrap() {
            if j.batch_id.is_some() {
                ran.push(j.id);
            } else {
                store.job_cancel(&t, &j.id, 21_000).await.unwrap();
            }
        }
    }
    let finished: Vec<JobCompletion> =
        ran.iter().map(|id| done(id, "n5", JobStatus::Succeeded, 21_100)).collect();
    store.job_complete(finished).await.unwrap();
    store.job_prune(30_000, 100).await.unwrap();
    assert!(
        matches!(store.batch_get(&t, "batch-2").await, Err(StoreError::NotFound(_))),
        "no callback: goes"
    );
    let kept = store.batch_get(&t, "batch-3").await.unwrap();
    assert_eq!(kept.callback_state, Some(CallbackState::Sending), "its callback is still to deliver");
    let due = store.callback_due(due_at(30_000, 10, 40_000)).await.unwrap();
    let batch_due = due.iter().find(|d| d.id == "batch-3").expect("batch-3's callback is due");
    let record = CallbackRecord {
        owner: CallbackOwner::Batch,
        id: batch_due.id.clone(),
        state: CallbackState::Failed,
        error: Some("connection failed".into()),
        next_at: None,
    };
    store.callback_record(record).await.unwrap();
    store.job_prune(30_000, 100).await.unwrap();
    assert!(matches!(store.batch_get(&t, "batch-3").await, Err(StoreError::NotFound(_))), "final: goes");
}

/// Fencing: each claim gets a new token, and the writes of a run whose claim is
/// no longer the job's current one (rescued, claimed again, retried) never land.
/// Leases end at `now + 1_000` (see `claim`).
pub async fn fencing(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"fencing");
    let hook = Callback { url: "http://127.0.0.1:9/hook".into(), headers: Default::default(), secret: None };
    let twice = NewJob { max_attempts: 2, ..new_job("twice", digest, 1, 1_000) };
    let once = NewJob {
        max_attempts: 1,
        batch_id: Some("fb".into()),
        callback: Some(hook.clone()),
        ..new_job("once", digest, 1, 1_000)
    };
    store.job_insert(vec![twice], None).await.unwrap();
    let batch = NewBatch { id: "fb".into(), tenant: t.clone(), callback: Some(hook), created_at: 1_000 };
    store.job_insert(vec![once], Some(batch)).await.unwrap();
    let first = store.job_claim(claim("n1", 2_000, 10)).await.unwrap();
    let mut claims: Vec<(String, u32, u64)> =
        first.iter().map(|j| (j.id.clone(), j.attempt, j.lease_token)).collect();
    claims.sort();
    assert_eq!(claims, [("once".into(), 1, 1), ("twice".into(), 1, 1)]);

    // The node stalls past its leases. A lapsed lease is not renewed, even
    // before anyone rescued the job.
    let both = [lease("once", 1), lease("twice", 1)];
    assert_eq!(store.job_heartbeat(beat("n1", &both, 3_100, 4_100)).await.unwrap(), []);
    assert_eq!(store.job_get(&t, "twice").await.unwrap().status, JobStatus::Running);

    // The rescue: attempts left -> queued; the last attempt -> dead, with the
    // reason, and ending as every terminal transition does.
    let rescued = store.job_rescue_expired(3_500).await.unwrap();
    assert_eq!(rescued, Rescued { requeued: 1, dead: vec!["once".into()] });
    let once = store.job_get(&t, "once").await.unwrap();
    assert_eq!((once.status, once.finished_at, once.lease_owner), (JobStatus::Dead, Some(3_500), None));
    let reason = "the worker running attempt 1 of 1 stopped renewing its lease";
    assert_eq!(once.error, Some(("lease_expired".into(), reason.into())));
    assert_eq!(once.callback_state, Some(CallbackState::Sending));
    let fb = store.batch_get(&t, "fb").await.unwrap();
    assert_eq!((fb.done, fb.callback_state), (true, Some(CallbackState::Sending)));
    let due: Vec<(CallbackOwner, String)> = store
        .callback_due(due_at(3_500, 10, 60_000))
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.owner, d.id))
        .collect();
    assert!(due.contains(&(CallbackOwner::Job, "once".into())), "{due:?}");
    assert!(due.contains(&(CallbackOwner::Batch, "fb".into())), "{due:?}");
    let twice = store.job_get(&t, "twice").await.unwrap();
    assert_eq!((twice.status, twice.attempt, twice.lease_owner), (JobStatus::Queued, 1, None));
    let reason = "the worker running attempt 1 of 2 stopped renewing its lease";
    assert_eq!(twice.error, Some(("lease_expired".into(), reason.into())));
    assert!(store.job_rescue_expired(3_600).await.unwrap() == Rescued::default(), "rescued once");

    // The stale run's writes are refused while the job waits...
    let stale = lease("twice", 1);
    let stale_done = |status, at| done("twice", "n1", status, at);
    assert_eq!(
        store.job_heartbeat(beat("n1", std::slice::from_ref(&stale), 3_600, 4_600)).await.unwrap(),
        []
    );
    assert!(!store.job_progress(&stale, 50, "stale").await.unwrap());
    assert_eq!(store.job_complete(vec![stale_done(JobStatus::Succeeded, 3_600)]).await.unwrap(), []);
    let twice = store.job_get(&t, "twice").await.unwrap();
    assert_eq!((twice.status, twice.result, twice.progress), (JobStatus::Queued, None, None));

    // ... and after the same node claimed it again, under a new token.
    let again = store.job_claim(claim("n1", 3_700, 10)).await.unwrap();
    assert_eq!(again.len(), 1, "the dead job is not claimed");
    assert_eq!((again[0].id.as_str(), again[0].attempt, again[0].lease_token), ("twice", 2, 2));
    let current = again[0].lease();
    let held =
        store.job_heartbeat(beat("n1", &[stale.clone(), current.clone()], 3_800, 4_800)).await.unwrap();
    assert_eq!(held, [lease("twice", 2)], "only the current claim is renewed");
    assert!(!store.job_progress(&stale, 10, "stale").await.unwrap());
    assert!(store.job_progress(&current, 60, "current").await.unwrap());
    let stale_cancel = JobCompletion {
        error: Some(("cancelled".into(), "cancelled".into())),
        ..stale_done(JobStatus::Dead, 3_900)
    };
    assert_eq!(store.job_complete(vec![stale_cancel]).await.unwrap(), []);
    let twice = store.job_get(&t, "twice").await.unwrap();
    assert_eq!((twice.status, twice.attempt), (JobStatus::Running, 2));
    assert_eq!(twice.progress, Some((60, "current".into())));
    // In one batch with the current run's completion, only that one applies.
    let current_done = JobCompletion { token: 2, ..done("twice", "n1", JobStatus::Succeeded, 4_000) };
    let applied = store.job_complete(vec![stale_done(JobStatus::Dead, 4_000), current_done]).await.unwrap();
    assert_eq!(applied, [lease("twice", 2)]);
    let twice = store.job_get(&t, "twice").await.unwrap();
    assert_eq!((twice.status, twice.result.as_deref()), (JobStatus::Succeeded, Some("{\"ok\":true}")));

    // Retry resets the attempts and release lowers them, but the next claim
    // always gets a new token, and the earlier runs stay fenced off.
    let retried = store.job_retry(&t, "once", 5_000).await.unwrap();
    assert_eq!((retried.attempt, retried.lease_token), (0, 1));
    let third = store.job_claim(claim("n2", 5_000, 10)).await.unwrap();
    assert_eq!((third[0].id.as_str(), third[0].attempt, third[0].lease_token), ("once", 1, 2));
    assert_eq!(store.job_release("n2").await.unwrap(), 1);
    let fourth = store.job_claim(claim("n3", 5_100, 10)).await.unwrap();
    assert_eq!((fourth[0].attempt, fourth[0].lease_token), (1, 3));
    for token in [1, 2] {
        let old = JobCompletion { token, ..done("once", "n3", JobStatus::Succeeded, 5_200) };
        assert_eq!(store.job_complete(vec![old]).await.unwrap(), [], "token {token}");
    }
    let fenced = store.job_heartbeat(beat("n3", &[lease("once", 2), lease("once", 3)], 5_200, 6_200)).await;
    assert_eq!(fenced.unwrap(), [lease("once", 3)]);
    // A lease lapsing on the last attempt after a retry: dead again, same reason.
    let rescued = store.job_rescue_expired(7_000).await.unwrap();
    assert_eq!(rescued, Rescued { requeued: 0, dead: vec!["once".into()] });
    let once = store.job_get(&t, "once").await.unwrap();
    assert_eq!((once.status, once.attempt, once.finished_at), (JobStatus::Dead, 1, Some(7_000)));
}

#[tokio::test]
async fn sqlite_meets_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store = connect(&url).await.unwrap();
    exercise(store.clone()).await;
    exercise_watch_and_pages(store).await;
}

/// `job_watch` reads what watchers follow; `job_list` pages are bounded in
/// jobs and in bytes, and walking them visits every job once.
pub async fn exercise_watch_and_pages(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"watch and pages");
    assert!(matches!(store.job_watch(&t, "nope").await, Err(StoreError::NotFound(_))));
    let ids: Vec<String> = (0..5).map(|i| format!("page-{i}")).collect();
    let big = |id: &String| NewJob {
        context: Some("pages".into()),
        payload: format!("\"{}\"", "x".repeat(9_998)), // 10,000 bytes
        ..new_job(id, digest, 500, 1_000)
    };
    store.job_insert(ids.iter().map(big).collect(), None).await.unwrap();
    let watched = store.job_watch(&t, "page-0").await.unwrap();
    assert_eq!(watched, JobWatch { status: JobStatus::Queued, attempt: 0, progress: None });

    // Each job counts its payload and context (5 bytes) plus the fixed share.
    let each = 10_000 + 5 + JOB_FIXED_BYTES;
    let walk = |order: JobOrder, limit: u32, max_bytes: u64| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let (mut pages, mut after) = (Vec::new(), None);
            loop {
                let list = JobList {
                    tenant: t.clone(),
                    status: None,
                    alias: None,
                    queue: None,
                    context: Some("pages".into()),
                    order,
                    limit,
                    after: after.clone(),
                    max_bytes,
                };
                let page = store.job_list(list).await.unwrap();
                after = page.jobs.last().map(|j| j.id.clone());
                pages.push(page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>());
                if !page.more {
                    return pages;
                }
                assert!(!page.jobs.is_empty(), "an empty page says more follow");
            }
        }
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    for order in [JobOrder::Created, JobOrder::Priority] {
        let expected = if order == JobOrder::Created { newest_first.clone() } else { ids.clone() };
        let sizes = |pages: &Vec<Vec<String>>| pages.iter().map(Vec::len).collect::<Vec<_>>();
        let pages = walk(order, 100, 2 * each).await;
        assert_eq!(sizes(&pages), [2, 2, 1], "{order:?}: two jobs fit the budget");
        assert_eq!(pages.concat(), expected, "{order:?}: every job once, in order");
        let pages = walk(order, 100, 2 * each - 1).await;
        assert_eq!(sizes(&pages), [1, 1, 1, 1, 1], "{order:?}: one job always goes");
        assert_eq!(pages.concat(), expected);
        assert_eq!(sizes(&walk(order, 5, u64::MAX).await), [5], "{order:?}: exactly full is the last page");
        assert_eq!(sizes(&walk(order, 4, u64::MAX).await), [4, 1]);
    }

    // Watching follows claims, progress and completions, without the payload.
    let claimed = store.job_claim(claim("w1", 2_000, 100)).await.unwrap();
    let lease = claimed.iter().find(|j| j.id == "page-0").expect("page-0 claimed").lease();
    let running = JobWatch { status: JobStatus::Running, attempt: 1, progress: None };
    assert_eq!(store.job_watch(&t, "page-0").await.unwrap(), running);
    assert!(store.job_progress(&lease, 40, "sieving").await.unwrap());
    let progress = Some((40, "sieving".to_string()));
    assert_eq!(store.job_watch(&t, "page-0").await.unwrap(), JobWatch { progress, ..running });
    store.job_complete(vec![done("page-0", "w1", JobStatus::Succeeded, 2_100)]).await.unwrap();
    let ended = store.job_watch(&t, "page-0").await.unwrap();
    assert_eq!(
        (ended.status, ended.attempt, ended.progress),
        (JobStatus::Succeeded, 1, Some((100, "done".into())))
    );
}

#[tokio::test]
async fn sqlite_fences_stale_claims() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fencing.db").display());
    let store = connect(&url).await.unwrap();
    fencing(store).await;
}

/// Idempotency keys: the same request gets the first job, another request with
/// the key is a conflict that writes nothing; a batch owns only the jobs it
/// created, so it still finishes when some of its keys existed.
pub async fn exercise_idempotency_and_batch_totals(store: Arc<dyn Store>) {
    let t = tenant();
    let bytes = b"\0asm idempotency module".to_vec();
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: t.clone(), digest, kind: PluginKind::Job, bytes, now: 1 };
    store.module_put(put).await.unwrap();
    let keyed = |id: &str, key: &str, fingerprint: Option<&str>| NewJob {
        idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
        idempotency_fingerprint: fingerprint.map(Into::into),
        ..new_job(id, digest, 1, 1_000)
    };

    let first = store.job_insert(vec![keyed("k1", "key-1", Some("fp-a"))], None).await.unwrap();
    assert!(first[0].created);
    let again = store.job_insert(vec![keyed("k1-again", "key-1", Some("fp-a"))], None).await.unwrap();
    assert_eq!((again[0].created, again[0].job.id.as_str()), (false, "k1"), "same request: first job");
    // A different request with the key: refused, and nothing of that insert lands.
    let mixed = vec![new_job("unkeyed", digest, 1, 1_000), keyed("k1-other", "key-1", Some("fp-b"))];
    match store.job_insert(mixed, None).await {
        Err(StoreError::IdempotencyConflict { key }) => assert_eq!(key, "key-1"),
        other => panic!("expected IdempotencyConflict, got {other:?}"),
    }
    assert!(matches!(store.job_get(&t, "unkeyed").await, Err(StoreError::NotFound(_))), "rolled back");
    assert!(matches!(store.job_get(&t, "k1-other").await, Err(StoreError::NotFound(_))));
    // No fingerprint on either side (rows from before fingerprints) matches anything.
    store.job_insert(vec![keyed("k2", "key-2", None)], None).await.unwrap();
    let legacy = store.job_insert(vec![keyed("k2-again", "key-2", Some("fp-x"))], None).await.unwrap();
    assert_eq!((legacy[0].created, legacy[0].job.id.as_str()), (false, "k2"));
    // Within one insert, a repeated key is checked against the first occurrence.
    let twice = vec![keyed("k3", "key-3", Some("fp-c")), keyed("k3-dup", "key-3", Some("fp-d"))];
    assert!(matches!(store.job_insert(twice, None).await, Err(StoreError::IdempotencyConflict { .. })));
    assert!(matches!(store.job_get(&t, "k3").await, Err(StoreError::NotFound(_))));

    // A batch whose keys partly existed owns only the jobs it created...
    let hook = Callback { url: "http://127.0.0.1:9/batch".into(), headers: Default::default(), secret: None };
    let batch = |id: &str| NewBatch {
        id: id.into(),
        tenant: t.clone(),
        callback: Some(hook.clone()),
        created_at: 2_000,
    };
    let in_batch = |job: NewJob, batch: &str| NewJob { batch_id: Some(batch.into()), ..job };
    let jobs = vec![
        in_batch(keyed("b1", "key-1", Some("fp-a")), "batch-k"),
        in_batch(new_job("b2", digest, 1, 1_000), "batch-k"),
        in_batch(keyed("b3", "key-4", Some("fp-e")), "batch-k"),
        in_batch(keyed("b3-dup", "key-4", Some("fp-e")), "batch-k"),
    ];
    let inserted = store.job_insert(jobs, Some(batch("batch-k"))).await.unwrap();
    let ids: Vec<(&str, bool)> = inserted.iter().map(|i| (i.job.id.as_str(), i.created)).collect();
    assert_eq!(ids, [("k1", false), ("b2", true), ("b3", true), ("b3", false)]);
    let b = store.batch_get(&t, "batch-k").await.unwrap();
    assert_eq!((b.total, b.done, b.callback_state), (2, false, Some(CallbackState::Pending)));
    // ...and finishes when those end, whatever the existing job does.
    let mut claimed = Vec::new();
    while !(claimed.contains(&"b2".to_string()) && claimed.contains(&"b3".to_string())) {
        let got = store.job_claim(claim("nk", 3_000, 10)).await.unwrap();
        assert!(!got.is_empty(), "b2 and b3 are claimable");
        claimed.extend(got.into_iter().map(|j| j.id));
    }
    let ends =
        vec![done("b2", "nk", JobStatus::Succeeded, 3_100), done("b3", "nk", JobStatus::Succeeded, 3_100)];
    store.job_complete(ends).await.unwrap();
    let b = store.batch_get(&t, "batch-k").await.unwrap();
    assert_eq!((b.total, b.done, b.callback_state), (2, true, Some(CallbackState::Sending)));
    assert_eq!(store.job_get(&t, "k1").await.unwrap().batch_id, None, "the existing job stays its own");

    // A batch of only existing jobs owns none: it is done, its callback due now.
    let inserted = store
        .job_insert(vec![in_batch(keyed("z", "key-2", None), "batch-empty")], Some(batch("batch-empty")))
        .await
        .unwrap();
    assert!(!inserted[0].created);
    let b = store.batch_get(&t, "batch-empty").await.unwrap();
    assert_eq!((b.total, b.done, b.callback_state), (0, true, Some(CallbackState::Sending)));
    let due = store.callback_due(due_at(2_000, 100, 60_000)).await.unwrap();
    assert!(due.iter().any(|d| d.owner == CallbackOwner::Batch && d.id == "batch-empty"));
}

/// Alias history is bounded (older versions pruned on write, rollback still
/// works) and read in pages, newest first.
pub async fn exercise_alias_history(store: Arc<dyn Store>) {
    let t = tenant();
    let bytes = b"\0asm alias history module".to_vec();
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: t.clone(), digest, kind: PluginKind::Job, bytes, now: 1 };
    store.module_put(put).await.unwrap();
    let name = AliasName::parse("hist").unwrap();
    let set = |priority: u16, keep: u32| AliasSet {
        tenant: t.clone(),
        name: name.clone(),
        module: digest,
        config: AliasConfig { priority: Some(priority), ..AliasConfig::default() },
        now: i64::from(priority),
        keep_versions: keep,
    };
    let page = |limit: u32, before: Option<i64>| AliasHistory {
        tenant: t.clone(),
        name: name.clone(),
        limit,
        before,
    };
    let versions = |h: Vec<AliasVersion>| h.into_iter().map(|v| v.version).collect::<Vec<_>>();
    for p in 1..=10 {
        assert_eq!(store.alias_set(set(p, 4)).await.unwrap().version, i64::from(p));
    }
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [10, 9, 8, 7], "newest 4 kept");
    assert_eq!(versions(store.alias_history(page(3, None)).await.unwrap()), [10, 9, 8]);
    assert_eq!(versions(store.alias_history(page(3, Some(8))).await.unwrap()), [7]);
    assert!(store.alias_history(page(3, Some(7))).await.unwrap().is_empty());
    // Rollback re-applies version 9 as 11, and prunes like a set.
    let rollback = AliasRollback { tenant: t.clone(), name: name.clone(), now: 11, keep_versions: 4 };
    let rolled = store.alias_rollback(rollback).await.unwrap();
    assert_eq!((rolled.version, rolled.config.priority), (11, Some(9)));
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [11, 10, 9, 8]);
    // A keep below 2 still keeps the version rollback needs.
    store.alias_set(set(12, 0)).await.unwrap();
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [12, 11]);
    let rollback = AliasRollback { tenant: t.clone(), name: name.clone(), now: 13, keep_versions: 0 };
    // Version 11 was itself the rollback to version 9's config.
    assert_eq!(store.alias_rollback(rollback).await.unwrap().config.priority, Some(9));
    let unknown =
        AliasHistory { tenant: t.clone(), name: AliasName::parse("nope").unwrap(), limit: 10, before: None };
    assert!(store.alias_history(unknown).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_meets_the_idempotency_batch_and_alias_history_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store = connect(&url).await.unwrap();
    exercise_idempotency_and_batch_totals(store.clone()).await;
    exercise_alias_history(store).await;
}

#[tokio::test]
async fn a_sqlite_store_whose_file_was_removed_or_replaced_fails_its_ping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.db");
    let store = connect(&format!("sqlite://{}", path.display())).await.unwrap();
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
