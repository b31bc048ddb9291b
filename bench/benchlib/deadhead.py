"""The claim's cost against the jobs claimed since the job table was last vacuumed.

A claim is a non-HOT update (it changes `state`, which the partial indexes' predicates read),
so the `job_claim` index keeps an entry for every job claimed since the last VACUUM, at the
head of the order the claim reads in. This builds such a head on purpose (autovacuum off for
the table; `queued` jobs, `claimed` of them claimed and completed by the SQL floor's loop),
then times the worker's claim of 50 two ways, each rolled back:

* `claim_work` (a claim from the head, as the runtime ran every claim before the cursor and
  still runs `Worker.run_ready`'s and flow-limited queues' claims): the index scan starts at
  the head;
* `claim_work_after` with no position: the worker's claim from the start (its first claim,
  then about once a second), the same scan;
* `claim_work_after` from the position of the last job claimed: the worker's usual claim
  (runtime/worker/claim_cursor.py), whose scan starts past the head.

Then it runs VACUUM and times the plain claim again.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

import psycopg

from typed_queues.runtime import Boss, QueueSpec
from typed_queues.runtime.db.queries import queries_for

__all__ = ["dead_head"]

QUEUE = "bench.ticks"
LEASE = timedelta(seconds=30)


def _explain(conn: psycopg.Connection[Any], sql: bytes, params: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for _ in range(5):
        with conn.transaction(force_rollback=True):
            row = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()
        assert row is not None
        doc = row[0][0]
        plan = doc["Plan"]
        runs.append(
            (
                doc["Execution Time"],
                plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
            )
        )
    return {
        "ms": statistics.median(r[0] for r in runs),
        "buffers": statistics.median(r[1] for r in runs),
    }


def dead_head(dsn: str, queued: int, claimed: int) -> None:
    import asyncio

    async def setup() -> None:
        async with Boss(dsn) as boss:
            await boss.create_queue(QueueSpec(QUEUE))

    asyncio.run(setup())
    q = queries_for("queues")
    claim = q["claim_work"]
    head, sep, tail = claim.rpartition(b"\nSELECT ")
    if not sep or b"FROM claimed" not in tail:
        raise RuntimeError("claim_work changed: update benchlib/deadhead.py to the new statement")
    aggregated = head + (
        b"\nSELECT count(*)::int, array_agg(id)::text, array_agg(fence)::text FROM claimed"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE queues.job SET (autovacuum_enabled = off)")
        conn.execute(
            "INSERT INTO queues.job (id, queue, data, start_after) SELECT gen_random_uuid(), %s,"
            " '{\"i\": 0}', now() - interval '1 hour' + g * interval '1 microsecond'"
            " FROM generate_series(1, %s) g",
            (QUEUE, queued),
        )
        conn.execute("VACUUM ANALYZE queues.job")
        params = {"queue": QUEUE, "limit": 50, "lease": LEASE}
        print(f"{queued:,} queued, vacuumed: claim of 50 {_explain(conn, claim, params)}")
        t, done = time.perf_counter(), 0
        while done < claimed:
            row = conn.execute(aggregated, {**params, "limit": 500}, prepare=True).fetchone()
            assert row is not None and row[0]
            count, ids, fences = row
            nulls = "{" + ",".join(["NULL"] * count) + "}"
            conn.execute(
                q["complete_many"], {"ids": ids, "fences": fences, "outputs": nulls}, prepare=False
            )
            done += count
        print(f"claimed and completed {done:,} in {time.perf_counter() - t:.1f} s, no vacuum")
        last = conn.execute(
            "SELECT priority, start_after, id FROM queues.job WHERE state = 'completed'"
            " ORDER BY priority, start_after DESC, id DESC LIMIT 1"
        ).fetchone()
        assert last is not None
        position = dict(zip(("priority", "start_after", "id"), last, strict=True))
        start = {"priority": None, "start_after": None, "id": None}
        plain = _explain(conn, claim, params)
        from_start = _explain(conn, q["claim_work_after"], {**params, **start})
        cursor = _explain(conn, q["claim_work_after"], {**params, **position})
        print(f"  claim of 50, claim_work (from the head):      {plain}")
        print(f"  claim of 50, claim_work_after from the start: {from_start}")
        print(f"  claim of 50, claim_work_after from the cursor: {cursor}")
        conn.execute("VACUUM queues.job")
        print(f"after VACUUM: claim of 50 {_explain(conn, claim, params)}")
