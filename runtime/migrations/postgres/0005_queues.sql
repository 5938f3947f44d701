-- Queues as resources: what an operator set on a queue (`/v1/queues`). A
-- queue with no row runs freely. A paused queue accepts jobs and starts none;
-- `concurrency` bounds its jobs running at once and `rate_max` per
-- `rate_per_ms` its starts (at most `rate_burst` at once), on all nodes together. The rate's token bucket
-- (`tokens` at `refilled_at`) is spent by the claims themselves, under the
-- queue's claim lock.
CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT false,
    concurrency BIGINT,
    rate_max BIGINT,
    rate_per_ms BIGINT,
    rate_burst BIGINT,             -- NULL: a tenth of rate_max
    tokens DOUBLE PRECISION,
    refilled_at BIGINT,
    updated_at BIGINT NOT NULL
);

-- wasmq_queues: a queue's controls changed (payload: its name): every node
-- reads them again before its next claim, and claims (a resumed queue's jobs
-- start at once). The claims' own token updates leave these columns alone and
-- send nothing.
CREATE FUNCTION wasmq_notify_queues() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wasmq_queues', NEW.name);
    RETURN NULL;
END $$;

CREATE TRIGGER queues_changed AFTER INSERT OR UPDATE OF paused, concurrency, rate_max, rate_per_ms, rate_burst ON queues
    FOR EACH ROW EXECUTE FUNCTION wasmq_notify_queues();
