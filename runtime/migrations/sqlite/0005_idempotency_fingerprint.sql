-- A reused idempotency key must come with the same request: the digest of the
-- request that first used the key (alias, payload and options, canonical JSON)
-- is kept beside it, and a later request with the key but another digest is
-- refused (409 idempotency_conflict). Rows from before this column have NULL
-- and match any request, as they did.
ALTER TABLE jobs ADD COLUMN idempotency_fingerprint TEXT;
