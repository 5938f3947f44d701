-- Unique jobs: the key of the fields a dispatch was made unique by
-- (`domain::unique_key`). A dispatch with a `unique` option finds a matching
-- job through `jobs_unique` inside its write transaction (one writer: no
-- other insert runs between its look and its insert).
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE INDEX jobs_unique ON jobs (tenant, unique_key, created_at) WHERE unique_key IS NOT NULL;
