"""Where the wake-up latency (e) goes, hop by hop, for this project's runtime.

An idle Worker and a Boss in one process (as in the benchmark's latency phase); each job is
sent 10 ms after the last, and timestamps are taken at the hops of its path by wrapping runtime
internals (this reads them, it changes nothing they do): the send's statement, the notification
reaching the listener, the worker waking, the claim, the handler starting. Prints the median of
each hop and of the whole path.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from typed_queues.runtime import Boss, JobContext, QueueSpec, Worker
from typed_queues.runtime.client import sender as sending
from typed_queues.runtime.worker import worker as worker_module

__all__ = ["wakeup_breakdown"]

HOPS = [
    ("send called", "send statement sent"),
    ("send statement sent", "send committed"),
    ("send committed", "notification in"),
    ("notification in", "worker awake"),
    ("worker awake", "claimed"),
    ("claimed", "handler started"),
]


async def _measure(dsn: str, jobs: int, interval_s: float) -> dict[str, dict[int, float]]:
    marks: dict[str, dict[int, float]] = {}
    current = [-1]

    def mark(name: str) -> None:
        marks.setdefault(name, {})[current[0]] = time.perf_counter()

    execute_rows = sending.Sender._execute_rows
    pause = worker_module.Worker._pause

    async def timed_execute(self: Any, cursor: Any, rows: Sequence[Any]) -> None:
        mark("send statement sent")
        await execute_rows(self, cursor, rows)
        mark("send committed")

    async def timed_pause(self: Any, delay: float) -> None:
        await pause(self, delay)
        mark("worker awake")

    sending.Sender._execute_rows = timed_execute  # type: ignore[method-assign]
    worker_module.Worker._pause = timed_pause  # type: ignore[method-assign]
    try:
        async with Boss(dsn, schema="wakeup_probe") as boss:
            await boss.create_queue(QueueSpec("probe"))

            async def handler(ctx: JobContext) -> None:
                mark("handler started")

            worker = Worker(boss, "probe", handler)
            await worker.start()
            runtime = boss.worker_services
            assert runtime is not None and runtime.listener is not None
            on_notify: Callable[[str], None] = runtime.listener._on_notify

            def timed_notify(payload: str) -> None:
                mark("notification in")
                on_notify(payload)

            runtime.listener._on_notify = timed_notify
            claim = runtime.claim

            async def timed_claim(queue: str, limit: int) -> list[Any]:
                rows = await claim(queue, limit)
                if rows:
                    mark("claimed")
                return rows

            runtime.claim = timed_claim  # type: ignore[method-assign]
            await asyncio.sleep(1.0)  # idle
            for i in range(jobs):
                await asyncio.sleep(interval_s)
                current[0] = i
                mark("send called")
                await boss.send("probe", {"i": i})
            await asyncio.sleep(0.5)
            await worker.stop()
    finally:
        sending.Sender._execute_rows = execute_rows  # type: ignore[method-assign]
        worker_module.Worker._pause = pause  # type: ignore[method-assign]
    return marks


def wakeup_breakdown(dsn: str, jobs: int = 200, interval_s: float = 0.01) -> None:
    marks = asyncio.run(_measure(dsn, jobs, interval_s))
    print(f"wake-up path, median of {jobs} jobs sent {interval_s * 1000:g} ms apart:")
    for start, end in HOPS:
        spans = [marks[end][i] - marks[start][i] for i in marks[end] if i in marks[start]]
        print(f"  {start:>20} -> {end:<20} {1000 * statistics.median(spans):6.3f} ms")
    whole = [
        marks["handler started"][i] - marks["send called"][i]
        for i in marks["handler started"]
        if i in marks["send called"]
    ]
    total = 1000 * statistics.median(whole)
    print(f"  {'send called':>20} -> {'handler started':<20} {total:6.3f} ms")
