//! Queues as a claim sees them: a node that consumes chosen queues claims
//! only their jobs; a paused queue's jobs are claimed by nobody; a queue's
//! concurrency limit and rate hold across every claimer (counted from what
//! runs in the store and spent from one bucket, not per node), with
//! governed jobs claimed only for idle workers, and never by a node that
//! has not heard the queue is governed. And the node registry.

use futures_util::FutureExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use wasmq::domain::{Digest, JobStatus, QueueLimits, QueueName, Rate};
use wasmq::store::*;

use super::support::*;

fn in_queue(id: &str, queue: &str, priority: i32) -> NewJob {
    NewJob { queue: QueueName::parse(queue).unwrap(), ..new_job(id, Digest::of(b"queues"), priority, 1_000) }
}

fn only(queues: &[&str], c: JobClaim) -> JobClaim {
    JobClaim { queues: Some(queues.iter().map(|q| q.to_string()).collect()), ..c }
}

/// A claim that knows `queues` are governed, with `slots` idle workers.
fn governed(queues: &[&str], slots: u32, c: JobClaim) -> JobClaim {
    JobClaim { governed: queues.iter().map(|q| q.to_string()).collect(), limited_slots: slots, ..c }
}

async fn set(store: &dyn Store, queue: &str, change: QueueChange, now: i64) -> QueueRecord {
    store.queue_update(QueueUpdate { name: queue.into(), change, now }).await.unwrap()
}

async fn limit(store: &dyn Store, queue: &str, concurrency: u64) {
    let limits = QueueLimits { concurrency: Some(concurrency), rate: None };
    set(store, queue, QueueChange::Limits(limits), 1).await;
}

fn rate(max: u64, per_ms: u64) -> QueueChange {
    QueueChange::Limits(QueueLimits { concurrency: None, rate: Some(Rate { max, per_ms, burst: Some(max) }) })
}

fn ids(jobs: &[JobRecord]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

/// A node consuming `gpu` and `mail` claims theirs in claim order and
/// leaves `default` alone; a node consuming every queue then takes the rest.
pub async fn chosen_queues(store: Arc<dyn Store>) {
    let jobs = vec![
        in_queue("d-1", "default", 9),
        in_queue("g-1", "gpu", 1),
        in_queue("m-1", "mail", 5),
        in_queue("d-2", "default", 0),
        in_queue("g-2", "gpu", 0),
    ];
    store.job_insert(jobs, None).await.unwrap();
    let got = store.job_claim(only(&["gpu", "mail"], claim("w", 2_000, 10))).await.unwrap();
    assert_eq!(ids(&got), ["m-1", "g-1", "g-2"], "its queues only, by priority");
    let none = store.job_claim(only(&["gpu"], claim("w", 2_000, 10))).await.unwrap();
    assert!(none.is_empty(), "nothing of its queues is left: {:?}", ids(&none));
    let rest = store.job_claim(claim("s", 2_000, 10)).await.unwrap();
    assert_eq!(ids(&rest), ["d-1", "d-2"]);
}

/// `gpu` may run 2 at once anywhere: a claim takes 2, another claimer none
/// while they run, and one more once one of them ended. Jobs of other
/// queues are claimed around it as usual.
pub async fn queue_limit_counts_every_node(store: Arc<dyn Store>) {
    let mut jobs: Vec<NewJob> = (0..5).map(|k| in_queue(&format!("g-{k}"), "gpu", 0)).collect();
    jobs.extend((0..3).map(|k| in_queue(&format!("d-{k}"), "default", 0)));
    store.job_insert(jobs, None).await.unwrap();
    limit(&*store, "gpu", 2).await;
    let limits = ["gpu"];
    let first = store.job_claim(governed(&limits, 10, claim("n1", 2_000, 10))).await.unwrap();
    let gpu: Vec<&JobRecord> = first.iter().filter(|j| j.queue.as_str() == "gpu").collect();
    assert_eq!((gpu.len(), first.len()), (2, 5), "2 of gpu, every default job: {:?}", ids(&first));
    let second = store.job_claim(governed(&limits, 10, claim("n2", 2_000, 10))).await.unwrap();
    assert!(second.is_empty(), "gpu is at its limit everywhere: {:?}", ids(&second));
    let ended =
        store.job_complete(vec![done(&gpu[0].id, "n1", JobStatus::Succeeded, 2_100)]).await.unwrap().applied;
    assert_eq!(ended.len(), 1);
    let third = store.job_claim(governed(&limits, 10, claim("n2", 2_200, 10))).await.unwrap();
    assert_eq!(third.len(), 1, "one gpu slot freed: {:?}", ids(&third));
    assert_eq!(third[0].queue.as_str(), "gpu");
}

/// Limited jobs go only to idle workers: with one idle worker a claim takes
/// one of them, however large the claim and the queue's room.
pub async fn limited_jobs_only_for_idle_workers(store: Arc<dyn Store>) {
    let jobs = (0..4).map(|k| in_queue(&format!("g-{k}"), "gpu", 0)).collect();
    store.job_insert(jobs, None).await.unwrap();
    limit(&*store, "gpu", 3).await;
    let got = store.job_claim(governed(&["gpu"], 1, claim("n1", 2_000, 50))).await.unwrap();
    assert_eq!(ids(&got), ["g-0"]);
    let none = store.job_claim(governed(&["gpu"], 0, claim("n1", 2_000, 50))).await.unwrap();
    assert!(none.is_empty(), "no idle worker, no limited job: {:?}", ids(&none));
    let two = store.job_claim(governed(&["gpu"], 5, claim("n1", 2_000, 50))).await.unwrap();
    assert_eq!(ids(&two), ["g-1", "g-2"], "the room left under the limit of 3");
}

/// Four claimers on two handles drain 60 `gpu` jobs limited to 3 at once
/// and 60 unlimited ones: no moment has more than 3 `gpu` jobs running, and
/// every job is claimed once.
pub async fn queue_limit_holds_under_concurrent_claims(url: String) {
    let open = || async { wasmq::store::connect(&url).await.unwrap() };
    let stores = (open().await, open().await);
    let mut jobs: Vec<NewJob> = (0..60).map(|k| in_queue(&format!("g-{k:02}"), "gpu", 0)).collect();
    jobs.extend((0..60).map(|k| in_queue(&format!("d-{k:02}"), "default", 0)));
    stores.0.job_insert(jobs, None).await.unwrap();
    limit(&*stores.1, "gpu", 3).await;
    let mut ever = HashSet::new();
    let mut rounds = 0;
    while ever.len() < 120 {
        rounds += 1;
        assert!(rounds <= 200, "no progress: {} of 120 claimed", ever.len());
        let start = Arc::new(tokio::sync::Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let store = if i % 2 == 0 { stores.0.clone() } else { stores.1.clone() };
                let start = start.clone();
                tokio::spawn(
                    async move {
                        start.wait().await;
                        let c = governed(&["gpu"], 4, claim(&format!("node-{i}"), 2_000, 4));
                        store.job_claim(c).await.unwrap()
                    }
                    .boxed(),
                )
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        let running = stores.0.status_counts(&tenant()).await.unwrap();
        let gpu_running = running.by_queue.get("gpu").and_then(|q| q.get("running")).copied().unwrap_or(0);
        assert!(gpu_running <= 3, "round {rounds}: {gpu_running} gpu jobs running at once");
        let mut per_owner: HashMap<String, Vec<JobCompletion>> = HashMap::new();
        for j in &got {
            assert!(ever.insert(j.id.clone()), "{} claimed twice", j.id);
            let owner = j.lease_owner.clone().unwrap();
            per_owner.entry(owner.clone()).or_default().push(done(
                &j.id,
                &owner,
                JobStatus::Succeeded,
                2_100,
            ));
        }
        for (_, completions) in per_owner {
            stores.1.job_complete(completions).await.unwrap();
        }
    }
}

/// A paused queue's jobs stay where they are, for a node that knows it is
/// paused and for one that has not heard yet; other queues run on, and
/// once resumed the queue's jobs are claimed again.
pub async fn paused_queue_starts_nothing(store: Arc<dyn Store>) {
    let jobs = vec![in_queue("h-1", "held", 9), in_queue("h-2", "held", 0), in_queue("d-1", "default", 0)];
    store.job_insert(jobs, None).await.unwrap();
    let paused = set(&*store, "held", QueueChange::Paused(true), 1_500).await;
    assert_eq!((paused.paused, paused.limits, paused.updated_at), (true, QueueLimits::default(), 1_500));
    let knows = store.job_claim(governed(&["held"], 10, claim("n1", 2_000, 10))).await.unwrap();
    assert_eq!(ids(&knows), ["d-1"], "only the queue not paused");
    let stale = store.job_claim(claim("n2", 2_000, 10)).await.unwrap();
    assert!(stale.is_empty(), "a node that has not heard of the pause takes none: {:?}", ids(&stale));
    let resumed = set(&*store, "held", QueueChange::Paused(false), 2_500).await;
    assert!(!resumed.paused && !resumed.governed());
    // A node still holding it governed claims it through the second phase,
    // one knowing it is free through the first: each gets it.
    let got = store.job_claim(governed(&["held"], 1, claim("n1", 3_000, 10))).await.unwrap();
    assert_eq!(ids(&got), ["h-1", "h-2"], "no longer governed: no idle-worker cap");
}

/// A rate of 3 per second: a full bucket gives 3 at once, then one token
/// per third of a second, never more than 3 saved up, and spent by every
/// claimer from the same bucket. Setting the same rate again keeps the
/// bucket; a new rate starts full.
pub async fn rate_is_one_bucket_for_every_claimer(store: Arc<dyn Store>) {
    let jobs = (0..20).map(|k| in_queue(&format!("r-{k:02}"), "mail", 0)).collect();
    store.job_insert(jobs, None).await.unwrap();
    set(&*store, "mail", rate(3, 1_000), 2_000).await;
    let mut claimed = 0;
    let mut take = |got: Vec<JobRecord>| {
        claimed += got.len();
        got.len()
    };
    let c = |owner: &str, now: i64| governed(&["mail"], 10, claim(owner, now, 10));
    assert_eq!(take(store.job_claim(c("n1", 2_000)).await.unwrap()), 3, "a full bucket");
    assert_eq!(take(store.job_claim(c("n2", 2_000)).await.unwrap()), 0, "the same bucket, on any node");
    assert_eq!(take(store.job_claim(c("n2", 2_300)).await.unwrap()), 0, "not a whole token yet");
    assert_eq!(take(store.job_claim(c("n2", 2_334)).await.unwrap()), 1);
    assert_eq!(take(store.job_claim(c("n1", 60_000)).await.unwrap()), 3, "at most max saved up");
    set(&*store, "mail", rate(3, 1_000), 60_001).await;
    assert_eq!(take(store.job_claim(c("n1", 60_001)).await.unwrap()), 0, "the same rate keeps its bucket");
    set(&*store, "mail", rate(5, 1_000), 60_002).await;
    assert_eq!(take(store.job_claim(c("n1", 60_002)).await.unwrap()), 5, "a new rate starts full");
    let stale = store.job_claim(claim("n3", 99_000, 10)).await.unwrap();
    assert!(stale.is_empty(), "a node that has not heard of the rate takes none");
    // A clock that went back takes nothing that was not earned.
    assert_eq!(take(store.job_claim(c("n1", 1_000)).await.unwrap()), 0);
    assert_eq!(claimed, 12);
}

/// Both limits at once: the smaller room wins.
pub async fn concurrency_and_rate_together(store: Arc<dyn Store>) {
    let jobs = (0..10).map(|k| in_queue(&format!("b-{k}"), "both", 0)).collect();
    store.job_insert(jobs, None).await.unwrap();
    let limits =
        QueueLimits { concurrency: Some(2), rate: Some(Rate { max: 5, per_ms: 1_000, burst: Some(5) }) };
    set(&*store, "both", QueueChange::Limits(limits), 1_000).await;
    let got = store.job_claim(governed(&["both"], 10, claim("n1", 2_000, 10))).await.unwrap();
    assert_eq!(got.len(), 2, "concurrency 2 under a bucket of 5");
    let ended =
        store.job_complete(got.iter().map(|j| done(&j.id, "n1", JobStatus::Succeeded, 2_001)).collect());
    assert_eq!(ended.await.unwrap().applied.len(), 2);
    let got = store.job_claim(governed(&["both"], 10, claim("n1", 2_002, 10))).await.unwrap();
    assert_eq!(got.len(), 2);
    let ended =
        store.job_complete(got.iter().map(|j| done(&j.id, "n1", JobStatus::Succeeded, 2_003)).collect());
    assert_eq!(ended.await.unwrap().applied.len(), 2);
    let got = store.job_claim(governed(&["both"], 10, claim("n1", 2_004, 10))).await.unwrap();
    assert_eq!(got.len(), 1, "the bucket's last token");
}

/// The controls as listed, and the depth of each queue per status: one
/// tenant's, or everyone's.
pub async fn queue_controls_and_depths(store: Arc<dyn Store>) {
    assert!(store.queue_list().await.unwrap().is_empty());
    set(&*store, "mail", rate(100, 60_000), 1_000).await;
    set(&*store, "gpu", QueueChange::Paused(true), 1_001).await;
    let both = QueueLimits { concurrency: Some(4), rate: None };
    let gpu = set(&*store, "gpu", QueueChange::Limits(both), 1_002).await;
    assert_eq!((gpu.paused, gpu.limits, gpu.updated_at), (true, both, 1_002), "a pause outlives a new limit");
    let listed = store.queue_list().await.unwrap();
    assert_eq!(listed.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["gpu", "mail"]);
    assert_eq!(listed[1].limits.rate, Some(Rate { max: 100, per_ms: 60_000, burst: Some(100) }));
    let cleared = set(&*store, "mail", QueueChange::Limits(QueueLimits::default()), 1_003).await;
    assert!(!cleared.governed());

    store.job_insert(vec![in_queue("a-1", "mail", 0), in_queue("a-2", "mail", 0)], None).await.unwrap();
    let other = create_tenant(&*store, "other").await;
    let theirs = NewJob { tenant: other.clone(), ..in_queue("b-1", "mail", 0) };
    store.job_insert(vec![theirs], None).await.unwrap();
    let got = store.job_claim(claim("n1", 2_000, 1)).await.unwrap();
    assert_eq!(got.len(), 1);
    let count = |depths: &[QueueDepth], status: &str| {
        depths.iter().filter(|d| d.queue == "mail" && d.status == status).map(|d| d.count).sum::<u64>()
    };
    let all = store.queue_depths(None).await.unwrap();
    assert_eq!((count(&all, "queued"), count(&all, "running")), (2, 1));
    let mine = store.queue_depths(Some(&tenant())).await.unwrap();
    let theirs = store.queue_depths(Some(&other)).await.unwrap();
    assert_eq!(count(&mine, "queued") + count(&mine, "running"), 2);
    assert_eq!(count(&theirs, "queued") + count(&theirs, "running"), 1);
}

fn node(id: &str, now: i64) -> NodeBeat {
    NodeBeat {
        id: id.into(),
        role: "worker".into(),
        version: "1.2.3".into(),
        host: "host-a".into(),
        pid: 4242,
        addr: None,
        queues: Some(vec!["gpu".into()]),
        slots: 8,
        busy: 3,
        started_at: 1_000,
        now,
        forget_before: 0,
    }
}

/// A node's row: registered by its first beat, renewed by the next ones,
/// marked by a clean stop (and running again if it beats again), and
/// forgotten once silent for long enough, by any node's beat.
pub async fn node_registry(store: Arc<dyn Store>) {
    assert!(store.node_list().await.unwrap().is_empty());
    store.node_beat(node("b-node", 2_000)).await.unwrap();
    let api = NodeBeat {
        role: "api".into(),
        addr: Some("10.0.0.1:7700".into()),
        queues: None,
        slots: 0,
        busy: 0,
        ..node("a-node", 2_000)
    };
    store.node_beat(api.clone()).await.unwrap();
    store.node_beat(NodeBeat { busy: 5, ..node("b-node", 4_000) }).await.unwrap();
    let nodes = store.node_list().await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.beat.id.as_str()).collect::<Vec<_>>(), ["a-node", "b-node"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    assert_eq!(a.beat, NodeBeat { now: 2_000, forget_before: 0, ..api });
    assert_eq!((b.heartbeat_at, b.beat.busy, b.beat.started_at, b.stopped_at), (4_000, 5, 1_000, None));
    assert_eq!(b.beat.queues, Some(vec!["gpu".to_string()]));
    store.node_stop("b-node", 4_500).await.unwrap();
    store.node_stop("no-such-node", 4_500).await.unwrap();
    let b = store.node_list().await.unwrap().remove(1);
    assert_eq!((b.stopped_at, b.beat.busy), (Some(4_500), 0));
    store.node_beat(node("b-node", 5_000)).await.unwrap();
    assert_eq!(store.node_list().await.unwrap()[1].stopped_at, None, "beating again: running again");
    // b beats on; a has been silent since 2_000.
    store.node_beat(NodeBeat { forget_before: 3_000, ..node("b-node", 9_000) }).await.unwrap();
    let left: Vec<String> = store.node_list().await.unwrap().into_iter().map(|n| n.beat.id).collect();
    assert_eq!(left, ["b-node"]);
}
