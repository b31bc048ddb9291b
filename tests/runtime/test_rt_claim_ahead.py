"""Claim-ahead: a worker whose handlers finish faster than a claim takes claims more jobs than
its free slots; it never runs more than ``concurrency`` at once, and at stop the jobs it
claimed but never started go back to the queue without using an attempt."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
from rt_support import count_jobs, make_queue, rows, wait_until

from typed_queues.runtime import Boss, JobContext, JobId, Worker

pytest_plugins = ["rt_fixtures"]


async def test_fast_handlers_never_exceed_concurrency_and_each_job_runs_once(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    total = 2000
    await boss.send_many("q", [{"n": n} for n in range(total)])
    runs: Counter[JobId] = Counter()
    running = 0
    most = 0

    async def handler(ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs[ctx.id] += 1
        if ctx.data["n"] % 7 == 0:
            await asyncio.sleep(0)  # some handlers yield, so several run at once
        running -= 1

    worker = Worker(boss, "q", handler, concurrency=4)
    await worker.start()

    async def all_completed() -> bool:
        return await count_jobs(db, boss.schema, "completed") == total

    try:
        await wait_until(all_completed, within=60)
    finally:
        await worker.stop(timeout=5)
    assert most <= 4
    assert len(runs) == total and set(runs.values()) == {1}


async def test_stop_hands_back_jobs_claimed_ahead_unstarted(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    total = 400
    await boss.send_many("q", [{"n": n} for n in range(total)])
    release = asyncio.Event()
    started: list[int] = []

    async def handler(ctx: JobContext) -> None:
        started.append(ctx.data["n"])
        if len(started) > 100:  # fast at first (claims grow ahead), then every slot blocks
            await release.wait()

    worker = Worker(boss, "q", handler, concurrency=3)
    await worker.start()

    async def blocked() -> bool:
        return len(started) >= 103

    await wait_until(blocked, within=30)
    # (here the worker usually holds 2-3 jobs claimed ahead besides the 3 blocked ones)
    await worker.stop(timeout=0.2)
    release.set()
    states = dict(
        await rows(
            db,
            boss.schema,
            "SELECT state::text, count(*) FROM {schema}.job GROUP BY state",
        )
    )
    completed = states.get("completed", 0)
    # Nothing is left active, nothing used an attempt, and every job that did not complete
    # (the blocked ones and those claimed ahead) is queued again.
    assert "active" not in states, states
    assert completed + states.get("created", 0) == total, states
    assert completed == len(started) - 3, (states, len(started))
    retried = await rows(db, boss.schema, "SELECT id FROM {schema}.job WHERE retry_count > 0")
    assert not retried


async def test_jobs_claimed_ahead_go_back_when_the_handlers_get_slow(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss)
    total = 400
    await boss.send_many("q", [{"n": n} for n in range(total)])
    release = asyncio.Event()
    started: list[int] = []

    async def handler(ctx: JobContext) -> None:
        started.append(ctx.data["n"])
        if len(started) > 100:
            await release.wait()

    worker = Worker(boss, "q", handler, concurrency=3)
    await worker.start()

    async def only_the_blocked_ones_are_active() -> bool:
        return len(started) >= 103 and await count_jobs(db, boss.schema, "active") == 3

    try:
        # within about a second, the jobs claimed ahead are queued again for other workers
        await wait_until(only_the_blocked_ones_are_active, within=30)
        assert len(started) == 103
    finally:
        release.set()
        await worker.stop(timeout=5)
    retried = await rows(db, boss.schema, "SELECT id FROM {schema}.job WHERE retry_count > 0")
    assert not retried


async def test_jobs_claimed_ahead_start_without_waiting_for_the_poll_interval(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    # The last claim of a backlog returns fewer jobs than asked; those claimed ahead of the
    # free slots must still start as slots free up, not after the next poll.
    await make_queue(boss)
    total = 3000
    await boss.send_many("q", [{"n": n} for n in range(total)])
    runs: Counter[JobId] = Counter()

    async def handler(ctx: JobContext) -> None:
        runs[ctx.id] += 1

    worker = Worker(boss, "q", handler, concurrency=50, poll_interval=timedelta(minutes=5))
    await worker.start()

    async def all_completed() -> bool:
        return await count_jobs(db, boss.schema, "completed") == total

    try:
        await wait_until(all_completed, within=60)
    finally:
        await worker.stop(timeout=5)
    assert len(runs) == total and set(runs.values()) == {1}


async def test_slow_handlers_hold_no_jobs_beyond_their_slots(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    # Claim-ahead holds what the handlers finish in ~50 ms: at 0.2 s per job and 2 slots
    # (10 jobs/s, well under the 20 jobs/s it takes to hold one), nothing. Every job is left
    # in the queue for other workers until a slot is free. (Sampled in the worker: the
    # table's active count also holds finished jobs whose batched completion is not written
    # yet, which a loaded machine delays.)
    await make_queue(boss)
    await boss.send_many("q", [{"n": n} for n in range(12)])

    async def handler(ctx: JobContext) -> None:
        await asyncio.sleep(0.2)

    worker = Worker(boss, "q", handler, concurrency=2)
    await worker.start()
    most_active = most_held = 0
    try:
        for _ in range(50):
            await asyncio.sleep(0.02)
            most_active = max(most_active, worker.active_jobs)
            most_held = max(most_held, worker.held_jobs)
    finally:
        await worker.stop(timeout=5)
    assert 0 < most_active <= 2
    assert most_held == 0
    assert (
        await count_jobs(db, boss.schema, "created")
        + await count_jobs(db, boss.schema, "completed")
        == 12
    )
