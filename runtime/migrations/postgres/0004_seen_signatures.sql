-- The tags of signed requests seen within their window, so that a request
-- replayed to another node sharing the database is refused too (each node
-- also remembers its own in memory). Rows past their window are deleted by
-- the nodes' pruners.
CREATE TABLE seen_signatures (
    tag TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX seen_signatures_expiry ON seen_signatures (expires_at);
