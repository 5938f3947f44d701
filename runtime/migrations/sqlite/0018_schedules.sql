-- Schedules: a tenant's recurring dispatches. `next_due_at` is the next due
-- time not yet fired (NULL: disabled, or never again); a firing moves it on
-- only if it is still the time the firing node read, in the transaction that
-- inserts the due times' jobs, so each due time fires once.
CREATE TABLE schedules (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    payload TEXT NOT NULL,
    cron TEXT,
    every_ms INTEGER,
    timezone TEXT,
    queue TEXT,
    priority INTEGER,
    enabled INTEGER NOT NULL,
    catch_up TEXT NOT NULL,
    next_due_at INTEGER,
    last_due_at INTEGER,
    last_job_id TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
CREATE INDEX schedules_due ON schedules (next_due_at) WHERE next_due_at IS NOT NULL;
