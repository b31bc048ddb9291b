"""What the scale curves read from the database: the job table's sizes, dead tuples and
vacuum counters, job counts by state, and the claim statement's cost (EXPLAIN ANALYZE).

The claim probe runs the worker's own `claim_work` statement (50 jobs) inside a transaction
that is rolled back: the jobs it locks are skipped by the workers for that moment and stay
queued, and the plan's execution time and buffers show what a worker's claim costs now.
`WaitSampler` tells what the run's backends were doing (on CPU, or waiting on what) by sampling
pg_stat_activity from another database, so that its own queries are not counted.
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg

from typed_queues.runtime.db.queries import queries_for

__all__ = ["WaitSampler", "claim_probe", "counters", "table_state"]

SCHEMA = "queues"
QUEUE = "bench.ticks"
MB = 1024 * 1024


def table_state(dsn: str, *, counts: bool = True) -> dict[str, Any]:
    """Sizes (MiB) of the job table, its TOAST and each index; pg_stat_user_tables counters;
    and, with `counts`, jobs by state (a full scan: seconds at millions of rows). A partitioned
    job table is summed over its partitions (and each partition is listed under `parts`)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid), pg_total_relation_size(c.oid),"
            " pg_indexes_size(c.oid), s.n_live_tup, s.n_dead_tup, s.n_tup_ins, s.n_tup_upd,"
            " s.n_tup_hot_upd, s.n_tup_del, s.autovacuum_count, s.autoanalyze_count,"
            " s.vacuum_count FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE c.relkind = 'r' AND c.oid IN"
            " (SELECT relid FROM pg_partition_tree(%(job)s::regclass)"
            " UNION ALL SELECT %(job)s::regclass) ORDER BY c.relname",
            {"job": f"{SCHEMA}.job"},
        ).fetchall()
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert rows and size is not None
        total = [sum(r[k] for r in rows) for k in range(1, 13)]
        heap, whole, indexes = total[0], total[1], total[2]
        state: dict[str, Any] = {
            "heap_mb": heap / MB,
            "indexes_mb": indexes / MB,
            "toast_mb": (whole - heap - indexes) / MB,
            "database_mb": size[0] / MB,
            "live_tuples": total[3],
            "dead_tuples": total[4],
            "inserted": total[5],
            "updated": total[6],
            "hot_updated": total[7],
            "deleted": total[8],
            "autovacuums": total[9],
            "autoanalyzes": total[10],
            "vacuums": total[11],
            "index_mb": {
                name: size / MB
                for name, size in conn.execute(
                    "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
                    " WHERE relid IN (SELECT relid FROM pg_partition_tree(%(job)s::regclass)"
                    " UNION ALL SELECT %(job)s::regclass) ORDER BY indexrelname",
                    {"job": f"{SCHEMA}.job"},
                )
            },
        }
        if len(rows) > 1:
            state["parts"] = {
                r[0]: {"heap_mb": r[1] / MB, "indexes_mb": r[3] / MB, "live_tuples": r[4],
                       "dead_tuples": r[5], "autovacuums": r[10]}
                for r in rows
            }  # fmt: skip
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
    conflicts = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while len(runs) < repeat:
            try:
                with conn.transaction(force_rollback=True):
                    cur = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim, params)
                    row = cur.fetchone()
            except psycopg.errors.SerializationFailure:
                # a partitioned job table (benchlib/variants.py): a job the claim locks was
                # moved to another partition by a concurrent completion
                conflicts += 1
                if conflicts > 10 * repeat:
                    raise
                continue
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
        "conflicts": conflicts,
    }


def counters(dsn: str) -> dict[str, int]:
    """Cumulative counters of the database (pg_stat_database) and of its job table's vacuums,
    to subtract before from after a run."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT d.blks_read, d.blks_hit, d.xact_commit, d.tup_inserted, d.tup_updated,"
            " d.tup_deleted, d.temp_bytes, sum(s.autovacuum_count), sum(s.autoanalyze_count)"
            " FROM pg_stat_database d, pg_stat_user_tables s"
            " WHERE d.datname = current_database() AND s.relid IN"
            " (SELECT relid FROM pg_partition_tree(%(job)s::regclass)"
            " UNION ALL SELECT %(job)s::regclass)"
            " GROUP BY d.blks_read, d.blks_hit, d.xact_commit, d.tup_inserted, d.tup_updated,"
            " d.tup_deleted, d.temp_bytes",
            {"job": f"{SCHEMA}.job"},
        ).fetchone()
    assert row is not None
    names = ("blks_read", "blks_hit", "commits", "inserted", "updated", "deleted", "temp_bytes",
             "autovacuums", "autoanalyzes")  # fmt: skip
    return dict(zip(names, (int(v) for v in row), strict=True))


class WaitSampler:
    """`with WaitSampler(admin_dsn, dbname) as w: ...; w.shares()`: how often the database's
    active backends were on CPU or waiting on each wait event, sampled every `interval`."""

    def __init__(self, admin_dsn: str, dbname: str, interval: float = 0.02) -> None:
        self._dsn = admin_dsn
        self._dbname = dbname
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT backend_type, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = %s AND state = 'active'",
                    (self._dbname,),
                    prepare=True,
                ).fetchall()
                self._samples += 1
                for kind, wait_type, wait in rows:
                    who = "" if kind == "client backend" else f"{kind}: "
                    self._counts[who + (f"{wait_type}:{wait}" if wait_type else "CPU")] += 1
                self._stop.wait(self._interval)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def shares(self, top: int = 8) -> dict[str, float]:
        """{what: average number of backends doing it} over the samples, the most first."""
        n = max(1, self._samples)
        return {what: round(c / n, 3) for what, c in self._counts.most_common(top)}
