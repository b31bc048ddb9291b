-- compatible-from: 1
-- Additive: code of version 1 keeps running against it (new nullable columns, new partial
-- indexes, and fail_jobs with the same signature and result).
-- Operations: every failed attempt's error kept with its job (bounded), the link from a
-- dead-letter copy back to its original, and the indexes the job list and redrive read.
-- {schema} is replaced by the quoted schema name and {channel} by the notification channel
-- literal; nothing else is ever substituted.

-- The error of each failed attempt, oldest first, at most the last 20 (see fail_jobs).
ALTER TABLE {schema}.job ADD COLUMN errors jsonb;
-- On a dead-letter copy: the id of the job it is a copy of (its output is overwritten when
-- the copy itself runs, so the link lives in a column).
ALTER TABLE {schema}.job ADD COLUMN dead_letter_of uuid;

UPDATE {schema}.job AS c SET dead_letter_of = o.id
FROM {schema}.job AS o
WHERE o.dead_letter_id = c.id;

-- Failed and cancelled jobs of a queue, newest first (the job list, redrive, purge). Rows
-- enter it only when a job fails for good or is cancelled, never on the hot path.
CREATE INDEX job_failed ON {schema}.job (queue, state, completed_on, id)
    WHERE state > 'completed';
-- Jobs waiting for a retry, by due time: a few retries stay cheap to list beside a backlog of
-- new jobs (job_claim holds both). Rows enter it only when an attempt fails.
CREATE INDEX job_retry ON {schema}.job (queue, start_after, id) WHERE state = 'retry';

-- fail_jobs as in 0001, plus: the attempt's error is appended to the job's error history
-- (attempt number, time, type, message, traceback summary, worker, dead-letter copy; each part
-- cut to its bound, the oldest entry dropped past 20), the dead-letter copy points back to its
-- original (dead_letter_of), and copies get time-ordered ids (UUID version 7 layout) like
-- the jobs the runtime makes. Same signature and result, so callers are unchanged.
CREATE OR REPLACE FUNCTION {schema}.fail_jobs(
    p_ids uuid[], p_fences integer[], p_errors jsonb[], p_permanent boolean[]
) RETURNS TABLE (job_id uuid, new_state text, dead_letter_id uuid)
LANGUAGE sql VOLATILE AS $fn$
WITH f AS (
    SELECT f.*,
           encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
               substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                         FROM 3)
               FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid AS copy_id
    FROM unnest(p_ids, p_fences, p_errors, p_permanent) AS f(id, fence, error, permanent)
), upd AS (
    UPDATE {schema}.job AS j
    SET state = CASE WHEN f.permanent OR j.retry_count >= q.retry_limit
                     THEN 'failed' ELSE 'retry' END::{schema}.job_state,
        retry_count = CASE WHEN f.permanent OR j.retry_count >= q.retry_limit
                           THEN j.retry_count ELSE j.retry_count + 1 END,
        start_after = CASE WHEN f.permanent OR j.retry_count >= q.retry_limit
            THEN j.start_after
            ELSE now() + make_interval(secs =>
                (CASE WHEN q.retry_jitter THEN 0.5 + random() * 0.5 ELSE 1.0 END)
                * least(extract(epoch FROM q.retry_max_delay)::float8,
                        extract(epoch FROM q.retry_delay)::float8
                        * CASE WHEN q.retry_backoff = 'exponential'
                               THEN power(2.0::float8, least(j.retry_count, 60))
                               ELSE 1.0 END))
            END,
        completed_on = CASE WHEN f.permanent OR j.retry_count >= q.retry_limit
                            THEN now() END,
        lease_until = NULL,
        output = f.error,
        dead_letter_id = CASE WHEN (f.permanent OR j.retry_count >= q.retry_limit)
                                   AND q.dead_letter IS NOT NULL
                              THEN f.copy_id END,
        errors = CASE WHEN jsonb_array_length(coalesce(j.errors, '[]')) >= 20
                      THEN (j.errors - 0) ELSE coalesce(j.errors, '[]') END
            || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                'attempt', j.retry_count + 1,
                'at', now(),
                'type', left(coalesce(f.error -> 'error' ->> 'type', 'Error'), 200),
                'message', left(coalesce(f.error -> 'error' ->> 'message', ''), 2000),
                'traceback', right(f.error -> 'error' ->> 'traceback', 4000),
                'worker', CASE WHEN jsonb_typeof(f.error -> 'error' -> 'worker') = 'object'
                               THEN jsonb_build_object(
                                   'host', left(f.error -> 'error' -> 'worker' ->> 'host', 255),
                                   'pid', f.error -> 'error' -> 'worker' -> 'pid')
                          END,
                'dead_letter_id', CASE WHEN (f.permanent OR j.retry_count >= q.retry_limit)
                                            AND q.dead_letter IS NOT NULL
                                       THEN f.copy_id END)))
    FROM f, {schema}.queue AS q
    -- By job_pkey whatever the statistics: see 0001 (the state is compared as text).
    WHERE j.id = f.id
      AND (f.fence IS NULL OR j.fence = f.fence)
      AND j.state::text = 'active'
      AND q.name = j.queue
    RETURNING j.id, j.state, j.dead_letter_id, q.dead_letter, j.queue, j.data, j.priority,
              j.output, j.retry_count
), dlq AS (
    INSERT INTO {schema}.job (id, queue, data, priority, output, dead_letter_of)
    SELECT u.dead_letter_id, u.dead_letter, u.data, u.priority,
           jsonb_build_object('error', u.output -> 'error', 'source_id', u.id,
                              'source_queue', u.queue, 'attempts', u.retry_count + 1),
           u.id
    FROM upd AS u
    WHERE u.dead_letter_id IS NOT NULL
    RETURNING 1
)
SELECT u.id, u.state::text, u.dead_letter_id
FROM upd AS u
LEFT JOIN LATERAL (
    SELECT pg_notify({channel}, u.dead_letter) WHERE u.dead_letter_id IS NOT NULL
) AS n ON true
$fn$;
