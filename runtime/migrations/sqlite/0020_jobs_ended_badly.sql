-- Lists of a tenant's failed (retrying), dead or cancelled jobs, newest first
-- (the dashboard's and `jobs list --status dead`'s view, and what a bulk
-- retry walks) without scanning every succeeded job. Partial: the success
-- path (queued -> running -> succeeded) never touches it.
CREATE INDEX jobs_tenant_ended_badly ON jobs (tenant, status, id)
    WHERE status IN ('failed', 'dead', 'cancelled');
