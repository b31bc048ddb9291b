"""The claim's cost against the jobs claimed since the job table was last vacuumed.

A claim is a non-HOT update (it changes `state`, which the partial indexes' predicates read),
so the `job_claim` index keeps an entry for every job claimed since the last VACUUM, at the
head of the order the claim reads in. This builds such a head on purpose (autovacuum off for
the table; `queued` jobs, `claimed` of them claimed and completed by the SQL floor's loop),
then times the worker's claim of 50 two ways, each rolled back:

* as the runtime runs it (`claim_work`): the index scan starts at the head;
* with a cursor: the same statement with `AND priority = 0 AND (start_after, id) > (t, id)`,
  t and id those of the last job claimed, so that the scan starts past the head (the proposed
  fix; a worker would keep one cursor per priority and rescan from the start now and then for
  jobs due earlier than the cursor).

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


def _cursor_claim(claim: bytes) -> bytes:
    """`claim_work` whose inner SELECT starts after the cursor (%(after)s, %(after_id)s)."""
    cond = b"WHERE queue = %(queue)s AND state < 'active' AND start_after <= now()"
    if cond not in claim:
        raise RuntimeError("claim_work changed: update benchlib/deadhead.py to the new statement")
    return claim.replace(
        cond,
        cond
        + b" AND priority = 0 AND (start_after, id) > (%(after)s::timestamptz, %(after_id)s::uuid)",
        1,
    )


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
        b"\nSELECT count(*)::int, array_agg(id)::text, array_agg(fence)::text,"
        b" max(start_after), max(id::text) FROM claimed"
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
        after: Any = None
        after_id: Any = None
        while done < claimed:
            row = conn.execute(aggregated, {**params, "limit": 500}, prepare=True).fetchone()
            assert row is not None and row[0]
            count, ids, fences, after, after_id = row
            nulls = "{" + ",".join(["NULL"] * count) + "}"
            conn.execute(
                q["complete_many"], {"ids": ids, "fences": fences, "outputs": nulls}, prepare=False
            )
            done += count
        print(f"claimed and completed {done:,} in {time.perf_counter() - t:.1f} s, no vacuum")
        plain = _explain(conn, claim, params)
        cursor = _explain(
            conn, _cursor_claim(claim), {**params, "after": after, "after_id": after_id}
        )
        print(f"  claim of 50 as the runtime runs it: {plain}")
        print(f"  claim of 50 from a cursor:          {cursor}")
        conn.execute("VACUUM queues.job")
        print(f"after VACUUM: claim of 50 {_explain(conn, claim, params)}")
