-- Statements of the test helpers (runtime/testing.py, through Boss.jobs_of / Boss.make_due):
-- reading back what was enqueued, making delayed jobs due, dropping a throwaway schema.
-- The queue itself never runs them.

-- name: testing_jobs_of
SELECT id, state::text, data FROM {schema}.job
WHERE queue = %(queue)s AND (%(event)s::text IS NULL OR data->>'event' = %(event)s::text)
ORDER BY created_on, id;

-- name: testing_make_due
UPDATE {schema}.job SET start_after = now()
WHERE queue = ANY(%(queues)s::text[]) AND state < 'active' AND start_after > now()
  AND (%(within)s::interval IS NULL OR start_after <= now() + %(within)s::interval);

-- name: testing_schema_drop
DROP SCHEMA IF EXISTS {schema} CASCADE;
