-- Named queries of operations: the job list, dead-letter redrive, retry of a dead-lettered
-- job, purge, and what metrics read at scrape time. Run only by runtime/db/store.py. Tokens as
-- in jobs.sql ({schema}, {channel}); everything else is a bound parameter.
--
-- The job list reads one state at a time through the index that holds that state, in that
-- index's order, and pages by keyset (the last row's sort key, never OFFSET): the cost of a
-- page does not grow with the table. Without a queue, each queue is read through its own
-- index range (LATERAL over the queue table) and the pages are merged. A NULL key means the
-- first page; these statements run unprepared, so the planner sees the NULLs and folds them.

-- name: ops_no_jit
-- For the read-only statements below, in their own transaction: their cost estimates grow
-- with the number of queues (and the queue table is rarely analyzed), which can cross
-- jit_above_cost; compiling would then take longer than the index scans themselves.
SET LOCAL jit = off;

-- name: job_list_created
-- Queued jobs in claim order (priority, then longest waiting), through job_claim. A key
-- (priority, start_after, id) resumes after that row: the rest of its priority, then lower
-- priorities, each an index range.
SELECT l.*
FROM {schema}.queue AS q
CROSS JOIN LATERAL (
    (SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
            j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
            NULL::text AS error_type, NULL::text AS error_message, j.dead_letter_id,
            j.dead_letter_of
     FROM {schema}.job AS j
     WHERE j.queue = q.name AND j.state < 'active' AND j.state = 'created'
       AND j.priority = %(k_priority)s::int
       AND (j.start_after, j.id) > (%(k_at)s::timestamptz, %(k_id)s::uuid)
       AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
     ORDER BY j.priority DESC, j.start_after, j.id
     LIMIT %(limit)s)
    UNION ALL
    (SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
            j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
            NULL::text, NULL::text, j.dead_letter_id, j.dead_letter_of
     FROM {schema}.job AS j
     WHERE j.queue = q.name AND j.state < 'active' AND j.state = 'created'
       AND j.priority < coalesce(%(k_priority)s::bigint, 2147483648)
       AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
     ORDER BY j.priority DESC, j.start_after, j.id
     LIMIT %(limit)s)
    LIMIT %(limit)s
) AS l
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY l.priority DESC, l.start_after, l.id
LIMIT %(limit)s;

-- name: job_list_retry
-- Jobs waiting for their next attempt, soonest first, through job_retry.
SELECT l.*
FROM {schema}.queue AS q
CROSS JOIN LATERAL (
    SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
           j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
           left(j.output -> 'error' ->> 'type', 200) AS error_type,
           left(j.output -> 'error' ->> 'message', 500) AS error_message,
           j.dead_letter_id, j.dead_letter_of
    FROM {schema}.job AS j
    WHERE j.queue = q.name AND j.state = 'retry'
      AND (%(k_id)s::uuid IS NULL
           OR (j.start_after, j.id) > (%(k_at)s::timestamptz, %(k_id)s::uuid))
      AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
    ORDER BY j.start_after, j.id
    LIMIT %(limit)s
) AS l
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY l.start_after, l.id
LIMIT %(limit)s;

-- name: job_list_active
-- Running jobs, longest running first, through job_active (there are as many as the workers'
-- slots, so the queue and event are checked on the rows).
SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
       j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
       NULL::text AS error_type, NULL::text AS error_message, j.dead_letter_id,
       j.dead_letter_of
FROM {schema}.job AS j
WHERE j.state = 'active'
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
  AND (%(k_id)s::uuid IS NULL
       OR (j.started_on, j.id) > (%(k_at)s::timestamptz, %(k_id)s::uuid))
  AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
ORDER BY j.started_on, j.id
LIMIT %(limit)s;

-- name: job_list_completed
-- Completed jobs, most recent first, through job_finished.
SELECT l.*
FROM {schema}.queue AS q
CROSS JOIN LATERAL (
    SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
           j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
           NULL::text AS error_type, NULL::text AS error_message, j.dead_letter_id,
           j.dead_letter_of
    FROM {schema}.job AS j
    WHERE j.queue = q.name AND j.state > 'active' AND j.state = 'completed'
      AND (%(k_at)s::timestamptz IS NULL OR j.completed_on <= %(k_at)s::timestamptz)
      AND (%(k_id)s::uuid IS NULL
           OR (j.completed_on, j.id) < (%(k_at)s::timestamptz, %(k_id)s::uuid))
      AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
    ORDER BY j.completed_on DESC, j.id DESC
    LIMIT %(limit)s
) AS l
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY l.completed_on DESC, l.id DESC
LIMIT %(limit)s;

-- name: job_list_failed
-- Failed or cancelled jobs (the state parameter), most recent first, through job_failed.
SELECT l.*
FROM {schema}.queue AS q
CROSS JOIN LATERAL (
    SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
           j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
           left(j.output -> 'error' ->> 'type', 200) AS error_type,
           left(j.output -> 'error' ->> 'message', 500) AS error_message,
           j.dead_letter_id, j.dead_letter_of
    FROM {schema}.job AS j
    WHERE j.queue = q.name AND j.state > 'completed'
      AND j.state = %(state)s::{schema}.job_state
      AND (%(k_id)s::uuid IS NULL
           OR (j.completed_on, j.id) < (%(k_at)s::timestamptz, %(k_id)s::uuid))
      AND (%(event)s::text IS NULL OR j.data ->> 'event' = %(event)s::text)
    ORDER BY j.completed_on DESC, j.id DESC
    LIMIT %(limit)s
) AS l
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY l.completed_on DESC, l.id DESC
LIMIT %(limit)s;

-- name: dlq_pick
-- Dead-letter copies to redrive, locked (SKIP LOCKED: a copy a worker is claiming right now is
-- left to it): the waiting ones in claim order, then the ones the dead-letter queue's own
-- handler failed, oldest first. Jobs sent to the queue directly (no dead_letter_of) are not
-- copies and are never picked.
WITH waiting AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND dead_letter_of IS NOT NULL
      AND NOT id = ANY(%(skip)s::uuid[])
    ORDER BY priority DESC, start_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), failed AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state > 'completed' AND state = 'failed'
      AND dead_letter_of IS NOT NULL AND NOT id = ANY(%(skip)s::uuid[])
    ORDER BY completed_on, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
SELECT id FROM waiting
UNION ALL
SELECT id FROM failed;

-- name: dlq_peek
-- dlq_pick without locking, for a dry run (nothing to skip).
(SELECT id FROM {schema}.job
 WHERE queue = %(queue)s AND state < 'active' AND dead_letter_of IS NOT NULL
 ORDER BY priority DESC, start_after, id
 LIMIT %(limit)s)
UNION ALL
(SELECT id FROM {schema}.job
 WHERE queue = %(queue)s AND state > 'completed' AND state = 'failed'
   AND dead_letter_of IS NOT NULL
 ORDER BY completed_on, id
 LIMIT %(limit)s);

-- name: dlq_classify
-- What redriving these copies would do: each copy with its original (absent once retention
-- deleted it) and whether the original is still the failed job this copy was made from.
SELECT c.id, c.dead_letter_of, o.queue, o.state::text,
       coalesce(o.dead_letter_id = c.id AND o.state::text = 'failed', false)
FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS i(id, n)
JOIN {schema}.job AS c ON c.id = i.id
LEFT JOIN {schema}.job AS o ON o.id = c.dead_letter_of
ORDER BY i.n;

-- name: dlq_redrive
-- Redrive locked copies in one statement: each original that is still the failed job its copy
-- was made from goes back to its queue, due now (once: only the copy it links to can requeue
-- it); every copy whose original exists is settled (completed, with a note), so a worker on
-- the dead-letter queue never runs it. Copies of deleted originals are left as they are.
WITH c AS (
    SELECT c.id AS copy_id, c.dead_letter_of AS original_id, o.queue AS original_queue,
           o.state::text AS original_state, i.n
    FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS i(id, n)
    JOIN {schema}.job AS c ON c.id = i.id
    LEFT JOIN {schema}.job AS o ON o.id = c.dead_letter_of
), requeued AS (
    UPDATE {schema}.job AS o
    SET state = 'retry', completed_on = NULL, started_on = NULL, lease_until = NULL,
        start_after = now()
    FROM c
    WHERE o.id = c.original_id AND o.dead_letter_id = c.copy_id
      AND o.state::text = 'failed'  -- by job_pkey (see complete_many)
    RETURNING o.id, o.queue, c.copy_id
), settled AS (
    UPDATE {schema}.job AS x
    SET state = 'completed', completed_on = now(), lease_until = NULL,
        output = jsonb_build_object(
            'redriven', r.id IS NOT NULL,
            'source_id', c.original_id,
            'note', CASE WHEN r.id IS NOT NULL
                         THEN 'redriven: the original job was queued again'
                         ELSE 'settled by redrive: the original job was '
                              || c.original_state || ', so it was not queued again' END)
    FROM c
    LEFT JOIN requeued AS r ON r.copy_id = c.copy_id
    WHERE x.id = c.copy_id AND c.original_state IS NOT NULL AND x.state::text <> 'active'
    RETURNING x.id
), woken AS (
    SELECT count(pg_notify({channel}, d.queue)) AS n
    FROM (SELECT DISTINCT queue FROM requeued) AS d
)
SELECT c.copy_id, c.original_id, c.original_queue, c.original_state, r.id IS NOT NULL,
       s.id IS NOT NULL
FROM c
LEFT JOIN requeued AS r ON r.copy_id = c.copy_id
LEFT JOIN settled AS s ON s.id = c.copy_id
CROSS JOIN woken
ORDER BY c.n;

-- name: job_lock_dead_letter_copy
-- The dead-letter copy of a failed job, locked before the job is retried (waits for a claim
-- of the copy in flight, so its state is final for the transaction).
SELECT c.id, c.state::text, c.queue
FROM {schema}.job AS o
JOIN {schema}.job AS c ON c.id = o.dead_letter_id
WHERE o.id = %(id)s AND o.state::text = 'failed'
FOR UPDATE OF c;

-- name: job_retry_settling
-- Retry a failed job now and settle its dead-letter copy (if it has not run) in the same
-- statement: the job runs again once, not also as the copy.
WITH r AS (
    UPDATE {schema}.job
    SET state = 'retry', completed_on = NULL, started_on = NULL, start_after = now()
    WHERE id = %(id)s AND state::text = 'failed'  -- by job_pkey (see complete_many)
    RETURNING id, queue, dead_letter_id
), s AS (
    UPDATE {schema}.job AS c
    SET state = 'completed', completed_on = now(), lease_until = NULL,
        output = jsonb_build_object('redriven', true, 'source_id', r.id,
                                    'note', 'settled: the original job was retried')
    FROM r
    WHERE c.id = r.dead_letter_id AND c.state::text IN ('created', 'retry', 'failed')
    RETURNING c.id
)
SELECT r.queue, (SELECT count(*) FROM s)::int
FROM r CROSS JOIN LATERAL (SELECT pg_notify({channel}, r.queue)) AS n;

-- name: job_purge_count_waiting
SELECT count(*)::bigint FROM {schema}.job
WHERE queue = %(queue)s AND state < 'active' AND state = %(state)s::{schema}.job_state
  AND (%(older_than)s::interval IS NULL OR created_on < now() - %(older_than)s::interval);

-- name: job_purge_waiting
-- Delete one batch of queued jobs of a queue (by creation time); locked rows are skipped.
WITH doomed AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND state = %(state)s::{schema}.job_state
      AND (%(older_than)s::interval IS NULL
           OR created_on < now() - %(older_than)s::interval)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.job WHERE id = ANY(ARRAY(SELECT id FROM doomed));

-- name: job_purge_count_finished
SELECT count(*)::bigint FROM {schema}.job
WHERE queue = %(queue)s AND state > 'active' AND state = %(state)s::{schema}.job_state
  AND (%(older_than)s::interval IS NULL OR completed_on < now() - %(older_than)s::interval);

-- name: job_purge_finished
-- Delete one batch of finished jobs of a queue, oldest first; locked rows are skipped.
WITH doomed AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state > 'active' AND state = %(state)s::{schema}.job_state
      AND (%(older_than)s::interval IS NULL
           OR completed_on < now() - %(older_than)s::interval)
    ORDER BY completed_on
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.job WHERE id = ANY(ARRAY(SELECT id FROM doomed));

-- name: queue_depths
-- Per queue: queued jobs, those due now, the age of the oldest due one (seconds), and the
-- running ones. One pass over the queued jobs (an index-only scan of job_claim, or a
-- sequential scan when most of the table is queued) and one over job_active, whatever the
-- number of queues.
SELECT q.name, coalesce(w.waiting, 0)::bigint, coalesce(w.due, 0)::bigint, w.oldest,
       coalesce(a.active, 0)::bigint
FROM {schema}.queue AS q
LEFT JOIN (
    SELECT queue, count(*) AS waiting, count(*) FILTER (WHERE start_after <= now()) AS due,
           extract(epoch FROM now() - min(start_after)
                                      FILTER (WHERE start_after <= now()))::float8 AS oldest
    FROM {schema}.job
    WHERE state < 'active'
    GROUP BY queue
) AS w ON w.queue = q.name
LEFT JOIN (
    SELECT queue, count(*) AS active FROM {schema}.job WHERE state = 'active' GROUP BY queue
) AS a ON a.queue = q.name
ORDER BY q.name;

-- name: job_labels
-- Queue, event and whether a dead-letter copy was made, of jobs by id (to label the jobs a
-- maintenance round just rescued, in its transaction).
SELECT id, queue, data ->> 'event', state::text = 'failed' AND dead_letter_id IS NOT NULL
FROM {schema}.job
WHERE id = ANY(%(ids)s::uuid[]);
