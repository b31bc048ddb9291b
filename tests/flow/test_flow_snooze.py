"""Snooze (a job put back without using an attempt, a cap per job) and the per-job overrides
of the queue's retry limit and expiry."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from typed_queues.runtime import (
    Boss,
    GroupPolicy,
    JobContext,
    JobId,
    JobState,
    QueueSpec,
    RetryPolicy,
    Snooze,
)

from ._flow_support import SLACK, FlowDb, wait_until

QUEUE = "flow.snooze"
NO_DELAY = RetryPolicy(limit=3, delay=timedelta(0), jitter=False)


async def _state(boss: Boss, job_id: JobId, *states: JobState) -> bool:
    job = await boss.get_job(job_id)
    return job is not None and job.state in states


async def _finished(boss: Boss, job_id: JobId) -> None:
    async def finished() -> bool:
        return await _state(boss, job_id, JobState.COMPLETED, JobState.FAILED)

    await wait_until(finished, timeout=20 + SLACK, what=f"job {job_id} to finish")


async def test_snoozing_does_not_use_attempts(
    quick_boss: Boss, fdb: FlowDb, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="queues.jobs")
    boss = quick_boss
    await boss.create_queue(QueueSpec(QUEUE, retry=RetryPolicy(limit=0)))
    attempts: list[int] = []

    async def handler(job: JobContext) -> str:
        attempts.append(job.attempt)
        if len(attempts) <= 3:
            raise Snooze(timedelta(milliseconds=50))
        return "done"

    worker = boss.worker(QUEUE, handler)
    await worker.start()
    job_id = await boss.send(QUEUE, {"n": 1})
    await _finished(boss, job_id)
    await worker.stop()
    job = await boss.get_job(job_id)
    assert job is not None and job.state is JobState.COMPLETED and job.output == "done"
    assert attempts == [1, 1, 1, 1] and job.retry_count == 0
    assert await fdb.scalar("SELECT snoozes FROM {s}.job WHERE id = %s", (job_id,)) == 3
    assert sum("Snoozed:" in r.getMessage() for r in caplog.records) == 3
    assert not any(r.getMessage().startswith("Failed:") for r in caplog.records)


async def test_a_job_snoozing_past_the_limit_fails_for_good(quick_boss: Boss) -> None:
    boss = quick_boss
    await boss.create_queue(QueueSpec(f"{QUEUE}-dead"))
    await boss.create_queue(
        QueueSpec(QUEUE, retry=NO_DELAY, snooze_limit=2, dead_letter=f"{QUEUE}-dead")
    )
    calls = 0

    async def handler(job: JobContext) -> None:
        nonlocal calls
        calls += 1
        raise Snooze(0)

    worker = boss.worker(QUEUE, handler)
    await worker.start()
    job_id = await boss.send(QUEUE, {"n": 1})
    await _finished(boss, job_id)
    await worker.stop()
    job = await boss.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert calls == 3 and job.retry_count == 0
    assert job.output["error"]["type"] == "SnoozeLimitExceeded"
    assert job.dead_letter_id is not None


async def test_a_snoozing_head_holds_its_key(quick_boss: Boss) -> None:
    boss = quick_boss
    await boss.create_queue(QueueSpec(QUEUE, group=GroupPolicy(active=1, fifo=True)))
    order: list[str] = []

    async def handler(job: JobContext) -> None:
        order.append(job.data["name"])
        if job.data["name"] == "first" and order.count("first") < 3:
            raise Snooze(0.05)

    first = await boss.send(QUEUE, {"name": "first"}, group_key="g")
    second = await boss.send(QUEUE, {"name": "second"}, group_key="g")
    worker = boss.worker(QUEUE, handler, concurrency=5)
    await worker.start()
    await _finished(boss, second)
    await worker.stop()
    assert await _state(boss, first, JobState.COMPLETED)
    assert order == ["first", "first", "first", "second"]


@pytest.mark.parametrize("bad", [-1, "soon", None, timedelta(seconds=-1)])
def test_snooze_checks_its_delay(bad: object) -> None:
    with pytest.raises(ValueError, match="Snooze"):
        Snooze(bad)


async def test_a_job_retry_limit_overrides_the_queue(quick_boss: Boss) -> None:
    boss = quick_boss
    await boss.create_queue(QueueSpec(QUEUE, retry=NO_DELAY))
    attempts: dict[str, int] = {}

    async def handler(job: JobContext) -> None:
        name = job.data["name"]
        attempts[name] = job.attempt
        if job.attempt <= job.data["failures"]:
            raise RuntimeError("failing on purpose")

    # The queue retries 3 times; one job may not retry, another may retry 5 times.
    none = await boss.send(QUEUE, {"name": "none", "failures": 9}, retry_limit=0)
    more = await boss.send(QUEUE, {"name": "more", "failures": 5}, retry_limit=5)
    worker = boss.worker(QUEUE, handler)
    await worker.start()
    await _finished(boss, none)
    await _finished(boss, more)
    await worker.stop()
    failed, done = await boss.get_job(none), await boss.get_job(more)
    assert failed is not None and failed.state is JobState.FAILED and failed.retry_limit == 0
    assert done is not None and done.state is JobState.COMPLETED and done.retry_count == 5
    assert attempts == {"none": 1, "more": 6}


async def test_a_job_expire_in_overrides_the_queue(quick_boss: Boss) -> None:
    boss = quick_boss
    await boss.create_queue(
        QueueSpec(QUEUE, retry=RetryPolicy(limit=0), expire_in=timedelta(seconds=1))
    )

    async def handler(job: JobContext) -> None:
        await asyncio.sleep(job.data["sleep"])

    # Shorter than the queue's: expired. Longer: it may run past the queue's second.
    short = await boss.send(QUEUE, {"sleep": 30}, expire_in=timedelta(milliseconds=300))
    long = await boss.send(QUEUE, {"sleep": 1.5}, expire_in=timedelta(seconds=20))
    worker = boss.worker(QUEUE, handler)
    await worker.start()
    await _finished(boss, short)
    await _finished(boss, long)
    await worker.stop()
    expired, finished = await boss.get_job(short), await boss.get_job(long)
    assert expired is not None and expired.state is JobState.FAILED
    assert expired.output["error"]["type"] == "JobExpired"
    assert "0.3s" in expired.output["error"]["message"]
    assert finished is not None and finished.state is JobState.COMPLETED


async def test_batches_carry_group_and_overrides_in_send_order(boss: Boss, fdb: FlowDb) -> None:
    await boss.create_queue(QueueSpec(QUEUE))
    ids = await boss.send_many(
        QUEUE,
        [{"n": n} for n in range(5)],
        group_key="batch",
        retry_limit=1,
        expire_in=timedelta(minutes=2),
    )
    rows = await fdb.rows(
        "SELECT id, group_key, retry_limit, extract(epoch FROM expire_in)::int"
        " FROM {s}.job WHERE queue = %s ORDER BY group_seq",
        (QUEUE,),
    )
    assert [row[0] for row in rows] == ids
    assert {row[1:] for row in rows} == {("batch", 1, 120)}
