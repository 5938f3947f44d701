-- When every job of a batch had ended (NULL: not yet), set once by the
-- transaction that ended its last job, whether or not the batch has a
-- callback: that transaction reports the batch done (the `batch.done` event).
ALTER TABLE batches ADD COLUMN done_at INTEGER;
-- Batches finished before this column existed: done already.
UPDATE batches SET done_at = created_at
WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id
                  AND jobs.status NOT IN ('succeeded', 'dead', 'cancelled'));
