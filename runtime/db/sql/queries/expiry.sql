-- Named queries of max_wait expiry (jobs that waited too long to start), loaded by
-- runtime/db/queries.py and run only by runtime/db/store.py. {schema} becomes the quoted
-- schema name; everything else is a bound parameter (%(name)s).

-- name: queue_max_waits
SELECT name, max_wait FROM {schema}.queue WHERE max_wait IS NOT NULL ORDER BY name;

-- name: job_expire_waiting
-- Jobs of one queue that have been due for longer than max_wait and are not locked by a claim.
-- They are marked active only for the rest of this transaction, so that fail_jobs (migration
-- 0001 and its replacements), called next with permanent = true, fails them and writes the
-- dead-letter copy exactly as it does for a final failure; nobody else ever sees the mark. The
-- scan walks the queue's range of the job_claim index (start_after is in it), no new index.
WITH due AS (
    SELECT id
    FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active'
      AND start_after < now() - %(max_wait)s::interval
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.job AS j
SET state = 'active'
WHERE j.id = ANY(ARRAY(SELECT id FROM due))
RETURNING j.id, j.retry_count, now() - j.start_after;
