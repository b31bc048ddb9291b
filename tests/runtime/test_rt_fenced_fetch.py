"""Fenced manual finishing and cancellation seen by handlers.

A job fetched with ``fetch()`` and finished with ``complete(job)`` / ``fail(job)`` is fenced
like a worker's: once it was re-claimed (its lease ran out and another caller fetched it), the
stale caller's write changes nothing. A handler whose run the worker gave up on sees it in
``job.cancelled``, so a sync handler (which cannot be interrupted) can stop.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from rt_support import make_queue, rows, wait_until

from typed_queues.runtime import (
    Boss,
    JobCancelledError,
    JobContext,
    JobState,
    RetryPolicy,
)

pytest_plugins = ["rt_fixtures"]


async def _reclaimed(boss: Boss, db: psycopg.AsyncConnection[Any]) -> tuple[Any, Any]:
    """A job fetched twice: the first claim stale, the second current."""
    await make_queue(boss, retry=RetryPolicy(limit=3, delay=timedelta(0)))
    job_id = await boss.send("q", {})
    [first] = await boss.fetch("q")
    await rows(db, boss.schema, "UPDATE {schema}.job SET state = 'retry' WHERE id = %s", job_id)
    [second] = await boss.fetch("q")
    assert (first.id, first.fence, second.fence) == (job_id, 1, 2)
    return first, second


async def test_complete_with_a_stale_fetched_job_changes_nothing(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    first, second = await _reclaimed(boss, db)
    assert not await boss.complete(first, "stale")
    job = await boss.get_job(first.id)
    assert job is not None and job.state is JobState.ACTIVE and job.output is None
    assert await boss.complete(second, "current")
    job = await boss.get_job(first.id)
    assert job is not None and job.state is JobState.COMPLETED and job.output == "current"


async def test_fail_with_a_stale_fetched_job_changes_nothing(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    first, second = await _reclaimed(boss, db)
    assert not await boss.fail(first, "stale")
    job = await boss.get_job(first.id)
    assert job is not None and job.state is JobState.ACTIVE
    assert await boss.fail(second, "current")
    job = await boss.get_job(first.id)
    assert job is not None and job.state is JobState.RETRY


async def test_a_job_id_alone_still_finishes_unfenced(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    first, _ = await _reclaimed(boss, db)
    assert await boss.complete(first.id, "by id")


async def test_a_sync_handler_sees_its_run_given_up(boss: Boss) -> None:
    await make_queue(boss, expire_in=timedelta(seconds=1))
    seen: list[str] = []
    started = threading.Event()

    def handler(ctx: JobContext) -> None:
        started.set()
        for _ in range(200):  # at most 10 s
            try:
                ctx.raise_if_cancelled()
            except JobCancelledError:
                seen.append("cancelled")
                return
            threading.Event().wait(0.05)
        seen.append("ran to the end")

    await boss.send("q", {})
    worker = boss.worker("q", handler, concurrency=1)
    await worker.start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)

        async def stopped() -> bool:
            return bool(seen)

        await wait_until(stopped, within=10)
    finally:
        await worker.stop(timeout=2)
    assert seen == ["cancelled"]


def test_a_fresh_context_is_not_cancelled() -> None:
    from typed_queues.runtime import JobId
    from typed_queues.runtime.db.ids import new_job_id

    ctx = JobContext(JobId(new_job_id()), "q", {})
    assert not ctx.cancelled
    ctx.raise_if_cancelled()
    ctx.mark_cancelled()
    with pytest.raises(JobCancelledError, match="given up"):
        ctx.raise_if_cancelled()
