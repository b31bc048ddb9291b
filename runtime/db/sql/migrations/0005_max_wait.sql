-- compatible-from: 1
-- Additive only: code of any earlier version keeps running against a schema with this
-- migration applied (the header above declares it; see runtime/db/migrations.py).

-- How long a job may wait to start (state created or retry, counted from its start_after, the
-- time it became due) before maintenance fails it as WaitExpired. NULL, the default, is no limit.
ALTER TABLE {schema}.queue ADD COLUMN max_wait interval
    CONSTRAINT queue_max_wait_positive CHECK (max_wait > interval '0');

-- The oldest code, by schema version, that still runs correctly once this version is applied
-- (each migration's `-- compatible-from:` header). Code older than the database starts when
-- the largest value is at most its own version. Rows recorded before this column existed are
-- filled in by the migrating code.
ALTER TABLE {schema}.version ADD COLUMN compatible_from integer;
