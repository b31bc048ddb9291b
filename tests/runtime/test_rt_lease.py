"""Leases, heartbeats, rescue after a killed worker process, and fencing of stale writes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rt_support import NO_RETRY_DELAY, count_jobs, make_queue, rows, wait_until

from typed_queues.runtime import Boss, JobContext, JobId, JobState, Worker

pytest_plugins = ["rt_fixtures"]

_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import timedelta
    from typed_queues.runtime import Boss, Worker

    async def main(dsn, schema):
        boss = Boss(dsn, schema=schema, lease=timedelta(seconds=1), poll_interval=0.1)
        await boss.start()

        async def handler(ctx):
            await asyncio.sleep(3600)

        await Worker(boss, "q", handler, concurrency=10).start()
        print("READY", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _spawn_holder(tmp_path: Path, dsn: str, schema: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(
        [sys.executable, str(script), dsn, schema], env=env, stdout=subprocess.PIPE
    )


async def test_jobs_of_a_killed_worker_process_are_rescued(
    dsn: str, schema_name: str, fast_boss: Boss, db: psycopg.AsyncConnection[Any], tmp_path: Path
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    ids = await fast_boss.send_many("q", [{"n": n} for n in range(10)])
    proc = _spawn_holder(tmp_path, dsn, schema_name)
    try:

        async def all_active() -> bool:
            return await count_jobs(db, schema_name, "active") == 10

        await wait_until(all_active, within=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    async def handler(ctx: JobContext) -> str:
        return "rescued"

    worker = Worker(fast_boss, "q", handler)
    await worker.start()

    async def all_completed() -> bool:
        return await count_jobs(db, schema_name, "completed") == 10

    await wait_until(all_completed, within=20)
    await worker.stop()
    for job_id in ids:
        job = await fast_boss.get_job(job_id)
        assert job is not None
        assert (job.state, job.retry_count, job.fence, job.output) == (
            JobState.COMPLETED,
            1,
            2,
            "rescued",
        )


async def test_heartbeats_keep_a_long_job_alive(fast_boss: Boss) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)

    async def handler(ctx: JobContext) -> str:
        await asyncio.sleep(3.5)  # 3.5 leases, with maintenance every 0.3 s
        return "done"

    job_id = await fast_boss.send("q", {})
    worker = Worker(fast_boss, "q", handler)
    await worker.start()

    async def completed() -> bool:
        job = await fast_boss.get_job(job_id)
        return job is not None and job.state is JobState.COMPLETED

    await wait_until(completed, within=15)
    await worker.stop()
    job = await fast_boss.get_job(job_id)
    assert job is not None and (job.retry_count, job.fence) == (0, 1)


async def test_a_stale_worker_cannot_finish_a_reclaimed_job(
    dsn: str, schema_name: str, fast_boss: Boss, caplog: pytest.LogCaptureFixture
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    release = asyncio.Event()
    claimed = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="queues.worker")

    async def stale_handler(ctx: JobContext) -> str:
        claimed.set()
        await release.wait()
        await ctx.heartbeat()  # lost: changes nothing, logs
        return "stale"

    async def fresh_handler(ctx: JobContext) -> str:
        return "fresh"

    job_id = await fast_boss.send("q", {})
    stale_boss = Boss(dsn, schema=schema_name, lease=timedelta(seconds=1), maintenance=False)
    await stale_boss.start()
    try:
        stale = Worker(stale_boss, "q", stale_handler, concurrency=1)
        await stale.start()
        await asyncio.wait_for(claimed.wait(), 10)
        assert stale_boss.worker_services is not None
        stale_boss.worker_services.writer.suspend_heartbeats(job_id)  # as if the process froze
        # fast_boss's maintenance rescues the job once its lease is out; its worker re-claims it
        fresh = Worker(fast_boss, "q", fresh_handler)
        await fresh.start()

        async def completed() -> bool:
            job = await fast_boss.get_job(job_id)
            return job is not None and job.state is JobState.COMPLETED

        await wait_until(completed, within=10)
        await fresh.stop()
        release.set()  # the stale worker now finishes: complete with its old fencing token
        await stale.stop(timeout=5)
    finally:
        await stale_boss.stop(timeout=1)
    job = await fast_boss.get_job(job_id)
    assert job is not None
    assert (job.state, job.output, job.fence, job.retry_count) == (
        JobState.COMPLETED,
        "fresh",
        2,
        1,
    )
    lost = [r.getMessage() for r in caplog.records if "lost the lease" in r.getMessage()]
    assert any("heartbeat" in m for m in lost) and any(str(job_id) in m for m in lost)


async def test_fenced_writes_of_an_old_claim_change_nothing(
    fast_boss: Boss, dsn: str, db: psycopg.AsyncConnection[Any]
) -> None:
    from psycopg_pool import AsyncConnectionPool

    from typed_queues.runtime.db import Store
    from typed_queues.runtime.worker.result_writer import ResultWriter

    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    job_id = await fast_boss.send("q", {})
    [first] = await fast_boss.fetch("q")
    await rows(
        db, fast_boss.schema, "UPDATE {schema}.job SET state = 'retry' WHERE id = %s", job_id
    )
    [second] = await fast_boss.fetch("q")
    assert (first.fence, second.fence) == (1, 2)
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    )
    await pool.open()
    writer = ResultWriter(
        pool, Store(fast_boss.schema), lease=timedelta(seconds=5), heartbeat_interval=60
    )
    writer.start()
    try:
        assert not await writer.heartbeat_one(job_id, first.fence)
        writer.complete(job_id, first.fence, '"old"')
        writer.fail(JobId(job_id), first.fence, '{"error": {"message": "old"}}', True)
        await writer.flush(timeout=5)
        job = await fast_boss.get_job(job_id)
        assert job is not None and job.state is JobState.ACTIVE and job.output is None
        assert await writer.heartbeat_one(job_id, second.fence)
        writer.complete(job_id, second.fence, '"new"')
        await writer.flush(timeout=5)
    finally:
        await writer.stop()
        await pool.close()
    job = await fast_boss.get_job(job_id)
    assert job is not None and job.state is JobState.COMPLETED and job.output == "new"


async def test_database_expiry_of_an_overrunning_fetched_job(
    fast_boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    await make_queue(fast_boss, retry=NO_RETRY_DELAY, expire_in=timedelta(seconds=5))
    job_id = await fast_boss.send("q", {})
    await fast_boss.fetch("q")
    await rows(
        db,
        fast_boss.schema,
        "UPDATE {schema}.job SET started_on = now() - interval '1 minute' WHERE id = %s",
        job_id,
    )

    async def handler(ctx: JobContext) -> None:
        await asyncio.sleep(3600)

    # a worker on another queue makes this Boss run maintenance
    await make_queue(fast_boss, "other")
    worker = Worker(fast_boss, "other", handler)
    await worker.start()

    async def expired() -> bool:
        found = await fast_boss.get_job(job_id)
        return found is not None and found.state is JobState.RETRY

    await wait_until(expired, within=10)
    await worker.stop()
    found = await fast_boss.get_job(job_id)
    assert found is not None and found.output["error"]["type"] == "JobExpired"


async def test_a_failed_completion_write_is_retried_and_writes_are_batched(
    fast_boss: Boss, db: psycopg.AsyncConnection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typed_queues.runtime.worker.result_writer import ResultWriter

    await make_queue(fast_boss, retry=NO_RETRY_DELAY)
    real = ResultWriter._write_done
    calls: list[int] = []

    async def flaky(self: ResultWriter, batch: list[Any]) -> None:
        calls.append(len(batch))
        if len(calls) <= 2:
            raise psycopg.OperationalError("injected: connection lost")
        await real(self, batch)

    monkeypatch.setattr(ResultWriter, "_write_done", flaky)

    async def handler(ctx: JobContext) -> int:
        return int(ctx.data["n"])

    ids = await fast_boss.send_many("q", [{"n": n} for n in range(200)])
    worker = Worker(fast_boss, "q", handler, concurrency=50)
    await worker.start()

    async def all_completed() -> bool:
        return await count_jobs(db, fast_boss.schema, "completed") == 200

    await wait_until(all_completed)
    await worker.stop()
    assert len(calls) >= 3  # two failed writes, then the same results again
    assert len(calls) < 100  # far fewer statements than jobs
    for n, job_id in enumerate(ids):
        job = await fast_boss.get_job(job_id)
        assert job is not None and (job.output, job.retry_count, job.fence) == (n, 0, 1)


@pytest.mark.parametrize("how", ["claimed again elsewhere", "cancelled"])
async def test_a_worker_that_loses_the_lease_stops_the_handler(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any], how: str
) -> None:
    # The next heartbeat finds the lease gone: the handler is cancelled and the stale worker
    # writes nothing for the job, so it never runs on beside the worker that now owns it.
    async with Boss(
        dsn, schema=schema_name, lease=timedelta(seconds=3), heartbeat_interval=0.2
    ) as boss:
        await make_queue(boss)
        started, stopped = asyncio.Event(), asyncio.Event()

        async def handler(ctx: JobContext) -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                stopped.set()
                raise

        worker = Worker(boss, "q", handler, concurrency=2)
        await worker.start()
        job_id = await boss.send("q", {})
        await asyncio.wait_for(started.wait(), 10)
        if how == "cancelled":
            assert await boss.cancel(job_id)
        else:  # what another worker's claim after a rescue leaves: a new fence
            await db.execute(
                psycopg.sql.SQL("UPDATE {}.job SET fence = fence + 1 WHERE id = %s").format(
                    psycopg.sql.Identifier(schema_name)
                ),
                (job_id,),
            )
        await asyncio.wait_for(stopped.wait(), 5)
        await worker.stop(timeout=5)
        job = await boss.get_job(job_id)
        assert job is not None
        expected = "cancelled" if how == "cancelled" else "active"
        assert job.state == expected and job.output is None
        assert worker.active_jobs == 0


async def test_a_handlers_own_heartbeat_extends_its_lease(dsn: str, schema_name: str) -> None:
    # job.heartbeat() (the worker's JobContext sends it to the result writer): the lease the
    # database holds moves forward while the handler runs (the writer's own timer is far off),
    # and the job still completes once.
    async with Boss(
        dsn, schema=schema_name, lease=timedelta(seconds=30), heartbeat_interval=60
    ) as boss:
        await make_queue(boss, retry=NO_RETRY_DELAY)
        leases: list[Any] = []

        async def lease_until(job_id: JobId) -> Any:
            job = await boss.get_job(job_id)
            assert job is not None
            return job.lease_until

        async def handler(ctx: JobContext) -> str:
            leases.append(await lease_until(ctx.id))
            for _ in range(2):
                await asyncio.sleep(0.05)
                await ctx.heartbeat()
                leases.append(await lease_until(ctx.id))
            return "done"

        job_id = await boss.send("q", {})
        worker = Worker(boss, "q", handler)
        await worker.start()

        async def completed() -> bool:
            job = await boss.get_job(job_id)
            return job is not None and job.state is JobState.COMPLETED

        await wait_until(completed, within=15)
        await worker.stop()
        assert len(leases) == 3 and leases[0] < leases[1] < leases[2]
        job = await boss.get_job(job_id)
        assert job is not None and (job.output, job.fence) == ("done", 1)
