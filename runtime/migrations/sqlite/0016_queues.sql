-- Queues as resources: what an operator set on a queue (`/v1/queues`). A
-- queue with no row runs freely. A paused queue accepts jobs and starts none;
-- `concurrency` bounds its jobs running at once and `rate_max` per
-- `rate_per_ms` its starts (at most `rate_burst` at once), on all nodes together. The rate's token bucket
-- (`tokens` at `refilled_at`) is spent by the claims themselves, in their
-- write transaction.
CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    concurrency INTEGER,
    rate_max INTEGER,
    rate_per_ms INTEGER,
    rate_burst INTEGER,            -- NULL: a tenth of rate_max
    tokens REAL,
    refilled_at INTEGER,
    updated_at INTEGER NOT NULL
);
