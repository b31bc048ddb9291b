"""The claim stays on its partial index at a big backlog after ANALYZE (custom, generic plans)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
from rt_support import count_jobs, make_queue, rows, scalar, wait_until

from typed_queues.runtime import Boss, JobContext, JobId, Worker
from typed_queues.runtime.db.queries import queries_for

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


# -- writes by id after ANALYZE of a backlog with no active job -----------------------------
#
# With no active job at ANALYZE time the planner believes the partial index job_active holds
# about one row, and would read all of it (every live active job plus a dead entry per job
# finished since the last vacuum) for each batched write instead of looking the ids up in the
# primary key: writes slowed down with load until completions fell behind the lease and jobs
# ran twice. Every write by id must use job_pkey whatever the statistics.

_PLACEHOLDER = re.compile(rb"%\((\w+)\)[sb]")


def _numbered(query: bytes) -> tuple[bytes, list[str]]:
    """``query`` with its %(name)s placeholders as $1, $2, ... in order of first use."""
    names: list[str] = []

    def number(match: re.Match[bytes]) -> bytes:
        name = match[1].decode()
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}".encode()

    return _PLACEHOLDER.sub(number, query), names


async def _prepared_plan(
    db: psycopg.AsyncConnection[Any], query: bytes, params: dict[str, Any], *, generic: bool
) -> dict[str, Any]:
    """The plan of ``query`` run as a prepared statement (as the runtime runs its writes) with
    a forced custom or generic plan."""
    numbered, names = _numbered(query)
    mode = b"force_generic_plan" if generic else b"force_custom_plan"
    cur = psycopg.AsyncClientCursor(db)
    async with db.transaction(force_rollback=True):
        await db.execute(b"SET LOCAL plan_cache_mode = " + mode)
        await db.execute(b"PREPARE write_plan AS " + numbered)
        try:
            args = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(params[n]) for n in names)
            await cur.execute(
                psycopg.sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE write_plan({})").format(args)
            )
            row = await cur.fetchone()
        finally:
            await db.execute(b"DEALLOCATE write_plan")
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return dict(plan[0]["Plan"])


def _uses_only_the_primary_key(plan: dict[str, Any], *, or_seq_scan: bool = False) -> None:
    """The job table is read through job_pkey only (an index scan or a bitmap of it); with
    ``or_seq_scan``, a sequential scan is accepted instead (costed on the table's real size),
    a partial index never."""
    scans = _job_scans(plan)
    indexes = {
        node["Index Name"] for node in _nodes(plan) if node.get("Index Name", "").startswith("job_")
    }
    if or_seq_scan and scans == [("Seq Scan", None)]:
        return
    assert ("Seq Scan", None) not in scans, scans
    assert indexes == {"job_pkey"}, (indexes, scans)


async def _backlog_without_active_jobs(boss: Boss, db: psycopg.AsyncConnection[Any]) -> None:
    await make_queue(boss, "big")
    for _ in range(6):
        await boss.send_many("big", [{"n": n} for n in range(10_000)])
    # a finished history too (job_finished must not be chosen either)
    await rows(
        db,
        boss.schema,
        """UPDATE {schema}.job SET state = 'completed', completed_on = now()
           WHERE id IN (SELECT id FROM {schema}.job ORDER BY id LIMIT 5000)""",
    )
    await db.execute(psycopg.sql.SQL("ANALYZE {}.job").format(psycopg.sql.Identifier(boss.schema)))


async def test_writes_by_id_use_the_primary_key_after_analyze_with_no_active_job(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await _backlog_without_active_jobs(boss, db)
    q = queries_for(boss.schema)
    queued = [r[0] for r in await rows(db, boss.schema, "SELECT id FROM {schema}.job LIMIT 1000")]
    # (batches are up to a few hundred; at 1000 ids of a 60k table a sequential scan may be
    # cheaper and is allowed, a partial index is not)
    for size in (1, 50, 200, 1000):
        ids = queued[:size]
        fences = [1] * size
        batched: list[tuple[str, dict[str, Any]]] = [
            ("complete_many", {"ids": ids, "fences": fences, "outputs": ['{"ok": 1}'] * size}),
            ("heartbeat_many", {"ids": ids, "fences": fences, "lease": "30 seconds"}),
            ("hand_back", {"ids": ids, "fences": fences}),
        ]
        for name, params in batched:
            # as the runtime sends them: unprepared, bound on the server (a custom plan)
            cur = await db.execute(b"EXPLAIN (FORMAT JSON) " + q[name], params)
            row = await cur.fetchone()
            assert row is not None
            _uses_only_the_primary_key(row[0][0]["Plan"], or_seq_scan=size == 1000)
    one = queued[0]
    for name, params in (
        ("complete_one", {"id": one, "output": '{"ok": 1}', "fence": 1}),
        ("cancel", {"id": one}),
        ("resume", {"id": one}),
        ("retry", {"id": one}),
    ):
        for generic in (False, True):
            _uses_only_the_primary_key(await _prepared_plan(db, q[name], params, generic=generic))


async def test_fail_jobs_uses_the_primary_key_after_analyze_with_no_active_job(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await _backlog_without_active_jobs(boss, db)
    # The body of the SQL function, planned as PostgreSQL plans it (parameters, no values).
    source = await scalar(
        db,
        boss.schema,
        """SELECT p.prosrc FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname = %s AND p.proname = 'fail_jobs'""",
        boss.schema,
    )
    body = source.strip().rstrip(";")
    for number, name in enumerate(("p_ids", "p_fences", "p_errors", "p_permanent"), start=1):
        body = re.sub(rf"\b{name}\b", f"${number}", body)
    queued = [r[0] for r in await rows(db, boss.schema, "SELECT id FROM {schema}.job LIMIT 50")]
    async with db.transaction(force_rollback=True):
        await db.execute(b"SET LOCAL plan_cache_mode = force_generic_plan")
        await db.execute(
            b"PREPARE fail_plan(uuid[], int[], jsonb[], boolean[]) AS " + body.encode()
        )
        try:
            cur = psycopg.AsyncClientCursor(db)
            await cur.execute(
                "EXPLAIN (FORMAT JSON) EXECUTE fail_plan(%s, %s, %s::jsonb[], %s)",
                (queued, [1] * 50, ['{"error": "x"}'] * 50, [False] * 50),
            )
            row = await cur.fetchone()
        finally:
            await db.execute(b"DEALLOCATE fail_plan")
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    _uses_only_the_primary_key(plan[0]["Plan"])
    # one primary-key lookup per id: the id list is not rescanned for every job row
    for node in _nodes(plan[0]["Plan"]):
        if node["Node Type"] == "Nested Loop":
            inner = node["Plans"][1]
            assert all(n["Node Type"] != "Function Scan" for n in _nodes(inner)), node


async def test_no_job_runs_twice_at_concurrency_50_after_analyze_with_no_active_job(
    dsn: str, schema_name: str
) -> None:
    # A short lease: completions that fall behind it (the symptom of a bad write plan) get
    # their jobs rescued and run again, which the counts below would show.
    boss = Boss(
        dsn,
        schema=schema_name,
        lease=timedelta(seconds=2),
        maintenance_interval=timedelta(milliseconds=300),
    )
    await boss.start()
    try:
        await make_queue(boss, "work")
        await make_queue(boss, "other")
        for _ in range(4):
            await boss.send_many("other", [{"n": n} for n in range(10_000)])
        # (10,000 jobs: with the write plan over job_active this ran 4x slower and ~40% of
        # the jobs twice; 4,000 were not enough to show it)
        total = 10_000
        await boss.send_many("work", [{"n": n} for n in range(total)])
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as db:
            await db.execute(
                psycopg.sql.SQL("ANALYZE {}.job").format(psycopg.sql.Identifier(schema_name))
            )
            runs: Counter[JobId] = Counter()

            async def processor(ctx: JobContext) -> None:
                runs[ctx.id] += 1

            worker = Worker(boss, "work", processor, concurrency=50)
            await worker.start()

            async def all_completed() -> bool:
                return await count_jobs(db, schema_name, "completed") >= total

            try:
                await wait_until(all_completed, within=120)
            finally:
                await worker.stop(timeout=5)
            assert len(runs) == total
            twice = {job_id: n for job_id, n in runs.items() if n > 1}
            assert not twice, f"{len(twice)} jobs ran more than once"
            retried = await scalar(
                db,
                schema_name,
                "SELECT count(*) FROM {schema}.job WHERE queue = 'work' AND retry_count > 0",
            )
            assert retried == 0
    finally:
        await boss.stop(timeout=5)
