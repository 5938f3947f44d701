-- Notices to every node (LISTEN/NOTIFY), sent by the database when the change
-- commits, whichever node or statement made it:
--   wasmq_jobs    jobs became runnable (inserted, retried, requeued): idle
--                 nodes claim at once instead of at their next poll;
--   wasmq_cancel  a running job was cancelled (payload: its id): the node
--                 running it stops the run at once, not at its next lease renewal.
-- Notifications with the same payload in one transaction are sent once.

CREATE FUNCTION wasmq_notify_runnable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE status IN ('queued', 'scheduled', 'failed')) THEN
        PERFORM pg_notify('wasmq_jobs', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_inserted_runnable AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION wasmq_notify_runnable();

CREATE TRIGGER jobs_updated_runnable AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION wasmq_notify_runnable();

CREATE FUNCTION wasmq_notify_cancelled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wasmq_cancel', NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_cancelled_running AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status = 'cancelled')
    EXECUTE FUNCTION wasmq_notify_cancelled();
