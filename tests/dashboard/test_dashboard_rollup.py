"""The per-minute figures maintenance keeps for the dashboard (migration 0008): the last hour
read from them and the minutes since equals the last hour counted from the job table."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec
from typed_queues.runtime.client.overview import QueueActivity
from typed_queues.runtime.db import Store


def _figures(activity: dict[str, QueueActivity]) -> dict[str, tuple[Any, ...]]:
    return {
        name: (one.minutes, one.completed, one.failed, one.oldest_wait)
        for name, one in activity.items()
    }


async def test_the_rolled_up_minutes_match_a_direct_count(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await boss.create_queues([QueueSpec(name="roll.a"), QueueSpec(name="roll.b")])
    # Jobs finished over the last 70 minutes (before the hour too), a few failed or cancelled,
    # some that started long before they finished (their wait ended in an earlier minute), and
    # some queued now.
    query = sql.SQL(
        """
        INSERT INTO {schema}.job (queue, state, data, start_after, started_on, completed_on)
        SELECT CASE WHEN n % 3 = 0 THEN 'roll.b' ELSE 'roll.a' END,
               (CASE WHEN n % 11 = 0 THEN 'failed' WHEN n % 13 = 0 THEN 'cancelled'
                     ELSE 'completed' END)::{schema}.job_state,
               '{{}}',
               now() - make_interval(secs => n * 7 + 60 + (n % 5) * 90),
               now() - make_interval(secs => n * 7 + 60 + CASE WHEN n % 4 = 0 THEN 600 ELSE 0 END),
               now() - make_interval(secs => n * 7)
        FROM generate_series(1, 600) AS n
        """
    ).format(schema=sql.Identifier(boss.schema))
    await db.execute(query)
    await boss.send_many("roll.a", [{"n": n} for n in range(3)])
    store = Store(boss.schema)
    schema = sql.Identifier(boss.schema)
    for _ in range(3):  # until both reads fall in the same minute
        await db.execute(sql.SQL("DELETE FROM {}.job_minute").format(schema))
        await db.execute(sql.SQL("DELETE FROM {}.job_minute_mark").format(schema))
        direct_now, direct = await boss.queue_activity()  # all from the job table
        async with db.transaction():
            written, _, mark = await store.job_minute_rollup(db)
        assert written > 0 and mark is not None
        async with db.transaction():  # nothing ended since: the figures are not added twice
            again, _, _ = await store.job_minute_rollup(db)
        assert again == 0
        rolled_now, rolled = await boss.queue_activity()
        if rolled[next(iter(rolled))].minutes == direct[next(iter(direct))].minutes:
            break
    assert sum(direct["roll.a"].completed) > 0 and sum(direct["roll.b"].failed) > 0
    counts = {name: figures[:3] for name, figures in _figures(rolled).items()}
    assert counts == {name: figures[:3] for name, figures in _figures(direct).items()}
    # The oldest wait is an age at the end of each minute: equal as the two clocks allow.
    for name in direct:
        for a, b in zip(direct[name].oldest_wait, rolled[name].oldest_wait, strict=True):
            assert abs(a - b) <= (rolled_now - direct_now).total_seconds() + 1e-6


async def test_the_activity_counts_jobs_finished_since_the_mark(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await boss.create_queues([QueueSpec(name="roll.c")])
    store = Store(boss.schema)
    async with db.transaction():
        await store.job_minute_rollup(db)
    await boss.send_many("roll.c", [{"n": n} for n in range(4)])
    for job in await boss.fetch("roll.c", 4):
        await boss.complete(job)
    _, activity = await boss.queue_activity()
    assert sum(activity["roll.c"].completed) == 4


async def test_maintenance_rolls_up_the_minutes_that_ended(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await boss.create_queues([QueueSpec(name="roll.d")])
    schema = sql.Identifier(boss.schema)
    await db.execute(
        sql.SQL(
            """
            INSERT INTO {}.job (queue, state, data, start_after, started_on, completed_on)
            SELECT 'roll.d', 'completed', '{{}}', now() - interval '6 minutes',
                   now() - interval '5 minutes', now() - interval '5 minutes'
            FROM generate_series(1, 5)
            """
        ).format(schema)
    )
    assert await boss.run_maintenance() is not None
    cur = await db.execute(
        sql.SQL("SELECT sum(completed), min(earliest_left) FROM {}.job_minute").format(schema)
    )
    completed, earliest = (await cur.fetchall())[0]
    assert completed == 5 and earliest is not None
    _, activity = await boss.queue_activity("roll.d")
    assert sum(activity["roll.d"].completed) == 5
