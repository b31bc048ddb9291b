-- Named queries of the relay: subscriptions delivered at least once across two databases
-- (`delivery: at-least-once` in the catalogue). Loaded by runtime/db/queries.py and run only by
-- runtime/db/store.py. {schema} becomes the quoted schema name and {channel} the notification
-- channel literal; everything else is a bound parameter (%(name)s).
--
-- The publisher's database holds an outbox queue ("<queue>.outbox") that subscribes to the
-- event like any queue, so each send writes its outbox copy atomically. A relay worker claims
-- outbox jobs, reads the options the copies carry (relay_job_options, on the publisher's
-- database) and writes the jobs into the subscriber's database with the copies' own ids
-- (relay_job_write): a relay that crashed after the write and runs a job again writes nothing
-- twice. Both take a batch: the relay gathers the jobs its handlers hold at once.

-- name: relay_job_options
SELECT id, priority, singleton_key FROM {schema}.job WHERE id = ANY(%(ids)s::uuid[]);

-- name: relay_job_write
-- Nothing is written for an id that is taken (relayed before) or when the queue holds a live
-- job with the same singleton key (as a fan-out copy on one server would not be).
WITH ins AS (
    INSERT INTO {schema}.job (id, queue, data, priority, singleton_key)
    SELECT r.id, %(queue)s::text, r.data::jsonb, r.priority, r.singleton_key
    FROM unnest(%(ids)s::uuid[], %(data)s::text[], %(priorities)s::int[],
                %(singleton_keys)s::text[]) AS r(id, data, priority, singleton_key)
    ON CONFLICT DO NOTHING
    RETURNING queue
)
SELECT count(*)::int, bool_or(pg_notify({channel}, %(queue)s::text) IS NULL) FROM ins;
