"""Archive: a queue with ``archive`` moves its finished jobs to the archive after retention
(instead of deleting them), deletes them from there after the archive duration, and
``get_job`` still finds them meanwhile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, JobState, QueueSpec, SyncBoss

KEPT = QueueSpec(name="a.kept", retention=timedelta(minutes=1), archive=timedelta(days=30))
PLAIN = QueueSpec(name="a.plain", retention=timedelta(minutes=1))


async def age(db: psycopg.AsyncConnection[Any], schema: str, table: str, column: str) -> None:
    """Pretend everything in ``table`` happened two hours ago... or 40 days for the archive."""
    back = "40 days" if table == "job_archive" else "2 hours"
    await db.execute(
        sql.SQL("UPDATE {}.{} SET {} = {} - %s::interval").format(
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.Identifier(column),
            sql.Identifier(column),
        ),
        (back,),
    )


async def count(db: psycopg.AsyncConnection[Any], schema: str, table: str) -> int:
    cur = await db.execute(
        sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    )
    [(n,)] = await cur.fetchall()
    return int(n)


async def test_finished_jobs_move_to_the_archive_and_stay_found(
    quick_boss: Boss, db: psycopg.AsyncConnection[Any], schema_name: str, dsn: str
) -> None:
    await quick_boss.create_queues([KEPT, PLAIN])
    kept = await quick_boss.send("a.kept", {"n": 1}, priority=4)
    plain = await quick_boss.send("a.plain", {"n": 2})
    queued = await quick_boss.send("a.kept", {"n": 3})
    for queue in ("a.kept", "a.plain"):
        [job] = await quick_boss.fetch(queue)
        assert await quick_boss.complete(job, {"ok": queue})
    await age(db, schema_name, "job", "completed_on")
    result = await quick_boss.run_maintenance(batch=1)  # batches of one: the loop is bounded
    assert result is not None and result.deleted == 2
    assert await count(db, schema_name, "job_archive") == 1
    assert await quick_boss.get_job(plain) is None  # without archive: deleted, as before
    found = await quick_boss.get_job(kept)
    assert found is not None and found.archived_on is not None
    assert found.state == JobState.COMPLETED and found.output == {"ok": "a.kept"}
    assert found.priority == 4 and found.data == {"n": 1} and found.retry_limit == 3
    with SyncBoss(dsn, schema=schema_name) as sync:
        again = sync.get_job(kept)
        assert again is not None and again.archived_on == found.archived_on
    still = await quick_boss.get_job(queued)
    assert still is not None and still.archived_on is None
    # after the archive duration, maintenance deletes it from the archive too
    await age(db, schema_name, "job_archive", "archived_on")
    result = await quick_boss.run_maintenance()
    assert result is not None and result.archive_deleted == 1
    assert await quick_boss.get_job(kept) is None


async def test_turning_the_archive_off_deletes_as_before(
    quick_boss: Boss, db: psycopg.AsyncConnection[Any], schema_name: str
) -> None:
    await quick_boss.create_queues([KEPT])
    await quick_boss.create_queues([QueueSpec(name="a.kept", retention=timedelta(minutes=1))])
    await quick_boss.send("a.kept", {"n": 1})
    [job] = await quick_boss.fetch("a.kept")
    await quick_boss.complete(job)
    await age(db, schema_name, "job", "completed_on")
    await quick_boss.run_maintenance()
    assert await count(db, schema_name, "job_archive") == 0
    assert await quick_boss.get_job(job.id) is None
