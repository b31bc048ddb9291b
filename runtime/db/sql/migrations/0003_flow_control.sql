-- compatible-from: 1
-- Additive: code of earlier versions keeps running against it (new nullable columns and
-- defaults, new tables and functions, fail_jobs with the same signature and result); such code
-- claims every queue with the plain claim, so it does not enforce the policies added here.
-- Flow control: limits across processes (active jobs, starts per period), groups of jobs by key
-- (at most N active per key, optionally in send order), throttled and debounced sends, snoozes,
-- per-job retry limit and expiry, and pausing a queue.
-- {schema} is replaced by the quoted schema name and {channel} by the notification channel
-- literal; nothing else is ever substituted.

-- A queue's flow policy. NULL means "no limit"; a queue with none of them is claimed by the
-- plain claim (claim_work), exactly as before.
ALTER TABLE {schema}.queue
    ADD COLUMN active_limit integer CHECK (active_limit >= 1),
    ADD COLUMN rate_count integer CHECK (rate_count >= 1),
    ADD COLUMN rate_period interval CHECK (rate_period > interval '0'),
    ADD COLUMN group_active integer CHECK (group_active >= 1),
    ADD COLUMN group_fifo boolean NOT NULL DEFAULT false,
    ADD COLUMN snooze_limit integer NOT NULL DEFAULT 100 CHECK (snooze_limit >= 0),
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT queue_rate_whole CHECK ((rate_count IS NULL) = (rate_period IS NULL));

-- Per job: its group and its place in the group's send order, the overrides of the queue's
-- retry limit and expiry, and how often a handler snoozed it. All NULL (or 0) for a plain job,
-- so plain sends write nothing more than before.
ALTER TABLE {schema}.job
    ADD COLUMN group_key text,
    ADD COLUMN group_seq bigint,
    ADD COLUMN retry_limit integer CHECK (retry_limit >= 0),
    ADD COLUMN expire_in interval CHECK (expire_in > interval '0'),
    ADD COLUMN snoozes integer NOT NULL DEFAULT 0;

-- Send order within a group: taken from the sequence when the job is inserted.
CREATE SEQUENCE {schema}.job_group_seq;

-- The unfinished jobs of each group in send order (the fifo window, and the walk over the keys
-- that have work). Plain jobs (group_key NULL) never enter these two indexes.
CREATE INDEX job_group ON {schema}.job (queue, group_key, group_seq)
    WHERE group_key IS NOT NULL AND state < 'completed';
-- The active jobs of each group (the per-key limit without fifo).
CREATE INDEX job_group_active ON {schema}.job (queue, group_key)
    WHERE group_key IS NOT NULL AND state = 'active';

-- What the claims of a limited queue remember between them: the starts of the current rate
-- period (claim time and count, oldest first; see flow_claim) and the key the last walk over the
-- groups stopped at. Only the claims of that queue write it, under its lock.
CREATE TABLE {schema}.flow_state (
    queue        text PRIMARY KEY,
    rate_at      timestamptz[] NOT NULL DEFAULT '{}',
    rate_n       integer[] NOT NULL DEFAULT '{}',
    group_cursor text
);

-- The open throttle or debounce window of each key: the job it belongs to and when it ends.
-- Senders of one key serialize on its row (ON CONFLICT locks it), so one window never gets two
-- jobs whatever the isolation level.
CREATE TABLE {schema}.flow_window (
    queue  text NOT NULL,
    key    text NOT NULL,
    job_id uuid NOT NULL,
    until  timestamptz NOT NULL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX flow_window_until ON {schema}.flow_window (queue, until);

-- A job's own retry limit, where it has one, replaces its queue's in fail_jobs. The function is
-- patched where it stands instead of being written out again here: an earlier migration of
-- another area (0002) redefines it, and its body must survive this one unchanged otherwise.
DO $patch$
DECLARE
    v_def text := pg_get_functiondef(
        '{schema}.fail_jobs(uuid[], integer[], jsonb[], boolean[])'::regprocedure);
BEGIN
    IF position('q.retry_limit' IN v_def) = 0 THEN
        RAISE EXCEPTION 'fail_jobs does not read q.retry_limit: cannot apply per-job retry limits';
    END IF;
    EXECUTE replace(v_def, 'q.retry_limit', 'coalesce(j.retry_limit, q.retry_limit)');
END
$patch$;

-- Claim up to p_limit due jobs of a queue that has a flow policy, within that policy.
--
-- Claims of one queue run one at a time, from every process, under a transaction-level
-- advisory lock on the queue. This is a plpgsql function so that each statement after the lock
-- takes a snapshot of its own (READ COMMITTED): it counts every claim committed before it. The
-- lock is released only after the claim's commit is visible.
--
-- * active_limit: at most that many jobs of the queue active (started and not finished,
--   claimed-ahead ones included), counted from the job rows;
-- * rate_count per rate_period: at most that many claims in any period-long interval, on the
--   database's clock. Each claim's time and count is kept (rate_at, rate_n); when there are more
--   than 64, the two oldest merge into the later time, which only ever counts a start as later
--   than it was (so never lets more through);
-- * group_active (per group_key): at most that many active jobs per key; with group_fifo, only
--   jobs among the group_active oldest unfinished of their key (send order) may start, so a
--   retrying or running job holds its key. Keys are visited in turn from where the last claim
--   stopped, one index probe each, so a key whose jobs cannot start costs one probe whatever
--   its backlog. Jobs without a key are taken first, from the first due jobs of the queue.
--
-- Returns the claimed jobs. When the active or rate limit leaves no room, it returns one row whose
-- id is NULL and whose wait_s says when the rate allows a start again (NULL: when a job ends).
-- A paused queue returns nothing.
CREATE FUNCTION {schema}.flow_claim(p_queue text, p_limit integer, p_lease interval)
RETURNS TABLE (
    id uuid, fence integer, retry_count integer, data jsonb, expire_in interval,
    priority integer, start_after timestamptz, created_on timestamptz, started_on timestamptz,
    singleton_key text, lease_until timestamptz, wait_s double precision
)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    pol record;
    v_now timestamptz;
    v_room integer := p_limit;
    v_wait double precision;
    v_active integer;
    v_at timestamptz[] := '{}';
    v_n integer[] := '{}';
    v_used integer := 0;
    v_cand uuid[] := '{}';
    v_take uuid[];
    v_ids uuid[];
    v_claimed integer;
    v_has_state boolean;
    v_cursor text;
    v_key text;
    v_next text;
    v_wrapped boolean := false;
    v_busy integer;
    v_head uuid;
    v_head_ready boolean;
BEGIN
    SELECT q.active_limit, q.rate_count, q.rate_period, q.group_active, q.group_fifo, q.paused
      INTO pol FROM {schema}.queue AS q WHERE q.name = p_queue;
    IF NOT FOUND OR pol.paused OR p_limit < 1 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended({channel} || ':flow:' || p_queue, 0));
    v_now := clock_timestamp();

    IF pol.active_limit IS NOT NULL THEN
        SELECT count(*) INTO v_active
          FROM {schema}.job AS j WHERE j.queue = p_queue AND j.state = 'active';
        v_room := least(v_room, pol.active_limit - v_active);
    END IF;

    IF pol.rate_count IS NOT NULL OR pol.group_active IS NOT NULL THEN
        SELECT s.rate_at, s.rate_n, s.group_cursor INTO v_at, v_n, v_cursor
          FROM {schema}.flow_state AS s WHERE s.queue = p_queue;
        v_has_state := FOUND;
        IF NOT v_has_state THEN
            v_at := '{}';
            v_n := '{}';
        END IF;
    END IF;

    IF pol.rate_count IS NOT NULL THEN
        -- Forget the claims older than one period; count the rest.
        SELECT coalesce(array_agg(e.at ORDER BY e.o), '{}'),
               coalesce(array_agg(e.n ORDER BY e.o), '{}'),
               coalesce(sum(e.n), 0)
          INTO v_at, v_n, v_used
          FROM unnest(v_at, v_n) WITH ORDINALITY AS e(at, n, o)
         WHERE e.at > v_now - pol.rate_period;
        IF pol.rate_count - v_used < v_room THEN
            v_room := pol.rate_count - v_used;
            IF v_room <= 0 THEN
                -- The next start is allowed once enough of the oldest claims leave the period.
                SELECT extract(epoch FROM (e.at + pol.rate_period - v_now))
                  INTO v_wait
                  FROM (SELECT x.at, sum(x.n) OVER (ORDER BY x.o) AS freed
                          FROM unnest(v_at, v_n) WITH ORDINALITY AS x(at, n, o)) AS e
                 WHERE v_used - e.freed < pol.rate_count
                 ORDER BY e.at
                 LIMIT 1;
            END IF;
        END IF;
    END IF;

    IF v_room <= 0 THEN
        RETURN QUERY SELECT NULL::uuid, NULL::integer, NULL::integer, NULL::jsonb,
            NULL::interval, NULL::integer, NULL::timestamptz, NULL::timestamptz,
            NULL::timestamptz, NULL::text, NULL::timestamptz, CASE WHEN v_wait IS NOT NULL THEN greatest(v_wait, 0.001) END;
        RETURN;
    END IF;

    IF pol.group_active IS NULL THEN
        SELECT coalesce(array_agg(c.id), '{}') INTO v_ids FROM (
            SELECT j.id FROM {schema}.job AS j
             WHERE j.queue = p_queue AND j.state < 'active' AND j.start_after <= v_now
             ORDER BY j.priority DESC, j.start_after, j.id
             LIMIT v_room
               FOR UPDATE SKIP LOCKED
        ) AS c;
    ELSE
        -- Jobs without a key first, among the first due jobs of the queue.
        SELECT coalesce(array_agg(w.id ORDER BY w.priority DESC, w.start_after, w.id), '{}')
          INTO v_cand
          FROM (SELECT j.id, j.group_key, j.priority, j.start_after
                  FROM {schema}.job AS j
                 WHERE j.queue = p_queue AND j.state < 'active' AND j.start_after <= v_now
                 ORDER BY j.priority DESC, j.start_after, j.id
                 LIMIT v_room * 4 + 64) AS w
         WHERE w.group_key IS NULL;
        v_cand := v_cand[1:v_room];
        -- Then the keys in turn, from the one after where the last claim stopped. Each step
        -- reads the next key's oldest unfinished job (its head) in one index probe.
        v_key := v_cursor;
        WHILE coalesce(cardinality(v_cand), 0) < v_room LOOP
            IF v_key IS NULL THEN
                SELECT j.group_key, j.id, j.state < 'active' AND j.start_after <= v_now
                  INTO v_next, v_head, v_head_ready
                  FROM {schema}.job AS j
                 WHERE j.queue = p_queue AND j.group_key IS NOT NULL AND j.state < 'completed'
                 ORDER BY j.group_key, j.group_seq LIMIT 1;
            ELSE
                SELECT j.group_key, j.id, j.state < 'active' AND j.start_after <= v_now
                  INTO v_next, v_head, v_head_ready
                  FROM {schema}.job AS j
                 WHERE j.queue = p_queue AND j.group_key IS NOT NULL AND j.state < 'completed'
                   AND j.group_key > v_key
                 ORDER BY j.group_key, j.group_seq LIMIT 1;
            END IF;
            IF NOT FOUND THEN
                -- Past the last key: go on from the first, up to where this walk began.
                EXIT WHEN v_wrapped OR v_cursor IS NULL;
                v_wrapped := true;
                v_key := NULL;
                CONTINUE;
            END IF;
            EXIT WHEN v_wrapped AND v_next > v_cursor;
            v_key := v_next;
            IF pol.group_fifo AND pol.group_active = 1 THEN
                -- In send order one at a time: the head, if it may start.
                IF v_head_ready THEN
                    v_cand := v_cand || v_head;
                END IF;
                CONTINUE;
            END IF;
            IF pol.group_fifo THEN
                SELECT coalesce(array_agg(h.id ORDER BY h.group_seq), '{}') INTO v_take
                  FROM (SELECT j.id, j.group_seq, j.state, j.start_after
                          FROM {schema}.job AS j
                         WHERE j.queue = p_queue AND j.group_key = v_key
                           AND j.state < 'completed'
                         ORDER BY j.group_seq
                         LIMIT pol.group_active) AS h
                 WHERE h.state < 'active' AND h.start_after <= v_now;
            ELSE
                SELECT count(*) INTO v_busy FROM {schema}.job AS j
                 WHERE j.queue = p_queue AND j.group_key = v_key AND j.state = 'active';
                v_take := '{}';
                IF v_busy < pol.group_active THEN
                    SELECT coalesce(array_agg(h.id ORDER BY h.group_seq), '{}') INTO v_take
                      FROM (SELECT j.id, j.group_seq FROM {schema}.job AS j
                             WHERE j.queue = p_queue AND j.group_key = v_key
                               AND j.state < 'active' AND j.start_after <= v_now
                             ORDER BY j.group_seq
                             LIMIT pol.group_active - v_busy) AS h;
                END IF;
            END IF;
            v_cand := v_cand || v_take[1:v_room - coalesce(cardinality(v_cand), 0)];
        END LOOP;
        v_cursor := v_key;
        SELECT coalesce(array_agg(c.id), '{}') INTO v_ids FROM (
            SELECT j.id FROM {schema}.job AS j
             WHERE j.id = ANY(v_cand) AND j.state < 'active'
               FOR UPDATE SKIP LOCKED
        ) AS c;
    END IF;

    -- In claim order, as claim_work returns them (UPDATE ... RETURNING follows table order).
    RETURN QUERY
    WITH claimed AS (
        UPDATE {schema}.job AS j
           SET state = 'active', started_on = v_now, fence = j.fence + 1,
               lease_until = v_now + p_lease
         WHERE j.id = ANY(v_ids)
        RETURNING j.id, j.fence, j.retry_count, j.data, j.expire_in, j.priority, j.start_after,
                  j.created_on, j.started_on, j.singleton_key, j.lease_until
    )
    SELECT c.*, NULL::double precision FROM claimed AS c
     ORDER BY c.priority DESC, c.start_after, c.id;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;

    IF pol.rate_count IS NOT NULL OR pol.group_active IS NOT NULL THEN
        IF pol.rate_count IS NOT NULL AND v_claimed > 0 THEN
            v_at := v_at || v_now;
            v_n := v_n || v_claimed;
            IF cardinality(v_at) > 64 THEN
                v_n := ARRAY[v_n[1] + v_n[2]] || v_n[3:];
                v_at := v_at[2:];
            END IF;
        END IF;
        IF v_has_state THEN
            UPDATE {schema}.flow_state AS s
               SET rate_at = v_at, rate_n = v_n, group_cursor = v_cursor
             WHERE s.queue = p_queue;
        ELSE
            INSERT INTO {schema}.flow_state (queue, rate_at, rate_n, group_cursor)
            VALUES (p_queue, v_at, v_n, v_cursor);
        END IF;
    END IF;
END
$fn$;

-- Send one job with a throttle or debounce window on p_key (see flow_window). Returns the id of
-- the job the send ended up in: p_id when a job was written, else the job of the open window.
--
-- * throttle: the first send of a window writes the job and opens the window; later sends in
--   the window return that job's id and write nothing.
-- * debounce: the job starts once no send of the key came for p_window. A send while the
--   window's job still waits (never started) moves its start and replaces its data, priority
--   and options, keeping its id; once it started, a send writes a new job.
-- An event's copies on the queues subscribed to it (migration 0004) are written with the job,
-- and a debounced job's waiting copies change with it. The window belongs to the sending queue.
CREATE FUNCTION {schema}.send_windowed(
    p_id uuid, p_queue text, p_data jsonb, p_priority integer, p_start_after timestamptz,
    p_key text, p_debounce boolean, p_window interval, p_group_key text,
    p_retry_limit integer, p_expire_in interval
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_now timestamptz := clock_timestamp();
    v_job uuid;
    v_start timestamptz := p_start_after;
    -- An envelope's event (as JobContext reads it); its subscribers get copies.
    v_event text := CASE WHEN p_data ? 'payload' THEN p_data ->> 'event' END;
BEGIN
    -- A couple of this queue's windows that ended a while ago go with each send, so the table
    -- holds about one row per recently used key.
    DELETE FROM {schema}.flow_window AS w
     USING (SELECT o.queue, o.key FROM {schema}.flow_window AS o
             WHERE o.queue = p_queue AND o.until < v_now - interval '1 minute'
             ORDER BY o.until LIMIT 2
               FOR UPDATE SKIP LOCKED) AS old
     WHERE w.queue = old.queue AND w.key = old.key;

    IF NOT p_debounce THEN
        INSERT INTO {schema}.flow_window AS w (queue, key, job_id, until)
        VALUES (p_queue, p_key, p_id, v_now + p_window)
        ON CONFLICT (queue, key) DO UPDATE
           SET job_id = EXCLUDED.job_id, until = EXCLUDED.until
         WHERE w.until <= v_now
        RETURNING w.job_id INTO v_job;
        IF v_job IS NULL THEN
            -- The window is open (its row is locked by the ON CONFLICT): its job stands.
            SELECT w.job_id INTO v_job FROM {schema}.flow_window AS w
             WHERE w.queue = p_queue AND w.key = p_key;
            RETURN v_job;
        END IF;
    ELSE
        v_start := v_now + p_window;
        INSERT INTO {schema}.flow_window AS w (queue, key, job_id, until)
        VALUES (p_queue, p_key, p_id, v_start)
        ON CONFLICT (queue, key) DO UPDATE SET until = EXCLUDED.until
        RETURNING w.job_id INTO v_job;
        IF v_job <> p_id THEN
            UPDATE {schema}.job AS j
               SET data = p_data, priority = p_priority, start_after = v_start,
                   retry_limit = p_retry_limit, expire_in = p_expire_in
             WHERE j.id = v_job AND j.state = 'created' AND j.started_on IS NULL
            RETURNING j.id INTO v_job;
            IF FOUND THEN
                -- The event's copies that still wait move and change with it.
                UPDATE {schema}.job AS j
                   SET data = p_data, priority = p_priority, start_after = v_start,
                       retry_limit = p_retry_limit, expire_in = p_expire_in
                  FROM {schema}.subscription AS s
                 WHERE v_event IS NOT NULL AND s.domain = split_part(p_queue, '.', 1)
                   AND s.event = v_event AND s.queue <> p_queue
                   AND j.id = {schema}.fan_out_id(v_job, s.queue)
                   AND j.state = 'created' AND j.started_on IS NULL;
                RETURN v_job;
            END IF;
            UPDATE {schema}.flow_window AS w SET job_id = p_id
             WHERE w.queue = p_queue AND w.key = p_key;
        END IF;
    END IF;

    -- The job, and for an event its copies on the subscribed queues (subscription, fan_out_id:
    -- migration 0004), as event_send_one writes them.
    INSERT INTO {schema}.job (id, queue, data, priority, start_after, group_key, group_seq,
                              retry_limit, expire_in)
    SELECT d.id, d.queue, p_data, p_priority, v_start, p_group_key,
           CASE WHEN p_group_key IS NOT NULL THEN nextval('{schema}.job_group_seq') END,
           p_retry_limit, p_expire_in
    FROM (SELECT p_id AS id, p_queue AS queue
          UNION ALL
          SELECT {schema}.fan_out_id(p_id, s.queue), s.queue
          FROM {schema}.subscription AS s
          WHERE v_event IS NOT NULL AND s.domain = split_part(p_queue, '.', 1)
            AND s.event = v_event AND s.queue <> p_queue) AS d
    ON CONFLICT DO NOTHING;
    PERFORM pg_notify({channel}, q.queue)
       FROM (SELECT p_queue AS queue
             UNION
             SELECT s.queue FROM {schema}.subscription AS s
             WHERE v_event IS NOT NULL AND s.domain = split_part(p_queue, '.', 1)
               AND s.event = v_event AND s.queue <> p_queue) AS q;
    RETURN p_id;
END
$fn$;
