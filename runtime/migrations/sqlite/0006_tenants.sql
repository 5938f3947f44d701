-- Tenants and their tokens. Every other table already carries a `tenant`
-- column; this one says which tenants exist, with their weight (fair share),
-- quotas (JSON domain::TenantQuotas, NULL = the server's settings) and extra
-- callback ranges (JSON array, NULL = none). `default` always exists: the
-- single-token and no-token modes act as it.
CREATE TABLE tenants (
    id              TEXT    PRIMARY KEY,
    weight          INTEGER NOT NULL DEFAULT 1,
    quotas          TEXT,
    callback_allow  TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Unix ms from julianday (unixepoch('subsec') needs SQLite 3.42; tools such
-- as Python's sqlite3 module often link an older one).
INSERT INTO tenants (id, weight, created_at, updated_at)
    VALUES ('default', 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- A token is kept only as the blake3 hash of its secret (hex); the secret is
-- shown once, when it is made. Revoking deletes the row.
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (id),
    scope       TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX tokens_tenant ON tokens (tenant, created_at);
