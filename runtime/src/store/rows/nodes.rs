//! Rows of `nodes` (the node registry).

use sqlx::FromRow;

use crate::store::{NodeBeat, NodeRecord, StoreError, StoreResult};

/// Columns of `nodes` in the order `NodeRow` reads them.
pub(in crate::store) const NODE_COLUMNS: &str =
    "id, role, version, host, pid, addr, queues, slots, busy, started_at, heartbeat_at, stopped_at";

/// A row of `nodes` ([`NODE_COLUMNS`]).
#[derive(FromRow)]
pub(in crate::store) struct NodeRow {
    id: String,
    role: String,
    version: String,
    host: String,
    pid: i64,
    addr: Option<String>,
    queues: Option<String>,
    slots: i64,
    busy: i64,
    started_at: i64,
    heartbeat_at: i64,
    stopped_at: Option<i64>,
}

/// A node's queues as stored: a JSON array, NULL for every queue.
pub(in crate::store) fn node_queues(b: &NodeBeat) -> Option<String> {
    b.queues.as_ref().map(|q| serde_json::to_string(q).expect("strings serialize"))
}

impl TryFrom<NodeRow> for NodeRecord {
    type Error = StoreError;

    fn try_from(r: NodeRow) -> StoreResult<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("node {}: {what}", r.id));
        let queues = match &r.queues {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|e| corrupt(&format!("queues: {e}")))?),
        };
        let number = |n: i64, what: &str| u32::try_from(n).map_err(|_| corrupt(&format!("{what} {n}")));
        Ok(NodeRecord {
            beat: NodeBeat {
                pid: number(r.pid, "pid")?,
                slots: number(r.slots, "slots")?,
                busy: number(r.busy, "busy")?,
                id: r.id,
                role: r.role,
                version: r.version,
                host: r.host,
                addr: r.addr,
                queues,
                started_at: r.started_at,
                now: r.heartbeat_at,
                forget_before: 0,
            },
            heartbeat_at: r.heartbeat_at,
            stopped_at: r.stopped_at,
        })
    }
}
