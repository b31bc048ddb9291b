"""Groups across processes: 50 keys x 20 jobs on a fifo queue with one active job per key,
with failed attempts (retried) and jobs failed for good. Each key's handler runs strictly in
send order, never two of one key at once; a key whose first job cannot start yet holds back
its own jobs only."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from typed_queues.runtime import Boss, GroupPolicy, QueueSpec, RetryPolicy

from ._flow_support import SLACK, FlowDb, FlowProc, Run, max_overlap, wait_until

QUEUE = "flow.groups"
KEYS = 50
PER_KEY = 20


def _fails_once(k: int, i: int) -> bool:
    return (k * PER_KEY + i) % 9 == 4 and not _fails_for_good(k, i)


def _fails_for_good(k: int, i: int) -> bool:
    return k % 10 == 3 and i == 10


def _job(k: int, i: int) -> dict[str, object]:
    return {
        "key": f"k{k:02d}",
        "i": i,
        "sleep": 0.005,
        "fail_attempts": 1 if _fails_once(k, i) else 0,
        "permanent": _fails_for_good(k, i),
    }


async def test_fifo_groups_run_each_key_in_send_order_one_at_a_time(
    boss: Boss, fdb: FlowDb, spawn: Callable[..., FlowProc]
) -> None:
    retry = RetryPolicy(limit=3, delay=timedelta(milliseconds=100), backoff="fixed", jitter=False)
    await boss.create_queue(QueueSpec(QUEUE, retry=retry, group=GroupPolicy(active=1, fifo=True)))
    # Half the keys sent one job at a time, interleaved across keys; half as one batch per key.
    for i in range(PER_KEY):
        for k in range(KEYS // 2):
            await boss.send(QUEUE, _job(k, i), group_key=f"k{k:02d}")
    for k in range(KEYS // 2, KEYS):
        await boss.send_many(QUEUE, [_job(k, i) for i in range(PER_KEY)], group_key=f"k{k:02d}")
    # A key whose first job is not due for an hour: its later jobs wait, nobody else does.
    await boss.send(
        QUEUE, {"key": "late", "i": 0}, group_key="late", start_after=timedelta(hours=1)
    )
    for i in range(1, 5):
        await boss.send(QUEUE, {"key": "late", "i": i}, group_key="late")

    procs = [spawn(f"groups-{n}", QUEUE, concurrency=10, poll_interval=0.2) for n in range(3)]
    for proc in procs:
        await proc.ready()
    total = KEYS * PER_KEY
    failed_for_good = sum(_fails_for_good(k, i) for k in range(KEYS) for i in range(PER_KEY))

    async def all_finished() -> bool:
        states = await fdb.states(QUEUE)
        return states.get("completed", 0) + states.get("failed", 0) >= total

    await wait_until(all_finished, timeout=120 + SLACK, what="every grouped job to finish")
    for proc in procs:
        await proc.stop()

    states = await fdb.states(QUEUE)
    assert states == {
        "completed": total - failed_for_good,
        "failed": failed_for_good,
        "created": 5,  # the late key: its first job is not due, so none of its jobs ran
    }
    runs = await fdb.runs()
    by_key: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        assert run.key is not None
        by_key[run.key].append(run)
    assert "late" not in by_key
    assert len(by_key) == KEYS
    for key, key_runs in by_key.items():
        assert max_overlap(key_runs) == 1, f"two jobs of {key} ran at once"
        started = [run.i or 0 for run in key_runs if run.what == "start"]
        assert started == sorted(started), f"{key} ran out of send order: {started}"
        k = int(key[1:])
        expected = [i for i in range(PER_KEY) for _ in range(2 if _fails_once(k, i) else 1)]
        assert started == expected, f"{key}: {started}"
    assert len({run.pid for run in runs}) >= 2, "only one process ever ran jobs"


async def test_group_active_without_fifo_caps_each_key(quick_boss: Boss, fdb: FlowDb) -> None:
    boss = quick_boss
    await boss.create_queue(QueueSpec(QUEUE, group=GroupPolicy(active=2)))
    running: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)

    async def handler(job: object) -> None:
        from typed_queues.runtime import JobContext

        assert isinstance(job, JobContext)
        key = job.data["key"]
        running[key] += 1
        peak[key] = max(peak[key], running[key])
        await asyncio.sleep(0.02)
        running[key] -= 1

    for k in range(4):
        await boss.send_many(QUEUE, [{"key": f"g{k}"} for _ in range(10)], group_key=f"g{k}")
    await boss.send_many(QUEUE, [{"key": "none"} for _ in range(10)])  # no key: no cap
    worker = boss.worker(QUEUE, handler, concurrency=20)
    await worker.start()

    async def done() -> bool:
        return (await fdb.states(QUEUE)).get("completed", 0) == 50

    await wait_until(done, timeout=30 + SLACK, what="the grouped jobs to complete")
    await worker.stop()
    assert all(peak[f"g{k}"] <= 2 for k in range(4)), dict(peak)
    assert max(peak[f"g{k}"] for k in range(4)) == 2, "the cap was never reached"
