//! Other nodes' events, for a cluster's event streams: a client connected to
//! an API-only node sees the jobs that worker nodes run.
//!
//! Relaying costs a `NOTIFY` per few dozen events, so a node relays only
//! while some other node asks for them: a node with event streams open (or
//! closed less than [`LINGER`] ago, so a client that reconnects resumes
//! without a gap) sends a demand every [`DEMAND_EVERY`], and at once when
//! its first stream opens; a node relays its own events for [`DEMAND_FOR`]
//! after the last demand it heard (a node that starts relaying greets the
//! others, and those with streams answer with a demand at once). A node with
//! nobody watching anywhere
//! relays nothing. Best effort: events published before a demand arrived,
//! or dropped when the relay falls behind ([`QUEUED`]), are not relayed
//! (the stream's clients see the jobs' states through the API).
//!
//! `node.*` and `worker.*` events are not relayed: every node sees the
//! registry itself.

use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

use super::{Bus, Detail, Event, JobRef, Kind, Subject};
use crate::domain::TenantId;
use crate::domain::time::{now_ms, parse_rfc3339};
use crate::store::{Relay, Store};

/// How often a node with streams asks for the others' events.
const DEMAND_EVERY: Duration = Duration::from_secs(2);
/// How long a node relays after the last demand it heard.
const DEMAND_FOR: Duration = Duration::from_secs(5);
/// How long a node keeps asking after its last stream closed.
const LINGER: Duration = Duration::from_secs(60);
/// Longest `NOTIFY` payload sent (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7_800;
/// Events waiting to be relayed; more are dropped.
const QUEUED: usize = 16_384;

/// This node's side: what it relays, and whether anyone wants it.
pub(crate) struct Outbox {
    tx: mpsc::Sender<Bytes>,
    /// Unix ms until which some other node wants events.
    wanted_until: AtomicI64,
    /// A first stream opened here: ask the others at once.
    pub(super) subscribed: Notify,
}

impl Outbox {
    /// Whether another node asked for events lately.
    pub(super) fn wanted(&self) -> bool {
        now_ms() < self.wanted_until.load(Ordering::Relaxed)
    }

    /// Queues one event's JSON for relaying (dropped if the relay is behind).
    pub(super) fn send(&self, json: Bytes) {
        let _ = self.tx.try_send(json);
    }
}

/// Starts relaying between `bus` and the other nodes through `store` (once;
/// later calls do nothing).
pub(crate) fn start(bus: &Bus, store: Arc<dyn Store>, node: Arc<str>) {
    let (tx, rx) = mpsc::channel(QUEUED);
    let outbox = Arc::new(Outbox { tx, wanted_until: AtomicI64::new(0), subscribed: Notify::new() });
    if bus.inner.relay.set(outbox.clone()).is_err() {
        return;
    }
    tokio::spawn(send(store.clone(), node.clone(), rx));
    tokio::spawn(ask(bus.clone(), store, node, outbox));
}

/// Sends queued events, as many per `NOTIFY` as fit.
async fn send(store: Arc<dyn Store>, node: Arc<str>, mut rx: mpsc::Receiver<Bytes>) {
    let mut carry: Option<Bytes> = None;
    loop {
        let first = match carry.take() {
            Some(line) => line,
            None => match rx.recv().await {
                Some(line) => line,
                None => return,
            },
        };
        let mut payload = String::with_capacity(MAX_PAYLOAD);
        payload.push_str(&node);
        push_line(&mut payload, &first);
        while let Ok(line) = rx.try_recv() {
            if payload.len() + 1 + line.len() > MAX_PAYLOAD {
                carry = Some(line);
                break;
            }
            push_line(&mut payload, &line);
        }
        if let Err(e) = store.relay(Relay::Events(payload)).await {
            tracing::warn!(error = %e, "could not relay events to the other nodes");
        }
    }
}

/// Appends one event's JSON as a line; one too long for a payload on its
/// own (a long error message) goes with its `message` cut short.
fn push_line(payload: &mut String, line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else { return };
    payload.push('\n');
    if fits(payload.len(), text.len()) {
        payload.push_str(text);
        return;
    }
    let Ok(mut v) = serde_json::from_str::<Value>(text) else { return };
    if let Some(message) = v.get_mut("message").and_then(|m| m.as_str().map(str::to_string)) {
        let cut: String = message.chars().take(1_000).collect();
        v["message"] = Value::String(cut);
        v["message_truncated"] = Value::Bool(true);
    }
    let shorter = v.to_string();
    if fits(payload.len(), shorter.len()) {
        payload.push_str(&shorter);
    } else {
        payload.pop(); // still too long: not relayed
    }
}

fn fits(used: usize, line: usize) -> bool {
    used + line <= MAX_PAYLOAD
}

/// Asks the other nodes for their events while this node has streams.
async fn ask(bus: Bus, store: Arc<dyn Store>, node: Arc<str>, outbox: Arc<Outbox>) {
    // Nodes with streams open answer at once, not at their next demand.
    if let Err(e) = store.relay(Relay::Hello(node.to_string())).await {
        tracing::warn!(error = %e, "could not greet the other nodes");
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(DEMAND_EVERY) => {}
            () = outbox.subscribed.notified() => {}
        }
        if bus.watched_within(LINGER)
            && let Err(e) = store.relay(Relay::Demand(node.to_string())).await
        {
            tracing::warn!(error = %e, "could not ask the other nodes for their events");
        }
    }
}

/// Takes what another node relayed (this node's own notices come back too,
/// and are ignored).
pub(crate) fn receive(bus: &Bus, node: &str, message: Relay) {
    let Some(outbox) = bus.inner.relay.get() else { return };
    match message {
        Relay::Demand(from) if from != node => {
            let until = now_ms() + DEMAND_FOR.as_millis() as i64;
            outbox.wanted_until.fetch_max(until, Ordering::Relaxed);
        }
        Relay::Hello(from) if from != node && bus.watched_within(LINGER) => outbox.subscribed.notify_one(),
        Relay::Demand(_) | Relay::Hello(_) => {}
        Relay::Events(payload) => {
            let mut lines = payload.split('\n');
            if lines.next().is_none_or(|from| from == node) {
                return;
            }
            bus.append(
                lines.filter_map(|line| Some((parse(line)?, Some(Bytes::copy_from_slice(line.as_bytes()))))),
            );
        }
    }
}

/// An event from its JSON (as `Event::to_json` wrote it): its kind and
/// subject, for filters and scoping; its detail stays in the JSON.
fn parse(line: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(line).ok()?;
    let s = |key: &str| v[key].as_str().map(str::to_string);
    let kind = Kind::parse(v["type"].as_str()?)?;
    let tenant = || s("tenant").and_then(|t| TenantId::parse(&t).ok());
    let subject = match kind.as_str().split_once('.')?.0 {
        "job" => Subject::Job(Arc::new(JobRef {
            id: s("job")?,
            tenant: tenant()?,
            alias: s("alias")?,
            queue: s("queue")?,
            batch: s("batch"),
        })),
        "batch" => Subject::Batch { tenant: tenant()?, id: s("batch")? },
        _ => Subject::Node { id: s("node")? },
    };
    let at = v["at"].as_str().and_then(parse_rfc3339).unwrap_or_else(now_ms);
    Some(Event { kind, subject, detail: Detail::None {}, at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_event_keeps_what_filters_and_scoping_read() {
        let job = Arc::new(JobRef {
            id: "j1".into(),
            tenant: TenantId::parse("acme").unwrap(),
            alias: "echo".into(),
            queue: "q".into(),
            batch: Some("b1".into()),
        });
        let event =
            Event::job(Kind::JobStarted, &job, Detail::Started { attempt: 1, node: "n".into() }, 1_000);
        let back = parse(&event.to_json()).unwrap();
        assert_eq!((back.kind, back.subject, back.at), (Kind::JobStarted, Subject::Job(job), 1_000));
        assert!(parse("{\"type\": \"job.unknown\"}").is_none());
    }

    #[test]
    fn a_line_too_long_for_a_payload_goes_with_its_message_cut() {
        let long = serde_json::json!({"type": "job.dead", "message": "x".repeat(10_000)}).to_string();
        let mut payload = "node-1".to_string();
        push_line(&mut payload, long.as_bytes());
        assert!(payload.len() < MAX_PAYLOAD);
        let v: Value = serde_json::from_str(payload.split_once('\n').unwrap().1).unwrap();
        assert_eq!(
            (v["message"].as_str().unwrap().len(), &v["message_truncated"]),
            (1_000, &Value::Bool(true))
        );
    }
}
