"""max_wait: a queued job that waits too long to start fails as WaitExpired (issue 16).

Time is never waited for: the tests move a job's ``start_after`` (when it became due) into the
past, as if it had waited that long, and run maintenance.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rt_support import NO_RETRY_DELAY, make_queue, rows, scalar, wait_until

from typed_queues.runtime import Boss, JobId, QueueSpec, SyncBoss, ValidationError
from typed_queues.runtime.jobs import Job, JobState

pytest_plugins = ["rt_fixtures"]

HOUR = timedelta(hours=1)


async def _due_since(db: psycopg.AsyncConnection[Any], schema: str, job: JobId, ago: str) -> None:
    """Make ``job`` look as if it had been due for ``ago`` (an interval)."""
    await rows(
        db,
        schema,
        "UPDATE {schema}.job SET start_after = now() - %s::interval WHERE id = %s",
        ago,
        job,
    )


async def _job(boss: Boss, job_id: JobId | None) -> Job:
    assert job_id is not None
    job = await boss.get_job(job_id)
    assert job is not None
    return job


async def _expired(boss: Boss, *, batch: int | None = None) -> int:
    result = await boss.run_maintenance(batch=batch)
    assert result is not None
    return result.expired


async def test_off_by_default(boss: Boss, db: psycopg.AsyncConnection[Any]) -> None:
    spec = await make_queue(boss)
    assert spec.max_wait is None
    job_id = await boss.send("q", {})
    await _due_since(db, boss.schema, job_id, "400 days")
    assert await _expired(boss) == 0
    assert (await _job(boss, job_id)).state is JobState.CREATED


async def test_jobs_waiting_longer_than_max_wait_fail_and_are_dead_lettered(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, "q-dead")
    await make_queue(boss, "q", max_wait=HOUR, dead_letter="q-dead", retry=NO_RETRY_DELAY)
    retried = await boss.send("q", {"n": "retried"}, priority=3)
    running = await boss.send("q", {"n": "running"}, priority=2)
    done = await boss.send("q", {"n": "done"}, priority=1)
    assert [job.id for job in await boss.fetch("q", batch_size=3)] == [retried, running, done]
    assert await boss.fail(retried, "boom")  # back to retry, one attempt used
    assert await boss.complete(done)
    never_ran = await boss.send("q", {"n": "never ran"})
    fresh = await boss.send("q", {"n": "fresh"})
    delayed = await boss.send("q", {"n": "delayed"}, start_after=timedelta(minutes=30))
    await _due_since(db, boss.schema, never_ran, "2 hours")
    await _due_since(db, boss.schema, retried, "3 hours")
    await _due_since(db, boss.schema, fresh, "59 minutes")
    await _due_since(db, boss.schema, running, "5 hours")  # active: not waiting
    await _due_since(db, boss.schema, done, "5 hours")  # finished: retention's business
    # Sent long ago but delayed: what counts is when it became due (in 30 minutes).
    await rows(
        db,
        boss.schema,
        "UPDATE {schema}.job SET created_on = now() - interval '3 hours' WHERE id = %s",
        delayed,
    )

    assert await _expired(boss) == 2

    states = {job_id: (await _job(boss, job_id)).state for job_id in (fresh, delayed, running)}
    assert states == {fresh: "created", delayed: "created", running: "active"}
    assert (await _job(boss, done)).state is JobState.COMPLETED
    for job_id, history in ((never_ran, "it never started"), (retried, "1 earlier attempt")):
        job = await _job(boss, job_id)
        assert job.state is JobState.FAILED
        assert job.completed_on is not None
        error = job.output["error"]
        assert error["type"] == "WaitExpired"
        assert "longer than its queue's max_wait of 1:00:00" in error["message"]
        assert history in error["message"]
        assert "worker" not in error  # decided by maintenance, not by a worker that ran it
        assert [e.type for e in job.errors][-1] == "WaitExpired"  # in its error history too
        assert job.errors[-1].dead_letter_id == job.dead_letter_id
        copy = await _job(boss, job.dead_letter_id)
        assert (copy.queue, copy.state, copy.data) == ("q-dead", JobState.CREATED, job.data)
        assert copy.output["error"]["type"] == "WaitExpired"
        assert copy.output["source_id"] == str(job_id)
    assert (await _job(boss, retried)).retry_count == 1  # no retry was added
    assert (await _job(boss, never_ran)).started_on is None  # it never ran

    assert await _expired(boss) == 0  # nothing left past max_wait
    assert (await _job(boss, never_ran)).state is JobState.FAILED


async def test_without_a_dead_letter_queue_the_job_just_fails(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, max_wait=timedelta(seconds=30))
    job_id = await boss.send("q", {})
    await _due_since(db, boss.schema, job_id, "31 seconds")
    assert await _expired(boss) == 1
    job = await _job(boss, job_id)
    assert (job.state, job.dead_letter_id) == (JobState.FAILED, None)


async def test_expiry_runs_in_bounded_batches(boss: Boss, db: psycopg.AsyncConnection[Any]) -> None:
    await make_queue(boss, max_wait=HOUR)
    await boss.send_many("q", [{"i": i} for i in range(5)])
    await rows(db, boss.schema, "UPDATE {schema}.job SET start_after = now() - interval '2h'")
    assert await _expired(boss, batch=2) == 5  # three transactions of at most two jobs
    assert (
        await scalar(db, boss.schema, "SELECT count(*) FROM {schema}.job WHERE state = 'failed'")
        == 5
    )


async def test_a_job_locked_by_a_claim_is_skipped(
    boss: Boss, dsn: str, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, max_wait=HOUR)
    locked, free = await boss.send_many("q", [{"n": 1}, {"n": 2}])
    await rows(db, boss.schema, "UPDATE {schema}.job SET start_after = now() - interval '2h'")
    async with await psycopg.AsyncConnection.connect(dsn) as other, other.transaction():
        await rows(
            other, boss.schema, "SELECT 1 FROM {schema}.job WHERE id = %s FOR UPDATE", locked
        )
        assert await _expired(boss) == 1  # the claim's lock wins; maintenance does not wait
        assert (await _job(boss, free)).state is JobState.FAILED
    assert await _expired(boss) == 1
    assert (await _job(boss, locked)).state is JobState.FAILED


async def test_the_workers_maintenance_expires_waiting_jobs(
    fast_boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(fast_boss, "nobody-consumes", max_wait=timedelta(minutes=5))
    await make_queue(fast_boss, "busy")
    job_id = await fast_boss.send("nobody-consumes", {})
    await _due_since(db, fast_boss.schema, job_id, "6 minutes")
    worker = fast_boss.worker("busy", lambda job: None)
    await worker.start()

    async def failed() -> bool:
        return (await _job(fast_boss, job_id)).state is JobState.FAILED

    await wait_until(failed)


async def test_create_queue_stores_and_clears_max_wait(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    query = "SELECT max_wait FROM {schema}.queue WHERE name = 'q'"
    await make_queue(boss, max_wait=timedelta(hours=2))
    assert await scalar(db, boss.schema, query) == timedelta(hours=2)
    await make_queue(boss)  # the policy is upserted whole: no max_wait turns it off
    assert await scalar(db, boss.schema, query) is None


def test_sync_create_queue_stores_max_wait(dsn: str, schema_name: str) -> None:
    with SyncBoss(dsn, schema=schema_name) as boss:
        boss.migrate()
        boss.create_queue(QueueSpec(name="q", max_wait=timedelta(minutes=10)))
    query = sql.SQL("SELECT max_wait FROM {}.queue").format(sql.Identifier(schema_name))
    with psycopg.connect(dsn) as conn:
        assert conn.execute(query).fetchall() == [(timedelta(minutes=10),)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "QueueSpec.max_wait must be positive"),
        (timedelta(seconds=-1), "QueueSpec.max_wait must be positive"),
        ("1h", "QueueSpec.max_wait must be a timedelta"),
    ],
)
def test_a_bad_max_wait_is_refused(value: Any, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        QueueSpec(name="q", max_wait=value)
