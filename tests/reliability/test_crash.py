"""Faults 1-4: workers that die, stall or stop heartbeating, and a rescuer racing a completion."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from psycopg import sql

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
    log_records,
    queue_config,
    wait_until,
)

#: Retries without a delay, so a rescued job is due at once and the bounds below are L + M + P.
NO_DELAY = RetryPolicy(limit=5, delay=timedelta(0), jitter=False)


async def _create_queue(boss: Boss, name: str = QUEUE) -> None:
    await boss.create_queue(QueueSpec(name=name, retry=NO_DELAY))


async def _started_by(db: Db, pid: int) -> set[str]:
    return {job_id for job_id, _attempt, p in await db.started() if p == pid}


async def _install_trigger(db: Db, name: str, when: str, body: str) -> None:
    """A BEFORE UPDATE row trigger on the job table; ``when`` and ``body`` are fixed test SQL."""
    await db.conn.execute(
        sql.SQL(
            "CREATE FUNCTION {s}.{fn}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
            + body
            + " RETURN NEW; END $f$"
        ).format(s=sql.Identifier(db.schema), fn=sql.Identifier(name))
    )
    await db.conn.execute(
        sql.SQL(
            "CREATE TRIGGER {t} BEFORE UPDATE ON {s}.job FOR EACH ROW WHEN ("
            + when
            + ") EXECUTE FUNCTION {s}.{fn}()"
        ).format(t=sql.Identifier(name), s=sql.Identifier(db.schema), fn=sql.Identifier(name))
    )


async def _drop_trigger(db: Db, name: str) -> None:
    await db.conn.execute(
        sql.SQL("DROP TRIGGER IF EXISTS {t} ON {s}.job").format(
            t=sql.Identifier(name), s=sql.Identifier(db.schema)
        )
    )


def _uuid_literal(job_id: Any) -> str:
    return "'" + str(uuid.UUID(str(job_id))) + "'::uuid"


@pytest.mark.slow
async def test_fault01_kill9_worker_holding_ten_jobs(procs: Procs, db: Db, boss: Boss) -> None:
    """kill -9 a worker holding 10 jobs: all 10 complete, each side effect committed once,
    within L + one maintenance interval + P (plus start-up slack); none stays active."""
    await _create_queue(boss)
    victim = await procs.start("victim", queues=[queue_config(concurrency=10)], boss=FAST_BOSS)
    ids = await boss.send_many(QUEUE, [{"sleep_first": 600} for _ in range(10)])

    async def victim_holds_all() -> bool:
        return len(await _started_by(db, victim.pid)) == 10

    await wait_until(victim_holds_all, timeout=30, what="the victim to start all 10 jobs")
    rescuer = await procs.start("rescuer", queues=[queue_config()], boss=FAST_BOSS)
    assert await db.effects() == {}

    victim.kill()
    await wait_until(
        lambda: db.all_completed(ids),
        timeout=LEASE + MAINTENANCE + POLL + SLACK,
        what="all 10 jobs of the killed worker to complete",
    )
    assert await db.effects() == {str(i): 1 for i in ids}
    assert "active" not in await db.count_states()
    rescuer.assert_no_tracebacks()


@pytest.mark.slow
async def test_fault02_stale_worker_cannot_overwrite(procs: Procs, db: Db, boss: Boss) -> None:
    """SIGSTOP a worker past its lease; another re-claims and completes its jobs; SIGCONT: the
    stale worker's complete, fail and heartbeats change nothing, it logs the lost lease, and
    the second result stands."""
    await _create_queue(boss)
    stale = await procs.start("stale", queues=[queue_config(concurrency=4)], boss=FAST_BOSS)
    to_complete = await boss.send(QUEUE, {"sleep_first": 4, "output": "pid"})
    to_fail = await boss.send(QUEUE, {"sleep_first": 4, "raise_first": "error", "output": "pid"})
    ids = [to_complete, to_fail]

    async def stale_holds_both() -> bool:
        return len(await _started_by(db, stale.pid)) == 2

    await wait_until(stale_holds_both, timeout=30, what="the first worker to start both jobs")
    stale.signal(signal.SIGSTOP)
    second = await procs.start("second", queues=[queue_config()], boss=FAST_BOSS)
    await wait_until(
        lambda: db.all_completed(ids),
        timeout=LEASE + MAINTENANCE + POLL + SLACK,
        what="the second worker to complete both re-claimed jobs",
    )
    before = await db.jobs(ids)
    for row in before.values():
        assert row.output == {"pid": second.pid}
        assert row.retry_count == 1  # the lost lease counted as one failed attempt

    stale.signal(signal.SIGCONT)

    async def stale_logged_lost_leases() -> bool:
        records = log_records(stale.stderr())
        lost = {
            str(r.get("job_id"))
            for r in records
            if "lease" in str(r.get("message", "")).lower() and r.get("level") != "DEBUG"
        }
        return {str(i) for i in ids} <= lost

    await wait_until(
        stale_logged_lost_leases, timeout=LEASE + SLACK, what="the stale worker to log lost leases"
    )
    # Let the stale worker's writes (batched completions, failures, heartbeats) reach the
    # database: two flush periods, then several heartbeat periods.
    await asyncio.sleep(2 * LEASE)
    after = await db.jobs(ids)
    assert after == before, "the stale worker changed a job it no longer held"
    assert stale.alive(), "the stale worker died instead of carrying on"


async def test_fault03_rescuer_racing_a_completion(procs: Procs, db: Db, dsn: str) -> None:
    """The rescuer races a completion, with a delay injected inside the completion's write
    (it holds the row while the rescuer reads it as expired): the job stays completed. In the
    other order (the rescuer's write delayed) the late completion is refused and the job is
    retried: never both."""
    async with Boss(dsn, schema=db.schema, lease=timedelta(seconds=1), maintenance=False) as me:
        # A fetched job is leased for its queue's expire_in (nothing heartbeats it): 1 s here.
        await me.create_queue(QueueSpec(name=QUEUE, retry=NO_DELAY, expire_in=timedelta(seconds=1)))
        await _create_queue(me, "rel.other")
        rescuer_boss = {**FAST_BOSS, "maintenance_interval": 0.2}
        await procs.start("rescuer", queues=[queue_config("rel.other")], boss=rescuer_boss)

        # (a) The completion holds the row lock for 6 s, far longer than the 1 s lease.
        slow_done = await me.send(QUEUE, {})
        control = await me.send(QUEUE, {})
        fetched = await me.fetch(QUEUE, batch_size=2)
        assert {j.id for j in fetched} == {slow_done, control}
        await _install_trigger(
            db,
            "rel_slow_complete",
            f"OLD.id = {_uuid_literal(slow_done)} AND NEW.state = 'completed'",
            "PERFORM pg_sleep(6);",
        )
        completion = asyncio.create_task(me.complete(slow_done, {"by": "test"}))

        async def control_rescued() -> bool:
            row = (await db.jobs([control]))[str(control)]
            return row.retry_count == 1

        # The control job, expired like the other, proves the rescuer ran while the
        # completion held the row.
        await wait_until(control_rescued, timeout=4.5, what="the control job's rescue")
        assert not completion.done()
        assert await completion, "the completion was refused although it began inside the lease"
        await asyncio.sleep(5 * 0.2)
        row = (await db.jobs([slow_done]))[str(slow_done)]
        assert (row.state, row.retry_count, row.output) == ("completed", 0, {"by": "test"})

        # (b) The rescuer's write is delayed 3 s while it holds the row; the completion waits.
        await me.create_queue(
            QueueSpec(name="rel.late", retry=NO_DELAY, expire_in=timedelta(seconds=1))
        )
        late = await me.send("rel.late", {})
        [job] = await me.fetch("rel.late")
        assert job.id == late
        await _install_trigger(
            db,
            "rel_slow_rescue",
            f"OLD.id = {_uuid_literal(late)} AND OLD.state = 'active' AND NEW.state <> 'active'",
            "IF current_setting('application_name') = 'rel-rescuer' THEN "
            "PERFORM pg_sleep(3); END IF;",
        )

        async def rescuer_in_its_write() -> bool:
            busy = await db.scalar(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'rel-rescuer' AND wait_event = 'PgSleep'"
            )
            return bool(busy)

        await wait_until(rescuer_in_its_write, timeout=SLACK + 1, what="the rescuer's write")
        started = time.monotonic()
        completed = await me.complete(late, {"by": "test"})
        assert time.monotonic() - started > 0.5, "the completion did not wait for the rescuer"
        row = (await db.jobs([late]))[str(late)]
        assert not completed
        assert (row.state, row.retry_count) == ("retry", 1)


@pytest.mark.slow
async def test_fault04_heartbeats_keep_a_long_job(procs: Procs, db: Db, boss: Boss) -> None:
    """A job running 5 x L with healthy heartbeats is never rescued; when only its heartbeats
    stop (the database ignores them), it is rescued within L + one maintenance interval."""
    await _create_queue(boss)
    await _create_queue(boss, "rel.other")
    await procs.start("runner", queues=[queue_config()], boss=FAST_BOSS)
    await procs.start("maintainer", queues=[queue_config("rel.other")], boss=FAST_BOSS)

    long_job = await boss.send(QUEUE, {"sleep": 5 * LEASE})
    await wait_until(
        lambda: db.all_completed([long_job]),
        timeout=5 * LEASE + SLACK,
        what="the long job to complete",
    )
    row = (await db.jobs([long_job]))[str(long_job)]
    assert (row.retry_count, row.fence) == (0, 1), "a healthy long job was rescued"
    assert await db.effects() == {str(long_job): 1}

    frozen = await boss.send(QUEUE, {"sleep_first": 600})

    async def frozen_started() -> bool:
        return any(job_id == str(frozen) for job_id, _, _ in await db.started())

    await wait_until(frozen_started, timeout=SLACK, what="the second job to start")
    # From now on the database keeps the job's lease where it is: heartbeats "succeed" but
    # extend nothing, as if only they were lost.
    await _install_trigger(
        db,
        "rel_freeze_lease",
        f"OLD.id = {_uuid_literal(frozen)} AND OLD.state = 'active' AND NEW.state = 'active'",
        "NEW.lease_until := OLD.lease_until;",
    )

    async def rescued() -> bool:
        return (await db.jobs([frozen]))[str(frozen)].retry_count >= 1

    await wait_until(
        rescued, timeout=LEASE + MAINTENANCE + SLACK, what="the job without heartbeats rescued"
    )
    await _drop_trigger(db, "rel_freeze_lease")
    await wait_until(
        lambda: db.all_completed([frozen]),
        timeout=POLL + SLACK,
        what="the rescued job to complete on its second attempt",
    )
