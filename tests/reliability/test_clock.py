"""Fault 15: worker clocks 10 minutes off; all lease and delay arithmetic uses the database's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

from ._harness import FAST_BOSS, LEASE, POLL, QUEUE, SLACK, Db, Procs, queue_config, wait_until

NO_DELAY = RetryPolicy(limit=5, delay=timedelta(0), jitter=False)
TEN_MINUTES = 600.0


async def _send_from_shifted_clock(procs: Procs, name: str, offset: float, delay: float) -> str:
    sender = procs.spawn(
        name,
        mode="send",
        clock_offset=offset,
        sends=[{"queue": QUEUE, "data": {}, "start_after_seconds": delay}],
    )
    assert await sender.wait_exit(timeout=60) == 0, sender.stderr()[-3000:]
    [line] = [line for line in sender.stdout().splitlines() if line.startswith("SENT ")]
    return line.split()[1]


@pytest.mark.slow
async def test_fault15_worker_clock_ten_minutes_off(procs: Procs, db: Db, boss: Boss) -> None:
    """Worker processes whose wall clocks are 10 minutes ahead and 10 minutes behind (both run
    maintenance): no long job is rescued early although its lease looks long expired or far
    away to one of them, and jobs delayed by 3 s from either clock start 3 s later by the
    database's clock, neither at once nor 10 minutes late."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    for name, offset in (("ahead", TEN_MINUTES), ("behind", -TEN_MINUTES)):
        await procs.start(
            name, queues=[queue_config(concurrency=1)], boss=FAST_BOSS, clock_offset=offset
        )
    long_jobs = await boss.send_many(QUEUE, [{"sleep": 3 * LEASE} for _ in range(2)])
    await wait_until(
        lambda: db.all_completed(long_jobs), timeout=3 * LEASE + SLACK, what="both long jobs"
    )
    for row in (await db.jobs(long_jobs)).values():
        assert (row.retry_count, row.fence) == (0, 1), f"rescued early: {row}"
    pids = {pid for _, _, pid in await db.started()}
    assert len(pids) == 2, "each worker ran one long job"

    delayed = [
        await _send_from_shifted_clock(procs, "send-ahead", TEN_MINUTES, 3.0),
        await _send_from_shifted_clock(procs, "send-behind", -TEN_MINUTES, 3.0),
    ]
    await wait_until(
        lambda: db.all_completed(delayed), timeout=3 + POLL + SLACK, what="the delayed jobs"
    )
    rows = await db.rows(
        "SELECT extract(epoch FROM start_after - created_on),"
        " extract(epoch FROM started_on - created_on) FROM {s}.job WHERE id = ANY(%s::uuid[])",
        (delayed,),
    )
    for planned, waited in rows:
        assert 2.9 <= float(planned) <= 3.1, f"start_after planned {planned} s after creation"
        assert 3.0 <= float(waited) <= 3.0 + POLL + SLACK, f"started {waited} s after creation"
