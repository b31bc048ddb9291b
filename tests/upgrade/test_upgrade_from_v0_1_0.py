"""A rolling deploy from v0.1.0 (issue 16, item 5).

A schema made by the v0.1.0 release holds jobs in every state, and a v0.1.0 worker is running
(in the middle of a job) when this checkout's ``Boss.start()`` migrates the schema. Then:

* the old worker keeps working against the new schema: the job it held completes (its
  heartbeats and its fenced completion pass), and new jobs are claimed, completed, failed with
  retries and dead-lettered by it;
* an old process that starts now refuses with v0.1.0's clear message (that release reads no
  compatibility floor; later releases do, see ``runtime/db/migrations.py``);
* stopped with SIGTERM, the old worker hands its running job back, unfinished and without
  using an attempt;
* the jobs v0.1.0 left behind (queued, delayed, singleton, retry, active) run on, or are
  finished by, the new release, and the finished ones are untouched: nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, JobContext, JobId
from typed_queues.runtime.db.migrations import CODE_VERSION
from typed_queues.runtime.jobs import Job, JobState

from .old_release import SEED, START, WORKER, OldRelease, old_release

pytestmark = pytest.mark.slow

WITHIN = 60.0


@pytest.fixture(scope="module")
def release() -> OldRelease:
    return old_release()


@pytest.fixture
def old_worker_log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "old-worker.log"


async def _until(check: Callable[[], Awaitable[bool]], what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + WITHIN
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WITHIN:.0f}s\n{_tail(log)}")
        await asyncio.sleep(0.1)


def _tail(log: Path | None) -> str:
    """The end of a child's output, for a failure message (local files: read synchronously)."""
    return log.read_text(errors="replace")[-4000:] if log and log.exists() else ""


def _touch(path: Path) -> None:
    path.touch()


def _id(value: str | JobId) -> JobId:
    return JobId(UUID(str(value)))


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _job(boss: Boss, job_id: str | JobId | None) -> Job:
    assert job_id is not None
    job = await boss.get_job(_id(job_id))
    assert job is not None, f"job {job_id} is lost"
    return job


async def _version(dsn: str, schema: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        query = sql.SQL("SELECT max(version) FROM {}.version").format(sql.Identifier(schema))
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row[0])


async def test_rolling_upgrade_from_v0_1_0(
    release: OldRelease, dsn: str, schema_name: str, tmp_path: Path, old_worker_log: Path
) -> None:
    gate, records = tmp_path / "gate", tmp_path / "old-records.jsonl"
    seeded = json.loads(release.run(SEED, dsn, schema_name, str(gate), cwd=tmp_path))
    ids: dict[str, Any] = seeded["ids"]
    assert seeded["version"] == 1 and await _version(dsn, schema_name) == 1
    assert set(seeded["states"].values()) == {
        "created",
        "completed",
        "cancelled",
        "failed",
        "active",
        "retry",
    }

    old = release.spawn(WORKER, dsn, schema_name, str(records), cwd=tmp_path, log=old_worker_log)
    try:
        await _upgrade_under_a_running_old_worker(
            release, old, dsn, schema_name, tmp_path, ids, gate, records, old_worker_log
        )
    finally:
        if old.poll() is None:
            old.kill()
            old.wait(timeout=10)


async def _upgrade_under_a_running_old_worker(
    release: OldRelease,
    old: subprocess.Popen[bytes],
    dsn: str,
    schema: str,
    tmp_path: Path,
    ids: dict[str, Any],
    gate: Path,
    records: Path,
    log: Path,
) -> None:
    old_pid = old.pid

    async def old_started(job_id: str) -> bool:
        assert old.poll() is None, _tail(log)
        return any(r["event"] == "start" and r["id"] == job_id for r in _records(records))

    # The old worker is in the middle of a job while the new release migrates.
    await _until(lambda: old_started(ids["gate"]), "the old worker starts the gated job", log)
    async with Boss(dsn, schema=schema, poll_interval=0.2) as boss:
        assert await _version(dsn, schema) == CODE_VERSION
        assert old.poll() is None
        held_at_migration = await _job(boss, ids["gate"])
        assert held_at_migration.state is JobState.ACTIVE

        # 1. The old worker keeps working against the new schema: it heartbeats the job it
        # held across the migration, completes it, and claims, retries and fails new ones.
        async def heartbeat_landed() -> bool:
            job = await _job(boss, ids["gate"])
            assert job.state is JobState.ACTIVE and job.fence == held_at_migration.fence
            assert job.lease_until is not None and held_at_migration.lease_until is not None
            return job.lease_until > held_at_migration.lease_until

        await _until(heartbeat_landed, "an old heartbeat on the new schema", log)
        _touch(gate)

        async def old_done(job_id: str | JobId, state: JobState) -> bool:
            assert old.poll() is None, _tail(log)
            return (await _job(boss, job_id)).state is state

        await _until(lambda: old_done(ids["gate"], JobState.COMPLETED), "gated job done", log)
        flaky = await boss.send("work", {"fail": 1})
        doomed = await boss.send("work", {"fail": 99})
        fresh = [await boss.send("work", {"n": n}) for n in range(3)]
        for job_id in [*ids["work"], *fresh, flaky]:
            await _until(partial(old_done, job_id, JobState.COMPLETED), f"{job_id} done", log)
        await _until(lambda: old_done(doomed, JobState.FAILED), "doomed job failed", log)
        for job_id in [ids["gate"], *ids["work"], *fresh, flaky]:
            job = await _job(boss, job_id)
            assert job.output["ran_by"] == "v0.1.0" and job.output["pid"] == old_pid
        ends = [r["id"] for r in _records(records) if r["event"] == "end"]
        for job_id in [ids["gate"], *ids["work"], *fresh, flaky]:
            assert ends.count(str(job_id)) == 1, job_id
        assert (await _job(boss, flaky)).retry_count == 1
        failed = await _job(boss, doomed)
        assert failed.retry_count == 2  # three attempts, as the queue's retry limit says
        assert "planned failure of attempt 3" in failed.output["error"]["message"]
        copy = await _job(boss, failed.dead_letter_id)
        assert (copy.queue, copy.data) == ("work-dead", {"fail": 99})
        attempts = [r["attempt"] for r in _records(records) if r["id"] == str(doomed)]
        assert sorted(set(attempts)) == [1, 2, 3]

        # 2. An old process starting now refuses, saying why and what to do.
        said = release.run(START, dsn, schema, cwd=tmp_path)
        assert said.startswith("REFUSED") and "newer than this code" in said
        assert "upgrade the queues package" in said

        # 3. Stopped with SIGTERM, the old worker hands its running job back.
        held_gate = tmp_path / "held-gate"
        held = await boss.send("work", {"gate": str(held_gate)})
        await _until(lambda: old_started(str(held)), "the old worker starts the held job", log)
        old.send_signal(signal.SIGTERM)
        assert old.wait(timeout=WITHIN) == 0, _tail(log)
        assert "STOPPED" in _tail(log)
        handed_back = await _job(boss, held)
        assert (handed_back.state, handed_back.retry_count) == (JobState.CREATED, 0)

        # 4. The jobs v0.1.0 left behind: finished ones untouched, the rest run here.
        await _check_finished_jobs_untouched(boss, ids)
        assert await boss.send("later", {"kind": "dup"}, singleton_key="only-one") == _id(
            ids["singleton"]
        )
        assert await boss.complete(_id(ids["active"]), {"done": "by the new release"})
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("UPDATE {}.job SET start_after = now() WHERE id = %s").format(
                    sql.Identifier(schema)
                ),
                [ids["delayed"]],
            )
        _touch(held_gate)
        ran: dict[str, list[int]] = {}

        async def handle(job: JobContext) -> dict[str, str]:
            ran.setdefault(str(job.id), []).append(job.attempt)
            return {"ran_by": "new"}

        workers = [boss.worker(queue, handle, concurrency=4) for queue in ("later", "work")]
        for worker in workers:
            await worker.start()
        leftovers = [*ids["queued"], ids["delayed"], ids["singleton"], ids["retry"], str(held)]

        async def all_ran() -> bool:
            return all(job_id in ran for job_id in leftovers)

        await _until(all_ran, "the v0.1.0 jobs run on the new release")
        for worker in workers:
            await worker.stop()
        for job_id in leftovers:
            job = await _job(boss, job_id)
            assert (job.state, job.output) == (JobState.COMPLETED, {"ran_by": "new"})
            assert len(ran[job_id]) == 1
        assert ran[ids["retry"]] == [2]  # its second attempt: the failed one still counts
        assert (await _job(boss, ids["active"])).state is JobState.COMPLETED
        await _check_finished_jobs_untouched(boss, ids)
        stats = {s.queue: s for s in await boss.all_queue_stats()}
        assert [s.active for s in stats.values()] == [0] * len(stats)
        # Nothing lost: every job v0.1.0 made or ran is there, in a final state or queued.
        assert stats["later"].completed == 8 and stats["later"].failed == 1
        assert stats["later"].cancelled == 1
        assert stats["work"].completed == 1 + 3 + 3 + 1 + 1 and stats["work"].failed == 1
        assert stats["later-dead"].created == 1 and stats["work-dead"].created == 1


async def _check_finished_jobs_untouched(boss: Boss, ids: dict[str, Any]) -> None:
    completed = await _job(boss, ids["completed"])
    assert (completed.state, completed.output) == (JobState.COMPLETED, {"done": "by v0.1.0"})
    assert (await _job(boss, ids["cancelled"])).state is JobState.CANCELLED
    failed = await _job(boss, ids["failed"])
    assert (failed.state, failed.retry_count) == (JobState.FAILED, 1)
    assert failed.dead_letter_id == _id(ids["failed_copy"])
    copy = await _job(boss, ids["failed_copy"])
    assert (copy.queue, copy.state, copy.data) == ("later-dead", JobState.CREATED, failed.data)
    assert copy.output["source_id"] == ids["failed"]
