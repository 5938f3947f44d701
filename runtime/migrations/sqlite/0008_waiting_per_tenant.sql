-- Backpressure counts each tenant's waiting jobs (`Store::job_waiting`,
-- GROUP BY tenant): this partial index makes that an index-only scan, as the
-- server-wide count over `jobs_runnable` was.
CREATE INDEX jobs_waiting_tenant ON jobs (tenant) WHERE status IN ('queued', 'scheduled', 'failed');
