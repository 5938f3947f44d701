-- The W3C traceparent of the dispatch that made a batch (NULL: untraced):
-- its callback continues the trace, as a job's does (`jobs.trace`).
ALTER TABLE batches ADD COLUMN trace TEXT;
