"""A claimed batch comes back, and starts, in claim order: higher priority first, then the
longest waiting. Jobs are sent lowest priority first, so table order is the reverse."""

from __future__ import annotations

import asyncio

from rt_support import make_queue, wait_until

from typed_queues.runtime import Boss, JobContext, Worker

pytest_plugins = ["rt_fixtures"]


async def test_fetch_returns_a_batch_in_priority_order(boss: Boss) -> None:
    await make_queue(boss)
    for priority in range(10):
        await boss.send("q", {"p": priority}, priority=priority)
    jobs = await boss.fetch("q", batch_size=10)
    assert [job.priority for job in jobs] == list(range(9, -1, -1))


async def test_a_worker_starts_a_claimed_batch_in_priority_order(boss: Boss) -> None:
    await make_queue(boss)
    for priority in range(8):
        await boss.send("q", {"p": priority}, priority=priority)
    started: list[int] = []
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        started.append(int(ctx.data["p"]))
        await release.wait()

    worker = Worker(boss, "q", handler, concurrency=8)
    await worker.start()
    try:

        async def all_started() -> bool:
            return len(started) == 8

        await wait_until(all_started, within=10)
    finally:
        release.set()
        await worker.stop(timeout=5)
    assert started == list(range(7, -1, -1))
