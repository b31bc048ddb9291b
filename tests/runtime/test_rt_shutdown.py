"""Graceful shutdown: stop claiming, let running jobs finish, hand the rest back at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
from rt_support import NO_RETRY_DELAY, count_jobs, make_queue, wait_until

from typed_queues.runtime import Boss, JobContext, JobId, JobState, Worker

pytest_plugins = ["rt_fixtures"]


async def _job(boss: Boss, job_id: JobId) -> Any:
    job = await boss.get_job(job_id)
    assert job is not None
    return job


async def test_stop_finishes_short_jobs_and_hands_back_long_ones(
    fast_boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    started: set[str] = set()
    cancelled: list[str] = []

    async def handler(ctx: JobContext) -> str:
        started.add(ctx.data["kind"])
        try:
            await asyncio.sleep(ctx.data["sleep"])
        except asyncio.CancelledError:
            cancelled.append(ctx.data["kind"])
            raise
        return str(ctx.data["kind"])

    short = await fast_boss.send("q", {"kind": "short", "sleep": 0.3})
    long = await fast_boss.send("q", {"kind": "long", "sleep": 60})
    worker = Worker(fast_boss, "q", handler, concurrency=2)
    await worker.start()

    async def both_started() -> bool:
        return started == {"short", "long"}

    await wait_until(both_started)
    await asyncio.wait_for(worker.stop(timeout=1.0), 10)
    assert not worker.running
    done = await _job(fast_boss, short)
    assert (done.state, done.output) == (JobState.COMPLETED, "short")
    back = await _job(fast_boss, long)
    assert (back.state, back.retry_count, back.started_on, back.fence) == (
        JobState.CREATED,
        0,
        None,
        1,
    )
    assert cancelled == ["long"]
    late = await fast_boss.send("q", {"kind": "late", "sleep": 0})
    await asyncio.sleep(0.5)
    assert (await _job(fast_boss, late)).state is JobState.CREATED  # nothing claims any more
    assert await count_jobs(db, fast_boss.schema, "active") == 0


async def test_handed_back_retry_keeps_its_state_and_another_worker_takes_it(
    fast_boss: Boss,
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    gate = asyncio.Event()

    async def slow(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        gate.set()
        await asyncio.sleep(60)

    async def quick(ctx: JobContext) -> str:
        return f"attempt {ctx.attempt}"

    job_id = await fast_boss.send("q", {})
    first = Worker(fast_boss, "q", slow)
    await first.start()
    await asyncio.wait_for(gate.wait(), 10)
    await first.stop(timeout=0)
    back = await _job(fast_boss, job_id)
    assert (back.state, back.retry_count) == (JobState.RETRY, 1)
    second = Worker(fast_boss, "q", quick)
    await second.start()

    async def completed() -> bool:
        return (await _job(fast_boss, job_id)).state is JobState.COMPLETED

    await wait_until(completed)
    await second.stop()
    assert (await _job(fast_boss, job_id)).output == "attempt 2"


async def test_boss_stop_stops_its_workers(dsn: str, schema_name: str) -> None:
    boss = Boss(dsn, schema=schema_name)
    await boss.start()
    await make_queue(boss)
    running = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        running.set()
        await asyncio.sleep(60)

    job_id = await boss.send("q", {})
    worker = Worker(boss, "q", handler)
    await worker.start()
    await asyncio.wait_for(running.wait(), 10)
    await asyncio.wait_for(boss.stop(timeout=0.2), 10)
    assert not worker.running and not boss.started
    async with Boss(dsn, schema=schema_name) as other:
        assert (await _job(other, job_id)).state is JobState.CREATED


async def test_a_second_stop_cuts_the_grace_short(fast_boss: Boss) -> None:
    await make_queue(fast_boss)
    running = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        running.set()
        await asyncio.sleep(60)

    job_id = await fast_boss.send("q", {})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()
    await asyncio.wait_for(running.wait(), 10)
    patient = asyncio.create_task(worker.stop(timeout=60))
    await asyncio.sleep(0.2)
    assert not patient.done()
    await asyncio.wait_for(worker.stop(), 10)
    await asyncio.wait_for(patient, 10)
    assert (await _job(fast_boss, job_id)).state is JobState.CREATED


async def test_a_stuck_sync_handler_is_handed_back(fast_boss: Boss) -> None:
    await make_queue(fast_boss)
    release = threading.Event()
    entered = threading.Event()

    def handler(ctx: JobContext) -> None:
        entered.set()
        release.wait(30)

    job_id = await fast_boss.send("q", {})
    worker = fast_boss.worker("q", handler)
    await worker.start()
    await asyncio.to_thread(entered.wait, 10)
    try:
        await asyncio.wait_for(worker.stop(timeout=0.2), 10)
    finally:
        release.set()
    assert (await _job(fast_boss, job_id)).state is JobState.CREATED


async def test_stop_claiming_takes_effect_before_stop_runs(fast_boss: Boss) -> None:
    """``stop_claiming()`` (what the CLI's signal handler calls) claims nothing more at once,
    while the running job still finishes under the later ``stop()``."""
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(ctx.data["kind"])
        await release.wait()

    first = await fast_boss.send("q", {"kind": "first"})
    worker = Worker(fast_boss, "q", handler, concurrency=2)
    await worker.start()

    async def first_started() -> bool:
        return seen == ["first"]

    await wait_until(first_started)
    worker.stop_claiming()
    after = await fast_boss.send("q", {"kind": "after"})
    await asyncio.sleep(fast_boss.poll_interval + 0.2)  # a wake-up and a poll both pass
    assert seen == ["first"]
    release.set()
    await asyncio.wait_for(worker.stop(timeout=5.0), 10)
    assert (await _job(fast_boss, first)).state is JobState.COMPLETED
    waiting = await _job(fast_boss, after)
    assert (waiting.state, waiting.started_on) == (JobState.CREATED, None)
