//! The life of modules, aliases, jobs, batches and callbacks in one store:
//! claims, completions, rescue, cancel and retry, idempotency, callback
//! claims, listing, counts and retention.

use std::sync::Arc;
use wasmq::domain::{
    AliasName, Callback, CallbackState, Digest, IdempotencyKey, JobStatus, PluginKind, TenantId,
};
use wasmq::store::*;

use super::support::*;

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
        .unwrap()
        .applied;
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
    let requeued = vec![("a".into(), 1), ("b".into(), 2)];
    assert_eq!(rescued_ids(&rescued), (requeued, vec![]), "a (n2) and b (n1) expired, with their attempts");
    let a = store.job_get(&t, "a").await.unwrap();
    assert_eq!((a.status, a.lease_owner.as_deref()), (JobStatus::Queued, None));
    let reclaimed = store.job_claim(claim("n3", 3_950, 10)).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert_eq!(store.job_release("n3").await.unwrap(), 2);
    let b = store.job_get(&t, "b").await.unwrap();
    assert_eq!((b.status, b.attempt), (JobStatus::Queued, 2));

    // Cancel and retry.
    let cancelled = store.job_cancel(&t, "a", 4_000).await.unwrap();
    assert_eq!(cancelled.job.status, JobStatus::Cancelled);
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
    let batch = NewBatch {
        id: "batch-1".into(),
        tenant: t.clone(),
        callback: Some(hook.clone()),
        created_at: 5_000,
        trace: None,
    };
    let in_batch = |id: &str| NewJob {
        batch_id: Some("batch-1".into()),
        callback: Some(hook.clone()),
        ..new_job(id, digest, 1, 5_000)
    };
    store.job_insert(vec![in_batch("g"), in_batch("h")], Some(batch)).await.unwrap();
    let b = store.batch_get(&t, "batch-1").await.unwrap();
    assert_eq!((b.total, b.done, b.callback_state), (2, false, Some(CallbackState::Pending)));
    // The batch filter lists exactly the batch's jobs.
    let of_batch = JobList {
        tenant: t.clone(),
        status: None,
        alias: None,
        queue: None,
        context: None,
        batch: Some("batch-1".into()),
        order: JobOrder::Created,
        limit: 100,
        after: None,
        max_bytes: u64::MAX,
    };
    let mut ids: Vec<String> =
        store.job_list(of_batch).await.unwrap().jobs.into_iter().map(|j| j.id).collect();
    ids.sort();
    assert_eq!(ids, ["g", "h"]);
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
                batch: None,
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
        after = page.last().map(|j| JobCursor { priority: j.priority, id: j.id.clone() });
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
        let b = NewBatch { id: batch.into(), tenant: t.clone(), callback, created_at: 20_000, trace: None };
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
