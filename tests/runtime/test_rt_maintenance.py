"""Maintenance: retention in bounded batches, one process at a time under an advisory lock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from rt_support import count_jobs, make_queue, rows

from typed_queues.runtime import Boss

pytest_plugins = ["rt_fixtures"]


async def test_retention_deletes_old_finished_jobs_in_batches(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, "short", retention=timedelta(hours=1))
    await make_queue(boss, "long", retention=timedelta(days=30))
    await boss.send_many("short", [{}] * 30)
    await boss.send_many("long", [{}] * 5)
    await rows(
        db,
        boss.schema,
        "UPDATE {schema}.job SET state = 'completed', completed_on = now() - interval '2 hours'",
    )
    await rows(
        db,
        boss.schema,
        """UPDATE {schema}.job SET state = 'failed' WHERE id IN
           (SELECT id FROM {schema}.job WHERE queue = 'short' LIMIT 3)""",
    )
    await boss.send_many("short", [{}] * 4)  # queued: never deleted
    fresh = await boss.send("short", {})
    await boss.fetch("short", batch_size=1)
    [active] = await boss.fetch("short")
    await boss.complete(active.id)  # finished just now: kept
    result = await boss.run_maintenance(batch=10)
    assert result is not None and result.deleted == 30
    assert await count_jobs(db, boss.schema) == 5 + 4 + 1
    assert (await boss.get_job(fresh)) is not None


async def test_one_process_at_a_time(boss: Boss, dsn: str) -> None:
    await make_queue(boss)
    async with await psycopg.AsyncConnection.connect(dsn) as other:
        await other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"queues.maintenance:{boss.schema}",),
        )
        assert await boss.run_maintenance(batch=10) is None
        await other.rollback()
    assert await boss.run_maintenance(batch=10) is not None


async def test_rescue_leaves_live_leases_alone(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    await boss.send_many("q", [{}] * 3)
    jobs = await boss.fetch("q", batch_size=3)
    await rows(
        db,
        boss.schema,
        "UPDATE {schema}.job SET lease_until = now() - interval '1 second' WHERE id = %s",
        jobs[0].id,
    )
    result = await boss.run_maintenance(batch=10)
    assert result is not None and result.rescued == 1
    states = {j.id: (await boss.get_job(j.id)).state for j in jobs}  # type: ignore[union-attr]
    assert sorted(states.values()) == ["active", "active", "retry"]
