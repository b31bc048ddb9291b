"""Throttle and debounce: one job per key per window whoever sends, the id of the window's job
returned to every sender, and a debounced job's data replaced while it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, JobContext, JobId, QueueSpec, SyncBoss

from ._flow_support import SLACK, FlowDb, wait_until

QUEUE = "flow.windows"


@pytest.fixture
def sync_boss(dsn: str, schema_name: str) -> Iterator[SyncBoss]:
    with SyncBoss(dsn, schema=schema_name, max_pool_size=4) as boss:
        yield boss


async def _senders(dsn: str, schema: str, count: int) -> list[Boss]:
    bosses = [Boss(dsn, schema=schema, max_pool_size=3) for _ in range(count)]
    for other in bosses:
        await other.start()
    return bosses


async def _jobs(fdb: FlowDb, queue: str) -> list[tuple[str, dict[str, object], str]]:
    rows = await fdb.rows(
        "SELECT id::text, data, state::text FROM {s}.job WHERE queue = %s ORDER BY created_on",
        (queue,),
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def test_concurrent_throttled_sends_write_one_job_per_window(
    dsn: str, schema_name: str, boss: Boss, fdb: FlowDb, sync_boss: SyncBoss
) -> None:
    await boss.create_queue(QueueSpec(QUEUE))
    senders = await _senders(dsn, schema_name, 4)
    window = timedelta(hours=1)

    async def send_async(sender: Boss, n: int) -> JobId:
        return await sender.send(QUEUE, {"n": n}, singleton_key="report:7", throttle=window)

    def send_sync(n: int) -> JobId:
        return sync_boss.send(QUEUE, {"n": n}, singleton_key="report:7", throttle=window)

    loop = asyncio.get_running_loop()
    try:
        with ThreadPoolExecutor(4) as threads:
            ids = await asyncio.gather(
                *(send_async(senders[n % 4], n) for n in range(80)),
                *(loop.run_in_executor(threads, send_sync, n) for n in range(80, 120)),
            )
    finally:
        for sender in senders:
            await sender.stop()
    assert len(set(ids)) == 1
    [(job_id, data, state)] = await _jobs(fdb, QUEUE)
    assert job_id == str(ids[0]) and state == "created" and isinstance(data["n"], int)
    # Another key has a window of its own.
    other = await boss.send(QUEUE, {"n": 0}, singleton_key="report:8", throttle=window)
    assert other != ids[0]


async def test_a_send_after_the_throttle_window_writes_a_new_job(boss: Boss, fdb: FlowDb) -> None:
    await boss.create_queue(QueueSpec(QUEUE))
    window = timedelta(seconds=2)  # long enough for two sends on a loaded machine
    first = await boss.send(QUEUE, {"n": 1}, singleton_key="k", throttle=window)
    assert await boss.send(QUEUE, {"n": 2}, singleton_key="k", throttle=window) == first
    ends = await fdb.now() + 2

    async def window_over() -> bool:
        return await fdb.now() > ends

    await wait_until(window_over, timeout=10, what="the throttle window to end")
    second = await boss.send(QUEUE, {"n": 3}, singleton_key="k", throttle=window)
    assert second != first
    assert await boss.send(QUEUE, {"n": 4}, singleton_key="k", throttle=window) == second
    assert [data["n"] for _, data, _ in await _jobs(fdb, QUEUE)] == [1, 3]


async def test_concurrent_debounced_sends_keep_one_waiting_job(
    dsn: str, schema_name: str, boss: Boss, fdb: FlowDb
) -> None:
    await boss.create_queue(QueueSpec(QUEUE))
    senders = await _senders(dsn, schema_name, 4)
    window = timedelta(hours=1)
    try:
        before = await fdb.now()
        ids = await asyncio.gather(
            *(
                senders[n % 4].send(QUEUE, {"n": n}, singleton_key="doc:1", debounce=window)
                for n in range(100)
            )
        )
        after = await fdb.now()
    finally:
        for sender in senders:
            await sender.stop()
    assert len(set(ids)) == 1
    [(job_id, data, state)] = await _jobs(fdb, QUEUE)
    assert job_id == str(ids[0]) and state == "created"
    assert data["n"] in range(100)
    start = await fdb.scalar(
        "SELECT extract(epoch FROM start_after)::float8 FROM {s}.job WHERE id = %s", (job_id,)
    )
    assert before + 3600 <= start <= after + 3600


async def test_debounce_runs_the_last_data_once_quiet(quick_boss: Boss, fdb: FlowDb) -> None:
    boss = quick_boss
    await boss.create_queue(QueueSpec(QUEUE))
    seen: list[int] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(job: JobContext) -> None:
        seen.append(job.data["v"])
        if job.data["v"] == 3:
            started.set()
            await release.wait()

    worker = boss.worker(QUEUE, handler)
    await worker.start()
    window = timedelta(seconds=1)  # long enough for two sends on a loaded machine
    first = await boss.send(QUEUE, {"v": 1}, singleton_key="d", debounce=window)
    assert await boss.send(QUEUE, {"v": 2}, singleton_key="d", debounce=window) == first

    async def completed(count: int) -> bool:
        rows = await _jobs(fdb, QUEUE)
        return sum(state == "completed" for _, _, state in rows) == count

    await wait_until(lambda: completed(1), timeout=10 + SLACK, what="the debounced job")
    assert seen == [2]

    # Once the waiting job has started, a send of the key writes a new job.
    third = await boss.send(QUEUE, {"v": 3}, singleton_key="d", debounce=window)
    await asyncio.wait_for(started.wait(), 10 + SLACK)
    fourth = await boss.send(QUEUE, {"v": 4}, singleton_key="d", debounce=window)
    assert fourth != third
    release.set()
    await wait_until(lambda: completed(3), timeout=10 + SLACK, what="both debounced jobs")
    await worker.stop()
    assert seen == [2, 3, 4]
