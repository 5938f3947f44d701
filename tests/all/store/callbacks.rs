//! Callback delivery states: every state a sender records reads back as
//! recorded, on jobs and batches; retention waits for the settled ones; a
//! retry starts the callback over; a `sending` callback is due at its next
//! attempt and not before.

use std::sync::Arc;
use wasmq::domain::{Callback, CallbackState, Digest, JobStatus};
use wasmq::store::*;

use super::support::*;

fn hook() -> Callback {
    Callback { url: "http://127.0.0.1:9/hook".into(), headers: Default::default(), secret: None }
}

fn recorded(owner: CallbackOwner, id: &str, state: CallbackState, next_at: Option<i64>) -> CallbackRecord {
    CallbackRecord { owner, id: id.into(), state, error: Some(format!("{state:?}")), next_at }
}

pub async fn exercise_callback_states(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"callback states");
    let with_hook = |id: &str| NewJob { callback: Some(hook()), ..new_job(id, digest, 1, 1_000) };
    let ids: Vec<String> = CallbackState::ALL.iter().map(|s| format!("job-{}", s.as_str())).collect();
    let mut jobs: Vec<NewJob> = ids.iter().map(|id| with_hook(id)).collect();
    jobs.push(new_job("no-hook", digest, 1, 1_000));
    let inserted = store.job_insert(jobs, None).await.unwrap();
    let states: Vec<Option<CallbackState>> = inserted.iter().map(|i| i.job.callback_state).collect();
    assert_eq!(states, [Some(CallbackState::Pending); 4].into_iter().chain([None]).collect::<Vec<_>>());
    for i in &inserted {
        let stored = store.job_get(&t, &i.job.id).await.unwrap();
        assert_eq!(stored.callback_state, i.job.callback_state, "{}: as inserted", i.job.id);
    }

    // Ending a job makes its callback due (`sending`); one without a callback
    // has no state.
    for id in ids.iter().map(String::as_str).chain(["no-hook"]) {
        store.job_cancel(&t, id, 2_000).await.unwrap();
    }
    assert_eq!(store.job_get(&t, "no-hook").await.unwrap().callback_state, None);
    let due = store.callback_due(due_at(2_000, 10, 3_000)).await.unwrap();
    let mut due_ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
    due_ids.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(due_ids, expected);

    // Every state a sender records reads back as recorded.
    for (state, id) in CallbackState::ALL.into_iter().zip(&ids) {
        store.callback_record(recorded(CallbackOwner::Job, id, state, Some(50_000))).await.unwrap();
        let job = store.job_get(&t, id).await.unwrap();
        assert_eq!(job.callback_state, Some(state), "{id}");
        assert_eq!((job.callback_attempts, job.callback_last_error), (1, Some(format!("{state:?}"))));
    }

    // Retention deletes finished jobs only once their callback is settled.
    store.job_prune(10_000, 100).await.unwrap();
    let mut left: Vec<(String, Option<CallbackState>)> =
        all_jobs(store.as_ref(), &t).await.into_iter().map(|j| (j.id, j.callback_state)).collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        left,
        [
            ("job-pending".to_string(), Some(CallbackState::Pending)),
            ("job-sending".to_string(), Some(CallbackState::Sending)),
        ],
        "delivered, failed and no callback at all are settled"
    );

    // A `sending` callback is due at its next attempt, not before.
    let due_ids = |due: Vec<CallbackDue>| due.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert!(due_ids(store.callback_due(due_at(49_999, 10, 60_000)).await.unwrap()).is_empty());
    assert_eq!(due_ids(store.callback_due(due_at(50_000, 10, 60_000)).await.unwrap()), ["job-sending"]);

    // A retry starts the callback over: pending, no attempt, no error.
    let retried = store.job_retry(&t, "job-sending", 70_000).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(
        (retried.callback_state, retried.callback_attempts, retried.callback_last_error),
        (Some(CallbackState::Pending), 0, None)
    );
    assert!(store.callback_due(due_at(90_000, 10, 99_000)).await.unwrap().is_empty(), "pending: not due");

    // A batch's callback: pending until its jobs end, then every recorded
    // state reads back too.
    let batch = NewBatch {
        id: "cb-batch".into(),
        tenant: t.clone(),
        callback: Some(hook()),
        created_at: 1_000,
        trace: None,
    };
    let member = NewJob { batch_id: Some("cb-batch".into()), ..new_job("cb-member", digest, 1, 1_000) };
    store.job_insert(vec![member], Some(batch)).await.unwrap();
    assert_eq!(store.batch_get(&t, "cb-batch").await.unwrap().callback_state, Some(CallbackState::Pending));
    store.job_cancel(&t, "cb-member", 2_000).await.unwrap();
    assert_eq!(store.batch_get(&t, "cb-batch").await.unwrap().callback_state, Some(CallbackState::Sending));
    for (n, state) in CallbackState::ALL.into_iter().enumerate() {
        store.callback_record(recorded(CallbackOwner::Batch, "cb-batch", state, None)).await.unwrap();
        let b = store.batch_get(&t, "cb-batch").await.unwrap();
        assert_eq!((b.callback_state, b.callback_attempts), (Some(state), n as u32 + 1));
    }
}

/// The write that ends a batch's last job reports the batch done, once,
/// whatever ends it (completion, cancel, rescue, bulk cancel), with or
/// without a callback; a batch whose jobs still run is not reported.
pub async fn reports_each_batch_done_once(store: Arc<dyn Store>) {
    let digest = Digest::of(b"batches done");
    let t = tenant();
    let insert = |batch: &'static str, jobs: &[&'static str], callback: bool| {
        let store = store.clone();
        let (t, digest, jobs) = (t.clone(), digest, jobs.to_vec());
        async move {
            let b = NewBatch {
                id: batch.into(),
                tenant: t,
                callback: callback.then(hook),
                created_at: 1_000,
                trace: None,
            };
            let jobs = jobs
                .into_iter()
                .map(|id| NewJob { batch_id: Some(batch.into()), ..new_job(id, digest, 1, 1_000) })
                .collect();
            store.job_insert(jobs, Some(b)).await.unwrap();
        }
    };
    let done = |id: &str| vec![DoneBatch { tenant: tenant(), id: id.into() }];
    // Completions: the first leaves one job running, the second ends it.
    insert("by-completion", &["c1", "c2"], false).await;
    let claimed = store.job_claim(claim("n1", 2_000, 10)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let first = store.job_complete(vec![super::support::done("c1", "n1", JobStatus::Succeeded, 2_100)]).await;
    assert_eq!(first.unwrap().batches_done, []);
    let second = store.job_complete(vec![super::support::done("c2", "n1", JobStatus::Dead, 2_200)]).await;
    assert_eq!(second.unwrap().batches_done, done("by-completion"));
    assert!(store.batch_get(&t, "by-completion").await.unwrap().done);
    // A cancel of the last job, with a callback.
    insert("by-cancel", &["x1"], true).await;
    assert_eq!(store.job_cancel(&t, "x1", 3_000).await.unwrap().batches_done, done("by-cancel"));
    // A retry and a second end of the same batch report nothing more.
    store.job_retry(&t, "x1", 3_100).await.unwrap();
    assert_eq!(store.job_cancel(&t, "x1", 3_200).await.unwrap().batches_done, []);
    // A rescue that ends the last attempt dead.
    insert("by-rescue", &["r1"], false).await;
    let claimed = store.job_claim(claim("n2", 4_000, 10)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["r1"]);
    // Lapsed on each attempt until it has none left.
    let mut reported = Vec::new();
    let mut now = 4_000 + 60_000;
    for _ in 0..3 {
        let rescued = store.job_rescue_expired(now).await.unwrap();
        reported.extend(rescued.batches_done);
        store.job_claim(claim("n2", now + 1, 10)).await.unwrap();
        now += 120_000;
    }
    reported.extend(store.job_rescue_expired(now).await.unwrap().batches_done);
    assert_eq!(reported, done("by-rescue"));
    // A bulk cancel.
    insert("by-bulk", &["b1", "b2"], false).await;
    let filter = JobFilter {
        tenant: t.clone(),
        statuses: vec![],
        alias: None,
        queue: None,
        context: None,
        created_after: None,
        created_before: None,
    };
    let step = JobBulk { filter, action: BulkAction::Cancel, after: None, limit: 10, now: 900_000 };
    assert_eq!(store.job_bulk(step).await.unwrap().batches_done, done("by-bulk"));
}
