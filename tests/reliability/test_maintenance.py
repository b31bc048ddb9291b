"""Faults 16, 17 and 20: a long-open transaction, retention under load, and the process that
runs maintenance killed or paused."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

from ._harness import (
    FAST_BOSS,
    MAINTENANCE,
    QUEUE,
    SLACK,
    Db,
    Procs,
    WorkerProcess,
    queue_config,
    wait_until,
)

PROBE = "rel.probe"
#: Shortest time the transaction of fault 16 stays open (it also spans the whole 50k run).
HOLD = 60.0
#: How long the database lets a maintenance transaction sit idle (runtime/db/sql/queries/jobs.sql).
IDLE_IN_TRANSACTION_TIMEOUT = 15.0


async def _dead_tuples(db: Db) -> int:
    await db.conn.execute("SELECT pg_stat_force_next_flush()")
    value = await db.scalar(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'job'",
        (db.schema,),
    )
    return int(value or 0)


async def _vacuum(db: Db) -> None:
    await db.execute("VACUUM {s}.job")


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_fault16_transaction_held_open_during_50k_jobs(
    procs: Procs, db: Db, boss: Boss, dsn: str
) -> None:
    """A transaction held open (a REPEATABLE READ snapshot, pinning every dead row) while 50k
    jobs are processed: no job gets stuck and notifications keep flowing (probe jobs to a
    worker that polls only every 60 s start within 2 s). Afterwards cleanup (VACUUM: autovacuum
    in production; the runtime keeps no long transaction of its own) brings the dead tuples
    back down. The hold lasts 60 s or as long as the 50k jobs take, whichever is longer, rather
    than 10 minutes: what matters is that it spans the whole run (and many maintenance rounds),
    and a longer hold only adds more of the same dead rows."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    await boss.create_queue(QueueSpec(name=PROBE))
    total = 50_000
    ids: list[Any] = []
    for _ in range(total // 10_000):
        ids += await boss.send_many(QUEUE, [{} for _ in range(10_000)])

    async with await psycopg.AsyncConnection.connect(dsn) as holder:
        await holder.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        cur = await holder.execute(db.q("SELECT count(*) FROM {s}.job"))
        assert await cur.fetchone() == (total,)  # the snapshot is taken and held from here

        probe_options = {**FAST_BOSS, "poll_interval": 60.0}
        await procs.start("probe", queues=[queue_config(PROBE, concurrency=2)], boss=probe_options)
        for i in range(2):
            await procs.start(
                f"w{i}",
                queues=[queue_config(concurrency=25)],
                boss=FAST_BOSS,
                recorder="batched",
                record_start=False,
            )

        probes = 0
        held_since = time.monotonic()
        while (
            time.monotonic() - held_since < HOLD
            or (await db.count_states()).get("completed", 0) < total
        ):
            probe = await boss.send(PROBE, {})
            await wait_until(
                lambda: db.all_completed([probe]),  # noqa: B023
                timeout=2.0,
                what="a probe job while the transaction is held open",
            )
            probes += 1
            await asyncio.sleep(1.0)
        await wait_until(lambda: db.all_completed(ids), timeout=SLACK, what="all 50k jobs")
        assert probes >= 5
        assert "active" not in await db.count_states()

        await _vacuum(db)
        pinned = await _dead_tuples(db)
        assert pinned >= total, f"only {pinned} dead rows while the snapshot was held"
        await holder.rollback()

    await _vacuum(db)
    after = await _dead_tuples(db)
    assert after < pinned // 10, f"{after} dead rows left of {pinned} after cleanup"


async def _record_deletes(db: Db) -> None:
    """Record how many job rows each DELETE statement removed."""
    await db.execute("CREATE TABLE {s}.rel_deletes (n bigint, at timestamptz DEFAULT now())")
    await db.execute(
        "CREATE FUNCTION {s}.rel_count_deletes() RETURNS trigger LANGUAGE plpgsql AS $f$"
        " BEGIN INSERT INTO {s}.rel_deletes (n) SELECT count(*) FROM gone; RETURN NULL; END $f$"
    )
    await db.execute(
        "CREATE TRIGGER rel_count_deletes AFTER DELETE ON {s}.job REFERENCING OLD TABLE AS gone"
        " FOR EACH STATEMENT EXECUTE FUNCTION {s}.rel_count_deletes()"
    )


@pytest.mark.slow
async def test_fault17_retention_bounds_finished_rows_under_load(
    procs: Procs, db: Db, boss: Boss
) -> None:
    """Retention under steady load (about 100 jobs/s for 20 s, retention 5 s, maintenance
    every 0.25 s): the finished rows stay within rate x retention x 1.2."""
    retention = 5.0
    await boss.create_queue(QueueSpec(name=QUEUE, retention=timedelta(seconds=retention)))
    options = {**FAST_BOSS, "maintenance_interval": 0.25}
    await procs.start("w", queues=[queue_config(concurrency=20)], boss=options, recorder="batched")
    sent = 0
    started = time.monotonic()
    peak = 0.0
    samples = 0
    while time.monotonic() - started < 20.0:
        await boss.send_many(QUEUE, [{} for _ in range(25)])
        sent += 25
        await asyncio.sleep(0.25)
        elapsed = time.monotonic() - started
        if elapsed > retention + 2.0:
            finished = await db.scalar(
                "SELECT count(*) FROM {s}.job WHERE state > 'active' AND queue = %s", (QUEUE,)
            )
            rate = sent / elapsed
            peak = max(peak, finished / (rate * retention))
            samples += 1
    assert samples >= 20
    assert peak <= 1.2, f"finished rows reached {peak:.2f} x rate x retention"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_fault17_cleanup_in_bounded_batches_survives_statement_timeout(
    procs: Procs, db: Db, boss: Boss
) -> None:
    """Cleanup deletes in bounded batches (retention_batch=500 over 3000 expired rows: no
    DELETE removes more than 500) and survives a statement timeout: the first DELETE is held
    up past maintenance's own 15 s statement timeout, is cancelled, and the next rounds still
    delete everything; the process and its rescues carry on."""
    await boss.create_queue(QueueSpec(name=QUEUE, retention=timedelta(seconds=1)))
    await db.execute(
        "INSERT INTO {s}.job (queue, state, data, started_on, completed_on)"
        " SELECT %s, 'completed', '{{}}', now() - interval '1 hour', now() - interval '1 hour'"
        " FROM generate_series(1, 3000)",
        (QUEUE,),
    )
    await _record_deletes(db)
    await db.execute("CREATE SEQUENCE {s}.rel_slow_seq")
    await db.conn.execute(
        sql.SQL(
            "CREATE FUNCTION {s}.rel_slow_delete() RETURNS trigger LANGUAGE plpgsql AS $f$"
            " BEGIN IF nextval({seq}) = 1 THEN PERFORM pg_sleep(20); END IF;"
            " RETURN NULL; END $f$"
        ).format(s=sql.Identifier(db.schema), seq=sql.Literal(f'"{db.schema}".rel_slow_seq'))
    )
    await db.execute(
        "CREATE TRIGGER rel_slow_delete BEFORE DELETE ON {s}.job"
        " FOR EACH STATEMENT EXECUTE FUNCTION {s}.rel_slow_delete()"
    )
    options = {**FAST_BOSS, "maintenance_interval": 0.5, "retention_batch": 500}
    worker = await procs.start("w", queues=[queue_config()], boss=options)

    async def cleaned() -> bool:
        return not await db.scalar("SELECT count(*) FROM {s}.job")

    await wait_until(cleaned, timeout=15 + 5 + SLACK + 10, what="the expired rows deleted")
    assert "statement timeout" in worker.stderr()
    sizes = [row[0] for row in await db.rows("SELECT n FROM {s}.rel_deletes")]
    assert sum(sizes) == 3000
    assert max(sizes) <= 500 and len(sizes) >= 6, sizes

    job_id = await boss.send(QUEUE, {})
    await wait_until(lambda: db.all_completed([job_id]), timeout=SLACK, what="a later job")
    assert worker.alive()


async def _plant_expired_job(db: Db) -> str:
    """An active job of a queue nobody works on, whose lease ran out a second ago."""
    job_id = await db.scalar(
        "INSERT INTO {s}.job (queue, state, data, started_on, lease_until, fence)"
        " VALUES (%s, 'active', '{{}}', now(), now() - interval '1 second', 1) RETURNING id",
        (QUEUE,),
    )
    return str(job_id)


async def _hold_rescues_of(db: Db, apps: list[str]) -> None:
    """Rescue writes by these processes wait (inside the database) until ``_release``."""
    await db.execute("CREATE TABLE IF NOT EXISTS {s}.rel_release (n int)")
    await db.execute("DELETE FROM {s}.rel_release")
    await db.execute("DROP TRIGGER IF EXISTS rel_hold_rescue ON {s}.job")
    await db.conn.execute(
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {s}.rel_hold_rescue() RETURNS trigger"
            " LANGUAGE plpgsql AS $f$ BEGIN"
            " IF current_setting('application_name') = ANY ({apps}) THEN"
            "  WHILE NOT EXISTS (SELECT 1 FROM {s}.rel_release) LOOP"
            "   PERFORM pg_sleep(0.02);"
            "  END LOOP;"
            " END IF; RETURN NEW; END $f$"
        ).format(s=sql.Identifier(db.schema), apps=sql.Literal(apps))
    )
    await db.execute(
        "CREATE TRIGGER rel_hold_rescue BEFORE UPDATE ON {s}.job FOR EACH ROW"
        " WHEN (OLD.state = 'active' AND NEW.state <> 'active')"
        " EXECUTE FUNCTION {s}.rel_hold_rescue()"
    )


async def _release(db: Db) -> None:
    await db.execute("INSERT INTO {s}.rel_release VALUES (1)")


async def _held_app(db: Db) -> str | None:
    """The application name of the backend waiting in ``rel_hold_rescue``, if any."""
    value = await db.scalar(
        "SELECT application_name FROM pg_stat_activity"
        " WHERE wait_event = 'PgSleep' AND application_name LIKE 'rel-%%'"
        " AND query ILIKE %s",
        (f'%"{db.schema}".%',),
    )
    return None if value is None else str(value)


async def _retry_count(db: Db, job_id: str) -> int:
    return (await db.jobs([job_id]))[job_id].retry_count


@pytest.mark.slow
async def test_fault20_maintenance_holder_killed_or_paused(
    procs: Procs, db: Db, boss: Boss
) -> None:
    """SIGKILL the process in the middle of a maintenance round: another takes over within one
    interval (plus the time the killed process's last statement still runs). SIGSTOP the next
    one in the middle of its round: the database ends its idle transaction (15 s), another
    takes over, and when the paused one is resumed it writes nothing (its rescue is not
    applied twice)."""
    retry = RetryPolicy(limit=5, delay=timedelta(hours=1), jitter=False)
    await boss.create_queue(QueueSpec(name=QUEUE, retry=retry))
    await boss.create_queue(QueueSpec(name="rel.other"))

    async def start(name: str) -> WorkerProcess:
        return await procs.start(name, queues=[queue_config("rel.other")], boss=FAST_BOSS)

    first = await start("a")
    await _hold_rescues_of(db, ["rel-a"])
    job1 = await _plant_expired_job(db)
    await wait_until(lambda: _held_app(db), timeout=SLACK, what="process a inside maintenance")
    others = [await start("b"), await start("c")]

    first.kill()
    killed = time.monotonic()
    await _release(db)  # the killed process's statement ends; its transaction cannot commit

    async def rescued(job_id: str) -> bool:
        return await _retry_count(db, job_id) == 1

    await wait_until(
        lambda: rescued(job1), timeout=MAINTENANCE + SLACK, what="another process to take over"
    )
    assert time.monotonic() - killed <= MAINTENANCE + SLACK

    await _hold_rescues_of(db, ["rel-b", "rel-c"])
    job2 = await _plant_expired_job(db)
    held = await wait_until(lambda: _held_app(db), timeout=SLACK, what="b or c in maintenance")
    [paused] = [p for p in others if f"rel-{p.name}" == held]
    [other] = [p for p in others if p is not paused]
    paused.signal(signal.SIGSTOP)
    await _release(db)  # its rescue is written but not committed: the process is paused

    await wait_until(
        lambda: rescued(job2),
        timeout=IDLE_IN_TRANSACTION_TIMEOUT + MAINTENANCE + SLACK,
        what="the live process to take over from the paused one",
    )
    before = (await db.jobs([job2]))[job2]
    paused.signal(signal.SIGCONT)
    await asyncio.sleep(2 * MAINTENANCE + 1)
    after = (await db.jobs([job2]))[job2]
    assert after == before, "the resumed process wrote its stale maintenance round"
    assert paused.alive() and other.alive()
    await db.execute("DROP TRIGGER rel_hold_rescue ON {s}.job")

    job3 = await _plant_expired_job(db)
    await wait_until(lambda: rescued(job3), timeout=MAINTENANCE + SLACK, what="maintenance")
