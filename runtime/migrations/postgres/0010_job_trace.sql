-- The W3C traceparent a job's spans and callbacks continue (NULL: untraced):
-- the dispatch request's span when traces are exported, else the caller's
-- own traceparent, passed on to the job's callbacks.
ALTER TABLE jobs ADD COLUMN trace TEXT;
