-- Unique jobs: the key of the fields a dispatch was made unique by
-- (`domain::unique_key`). A dispatch with a `unique` option takes a
-- transaction-scoped advisory lock on its tenant and key, then finds a
-- matching job through `jobs_unique`: racing dispatches through any number
-- of nodes wait on the lock, and the second sees the first's job.
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE INDEX jobs_unique ON jobs (tenant, unique_key, created_at) WHERE unique_key IS NOT NULL;
