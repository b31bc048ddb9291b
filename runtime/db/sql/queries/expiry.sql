-- Named queries of max_wait expiry (jobs that waited too long to start) and of the queues
-- retention and the archive purge have work in (maintenance), loaded by runtime/db/queries.py and run only by runtime/db/store.py. {schema} becomes the quoted
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

-- name: queue_retention_due
-- The queues that have finished jobs past their retention, and the archive duration of those
-- that move them to the archive (NULL: deleted): one probe of job_finished (queue,
-- completed_on) per queue, its oldest finished job, so that maintenance runs retention batches
-- only for these instead of a transaction per queue per round.
SELECT q.name, q.archive
FROM {schema}.queue AS q
WHERE EXISTS (
    SELECT 1 FROM {schema}.job AS j
    WHERE j.queue = q.name AND j.state > 'active' AND j.completed_on < now() - q.retention
)
ORDER BY q.name;

-- name: queue_archive_purge_due
-- The queues whose archive holds jobs older than its archive duration: one probe of
-- job_archive_expiry (queue, archived_on) per archiving queue.
SELECT q.name, q.archive
FROM {schema}.queue AS q
WHERE q.archive IS NOT NULL AND EXISTS (
    SELECT 1 FROM {schema}.job_archive AS a
    WHERE a.queue = q.name AND a.archived_on < now() - q.archive
)
ORDER BY q.name;

-- name: autovacuum_state
-- Whether autovacuum vacuums the job table: the server's switch (and track_counts, without
-- which it never starts a pass), the table's own autovacuum_enabled, and the naptime. Every
-- claim, completion and deletion leaves a dead version behind; without vacuum the table and
-- its indexes grow for good (queues status warns).
SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool,
       coalesce((SELECT o.option_value::bool FROM pg_options_to_table(c.reloptions) AS o
                 WHERE o.option_name = 'autovacuum_enabled'), true),
       current_setting('autovacuum_naptime')
FROM pg_class AS c
WHERE c.relname = 'job' AND c.relkind IN ('r', 'p')
  AND c.relnamespace = (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = %(schema)s);
