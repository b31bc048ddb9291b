-- compatible-from: 1
-- Additive: code of earlier versions keeps running against it (new tables, a new nullable
-- column, new functions). Such code neither fans out, fires schedules nor archives.
-- Events: subscriptions (fan-out of an event to the queues that subscribe to it), schedules,
-- and the archive of finished jobs.
-- {schema} is replaced by the quoted schema name and {channel} by the notification channel
-- literal; nothing else is ever substituted.

-- Who else receives an event: a job whose data is an envelope of event E, sent to a queue of
-- domain D (the part of the queue name before its first dot), is also written to every queue
-- subscribed to (D, E), by the send's own statement. Written by create_queues (each queue's
-- QueueSpec.subscribe replaces that queue's rows), read by every send of an event.
CREATE TABLE {schema}.subscription (
    domain     text NOT NULL,
    event      text NOT NULL,
    queue      text NOT NULL,
    created_on timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscription_pkey PRIMARY KEY (domain, event, queue)
);
CREATE INDEX subscription_queue ON {schema}.subscription (queue);

-- The id of the copy of job p_id on queue p_queue: the job's own id with its time prefix kept
-- and the rest taken from a hash of (id, queue), in the UUID version 7 layout. Deterministic,
-- so that a send retried after a lost connection finds its copies there already (ON CONFLICT
-- DO NOTHING) instead of writing them twice; time-ordered like the ids the runtime makes.
CREATE FUNCTION {schema}.fan_out_id(p_id uuid, p_queue text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT encode(set_byte(set_byte(b, 6, (get_byte(b, 6) & 15) | 112),
                       8, (get_byte(b, 8) & 63) | 128), 'hex')::uuid
FROM (SELECT overlay(uuid_send(p_id) PLACING
                     substring(decode(md5(p_id::text || ' ' || p_queue), 'hex') FROM 1 FOR 10)
                     FROM 7) AS b) AS x
$fn$;

-- How long finished jobs stay in the archive after retention moved them there; NULL: retention
-- deletes them (no archive).
ALTER TABLE {schema}.queue ADD COLUMN archive interval
    CONSTRAINT queue_archive_positive CHECK (archive > interval '0');

-- Finished jobs of queues with an archive, moved here by maintenance after their queue's
-- retention. The row is kept whole as jsonb (to_jsonb of the job row), so that columns added
-- to job later need no change here; jsonb_populate_record reads it back as a job row.
CREATE TABLE {schema}.job_archive (
    id          uuid NOT NULL,
    queue       text NOT NULL,
    archived_on timestamptz NOT NULL DEFAULT now(),
    job         jsonb NOT NULL,
    CONSTRAINT job_archive_pkey PRIMARY KEY (id)
);
-- Deleting the archived jobs of one queue, oldest first.
CREATE INDEX job_archive_expiry ON {schema}.job_archive (queue, archived_on);

-- Schedules: a job on `queue` (an envelope of `event` with `data` as its payload, or `data`
-- itself when event is NULL) at every slot of `cron` (in `timezone`) or of `every` (slots
-- aligned to the Unix epoch). Every worker process runs a scheduler; a slot is fired by the
-- one statement that moves last_slot forward past it, so each slot gives at most one job
-- however many processes try (see schedule_fire in queries/events.sql).
CREATE TABLE {schema}.schedule (
    name        text NOT NULL,
    queue       text NOT NULL,
    event       text,
    data        jsonb NOT NULL,
    cron        text,
    every       interval CONSTRAINT schedule_every_positive CHECK (every >= interval '1 second'),
    timezone    text NOT NULL DEFAULT 'UTC',
    catch_up    text NOT NULL DEFAULT 'latest'
                CONSTRAINT schedule_catch_up CHECK (catch_up IN ('latest', 'all', 'none')),
    priority    integer NOT NULL DEFAULT 0,
    -- The queue whose QueueSpec declares it (create_queues replaces the schedules a queue
    -- declares); NULL for a schedule made at run time (Boss.schedule).
    declared_by text,
    -- The latest slot fired or skipped; slots up to it are done. NULL: none yet (slots after
    -- created_on are due).
    last_slot   timestamptz,
    last_job_id uuid,
    created_on  timestamptz NOT NULL DEFAULT now(),
    updated_on  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_pkey PRIMARY KEY (name),
    CONSTRAINT schedule_one_rule CHECK ((cron IS NULL) <> (every IS NULL))
);
CREATE INDEX schedule_declared_by ON {schema}.schedule (declared_by)
    WHERE declared_by IS NOT NULL;
