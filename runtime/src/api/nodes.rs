//! `GET /v1/nodes`: the node registry, for the operator (see
//! [`ClusterReader`](super::auth::ClusterReader)).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ClusterReader;
use super::{ApiResult, AppState};
use crate::config::Role;
use crate::domain::time::{now_ms, rfc3339};
use crate::queue::{NODE_BEAT, NODE_LOST};
use crate::store::NodeRecord;

/// Whether a node is working, as far as its heartbeat tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// It renewed its row within the last `lost_after_ms`.
    Up,
    /// Silent for longer: crashed, killed, paused, or cut off from the
    /// database. Its jobs run again elsewhere once their leases lapse.
    Lost,
    /// It shut down cleanly.
    Stopped,
}

/// One node of the cluster.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// The node's id (also the lease owner of the jobs it runs).
    pub id: String,
    /// `server` (API and workers), `api` (`--no-workers`) or `worker` (`wasmq worker`).
    pub role: Role,
    /// Up, lost or stopped.
    pub status: NodeStatus,
    /// The wasmq version it runs.
    pub version: String,
    /// Its host name.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Where its HTTP API listens; absent for a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// The queues it runs; absent: every queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
    /// Its worker slots (0 for an API-only node).
    pub slots: u32,
    /// Jobs running on it at its last heartbeat.
    pub busy: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Milliseconds since its last heartbeat, by this node's clock.
    pub heartbeat_age_ms: i64,
    /// When it shut down cleanly (RFC 3339); absent while it has not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

/// The nodes, and how their status is judged.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// Every node registered in the last day, by id.
    pub nodes: Vec<NodeView>,
    /// How often a node renews its row.
    pub heartbeat_ms: u64,
    /// A node silent this long is `lost`.
    pub lost_after_ms: u64,
}

impl NodeView {
    fn new(r: NodeRecord, now: i64) -> Self {
        let age = now.saturating_sub(r.heartbeat_at);
        let status = match r.stopped_at {
            Some(_) => NodeStatus::Stopped,
            None if age > NODE_LOST.as_millis() as i64 => NodeStatus::Lost,
            None => NodeStatus::Up,
        };
        let b = r.beat;
        Self {
            role: match b.role.as_str() {
                "api" => Role::Api,
                "worker" => Role::Worker,
                _ => Role::Server,
            },
            status,
            id: b.id,
            version: b.version,
            host: b.host,
            pid: b.pid,
            addr: b.addr,
            queues: b.queues,
            slots: b.slots,
            busy: if status == NodeStatus::Up { b.busy } else { 0 },
            started_at: rfc3339(b.started_at),
            heartbeat_at: rfc3339(r.heartbeat_at),
            heartbeat_age_ms: age.max(0),
            stopped_at: r.stopped_at.map(rfc3339),
        }
    }
}

/// The nodes sharing this server's database: each API, worker and combined
/// node, up, lost or stopped, with its slots and busy workers.
#[utoipa::path(get, path = "/v1/nodes", tag = "server", operation_id = "listNodes",
    responses((status = 200, description = "Every node registered in the last day.", body = NodeList)))]
pub(super) async fn list(State(state): State<AppState>, _: ClusterReader) -> ApiResult<Json<NodeList>> {
    let now = now_ms();
    let nodes = state.store.node_list().await?.into_iter().map(|r| NodeView::new(r, now)).collect();
    Ok(Json(NodeList {
        nodes,
        heartbeat_ms: NODE_BEAT.as_millis() as u64,
        lost_after_ms: NODE_LOST.as_millis() as u64,
    }))
}
