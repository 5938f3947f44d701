use super::*;
use crate::domain::TenantId;

fn node_event(n: u32) -> Event {
    Event {
        kind: Kind::WorkerStarted,
        subject: Subject::Node { id: format!("n{n}") },
        detail: Detail::None {},
        at: i64::from(n),
    }
}

fn ids(delivery: Delivery) -> Vec<u64> {
    match delivery {
        Delivery::Events(events) => events.iter().map(|e| e.seq).collect(),
        Delivery::Lagged { missed } => panic!("lagged by {missed:?}"),
    }
}

#[tokio::test]
async fn a_subscriber_gets_what_was_published_after_it_in_order() {
    let bus = Bus::new(100);
    bus.publish(node_event(0));
    let mut sub = bus.subscribe(Resume::Now);
    bus.publish_all((1..=3).map(node_event));
    assert_eq!(ids(sub.next(10).await), [2, 3, 4]);
    // Waits for the next one.
    let waiting = tokio::spawn(async move { ids(sub.next(10).await) });
    tokio::task::yield_now().await;
    bus.publish(node_event(4));
    assert_eq!(waiting.await.unwrap(), [5]);
}

#[tokio::test]
async fn deliveries_are_capped() {
    let bus = Bus::new(100);
    let mut sub = bus.subscribe(Resume::Now);
    bus.publish_all((0..10).map(node_event));
    assert_eq!(ids(sub.next(4).await), [1, 2, 3, 4]);
    assert_eq!(ids(sub.next(100).await), [5, 6, 7, 8, 9, 10]);
}

#[tokio::test]
async fn a_client_resumes_after_the_id_it_last_saw() {
    let bus = Bus::new(100);
    bus.publish_all((0..5).map(node_event));
    let resume = bus.resume_from(Some(&bus.id_of(3)));
    assert_eq!(resume, Resume::After(3));
    assert_eq!(ids(bus.subscribe(resume).next(100).await), [4, 5]);
}

#[tokio::test]
async fn ids_this_process_never_gave_resume_from_now_after_a_lagged() {
    let bus = Bus::new(100);
    bus.publish_all((0..5).map(node_event));
    let other = Bus::new(100);
    for id in [other.id_of(2), bus.id_of(99), "garbage".to_string(), format!("{}-x", &bus.id_of(1)[..12])] {
        assert_eq!(bus.resume_from(Some(&id)), Resume::Unknown, "{id}");
    }
    let mut sub = bus.subscribe(Resume::Unknown);
    assert!(matches!(sub.next(10).await, Delivery::Lagged { missed: None }));
    bus.publish(node_event(6));
    assert_eq!(ids(sub.next(10).await), [6]);
}

#[tokio::test]
async fn a_stalled_subscriber_holds_nothing_back_and_learns_what_it_missed() {
    let bus = Bus::new(10);
    let mut sub = bus.subscribe(Resume::Now);
    // A million publications never wait for the subscriber, and the ring
    // stays at its capacity.
    bus.publish_all((0..1_000_000).map(node_event));
    assert_eq!(bus.held(), 10);
    match sub.next(100).await {
        Delivery::Lagged { missed } => assert_eq!(missed, Some(1_000_000 - 10)),
        Delivery::Events(_) => panic!("should have lagged"),
    }
    assert_eq!(ids(sub.next(100).await), (999_991..=1_000_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn rendering_happens_once_per_event() {
    let bus = Bus::new(10);
    let mut a = bus.subscribe(Resume::Now);
    let mut b = bus.subscribe(Resume::Now);
    let job = Arc::new(JobRef {
        id: "j".into(),
        tenant: TenantId::default_tenant(),
        alias: "echo".into(),
        queue: "default".into(),
        batch: Some("b1".into()),
    });
    bus.publish(Event::job(Kind::JobQueued, &job, Detail::None {}, 0));
    let (Delivery::Events(x), Delivery::Events(y)) = (a.next(1).await, b.next(1).await) else { panic!() };
    assert!(std::ptr::eq(x[0].json().as_ptr(), y[0].json().as_ptr()), "one rendering shared");
    assert!(x[0].json().starts_with(br#"{"type":"job.queued""#));
}

#[tokio::test]
async fn a_node_nobody_watches_keeps_nothing_and_a_resume_across_that_gap_lags() {
    let bus = Bus::new(100);
    // Watched once: events are kept, and a client leaves knowing an id.
    let sub = bus.subscribe(Resume::Now);
    bus.publish_with(|| [node_event(1)]);
    let seen = bus.id_of(1);
    drop(sub);
    // Nobody has watched for longer than KEEP_AFTER_WATCH: nothing is built.
    bus.inner.last_watched.store(0, Ordering::Relaxed);
    assert!(!bus.active());
    let built = std::cell::Cell::new(false);
    bus.publish_with(|| {
        built.set(true);
        [node_event(2)]
    });
    assert!(!built.get(), "publishers build nothing");
    // The client comes back: told it lagged, then it gets what comes.
    let mut sub = bus.subscribe(bus.resume_from(Some(&seen)));
    bus.publish_with(|| [node_event(3)]);
    assert!(matches!(sub.next(10).await, Delivery::Lagged { missed: Some(1) }));
    assert_eq!(ids(sub.next(10).await), [3]);
    // A new client starts with what comes next, without a lagged.
    let mut fresh = bus.subscribe(Resume::Now);
    bus.publish_with(|| [node_event(4)]);
    assert_eq!(ids(fresh.next(10).await), [4]);
}
