"""Fault 11 (SIGTERM with a grace period, then a second signal) and handlers that raise
something other than an ``Exception`` or return what JSON cannot hold."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

from ._harness import (
    FAST_BOSS,
    LEASE,
    MAINTENANCE,
    POLL,
    QUEUE,
    SLACK,
    Db,
    Procs,
    queue_config,
    wait_until,
)

NO_DELAY = RetryPolicy(limit=5, delay=timedelta(0), jitter=False)
GRACE = 3.0


@pytest.mark.slow
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync-in-threads"])
async def test_fault11_sigterm_with_grace_then_second_signal(
    procs: Procs, db: Db, boss: Boss, sync: bool
) -> None:
    """SIGTERM to ``queues worker --shutdown-grace G`` with one job of 0.5 G and one of 3 G
    running: nothing is claimed after the signal, the short job completes, the long one is
    cancelled at G and handed back without using up an attempt, and the process exits within
    G + 1 s. Then a second signal exits at once, and every job still completes later. Both
    with async handlers and with sync ones (which run in threads and cannot be interrupted:
    their job is handed back all the same, and the process does not wait for the thread)."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    short = await boss.send(QUEUE, {"sleep": 0.5 * GRACE})
    long = await boss.send(QUEUE, {"sleep_first": 3 * GRACE})
    first = procs.spawn_cli(
        "term",
        shutdown_grace=GRACE,
        queues=[queue_config(concurrency=4, sync=sync)],
        boss=FAST_BOSS,
    )
    await first.wait_ready()

    async def both_started() -> bool:
        return len(await db.started()) == 2

    await wait_until(both_started, timeout=SLACK, what="both jobs to start")
    first.signal(signal.SIGTERM)
    signalled = time.monotonic()
    late = await boss.send(QUEUE, {})
    await first.wait_exit(timeout=GRACE + 1.0 + SLACK)
    took = time.monotonic() - signalled
    assert took <= GRACE + 1.0, f"the process took {took:.2f} s to exit (grace {GRACE} s)"
    assert first.popen.returncode == 0, first.stderr()[-3000:]

    jobs = await db.jobs([short, long, late])
    assert jobs[str(short)].state == "completed"
    assert (jobs[str(long)].state, jobs[str(long)].retry_count) == ("created", 0)
    assert jobs[str(late)].state == "created", "a job was claimed after the stop signal"
    assert await db.effects() == {str(short): 1}  # the long one was cancelled before its end
    assert await db.scalar("SELECT count(*) FROM {s}.job WHERE start_after > now()") == 0

    # The second signal: the same long job (handed back, still on its first attempt) is
    # running again with a new one, the process is told twice and leaves at once.
    second = procs.spawn_cli(
        "twice",
        shutdown_grace=GRACE,
        queues=[queue_config(concurrency=4, sync=sync)],
        boss=FAST_BOSS,
    )
    await second.wait_ready()
    long2 = await boss.send(QUEUE, {"sleep_first": 3 * GRACE})

    async def long_jobs_running() -> bool:
        running = {job_id for job_id, _, pid in await db.started() if pid == second.pid}
        return {str(long), str(long2)} <= running

    await wait_until(long_jobs_running, timeout=SLACK, what="the long jobs to run again")
    second.signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    second.signal(signal.SIGTERM)
    signalled = time.monotonic()
    await second.wait_exit(timeout=SLACK)
    assert time.monotonic() - signalled <= 1.0, "the second signal did not exit at once"

    await procs.start("after", queues=[queue_config()], boss=FAST_BOSS)
    every = [short, long, late, long2]
    await wait_until(
        lambda: db.all_completed(every),
        timeout=LEASE + MAINTENANCE + POLL + SLACK,
        what="every job to complete after the abrupt exit",
    )


async def test_handler_non_exceptions_and_bad_outputs(procs: Procs, db: Db, boss: Boss) -> None:
    """A handler raising SystemExit, KeyboardInterrupt, asyncio.CancelledError or a bare
    BaseException, or returning an output JSON cannot hold (an object, NaN, a NUL), neither
    takes the worker down nor strands its job; ordinary jobs around them complete."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=RetryPolicy(limit=0)))
    raising = {
        kind: await boss.send(QUEUE, {"raise": kind})
        for kind in ("systemexit", "keyboardinterrupt", "cancelled", "baseexception")
    }
    outputs = {
        kind: await boss.send(QUEUE, {"output": kind}) for kind in ("unserialisable", "nan", "nul")
    }
    ordinary = await boss.send_many(QUEUE, [{} for _ in range(10)])
    worker = await procs.start("w", queues=[queue_config(concurrency=8)], boss=FAST_BOSS)
    every = [*raising.values(), *outputs.values(), *ordinary]

    async def all_finished() -> bool:
        jobs = await db.jobs(every)
        return all(j.state in ("completed", "failed") for j in jobs.values())

    await wait_until(all_finished, timeout=SLACK, what="every job to finish")
    jobs = await db.jobs(every)
    for kind, job_id in raising.items():
        row = jobs[str(job_id)]
        assert row.state == "failed", (kind, row)
        assert isinstance(row.output, dict) and "error" in row.output, (kind, row.output)
    for kind, job_id in outputs.items():
        row = jobs[str(job_id)]
        assert row.state == "completed", (kind, row)
        assert "\x00" not in str(row.output), (kind, row.output)
    assert all(jobs[str(i)].state == "completed" for i in ordinary)

    more = await boss.send_many(QUEUE, [{} for _ in range(5)])
    await wait_until(lambda: db.all_completed(more), timeout=SLACK, what="later jobs")
    assert worker.alive()
