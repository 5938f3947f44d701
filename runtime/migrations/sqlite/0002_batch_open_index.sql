-- Unfinished jobs of a batch: lets "is every job of this batch finished?" (asked
-- after each completion transaction that touches the batch) stop at the index
-- instead of walking over the batch's finished jobs, which made large batches
-- with a callback cost quadratic time.
CREATE INDEX jobs_batch_open ON jobs (batch_id)
    WHERE batch_id IS NOT NULL AND status NOT IN ('succeeded', 'dead', 'cancelled');
