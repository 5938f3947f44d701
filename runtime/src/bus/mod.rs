//! The node's event stream (`GET /v1/events`): every job, batch, worker and
//! node change this node makes or learns of, numbered, in a bounded ring.
//!
//! Publishers (the queue's producer, completer, progress board and
//! maintenance, the inserter, the API's cancels and retries) push typed
//! [`Event`]s after the change committed: one mutex-held push into a ring of
//! `capacity` events and one `watch` send, whoever listens. Nothing waits for
//! subscribers: each [`Subscription`] reads the ring at its own pace from its
//! own cursor, so a slow or stalled consumer holds nothing but that cursor.
//! One that falls behind the ring's oldest event is told how many it missed
//! ([`Delivery::Lagged`]) and goes on from the oldest held.
//!
//! Ids are this node's: `<incarnation>-<seq>`, the incarnation unique to the
//! process. A client resuming with `Last-Event-ID` on the node (and process)
//! that sent it gets every event after it still held; any other id (another
//! node behind a balancer, a restarted server) resumes from now, after a
//! `lagged` event saying so. On a cluster, other nodes' events arrive here
//! through [`relay`] and are numbered here like this node's own.

mod event;
pub(crate) mod relay;

pub use crate::domain::JobRef;
pub use event::{Detail, Event, Kind, Subject};

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

/// How long after its last stream closed a node goes on keeping events (for
/// clients that reconnect). A node nobody has watched for longer (and whose
/// events no other node asks for) keeps none: its publishers build nothing,
/// and a client resuming from before that is told it lagged.
pub const KEEP_AFTER_WATCH: std::time::Duration = std::time::Duration::from_secs(600);

/// Events held by default: about a second of a saturated node's events, or
/// hours of a typical one's; ~300 bytes each.
pub const DEFAULT_CAPACITY: usize = 50_000;

/// The node's event ring. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    ring: Mutex<Ring>,
    /// The id of the latest event (0: none yet); subscribers wait on it.
    tip: watch::Sender<u64>,
    incarnation: String,
    capacity: usize,
    /// Sends this node's events to the cluster's other nodes, once started.
    relay: OnceLock<Arc<relay::Outbox>>,
    /// Subscriptions open now.
    watching: AtomicUsize,
    /// Unix ms when the last subscription closed.
    last_watched: AtomicI64,
    /// Events were skipped (nobody kept them) since the last one kept.
    gap: std::sync::atomic::AtomicBool,
}

struct Ring {
    events: VecDeque<Arc<Stamped>>,
    /// The id the next event gets (ids start at 1).
    next: u64,
}

/// An event with its id, and its JSON once a stream needed it.
#[derive(Debug)]
pub struct Stamped {
    /// Number on this node.
    pub seq: u64,
    /// The event.
    pub event: Event,
    json: OnceLock<Bytes>,
}

impl Stamped {
    /// The event's JSON, rendered by the first stream to send it.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| Bytes::from(self.event.to_json_bytes()))
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// With the next event published.
    Now,
    /// After the event numbered so on this node.
    After(u64),
    /// The client named an id this process never gave (another node, or
    /// before a restart): from now, after a `lagged` saying so.
    Unknown,
}

/// What a subscription receives next.
#[derive(Debug)]
pub enum Delivery {
    /// Events in order (at least one).
    Events(Vec<Arc<Stamped>>),
    /// Events were dropped before this subscriber read them (or, for
    /// [`Resume::Unknown`], could not be found): `missed` of them, or `None`
    /// when unknown; the next delivery starts at the oldest held.
    Lagged {
        /// How many.
        missed: Option<u64>,
    },
}

impl Bus {
    /// A bus holding the latest `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let incarnation = uuid::Uuid::now_v7().simple().to_string();
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring { events: VecDeque::with_capacity(capacity.min(4096)), next: 1 }),
                tip: watch::Sender::new(0),
                // The random tail of a v7 UUID: unique per process.
                incarnation: incarnation[20..].to_string(),
                capacity,
                relay: OnceLock::new(),
                watching: AtomicUsize::new(0),
                last_watched: AtomicI64::new(0),
                gap: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Whether events are kept now: a stream is open on this node or closed
    /// less than [`KEEP_AFTER_WATCH`] ago, or another node asks for them.
    pub fn active(&self) -> bool {
        self.watched_within(KEEP_AFTER_WATCH) || self.inner.relay.get().is_some_and(|outbox| outbox.wanted())
    }

    /// Publishes the events `make` builds if events are kept now (see
    /// [`active`](Bus::active)); otherwise builds nothing and only notes the
    /// gap. What publishers on the hot path call.
    pub fn publish_with<I: IntoIterator<Item = Event>>(&self, make: impl FnOnce() -> I) {
        if self.active() {
            self.publish_all(make());
        } else if !self.inner.gap.load(Ordering::Relaxed) {
            self.inner.gap.store(true, Ordering::Relaxed);
        }
    }

    /// Publishes one event of this node (after its change committed).
    pub fn publish(&self, event: Event) {
        self.publish_all(std::iter::once(event));
    }

    /// Publishes events of this node in order, with one wake-up (and to
    /// the other nodes, while they ask for them).
    pub fn publish_all(&self, events: impl IntoIterator<Item = Event>) {
        match self.inner.relay.get().filter(|outbox| outbox.wanted()) {
            Some(outbox) => {
                // Rendered before the ring's lock is taken: once for the
                // relay and every stream here.
                let rendered: Vec<(Event, Option<Bytes>)> = events
                    .into_iter()
                    .map(|e| {
                        let json = Bytes::from(e.to_json_bytes());
                        outbox.send(json.clone());
                        (e, Some(json))
                    })
                    .collect();
                self.append(rendered);
            }
            None => self.append(events.into_iter().map(|e| (e, None))),
        }
    }

    /// Publishes events this node observed of the cluster and every other
    /// node observes too (`node.*`): never relayed.
    pub fn publish_local(&self, events: impl IntoIterator<Item = Event>) {
        self.append(events.into_iter().map(|e| (e, None)));
    }

    /// Appends events, each with its JSON if rendered already, in order.
    fn append(&self, events: impl IntoIterator<Item = (Event, Option<Bytes>)>) {
        let tip = {
            let mut ring = self.inner.ring.lock().expect("bus lock");
            self.close_gap(&mut ring);
            for (event, rendered) in events {
                let seq = ring.next;
                ring.next += 1;
                if ring.events.len() == self.inner.capacity {
                    ring.events.pop_front();
                }
                let json = OnceLock::new();
                if let Some(rendered) = rendered {
                    let _ = json.set(rendered);
                }
                ring.events.push_back(Arc::new(Stamped { seq, event, json }));
            }
            ring.next - 1
        };
        if tip != *self.inner.tip.borrow() {
            self.inner.tip.send_replace(tip);
        }
    }

    /// After events were skipped: what is held no longer follows on without
    /// a gap, so it goes, and one number is left out, so a client resuming
    /// from before is told it lagged.
    fn close_gap(&self, ring: &mut Ring) {
        if self.inner.gap.swap(false, Ordering::Relaxed) {
            ring.events.clear();
            ring.next += 1;
        }
    }

    /// The id clients see for event `seq` of this process.
    pub fn id_of(&self, seq: u64) -> String {
        let mut id = Vec::new();
        self.write_id(&mut id, seq);
        String::from_utf8(id).expect("ASCII")
    }

    /// Appends [`id_of`](Bus::id_of) to `out` (no string of its own).
    pub fn write_id(&self, out: &mut Vec<u8>, seq: u64) {
        use std::io::Write;
        out.extend_from_slice(self.inner.incarnation.as_bytes());
        let _ = write!(out, "-{seq}");
    }

    /// Where a client that last saw `last_event_id` resumes.
    pub fn resume_from(&self, last_event_id: Option<&str>) -> Resume {
        let Some(id) = last_event_id else { return Resume::Now };
        match id.rsplit_once('-') {
            Some((incarnation, seq)) if incarnation == self.inner.incarnation => {
                match seq.parse::<u64>() {
                    // An id from the future is not one this process gave.
                    Ok(seq) if seq <= *self.inner.tip.borrow() => Resume::After(seq),
                    _ => Resume::Unknown,
                }
            }
            _ => Resume::Unknown,
        }
    }

    /// A subscription starting at `resume`.
    pub fn subscribe(&self, resume: Resume) -> Subscription {
        let rx = self.inner.tip.subscribe();
        let tip = {
            let mut ring = self.inner.ring.lock().expect("bus lock");
            self.close_gap(&mut ring);
            ring.next - 1
        };
        let (next, unknown) = match resume {
            Resume::Now => (tip + 1, false),
            Resume::After(seq) => (seq + 1, false),
            Resume::Unknown => (tip + 1, true),
        };
        if self.inner.watching.fetch_add(1, Ordering::Relaxed) == 0
            && let Some(outbox) = self.inner.relay.get()
        {
            outbox.subscribed.notify_one();
        }
        Subscription { bus: self.clone(), rx, next, unknown }
    }

    /// Whether a subscription is open, or closed less than `linger` ago.
    fn watched_within(&self, linger: std::time::Duration) -> bool {
        self.inner.watching.load(Ordering::Relaxed) > 0
            || crate::domain::time::now_ms() - self.inner.last_watched.load(Ordering::Relaxed)
                < linger.as_millis() as i64
    }

    /// Events held now.
    pub fn held(&self) -> usize {
        self.inner.ring.lock().expect("bus lock").events.len()
    }
}

/// One stream's cursor into the ring.
pub struct Subscription {
    bus: Bus,
    rx: watch::Receiver<u64>,
    /// The id of the next event this subscriber wants.
    next: u64,
    /// Owes the client a `lagged` for an id it could not resume from.
    unknown: bool,
}

impl Subscription {
    /// The next events (at most `max`), waiting until there are some.
    pub async fn next(&mut self, max: usize) -> Delivery {
        if std::mem::take(&mut self.unknown) {
            return Delivery::Lagged { missed: None };
        }
        loop {
            // Seen before reading the ring: a publication after the read
            // wakes the wait below.
            self.rx.borrow_and_update();
            if let Some(delivery) = self.take(max.max(1)) {
                return delivery;
            }
            if self.rx.changed().await.is_err() {
                // The bus is gone with the server: nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }

    fn take(&mut self, max: usize) -> Option<Delivery> {
        let ring = self.bus.inner.ring.lock().expect("bus lock");
        let oldest = ring.events.front()?.seq;
        if self.next < oldest {
            let missed = oldest - self.next;
            self.next = oldest;
            return Some(Delivery::Lagged { missed: Some(missed) });
        }
        let start = (self.next - oldest) as usize;
        if start >= ring.events.len() {
            return None;
        }
        let events: Vec<Arc<Stamped>> = ring.events.range(start..).take(max).cloned().collect();
        self.next += events.len() as u64;
        Some(Delivery::Events(events))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.inner.last_watched.store(crate::domain::time::now_ms(), Ordering::Relaxed);
        self.bus.inner.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
