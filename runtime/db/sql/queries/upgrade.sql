-- Named queries of rolling upgrades: the oldest code version a schema still accepts. Loaded by
-- runtime/db/queries.py and run only by runtime/db/store.py. {schema} becomes the quoted schema
-- name; everything else is a bound parameter (%(name)s).

-- name: schema_compatible_from
-- The oldest code version the schema still accepts: the largest declared floor. Read through
-- to_jsonb so that it also works on a version table without the column (before 0005).
SELECT coalesce(max(coalesce((to_jsonb(v) ->> 'compatible_from')::int, v.version)), 0)
FROM {schema}.version AS v;

-- name: schema_record_compatible_from
UPDATE {schema}.version AS v
SET compatible_from = f.compatible_from
FROM unnest(%(versions)s::int[], %(floors)s::int[]) AS f(version, compatible_from)
WHERE v.version = f.version AND v.compatible_from IS NULL;
