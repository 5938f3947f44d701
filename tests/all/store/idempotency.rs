//! Idempotency keys and the jobs a batch owns.

use std::sync::Arc;
use wasmq::domain::{Callback, CallbackState, Digest, IdempotencyKey, JobStatus, PluginKind};
use wasmq::store::*;

use super::support::*;

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
        trace: None,
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
