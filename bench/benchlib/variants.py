"""Experimental variants of the job table for the sustained run (`--sustained-variant`).

Not the product: each variant changes a benchmark database after the runtime's migrations, to
measure a proposed fix before anyone changes the runtime (bench/PROFILE.md reports them):

* `eager-autovacuum`: the job table's autovacuum triggered by a fixed number of dead or
  inserted rows instead of a share of the table, and not throttled;
* `live-partition`: the job table LIST-partitioned by state, queued and active jobs in one
  partition and finished jobs in another, so that a claim, a completion's write and autovacuum
  of the live rows work on a table the size of the backlog, not of the retained history.
  Primary key and singleton uniqueness become per partition (a partitioned table's unique
  index must hold the partition key), which is one of the things a real migration would have
  to solve; the runtime's statements run unchanged.
"""

from __future__ import annotations

import psycopg

__all__ = ["VARIANTS", "apply_variant"]

_EAGER = """
ALTER TABLE queues.job SET (
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 50000
);
"""


def _live_partition(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Rebuild queues.job as a partitioned table with the same columns and indexes."""
    indexes: list[tuple[str, str]] = [
        (str(name), str(definition))
        for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'queues' AND tablename = 'job' AND indexname <> 'job_pkey'"
        )
    ]
    options = "fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02," \
        " autovacuum_vacuum_insert_scale_factor = 0.05"  # fmt: skip
    with conn.transaction():
        conn.execute("ALTER TABLE queues.job RENAME TO job_plain")
        for name, _ in indexes:
            conn.execute(f'ALTER INDEX queues."{name}" RENAME TO "{name}_plain"')
        conn.execute(
            "CREATE TABLE queues.job (LIKE queues.job_plain INCLUDING DEFAULTS"
            " INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY LIST (state)"
        )
        conn.execute(
            "CREATE TABLE queues.job_live PARTITION OF queues.job"
            f" FOR VALUES IN ('created', 'retry', 'active') WITH ({options})"
        )
        conn.execute(
            "CREATE TABLE queues.job_done PARTITION OF queues.job"
            f" FOR VALUES IN ('completed', 'cancelled', 'failed') WITH ({options})"
        )
        for part in ("job_live", "job_done"):
            conn.execute(f"ALTER TABLE queues.{part} ADD CONSTRAINT {part}_pkey PRIMARY KEY (id)")
        for name, definition in indexes:
            if definition.startswith("CREATE UNIQUE INDEX"):  # unique per partition only
                for part in ("job_live", "job_done"):
                    renamed = f"INDEX {name}_{part} ON queues.{part} "
                    conn.execute(definition.replace(f"INDEX {name} ON queues.job ", renamed))
            else:
                conn.execute(definition)
        conn.execute("INSERT INTO queues.job SELECT * FROM queues.job_plain")
        conn.execute("DROP TABLE queues.job_plain")


def apply_variant(dsn: str, variant: str) -> None:
    """Change the benchmark database at `dsn` (migrated, queues created) into `variant`."""
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if variant == "eager-autovacuum":
            conn.execute(_EAGER)
        else:
            _live_partition(conn)


VARIANTS = ("eager-autovacuum", "live-partition")
