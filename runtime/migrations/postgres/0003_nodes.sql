-- The node registry: every node writes its row when it starts and renews it
-- every few seconds while it runs (`GET /v1/nodes`, `wasmq nodes`). A node
-- silent for three beats is listed as lost; rows silent for a day are deleted.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,          -- also the lease owner of the jobs it claims
    role TEXT NOT NULL,           -- server, api, worker
    version TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    addr TEXT,                    -- its HTTP API; NULL for a worker
    queues TEXT,                  -- JSON array of the queues it runs; NULL: every queue
    slots BIGINT NOT NULL,
    busy BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT             -- set by a clean shutdown
);

-- A node that consumes chosen queues (`wasmq worker --queues gpu`) claims
-- along this index: straight to its queues' waiting jobs in claim order, not
-- past every other queue's backlog. (SQLite has one node, which consumes
-- every queue unless told otherwise, and no second index to keep on its hot
-- path.)
CREATE INDEX jobs_queue_runnable ON jobs (queue, tenant, priority DESC, run_at, id)
    WHERE status IN ('queued', 'scheduled', 'failed');
