//! What one writer hides: two store handles opened on one database (two
//! nodes; for SQLite, two connections to one file) working at once. Claims
//! never take a job twice and together take them all, a tenant's
//! `max_running` holds across them, racing inserts of one idempotency key make
//! one job, each due callback is delivered by one of them, and a completion
//! from a run that lost its claim is fenced off whichever handle sends it.
//! Tasks start together at a barrier; nothing waits by sleeping.

use futures_util::FutureExt;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;
use wasmq::domain::{
    Callback, CallbackState, Day, Digest, IdempotencyKey, JobStatus, TenantId, TenantQuotas,
};
use wasmq::store::*;

use super::support::*;

/// Two handles on the database at `url`.
pub(super) async fn two(url: &str) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let open = || async { wasmq::store::connect(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}")) };
    (open().await, open().await)
}

/// Runs `work(store, index)` in `n` tasks at once, alternating between the
/// two handles, and returns what each answered.
pub(super) async fn at_once<T, F>(stores: &(Arc<dyn Store>, Arc<dyn Store>), n: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> futures_util::future::BoxFuture<'static, T>,
{
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = if i % 2 == 0 { stores.0.clone() } else { stores.1.clone() };
            let (start, job) = (start.clone(), work(store, i));
            tokio::spawn(async move {
                start.wait().await;
                job.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("a task panicked"));
    }
    out
}

/// Claims until a claim comes back empty; every claim in `round` is the
/// job's `round`-th (its fencing token) and its first attempt.
async fn claim_all(store: Arc<dyn Store>, node: String, round: u64) -> Vec<String> {
    let mut mine = Vec::new();
    loop {
        let got = store.job_claim(claim(&node, 2_000, 7)).await.unwrap();
        if got.is_empty() {
            return mine;
        }
        for j in got {
            assert_eq!((j.attempt, j.lease_token, j.lease_owner.as_deref()), (1, round, Some(node.as_str())));
            mine.push(j.id);
        }
    }
}

/// Four claimers on two handles empty a 300-job backlog together, three
/// times over (every node releases its jobs between rounds): each job is
/// claimed exactly once per round, under that round's fencing token.
pub async fn claims_take_each_job_once(url: String) {
    let stores = two(&url).await;
    let digest = Digest::of(b"concurrent claims");
    const JOBS: usize = 300;
    let jobs = (0..JOBS).map(|k| new_job(&format!("c-{k:04}"), digest, (k % 5) as i32, 1_000)).collect();
    stores.0.job_insert(jobs, None).await.unwrap();
    for round in 1..=3u64 {
        let claimed =
            at_once(&stores, 4, |store, i| claim_all(store, format!("node-{i}"), round).boxed()).await;
        let mut seen = HashSet::new();
        for id in claimed.iter().flatten() {
            assert!(seen.insert(id.as_str()), "round {round}: {id} claimed twice");
        }
        assert_eq!(seen.len(), JOBS, "round {round}: together they claim every job");
        assert!(stores.0.job_claim(claim("late", 2_000, 10)).await.unwrap().is_empty());
        assert!(stores.1.job_claim(claim("late", 2_000, 10)).await.unwrap().is_empty());
        let counts = stores.1.status_counts(&tenant()).await.unwrap();
        assert_eq!(counts.by_status["running"], JOBS as u64);
        let mut released = 0;
        for i in 0..claimed.len() {
            // Through the other handle than the one that claimed.
            let store = if i % 2 == 0 { &stores.1 } else { &stores.0 };
            released += store.job_release(&format!("node-{i}")).await.unwrap();
        }
        assert_eq!(released, JOBS as u64, "each node releases what it claimed");
    }
}

/// Rounds of four concurrent claims (two per handle, five slots each) over a
/// tenant bound to 4 running jobs and an unbounded one; between rounds every
/// claimed job completes. No round gives the bounded tenant more than 4,
/// whatever order the claims commit in, no job is claimed twice, and every
/// job is claimed in the end.
pub async fn claims_hold_max_running(url: String) {
    let stores = two(&url).await;
    let (capped, open) = (TenantId::parse("capped").unwrap(), TenantId::parse("open").unwrap());
    for (id, weight, max_running) in [(&capped, 1, Some(4)), (&open, 2, None)] {
        let quotas = TenantQuotas { max_running, ..TenantQuotas::default() };
        let p = TenantCreate { id: id.clone(), weight, quotas, callback_allow: vec![], now: 1 };
        stores.0.tenant_create(p).await.unwrap();
    }
    let digest = Digest::of(b"bounded claims");
    let mut jobs = Vec::new();
    for (t, n) in [(&capped, 40), (&open, 80)] {
        jobs.extend(
            (0..n).map(|k| NewJob { tenant: t.clone(), ..new_job(&format!("{t}-{k:03}"), digest, 0, 1_000) }),
        );
    }
    stores.1.job_insert(jobs, None).await.unwrap();
    let mut ever = HashSet::new();
    let mut rounds = 0;
    while ever.len() < 120 {
        rounds += 1;
        assert!(rounds <= 200, "no progress: {} of 120 claimed", ever.len());
        let got: Vec<JobRecord> = at_once(&stores, 4, |store, i| {
            async move { store.job_claim(claim(&format!("node-{i}"), 2_000, 5)).await.unwrap() }.boxed()
        })
        .await
        .into_iter()
        .flatten()
        .collect();
        assert!(!got.is_empty(), "a round with work left claims some");
        let running = stores.0.status_counts(&capped).await.unwrap().by_status["running"];
        let in_round = got.iter().filter(|j| j.tenant == capped).count();
        assert!(in_round <= 4 && running <= 4, "round {rounds}: capped got {in_round}, runs {running}");
        let mut done_by = (Vec::new(), Vec::new());
        for (k, j) in got.iter().enumerate() {
            assert!(ever.insert(j.id.clone()), "{} claimed twice", j.id);
            let owner = j.lease_owner.clone().unwrap();
            let c = JobCompletion {
                tenant: j.tenant.clone(),
                ..done(&j.id, &owner, JobStatus::Succeeded, 2_100)
            };
            (if k % 2 == 0 { &mut done_by.0 } else { &mut done_by.1 }).push(c);
        }
        let applied = stores.0.job_complete(done_by.0).await.unwrap().applied.len()
            + stores.1.job_complete(done_by.1).await.unwrap().applied.len();
        assert_eq!(applied, got.len(), "every claim completes");
    }
    for t in [&capped, &open] {
        let counts = stores.1.status_counts(t).await.unwrap();
        assert_eq!(counts.by_status["succeeded"], if t == &capped { 40 } else { 80 });
    }
}

/// Two nodes insert one idempotency key at the same moment, 25 times over:
/// the same request makes one job and both get it; a different request with
/// the key gets the conflict, or makes the job while the other gets it.
pub async fn idempotency_key_races(url: String) {
    let stores = two(&url).await;
    let digest = Digest::of(b"idempotency races");
    let keyed = |id: String, key: String, fingerprint: &str| NewJob {
        idempotency_key: Some(IdempotencyKey::parse(&key).unwrap()),
        idempotency_fingerprint: Some(fingerprint.into()),
        ..new_job(&id, digest, 1, 1_000)
    };
    for k in 0..25 {
        let inserted = at_once(&stores, 2, |store, i| {
            let job = keyed(format!("same-{k}-{i}"), format!("same-{k}"), "fp");
            async move { store.job_insert(vec![job], None).await.unwrap().remove(0) }.boxed()
        })
        .await;
        let created: Vec<bool> = inserted.iter().map(|i| i.created).collect();
        assert!(created == [true, false] || created == [false, true], "key same-{k}: {created:?}");
        assert_eq!(inserted[0].job.id, inserted[1].job.id, "key same-{k}: both get the one job");
    }
    for k in 0..25 {
        let answers = at_once(&stores, 2, |store, i| {
            let job = keyed(format!("diff-{k}-{i}"), format!("diff-{k}"), &format!("fp-{i}"));
            async move { store.job_insert(vec![job], None).await }.boxed()
        })
        .await;
        let made = answers.iter().filter(|a| matches!(a, Ok(i) if i[0].created)).count();
        let refused = answers
            .iter()
            .filter(
                |a| matches!(a, Err(StoreError::IdempotencyConflict { key }) if *key == format!("diff-{k}")),
            )
            .count();
        assert_eq!((made, refused), (1, 1), "key diff-{k}: {answers:?}");
    }
    let counts = stores.0.status_counts(&tenant()).await.unwrap();
    assert_eq!(counts.by_status.values().sum::<u64>(), 50, "one job per key");
}

/// Two nodes insert batches of the same 20 idempotency keys at once, one in
/// the keys' order and one in reverse, 10 times over: both succeed (each
/// waits for the other's keys in one order, never in a cycle), every key
/// makes one job, and each answer lists the jobs in its request's order.
pub async fn batches_sharing_keys_in_opposite_orders(url: String) {
    let stores = two(&url).await;
    let digest = Digest::of(b"opposite orders");
    for round in 0..10 {
        let answers = at_once(&stores, 2, |store, i| {
            let mut keys: Vec<String> = (0..20).map(|k| format!("r{round}-k{k:02}")).collect();
            if i == 1 {
                keys.reverse();
            }
            let jobs: Vec<NewJob> = keys
                .iter()
                .map(|key| NewJob {
                    idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
                    idempotency_fingerprint: Some("fp".into()),
                    ..new_job(&format!("{key}-by-{i}"), digest, 1, 1_000)
                })
                .collect();
            async move {
                let got = store.job_insert(jobs, None).await.expect("no deadlock, no error");
                (keys, got)
            }
            .boxed()
        })
        .await;
        let mut made = 0;
        for (keys, got) in &answers {
            for (key, inserted) in keys.iter().zip(got) {
                assert!(inserted.job.id.starts_with(&format!("{key}-by-")), "{key}: {}", inserted.job.id);
                made += usize::from(inserted.created);
            }
        }
        assert_eq!(made, 20, "round {round}: one job per key");
    }
}

/// A tenant deleted through one node while another inserts its job, 20
/// times over: either the insert wins (and the deletion is refused, the
/// tenant has unfinished work) or the deletion wins (and the insert finds
/// no tenant); never a job left behind for a tenant that is gone.
pub async fn tenant_deleted_while_its_job_is_inserted(url: String) {
    let stores = two(&url).await;
    let digest = Digest::of(b"deleted tenant");
    for k in 0..20 {
        let t = TenantId::parse(format!("gone-{k}")).unwrap();
        let p = TenantCreate {
            id: t.clone(),
            weight: 1,
            quotas: TenantQuotas::default(),
            callback_allow: vec![],
            now: 1,
        };
        stores.0.tenant_create(p).await.unwrap();
        let answers = at_once(&stores, 2, |store, i| {
            let t = t.clone();
            async move {
                if i == 0 {
                    store.tenant_delete(&t).await.is_ok()
                } else {
                    let job = NewJob { tenant: t, ..new_job(&format!("gone-{k}-job"), digest, 0, 1_000) };
                    match store.job_insert(vec![job], None).await {
                        Ok(_) => true,
                        Err(StoreError::NotFound(what)) => {
                            assert!(what.contains("tenant"), "{what}");
                            false
                        }
                        Err(e) => panic!("round {k}: {e:?}"),
                    }
                }
            }
            .boxed()
        })
        .await;
        let (deleted, inserted) = (answers[0], answers[1]);
        assert!(deleted != inserted, "round {k}: exactly one wins (deleted {deleted}, inserted {inserted})");
        let left: u64 = stores.1.status_counts(&t).await.unwrap().by_status.values().sum();
        assert_eq!(left, u64::from(inserted), "round {k}: jobs of the tenant");
    }
}

/// 40 job callbacks and 4 batch callbacks become due; four senders on two
/// handles claim and deliver until nothing is due. Each is delivered once:
/// by one sender, with one recorded attempt.
pub async fn callbacks_delivered_once(url: String) {
    let stores = two(&url).await;
    let t = tenant();
    let digest = Digest::of(b"callback senders");
    let hook = Callback { url: "http://127.0.0.1:9/hook".into(), headers: Default::default(), secret: None };
    let jobs: Vec<NewJob> = (0..40)
        .map(|k| NewJob { callback: Some(hook.clone()), ..new_job(&format!("cb-{k:02}"), digest, 1, 1_000) })
        .collect();
    stores.0.job_insert(jobs, None).await.unwrap();
    for b in 0..4 {
        let batch = NewBatch {
            id: format!("cbb-{b}"),
            tenant: t.clone(),
            callback: Some(hook.clone()),
            created_at: 1_000,
            trace: None,
        };
        let job =
            NewJob { batch_id: Some(batch.id.clone()), ..new_job(&format!("cbb-{b}-job"), digest, 1, 1_000) };
        stores.1.job_insert(vec![job], Some(batch)).await.unwrap();
    }
    for job in all_jobs(stores.0.as_ref(), &t).await {
        stores.1.job_cancel(&t, &job.id, 2_000).await.unwrap();
    }
    let delivered = at_once(&stores, 4, |store, _| {
        async move {
            let mut mine = Vec::new();
            loop {
                let due = store.callback_due(due_at(3_000, 3, 1_000_000)).await.unwrap();
                if due.is_empty() {
                    return mine;
                }
                for d in due {
                    let record = CallbackRecord {
                        owner: d.owner,
                        id: d.id.clone(),
                        state: CallbackState::Delivered,
                        error: None,
                        next_at: None,
                    };
                    store.callback_record(record).await.unwrap();
                    mine.push(format!("{:?} {}", d.owner, d.id));
                }
            }
        }
        .boxed()
    })
    .await;
    let mut seen = HashSet::new();
    for delivery in delivered.iter().flatten() {
        assert!(seen.insert(delivery), "{delivery} delivered twice");
    }
    assert_eq!(seen.len(), 44, "every callback delivered");
    for job in all_jobs(stores.1.as_ref(), &t).await.into_iter().filter(|j| j.callback.is_some()) {
        assert_eq!(
            (job.callback_state, job.callback_attempts),
            (Some(CallbackState::Delivered), 1),
            "{}",
            job.id
        );
    }
    for b in 0..4 {
        let batch = stores.0.batch_get(&t, &format!("cbb-{b}")).await.unwrap();
        assert_eq!((batch.callback_state, batch.callback_attempts), (Some(CallbackState::Delivered), 1));
    }
    assert!(stores.0.callback_due(due_at(2_000_000, 10, 3_000_000)).await.unwrap().is_empty());
}

/// The two jobs of a batch end at the same moment through the two handles,
/// 20 times over: each time one of the two completions sees the batch done
/// and makes its callback due (each alone, seeing the other job still
/// running, would leave it pending for good).
pub async fn batch_ended_by_both(url: String) {
    let stores = two(&url).await;
    let t = tenant();
    let digest = Digest::of(b"batch ends");
    let hook = Callback { url: "http://127.0.0.1:9/batch".into(), headers: Default::default(), secret: None };
    for b in 0..20 {
        let batch = NewBatch {
            id: format!("b-{b}"),
            tenant: t.clone(),
            callback: Some(hook.clone()),
            created_at: 1_000,
            trace: None,
        };
        let jobs = (0..2)
            .map(|k| NewJob {
                batch_id: Some(batch.id.clone()),
                ..new_job(&format!("b-{b}-{k}"), digest, 1, 1_000)
            })
            .collect();
        stores.0.job_insert(jobs, Some(batch)).await.unwrap();
        assert_eq!(stores.1.job_claim(claim("n1", 2_000, 2)).await.unwrap().len(), 2);
        let applied = at_once(&stores, 2, |store, k| {
            let c = done(&format!("b-{b}-{k}"), "n1", JobStatus::Succeeded, 2_100);
            async move { store.job_complete(vec![c]).await.unwrap().applied.len() }.boxed()
        })
        .await;
        assert_eq!(applied, [1, 1]);
        let batch = stores.0.batch_get(&t, &format!("b-{b}")).await.unwrap();
        assert_eq!((batch.done, batch.callback_state), (true, Some(CallbackState::Sending)), "batch b-{b}");
    }
}

/// Node 1 claims a job through one handle and stalls; the other handle
/// rescues it and node 2 claims it again. Node 1's completion, heartbeat and
/// progress are refused through either handle; node 2's completion, sent
/// through both at once, applies once; the fenced run's fuel counts once and
/// the repeat nothing.
pub async fn stale_completion_fenced(url: String) {
    let stores = two(&url).await;
    let t = tenant();
    let digest = Digest::of(b"stale completion");
    stores.0.job_insert(vec![new_job("stale", digest, 1, 1_000)], None).await.unwrap();
    let first = stores.0.job_claim(claim("n1", 2_000, 1)).await.unwrap();
    assert_eq!(first[0].lease(), lease("stale", 1));
    let rescued = stores.1.job_rescue_expired(3_500).await.unwrap();
    assert_eq!(rescued_ids(&rescued).0, [("stale".to_string(), 1)]);
    let second = stores.1.job_claim(claim("n2", 3_600, 1)).await.unwrap();
    assert_eq!((second[0].lease(), second[0].attempt), (lease("stale", 2), 2));

    let stale = done("stale", "n1", JobStatus::Succeeded, 3_700);
    for store in [&stores.0, &stores.1] {
        assert_eq!(
            store.job_complete(vec![stale.clone()]).await.unwrap().applied,
            [],
            "the stale run is fenced"
        );
        assert_eq!(store.job_heartbeat(beat("n1", &[lease("stale", 1)], 3_700, 9_000)).await.unwrap(), []);
        assert!(!store.job_progress(&lease("stale", 1), 50, "stale").await.unwrap());
    }
    assert!(stores.0.job_progress(&lease("stale", 2), 70, "current").await.unwrap());
    let job = stores.1.job_get(&t, "stale").await.unwrap();
    assert_eq!((job.status, job.lease_owner.as_deref(), job.result), (JobStatus::Running, Some("n2"), None));

    let current = JobCompletion {
        token: 2,
        result: Some("{\"by\":\"n2\"}".into()),
        ..done("stale", "n2", JobStatus::Succeeded, 3_800)
    };
    let answers = at_once(&stores, 2, |store, _| {
        let c = current.clone();
        async move { store.job_complete(vec![c]).await.unwrap().applied }.boxed()
    })
    .await;
    let applied: Vec<&Vec<Lease>> = answers.iter().filter(|a| !a.is_empty()).collect();
    assert_eq!(applied, [&vec![lease("stale", 2)]], "applied once: {answers:?}");
    let job = stores.0.job_get(&t, "stale").await.unwrap();
    assert_eq!(
        (job.status, job.result.as_deref(), job.attempt, job.lease_token),
        (JobStatus::Succeeded, Some("{\"by\":\"n2\"}"), 2, 2)
    );
    let day = Day::of_ms(3_700);
    let usage =
        stores.1.usage_list(UsageQuery { tenant: Some(t.clone()), from: day, to: day }).await.unwrap();
    let c = usage[0].counters;
    assert_eq!(
        (c.runs, c.fuel_used, c.succeeded, c.failed),
        (2, 20, 1, 1),
        "both runs once, one outcome each"
    );
}
