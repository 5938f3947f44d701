-- wasmq schema, SQLite. Every record carries a tenant column (one default tenant
-- until multi-tenancy), and every query is scoped by it. Times are unix milliseconds.

CREATE TABLE modules (
    tenant      TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    bytes       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, digest)
);

CREATE TABLE aliases (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    module      TEXT    NOT NULL,
    config      TEXT    NOT NULL,   -- JSON AliasConfig
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Every version an alias has had; rollback re-applies the one before the current.
CREATE TABLE alias_versions (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    module      TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE INDEX alias_versions_module ON alias_versions (tenant, module);

CREATE TABLE batches (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    total       INTEGER NOT NULL,
    callback    TEXT,               -- JSON Callback
    callback_state     TEXT,
    callback_attempts  INTEGER NOT NULL DEFAULT 0,
    callback_last_error TEXT,
    callback_next_at   INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE jobs (
    id              TEXT    PRIMARY KEY,      -- UUIDv7: sorts by creation time
    tenant          TEXT    NOT NULL,
    alias           TEXT    NOT NULL,
    module          TEXT    NOT NULL,         -- digest pinned at dispatch
    status          TEXT    NOT NULL,
    priority        INTEGER NOT NULL,
    queue           TEXT    NOT NULL,
    context         TEXT,
    payload         TEXT    NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    limits          TEXT    NOT NULL,         -- JSON domain::Limits
    run_at          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    lease_owner     TEXT,
    lease_expires_at INTEGER,
    result          TEXT,
    error_kind      TEXT,
    error_message   TEXT,
    progress_percent INTEGER,
    progress_message TEXT,
    logs            TEXT,                     -- JSON [LogEntry]
    fuel_used       INTEGER,
    duration_ms     INTEGER,
    idempotency_key TEXT,
    batch_id        TEXT,
    callback        TEXT,                     -- JSON Callback
    callback_state  TEXT,
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_last_error TEXT,
    callback_next_at INTEGER
);

-- The claim query's path: runnable jobs by priority, then due time, then age.
CREATE INDEX jobs_runnable ON jobs (priority DESC, run_at, id)
    WHERE status IN ('queued', 'scheduled', 'failed');
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant_created ON jobs (tenant, id);
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_callback_due ON jobs (callback_next_at) WHERE callback_state = 'sending';
-- When the next delayed or retrying job is due (the scheduler's wake-up).
CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('scheduled', 'failed');
CREATE INDEX batches_callback_due ON batches (callback_next_at) WHERE callback_state = 'sending';
