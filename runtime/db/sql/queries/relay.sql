-- Named queries of the relay: subscriptions delivered at least once across two databases
-- (`delivery: at-least-once` in the catalogue). Loaded by runtime/db/queries.py and run only by
-- runtime/db/store.py. {schema} becomes the quoted schema name and {channel} the notification
-- channel literal; everything else is a bound parameter (%(name)s).
--
-- The publisher's database holds an outbox queue ("<queue>.outbox") that subscribes to the
-- event like any queue, so each send writes its outbox copy atomically. A relay worker claims
-- an outbox job, reads the options the copy carries (relay_job_options, on the publisher's
-- database) and writes the job into the subscriber's database with the copy's own id
-- (relay_job_write): a relay that crashed after the write and runs the job again writes
-- nothing twice.

-- name: relay_job_options
SELECT priority, singleton_key FROM {schema}.job WHERE id = %(id)s::uuid;

-- name: relay_job_write
-- Nothing is written when the id is taken (relayed before) or when the queue holds a live job
-- with the same singleton key (as a fan-out copy on one server would not be).
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, singleton_key)
    VALUES (%(id)s::uuid, %(queue)s::text, %(data)s::jsonb, %(priority)s::int,
            %(singleton_key)s::text)
    ON CONFLICT DO NOTHING
    RETURNING queue, pg_notify({channel}, queue)
)
SELECT count(*)::int FROM ins;
