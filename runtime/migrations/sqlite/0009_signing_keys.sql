-- Signing keys: the shared secrets of signed requests (`X-Wasmq-Key` and
-- `X-Wasmq-Signature`). Verifying an HMAC needs the secret itself, so it is
-- kept sealed with the server's secret box (XChaCha20-Poly1305, the key file
-- beside the database), bound to the key's id; never in clear. Deleting a
-- tenant deletes its keys.
CREATE TABLE signing_keys (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope       TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant, created_at);
