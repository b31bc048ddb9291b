-- Named queries of flow control (limits, groups, throttle and debounce, snooze, pause), loaded
-- with the other files of this folder and run only by runtime/db/store.py. The functions they
-- call (flow_claim, send_windowed) are defined by migration 0003.
-- {schema} becomes the quoted schema name and {channel} the notification channel literal;
-- everything else is a bound parameter (%(name)s).

-- name: queue_flow_set
UPDATE {schema}.queue
SET active_limit = %(active_limit)s, rate_count = %(rate_count)s,
    rate_period = %(rate_period)s::interval, group_active = %(group_active)s,
    group_fifo = %(group_fifo)s, snooze_limit = %(snooze_limit)s
WHERE name = %(name)s;

-- name: queue_flow_list
SELECT name, active_limit, rate_count, rate_period, group_active, group_fifo, paused
FROM {schema}.queue;

-- name: queue_pause
-- Resuming notifies the queue's workers, so that they look again at once.
WITH changed AS (
    UPDATE {schema}.queue SET paused = %(paused)s, updated_on = now()
    WHERE name = %(name)s
    RETURNING name
)
SELECT c.name FROM changed AS c CROSS JOIN LATERAL (SELECT pg_notify({channel}, c.name)) AS n;

-- name: flow_claim
SELECT id, fence, retry_count, data, expire_in, priority, start_after, created_on, started_on,
       singleton_key, lease_until, wait_s
FROM {schema}.flow_claim(%(queue)s, %(limit)s, %(lease)s::interval);

-- name: flow_send
-- A job with a group or per-job overrides, and (for an event) its copies on the subscribed
-- queues, as event_send_one writes them, with the same options. Each row takes its place in its
-- group's send order here. Returns the job's id when it was written.
WITH dest AS (
    SELECT %(id)s::uuid AS id, %(queue)s::text AS queue
    UNION ALL
    SELECT {schema}.fan_out_id(%(id)s::uuid, s.queue), s.queue
    FROM {schema}.subscription AS s
    WHERE s.domain = split_part(%(queue)s::text, '.', 1) AND s.event = %(event)s::text
      AND s.queue <> %(queue)s::text
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after, singleton_key, group_key,
                             group_seq, retry_limit, expire_in)
    SELECT d.id, d.queue, %(data)s::jsonb, %(priority)s::int,
           coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now()),
           %(singleton_key)s::text, %(group_key)s::text,
           CASE WHEN %(group_key)s::text IS NOT NULL
                THEN nextval('{schema}.job_group_seq') END,
           %(retry_limit)s::int, %(expire_in)s::interval
    FROM dest AS d
    ON CONFLICT DO NOTHING
    -- (RETURNING runs for every row written, whatever the outer query reads)
    RETURNING id, queue, pg_notify({channel}, queue)
)
SELECT id FROM ins WHERE queue = %(queue)s::text;

-- name: flow_send_batch
-- A batch of one queue with one group and the same overrides, in input (send) order, and the
-- copies of its events on the subscribed queues (each item's event given, NULL: plain data).
WITH i AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(data)b::text[], %(events)s::text[])
        WITH ORDINALITY AS i(id, data, event, n)
), dest AS (
    SELECT i.id, %(queue)s::text AS queue, i.data, i.n FROM i
    UNION ALL
    SELECT {schema}.fan_out_id(i.id, s.queue), s.queue, i.data, i.n
    FROM i
    JOIN {schema}.subscription AS s
      ON s.domain = split_part(%(queue)s::text, '.', 1) AND s.event = i.event
     AND s.queue <> %(queue)s::text
), ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, start_after, group_key, group_seq,
                             retry_limit, expire_in)
    SELECT d.id, d.queue, d.data::jsonb, %(priority)s::int,
           coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now()),
           %(group_key)s::text,
           CASE WHEN %(group_key)s::text IS NOT NULL
                THEN nextval('{schema}.job_group_seq') END,
           %(retry_limit)s::int, %(expire_in)s::interval
    FROM dest AS d
    ORDER BY d.n
    ON CONFLICT DO NOTHING
    RETURNING queue
), per_queue AS (
    SELECT queue, count(*) AS n FROM ins GROUP BY queue
)
SELECT coalesce(sum(n), 0)::int, count(pg_notify({channel}, queue)) FROM per_queue;

-- name: flow_send_windowed
SELECT {schema}.send_windowed(
    %(id)s, %(queue)s, %(data)s::jsonb, %(priority)s,
    coalesce(%(start_after)s::timestamptz, now() + %(delay)s::interval, now()),
    %(key)s, %(debounce)s, %(window)s::interval, %(group_key)s::text, %(retry_limit)s::int,
    %(expire_in)s::interval);

-- name: job_snooze
-- Put an active job back, due after the delay, without using an attempt; its snooze count goes
-- up. At the queue's snooze_limit it is left active and `allowed` comes back false (the caller
-- fails it); `snoozes` is the count before this one. No row: the claim is no longer current
-- (the lease was lost).
WITH target AS (
    SELECT j.id, j.snoozes, j.snoozes < q.snooze_limit AS allowed
    FROM {schema}.job AS j
    JOIN {schema}.queue AS q ON q.name = j.queue
    WHERE j.id = %(id)s AND j.fence = %(fence)s AND j.state::text = 'active'  -- by job_pkey
    FOR UPDATE OF j
), snoozed AS (
    UPDATE {schema}.job AS j
    SET state = CASE WHEN j.retry_count > 0 THEN 'retry' ELSE 'created' END::{schema}.job_state,
        start_after = now() + %(delay)s::interval, started_on = NULL, lease_until = NULL,
        snoozes = j.snoozes + 1
    FROM target AS t
    WHERE j.id = t.id AND t.allowed
    RETURNING j.queue
)
SELECT t.allowed, t.snoozes
FROM target AS t
LEFT JOIN LATERAL (SELECT pg_notify({channel}, s.queue) FROM snoozed AS s) AS n ON true;
