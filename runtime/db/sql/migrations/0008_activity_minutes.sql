-- compatible-from: 1
-- Additive only (two new tables): code of any earlier version keeps running against it.
-- The dashboard's last hour, kept per minute: maintenance adds the figures of each minute that
-- ended (jobs finished in it, completed and failed or cancelled, and the earliest due time of
-- the jobs that stopped waiting in it), so that the dashboard reads about 60 rows per queue and
-- only the minutes since the mark from the job table. Nothing on the hot paths writes them.
CREATE TABLE {schema}.job_minute (
    queue text NOT NULL,
    minute timestamptz NOT NULL,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    earliest_left timestamptz,
    PRIMARY KEY (queue, minute)
);

-- One row: every job finished before upto is counted in job_minute.
CREATE TABLE {schema}.job_minute_mark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto timestamptz NOT NULL
);
