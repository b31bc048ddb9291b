-- Named queries of the job lifecycle, loaded once by runtime/db/queries.py (with the other files
-- of this folder) and run only by runtime/db/store.py. Each starts with "-- name: <name>".
-- {schema} becomes the quoted schema name, {channel} the notification channel literal and
-- {channel_ident} the channel as an identifier;
-- everything else is a bound parameter (%(name)s).

-- name: bootstrap
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_on timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migration
SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: has_version_table
SELECT to_regclass(%(table)s) IS NOT NULL;

-- name: schema_version
SELECT coalesce(max(version), 0) FROM {schema}.version;

-- name: record_version
INSERT INTO {schema}.version (version, name) VALUES (%(version)s, %(name)s);

-- name: create_queue
INSERT INTO {schema}.queue (
    name, retry_limit, retry_delay, retry_backoff, retry_max_delay, retry_jitter,
    expire_in, retention, dead_letter, description, max_wait
) VALUES (
    %(name)s, %(retry_limit)s, %(retry_delay)s, %(retry_backoff)s, %(retry_max_delay)s,
    %(retry_jitter)s, %(expire_in)s, %(retention)s, %(dead_letter)s, %(description)s,
    %(max_wait)s::interval
)
ON CONFLICT (name) DO UPDATE SET
    retry_limit = EXCLUDED.retry_limit,
    retry_delay = EXCLUDED.retry_delay,
    retry_backoff = EXCLUDED.retry_backoff,
    retry_max_delay = EXCLUDED.retry_max_delay,
    retry_jitter = EXCLUDED.retry_jitter,
    expire_in = EXCLUDED.expire_in,
    retention = EXCLUDED.retention,
    dead_letter = EXCLUDED.dead_letter,
    description = EXCLUDED.description,
    max_wait = EXCLUDED.max_wait,
    updated_on = now();

-- name: list_queues
SELECT name, retry_limit, expire_in, dead_letter FROM {schema}.queue;

-- name: send_one
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after, singleton_key)
    VALUES (%(id)s, %(queue)s, %(data)s::jsonb, %(priority)s,
            coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now()),
            %(singleton_key)s)
    ON CONFLICT DO NOTHING
    RETURNING id, queue
)
SELECT ins.id FROM ins CROSS JOIN LATERAL (SELECT pg_notify({channel}, ins.queue)) AS n;

-- name: find_singleton
SELECT id FROM {schema}.job
WHERE queue = %(queue)s AND singleton_key = %(singleton_key)s AND state <= 'active';

-- name: send_rows
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after)
    SELECT i.id, i.queue, i.data::jsonb, i.priority,
           coalesce(i.start_after, now() + i.delay, now())
    FROM unnest(%(ids)b::uuid[], %(queues)b::text[], %(data)b::text[], %(priorities)b::int[],
                %(start_afters)s::timestamptz[], %(delays)s::interval[])
        AS i(id, queue, data, priority, start_after, delay)
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: send_batch
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after)
    SELECT i.id, %(queue)s::text, i.data::jsonb, %(priority)s::int,
           coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now())
    FROM unnest(%(ids)b::uuid[], %(data)b::text[]) AS i(id, data)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*)::int, pg_notify({channel}, %(queue)s::text) FROM ins;

-- name: copy_jobs
COPY {schema}.job (id, data, queue, priority) FROM STDIN;

-- name: copy_jobs_at
COPY {schema}.job (id, data, queue, priority, start_after) FROM STDIN;

-- name: notify
SELECT pg_notify({channel}, %(queue)s);

-- name: listen
LISTEN {channel_ident};

-- name: ping
SELECT 1;

-- name: db_time
SELECT now() + %(delay)s::interval;

-- name: claim
WITH next AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND start_after <= now()
    ORDER BY priority DESC, start_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
-- UPDATE ... RETURNING gives rows in table order: the outer SELECT returns them in claim order,
-- so a batch starts its higher-priority jobs first.
, claimed AS (
    UPDATE {schema}.job AS j
    SET state = 'active', started_on = now(), fence = j.fence + 1,
        lease_until = now() + greatest(%(lease)s::interval, j.expire_in)  -- (a job's own expiry)
    WHERE j.id = ANY(ARRAY(SELECT id FROM next))
    RETURNING j.id, j.fence, j.retry_count, j.data, j.priority, j.start_after, j.created_on,
              j.started_on, j.singleton_key, j.lease_until
)
SELECT * FROM claimed ORDER BY priority DESC, start_after, id;

-- name: claim_work
WITH next AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND start_after <= now()
    ORDER BY priority DESC, start_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
, claimed AS (
    UPDATE {schema}.job AS j
    SET state = 'active', started_on = now(), fence = j.fence + 1,
        lease_until = now() + %(lease)s::interval
    WHERE j.id = ANY(ARRAY(SELECT id FROM next))
    RETURNING j.id, j.fence, j.retry_count, j.data, j.priority, j.start_after, j.expire_in
)
SELECT id, fence, retry_count, data, expire_in FROM claimed
ORDER BY priority DESC, start_after, id;

-- name: claim_work_after
-- claim_work from a cursor: the next due jobs after the position (priority, start_after, id) in
-- the claim order, so that the scan of job_claim starts past the entries of the jobs claimed
-- since the last vacuum (a claim is a non-HOT update: those entries stay at the head of the
-- order until VACUUM removes them; bench/PROFILE.md, issue 17). `here` reads the rest of the
-- cursor's priority from the position on (an index condition on the row comparison), `lower`
-- the lower priorities from their start, only for what `here` did not fill. With no position
-- (all three NULL) it starts before the first entry of the index: the highest priority with
-- the smallest (start_after, id), so it claims exactly what claim_work claims. What sorts before
-- the position (higher priorities, jobs due earlier) is the worker's claim from the start to
-- find (runtime/worker/claim_cursor.py). The final SELECT gives the last row's priority and
-- start_after (NULL on the others): the next position.
WITH here AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND start_after <= now()
      AND priority = coalesce(%(priority)s::int, 2147483647)
      AND (start_after, id) > (coalesce(%(start_after)s::timestamptz, '-infinity'),
                               coalesce(%(id)s::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY priority DESC, start_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
, lower AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state < 'active' AND start_after <= now()
      AND priority < coalesce(%(priority)s::int, 2147483647)
    ORDER BY priority DESC, start_after, id
    LIMIT %(limit)s - (SELECT count(*) FROM here)
    FOR UPDATE SKIP LOCKED
)
, claimed AS (
    UPDATE {schema}.job AS j
    SET state = 'active', started_on = now(), fence = j.fence + 1,
        lease_until = now() + %(lease)s::interval
    WHERE j.id = ANY(ARRAY(SELECT id FROM here UNION ALL SELECT id FROM lower))
    RETURNING j.id, j.fence, j.retry_count, j.data, j.priority, j.start_after, j.expire_in
)
SELECT id, fence, retry_count, data, expire_in,
       CASE WHEN lead(id) OVER w IS NULL THEN priority END,
       CASE WHEN lead(id) OVER w IS NULL THEN start_after END
FROM claimed
WINDOW w AS (ORDER BY priority DESC, start_after, id)
ORDER BY priority DESC, start_after, id;

-- name: complete_many
-- Writes by id go through job_pkey whatever the statistics say. `j.id = ANY(ids)` gives the
-- planner an index condition on the primary key that a seq scan would have to pay for per row,
-- and the state is compared as text so that no partial index (job_active: state = 'active',
-- job_finished: state > 'active') can be proven to match: after ANALYZE of a backlog with no
-- active job the planner believes job_active holds one row and would read all of it (live
-- and dead entries) for every batch, falling behind the lease under load. The same holds for
-- every write by id below and in fail_jobs (migration 0001); tests/runtime/test_rt_plan.py
-- checks their plans. The batched writes are run unprepared (custom plans): a generic plan
-- estimates 10 ids and may rescan the id list for every job row, quadratic in the batch.
UPDATE {schema}.job AS j
SET state = 'completed', completed_on = now(), lease_until = NULL, output = c.output::jsonb
FROM unnest(%(ids)b::uuid[], %(fences)b::int[], %(outputs)b::text[]) AS c(id, fence, output)
WHERE j.id = ANY(%(ids)b::uuid[]) AND j.id = c.id AND j.fence = c.fence
  AND j.state::text = 'active'
RETURNING j.id;

-- name: complete_one
UPDATE {schema}.job
SET state = 'completed', completed_on = now(), lease_until = NULL, output = %(output)s::jsonb
WHERE id = %(id)s AND state::text = 'active'  -- by job_pkey (see complete_many)
  AND (%(fence)s::int IS NULL OR fence = %(fence)s::int)
RETURNING id;

-- name: fail_many
SELECT job_id, new_state, dead_letter_id
FROM {schema}.fail_jobs(%(ids)b::uuid[], %(fences)b::int[], %(errors)b::text[]::jsonb[],
                        %(permanent)b::boolean[]);

-- name: heartbeat_many
UPDATE {schema}.job AS j
SET lease_until = now() + %(lease)s::interval
FROM unnest(%(ids)b::uuid[], %(fences)b::int[]) AS h(id, fence)
WHERE j.id = ANY(%(ids)b::uuid[]) AND j.id = h.id AND j.fence = h.fence  -- see complete_many
  AND j.state::text = 'active'
RETURNING j.id;

-- name: hand_back
WITH back AS (
    UPDATE {schema}.job AS j
    SET state = CASE WHEN j.retry_count > 0 THEN 'retry' ELSE 'created' END::{schema}.job_state,
        start_after = now(), started_on = NULL, lease_until = NULL
    FROM unnest(%(ids)b::uuid[], %(fences)b::int[]) AS h(id, fence)
    WHERE j.id = ANY(%(ids)b::uuid[]) AND j.id = h.id AND j.fence = h.fence  -- see complete_many
      AND j.state::text = 'active'
    RETURNING j.queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM back GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: cancel
UPDATE {schema}.job
SET state = 'cancelled', completed_on = now(), lease_until = NULL
WHERE id = %(id)s AND state < 'completed'
RETURNING id;

-- name: resume
WITH r AS (
    UPDATE {schema}.job
    SET state = CASE WHEN retry_count > 0 THEN 'retry' ELSE 'created' END::{schema}.job_state,
        completed_on = NULL, started_on = NULL, start_after = now()
    WHERE id = %(id)s AND state::text = 'cancelled'  -- by job_pkey (see complete_many)
    RETURNING queue
)
SELECT r.queue FROM r CROSS JOIN LATERAL (SELECT pg_notify({channel}, r.queue)) AS n;

-- name: retry
WITH r AS (
    UPDATE {schema}.job
    SET state = 'retry', completed_on = NULL, started_on = NULL, start_after = now()
    WHERE id = %(id)s AND state::text = 'failed'  -- by job_pkey (see complete_many)
    RETURNING queue
)
SELECT r.queue FROM r CROSS JOIN LATERAL (SELECT pg_notify({channel}, r.queue)) AS n;

-- name: get_job
SELECT j.id, j.queue, j.state::text AS state, j.data, j.priority, j.retry_count,
       coalesce(j.retry_limit, q.retry_limit, 0) AS retry_limit, j.start_after, j.created_on,
       j.started_on,
       j.completed_on, j.output, j.singleton_key, j.fence, j.lease_until, j.dead_letter_id,
       j.errors, j.dead_letter_of
FROM {schema}.job AS j
LEFT JOIN {schema}.queue AS q ON q.name = j.queue
WHERE j.id = %(id)s;

-- name: queue_stats
SELECT q.name,
       count(j.id) FILTER (WHERE j.state = 'created')::int,
       count(j.id) FILTER (WHERE j.state = 'retry')::int,
       count(j.id) FILTER (WHERE j.state = 'active')::int,
       count(j.id) FILTER (WHERE j.state = 'completed')::int,
       count(j.id) FILTER (WHERE j.state = 'cancelled')::int,
       count(j.id) FILTER (WHERE j.state = 'failed')::int,
       count(j.id) FILTER (WHERE j.state = 'failed' AND j.dead_letter_id IS NOT NULL)::int,
       now() - min(j.start_after) FILTER (WHERE j.state < 'active' AND j.start_after <= now())
FROM {schema}.queue AS q
LEFT JOIN {schema}.job AS j ON j.queue = q.name
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
GROUP BY q.name
ORDER BY q.name;

-- name: lock_maintenance
-- Maintenance transactions are short: a statement running long is cancelled, and a holder
-- that stops mid-transaction (paused, cut off) loses its session, its lock and its uncommitted
-- work, so another process takes over.
SELECT set_config('statement_timeout', '15s', true),
       set_config('idle_in_transaction_session_timeout', '15s', true),
       pg_try_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: rescue
WITH r AS (
    SELECT j.id, j.fence,
           CASE WHEN j.lease_until < now() THEN %(lease_error)s ELSE %(expire_error)s END
               AS error
    FROM {schema}.job AS j
    JOIN {schema}.queue AS q ON q.name = j.queue
    WHERE j.state = 'active'
      AND (j.lease_until < now()
           OR j.started_on < now() - coalesce(j.expire_in, q.expire_in) - %(grace)s::interval)
    ORDER BY j.started_on
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
), a AS (
    SELECT array_agg(id) AS ids, array_agg(fence) AS fences,
           array_agg(error::jsonb) AS errors, count(*)::int AS n
    FROM r
)
SELECT f.job_id, f.new_state
FROM a
CROSS JOIN LATERAL {schema}.fail_jobs(a.ids, a.fences, a.errors, array_fill(false, ARRAY[a.n]))
    AS f
WHERE a.n > 0;

-- name: delete_finished
WITH doomed AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state > 'active'
      AND completed_on < now() - (SELECT retention FROM {schema}.queue WHERE name = %(queue)s)
    ORDER BY completed_on
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.job WHERE id = ANY(ARRAY(SELECT id FROM doomed));
