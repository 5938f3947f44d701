-- An applied completion no longer records its claim in usage_runs (one row per
-- run was a fourth row write per job on the hot path): it applies once, so it
-- is counted once with its job row. usage_runs keeps only runs whose
-- completion was fenced off (cancelled, rescued, usage-only reports). A
-- completion written again after a commit whose answer was lost is recognised
-- by its job: the row still holds the claim's token and the run's fuel. For
-- that, a claim now clears `fuel_used` (only a completion sets it); jobs
-- running across this upgrade get the same.
UPDATE jobs SET fuel_used = NULL WHERE status = 'running';
