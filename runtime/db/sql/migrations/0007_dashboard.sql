-- compatible-from: 1
-- Additive only (a statistics object): code of any earlier version keeps running against it.
-- The dashboard: statistics on the pair (queue, state) of the job table, so that the dashboard
-- can estimate a queue's count in a state from the planner's statistics instead of counting a
-- big range of rows. ANALYZE (and autovacuum's) fills it with the most common pairs and their
-- share of the table (pg_stats_ext); nothing reads it on the hot paths.
CREATE STATISTICS {schema}.job_queue_state (mcv) ON queue, state FROM {schema}.job;
