"""Rate limits across processes: starts stay within the rate in every period-long interval.

The guarantee (``flow_claim``): at most ``count`` claims in any interval of length ``per`` on
the database's clock. The job rows' ``started_on`` is that clock's claim time, so the check is
exact. Tolerance, stated: no one-second interval ever holds more than 20 starts (exact), and
over 30 seconds with a backlog at least 80% of the 600 allowed starts happen.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, Limits, QueueSpec, Rate
from typed_queues.runtime.db.rows import LimitedClaim
from typed_queues.runtime.db.store import Store

from ._flow_support import FlowDb, FlowProc

QUEUE = "flow.rated"


async def _starts(fdb: FlowDb, queue: str) -> list[float]:
    rows = await fdb.rows(
        "SELECT extract(epoch FROM started_on)::float8 FROM {s}.job"
        " WHERE queue = %s AND started_on IS NOT NULL ORDER BY started_on",
        (queue,),
    )
    return [row[0] for row in rows]


def _most_in_any_window(starts: list[float], width: float) -> int:
    """The most starts in any half-open interval [t, t + width)."""
    return max(
        (bisect.bisect_left(starts, t + width) - index for index, t in enumerate(starts)),
        default=0,
    )


@pytest.mark.slow
async def test_two_processes_hold_the_rate_over_thirty_seconds(
    boss: Boss, fdb: FlowDb, spawn: Callable[..., FlowProc]
) -> None:
    await boss.create_queue(QueueSpec(QUEUE, limits=Limits(rate=Rate.parse("20/1s"))))
    await boss.send_many(QUEUE, [{"i": n, "sleep": 0.01} for n in range(1000)])
    procs = [spawn(f"rated-{n}", QUEUE, concurrency=10, poll_interval=0.5) for n in range(2)]
    for proc in procs:
        await proc.ready()
    began = await fdb.now()
    await asyncio.sleep(31)
    for proc in procs:
        await proc.stop()

    starts = await _starts(fdb, QUEUE)
    assert _most_in_any_window(starts, 1.0) <= 20
    first = starts[0]
    in_thirty = [t for t in starts if first <= t < first + 30]
    assert len(in_thirty) <= 600
    assert len(in_thirty) >= 480, f"only {len(in_thirty)} starts in 30 s (began {began})"
    pids = await fdb.rows("SELECT DISTINCT pid FROM {s}.flow_log")
    assert len(pids) == 2, "both processes took part"


async def test_the_rate_holds_with_many_small_claims(boss: Boss, fdb: FlowDb) -> None:
    # One job per claim, as fast as the claims go: more claims per period than the 64 the
    # queue remembers one by one, so the oldest merge; merged claims only count as later.
    queue = "flow.rated-small"
    await boss.create_queue(QueueSpec(queue, limits=Limits(rate=Rate.parse("150/1s"))))
    await boss.send_many(queue, [{"n": n} for n in range(2000)])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # a failure bound: 300 starts take 2 periods at this rate
    fetched = 0
    while fetched < 300:
        assert loop.time() < deadline, f"only {fetched} jobs fetched"
        jobs = await boss.fetch(queue)
        fetched += len(jobs)
        if not jobs:
            await asyncio.sleep(0.01)
    starts = await _starts(fdb, queue)
    assert len(starts) == fetched
    assert _most_in_any_window(starts, 1.0) <= 150
    state = await fdb.rows(
        "SELECT cardinality(rate_at) FROM {s}.flow_state WHERE queue = %s", (queue,)
    )
    assert state[0][0] <= 64


async def test_a_claim_the_rate_refuses_says_when_to_try_again(boss: Boss, fdb: FlowDb) -> None:
    queue = "flow.rated-wait"
    await boss.create_queue(QueueSpec(queue, limits=Limits(rate=Rate(2, timedelta(seconds=30)))))
    await boss.send_many(queue, [{"n": n} for n in range(5)])
    assert len(await boss.fetch(queue, batch_size=5)) == 2
    assert await boss.fetch(queue, batch_size=5) == []
    store = Store(fdb.schema)
    refused = await store.job_claim_limited(fdb.conn, queue, 5, timedelta(seconds=30))
    assert refused.jobs == [] and refused.limited
    assert refused.wait_s is not None and 25 < refused.wait_s <= 30


async def test_the_active_limit_says_nothing_about_when(boss: Boss, fdb: FlowDb) -> None:
    queue = "flow.active-wait"
    await boss.create_queue(QueueSpec(queue, limits=Limits(active=1)))
    await boss.send_many(queue, [{"n": n} for n in range(2)])
    assert len(await boss.fetch(queue, batch_size=5)) == 1
    refused = await Store(fdb.schema).job_claim_limited(fdb.conn, queue, 5, timedelta(seconds=30))
    assert refused == LimitedClaim([], True, None)
