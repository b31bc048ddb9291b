"""Transactional handlers: ``job.transaction()`` commits the handler's writes, its follow-up
events and the job's completion together, fenced by the run's claim."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import (
    Boss,
    ConfigurationError,
    JobContext,
    JobState,
    LeaseLostError,
    QueueSpec,
    RetryPolicy,
    make_envelope,
)

ORDERS = QueueSpec(
    name="shop.orders",
    retry=RetryPolicy(limit=3, delay=timedelta(0), backoff="fixed", jitter=False),
)
FOLLOW = QueueSpec(name="shop.follow-ups")


@pytest.fixture
async def ledger(db: psycopg.AsyncConnection[Any], schema_name: str) -> AsyncIterator[sql.Composed]:
    """A table of the application's own, in the test's schema: what handlers write."""
    await db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema_name)))
    table = sql.SQL("{}.ledger").format(sql.Identifier(schema_name))
    await db.execute(sql.SQL("CREATE TABLE {} (order_id int, attempt int)").format(table))
    yield table


async def rows(db: psycopg.AsyncConnection[Any], table: sql.Composed) -> list[tuple[Any, ...]]:
    cur = await db.execute(sql.SQL("SELECT order_id, attempt FROM {} ORDER BY 1, 2").format(table))
    return await cur.fetchall()


async def wait_for_state(boss: Boss, job_id: Any, *states: JobState) -> None:
    for _ in range(600):
        job = await boss.get_job(job_id)
        if job is not None and job.state in states:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}")


async def test_writes_follow_ups_and_completion_commit_together(
    quick_boss: Boss, db: psycopg.AsyncConnection[Any], ledger: sql.Composed, caplog: Any
) -> None:
    await quick_boss.create_queues([ORDERS, FOLLOW])

    async def handle(job: JobContext) -> str:
        async with job.transaction() as conn:
            insert = sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(ledger)
            await conn.execute(insert, (job.payload["order_id"], job.attempt))
            await quick_boss.send("shop.follow-ups", make_envelope("paid", {}), conn=conn)
            if job.attempt == 1:
                raise RuntimeError("the payment provider timed out")
        return "ignored: the block completed the job"

    job_id = await quick_boss.send("shop.orders", make_envelope("order", {"order_id": 7}))
    worker = quick_boss.worker("shop.orders", handle)
    with caplog.at_level(logging.WARNING):
        await worker.start()
        await wait_for_state(quick_boss, job_id, JobState.COMPLETED)
        await worker.stop()
    # the failed attempt committed nothing; the retry committed once
    assert await rows(db, ledger) == [(7, 2)]
    assert len(await quick_boss.jobs_of("shop.follow-ups")) == 1
    job = await quick_boss.get_job(job_id)
    assert job is not None and job.retry_count == 1 and job.output is None
    assert [error.message for error in job.errors] == ["the payment provider timed out"]
    assert "lost the lease" not in caplog.text  # the worker wrote no second completion


async def test_a_stolen_lease_commits_nothing(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], ledger: sql.Composed
) -> None:
    boss = Boss(
        dsn,
        schema=schema_name,
        lease=timedelta(seconds=1),
        poll_interval=timedelta(milliseconds=100),
        maintenance=False,
        schedules=False,
    )
    await boss.start()
    try:
        await boss.create_queues([ORDERS, FOLLOW])
        inside, go_on = asyncio.Event(), asyncio.Event()
        seen: list[BaseException] = []

        async def handle(job: JobContext) -> None:
            try:
                async with job.transaction() as conn:
                    insert = sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(ledger)
                    await conn.execute(insert, (1, job.attempt))
                    await boss.send("shop.follow-ups", make_envelope("paid", {}), conn=conn)
                    inside.set()
                    await go_on.wait()
            except BaseException as exc:
                seen.append(exc)
                raise

        job_id = await boss.send("shop.orders", make_envelope("order", {"order_id": 1}))
        worker = boss.worker("shop.orders", handle)
        await worker.start()
        await asyncio.wait_for(inside.wait(), 30)
        worker.stop_claiming()  # or it may claim the rescued job itself before the fetch below
        services = boss.worker_services
        assert services is not None
        services.writer.suspend_heartbeats(job_id)  # the worker stalls: its lease runs out
        await wait_for_rescue(boss, job_id)
        [stolen] = await boss.fetch("shop.orders")  # another worker claims the job again
        go_on.set()
        await asyncio.sleep(0.5)
        await worker.stop()
        assert len(seen) == 1 and isinstance(seen[0], LeaseLostError)
        assert await rows(db, ledger) == []
        assert await boss.jobs_of("shop.follow-ups") == []
        job = await boss.get_job(job_id)
        assert job is not None and job.state == JobState.ACTIVE and job.fence == stolen.fence
        assert await boss.complete(stolen)  # the new owner's result stands
    finally:
        await boss.stop(timeout=1)


async def wait_for_rescue(boss: Boss, job_id: Any) -> None:
    for _ in range(200):
        await asyncio.sleep(0.1)
        await boss.run_maintenance()
        job = await boss.get_job(job_id)
        if job is not None and job.state == JobState.RETRY:
            return
    raise AssertionError("the job was never rescued")


async def test_sync_handlers_have_a_sync_transaction(
    quick_boss: Boss, db: psycopg.AsyncConnection[Any], ledger: sql.Composed
) -> None:
    await quick_boss.create_queues([ORDERS, FOLLOW])
    threads: set[int] = set()

    def handle(job: JobContext) -> None:
        threads.add(threading.get_ident())
        with job.sync_transaction() as conn:
            insert = sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(ledger)
            conn.execute(insert, (job.payload["order_id"], job.attempt))
            if job.attempt == 1:
                raise RuntimeError("first attempt fails")

    ids = [
        await quick_boss.send("shop.orders", make_envelope("order", {"order_id": n}))
        for n in range(3)
    ]
    worker = quick_boss.worker("shop.orders", handle)
    await worker.start()
    for job_id in ids:
        await wait_for_state(quick_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    assert await rows(db, ledger) == [(0, 2), (1, 2), (2, 2)]
    assert threading.get_ident() not in threads


async def test_a_job_has_one_transaction_block(quick_boss: Boss) -> None:
    await quick_boss.create_queues([ORDERS])
    errors: list[BaseException] = []

    async def handle(job: JobContext) -> None:
        async with job.transaction():
            pass
        try:
            async with job.transaction():
                pass
        except ConfigurationError as exc:
            errors.append(exc)

    job_id = await quick_boss.send("shop.orders", make_envelope("order", {}))
    worker = quick_boss.worker("shop.orders", handle)
    await worker.start()
    await wait_for_state(quick_boss, job_id, JobState.COMPLETED)
    await worker.stop()
    assert len(errors) == 1 and "already completed" in str(errors[0])
    with pytest.raises(ConfigurationError, match="run by a Worker"):
        JobContext(job_id, "shop.orders", {}).transaction()
