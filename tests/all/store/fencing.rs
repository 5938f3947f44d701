//! Fencing of stale claims.

use std::sync::Arc;
use wasmq::domain::{Callback, CallbackState, Digest, JobStatus};
use wasmq::store::*;

use super::support::*;

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
    let batch =
        NewBatch { id: "fb".into(), tenant: t.clone(), callback: Some(hook), created_at: 1_000, trace: None };
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
    assert_eq!(rescued_ids(&rescued), (vec![("twice".into(), 1)], vec!["once".into()]));
    let (twice, once) = (&rescued.requeued[0].0, &rescued.dead[0].0);
    assert_eq!(
        (twice.alias.as_str(), twice.queue.as_str(), &twice.tenant),
        ("echo", "default", &t),
        "{twice:?}"
    );
    assert_eq!(rescued.dead[0].1, 1, "{once:?}: its last attempt");
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
    assert_eq!(store.job_complete(vec![stale_done(JobStatus::Succeeded, 3_600)]).await.unwrap().applied, []);
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
    assert_eq!(store.job_complete(vec![stale_cancel]).await.unwrap().applied, []);
    let twice = store.job_get(&t, "twice").await.unwrap();
    assert_eq!((twice.status, twice.attempt), (JobStatus::Running, 2));
    assert_eq!(twice.progress, Some((60, "current".into())));
    // In one batch with the current run's completion, only that one applies.
    let current_done = JobCompletion { token: 2, ..done("twice", "n1", JobStatus::Succeeded, 4_000) };
    let applied =
        store.job_complete(vec![stale_done(JobStatus::Dead, 4_000), current_done]).await.unwrap().applied;
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
        assert_eq!(store.job_complete(vec![old]).await.unwrap().applied, [], "token {token}");
    }
    let fenced = store.job_heartbeat(beat("n3", &[lease("once", 2), lease("once", 3)], 5_200, 6_200)).await;
    assert_eq!(fenced.unwrap(), [lease("once", 3)]);
    // A lease lapsing on the last attempt after a retry: dead again, same reason.
    let rescued = store.job_rescue_expired(7_000).await.unwrap();
    assert_eq!(rescued_ids(&rescued), (vec![], vec!["once".into()]));
    let once = store.job_get(&t, "once").await.unwrap();
    assert_eq!((once.status, once.attempt, once.finished_at), (JobStatus::Dead, 1, Some(7_000)));
}

/// A job inserted under a lease (the claim made in the insert) is stored as a
/// claim leaves it: running, first attempt, fencing token 1, owned by the
/// node; no claim hands it out again, its heartbeat and completion behave as
/// after a claim, it counts as running for the tenant, and a lapsed lease is
/// rescued like any other. An idempotent repeat returns the stored job, not a
/// second lease.
pub async fn leased_in_the_insert(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"direct");
    let leased = |id: &str| NewJob {
        lease: Some(NewLease { owner: "n1".into(), expires_at: 2_000 }),
        ..new_job(id, digest, 1, 1_000)
    };
    let inserted =
        store.job_insert(vec![leased("direct"), new_job("queued", digest, 1, 1_000)], None).await.unwrap();
    let direct = &inserted[0].job;
    assert_eq!(
        (direct.status, direct.attempt, direct.lease_token, direct.lease_owner.as_deref(), direct.started_at),
        (JobStatus::Running, 1, NewLease::TOKEN, Some("n1"), Some(1_000))
    );
    assert_eq!(inserted[1].job.status, JobStatus::Queued);
    // The insert's answer is what is stored.
    let stored = store.job_get(&t, "direct").await.unwrap();
    assert_eq!((stored.status, stored.attempt, stored.lease_token), (JobStatus::Running, 1, 1));
    assert_eq!(stored.lease_owner.as_deref(), Some("n1"));
    assert_eq!(store.job_watch(&t, "direct").await.unwrap().status, JobStatus::Running);

    // A claim hands out only the queued job.
    let claimed = store.job_claim(claim("n2", 1_500, 10)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["queued"]);
    assert_eq!(store.job_claim(claim("n2", 1_500, 10)).await.unwrap().len(), 0);

    // Renewed by its owner only, under its token.
    let direct_lease = lease("direct", NewLease::TOKEN);
    let renewed = store.job_heartbeat(beat("n1", std::slice::from_ref(&direct_lease), 1_600, 5_000)).await;
    assert_eq!(renewed.unwrap(), std::slice::from_ref(&direct_lease));
    assert_eq!(
        store.job_heartbeat(beat("n2", std::slice::from_ref(&direct_lease), 1_600, 5_000)).await.unwrap(),
        []
    );

    // It completes under its token like a claimed job.
    let applied =
        store.job_complete(vec![done("direct", "n1", JobStatus::Succeeded, 1_700)]).await.unwrap().applied;
    assert_eq!(applied, [direct_lease]);
    assert_eq!(store.job_get(&t, "direct").await.unwrap().status, JobStatus::Succeeded);

    // A lapsed lease of the insert is rescued like any other.
    store.job_insert(vec![NewJob { max_attempts: 2, ..leased("lapsed") }], None).await.unwrap();
    let rescued = store.job_rescue_expired(2_500).await.unwrap();
    assert_eq!(rescued_ids(&rescued).0, [("lapsed".to_string(), 1)]);
    let again = store.job_claim(claim("n2", 2_600, 10)).await.unwrap();
    assert_eq!(
        again.iter().map(|j| (j.id.as_str(), j.attempt, j.lease_token)).collect::<Vec<_>>(),
        [("lapsed", 2, 2)]
    );

    // An idempotent repeat under a lease returns the stored job unchanged.
    let key = wasmq::domain::IdempotencyKey::parse("direct-key").unwrap();
    let keyed = |id: &str| NewJob { idempotency_key: Some(key.clone()), ..leased(id) };
    store.job_insert(vec![keyed("first")], None).await.unwrap();
    let repeat = store.job_insert(vec![keyed("second")], None).await.unwrap();
    assert!(!repeat[0].created);
    assert_eq!((repeat[0].job.id.as_str(), repeat[0].job.lease_token), ("first", 1));
    assert!(store.job_get(&t, "second").await.is_err());
}
