//! Usage per tenant per day: counted in the transactions of the writes that
//! cause it, each run's fuel once per claim (applied or fenced off), summed
//! per tenant-day across a completion batch.

use std::sync::Arc;
use wasmq::domain::time::now_ms;
use wasmq::domain::{CallbackState, Day, Digest, JobStatus, PluginKind, TenantId, TenantQuotas};
use wasmq::store::*;

use super::support::*;

/// 2024-03-01T00:00:00Z.
const D0: i64 = 1_709_251_200_000;
const DAY: i64 = 86_400_000;

fn day(ms: i64) -> Day {
    Day::of_ms(ms)
}

async fn usage(store: &dyn Store, tenant: Option<&TenantId>, from: i64, to: i64) -> Vec<UsageRecord> {
    let q = UsageQuery { tenant: tenant.cloned(), from: day(from), to: day(to) };
    store.usage_list(q).await.unwrap()
}

/// The one record of `tenant` on the day of `at`.
async fn on(store: &dyn Store, tenant: &TenantId, at: i64) -> UsageRecord {
    let mut found = usage(store, Some(tenant), at, at).await;
    assert_eq!(found.len(), 1, "one record of {tenant} on {}: {found:?}", day(at));
    found.remove(0)
}

fn ran(id: &str, tenant: &TenantId, token: u64, status: JobStatus, at: i64, fuel: u64) -> JobCompletion {
    JobCompletion {
        tenant: tenant.clone(),
        token,
        fuel_used: fuel,
        duration_ms: fuel / 10,
        ..done(id, "n1", status, at)
    }
}

/// Outcomes, fuel and run time of applied completions; a completion written
/// twice counts once; cancel, modules and callbacks move their counters.
pub async fn exercise_completions(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"usage");
    let jobs = ["ok", "retry", "dead"].map(|id| NewJob { max_attempts: 2, ..new_job(id, digest, 1, D0) });
    store.job_insert(jobs.to_vec(), None).await.unwrap();
    let claimed = store.job_claim(claim("n1", D0 + 10, 3)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    store.job_insert(vec![new_job("queued", digest, 1, D0)], None).await.unwrap();
    let at = D0 + 1_000;
    let timeout = Some(("timeout".to_string(), "took longer than 10ms".to_string()));
    let mut retry = ran("retry", &t, 1, JobStatus::Failed, at, 200);
    retry.error = timeout;
    // A run's outbound HTTP counts with its fuel, once per claim.
    let mut ok = ran("ok", &t, 1, JobStatus::Succeeded, at, 100);
    ok.http = wasmq::domain::HttpUsage { requests: 3, sent_bytes: 40, received_bytes: 500 };
    let batch = vec![ok, retry, ran("dead", &t, 1, JobStatus::Dead, at, 300)];
    assert_eq!(store.job_complete(batch.clone()).await.unwrap().applied.len(), 3);
    let want = UsageCounters {
        runs: 3,
        succeeded: 1,
        failed: 1,
        dead: 1,
        timed_out: 1,
        fuel_used: 600,
        run_ms: 60,
        http_requests: 3,
        http_bytes_sent: 40,
        http_bytes_received: 500,
        ..UsageCounters::default()
    };
    assert_eq!(on(store.as_ref(), &t, at).await.counters, want);
    // Written again (a commit whose answer was lost): nothing applies, nothing counts twice.
    assert_eq!(store.job_complete(batch).await.unwrap().applied, []);
    assert_eq!(on(store.as_ref(), &t, at).await.counters, want);

    // A cancel counts on its day; nothing ran.
    store.job_cancel(&t, "queued", D0 + DAY).await.unwrap();
    let next = on(store.as_ref(), &t, D0 + DAY).await;
    assert_eq!(next.counters, UsageCounters { cancelled: 1, ..UsageCounters::default() });
    assert!(usage(store.as_ref(), Some(&t), D0 - DAY, D0 - DAY).await.is_empty(), "nothing before");

    // Modules: the gauge's maximum and end of the day, carried over days without a change.
    for (name, size) in [("m1", 100usize), ("m2", 50)] {
        let put = || ModulePut {
            tenant: t.clone(),
            digest: Digest::of(name.as_bytes()),
            kind: PluginKind::Job,
            bytes: vec![7; size],
            now: D0 + 2 * DAY,
        };
        assert!(store.module_put(put()).await.unwrap().1);
        assert!(!store.module_put(put()).await.unwrap().1, "stored once, counted once");
    }
    let days = usage(store.as_ref(), Some(&t), D0 + 2 * DAY, D0 + 4 * DAY).await;
    let gauge: Vec<(String, u64, u64)> =
        days.iter().map(|r| (r.day.to_string(), r.module_bytes_max, r.module_bytes_end)).collect();
    assert_eq!(
        gauge,
        [("2024-03-03".into(), 150, 150), ("2024-03-04".into(), 150, 150), ("2024-03-05".into(), 150, 150)]
    );
    // A delete is counted today (the store's delete takes no time).
    store.module_delete(&t, &Digest::of(b"m1")).await.unwrap();
    let today = on(store.as_ref(), &t, now_ms()).await;
    assert_eq!((today.module_bytes_max, today.module_bytes_end), (150, 50));

    // Callbacks: every attempt recorded, the accepted ones apart.
    for state in [CallbackState::Sending, CallbackState::Delivered] {
        let record =
            CallbackRecord { owner: CallbackOwner::Job, id: "ok".into(), state, error: None, next_at: None };
        store.callback_record(record).await.unwrap();
    }
    let today = on(store.as_ref(), &t, now_ms()).await;
    assert_eq!((today.counters.callbacks_sent, today.counters.callbacks_delivered), (2, 1));
}

/// The fuel of a run whose completion the fence rejects (its job was
/// cancelled meanwhile, or rescued and claimed again) counts once; so does a
/// usage-only report (a run that lost its claim, or was interrupted by shutdown).
pub async fn exercise_fenced_runs(store: Arc<dyn Store>) {
    let t = tenant();
    let digest = Digest::of(b"fenced");
    let jobs = ["cancelled", "rescued"].map(|id| NewJob { max_attempts: 3, ..new_job(id, digest, 1, D0) });
    store.job_insert(jobs.to_vec(), None).await.unwrap();
    assert_eq!(store.job_claim(claim("n1", D0, 2)).await.unwrap().len(), 2);

    // Cancelled while running: the cancel counts; the run's completion is
    // fenced off but its fuel counts, once however often it arrives.
    store.job_cancel(&t, "cancelled", D0 + 100).await.unwrap();
    let stopped = JobCompletion {
        error: Some(("cancelled".into(), "cancelled".into())),
        ..ran("cancelled", &t, 1, JobStatus::Dead, D0 + 200, 4_000)
    };
    for _ in 0..2 {
        assert_eq!(store.job_complete(vec![stopped.clone()]).await.unwrap().applied, [], "fenced off");
    }
    let want =
        UsageCounters { runs: 1, cancelled: 1, fuel_used: 4_000, run_ms: 400, ..UsageCounters::default() };
    assert_eq!(on(store.as_ref(), &t, D0).await.counters, want);
    assert_eq!(store.job_get(&t, "cancelled").await.unwrap().status, JobStatus::Cancelled);

    // Rescued after its lease lapsed (a failed attempt), claimed again and
    // finished; the stalled first run reports afterwards: counted too, once.
    let rescued = store.job_rescue_expired(D0 + 5_000).await.unwrap();
    assert_eq!(rescued_ids(&rescued).0, vec![("rescued".to_string(), 1)]);
    let again = store.job_claim(claim("n2", D0 + 6_000, 1)).await.unwrap();
    assert_eq!(again[0].lease_token, 2);
    let second =
        JobCompletion { owner: "n2".into(), ..ran("rescued", &t, 2, JobStatus::Succeeded, D0 + 7_000, 20) };
    assert_eq!(store.job_complete(vec![second]).await.unwrap().applied.len(), 1);
    let stale =
        JobCompletion { usage_only: true, ..ran("rescued", &t, 1, JobStatus::Succeeded, D0 + 8_000, 70) };
    for _ in 0..2 {
        assert_eq!(store.job_complete(vec![stale.clone()]).await.unwrap().applied, []);
    }
    let want = UsageCounters {
        runs: 3,
        succeeded: 1,
        failed: 1,
        cancelled: 1,
        fuel_used: 4_090,
        run_ms: 409,
        ..UsageCounters::default()
    };
    assert_eq!(on(store.as_ref(), &t, D0).await.counters, want);
    let job = store.job_get(&t, "rescued").await.unwrap();
    assert_eq!(
        (job.status, job.fuel_used),
        (JobStatus::Succeeded, Some(20)),
        "a usage-only report changes no job"
    );

    // A usage-only report of a current claim (shutdown interrupted it) leaves
    // the job running for `job_release`.
    store.job_retry(&t, "cancelled", D0 + 9_000).await.unwrap();
    let third = store.job_claim(claim("n3", D0 + 9_000, 1)).await.unwrap();
    let interrupted = JobCompletion {
        owner: "n3".into(),
        usage_only: true,
        ..ran("cancelled", &t, third[0].lease_token, JobStatus::Dead, D0 + 9_500, 5)
    };
    assert_eq!(store.job_complete(vec![interrupted]).await.unwrap().applied, []);
    assert_eq!(store.job_get(&t, "cancelled").await.unwrap().status, JobStatus::Running);
    assert_eq!(store.job_release("n3").await.unwrap(), 1);
    let counted = on(store.as_ref(), &t, D0).await.counters;
    assert_eq!((counted.runs, counted.fuel_used, counted.dead), (4, 4_095, 0));
}

/// One completion batch carrying two tenants' runs on two days: each
/// tenant-day gets its sum; a tenant's listing shows only its own rows, the
/// operator's every tenant's.
pub async fn exercise_two_tenants(store: Arc<dyn Store>) {
    let (a, b) = (TenantId::parse("acme").unwrap(), TenantId::parse("bolt").unwrap());
    for id in [&a, &b] {
        let create = TenantCreate {
            id: id.clone(),
            weight: 1,
            quotas: TenantQuotas::default(),
            callback_allow: vec![],
            now: D0,
        };
        store.tenant_create(create).await.unwrap();
    }
    let digest = Digest::of(b"two");
    let mut jobs = Vec::new();
    for (tenant, ids) in [(&a, ["a1", "a2", "a3"]), (&b, ["b1", "b2", "b3"])] {
        for id in ids {
            jobs.push(NewJob { tenant: tenant.clone(), ..new_job(id, digest, 1, D0) });
        }
    }
    store.job_insert(jobs, None).await.unwrap();
    assert_eq!(store.job_claim(claim("n1", D0, 10)).await.unwrap().len(), 6);
    let late = D0 + DAY - 1;
    let batch = vec![
        ran("a1", &a, 1, JobStatus::Succeeded, late, 10),
        ran("b1", &b, 1, JobStatus::Succeeded, late, 1_000),
        ran("a2", &a, 1, JobStatus::Succeeded, late, 20),
        ran("b2", &b, 1, JobStatus::Failed, D0 + DAY, 2_000),
        ran("a3", &a, 1, JobStatus::Dead, D0 + DAY, 40),
        ran("b3", &b, 1, JobStatus::Succeeded, late, 3_000),
    ];
    assert_eq!(store.job_complete(batch).await.unwrap().applied.len(), 6);

    let shown = |records: Vec<UsageRecord>| -> Vec<(String, String, u64, u64, u64, u64, u64)> {
        records
            .into_iter()
            .map(|r| {
                let c = r.counters;
                (r.tenant.to_string(), r.day.to_string(), c.runs, c.succeeded, c.failed, c.dead, c.fuel_used)
            })
            .collect()
    };
    let row = |t: &str, d: &str, runs, ok, failed, dead, fuel| {
        (t.to_string(), d.to_string(), runs, ok, failed, dead, fuel)
    };
    let every = shown(usage(store.as_ref(), None, D0, D0 + DAY).await);
    assert_eq!(
        every,
        [
            row("acme", "2024-03-01", 2, 2, 0, 0, 30),
            row("acme", "2024-03-02", 1, 0, 0, 1, 40),
            row("bolt", "2024-03-01", 2, 2, 0, 0, 4_000),
            row("bolt", "2024-03-02", 1, 0, 1, 0, 2_000),
        ]
    );
    assert_eq!(shown(usage(store.as_ref(), Some(&b), D0, D0 + DAY).await), every[2..]);
    assert_eq!(shown(usage(store.as_ref(), Some(&a), D0 + DAY, D0 + DAY).await), every[1..2]);
    assert!(usage(store.as_ref(), Some(&tenant()), D0, D0 + DAY).await.is_empty());

    // A deleted tenant's usage stays (it is billed on); its storage ends the day it goes.
    let put = ModulePut { tenant: a.clone(), digest, kind: PluginKind::Job, bytes: vec![1; 64], now: D0 };
    store.module_put(put).await.unwrap();
    store.tenant_delete(&a).await.unwrap();
    assert_eq!(shown(usage(store.as_ref(), Some(&a), D0, D0 + DAY).await), every[..2]);
    let gone = on(store.as_ref(), &a, now_ms()).await;
    assert_eq!((gone.module_bytes_max, gone.module_bytes_end), (64, 0));
    let later = usage(store.as_ref(), Some(&a), now_ms() + DAY, now_ms() + 30 * DAY).await;
    assert!(later.is_empty(), "{later:?}");
}
