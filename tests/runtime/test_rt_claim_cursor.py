"""The claim cursor: claims start past the last job claimed (skipping the claim index's entries
of jobs claimed since the last vacuum), and from the start of the claim order when there is no
cursor yet, at least every refresh interval, and after a claim from the cursor that came back
short, so that jobs sorting before the cursor (higher priorities, jobs due earlier) wait a
bounded time and are never skipped for good."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from rt_support import NO_RETRY_DELAY, make_queue, wait_until

from typed_queues.runtime import Boss, JobContext, JobId, Worker
from typed_queues.runtime.db import Store
from typed_queues.runtime.db.rows import ClaimPosition
from typed_queues.runtime.worker import claim_cursor
from typed_queues.runtime.worker.claim_cursor import ClaimCursor

pytest_plugins = ["rt_fixtures"]

LEASE = timedelta(seconds=30)


def _at(n: int) -> ClaimPosition:
    return ClaimPosition(0, datetime(2026, 1, 1, tzinfo=UTC), JobId(uuid.UUID(int=n)))


# -- the policy (pure) -------------------------------------------------------------------------


def test_the_first_claim_starts_from_the_start_and_the_next_from_the_last_job() -> None:
    cursor = ClaimCursor(refresh_s=1.0, min_gap_s=0.25)
    assert cursor.after(0.0) is None
    assert cursor.claimed(None, 10, 10, _at(1), 0.0) is False
    assert cursor.after(0.1) == _at(1)
    assert cursor.claimed(_at(1), 10, 10, _at(2), 0.1) is False
    assert cursor.after(0.2) == _at(2)


def test_a_claim_from_the_start_at_least_every_refresh_interval() -> None:
    cursor = ClaimCursor(refresh_s=1.0, min_gap_s=0.25)
    cursor.claimed(None, 10, 10, _at(1), 0.0)
    now, n = 0.0, 1
    while cursor.after(now) is not None:  # full claims from the cursor
        n += 1
        cursor.claimed(cursor.after(now), 10, 10, _at(n), now)
        now += 0.05
    assert 1.0 <= now < 1.05
    cursor.claimed(None, 10, 10, _at(n + 1), now)
    assert cursor.after(now + 0.5) == _at(n + 1)
    assert cursor.after(now + 1.01) is None


def test_a_short_claim_from_the_cursor_claims_the_rest_from_the_start() -> None:
    cursor = ClaimCursor(refresh_s=1.0, min_gap_s=0.25)
    cursor.claimed(None, 10, 10, _at(1), 0.0)
    # short, and the last claim from the start is older than the gap: claim the rest now
    assert cursor.claimed(_at(1), 10, 3, _at(4), 0.3) is True
    assert cursor.position == _at(4)
    cursor.claimed(None, 7, 0, None, 0.3)
    assert cursor.position == _at(4)  # nothing claimed: the position stays
    assert cursor.due_in(0.3) == float("inf")
    assert cursor.after(0.4) == _at(4)


def test_short_claims_claim_from_the_start_at_most_once_per_gap() -> None:
    cursor = ClaimCursor(refresh_s=1.0, min_gap_s=0.25)
    cursor.claimed(None, 10, 2, _at(2), 0.0)  # the queue drained
    assert cursor.claimed(_at(2), 10, 0, None, 0.1) is False  # too soon: owed
    assert cursor.due_in(0.1) == pytest.approx(0.15)
    assert cursor.after(0.2) == _at(2)  # a wake-up before the gap: still from the cursor
    assert cursor.after(0.25) is None  # then from the start
    cursor.claimed(None, 10, 0, None, 0.25)
    assert cursor.due_in(0.3) == float("inf")
    assert cursor.after(0.3) == _at(2)


def test_a_claim_that_claimed_nothing_keeps_the_position() -> None:
    cursor = ClaimCursor()
    cursor.claimed(None, 5, 5, _at(7), 0.0)
    cursor.claimed(_at(7), 5, 0, None, 0.01)
    assert cursor.position == _at(7)


# -- the statement -----------------------------------------------------------------------------


async def test_the_claim_after_a_position_follows_the_claim_order(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    """From no position it claims what claim_work claims; from a position, the rest of that
    priority after it, then the lower priorities; never what sorts before it."""
    await make_queue(boss)
    for n in range(6):
        await boss.send("q", {"p": 0, "n": n})
    await boss.send("q", {"p": 5}, priority=5)
    await boss.send("q", {"p": -3}, priority=-3)
    store, conn = Store(boss.schema), db
    first, at = await store.job_claim_after(conn, "q", 3, LEASE, None)
    assert [job.data for job in first] == [{"p": 5}, {"p": 0, "n": 0}, {"p": 0, "n": 1}]
    assert at is not None and at.priority == 0 and at.id == first[-1].id
    # a job due before the position at the same priority: not seen from the position
    await boss.send("q", {"p": 0, "early": True}, start_after=at.start_after - timedelta(1))
    await boss.send("q", {"p": 9}, priority=9)  # a higher priority: not seen either
    rest, last = await store.job_claim_after(conn, "q", 10, LEASE, at)
    assert [job.data for job in rest] == [
        *({"p": 0, "n": n} for n in range(2, 6)),
        {"p": -3},
    ]
    assert last is not None and last.priority == -3 and last.id == rest[-1].id
    none, nowhere = await store.job_claim_after(conn, "q", 10, LEASE, last)
    assert none == [] and nowhere is None
    again, _ = await store.job_claim_after(conn, "q", 10, LEASE, None)
    assert [job.data for job in again] == [{"p": 9}, {"p": 0, "early": True}]


# -- the worker --------------------------------------------------------------------------------


async def _run_backlog(boss: Boss, late: Any, *, backlog: int = 300) -> tuple[list[str], int]:
    """A worker with one slot works through ``backlog`` jobs that take 20 ms each, from a
    cursor; once it has started, ``late(boss)`` sends jobs that sort before the cursor. Returns
    the order the jobs ran in and how many backlog jobs ran before the first late one."""
    await boss.send_many("q", [{"kind": "backlog"} for _ in range(backlog)])
    order: list[str] = []
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        kind = str(ctx.data["kind"])
        order.append(kind)
        started.set()
        if kind == "backlog":
            await asyncio.sleep(0.02)
        elif ctx.data.get("fail") and ctx.attempt == 1:
            raise RuntimeError("first attempt fails")

    worker = Worker(boss, "q", handler, concurrency=1)
    await worker.start()
    try:
        await asyncio.wait_for(started.wait(), 15)
        sent = await late(boss)

        async def all_ran() -> bool:
            return order.count("backlog") >= backlog and sum(k != "backlog" for k in order) >= sent

        await wait_until(all_ran, within=60)
    finally:
        await worker.stop(timeout=5)
    before = next(i for i, kind in enumerate(order) if kind != "backlog")
    return order, before


async def test_higher_priority_and_earlier_jobs_run_before_the_backlog_drains(
    boss: Boss,
) -> None:
    """While the worker claims from its cursor, a job of a higher priority and a job due
    earlier than the cursor are claimed by the next claim from the start (within about the
    refresh interval), long before the backlog (300 jobs of at least 20 ms each) drains."""
    await make_queue(boss)
    past = datetime.now(UTC) - timedelta(hours=1)

    async def late(boss: Boss) -> int:
        await asyncio.sleep(0.2)  # a few claims from the cursor first
        await boss.send("q", {"kind": "urgent"}, priority=10)
        await boss.send("q", {"kind": "early"}, start_after=past)
        return 2

    order, before = await _run_backlog(boss, late)
    assert sorted(k for k in order if k != "backlog") == ["early", "urgent"]
    assert order.index("urgent") < order.index("early")  # still in priority order
    assert before < 150  # a claim from the start came well before the backlog's end


async def test_a_retry_due_before_the_cursor_runs_before_the_backlog_drains(
    boss: Boss,
) -> None:
    """A job of a higher priority that fails once: its retry (due at once) sorts before the
    cursor, and a claim from the start finds it while the backlog still runs."""
    await make_queue(boss, retry=NO_RETRY_DELAY)

    async def late(boss: Boss) -> int:
        await asyncio.sleep(0.2)
        await boss.send("q", {"kind": "retried", "fail": True}, priority=1)
        return 2  # two attempts

    order, _ = await _run_backlog(boss, late)
    retried = [i for i, kind in enumerate(order) if kind == "retried"]
    assert len(retried) == 2
    assert retried[1] < len(order) - 60


async def test_nothing_is_skipped_with_a_long_refresh_interval(
    boss: Boss, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with claims from the start only after short claims from the cursor, every job
    due before the cursor is claimed in the end: the worker drains the queue."""
    monkeypatch.setattr(claim_cursor, "DEFAULT_REFRESH_S", 3600.0)
    await make_queue(boss)
    await boss.send_many("q", [{"kind": "backlog"} for _ in range(100)])
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(str(ctx.data["kind"]))
        if len(seen) == 10:
            await boss.send("q", {"kind": "early"}, start_after=datetime.now(UTC) - timedelta(1))
            await boss.send("q", {"kind": "urgent"}, priority=3)

    worker = Worker(boss, "q", handler, concurrency=2)
    await worker.start()
    try:

        async def drained() -> bool:
            return len(seen) == 102

        await wait_until(drained, within=30)
    finally:
        await worker.stop(timeout=5)
    assert sorted(set(seen)) == ["backlog", "early", "urgent"]
