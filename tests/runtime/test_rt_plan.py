"""The claim stays on its partial index at a big backlog after ANALYZE (custom, generic plans)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
from rt_support import make_queue, rows

from runtime import Boss
from runtime._sql import queries_for

pytest_plugins = ["rt_fixtures"]

_PARAMS = {"queue": "big", "limit": 10, "lease": "30 seconds"}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _job_scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (node["Node Type"], node.get("Index Name"))
        for node in _nodes(plan)
        if node.get("Relation Name") == "job" and "Scan" in node["Node Type"]
    ]


def _generic(query: bytes) -> bytes:
    for number, name in enumerate(_PARAMS, start=1):
        query = query.replace(f"%({name})s".encode(), f"${number}".encode())
    return query


async def _explain(db: psycopg.AsyncConnection[Any], query: bytes, *, generic: bool) -> Any:
    if not generic:
        cur = await db.execute(b"EXPLAIN (FORMAT JSON) " + query, _PARAMS)
        row = await cur.fetchone()
        assert row is not None
        return row[0][0]["Plan"]
    async with db.transaction():
        await db.execute(b"SET LOCAL plan_cache_mode = force_generic_plan")
        await db.execute(b"PREPARE claim_plan(text, int, interval) AS " + _generic(query))
        try:
            cur = await db.execute(
                b"EXPLAIN (FORMAT JSON) EXECUTE claim_plan('big', 10, '30 seconds')"
            )
            row = await cur.fetchone()
        finally:
            await db.execute(b"DEALLOCATE claim_plan")
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return plan[0]["Plan"]


async def test_claim_uses_its_partial_index_on_a_big_backlog(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, "big")
    await make_queue(boss, "other")
    for _ in range(10):
        await boss.send_many("big", [{"n": n} for n in range(10_000)])
    await boss.send_many("other", [{"n": n} for n in range(20_000)], priority=5)
    await boss.send_many("big", [{"n": n} for n in range(5_000)], priority=1)
    # finished history of the same queue, as a busy system has
    await rows(
        db,
        boss.schema,
        """UPDATE {schema}.job SET state = 'completed', completed_on = now()
           WHERE id IN (SELECT id FROM {schema}.job WHERE queue = 'big' AND priority = 1)""",
    )
    await db.execute(psycopg.sql.SQL("ANALYZE {}.job").format(psycopg.sql.Identifier(boss.schema)))
    claim = queries_for(boss.schema)["claim"]
    for generic in (False, True):
        plan = await _explain(db, claim, generic=generic)
        scans = _job_scans(plan)
        assert ("Seq Scan", None) not in scans, (generic, scans)
        assert any(index == "job_claim" for _, index in scans), (generic, scans)
        assert all(index in ("job_claim", "job_pkey") for _, index in scans), (generic, scans)
    # a big batch too
    cur = await db.execute(b"EXPLAIN (FORMAT JSON) " + claim, {**_PARAMS, "limit": 5000})
    row = await cur.fetchone()
    assert row is not None
    big_scans = _job_scans(row[0][0]["Plan"])
    assert ("Seq Scan", None) not in big_scans and ("Index Scan", "job_claim") in big_scans
    # batched completions and heartbeats of 1000 jobs go through the primary key
    ids = [r[0] for r in await rows(db, boss.schema, "SELECT id FROM {schema}.job LIMIT 1000")]
    q = queries_for(boss.schema)
    for name, params in (
        ("complete_many", {"ids": ids, "fences": [1] * 1000, "outputs": [None] * 1000}),
        ("heartbeat_many", {"ids": ids, "fences": [1] * 1000, "lease": "30 seconds"}),
        ("hand_back", {"ids": ids, "fences": [1] * 1000}),
    ):
        cur = await db.execute(b"EXPLAIN (FORMAT JSON) " + q[name], params)
        row = await cur.fetchone()
        assert row is not None
        assert ("Seq Scan", None) not in _job_scans(row[0][0]["Plan"]), name
    # and the claim really takes the highest priority first, 10 at a time
    jobs = await boss.fetch("big", batch_size=10)
    assert len(jobs) == 10 and all(j.priority == 0 for j in jobs)
    # maintenance finds its rows through its own partial indexes, not by scanning the backlog
    rescue_params = {"lease_error": "{}", "expire_error": "{}", "grace": "1s", "limit": 1000}
    cur = await db.execute(b"EXPLAIN (FORMAT JSON) " + q["rescue"], rescue_params)
    row = await cur.fetchone()
    assert row is not None
    assert ("Index Scan", "job_active") in _job_scans(row[0][0]["Plan"])
    cur = await db.execute(
        b"EXPLAIN (FORMAT JSON) " + q["delete_finished"], {"queue": "big", "limit": 1000}
    )
    row = await cur.fetchone()
    assert row is not None
    scans = _job_scans(row[0][0]["Plan"])
    assert ("Seq Scan", None) not in scans and any(i == "job_finished" for _, i in scans), scans
