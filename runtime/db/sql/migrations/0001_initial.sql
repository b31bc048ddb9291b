-- Initial schema: queues with their policy, jobs, and the shared failure transition.
-- {schema} is replaced by the quoted schema name and {channel} by the notification channel
-- literal; nothing else is ever substituted.

CREATE TYPE {schema}.job_state AS ENUM (
    'created', 'retry', 'active', 'completed', 'cancelled', 'failed'
);

CREATE TABLE {schema}.queue (
    name            text PRIMARY KEY,
    retry_limit     integer NOT NULL DEFAULT 3 CHECK (retry_limit >= 0),
    retry_delay     interval NOT NULL DEFAULT '5 seconds',
    retry_backoff   text NOT NULL DEFAULT 'exponential'
                    CHECK (retry_backoff IN ('fixed', 'exponential')),
    retry_max_delay interval NOT NULL DEFAULT '10 minutes',
    retry_jitter    boolean NOT NULL DEFAULT true,
    expire_in       interval NOT NULL DEFAULT '15 minutes',
    retention       interval NOT NULL DEFAULT '7 days',
    dead_letter     text,
    description     text NOT NULL DEFAULT '',
    created_on      timestamptz NOT NULL DEFAULT now(),
    updated_on      timestamptz NOT NULL DEFAULT now()
);

-- No foreign key to queue: the runtime checks queue names before it writes, and a key check
-- would lock the queue row on every insert.
CREATE TABLE {schema}.job (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    queue          text NOT NULL,
    state          {schema}.job_state NOT NULL DEFAULT 'created',
    priority       integer NOT NULL DEFAULT 0,
    retry_count    integer NOT NULL DEFAULT 0,
    -- Bumped by every claim; a worker's complete/fail/heartbeat carries the value it claimed.
    fence          integer NOT NULL DEFAULT 0,
    start_after    timestamptz NOT NULL DEFAULT now(),
    created_on     timestamptz NOT NULL DEFAULT now(),
    started_on     timestamptz,
    completed_on   timestamptz,
    lease_until    timestamptz,
    singleton_key  text,
    dead_letter_id uuid,
    data           jsonb NOT NULL,
    output         jsonb,
    CONSTRAINT job_pkey PRIMARY KEY (id)
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_vacuum_insert_scale_factor = 0.05);

-- The claim: its WHERE and ORDER BY match this index exactly, at any backlog size.
CREATE INDEX job_claim ON {schema}.job (queue, priority DESC, start_after, id)
    WHERE state < 'active';
-- At most one queued-or-active job per queue and singleton key.
CREATE UNIQUE INDEX job_singleton ON {schema}.job (queue, singleton_key)
    WHERE state <= 'active' AND singleton_key IS NOT NULL;
-- Rescue and expiry look at active jobs only (lease_until is not indexed: heartbeats stay HOT).
CREATE INDEX job_active ON {schema}.job (started_on) WHERE state = 'active';
-- Retention deletes finished jobs of one queue, oldest first.
CREATE INDEX job_finished ON {schema}.job (queue, completed_on) WHERE state > 'active';

-- Fail active jobs: retry with backoff while retries remain, else 'failed' plus a copy in the
-- queue's dead-letter queue. A NULL fence skips the fencing check (the manual API).
CREATE FUNCTION {schema}.fail_jobs(
    p_ids uuid[], p_fences integer[], p_errors jsonb[], p_permanent boolean[]
) RETURNS TABLE (job_id uuid, new_state text, dead_letter_id uuid)
LANGUAGE sql VOLATILE AS $fn$
WITH f AS (
    SELECT * FROM unnest(p_ids, p_fences, p_errors, p_permanent)
        AS f(id, fence, error, permanent)
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
                              THEN gen_random_uuid() END
    FROM f, {schema}.queue AS q
    -- By job_pkey whatever the statistics: the state is compared as text, so the partial index
    -- job_active (which the planner may believe holds one row, after ANALYZE of a backlog with
    -- no active job) cannot be chosen to read the jobs. This body is always planned without
    -- the values (the id list estimated at 10 rows), so the join stays a primary-key lookup
    -- per id; `j.id = ANY(p_ids)` here would make it rescan the id list for every job row.
    WHERE j.id = f.id
      AND (f.fence IS NULL OR j.fence = f.fence)
      AND j.state::text = 'active'
      AND q.name = j.queue
    RETURNING j.id, j.state, j.dead_letter_id, q.dead_letter, j.queue, j.data, j.priority,
              j.output, j.retry_count
), dlq AS (
    INSERT INTO {schema}.job (id, queue, data, priority, output)
    SELECT u.dead_letter_id, u.dead_letter, u.data, u.priority,
           jsonb_build_object('error', u.output -> 'error', 'source_id', u.id,
                              'source_queue', u.queue, 'attempts', u.retry_count + 1)
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
