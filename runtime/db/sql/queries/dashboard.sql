-- Named queries of the dashboard: per-queue counts by state, their estimates from statistics,
-- and the last hour's activity. Run only by runtime/db/store.py. Tokens as in jobs.sql
-- ({schema}, {channel}); everything else is a bound parameter.
--
-- Every count here is bounded: it reads at most cap index entries of one queue and state
-- (a partial index holds each state), so a page costs the same at any table size. A count that
-- reaches the cap is replaced by an estimate (queue_state_estimates) by the caller.

-- name: dashboard_no_jit
-- Run first, in the same transaction, by the reads below: their cost estimates grow with the
-- number of queues and can cross jit_above_cost on a big table, and compiling would take
-- longer than the bounded index scans themselves.
SET LOCAL jit = off;

-- name: queue_counts_capped
-- Per queue: its policy columns the dashboard shows, and bounded counts of its queued jobs
-- (job_claim), retries (job_retry), finished jobs (job_finished), failed and cancelled jobs
-- (job_failed), plus the start time of its oldest queued job. The state is compared twice
-- where an index's predicate must be implied (`state > 'completed' AND state = 'failed'`):
-- the planner proves a partial index's predicate only from the same operator. The oldest
-- queued job is found without reading the backlog: one probe of job_claim per distinct
-- priority (a loose index scan), at most 1000 priorities. Each count is ordered as its index
-- is, so that a sequential scan (which a LIMIT can make look cheap on a big table where most
-- rows match) is never the plan.
SELECT q.name, q.description, q.dead_letter, q.paused,
       (SELECT count(*) FROM (SELECT 1 FROM {schema}.job AS j
                              WHERE j.queue = q.name AND j.state < 'active'
                              ORDER BY j.priority DESC, j.start_after
                              LIMIT %(cap)s) AS x)::bigint AS waiting,
       (SELECT count(*) FROM (SELECT 1 FROM {schema}.job AS j
                              WHERE j.queue = q.name AND j.state = 'retry'
                              ORDER BY j.start_after
                              LIMIT %(cap)s) AS x)::bigint AS retry,
       (SELECT count(*) FROM (SELECT 1 FROM {schema}.job AS j
                              WHERE j.queue = q.name AND j.state > 'active'
                              ORDER BY j.completed_on
                              LIMIT %(cap)s) AS x)::bigint AS finished,
       (SELECT count(*) FROM (SELECT 1 FROM {schema}.job AS j
                              WHERE j.queue = q.name AND j.state > 'completed'
                                AND j.state = 'failed'
                              ORDER BY j.completed_on
                              LIMIT %(cap)s) AS x)::bigint AS failed,
       (SELECT count(*) FROM (SELECT 1 FROM {schema}.job AS j
                              WHERE j.queue = q.name AND j.state > 'completed'
                                AND j.state = 'cancelled'
                              ORDER BY j.completed_on
                              LIMIT %(cap)s) AS x)::bigint AS cancelled,
       o.oldest
FROM {schema}.queue AS q
LEFT JOIN LATERAL (
    WITH RECURSIVE p(priority, n) AS (
        (SELECT j.priority, 1 FROM {schema}.job AS j
         WHERE j.queue = q.name AND j.state < 'active'
         ORDER BY j.priority DESC LIMIT 1)
        UNION ALL
        SELECT (SELECT j.priority FROM {schema}.job AS j
                WHERE j.queue = q.name AND j.state < 'active' AND j.priority < p.priority
                ORDER BY j.priority DESC LIMIT 1), p.n + 1
        FROM p WHERE p.priority IS NOT NULL AND p.n < 1000
    )
    SELECT min((SELECT j.start_after FROM {schema}.job AS j
                WHERE j.queue = q.name AND j.state < 'active' AND j.priority = p.priority
                ORDER BY j.start_after LIMIT 1)) AS oldest
    FROM p WHERE p.priority IS NOT NULL
) AS o ON true
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
ORDER BY q.name;

-- name: job_active_by_queue
-- Running jobs per queue, through job_active: at most cap rows are read (there are as
-- many running jobs as the workers' slots).
SELECT a.queue, count(*)::bigint
FROM (SELECT j.queue FROM {schema}.job AS j WHERE j.state = 'active' LIMIT %(cap)s) AS a
GROUP BY a.queue;

-- name: queue_state_estimates
-- Estimated jobs per (queue, state) from the statistics ANALYZE keeps on that pair (the
-- statistics object job_queue_state, migration 0007): each common pair's share of the sampled
-- rows times the table's estimated row count. Empty before the first ANALYZE, and for a pair
-- too rare to be among the common ones. The statistics list their columns in table order:
-- queue, then state.
SELECT s.most_common_vals[i][1] AS queue, s.most_common_vals[i][2] AS state,
       (s.most_common_freqs[i] * greatest(c.reltuples, 0))::bigint AS estimate
FROM pg_catalog.pg_stats_ext AS s
CROSS JOIN LATERAL generate_subscripts(s.most_common_freqs, 1) AS i
JOIN pg_catalog.pg_class AS c ON c.oid = %(table)s::regclass
WHERE s.statistics_schemaname = %(schema)s AND s.statistics_name = 'job_queue_state'
  AND NOT s.inherited;

-- name: job_activity_minutes
-- The last hour of each queue, by minute (the database's clock, minutes counted from since):
-- the minutes maintenance has rolled up (job_minute, before the mark of job_minute_mark) as
-- they are kept, and the rest from the jobs that finished or started since the mark (or since
-- since, before any roll-up), in one pass: kind 'done' rows count the jobs completed and those
-- failed or cancelled in the minute they finished; kind 'left' rows give the earliest due time
-- (start_after) among the jobs that stopped waiting in that minute (they started, or were
-- cancelled or failed while queued); a 'seen' row per queue counts the finished jobs read from
-- the job table, so that the caller knows when it hit the cap. Finished jobs are read newest
-- first through job_finished, at most cap per queue, and running ones through job_active: the
-- cost grows with the jobs finished since the mark, not with the table. date_bin, unlike
-- date_trunc, does no time zone arithmetic per row.
WITH mark AS (
    SELECT greatest(%(since)s::timestamptz,
                    (SELECT m.upto FROM {schema}.job_minute_mark AS m)) AS upto
), recent AS (
    SELECT r.queue, r.ok, r.done_at, r.left_at, r.start_after
    FROM {schema}.queue AS q
    CROSS JOIN mark
    CROSS JOIN LATERAL (
        SELECT j.queue, j.state = 'completed' AS ok,
               date_bin('1 minute', j.completed_on, %(since)s) AS done_at,
               date_bin('1 minute', coalesce(j.started_on, j.completed_on), %(since)s) AS left_at,
               j.start_after
        FROM {schema}.job AS j
        WHERE j.queue = q.name AND j.state > 'active' AND j.completed_on >= mark.upto
        ORDER BY j.completed_on DESC
        LIMIT %(cap)s
    ) AS r
    WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
    UNION ALL
    SELECT j.queue, NULL, NULL, date_bin('1 minute', j.started_on, %(since)s), j.start_after
    FROM {schema}.job AS j
    WHERE j.state = 'active' AND j.started_on >= %(since)s
      AND (%(queue)s::text IS NULL OR j.queue = %(queue)s::text)
)
SELECT queue,
       CASE GROUPING(done_at, left_at) WHEN 1 THEN 'done' WHEN 2 THEN 'left' ELSE 'seen' END,
       CASE GROUPING(done_at, left_at) WHEN 1 THEN done_at WHEN 2 THEN left_at END,
       count(*) FILTER (WHERE ok)::bigint,
       count(*) FILTER (WHERE NOT ok)::bigint,
       CASE GROUPING(done_at, left_at) WHEN 2 THEN min(start_after) END
FROM recent
GROUP BY GROUPING SETS ((queue, done_at), (queue, left_at), (queue))
UNION ALL
SELECT k.queue, 'done', k.minute, k.completed, k.failed, NULL
FROM {schema}.job_minute AS k
WHERE k.minute >= %(since)s AND (%(queue)s::text IS NULL OR k.queue = %(queue)s::text)
UNION ALL
SELECT k.queue, 'left', k.minute, NULL, NULL, k.earliest_left
FROM {schema}.job_minute AS k
WHERE k.minute >= %(since)s AND k.earliest_left IS NOT NULL
  AND (%(queue)s::text IS NULL OR k.queue = %(queue)s::text);

-- name: job_minute_rollup
-- Run by maintenance under its lock: adds to job_minute the figures of the jobs that finished
-- from the mark (at most an hour back) to the start of the minute that was current 30 seconds
-- ago (a completion committed a little after its timestamp is still counted), and moves the
-- mark there; rows older than two hours are dropped. Finished jobs are read through
-- job_finished, per queue. A job's 'left' figure goes to the minute it stopped waiting, which
-- can be before the mark (it started earlier and finished since): the earliest due time is
-- merged with least(). Each queue's range is ordered as job_finished is, so that the planner
-- keeps it an index range (not a join of the whole table). Returns the rows written and
-- pruned, and the new mark (NULL when no minute had ended).
WITH bounds AS (
    SELECT greatest(
               (SELECT m.upto FROM {schema}.job_minute_mark AS m),
               date_bin('1 minute', now() - interval '1 hour', timestamptz '2000-01-01')
           ) AS lo,
           date_bin('1 minute', now() - interval '30 seconds', timestamptz '2000-01-01') AS hi
), done AS (
    SELECT r.*
    FROM {schema}.queue AS q
    CROSS JOIN bounds AS b
    CROSS JOIN LATERAL (
        SELECT j.queue, j.state = 'completed' AS ok,
               date_bin('1 minute', j.completed_on, b.hi) AS done_at,
               date_bin('1 minute', coalesce(j.started_on, j.completed_on), b.hi) AS left_at,
               j.start_after
        FROM {schema}.job AS j
        WHERE j.queue = q.name AND j.state > 'active'
          AND j.completed_on >= b.lo AND j.completed_on < b.hi
        ORDER BY j.completed_on
    ) AS r
), figures AS (
    SELECT d.queue, d.done_at AS minute, count(*) FILTER (WHERE d.ok) AS completed,
           count(*) FILTER (WHERE NOT d.ok) AS failed, NULL::timestamptz AS earliest
    FROM done AS d
    GROUP BY d.queue, d.done_at
    UNION ALL
    SELECT d.queue, d.left_at, 0, 0, min(d.start_after)
    FROM done AS d, bounds AS b
    WHERE d.left_at >= b.hi - interval '2 hours'
    GROUP BY d.queue, d.left_at
), merged AS (
    SELECT f.queue, f.minute, sum(f.completed)::bigint AS completed,
           sum(f.failed)::bigint AS failed, min(f.earliest) AS earliest
    FROM figures AS f
    GROUP BY f.queue, f.minute
), written AS (
    INSERT INTO {schema}.job_minute AS t (queue, minute, completed, failed, earliest_left)
    SELECT m.queue, m.minute, m.completed, m.failed, m.earliest FROM merged AS m
    ON CONFLICT (queue, minute) DO UPDATE
    SET completed = t.completed + excluded.completed,
        failed = t.failed + excluded.failed,
        earliest_left = least(t.earliest_left, excluded.earliest_left)
    RETURNING 1
), pruned AS (
    DELETE FROM {schema}.job_minute AS t
    USING bounds AS b
    WHERE t.minute < b.hi - interval '2 hours'
    RETURNING 1
), marked AS (
    INSERT INTO {schema}.job_minute_mark (one, upto)
    SELECT true, b.hi FROM bounds AS b WHERE b.lo IS NULL OR b.hi > b.lo
    ON CONFLICT (one) DO UPDATE SET upto = excluded.upto
    RETURNING upto
)
SELECT (SELECT count(*) FROM written)::bigint, (SELECT count(*) FROM pruned)::bigint,
       (SELECT max(upto) FROM marked);

-- name: dashboard_clock
-- The database's time: the hour the activity covers is the database's, not the server's.
SELECT now();

-- name: schema_relation_exists
-- Whether the schema has a table or view of this name (for pages whose table an upgrade adds).
SELECT to_regclass(%(relation)s) IS NOT NULL;

-- name: job_search_event
-- The jobs of an event (and of a queue and a state, when given) among at most scan jobs, newest
-- first by id (time-ordered ids), read backwards through the primary key from before the
-- after id (NULL: the newest). The event has no index (every send would pay for one), so the
-- search is bounded by the jobs it reads, not by the table. Matched jobs, at most limit, each
-- with how many jobs were read and the oldest id read; a single row of NULL job columns when
-- none matched.
WITH scanned AS MATERIALIZED (
    SELECT j.id, j.queue, j.state::text AS state, j.data ->> 'event' AS event, j.priority,
           j.retry_count, j.created_on, j.start_after, j.started_on, j.completed_on,
           CASE WHEN j.state IN ('retry', 'failed', 'cancelled')
                THEN left(j.output -> 'error' ->> 'type', 200) END AS error_type,
           CASE WHEN j.state IN ('retry', 'failed', 'cancelled')
                THEN left(j.output -> 'error' ->> 'message', 500) END AS error_message,
           j.dead_letter_id, j.dead_letter_of
    FROM {schema}.job AS j
    WHERE %(after)s::uuid IS NULL OR j.id < %(after)s::uuid
    ORDER BY j.id DESC
    LIMIT %(scan)s
), matched AS (
    SELECT s.*
    FROM scanned AS s
    WHERE s.event = %(event)s::text
      AND (%(queue)s::text IS NULL OR s.queue = %(queue)s::text)
      AND (%(state)s::text IS NULL OR s.state = %(state)s::text)
    ORDER BY s.id DESC
    LIMIT %(limit)s
)
SELECT m.id, m.queue, m.state, m.event, m.priority, m.retry_count, m.created_on,
       m.start_after, m.started_on, m.completed_on, m.error_type, m.error_message,
       m.dead_letter_id, m.dead_letter_of, t.read, t.oldest
FROM (SELECT (SELECT count(*) FROM scanned)::bigint AS read,
             (SELECT s.id FROM scanned AS s ORDER BY s.id LIMIT 1) AS oldest) AS t
LEFT JOIN matched AS m ON true
ORDER BY m.id DESC;
