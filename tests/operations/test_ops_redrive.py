"""Redrive and retry of dead-lettered jobs: the copy is settled in the same transaction as the
original is requeued, so each job runs once more, never also as its copy."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss, JobContext, JobId, JobState, QueuesError, UnknownQueueError

from .ops_support import DEAD, WORK, fast_boss, make_queues, rows, wait_until

N = 20


async def _dead_letter(boss: Boss, count: int) -> list[JobId]:
    """Send ``count`` jobs to ``ops.work`` and fail each for good (a copy lands in DEAD)."""
    ids = await boss.send_many(WORK, [{"n": n} for n in range(count)])
    failed: list[JobId] = []
    while len(failed) < count:
        for job in await boss.fetch(WORK, batch_size=count):
            assert await boss.fail(job, RuntimeError(f"job {job.data['n']} failed"))
            failed.append(job.id)
    assert sorted(failed) == sorted(ids)
    return ids


async def _settled(boss: Boss, ids: list[JobId]) -> bool:
    """No job of both queues is queued or running."""
    for queue in (WORK, DEAD):
        for state in (JobState.CREATED, JobState.RETRY, JobState.ACTIVE):
            page = await boss.list_jobs(queue=queue, state=state, limit=1)
            if page.jobs:
                return False
    return True


async def test_redrive_under_a_running_dead_letter_worker_runs_each_job_exactly_once(
    dsn: str, schema_name: str
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        ids = await _dead_letter(boss, N)
        runs: Counter[int] = Counter()
        copy_runs: Counter[int] = Counter()
        release = asyncio.Event()
        started = asyncio.Event()

        async def dead_letters(job: JobContext) -> None:
            copy_runs[job.data["n"]] += 1
            started.set()
            await release.wait()  # holds its slots while the redrive runs

        async def work(job: JobContext) -> None:
            runs[job.data["n"]] += 1

        dead_worker = boss.worker(DEAD, dead_letters, concurrency=2)
        work_worker = boss.worker(WORK, work, concurrency=5)
        await dead_worker.start()
        await work_worker.start()
        await started.wait()

        report = await boss.redrive(DEAD)
        release.set()
        await wait_until(lambda: _settled(boss, ids))
        await dead_worker.stop()
        await work_worker.stop()

        # the copies the dead-letter worker was running were left to it, the rest redriven
        assert report.requeued == N - sum(1 for n in copy_runs if copy_runs[n])
        assert report.requeued >= N - 2 - dead_worker.concurrency * 2  # (claimed ahead)
        assert all(item.settled == item.requeued for item in report.items)
        # every job ran exactly once after the redrive began: as its original or as its copy
        assert {n: runs[n] + copy_runs[n] for n in range(N)} == dict.fromkeys(range(N), 1)
        for item in report.items:
            copy = await boss.get_job(item.copy_id)
            assert copy is not None
            assert copy.state is JobState.COMPLETED
            assert copy.output["redriven"] is True
            assert copy.output["source_id"] == str(item.original_id)
            assert item.original_id is not None
            original = await boss.get_job(item.original_id)
            assert original is not None
            assert original.state is JobState.COMPLETED
        # a second redrive finds nothing left to do
        again = await boss.redrive(DEAD)
        assert again.requeued == 0


async def test_a_dry_run_writes_nothing_and_limit_bounds_the_redrive(
    dsn: str, schema_name: str
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        ids = await _dead_letter(boss, 5)
        dry = await boss.redrive(DEAD, dry_run=True)
        assert dry.dry_run
        assert (dry.requeued, dry.settled, dry.skipped) == (5, 5, 0)
        assert {item.original_id for item in dry.items} == set(ids)
        for job_id in ids:
            job = await boss.get_job(job_id)
            assert job is not None
            assert job.state is JobState.FAILED

        first = await boss.redrive(DEAD, limit=2)
        assert (first.requeued, len(first.items)) == (2, 2)
        rest = await boss.redrive(DEAD)
        assert rest.requeued == 3
        assert {item.original_id for item in first.items + rest.items} == set(ids)
        states = Counter(job.state for job in [await boss.get_job(job_id) for job_id in ids] if job)
        assert states == {JobState.RETRY: 5}


async def test_copies_whose_original_is_gone_or_already_retried(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        deleted, retried, plain = await _dead_letter(boss, 3)
        await rows(db, schema_name, "DELETE FROM {schema}.job WHERE id = %s", deleted)
        assert await boss.retry(retried)  # settles its copy at once
        await boss.send(DEAD, {"not": "a copy"})  # sent directly: never redriven

        report = await boss.redrive(DEAD)
        outcomes = {item.original_id: item for item in report.items}
        assert set(outcomes) == {deleted, plain}
        assert not outcomes[deleted].requeued and not outcomes[deleted].settled
        assert "no longer exists" in outcomes[deleted].outcome
        assert outcomes[plain].requeued
        # the copy of the deleted original stays, and a second redrive leaves it alone again
        again = await boss.redrive(DEAD)
        assert [item.original_id for item in again.items] == [deleted]
        assert again.requeued == 0


async def test_retry_of_a_dead_lettered_job_settles_its_copy(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        [job_id] = await _dead_letter(boss, 1)
        job = await boss.get_job(job_id)
        assert job is not None and job.dead_letter_id is not None

        assert await boss.retry(job_id)
        copy = await boss.get_job(job.dead_letter_id)
        assert copy is not None
        assert copy.state is JobState.COMPLETED
        assert copy.output["note"] == "settled: the original job was retried"
        assert not await boss.fetch(DEAD)  # nothing left for a dead-letter worker
        [again] = await boss.fetch(WORK)
        assert again.id == job_id
        assert not await boss.retry(job_id)  # active, not failed


async def test_retry_waits_for_a_copy_being_run(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        [job_id] = await _dead_letter(boss, 1)
        [copy] = await boss.fetch(DEAD)  # a dead-letter worker runs the copy right now
        with pytest.raises(QueuesError, match="running in queue"):
            await boss.retry(job_id)
        job = await boss.get_job(job_id)
        assert job is not None and job.state is JobState.FAILED
        assert await boss.complete(copy)
        assert await boss.retry(job_id)  # once its run finished


async def test_retry_in_the_callers_transaction(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        [job_id] = await _dead_letter(boss, 1)
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            assert await boss.retry(job_id, conn=conn)
            await conn.rollback()
        job = await boss.get_job(job_id)
        assert job is not None and job.state is JobState.FAILED
        assert job.dead_letter_id is not None
        copy = await boss.get_job(job.dead_letter_id)
        assert copy is not None and copy.state is JobState.CREATED


async def test_redrive_checks_its_arguments(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss)
        with pytest.raises(UnknownQueueError):
            await boss.redrive("ops.nowhere")
        with pytest.raises(ValueError, match="invalid queue name"):
            await boss.redrive("bad name;")
        with pytest.raises(ValueError, match="limit must be an integer from 1"):
            await boss.redrive(DEAD, 0)
        assert (await boss.redrive(WORK)).items == []
