-- The node registry: every node writes its row when it starts and renews it
-- every few seconds while it runs (`GET /v1/nodes`, `wasmq nodes`). A node
-- silent for three beats is listed as lost; rows silent for a day are deleted.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,          -- also the lease owner of the jobs it claims
    role TEXT NOT NULL,           -- server, api, worker
    version TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    addr TEXT,                    -- its HTTP API; NULL for a worker
    queues TEXT,                  -- JSON array of the queues it runs; NULL: every queue
    slots INTEGER NOT NULL,
    busy INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at INTEGER            -- set by a clean shutdown
);
