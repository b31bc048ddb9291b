"""Faults 5 and 7: the database restarts under load; the completion write fails."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

from ._cluster import find_local_cluster
from ._harness import (
    FAST_BOSS,
    LEASE,
    MAINTENANCE,
    QUEUE,
    SLACK,
    Db,
    Procs,
    queue_config,
    wait_until,
)

NO_DELAY = RetryPolicy(limit=5, delay=timedelta(0), jitter=False)


async def _start_latency(db: Db, boss: Boss) -> float:
    """Send one job and return how long it waited to be claimed, by the database's clock."""
    job_id = await boss.send(QUEUE, {})

    async def claimed() -> float | None:
        latency = await db.scalar(
            "SELECT extract(epoch FROM started_on - created_on) FROM {s}.job WHERE id = %s",
            (job_id,),
        )
        return None if latency is None else float(latency) or 1e-6

    latency = await wait_until(claimed, timeout=30, what="a probe job to be claimed")
    assert latency is not None
    return latency


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_fault05_postgres_restart_under_load(
    procs: Procs, db: Db, boss: Boss, dsn: str
) -> None:
    """Restart PostgreSQL with 100 jobs in flight and 1000 queued: the workers recover without
    a process restart, all 1100 complete, LISTEN is re-subscribed and the wake-up latency is
    back under 50 ms within 30 s. The workers poll only every 10 s, so a start within 50 ms
    (and the four after it within 1 s) can only come from a notification."""
    cluster = find_local_cluster(dsn)
    if cluster is None:
        pytest.skip("needs a local Debian PostgreSQL cluster (QUEUES_TEST_DSN) to restart")
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    options = {**FAST_BOSS, "poll_interval": 10.0}
    workers = [
        await procs.start(f"w{i}", queues=[queue_config(concurrency=50)], boss=options)
        for i in range(2)
    ]
    in_flight = await boss.send_many(QUEUE, [{"sleep_first": 4} for _ in range(100)])

    async def all_in_flight() -> bool:
        return len({job_id for job_id, _, _ in await db.started()}) == 100

    await wait_until(all_in_flight, timeout=30, what="100 jobs in flight")
    queued = await boss.send_many(QUEUE, [{} for _ in range(1000)])
    assert await db.count_states() == {"active": 100, "created": 1000}

    try:
        cluster.restart()
    finally:
        cluster.ensure_running()
    restarted_at = time.monotonic()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        db = Db(conn, db.schema)
        every = [*in_flight, *queued]
        await wait_until(
            lambda: db.all_completed(every),
            timeout=60 + LEASE + MAINTENANCE,
            what="all 1100 jobs to complete after the restart",
            interval=0.5,
        )
        effects = await db.effects()
        assert all(effects.get(str(i), 0) >= 1 for i in every)
        for proc in workers:
            assert proc.alive(), f"worker {proc.name} died in the restart"
            assert "notification connection lost" in proc.stderr(), "no outage seen"

        latencies: list[float] = []
        while True:
            latency = await _start_latency(db, boss)
            latencies.append(latency)
            if latency < 0.05:
                break
            if time.monotonic() - restarted_at > 30 + SLACK:
                raise AssertionError(f"no wake-up under 50 ms within 30 s: {latencies}")
            await asyncio.sleep(0.3)
        for _ in range(4):
            await asyncio.sleep(0.3)
            latency = await _start_latency(db, boss)
            assert latency < 1.0, f"a job waited {latency:.3f} s: woken by polling, not LISTEN"


async def _fail_completions(db: Db, job_id: object, times: int | None) -> None:
    """A trigger raising on the completion UPDATE of ``job_id``: the first ``times`` of them,
    or every one when ``times`` is None. A sequence counts them (it survives rollbacks)."""
    await db.execute("CREATE SEQUENCE IF NOT EXISTS {s}.rel_fail_seq")
    limit = "2147483647" if times is None else str(int(times))
    await db.conn.execute(
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {s}.rel_fail_completion() RETURNS trigger"
            " LANGUAGE plpgsql AS $f$ BEGIN"
            " IF nextval({seq}) <= " + limit + " THEN"
            " RAISE EXCEPTION 'injected failure of the completion write'; END IF;"
            " RETURN NEW; END $f$"
        ).format(
            s=sql.Identifier(db.schema),
            seq=sql.Literal(f'"{db.schema}".rel_fail_seq'),
        )
    )
    await db.conn.execute(
        sql.SQL(
            "CREATE TRIGGER rel_fail_completion BEFORE UPDATE ON {s}.job FOR EACH ROW"
            " WHEN (OLD.id = {id} AND NEW.state = 'completed')"
            " EXECUTE FUNCTION {s}.rel_fail_completion()"
        ).format(s=sql.Identifier(db.schema), id=sql.Literal(str(job_id)))
    )


async def test_fault07_completion_write_fails_twice(procs: Procs, db: Db, boss: Boss) -> None:
    """The completion write fails transiently twice: the job ends completed, exactly once."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    job_id = await boss.send(QUEUE, {}, start_after=timedelta(seconds=2))
    await _fail_completions(db, job_id, times=2)
    worker = await procs.start("w", queues=[queue_config()], boss=FAST_BOSS)
    await wait_until(
        lambda: db.all_completed([job_id]),
        timeout=2 + LEASE + SLACK,
        what="the job to complete after two failed writes",
    )
    assert await db.scalar("SELECT last_value FROM {s}.rel_fail_seq") >= 3
    row = (await db.jobs([job_id]))[str(job_id)]
    assert (row.retry_count, row.fence) == (0, 1)
    assert await db.effects() == {str(job_id): 1}
    assert worker.alive()


@pytest.mark.slow
async def test_fault07_completion_write_fails_for_good(procs: Procs, db: Db, boss: Boss) -> None:
    """The completion write of one job fails for good: that job is not lost but rescued (its
    worker lets the lease go), and it completes once the write works again. Meanwhile the
    healthy jobs of the same process (long ones that need their heartbeats, short ones whose
    completions are batched with the failing one) are not held up: each completes on its first
    attempt, exactly once."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    job_id = await boss.send(QUEUE, {}, start_after=timedelta(seconds=2))
    long_jobs = await boss.send_many(QUEUE, [{"sleep": 4 * LEASE} for _ in range(4)])
    await _fail_completions(db, job_id, times=None)
    worker = await procs.start("w", queues=[queue_config(concurrency=20)], boss=FAST_BOSS)
    short_jobs: list[object] = []
    for _ in range(10):
        short_jobs += await boss.send_many(QUEUE, [{} for _ in range(5)])
        await asyncio.sleep(0.3)

    async def rescued() -> bool:
        return (await db.jobs([job_id]))[str(job_id)].retry_count >= 1

    await wait_until(rescued, timeout=2 + 2 * LEASE + SLACK, what="the failing job rescued")
    healthy = [*long_jobs, *short_jobs]
    await wait_until(
        lambda: db.all_completed(healthy), timeout=4 * LEASE + SLACK, what="the healthy jobs"
    )
    rows = await db.jobs(healthy)
    assert all(row.retry_count == 0 for row in rows.values()), "a healthy job was rescued"
    effects = await db.effects()
    assert all(effects[str(i)] == 1 for i in healthy)

    await db.execute("DROP TRIGGER rel_fail_completion ON {s}.job")
    await wait_until(
        lambda: db.all_completed([job_id]),
        timeout=LEASE + MAINTENANCE + SLACK,
        what="the rescued job to complete once writes work",
    )
    assert effects[str(job_id)] >= 1
    assert worker.alive()
