-- Fair scheduling across tenants (issue 13): the claim takes each tenant's
-- share in its own priority order, so the runnable index leads with the
-- tenant (the claim also skips along it from one waiting tenant to the next);
-- ordered by priority alone it served no query any more.
DROP INDEX jobs_runnable;
CREATE INDEX jobs_runnable ON jobs (tenant, priority DESC, run_at, id)
    WHERE status IN ('queued', 'scheduled', 'failed');
-- What each tenant runs now (counted by every claim against its share and
-- its max_running), and the expired leases the rescuer looks for: one index
-- over the running rows serves both, instead of one on the lease alone.
DROP INDEX jobs_running_lease;
CREATE INDEX jobs_running ON jobs (tenant, lease_expires_at) WHERE status = 'running';
-- Backpressure's per-tenant count of waiting jobs (migration 0008) is now an
-- index-only scan of jobs_runnable itself (same rows, tenant first): its own
-- index would only cost every insert and status change a write.
DROP INDEX jobs_waiting_tenant;
