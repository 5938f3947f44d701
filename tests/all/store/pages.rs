//! Watching jobs and listing them in bounded pages.

use std::sync::Arc;
use wasmq::domain::{Digest, JobStatus};
use wasmq::store::*;

use super::support::*;

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
                    batch: None,
                    order,
                    limit,
                    after: after.clone(),
                    max_bytes,
                };
                let page = store.job_list(list).await.unwrap();
                after = page.jobs.last().map(|j| JobCursor { priority: j.priority, id: j.id.clone() });
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
