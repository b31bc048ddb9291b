"""Every failed attempt's error is kept with its job, bounded; so is the ``Failed:`` log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from typed_queues.runtime import JobContext, JobId, JobState, process_job
from typed_queues.runtime.logging_setup import JsonFormatter, TextFormatter

from .ops_support import DEAD, WORK, fast_boss, make_queues, wait_until

HUGE = 5_000_000  # characters in the message of the exception that tests the bounds


async def test_three_failed_attempts_are_all_kept(dsn: str, schema_name: str) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss, retry_limit=2)
        job_id = await boss.send(WORK, {"event": "charge", "payload": {}, "metadata": {}})

        def charge(job: JobContext) -> None:  # a sync handler: its traceback crosses a thread
            raise ValueError(f"card declined on attempt {job.attempt}")

        worker = boss.worker(WORK, charge)
        await worker.start()

        async def failed() -> bool:
            job = await boss.get_job(job_id)
            return job is not None and job.state is JobState.FAILED

        await wait_until(failed)
        await worker.stop()
        job = await boss.get_job(job_id)
        assert job is not None

    assert [error.attempt for error in job.errors] == [1, 2, 3]
    for number, error in enumerate(job.errors, start=1):
        assert error.type == "ValueError"
        assert error.message == f"card declined on attempt {number}"
        assert error.traceback is not None
        assert "raise ValueError" in error.traceback
        assert error.traceback.rstrip().endswith(f"card declined on attempt {number}")
        assert (error.worker_host, error.worker_pid) == (socket.gethostname(), os.getpid())
        assert error.at is not None
    times = [error.at for error in job.errors if error.at is not None]
    assert times == sorted(times)
    # the last attempt made the dead-letter copy, which links back to the job
    assert [error.dead_letter_id for error in job.errors[:2]] == [None, None]
    assert job.errors[2].dead_letter_id == job.dead_letter_id is not None
    async with fast_boss(dsn, schema_name) as boss:
        copy = await boss.get_job(job.dead_letter_id)
    assert copy is not None
    assert copy.queue == DEAD
    assert copy.dead_letter_of == job.id
    assert copy.data == job.data


async def test_the_history_keeps_the_last_20_attempts_each_bounded(
    dsn: str, schema_name: str
) -> None:
    async with fast_boss(dsn, schema_name) as boss:
        await make_queues(boss, retry_limit=30)
        job_id = await boss.send(WORK, {"n": 1})
        for attempt in range(1, 26):
            [job] = await boss.fetch(WORK)
            assert job.id == job_id
            message = "x" * HUGE if attempt == 25 else f"failure {attempt}"
            assert await boss.fail(job, RuntimeError(message))
        stored = await boss.get_job(job_id)

    assert stored is not None
    assert stored.state is JobState.RETRY
    assert [error.attempt for error in stored.errors] == list(range(6, 26))
    assert [error.message for error in stored.errors[:-1]] == [f"failure {n}" for n in range(6, 25)]
    last = stored.errors[-1]
    assert len(last.message) <= 2000
    assert last.message.startswith("xxxx")
    assert "characters cut" in last.message
    assert last.traceback is not None
    assert len(last.traceback) <= 4000
    assert "RuntimeError" in last.traceback


@pytest.fixture
def job_log() -> Iterator[dict[str, io.StringIO]]:
    """The job logger's records, as the text, JSON and standard formatters write them."""
    streams = {"text": io.StringIO(), "json": io.StringIO(), "plain": io.StringIO()}
    formatters: dict[str, logging.Formatter] = {
        "text": TextFormatter(),
        "json": JsonFormatter(),
        "plain": logging.Formatter("%(levelname)s %(message)s"),
    }
    logger = logging.getLogger("queues.jobs")
    handlers = []
    for name, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatters[name])
        logger.addHandler(handler)
        handlers.append(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield streams
    finally:
        logger.setLevel(level)
        for handler in handlers:
            logger.removeHandler(handler)


def test_the_failed_log_line_is_bounded(job_log: dict[str, io.StringIO]) -> None:
    ctx = JobContext(JobId(uuid.uuid4()), WORK, {"event": "charge", "payload": {}})

    async def huge() -> None:
        raise ValueError("y" * HUGE)

    with pytest.raises(ValueError):
        asyncio.run(process_job(ctx, huge))

    for name, stream in job_log.items():
        text = stream.getvalue()
        assert "Failed: charge" in text, name
        assert len(text) < 20_000, (name, len(text))
        assert "characters cut" in text, name
        assert "raise ValueError" in text, name  # the traceback's frames are still there
    record = json.loads(job_log["json"].getvalue().splitlines()[-1])
    assert record["error"].startswith("ValueError: yyy")
    assert len(record["error"]) < 2100
    assert len(record["exception"]) <= 8000


def test_a_small_failure_logs_as_before(job_log: dict[str, io.StringIO]) -> None:
    ctx = JobContext(JobId(uuid.uuid4()), WORK, {"event": "charge", "payload": {}})

    async def small() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        asyncio.run(process_job(ctx, small, label="Charge", entity_id="inv-1"))
    line = job_log["plain"].getvalue().splitlines()
    assert any(
        text.startswith("ERROR Failed: Charge | ID: inv-1 after ")
        and text.endswith("ms: KeyError: 'missing'")
        for text in line
    )
    assert "Traceback (most recent call last):" in job_log["plain"].getvalue()
