"""Active limits across processes: three worker processes of concurrency 2 on a queue with
``limits.active: 3`` never run more than 3 jobs at once (6 without the limit), and finish every
job. With 2 slots each, the limit can only be reached by two processes at once, so the test
cannot pass on one process that happens to win every claim (a loaded machine once made one
process of concurrency 20 take all 150 jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from typed_queues.runtime import Boss, Limits, QueueSpec

from ._flow_support import SLACK, FlowDb, FlowProc, max_overlap

QUEUE = "flow.limited"
JOBS = 150


async def test_three_processes_never_run_more_than_the_active_limit(
    boss: Boss, fdb: FlowDb, spawn: Callable[..., FlowProc]
) -> None:
    await boss.create_queue(QueueSpec(QUEUE, limits=Limits(active=3)))
    await boss.send_many(QUEUE, [{"i": n, "sleep": 0.02} for n in range(JOBS)])
    procs = [spawn(f"limited-{n}", QUEUE, concurrency=2, poll_interval=0.2) for n in range(3)]
    for proc in procs:
        await proc.ready()

    samples: list[int] = []

    async def sample_until_done() -> None:
        while True:
            samples.append(await fdb.active(QUEUE))
            states = await fdb.states(QUEUE)
            if states.get("completed", 0) == JOBS:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(sample_until_done(), timeout=60 + SLACK)
    for proc in procs:
        await proc.stop()

    assert max(samples) <= 3, f"sampled active counts above the limit: {sorted(samples)[-10:]}"
    assert max(samples) == 3, "the limit was never reached: the test shows nothing"
    runs = await fdb.runs()
    assert max_overlap(runs) <= 3
    assert len({run.pid for run in runs}) >= 2, "only one process ever ran jobs"
    assert sorted(run.job_id for run in runs if run.what == "end") == sorted(
        {run.job_id for run in runs}
    ), "every job ran exactly once to its end"
    assert await fdb.states(QUEUE) == {"completed": JOBS}


async def test_fetch_respects_the_active_limit_and_a_pause(boss: Boss) -> None:
    await boss.create_queue(QueueSpec(QUEUE, limits=Limits(active=2)))
    await boss.send_many(QUEUE, [{"n": n} for n in range(5)])
    first = await boss.fetch(QUEUE, batch_size=5)
    assert len(first) == 2
    assert await boss.fetch(QUEUE, batch_size=5) == []
    assert await boss.complete(first[0])
    [third] = await boss.fetch(QUEUE, batch_size=5)
    assert third.id not in {job.id for job in first}
    await boss.pause_queue(QUEUE)
    assert await boss.complete(first[1])
    assert await boss.fetch(QUEUE, batch_size=5) == []
    await boss.resume_queue(QUEUE)
    assert len(await boss.fetch(QUEUE, batch_size=5)) == 1


async def test_a_queue_without_limits_keeps_the_plain_claim(boss: Boss) -> None:
    await boss.create_queue(QueueSpec("flow.plain"))
    await boss.create_queue(QueueSpec(QUEUE, limits=Limits(active=1)))
    assert not (await boss.flow_policies.get("flow.plain", 0)).limited
    assert (await boss.flow_policies.get(QUEUE, 0)).limited
    # Dropping the limits makes a queue plain again (create_queues stores the whole policy).
    await boss.create_queue(QueueSpec(QUEUE))
    assert not (await boss.flow_policies.get(QUEUE, 0)).limited
