-- wasmq schema, PostgreSQL: the schema the SQLite migrations 0001..0013 end
-- at, in one step. Every record carries a tenant column and every query is
-- scoped by it. Times are unix milliseconds (BIGINT, as in SQLite: the rows
-- decode the same on both backends); JSON is stored as TEXT, read as it was
-- written. Several nodes share this database: what SQLite's single writer
-- serializes, the statements here make safe with row locks (claims and
-- callback deliveries take rows FOR UPDATE SKIP LOCKED), the unique index on
-- idempotency keys, and transaction-scoped advisory locks (see
-- runtime/src/store/postgres/mod.rs).

CREATE TABLE tenants (
    id              TEXT    PRIMARY KEY,
    weight          BIGINT  NOT NULL DEFAULT 1,
    quotas          TEXT,               -- JSON domain::TenantQuotas, NULL = the server's settings
    callback_allow  TEXT,               -- JSON array, NULL = none
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- `default` always exists: the single-token and no-token modes act as it.
INSERT INTO tenants (id, weight, created_at, updated_at)
    VALUES ('default', 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint);

-- A token is kept only as the blake3 hash of its secret (hex).
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (id),
    scope       TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    name        TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant, created_at);

-- Signing keys, their secret sealed with the server's secret box.
CREATE TABLE signing_keys (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope       TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    name        TEXT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant, created_at);

-- Module bytes live in the database, so every node can load every module
-- (each compiles it once into its own disk cache).
CREATE TABLE modules (
    tenant      TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    size        BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    bytes       BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant, digest)
);

CREATE TABLE aliases (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    module      TEXT    NOT NULL,
    config      TEXT    NOT NULL,   -- JSON AliasConfig
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Every kept version of an alias; rollback re-applies the one before the current.
CREATE TABLE alias_versions (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    module      TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant, name, version)
);

-- An alias's secrets (sealed), not versioned with it.
CREATE TABLE alias_secrets (
    tenant      TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant, alias, key)
);

CREATE TABLE batches (
    id                  TEXT    PRIMARY KEY,
    tenant              TEXT    NOT NULL,
    total               BIGINT  NOT NULL,
    callback            TEXT,           -- JSON Callback
    callback_state      TEXT,
    callback_attempts   BIGINT  NOT NULL DEFAULT 0,
    callback_last_error TEXT,
    callback_next_at    BIGINT,
    created_at          BIGINT  NOT NULL
);
CREATE INDEX batches_callback_due ON batches (callback_next_at) WHERE callback_state = 'sending';

CREATE TABLE jobs (
    id                  TEXT    PRIMARY KEY,    -- UUIDv7: sorts by creation time
    tenant              TEXT    NOT NULL,
    alias               TEXT    NOT NULL,
    module              TEXT    NOT NULL,       -- digest pinned at dispatch
    status              TEXT    NOT NULL,
    priority            BIGINT  NOT NULL,
    queue               TEXT    NOT NULL,
    context             TEXT,
    payload             TEXT    NOT NULL,
    attempt             BIGINT  NOT NULL DEFAULT 0,
    max_attempts        BIGINT  NOT NULL,
    limits              TEXT    NOT NULL,       -- JSON domain::Limits (its non-default fields)
    run_at              BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    lease_owner         TEXT,
    lease_expires_at    BIGINT,
    -- Fencing: every claim takes the next token; a run's writes present it.
    lease_token         BIGINT  NOT NULL DEFAULT 0,
    result              TEXT,
    error_kind          TEXT,
    error_message       TEXT,
    progress_percent    BIGINT,
    progress_message    TEXT,
    logs                TEXT,                   -- JSON of the attempt's logs
    fuel_used           BIGINT,
    duration_ms         BIGINT,
    idempotency_key     TEXT,
    idempotency_fingerprint TEXT,
    batch_id            TEXT,
    callback            TEXT,                   -- JSON Callback
    callback_state      TEXT,
    callback_attempts   BIGINT  NOT NULL DEFAULT 0,
    callback_last_error TEXT,
    callback_next_at    BIGINT
);

-- The claim's path: each waiting tenant's runnable jobs in claim order
-- (priority, due time, age). Partial, so it holds only the jobs waiting to
-- run however many finished ones the table keeps; the claim also skips along
-- it from one waiting tenant to the next, and backpressure counts each
-- tenant's waiting jobs from it.
CREATE INDEX jobs_runnable ON jobs (tenant, priority DESC, run_at, id)
    WHERE status IN ('queued', 'scheduled', 'failed');
-- What each tenant runs now (counted by every claim against its share and its
-- max_running), and the expired leases the rescuer looks for.
CREATE INDEX jobs_running ON jobs (tenant, lease_expires_at) WHERE status = 'running';
-- One job per (tenant, idempotency key): concurrent inserts with one key,
-- from any node, leave exactly one row (the insert is ON CONFLICT DO NOTHING,
-- then reads the winner).
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Listing a tenant's jobs newest first (ids are UUIDv7).
CREATE INDEX jobs_tenant_created ON jobs (tenant, id);
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
-- "Is every job of this batch finished?" stops at the batch's unfinished jobs.
CREATE INDEX jobs_batch_open ON jobs (batch_id)
    WHERE batch_id IS NOT NULL AND status NOT IN ('succeeded', 'dead', 'cancelled');
CREATE INDEX jobs_callback_due ON jobs (callback_next_at) WHERE callback_state = 'sending';
-- When the next delayed or retrying job is due (the scheduler's wake-up).
CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('scheduled', 'failed');
-- Waiting jobs with no attempt left: the rescuer ends them `dead`. Almost always empty.
CREATE INDEX jobs_out_of_attempts ON jobs (id)
    WHERE status IN ('queued', 'scheduled', 'failed') AND attempt >= max_attempts;
-- Retention finds finished jobs by when they ended without walking the table
-- (SQLite's retention scans; millions of kept jobs here should not be).
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('succeeded', 'dead', 'cancelled');

-- Usage per tenant per UTC day (`day` is YYYY-MM-DD): what an operator bills
-- on, added in the transaction of the write that causes it. Not tied to
-- `tenants`: a deleted tenant's usage stays. The gauges are set only on days
-- they changed (NULL: the last earlier value holds).
CREATE TABLE usage (
    tenant              TEXT    NOT NULL,
    day                 TEXT    NOT NULL,
    runs                BIGINT  NOT NULL DEFAULT 0,
    succeeded           BIGINT  NOT NULL DEFAULT 0,
    failed              BIGINT  NOT NULL DEFAULT 0,
    dead                BIGINT  NOT NULL DEFAULT 0,
    cancelled           BIGINT  NOT NULL DEFAULT 0,
    timed_out           BIGINT  NOT NULL DEFAULT 0,
    fuel_used           BIGINT  NOT NULL DEFAULT 0,
    run_ms              BIGINT  NOT NULL DEFAULT 0,
    callbacks_sent      BIGINT  NOT NULL DEFAULT 0,
    callbacks_delivered BIGINT  NOT NULL DEFAULT 0,
    module_bytes_max    BIGINT,
    module_bytes_end    BIGINT,
    kv_writes           BIGINT  NOT NULL DEFAULT 0,
    kv_bytes_max        BIGINT,
    kv_bytes_end        BIGINT,
    http_requests       BIGINT  NOT NULL DEFAULT 0,
    http_bytes_sent     BIGINT  NOT NULL DEFAULT 0,
    http_bytes_received BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
);
-- The operator's listing: every tenant over a range of days.
CREATE INDEX usage_day ON usage (day);

-- The claims of runs whose completion was fenced off (cancelled, rescued,
-- usage-only reports), so each such run is counted once. Goes with its job.
CREATE TABLE usage_runs (
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    token   BIGINT  NOT NULL,
    PRIMARY KEY (job_id, token)
);

-- Key-value state per tenant and named store. Keys compare as bytes (the
-- "C" collation orders UTF-8 text by its bytes), so the primary key serves
-- listings in byte order.
CREATE TABLE kv (
    tenant      TEXT    NOT NULL,
    store       TEXT    NOT NULL,
    key         TEXT    COLLATE "C" NOT NULL,
    value       BYTEA   NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant, store, key)
);

-- What each store holds (bytes are keys plus values), kept by the triggers
-- below in the transaction of every write.
CREATE TABLE kv_stores (
    tenant      TEXT    NOT NULL,
    store       TEXT    NOT NULL,
    bytes       BIGINT  NOT NULL,
    keys        BIGINT  NOT NULL,
    PRIMARY KEY (tenant, store)
);

CREATE FUNCTION kv_stores_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO kv_stores (tenant, store, bytes, keys)
        VALUES (NEW.tenant, NEW.store, octet_length(NEW.key) + octet_length(NEW.value), 1)
        ON CONFLICT (tenant, store) DO UPDATE
            SET bytes = kv_stores.bytes + excluded.bytes, keys = kv_stores.keys + 1;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE kv_stores SET bytes = bytes + octet_length(NEW.value) - octet_length(OLD.value)
        WHERE tenant = NEW.tenant AND store = NEW.store;
    ELSE
        UPDATE kv_stores SET bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value), keys = keys - 1
        WHERE tenant = OLD.tenant AND store = OLD.store;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER kv_inserted AFTER INSERT ON kv FOR EACH ROW EXECUTE FUNCTION kv_stores_follow();
CREATE TRIGGER kv_updated AFTER UPDATE OF value ON kv FOR EACH ROW EXECUTE FUNCTION kv_stores_follow();
CREATE TRIGGER kv_deleted AFTER DELETE ON kv FOR EACH ROW EXECUTE FUNCTION kv_stores_follow();
