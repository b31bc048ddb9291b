"""Faults 6, 8, 9, 10 and 18: delivery without notifications, transactional enqueue, singleton
races, many workers racing for the same jobs, and a pool smaller than the concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss, ConfigurationError, QueueSpec, RetryPolicy, SyncBoss
from typed_queues.runtime.db.identifiers import channel_name

from ._harness import (
    FAST_BOSS,
    LEASE,
    POLL,
    QUEUE,
    SLACK,
    Db,
    Procs,
    log_records,
    queue_config,
    wait_until,
)

NO_DELAY = RetryPolicy(limit=5, delay=timedelta(0), jitter=False)


@pytest.mark.slow
async def test_fault06_no_notifications_polling_still_delivers(
    procs: Procs, db: Db, boss: Boss
) -> None:
    """Every notification dropped (``listen=False``): 1000 jobs all start, each within P + 1 s
    of being sent. They are sent in 20 batches of 50, half a second apart, so that the worker's
    capacity is never what delays a job."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    options = {**FAST_BOSS, "listen": False}
    await procs.start("deaf", queues=[queue_config(concurrency=50)], boss=options)
    ids: list[Any] = []
    for _ in range(20):
        ids += await boss.send_many(QUEUE, [{} for _ in range(50)])
        await asyncio.sleep(0.5)
    await wait_until(lambda: db.all_completed(ids), timeout=POLL + SLACK, what="all 1000 jobs")
    worst = await db.scalar("SELECT max(extract(epoch FROM started_on - created_on)) FROM {s}.job")
    assert float(worst) <= POLL + 1.0, f"a job waited {worst} s to start"


#: More jobs than ``Boss(copy_threshold=2000)``: such a batch is written with COPY.
COPY_SIZE = 2001


async def _drain(conn: psycopg.AsyncConnection[Any], seconds: float) -> list[str]:
    return [n.payload async for n in conn.notifies(timeout=seconds)]


async def test_fault08_enqueue_in_caller_transaction(
    procs: Procs, db: Db, boss: Boss, dsn: str
) -> None:
    """Enqueue in a caller's transaction: rolled back -> no job and no wake-up; committed ->
    visible and woken only after the commit. The worker polls only every 60 s, so its prompt
    start proves the wake-up came with the commit."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    options = {**FAST_BOSS, "poll_interval": 60.0}
    await procs.start("w", queues=[queue_config(concurrency=50)], boss=options, recorder="batched")
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(dsn) as caller,
    ):
        await listener.execute(f'LISTEN "{channel_name(db.schema)}"')

        async with caller.transaction(force_rollback=True):
            rolled_back = await boss.send(QUEUE, {}, conn=caller)
            rolled_back_many = await boss.send_many(QUEUE, [{} for _ in range(3)], conn=caller)
            many: list[dict[str, Any]] = [{} for _ in range(COPY_SIZE)]
            rolled_back_copy = await boss.send_many(QUEUE, many, conn=caller)
        with (
            psycopg.connect(dsn) as sync_caller,
            SyncBoss(dsn, schema=db.schema) as sync_boss,
            sync_caller.transaction(force_rollback=True),
        ):
            rolled_back_sync = sync_boss.send(QUEUE, {}, conn=sync_caller)
            sync_boss.send_many(QUEUE, [{} for _ in range(COPY_SIZE)], conn=sync_caller)
        assert await boss.get_job(rolled_back) is None
        assert await boss.get_job(rolled_back_sync) is None
        assert await db.jobs() == {}, "a rolled-back send left a job"
        assert await _drain(listener, 1.0) == [], "a rolled-back send woke the workers"
        assert len(rolled_back_many) + len(rolled_back_copy) == COPY_SIZE + 3

        async with caller.transaction():
            committed = await boss.send(QUEUE, {}, conn=caller)
            assert await boss.get_job(committed) is None, "visible before the commit"
            assert await _drain(listener, 1.0) == [], "woken before the commit"
        assert await _drain(listener, 2.0) == [QUEUE]
        await wait_until(
            lambda: db.all_completed([committed]), timeout=SLACK, what="the committed job"
        )

        async with caller.transaction():
            batch = await boss.send_many(QUEUE, [{} for _ in range(COPY_SIZE)], conn=caller)
            assert await _drain(listener, 1.0) == [], "woken before the commit"
        assert await _drain(listener, 2.0) == [QUEUE]

        async def batch_started() -> bool:
            return bool(
                await db.scalar(
                    "SELECT count(*) FROM {s}.job WHERE started_on IS NOT NULL AND id = ANY(%s)",
                    (batch,),
                )
            )

        await wait_until(batch_started, timeout=SLACK, what="the batch to be woken")
        await wait_until(lambda: db.all_completed(batch), timeout=60, what="the whole batch")
        assert len(await db.jobs()) == COPY_SIZE + 1


def _app_name(db: Db) -> str:
    return f"rel-singleton-{db.schema}"


async def _send_singleton(
    boss: Boss,
    dsn: str,
    app_name: str,
    *,
    sent: asyncio.Event | None = None,
    gate: asyncio.Event | None = None,
    rollback: bool = False,
) -> Any:
    async with await psycopg.AsyncConnection.connect(dsn, application_name=app_name) as conn:
        async with conn.transaction(force_rollback=rollback):
            job_id = await boss.send(QUEUE, {}, conn=conn, singleton_key="only-one")
            if sent is not None:
                sent.set()
            if gate is not None:
                await gate.wait()
        return job_id


@pytest.mark.parametrize("winner_rolls_back", [False, True], ids=["commit", "rollback"])
async def test_fault09_singleton_send_race(
    db: Db, boss: Boss, dsn: str, winner_rolls_back: bool
) -> None:
    """50 concurrent transactions send one singleton key: exactly one job, and every sender
    gets its id. When the first (winning) transaction rolls back while the 49 others wait on
    it, one job still exists afterwards."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    app_name = _app_name(db)
    sent, gate = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        _send_singleton(boss, dsn, app_name, sent=sent, gate=gate, rollback=winner_rolls_back)
    )
    await asyncio.wait_for(sent.wait(), SLACK)
    others = [asyncio.create_task(_send_singleton(boss, dsn, app_name)) for _ in range(49)]

    async def others_waiting() -> bool:
        waiting = await db.scalar(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (app_name,),
        )
        return int(waiting) >= 49

    await wait_until(others_waiting, timeout=2 * SLACK, what="49 senders blocked on the first")
    gate.set()
    first_id = await first
    other_ids = await asyncio.gather(*others)
    rows = await db.rows(
        "SELECT id FROM {s}.job WHERE queue = %s AND singleton_key = 'only-one'", (QUEUE,)
    )
    assert len(rows) == 1, f"{len(rows)} jobs for one singleton key"
    [(survivor,)] = rows
    assert set(other_ids) == {survivor}
    if not winner_rolls_back:
        assert first_id == survivor


def _read_executions(folder: Path) -> list[str]:
    """Job ids of every execution the worker processes appended to their files."""
    executions: list[str] = []
    for path in folder.glob("*.executions"):
        executions += [line.split()[1] for line in path.read_text().splitlines()]
    return executions


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_fault10_twenty_processes_race_for_100k_jobs(
    procs: Procs, db: Db, boss: Boss, tmp_path: Path
) -> None:
    """20 worker processes x concurrency 10 over 100k jobs: each executed once (100k in all),
    and no deadlock or serialization error reaches a user (no failed attempt, no error log).
    Executions are appended to one file per process (no process is killed here), which keeps
    each process at four connections: 20 of them fit PostgreSQL's default 100."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    total = 100_000
    for start in range(0, total, 10_000):
        await boss.send_many(QUEUE, [{"n": n} for n in range(start, start + 10_000)])
    options = {**FAST_BOSS, "lease": 30.0, "max_pool_size": 1, "worker_pool_size": 2}
    workers = [
        procs.spawn(
            f"w{i:02d}",
            queues=[queue_config(concurrency=10)],
            boss=options,
            recorder="file",
            record_file=str(tmp_path / f"w{i:02d}.executions"),
            record_start=False,
        )
        for i in range(20)
    ]
    for proc in workers:
        await proc.wait_ready(timeout=120)

    async def all_done() -> bool:
        states = await db.count_states()
        return states.get("completed", 0) == total

    await wait_until(all_done, timeout=780, what="100k jobs completed", interval=1.0)
    executions = _read_executions(tmp_path)
    assert len(executions) == total, f"{len(executions) - total:+d} executions"
    assert len(set(executions)) == total
    assert await db.scalar("SELECT count(*) FROM {s}.job WHERE retry_count > 0") == 0
    for proc in workers:
        assert proc.alive()
        errors = [r for r in log_records(proc.stderr()) if r.get("level") in ("ERROR", "CRITICAL")]
        assert not errors, f"{proc.name} logged errors: {errors[:3]}"
        text = proc.stderr().lower()
        assert "deadlock" not in text and "serializ" not in text, text[-3000:]


@pytest.mark.parametrize("pool_size", [1, 2])
@pytest.mark.slow
async def test_fault18_pool_smaller_than_concurrency(
    procs: Procs, db: Db, boss: Boss, pool_size: int
) -> None:
    """Pools smaller than the concurrency (the Boss's pool, which handlers use, and the
    workers' own pool for claims, heartbeats and results), with 10 handlers using the database
    all the time: heartbeats and completions still progress (no job is rescued, all complete on
    their first attempt), or the start is refused with a clear ConfigurationError."""
    await boss.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY))
    options = {**FAST_BOSS, "max_pool_size": pool_size, "worker_pool_size": pool_size}
    proc = procs.spawn("small-pool", queues=[queue_config(concurrency=10)], boss=options)
    try:
        await proc.wait_ready()
    except AssertionError:
        text = proc.stderr()
        assert ConfigurationError.__name__ in text and "pool" in text, text[-3000:]
        return
    ids = await boss.send_many(QUEUE, [{"sleep": 3 * LEASE, "use_db": True} for _ in range(10)])
    await wait_until(
        lambda: db.all_completed(ids), timeout=3 * LEASE + 2 * SLACK, what="all 10 jobs"
    )
    assert await db.scalar("SELECT max(retry_count) FROM {s}.job") == 0, "a job was rescued"
    assert len(await db.effects()) == 10
    assert proc.alive()
