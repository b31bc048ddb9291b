"""What the dashboard reads (``Boss.queue_overview``, ``Boss.queue_activity``): exact counts up
to the cap, estimates from statistics beyond it, and the last hour minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from typed_queues.runtime import Boss, JobState, QueueSpec
from typed_queues.runtime.client.overview import _oldest_wait, activity_minutes


async def test_counts_are_exact_up_to_the_cap_then_estimated(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await boss.create_queues([QueueSpec(name="big.one"), QueueSpec(name="small.one")])
    await boss.send_many("big.one", [{"n": n} for n in range(2500)])
    await boss.send_many("small.one", [{"n": n} for n in range(7)])
    for job in await boss.fetch("small.one", 3):
        await boss.complete(job)
    big, small = await boss.queue_overview()
    assert small.counts[JobState.CREATED].value == 4 and small.counts[JobState.CREATED].exact
    assert small.counts[JobState.COMPLETED].value == 3
    assert small.counts[JobState.FAILED].value == 0
    # Past the cap and before any ANALYZE: a lower bound.
    assert big.counts[JobState.CREATED].kind == "at_least"
    assert big.counts[JobState.CREATED].value == 1000
    # After ANALYZE: the estimate from the (queue, state) statistics of migration 0007.
    await db.execute(sql.SQL("ANALYZE {}.job").format(sql.Identifier(boss.schema)))
    [big] = await boss.queue_overview("big.one")
    created = big.counts[JobState.CREATED]
    assert created.kind == "estimate" and 2000 <= created.value <= 3000
    assert big.oldest_due is not None


async def test_the_last_hour_minute_by_minute(boss: Boss, db: psycopg.AsyncConnection[Any]) -> None:
    await boss.create_queues([QueueSpec(name="hour.one")])
    # Three jobs finished 10 minutes ago (one failed), due 4 minutes before they started.
    query = sql.SQL(
        """
        INSERT INTO {schema}.job (queue, state, data, start_after, started_on, completed_on)
        SELECT 'hour.one', s::{schema}.job_state, '{{}}',
               now() - interval '14 minutes', now() - interval '10 minutes',
               now() - interval '10 minutes'
        FROM unnest(ARRAY['completed', 'completed', 'failed']) AS s
        """
    ).format(schema=sql.Identifier(boss.schema))
    await db.execute(query)
    now, activity = await boss.queue_activity()
    hour = activity["hour.one"]
    assert len(hour.minutes) == 60 and hour.minutes[-1] <= now
    assert sum(hour.completed) == 2 and sum(hour.failed) == 1
    ten_ago = hour.minutes.index((now - timedelta(minutes=10)).replace(second=0, microsecond=0))
    assert hour.completed[ten_ago] == 2 and hour.failed[ten_ago] == 1
    # They waited from 14 to 10 minutes ago: the oldest wait peaks just before they started.
    assert max(hour.oldest_wait) >= 3 * 60 - 1
    assert hour.oldest_wait[-1] == 0 and not hour.partial


def test_the_oldest_wait_of_each_minute() -> None:
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    minutes = activity_minutes(now)
    left: list[datetime | None] = [None] * 60
    # A job due at 11:50:00 left (started) during the 11:55 minute; another is still queued,
    # due since 11:59:00.
    left[minutes.index(datetime(2026, 1, 1, 11, 55, tzinfo=UTC))] = datetime(
        2026, 1, 1, 11, 50, tzinfo=UTC
    )
    ages = _oldest_wait(now, minutes, left, datetime(2026, 1, 1, 11, 59, tzinfo=UTC))
    by_minute = dict(zip(minutes, ages, strict=True))
    assert by_minute[datetime(2026, 1, 1, 11, 49, tzinfo=UTC)] == 0  # nothing due yet
    assert by_minute[datetime(2026, 1, 1, 11, 50, tzinfo=UTC)] == 60  # at 11:51
    assert by_minute[datetime(2026, 1, 1, 11, 54, tzinfo=UTC)] == 300  # at 11:55
    assert by_minute[datetime(2026, 1, 1, 11, 55, tzinfo=UTC)] == 0  # it left; the next not due
    assert by_minute[datetime(2026, 1, 1, 11, 59, tzinfo=UTC)] == 60  # at 12:00
    assert ages[-1] == 90  # now, 12:00:30
