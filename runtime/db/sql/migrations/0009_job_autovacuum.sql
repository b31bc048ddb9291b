-- compatible-from: 1
-- Storage parameters only: no column, index or function changes, so code of any earlier version
-- keeps running against it. ALTER TABLE ... SET (autovacuum_*) takes a SHARE UPDATE EXCLUSIVE
-- lock, which does not conflict with the reads and writes of running processes.
--
-- The job table is vacuumed by row count and unthrottled, instead of by a share of its size
-- with the default cost delay. Every claim and every completion is a non-HOT update (state is
-- read by the partial indexes' predicates) and retention deletes what completions wrote, so a
-- busy queue leaves dead versions at a steady rate; the claim index keeps an entry for every
-- job claimed since the last vacuum at the head of the order claims read in. By default a pass
-- waits until the dead rows are a share of the whole table (retained history included) and
-- then runs throttled, so passes come late and last long while the table grows. Here a pass
-- starts after 20,000 dead or inserted rows (seen at the next autovacuum_naptime) and runs at
-- full speed; ANALYZE follows every 50,000 changed rows. These are the measured
-- `eager-autovacuum` settings (bench/benchlib/variants.py, bench/PROFILE.md, issue 17).
-- Autovacuum must be on for the server (it is by default) for any of this to apply.
--
-- job_archive is left alone: its rows are written once (moved there by retention) and deleted
-- once (after the archive duration), never updated, and no hot path reads the head of its
-- indexes; the default share-of-the-table trigger suits it.
ALTER TABLE {schema}.job SET (
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 50000
);
