-- Usage per tenant per UTC day (`day` is YYYY-MM-DD): what an operator bills
-- on. Each counter is added in the transaction of the write that causes it
-- (see runtime/src/store/usage.rs for what each one counts), so a crash can
-- neither lose nor double-count one. Not tied to `tenants`: a deleted tenant's
-- usage stays.
CREATE TABLE usage (
    tenant              TEXT    NOT NULL,
    day                 TEXT    NOT NULL,
    runs                INTEGER NOT NULL DEFAULT 0,
    succeeded           INTEGER NOT NULL DEFAULT 0,
    failed              INTEGER NOT NULL DEFAULT 0,
    dead                INTEGER NOT NULL DEFAULT 0,
    cancelled           INTEGER NOT NULL DEFAULT 0,
    timed_out           INTEGER NOT NULL DEFAULT 0,
    fuel_used           INTEGER NOT NULL DEFAULT 0,
    run_ms              INTEGER NOT NULL DEFAULT 0,
    callbacks_sent      INTEGER NOT NULL DEFAULT 0,
    callbacks_delivered INTEGER NOT NULL DEFAULT 0,
    -- The module storage gauge, set only on days a module was stored or
    -- deleted (NULL: unchanged, the last earlier value holds): the most bytes
    -- stored at any moment of the day, and the bytes stored at its end.
    module_bytes_max    INTEGER,
    module_bytes_end    INTEGER,
    PRIMARY KEY (tenant, day)
) WITHOUT ROWID;
-- The operator's listing: every tenant over a range of days.
CREATE INDEX usage_day ON usage (day);

-- The claims whose run's fuel and run time are counted: a completion adds
-- them only when it inserts its claim's row here, so a run is counted once
-- whether its completion is applied, fenced off (cancelled, rescued) or
-- written twice. Goes with its job.
CREATE TABLE usage_runs (
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    token   INTEGER NOT NULL,
    PRIMARY KEY (job_id, token)
) WITHOUT ROWID;
