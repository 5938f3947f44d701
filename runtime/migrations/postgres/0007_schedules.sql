-- Schedules: a tenant's recurring dispatches. `next_due_at` is the next due
-- time not yet fired (NULL: disabled, or never again); a firing moves it on
-- only if it is still the time the firing node read, in the transaction that
-- inserts the due times' jobs, so each due time fires once across nodes.
CREATE TABLE schedules (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    payload TEXT NOT NULL,
    cron TEXT,
    every_ms BIGINT,
    timezone TEXT,
    queue TEXT,
    priority BIGINT,
    enabled BOOLEAN NOT NULL,
    catch_up TEXT NOT NULL,
    next_due_at BIGINT,
    last_due_at BIGINT,
    last_job_id TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX schedules_due ON schedules (next_due_at) WHERE next_due_at IS NOT NULL;
