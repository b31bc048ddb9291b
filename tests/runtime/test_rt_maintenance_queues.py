"""Maintenance with many queues: one statement lists the queues that have finished jobs past
their retention (or archived jobs past their archive duration), and only those get retention
batches, so a round over 1,000 queues with nothing to delete runs no batch at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from rt_support import make_queue, rows, scalar

from typed_queues.runtime import Boss, QueueSpec

pytest_plugins = ["rt_fixtures"]

QUEUES = 1000
HOUR = timedelta(hours=1)


async def _age(db: psycopg.AsyncConnection[Any], schema: str, queue: str) -> None:
    """Finish every job of ``queue`` two hours ago."""
    await rows(
        db,
        schema,
        "UPDATE {schema}.job SET state = 'completed', completed_on = now() - interval '2 hours'"
        " WHERE queue = %s",
        queue,
    )


async def test_a_round_over_many_queues_runs_batches_only_where_jobs_are_due(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    specs = [QueueSpec(f"q{n:04d}", retention=HOUR) for n in range(QUEUES - 2)]
    specs += [QueueSpec(f"a{n}", retention=HOUR, archive=timedelta(days=1)) for n in range(2)]
    await boss.create_queues(specs)
    # jobs everywhere, finished just now or still queued: nothing is due anywhere
    await boss.send_many("q0001", [{}] * 3)
    await boss.send_many("a0", [{}] * 2)
    await boss.send("q0002", {})
    [job] = await boss.fetch("q0002")
    await boss.complete(job.id)  # finished just now: kept
    first = await boss.run_maintenance(batch=10)
    assert first is not None and first.batches == 0 and first.deleted == 0

    # due: 25 finished jobs of q0500 (3 batches of 10), the 3 of q0001, the 2 of a0 (archived)
    await boss.send_many("q0500", [{}] * 25)
    for queue in ("q0500", "q0001", "a0"):
        await _age(db, boss.schema, queue)
    await boss.send_many("q0500", [{}] * 4)  # queued: never deleted
    # and archived jobs of a1 past its archive duration
    await boss.send_many("a1", [{}] * 2)
    await _age(db, boss.schema, "a1")
    second = await boss.run_maintenance(batch=10)
    assert second is not None
    assert second.deleted == 25 + 3 + 2 + 2
    await rows(
        db,
        boss.schema,
        "UPDATE {schema}.job_archive SET archived_on = now() - interval '2 days'"
        " WHERE queue = 'a1'",
    )
    third = await boss.run_maintenance(batch=10)
    assert third is not None and third.archive_deleted == 2 and third.deleted == 0
    assert third.batches == 1  # a1's purge; a0's archive is young
    left = await rows(
        db, boss.schema, "SELECT queue, count(*) FROM {schema}.job GROUP BY queue ORDER BY queue"
    )
    assert left == [("q0002", 1), ("q0500", 4)]
    archived = await scalar(db, boss.schema, "SELECT count(*) FROM {schema}.job_archive")
    assert archived == 2  # a0's, kept for a day
    last = await boss.run_maintenance(batch=10)
    assert last is not None and last.batches == 0


async def test_a_queue_with_more_than_a_batch_due_is_retired_in_batches(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(boss, "big", retention=HOUR)
    await make_queue(boss, "idle", retention=HOUR)
    await boss.send_many("big", [{}] * 35)
    await _age(db, boss.schema, "big")
    result = await boss.run_maintenance(batch=10)
    assert result is not None and result.deleted == 35 and result.batches == 4
