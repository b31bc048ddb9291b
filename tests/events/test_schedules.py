"""Schedules: each slot gives exactly one job, however many processes run; slots follow the
time zone's daylight-saving rules; missed slots are handled per ``catch_up``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, Schedule, ValidationError

ROOT = Path(__file__).resolve().parents[2]
TICKS = QueueSpec(name="tick.q")
IDLE = QueueSpec(name="idle.q")
PARIS = "Europe/Paris"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- slots (pure, fixed clocks) -------------------------------------------------------------


def test_a_daily_cron_across_both_paris_transitions() -> None:
    daily = Schedule("d", "tick.q", cron="30 2 * * *", timezone=PARIS)
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist, the slot fires at the
    # jump (03:00 CEST = 01:00 UTC). The days around it run at 02:30 local time.
    spring = daily.slots(utc(2026, 3, 27, 12), utc(2026, 3, 30, 12), 10)
    assert spring == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice, the slot fires once
    # (the first time, CEST).
    autumn = daily.slots(utc(2026, 10, 23, 12), utc(2026, 10, 26, 12), 10)
    assert autumn == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # the same answers step by step and backwards
    assert daily.next_slot(utc(2026, 3, 28, 1, 30)) == utc(2026, 3, 29, 1, 0)
    assert daily.latest_slot(utc(2026, 3, 29, 0, 59)) == utc(2026, 3, 28, 1, 30)
    assert daily.latest_slot(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 1, 0)
    assert daily.latest_slot(utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)


def test_an_hourly_cron_counts_real_hours_on_transition_days() -> None:
    hourly = Schedule("h", "tick.q", cron="0 * * * *", timezone=PARIS)
    # local days: 23 hours in March, 25 in October
    assert len(hourly.slots(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 100)) == 23
    assert len(hourly.slots(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 100)) == 25


def test_every_counts_from_the_epoch() -> None:
    every = Schedule("e", "tick.q", every=timedelta(seconds=10))
    assert every.next_slot(utc(2026, 1, 1, 0, 0, 5)) == utc(2026, 1, 1, 0, 0, 10)
    assert every.next_slot(utc(2026, 1, 1, 0, 0, 10)) == utc(2026, 1, 1, 0, 0, 20)
    assert every.latest_slot(utc(2026, 1, 1, 0, 0, 19)) == utc(2026, 1, 1, 0, 0, 10)


@pytest.mark.parametrize(
    ("catch_up", "fired", "skipped"),
    [
        ("all", [utc(2026, 1, 1, 0, m) for m in range(1, 11)], None),
        ("latest", [utc(2026, 1, 1, 0, 10)], None),
        ("none", [], utc(2026, 1, 1, 0, 10)),
    ],
)
def test_the_plan_after_downtime(
    catch_up: Any, fired: list[datetime], skipped: datetime | None
) -> None:
    minutely = Schedule("m", "tick.q", cron="* * * * *", catch_up=catch_up)
    plan = minutely.plan(utc(2026, 1, 1), utc(2026, 1, 1, 0, 10, 30), 100)
    assert list(plan.fire) == fired and plan.skip_to == skipped
    assert plan.next_at == utc(2026, 1, 1, 0, 11)
    # a slot that just fell is on time, not missed: catch_up none fires it too
    on_time = minutely.plan(utc(2026, 1, 1, 0, 9), utc(2026, 1, 1, 0, 10, 2), 100)
    assert list(on_time.fire) == [utc(2026, 1, 1, 0, 10)]


def test_bad_schedules_are_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="invalid cron expression"):
        Schedule("x", "tick.q", cron="every day")
    with pytest.raises(ValidationError, match="unknown time zone"):
        Schedule("x", "tick.q", cron="0 3 * * *", timezone="Europe/Pariss")
    with pytest.raises(ValidationError, match="one of the two"):
        Schedule("x", "tick.q", cron="0 3 * * *", every=timedelta(seconds=5))
    with pytest.raises(ValidationError, match="1 second or more"):
        Schedule("x", "tick.q", every=timedelta(milliseconds=10))
    with pytest.raises(ValidationError, match="catch_up"):
        Schedule("x", "tick.q", every=timedelta(seconds=1), catch_up="some")  # type: ignore[arg-type]


# -- in the database ------------------------------------------------------------------------


async def set_done_until(db: psycopg.AsyncConnection[Any], schema: str, at: datetime) -> None:
    """As if the schedule had been created (and last fired) at ``at``: the downtime since."""
    await db.execute(
        sql.SQL("UPDATE {}.schedule SET created_on = %s, last_slot = NULL").format(
            sql.Identifier(schema)
        ),
        (at,),
    )


@pytest.mark.parametrize(("catch_up", "jobs"), [("all", 10), ("latest", 1), ("none", 0)])
async def test_catch_up_policies_after_downtime(
    quick_boss: Boss,
    db: psycopg.AsyncConnection[Any],
    schema_name: str,
    catch_up: Any,
    jobs: int,
) -> None:
    await quick_boss.create_queues([TICKS])
    await quick_boss.schedule(
        "minutely", "tick.q", {"n": 1}, event="tick", cron="* * * * *", catch_up=catch_up
    )
    # ten minutes of downtime, an hour ago (so that every slot is due on the database clock)
    cur = await db.execute("SELECT date_trunc('minute', now()) - interval '1 hour'")
    [(start,)] = await cur.fetchall()
    await set_done_until(db, schema_name, start)
    now = start + timedelta(minutes=10, seconds=30)
    first = await quick_boss.run_schedules(now=now)
    again = await quick_boss.run_schedules(now=now)  # another process's round at the same time
    assert first.fired == jobs and again.fired == 0
    fired = await quick_boss.jobs_of("tick.q", event="tick")
    assert len(fired) == jobs
    slots = sorted(job.data["metadata"]["slot"] for job in fired)
    assert len(set(slots)) == jobs
    [info] = await quick_boss.schedules()
    assert info.last_slot == start + timedelta(minutes=10)  # fired or skipped, all are done
    assert info.next_run > info.last_slot


async def test_a_schedule_at_run_time_and_unschedule(quick_boss: Boss) -> None:
    await quick_boss.create_queues([TICKS])
    await quick_boss.schedule("daily", "tick.q", cron="0 3 * * *", timezone=PARIS)
    [info] = await quick_boss.schedules()
    assert info.schedule.rule == "cron 0 3 * * * (Europe/Paris)"
    assert info.last_slot is None and info.next_run > datetime.now(UTC)
    assert await quick_boss.unschedule("daily")
    assert not await quick_boss.unschedule("daily")
    assert await quick_boss.schedules() == []


async def test_declared_schedules_are_replaced_by_create_queues(quick_boss: Boss) -> None:
    nightly = Schedule("tick.nightly", "tick.q", cron="0 3 * * *")
    hourly = Schedule("tick.hourly", "tick.q", cron="0 * * * *")
    await quick_boss.create_queues([QueueSpec(name="tick.q", schedules=(nightly, hourly))])
    await quick_boss.schedule("adhoc", "tick.q", every=timedelta(minutes=5))
    await quick_boss.create_queues([QueueSpec(name="tick.q", schedules=(nightly,))])
    assert [info.name for info in await quick_boss.schedules()] == ["adhoc", "tick.nightly"]
    with pytest.raises(ValidationError, match="declare it in that queue"):
        QueueSpec(name="other.q", schedules=(nightly,))


async def test_one_job_per_slot_with_three_worker_processes(
    dsn: str, schema_name: str, quick_boss: Boss, db: psycopg.AsyncConnection[Any], tmp_path: Path
) -> None:
    await quick_boss.create_queues([TICKS, IDLE])
    await quick_boss.schedule(
        "every-second", "tick.q", {}, event="tick", every=timedelta(seconds=1), catch_up="all"
    )
    procs = []
    for n in range(3):
        with (tmp_path / f"p{n}.out").open("wb") as out:
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.events._schedule_proc",
                    dsn,
                    schema_name,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not all("READY" in (tmp_path / f"p{n}.out").read_text() for n in range(3)):
            assert time.monotonic() < deadline, "the worker processes did not start"
            assert all(proc.returncode is None for proc in procs)
            await asyncio.sleep(0.1)
        cur = await db.execute("SELECT clock_timestamp()")
        [(started,)] = await cur.fetchall()
        await asyncio.sleep(20)
        cur = await db.execute("SELECT clock_timestamp()")
        [(ended,)] = await cur.fetchall()
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 60)
    finally:
        for proc in procs:
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGKILL)
    fired = await quick_boss.jobs_of("tick.q")
    slots = Counter(datetime.fromisoformat(job.data["metadata"]["slot"]) for job in fired)
    assert set(slots.values()) == {1}, "a slot fired twice"
    # every slot of the 20 s is there (the last second may still have been in flight)
    first = started.replace(microsecond=0) + timedelta(seconds=1)
    expected = {first + timedelta(seconds=n) for n in range(int((ended - first).total_seconds()))}
    assert expected <= set(slots), sorted(expected - set(slots))
    lags = []
    for job in fired:
        got = await quick_boss.get_job(job.id)
        assert got is not None
        lags.append(got.created_on - datetime.fromisoformat(job.data["metadata"]["slot"]))
    lags.sort()
    median = lags[len(lags) // 2]
    print(f"{len(fired)} slots; each written after its slot by at most {lags[-1]}, median {median}")


async def test_queues_status_shows_each_schedules_next_run(
    quick_boss: Boss, dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from typed_queues.runtime.cli import main

    await quick_boss.create_queues([TICKS])
    await quick_boss.schedule("nightly", "tick.q", {"n": 1}, event="tick", cron="0 3 * * *")
    [info] = await quick_boss.schedules()
    code = await asyncio.to_thread(main, ["status", "--dsn", dsn, "--schema", schema_name])
    assert code == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("nightly")]
    assert "tick.q" in row and "cron 0 3 * * * (UTC)" in row and "latest" in row
    assert info.next_run.astimezone().strftime("%Y-%m-%d %H:%M:%S") in row
