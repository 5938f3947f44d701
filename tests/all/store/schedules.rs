//! Schedules: put keeps the next due time of an unchanged recurrence, lists
//! by name, pauses and resumes, reads what is due; a firing applies only
//! when the next due time is still the one read, so racing firings through
//! two stores fire each due time once.

use futures_util::FutureExt;
use std::sync::Arc;
use wasmq::domain::{AliasName, CatchUp, Digest, IdempotencyKey};
use wasmq::store::*;

use super::support::*;

fn spec(every_ms: u64) -> ScheduleSpec {
    ScheduleSpec {
        alias: AliasName::parse("echo").unwrap(),
        payload: "{\"n\":1}".into(),
        cron: None,
        every_ms: Some(every_ms),
        timezone: None,
        queue: None,
        priority: None,
        enabled: true,
        catch_up: CatchUp::One,
    }
}

fn put(name: &str, spec: ScheduleSpec, next_due_at: Option<i64>, now: i64) -> SchedulePut {
    SchedulePut { tenant: tenant(), name: name.into(), spec, next_due_at, now }
}

/// The job of due time `due` of schedule `name`.
fn due_job(name: &str, due: i64, id: &str) -> NewJob {
    NewJob {
        idempotency_key: Some(IdempotencyKey::parse(format!("schedule:{name}:{due}")).unwrap()),
        ..new_job(id, Digest::of(b"schedule"), 1, due)
    }
}

fn firing(name: &str, expected: i64, next: i64, jobs: Vec<NewJob>) -> ScheduleFiring {
    ScheduleFiring {
        tenant: tenant(),
        name: name.into(),
        expected_next_due: expected,
        next_due_at: Some(next),
        last_due_at: Some(expected),
        jobs,
        error: None,
    }
}

pub async fn schedules_are_kept_listed_and_fired(store: Arc<dyn Store>) {
    let made = store.schedule_put(put("tick", spec(1_000), Some(2_000), 1_500)).await.unwrap();
    assert_eq!((made.next_due_at, made.created_at, made.updated_at), (Some(2_000), 1_500, 1_500));
    // Put again unchanged: the stored next due time stays.
    let again = store.schedule_put(put("tick", spec(1_000), Some(9_000), 8_500)).await.unwrap();
    assert_eq!((again.next_due_at, again.created_at, again.updated_at), (Some(2_000), 1_500, 8_500));
    // Another payload keeps it too; another recurrence counts anew.
    let payload = ScheduleSpec { payload: "2".into(), ..spec(1_000) };
    assert_eq!(
        store.schedule_put(put("tick", payload, Some(9_000), 8_600)).await.unwrap().next_due_at,
        Some(2_000)
    );
    let slower = store.schedule_put(put("tick", spec(5_000), Some(10_000), 8_700)).await.unwrap();
    assert_eq!((slower.next_due_at, slower.spec.every_ms), (Some(10_000), Some(5_000)));
    store.schedule_put(put("b-other", spec(1_000), Some(3_000), 1_000)).await.unwrap();

    let page = store.schedule_list(&tenant(), None, 1).await.unwrap();
    assert_eq!(page.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["b-other"]);
    let rest = store.schedule_list(&tenant(), Some("b-other"), 10).await.unwrap();
    assert_eq!(rest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["tick"]);

    assert_eq!(store.schedule_next_due().await.unwrap(), Some(3_000));
    let due = store.schedule_due(5_000, 10).await.unwrap();
    assert_eq!(due.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["b-other"], "tick is due at 10 s");

    // A firing moves the next due time and inserts the jobs; a second
    // firing of the same due time (read before the first) is lost.
    let fire = firing("b-other", 3_000, 4_000, vec![due_job("b-other", 3_000, "j-3")]);
    let Fired::Fired(inserted) = store.schedule_fire(fire.clone()).await.unwrap() else { panic!("lost") };
    assert_eq!(inserted.len(), 1);
    assert!(inserted[0].created);
    assert!(matches!(store.schedule_fire(fire).await.unwrap(), Fired::Lost));
    let after = store.schedule_get(&tenant(), "b-other").await.unwrap();
    assert_eq!((after.next_due_at, after.last_due_at), (Some(4_000), Some(3_000)));
    assert_eq!(after.last_job_id.as_deref(), Some("j-3"));
    // A due time whose job exists (a firing that died after inserting it,
    // in a backend that could) answers the job, not a second one.
    let redo = firing("b-other", 4_000, 5_000, vec![due_job("b-other", 3_000, "j-3-again")]);
    let Fired::Fired(inserted) = store.schedule_fire(redo).await.unwrap() else { panic!("lost") };
    assert_eq!((inserted[0].created, inserted[0].job.id.as_str()), (false, "j-3"));
    // A firing that made no job records why, and moves on.
    let refused = ScheduleFiring {
        jobs: vec![],
        error: Some("alias echo not found".into()),
        last_due_at: None,
        ..firing("b-other", 5_000, 6_000, vec![])
    };
    assert!(matches!(store.schedule_fire(refused).await.unwrap(), Fired::Fired(_)));
    let after = store.schedule_get(&tenant(), "b-other").await.unwrap();
    assert_eq!(after.last_error.as_deref(), Some("alias echo not found"));
    assert_eq!((after.next_due_at, after.last_due_at), (Some(6_000), Some(4_000)), "no due time fired");

    // Paused: not due, not fired; resumed from a given time.
    let paused = store.schedule_enable(&tenant(), "b-other", None, 6_500).await.unwrap();
    assert!(!paused.spec.enabled);
    assert_eq!(paused.next_due_at, None);
    assert!(store.schedule_due(100_000, 10).await.unwrap().iter().all(|s| s.name != "b-other"));
    assert!(matches!(
        store.schedule_fire(firing("b-other", 6_000, 7_000, vec![])).await.unwrap(),
        Fired::Lost
    ));
    let resumed = store.schedule_enable(&tenant(), "b-other", Some(50_000), 49_500).await.unwrap();
    assert_eq!((resumed.spec.enabled, resumed.next_due_at), (true, Some(50_000)));

    store.schedule_delete(&tenant(), "b-other").await.unwrap();
    assert!(matches!(store.schedule_get(&tenant(), "b-other").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.schedule_delete(&tenant(), "b-other").await, Err(StoreError::NotFound(_))));
    // Another tenant sees none of them.
    let other = create_tenant(store.as_ref(), "other").await;
    assert!(store.schedule_list(&other, None, 10).await.unwrap().is_empty());
    assert!(matches!(store.schedule_get(&other, "tick").await, Err(StoreError::NotFound(_))));
}

/// 20 due times, each fired by two stores at once (two nodes that read the
/// schedule at the same moment): each due time is fired by one and makes
/// one job.
pub async fn racing_firings_fire_each_due_time_once(url: String) {
    let stores = super::concurrency::two(&url).await;
    stores.0.schedule_put(put("race", spec(1_000), Some(1_000), 500)).await.unwrap();
    for k in 1..=20_i64 {
        let due = k * 1_000;
        let answers = super::concurrency::at_once(&stores, 2, |store, i| {
            let f = firing("race", due, due + 1_000, vec![due_job("race", due, &format!("race-{k}-{i}"))]);
            async move { store.schedule_fire(f).await.expect("no error") }.boxed()
        })
        .await;
        let won = answers.iter().filter(|a| matches!(a, Fired::Fired(_))).count();
        assert_eq!(won, 1, "due time {due}: {answers:?}");
    }
    let jobs = all_jobs(stores.0.as_ref(), &tenant()).await;
    assert_eq!(jobs.len(), 20, "one job per due time");
}
