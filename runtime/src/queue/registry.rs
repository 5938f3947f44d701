//! This node's row in the node registry (`Store::node_beat`): written when
//! the queue starts, renewed every [`NODE_BEAT`] with its busy workers, and
//! marked stopped when it shuts down cleanly. A node whose row is older than
//! [`NODE_LOST`] is listed as lost: it crashed, was killed or cannot reach
//! the database (its jobs come back when their leases lapse; that is the
//! rescuer's, not this registry's).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::collections::HashSet;

use super::Shared;
use crate::bus::{Detail, Event, Kind, Subject};
use crate::config::Role;
use crate::domain::time::now_ms;
use crate::store::{NodeBeat, StoreResult};

/// How often a node renews its row.
pub const NODE_BEAT: Duration = Duration::from_secs(2);

/// A node whose row is older than this (three beats missed) is lost.
pub const NODE_LOST: Duration = Duration::from_secs(3 * NODE_BEAT.as_secs() + 1);

/// Rows of nodes silent this long are deleted (by any node's beat).
pub const NODE_FORGET: Duration = Duration::from_secs(24 * 3600);

/// What a node says of itself beyond its queue's settings.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Its id in the registry (`node-<uuid v7>`), new on every start.
    pub id: String,
    /// What it does.
    pub role: Role,
    /// Where its HTTP API listens (`None`: it has none).
    pub addr: Option<std::net::SocketAddr>,
    /// Unix ms: when it started.
    pub started_at: i64,
}

impl NodeInfo {
    /// A node with `role`, its API (if any) at `addr`, starting now.
    pub fn new(role: Role, addr: Option<std::net::SocketAddr>) -> Self {
        Self { id: format!("node-{}", uuid::Uuid::now_v7()), role, addr, started_at: now_ms() }
    }
}

/// Writes this node's row now.
pub(crate) async fn register(shared: &Shared) -> StoreResult<()> {
    shared.store.node_beat(beat(shared)).await
}

/// This node's row now.
fn beat(shared: &Shared) -> NodeBeat {
    let info = &shared.info;
    let now = now_ms();
    NodeBeat {
        id: shared.node.clone(),
        role: info.role.as_str().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        host: host_name(),
        pid: std::process::id(),
        addr: info.addr.map(|a| a.to_string()),
        queues: shared.settings.queues.clone(),
        slots: u32::try_from(shared.settings.workers).unwrap_or(u32::MAX),
        busy: u32::try_from(shared.busy.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
        started_at: info.started_at,
        now,
        forget_before: now - NODE_FORGET.as_millis() as i64,
    }
}

/// This machine's host name (lossy where it is not UTF-8).
fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Renews the node's row every beat (`Queue::register` wrote the first). A
/// failed write is logged and tried again at the next beat (the database may
/// be restarting); the node goes on working meanwhile, listed as lost if it
/// lasts.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut failing = false;
    let mut nodes = Membership::default();
    nodes.seen(&shared).await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(NODE_BEAT) => {}
            () = shared.stopping.cancelled() => return,
        }
        nodes.seen(&shared).await;
        match register(&shared).await {
            Ok(()) if failing => {
                tracing::info!("node registry reachable again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "could not renew this node's registry row");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Which nodes this node last saw up, to publish `node.joined`,
/// `worker.started`, `worker.stopped` and `node.lost` as the registry
/// changes. Every node does, for its own event stream, so these are never
/// relayed: each node's stream shows the same cluster within a beat.
#[derive(Default)]
struct Membership {
    /// Ids of the nodes up at the last look (`None`: not looked yet).
    up: Option<HashSet<String>>,
}

impl Membership {
    async fn seen(&mut self, shared: &Shared) {
        let Ok(rows) = shared.store.node_list().await else { return };
        let now = now_ms();
        let lost_after = NODE_LOST.as_millis() as i64;
        let up_now: HashSet<String> = rows
            .iter()
            .filter(|r| r.stopped_at.is_none() && now.saturating_sub(r.heartbeat_at) <= lost_after)
            .map(|r| r.beat.id.clone())
            .collect();
        let first = self.up.is_none();
        let before = self.up.replace(up_now.clone()).unwrap_or_default();
        let mut events = Vec::new();
        for row in &rows {
            let id = &row.beat.id;
            // At the first look only this node itself is news.
            let joined = up_now.contains(id) && !before.contains(id) && (!first || *id == shared.node);
            let workers = row.beat.slots > 0;
            if joined {
                events.push(node_event(Kind::NodeJoined, &row.beat, now));
                if workers {
                    events.push(node_event(Kind::WorkerStarted, &row.beat, now));
                }
            } else if before.contains(id) && !up_now.contains(id) {
                match row.stopped_at {
                    Some(at) if workers => events.push(node_event(Kind::WorkerStopped, &row.beat, at)),
                    Some(_) => {}
                    None => events.push(node_event(Kind::NodeLost, &row.beat, now)),
                }
            }
        }
        shared.bus.publish_local(events);
    }
}

/// A `node.*` or `worker.*` event about the node that wrote `beat`.
fn node_event(kind: Kind, beat: &NodeBeat, at: i64) -> Event {
    let detail = Detail::Node {
        role: beat.role.clone(),
        host: beat.host.clone(),
        slots: beat.slots,
        queues: beat.queues.clone(),
    };
    Event { kind, subject: Subject::Node { id: beat.id.clone() }, detail, at }
}

/// Marks the node stopped (at the end of a clean shutdown).
pub(crate) async fn stopped(shared: &Shared) {
    if let Err(e) = shared.store.node_stop(&shared.node, now_ms()).await {
        tracing::warn!(error = %e, "could not mark this node stopped in the registry; it will show as lost");
    }
}
