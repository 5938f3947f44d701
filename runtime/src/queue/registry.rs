//! This node's row in the node registry (`Store::node_beat`): written when
//! the queue starts, renewed every [`NODE_BEAT`] with its busy workers, and
//! marked stopped when it shuts down cleanly. A node whose row is older than
//! [`NODE_LOST`] is listed as lost: it crashed, was killed or cannot reach
//! the database (its jobs come back when their leases lapse; that is the
//! rescuer's, not this registry's).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
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
        Self { role, addr, started_at: now_ms() }
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
    loop {
        tokio::select! {
            () = tokio::time::sleep(NODE_BEAT) => {}
            () = shared.stopping.cancelled() => return,
        }
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

/// Marks the node stopped (at the end of a clean shutdown).
pub(crate) async fn stopped(shared: &Shared) {
    if let Err(e) = shared.store.node_stop(&shared.node, now_ms()).await {
        tracing::warn!(error = %e, "could not mark this node stopped in the registry; it will show as lost");
    }
}
