"""Finishing jobs by id, retries timed by backoff (on database timestamps) and dead letters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from rt_support import count_jobs, make_queue, rows, scalar

from typed_queues.runtime import Boss, JobId, JobState, QueuesError, QueueSpec, RetryPolicy

pytest_plugins = ["rt_fixtures"]


async def _fail_and_measure(
    boss: Boss, db: psycopg.AsyncConnection[Any], job_id: JobId
) -> timedelta:
    """Fail the job in a transaction and return start_after - now() of that transaction."""
    async with db.transaction():
        assert await boss.fail(job_id, "boom", conn=db)
        delay: timedelta = await scalar(
            db, boss.schema, "SELECT start_after - now() FROM {schema}.job WHERE id = %s", job_id
        )
    return delay


async def _make_due(db: psycopg.AsyncConnection[Any], schema: str, job_id: JobId) -> None:
    await rows(db, schema, "UPDATE {schema}.job SET start_after = now() WHERE id = %s", job_id)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("exponential", [10, 20, 40, 60, 60]),
        ("fixed", [10, 10, 10, 10, 10]),
    ],
)
async def test_retry_delays(
    boss: Boss, db: psycopg.AsyncConnection[Any], backoff: str, expected: list[int]
) -> None:
    policy = RetryPolicy(
        limit=5,
        delay=timedelta(seconds=10),
        backoff=backoff,  # type: ignore[arg-type]
        max_delay=timedelta(seconds=60),
        jitter=False,
    )
    await make_queue(boss, retry=policy)
    job_id = await boss.send("q", {})
    for attempt, seconds in enumerate(expected, start=1):
        [job] = await boss.fetch("q")
        assert job.id == job_id and job.retry_count == attempt - 1
        assert await _fail_and_measure(boss, db, job_id) == timedelta(seconds=seconds)
        after = await boss.get_job(job_id)
        assert after is not None and after.state is JobState.RETRY
        assert after.output["error"]["message"] == "boom"
        assert await boss.fetch("q") == []  # not due yet
        await _make_due(db, boss.schema, job_id)
    [job] = await boss.fetch("q")
    assert await boss.fail(job_id, RuntimeError("last"))
    final = await boss.get_job(job_id)
    assert final is not None and final.state is JobState.FAILED and final.retry_count == 5
    assert final.completed_on is not None


async def test_jitter_stays_within_half_to_full_delay(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    policy = RetryPolicy(limit=50, delay=timedelta(seconds=100), backoff="fixed", jitter=True)
    await make_queue(boss, retry=policy)
    job_id = await boss.send("q", {})
    delays = []
    for _ in range(20):
        await boss.fetch("q")
        delays.append(await _fail_and_measure(boss, db, job_id))
        await _make_due(db, boss.schema, job_id)
    assert all(timedelta(seconds=50) <= d <= timedelta(seconds=100) for d in delays)
    assert len(set(delays)) > 1


async def test_dead_letter_copy_after_the_last_attempt(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    policy = RetryPolicy(limit=1, delay=timedelta(0), jitter=False)
    await make_queue(boss, "work", retry=policy, dead_letter="work.dead")
    await make_queue(boss, "work.dead")
    job_id = await boss.send("work", {"event": "x", "payload": {"a": 1}}, priority=7)
    for message in ("first", "second"):
        [job] = await boss.fetch("work")
        assert await boss.fail(job.id, ValueError(message))
    failed = await boss.get_job(job_id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.output["error"]["type"] == "ValueError"
    assert failed.output["error"]["message"] == "second"
    assert failed.dead_letter_id is not None
    copy = await boss.get_job(failed.dead_letter_id)
    assert copy is not None
    assert copy.queue == "work.dead" and copy.state is JobState.CREATED
    assert copy.data == failed.data and copy.priority == 7
    assert copy.output["error"]["message"] == "second"
    assert copy.output["source_id"] == str(job_id)
    assert copy.output["source_queue"] == "work"
    assert copy.output["attempts"] == 2
    stats = await boss.queue_stats("work")
    assert (stats.failed, stats.dead_lettered) == (1, 1)
    assert (await boss.queue_stats("work.dead")).created == 1


async def test_no_dead_letter_queue_means_no_copy(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, retry=RetryPolicy(limit=0))
    job_id = await boss.send("q", {})
    await boss.fetch("q")
    assert await boss.fail(job_id, "x")
    assert await count_jobs(db, boss.schema) == 1
    assert await count_jobs(db, boss.schema, "failed") == 1


async def test_complete_cancel_resume_retry(boss: Boss) -> None:
    await make_queue(boss, retry=RetryPolicy(limit=0))
    job_id = await boss.send("q", {})
    assert not await boss.complete(job_id)  # not active yet
    [job] = await boss.fetch("q")
    assert job.state is JobState.ACTIVE and job.fence == 1
    assert job.lease_until is not None and job.started_on is not None
    assert await boss.complete(job_id, {"result": [1, 2]})
    done = await boss.get_job(job_id)
    assert (
        done is not None and done.state is JobState.COMPLETED and done.output == {"result": [1, 2]}
    )
    assert not await boss.cancel(job_id)  # finished already
    assert not await boss.complete(job_id)

    other = await boss.send("q", {})
    assert await boss.cancel(other)
    cancelled = await boss.get_job(other)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert await boss.fetch("q") == []
    assert await boss.resume(other)
    assert not await boss.resume(other)
    [again] = await boss.fetch("q")
    assert again.id == other and again.fence == 1
    assert await boss.fail(other, "nope")
    assert not await boss.fail(other, "nope")
    assert (await boss.get_job(other)).state is JobState.FAILED  # type: ignore[union-attr]
    assert await boss.retry(other)
    retried = await boss.get_job(other)
    assert retried is not None and retried.state is JobState.RETRY
    [last] = await boss.fetch("q")
    assert last.fence == 2


async def test_resume_refuses_a_duplicate_singleton(boss: Boss) -> None:
    await make_queue(boss)
    first = await boss.send("q", {}, singleton_key="k")
    assert await boss.cancel(first)
    await boss.send("q", {}, singleton_key="k")
    with pytest.raises(QueuesError, match="singleton key"):
        await boss.resume(first)


async def test_create_queue_is_an_upsert(boss: Boss) -> None:
    await boss.create_queue(QueueSpec(name="q", retry=RetryPolicy(limit=1)))
    await boss.create_queue(QueueSpec(name="q", retry=RetryPolicy(limit=9)))
    job = await boss.get_job(await boss.send("q", {}))
    assert job is not None and job.retry_limit == 9
    await boss.create_queues([QueueSpec(name="a"), QueueSpec(name="b", dead_letter="a")])
    assert [s.queue for s in await boss.all_queue_stats()] == ["a", "b", "q"]


async def test_queue_stats(boss: Boss) -> None:
    await make_queue(boss)
    await boss.send_many("q", [{}] * 5)
    await boss.send("q", {}, start_after=timedelta(hours=1))
    [job] = await boss.fetch("q")
    await boss.complete(job.id)
    stats = await boss.queue_stats("q")
    assert (stats.created, stats.active, stats.completed, stats.queued, stats.total) == (
        5,
        0,
        1,
        5,
        6,
    )
    assert stats.oldest_waiting is not None and stats.oldest_waiting >= timedelta(0)
