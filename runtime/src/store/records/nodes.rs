//! The node registry: every node (`wasmq serve`, `serve --no-workers`,
//! `worker`) writes its row when it starts and renews it while it runs.

/// One node's row, as `node_beat` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBeat {
    /// The node's id: also the lease owner of the jobs it claims.
    pub id: String,
    /// `server`, `api` or `worker`.
    pub role: String,
    /// The wasmq version it runs.
    pub version: String,
    /// Its host name.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Where its HTTP API listens (`None`: a worker has none).
    pub addr: Option<String>,
    /// The queues it runs jobs of (`None`: every queue).
    pub queues: Option<Vec<String>>,
    /// Its worker slots.
    pub slots: u32,
    /// Jobs running in its sandboxes now.
    pub busy: u32,
    /// Unix ms: when it started.
    pub started_at: i64,
    /// Unix ms: now (the heartbeat).
    pub now: i64,
    /// Unix ms: rows of nodes silent since before this are deleted.
    pub forget_before: i64,
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The row as last written.
    pub beat: NodeBeat,
    /// Unix ms of its last heartbeat (`beat.now`).
    pub heartbeat_at: i64,
    /// Unix ms: when it stopped cleanly (`None`: it has not).
    pub stopped_at: Option<i64>,
}
