"""What the scale curves read from the database: the job table's sizes, dead tuples and
vacuum counters, job counts by state, and the claim statement's cost (EXPLAIN ANALYZE).

The claim probe runs the worker's own `claim_work` statement (50 jobs) inside a transaction
that is rolled back: the jobs it locks are skipped by the workers for that moment and stay
queued, and the plan's execution time and buffers show what a worker's claim costs now.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

import psycopg

from typed_queues.runtime.db.queries import queries_for

__all__ = ["claim_probe", "table_state"]

SCHEMA = "queues"
QUEUE = "bench.ticks"
MB = 1024 * 1024


def table_state(dsn: str, *, counts: bool = True) -> dict[str, Any]:
    """Sizes (MiB) of the job table, its TOAST and each index; pg_stat_user_tables counters;
    and, with `counts`, jobs by state (a full scan: seconds at millions of rows)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_relation_size(c.oid), pg_total_relation_size(c.oid),"
            " pg_indexes_size(c.oid), s.n_live_tup, s.n_dead_tup, s.n_tup_ins, s.n_tup_upd,"
            " s.n_tup_hot_upd, s.n_tup_del, s.autovacuum_count, s.autoanalyze_count,"
            " s.vacuum_count, pg_database_size(current_database())"
            " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE c.oid = %s::regclass",
            (f"{SCHEMA}.job",),
        ).fetchone()
        assert row is not None
        heap, total, indexes = row[0], row[1], row[2]
        state: dict[str, Any] = {
            "heap_mb": heap / MB,
            "indexes_mb": indexes / MB,
            "toast_mb": (total - heap - indexes) / MB,
            "database_mb": row[12] / MB,
            "live_tuples": row[3],
            "dead_tuples": row[4],
            "inserted": row[5],
            "updated": row[6],
            "hot_updated": row[7],
            "deleted": row[8],
            "autovacuums": row[9],
            "autoanalyzes": row[10],
            "vacuums": row[11],
            "index_mb": {
                name: size / MB
                for name, size in conn.execute(
                    "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
                    " WHERE relid = %s::regclass ORDER BY indexrelname",
                    (f"{SCHEMA}.job",),
                )
            },
        }
        if counts:
            state["jobs"] = {
                s: n
                for s, n in conn.execute(
                    f"SELECT state::text, count(*) FROM {SCHEMA}.job GROUP BY state"  # noqa: S608
                )
            }
    return state


def claim_probe(dsn: str, repeat: int = 3, limit: int = 50) -> dict[str, Any]:
    """The worker's claim of `limit` jobs, run `repeat` times under EXPLAIN (ANALYZE, BUFFERS)
    and rolled back: median execution and planning time (ms), buffers touched, rows claimed."""
    claim = queries_for(SCHEMA)["claim_work"]
    params = {"queue": QUEUE, "limit": limit, "lease": timedelta(seconds=30)}
    runs: list[tuple[float, float, int, int]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(repeat):
            with conn.transaction(force_rollback=True):
                cur = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim, params)
                row = cur.fetchone()
            assert row is not None
            doc = row[0][0]
            plan = doc["Plan"]
            buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
            runs.append(
                (doc["Execution Time"], doc.get("Planning Time", 0.0), buffers,
                 plan.get("Actual Rows", 0))
            )  # fmt: skip
    return {
        "exec_ms": statistics.median(r[0] for r in runs),
        "plan_ms": statistics.median(r[1] for r in runs),
        "buffers": int(statistics.median(r[2] for r in runs)),
        "rows": int(statistics.median(r[3] for r in runs)),
    }
