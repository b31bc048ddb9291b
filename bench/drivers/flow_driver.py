"""Flow control (issue 12): processing a queue with limits or groups, and how close the observed
maximum active count and start rate come to the configured ones.

Run by the harness as `python flow_driver.py '<json spec>'` (bench/benchlib/flow.py); prints one
`BENCH_RESULT {json}` line. Each phase creates its queue, seeds `n` jobs (untimed), then runs one
`runtime.Worker` of concurrency `concurrency` with an async no-op processor and times it from
`Worker.start()` until every completion is committed:

* `flow_active`: `limits.active = limit`. Reports jobs/s, the largest active count sampled from
  the job table (every 5 ms, on a connection of its own) and the most handlers running at once.
* `flow_groups`: `group: {active: 1, fifo: true}` with `keys` keys, each key's jobs sent as one
  batch (key after key). Reports jobs/s, the most handlers of one key running at once, and
  whether every key's handlers ran in send order.
* `flow_rate`: `limits.rate = rate per second`. Reports the long-run start rate (the jobs
  beyond the first second's allowance, which may all start at once, over the time from the
  first start to the last), and the most starts in any one-second interval (the jobs'
  `started_on`, the database's claim time).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
import time
import traceback
from collections import defaultdict
from datetime import timedelta
from typing import Any

import psycopg

from typed_queues.runtime import (
    Boss,
    GroupPolicy,
    JobContext,
    Limits,
    QueueSpec,
    Rate,
    Worker,
)

SCHEMA = "queues"
RESULT_PREFIX = "BENCH_RESULT "


class _Counts:
    """Handlers running now and at most, overall and per group key; the order of each key."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.by_key: dict[str, int] = defaultdict(int)
        self.key_peak = 0
        self.last_i: dict[str, int] = {}
        self.out_of_order = 0
        self.handled = 0

    async def __call__(self, job: JobContext) -> None:
        key = job.data.get("k")
        self.running += 1
        self.peak = max(self.peak, self.running)
        if key is not None:
            self.by_key[key] += 1
            self.key_peak = max(self.key_peak, self.by_key[key])
            i = job.data["i"]
            if i <= self.last_i.get(key, -1):
                self.out_of_order += 1
            self.last_i[key] = i
        await asyncio.sleep(0)
        self.running -= 1
        if key is not None:
            self.by_key[key] -= 1
        self.handled += 1


async def _count(conn: psycopg.AsyncConnection[Any], queue: str, state: str) -> int:
    cur = await conn.execute(
        f"SELECT count(*) FROM {SCHEMA}.job WHERE queue = %s AND state = %s",  # noqa: S608
        (queue, state),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _sample_active(dsn: str, queue: str, peak: list[int], stop: asyncio.Event) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            peak[0] = max(peak[0], await _count(conn, queue, "active"))
            await asyncio.sleep(0.005)


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    phase, dsn, n = spec["phase"], spec["dsn"], int(spec["n"])
    concurrency = int(spec.get("concurrency", 50))
    queue = f"bench.{phase}"
    if phase == "flow_active":
        policy = QueueSpec(queue, limits=Limits(active=int(spec["limit"])))
    elif phase == "flow_groups":
        policy = QueueSpec(queue, group=GroupPolicy(active=1, fifo=True))
    elif phase == "flow_rate":
        rate = Rate(int(spec["rate"]), timedelta(seconds=1))
        policy = QueueSpec(queue, limits=Limits(rate=rate))
    else:
        raise ValueError(f"unknown phase {phase!r}")
    counts = _Counts()
    async with (
        Boss(dsn, schema=SCHEMA, max_pool_size=10) as boss,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
    ):
        await boss.create_queue(policy)
        if phase == "flow_groups":
            keys = int(spec["keys"])
            per_key = n // keys
            for k in range(keys):
                key = f"key-{k:04d}"
                await boss.send_many(
                    queue, [{"k": key, "i": i} for i in range(per_key)], group_key=key
                )
            n = keys * per_key
        else:
            await boss.send_many(queue, [{"i": i} for i in range(n)])
        await conn.execute(f"ANALYZE {SCHEMA}.job")
        peak_active = [0]
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_active(dsn, queue, peak_active, stop))
        worker = Worker(boss, queue, counts, concurrency=concurrency)
        started = time.perf_counter()
        await worker.start()
        deadline = started + float(spec.get("timeout_s", 600))
        while await _count(conn, queue, "completed") < n:
            if time.perf_counter() > deadline:
                raise AssertionError(f"only {counts.handled}/{n} handled before the deadline")
            await asyncio.sleep(0.002)
        seconds = time.perf_counter() - started
        stop.set()
        await sampler
        await worker.stop()
        result: dict[str, Any] = {
            "seconds": seconds,
            "rate": n / seconds,
            "jobs": n,
            "max_active_sampled": peak_active[0],
            "max_handlers": counts.peak,
        }
        if phase == "flow_groups":
            result.update(max_per_key=counts.key_peak, out_of_order=counts.out_of_order)
        if phase == "flow_rate":
            cur = await conn.execute(
                f"SELECT extract(epoch FROM started_on)::float8 FROM {SCHEMA}.job"  # noqa: S608
                " WHERE queue = %s ORDER BY started_on",
                (queue,),
            )
            starts = [row[0] for row in await cur.fetchall()]
            # The long-run rate: the first period's allowance (all of it may start at once)
            # left out, the rest over the time from the first start to the last.
            allowance, span = int(spec["rate"]), starts[-1] - starts[0]
            result.update(
                rate=(n - allowance) / span if span > 0 and n > allowance else result["rate"],
                max_in_1s=max(
                    bisect.bisect_left(starts, t + 1.0) - index for index, t in enumerate(starts)
                ),
            )
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        result = {"ok": True, **asyncio.run(_run(spec))}
    except Exception as exc:
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
