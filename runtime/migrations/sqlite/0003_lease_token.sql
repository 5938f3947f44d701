-- Fencing: every claim of a job takes the next lease_token (a per-job counter
-- that only grows; `attempt` cannot serve, since a retry resets it and a
-- release lowers it). Heartbeat, progress and completion present the token of
-- the claim they run under and change the row only while it is current, so a
-- run that lost its claim (rescued after its node stalled, or cancelled) never
-- writes over the run that holds the job now.
ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;

-- Waiting jobs with no attempt left (left behind by rescues before claims
-- checked the budget): the rescuer ends them `dead`. Almost always empty.
CREATE INDEX jobs_out_of_attempts ON jobs (id)
    WHERE status IN ('queued', 'scheduled', 'failed') AND attempt >= max_attempts;
