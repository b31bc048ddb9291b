-- Named queries of events (migration 0004): sends that fan an event out to its subscribers,
-- subscriptions, schedules and the archive. Loaded by runtime/db/queries.py and run only by
-- runtime/db/store.py. {schema} becomes the quoted schema name and {channel} the notification
-- channel literal; everything else is a bound parameter (%(name)s).
--
-- A send of an event writes its job and one copy per queue subscribed to (domain of the queue,
-- event) in one statement: all or nothing, in the caller's transaction when there is one. The
-- subscriptions are read by that statement, so a queue that subscribes (or stops) is seen by
-- the next send of every producer. A copy has the job's data, priority, start and singleton
-- key; its id is fan_out_id(job id, queue), so a retried statement writes nothing twice. A
-- copy whose queue already holds a live job with that singleton key is not written (per
-- destination queue, like the job itself). A queue never receives a copy of its own job.

-- name: event_send_one
-- send_one with fan-out: returns the job's id when it was written (nothing when the id or the
-- singleton key was taken on its own queue), like send_one; copies are written either way.
-- One INSERT for the job and its copies: a second INSERT into job (a CTE of its own for the
-- copies) would cost every send, subscribers or not, the setup of another write to the table.
WITH dest AS (
    SELECT %(id)s::uuid AS id, %(queue)s::text AS queue
    UNION ALL
    SELECT {schema}.fan_out_id(%(id)s::uuid, s.queue), s.queue
    FROM {schema}.subscription AS s
    WHERE s.domain = split_part(%(queue)s::text, '.', 1) AND s.event = %(event)s::text
      AND s.queue <> %(queue)s::text
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after, singleton_key)
    SELECT d.id, d.queue, %(data)s::jsonb, %(priority)s::int,
           coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now()),
           %(singleton_key)s::text
    FROM dest AS d
    ON CONFLICT DO NOTHING
    -- (RETURNING runs for every row written, whatever the outer query reads)
    RETURNING id, queue, pg_notify({channel}, queue)
)
SELECT id FROM ins WHERE queue = %(queue)s::text;

-- name: event_send_rows
-- send_rows with fan-out: jobs of any queues and events (an event NULL for plain data).
WITH i AS (
    SELECT *
    FROM unnest(%(ids)b::uuid[], %(queues)b::text[], %(data)b::text[], %(priorities)b::int[],
                %(start_afters)s::timestamptz[], %(delays)s::interval[], %(events)s::text[])
        AS i(id, queue, data, priority, start_after, delay, event)
), dest AS (
    SELECT i.id, i.queue, i.data, i.priority, i.start_after, i.delay FROM i
    UNION ALL
    SELECT {schema}.fan_out_id(i.id, s.queue), s.queue, i.data, i.priority, i.start_after,
           i.delay
    FROM i
    JOIN {schema}.subscription AS s
      ON s.domain = split_part(i.queue, '.', 1) AND s.event = i.event AND s.queue <> i.queue
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after)
    SELECT d.id, d.queue, d.data::jsonb, d.priority, coalesce(d.start_after, now() + d.delay, now())
    FROM dest AS d
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: event_send_batch
-- send_batch with fan-out: a batch of one queue, each item's event given (NULL: plain data).
WITH i AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(data)b::text[], %(events)s::text[])
        AS i(id, data, event)
), dest AS (
    SELECT i.id, %(queue)s::text AS queue, i.data FROM i
    UNION ALL
    SELECT {schema}.fan_out_id(i.id, s.queue), s.queue, i.data
    FROM i
    JOIN {schema}.subscription AS s
      ON s.domain = split_part(%(queue)s::text, '.', 1) AND s.event = i.event
     AND s.queue <> %(queue)s::text
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after)
    SELECT d.id, d.queue, d.data::jsonb, %(priority)s::int,
           coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now())
    FROM dest AS d
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: event_domain_subscribed
-- Whether any queue subscribes to an event of this queue's domain (a COPY then fans out after).
SELECT EXISTS (
    SELECT 1 FROM {schema}.subscription WHERE domain = split_part(%(queue)s::text, '.', 1)
);

-- name: event_fan_out_copied
-- The copies of jobs just written by COPY (in this transaction), by id.
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after)
    SELECT {schema}.fan_out_id(j.id, s.queue), s.queue, j.data, j.priority, j.start_after
    FROM {schema}.job AS j
    JOIN {schema}.subscription AS s
      ON s.domain = split_part(j.queue, '.', 1) AND s.event = j.data ->> 'event'
     AND s.queue <> j.queue
    WHERE j.id = ANY(%(ids)b::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: subscription_set
-- A queue's subscriptions become exactly the given (domain, event) pairs.
WITH wanted AS (
    SELECT DISTINCT w.domain, w.event
    FROM unnest(%(domains)s::text[], %(events)s::text[]) AS w(domain, event)
), gone AS (
    DELETE FROM {schema}.subscription AS s
    WHERE s.queue = %(queue)s::text
      AND NOT EXISTS (SELECT 1 FROM wanted AS w WHERE w.domain = s.domain AND w.event = s.event)
    RETURNING 1
)
INSERT INTO {schema}.subscription (domain, event, queue)
SELECT w.domain, w.event, %(queue)s::text FROM wanted AS w
ON CONFLICT DO NOTHING;

-- name: subscription_list
SELECT queue, domain, event FROM {schema}.subscription ORDER BY queue, domain, event;

-- name: queue_archive_set
UPDATE {schema}.queue SET archive = %(archive)s::interval WHERE name = %(name)s;

-- name: queue_archives
SELECT name, archive FROM {schema}.queue WHERE archive IS NOT NULL ORDER BY name;

-- name: job_archive_finished
-- Move one batch of a queue's finished jobs past retention into the archive.
WITH doomed AS (
    SELECT id FROM {schema}.job
    WHERE queue = %(queue)s AND state > 'active'
      AND completed_on < now() - (SELECT retention FROM {schema}.queue WHERE name = %(queue)s)
    ORDER BY completed_on
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM {schema}.job AS j WHERE j.id = ANY(ARRAY(SELECT id FROM doomed))
    RETURNING j.*
)
INSERT INTO {schema}.job_archive (id, queue, job)
SELECT m.id, m.queue, to_jsonb(m) FROM moved AS m
ON CONFLICT (id) DO NOTHING;

-- name: job_archive_purge
-- Delete one batch of a queue's archived jobs older than its archive duration.
WITH doomed AS (
    SELECT id FROM {schema}.job_archive
    WHERE queue = %(queue)s
      AND archived_on < now() - %(archive)s::interval
    ORDER BY archived_on
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.job_archive WHERE id = ANY(ARRAY(SELECT id FROM doomed));

-- name: job_get_archived
-- get_job for an archived job: the stored row read back as a job row.
SELECT j.id, j.queue, j.state::text AS state, j.data, j.priority, j.retry_count,
       coalesce(j.retry_limit, q.retry_limit, 0) AS retry_limit, j.start_after, j.created_on,
       j.started_on, j.completed_on, j.output, j.singleton_key, j.fence, j.lease_until,
       j.dead_letter_id, j.errors, j.dead_letter_of, a.archived_on
FROM {schema}.job_archive AS a
CROSS JOIN LATERAL jsonb_populate_record(NULL::{schema}.job, a.job) AS j
LEFT JOIN {schema}.queue AS q ON q.name = a.queue
WHERE a.id = %(id)s;

-- name: schedule_upsert
-- The notification (delivered on commit) wakes the schedulers of the worker processes, so that
-- they see the schedule at once (see runtime/worker/scheduler.py).
WITH up AS (
INSERT INTO {schema}.schedule (
    name, queue, event, data, cron, every, timezone, catch_up, priority, declared_by
) VALUES (
    %(name)s, %(queue)s, %(event)s, %(data)s::jsonb, %(cron)s, %(every)s::interval,
    %(timezone)s, %(catch_up)s, %(priority)s, %(declared_by)s
)
ON CONFLICT (name) DO UPDATE SET
    queue = EXCLUDED.queue,
    event = EXCLUDED.event,
    data = EXCLUDED.data,
    cron = EXCLUDED.cron,
    every = EXCLUDED.every,
    timezone = EXCLUDED.timezone,
    catch_up = EXCLUDED.catch_up,
    priority = EXCLUDED.priority,
    declared_by = EXCLUDED.declared_by,
    updated_on = now()
RETURNING name
)
SELECT pg_notify({channel}, ':schedules') FROM up;

-- name: schedule_delete
DELETE FROM {schema}.schedule WHERE name = %(name)s RETURNING name;

-- name: schedule_drop_undeclared
-- The schedules a queue declared before and no longer declares.
DELETE FROM {schema}.schedule
WHERE declared_by = %(queue)s AND NOT (name = ANY(%(names)s::text[]));

-- name: schedule_list
-- Every schedule, with the database's clock (schedules are evaluated on it).
SELECT name, queue, event, data, cron, every, timezone, catch_up, priority,
       coalesce(last_slot, created_on) AS done_until, last_slot, last_job_id,
       clock_timestamp() AS db_now
FROM {schema}.schedule
ORDER BY name;

-- name: schedule_clock
SELECT clock_timestamp();

-- name: schedule_fire
-- Fire one slot: move the schedule past it and write its job (with fan-out), in one statement.
-- Only one statement can move a schedule past a slot (the row lock, and the WHERE checked
-- again on the row version it waited for), so a slot fires at most once however many
-- processes try it; a slot not yet due on the database's clock is not fired.
WITH s AS (
    UPDATE {schema}.schedule
    SET last_slot = %(slot)s::timestamptz, last_job_id = %(id)s::uuid
    WHERE name = %(name)s
      AND coalesce(last_slot, created_on) < %(slot)s::timestamptz
      AND %(slot)s::timestamptz <= clock_timestamp()
    RETURNING queue, event, priority
), dest AS (
    SELECT %(id)s::uuid AS id, s.queue, s.priority FROM s
    UNION ALL
    SELECT {schema}.fan_out_id(%(id)s::uuid, b.queue), b.queue, s.priority
    FROM s
    JOIN {schema}.subscription AS b
      ON b.domain = split_part(s.queue, '.', 1) AND b.event = s.event AND b.queue <> s.queue
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority)
    SELECT d.id, d.queue, %(data)s::jsonb, d.priority FROM dest AS d
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT (SELECT count(*) FROM s)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: schedule_skip
-- Move a schedule past missed slots without firing them (catch_up latest or none).
UPDATE {schema}.schedule
SET last_slot = %(slot)s::timestamptz
WHERE name = %(name)s AND coalesce(last_slot, created_on) < %(slot)s::timestamptz
RETURNING name;
