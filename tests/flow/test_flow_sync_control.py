"""``SyncBoss`` pauses and resumes queues and makes schedules like ``Boss`` (for Django and
scripts): the same rows, the same errors, and a worker honours a pause made from sync code."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from typed_queues.runtime import (
    Boss,
    JobContext,
    QueueSpec,
    SyncBoss,
    UnknownQueueError,
    ValidationError,
)


@pytest.mark.asyncio
async def test_a_pause_from_sync_code_holds_the_workers_back(dsn: str, schema_name: str) -> None:
    boss = Boss(dsn, schema=schema_name, poll_interval=timedelta(milliseconds=100))
    async with boss:
        await boss.create_queues([QueueSpec(name="sync.q")])
        with SyncBoss(dsn, schema=schema_name) as sync_boss:
            sync_boss.pause_queue("sync.q")
            assert await boss.paused_queues() == {"sync.q"}
            sync_boss.send("sync.q", {"n": 1})
            ran = asyncio.Event()

            async def handle(job: JobContext) -> None:
                ran.set()

            worker = boss.worker("sync.q", handle)
            await worker.start()
            await asyncio.sleep(0.5)
            assert not ran.is_set()  # paused: nothing starts
            sync_boss.resume_queue("sync.q")
            await asyncio.wait_for(ran.wait(), 10)
            await worker.stop()
            assert await boss.paused_queues() == set()
            with pytest.raises(UnknownQueueError):
                sync_boss.pause_queue("sync.nope")


@pytest.mark.asyncio
async def test_sync_schedules_are_the_async_ones(dsn: str, schema_name: str) -> None:
    async with Boss(dsn, schema=schema_name) as boss:
        await boss.create_queues([QueueSpec(name="sync.q")])
        with SyncBoss(dsn, schema=schema_name) as sync_boss:
            made = sync_boss.schedule(
                "sync.every-minute", "sync.q", {"n": 1}, every=timedelta(minutes=1)
            )
            assert made.every == timedelta(minutes=1)
            [info] = await boss.schedules()
            assert info.schedule == made
            with pytest.raises(UnknownQueueError):
                sync_boss.schedule("sync.x", "sync.nope", every=timedelta(minutes=1))
            with pytest.raises(ValidationError):
                sync_boss.unschedule("")
            assert sync_boss.unschedule("sync.every-minute") is True
            assert sync_boss.unschedule("sync.every-minute") is False
            assert await boss.schedules() == []
