"""Sends and three worker processes through a real PgBouncer in transaction pooling mode.

A transaction pooler hands each transaction to any of its server connections, so a statement
prepared on one is unknown on the next ("prepared statement does not exist"), and LISTEN on a
pooled connection hears nothing. ``Boss(pgbouncer=True)`` prepares nothing and takes its
notifications from ``listen_dsn`` (or polls). Skipped only when the pgbouncer binary is absent.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss, JobState, QueueSpec, RetryPolicy, SyncBoss

from .pgbouncer_server import PgBouncer, find_pgbouncer
from .pgbouncer_worker import FOLLOW, QUEUE

BINARY = find_pgbouncer()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"
)
WORKER_SCRIPT = Path(__file__).with_name("pgbouncer_worker.py")


@pytest.fixture
def bouncer(dsn: str) -> Iterator[PgBouncer]:
    assert BINARY is not None
    with PgBouncer(BINARY, dsn, pool_size=3) as server:
        yield server


def test_the_pooler_really_shares_server_connections(dsn: str) -> None:
    # The harness's own check: through it, a prepared statement of one client collides with
    # another client's, as it does through any transaction pooler.
    assert BINARY is not None
    with (
        PgBouncer(BINARY, dsn, pool_size=1) as server,
        psycopg.connect(server.dsn, autocommit=True) as first,
        psycopg.connect(server.dsn, autocommit=True) as second,
    ):
        first.execute("SELECT 1", prepare=True)
        with pytest.raises(psycopg.Error, match="prepared statement"):
            second.execute("SELECT 1", prepare=True)


def _start_workers(bouncer: PgBouncer, direct: str, schema: str) -> list[subprocess.Popen[str]]:
    # Two take notifications from the direct DSN, one polls.
    listen = [direct, direct, "-"]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), bouncer.dsn, listen_dsn, schema],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for listen_dsn in listen
    ]
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", process.communicate(timeout=30)
    return processes


def _stop_workers(processes: list[subprocess.Popen[str]]) -> list[str]:
    for process in processes:
        process.terminate()
    outputs = []
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outputs.append(err)
    return outputs


def _states(dsn: str, schema: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT queue, state::text, retry_count FROM "{schema}".job'  # noqa: S608
        ).fetchall()
    return [(str(q), str(s), int(r)) for q, s, r in rows]


async def _send_everything(boss: Boss, bouncer: PgBouncer, schema: str) -> list[dict[str, Any]]:
    """Every send path through the pooler; returns the data of every job sent to QUEUE."""

    def data(n: int) -> dict[str, Any]:
        return {"n": n, "fail_first": n % 10 == 0, "follow": n % 7 == 0}

    sent = [data(n) for n in range(400)]
    # single sends, concurrent (coalesced into multi-row inserts) and with a singleton key
    await asyncio.gather(*(boss.send(QUEUE, item) for item in sent[:150]))
    await boss.send(QUEUE, sent[150], singleton_key="only-one")
    # a batch INSERT and a COPY (copy_threshold=50)
    await boss.send_many(QUEUE, sent[151:191])
    await boss.send_many(QUEUE, sent[191:331])
    # the sync client: single sends and a batch
    with SyncBoss(bouncer.dsn, schema=schema, pgbouncer=True) as sync:
        ids = [sync.send(QUEUE, item) for item in sent[331:361]]
        sync.send_many(QUEUE, sent[361:400])
        assert sync.get_job(ids[0]) is not None
    return sent


async def test_sends_and_three_worker_processes_through_pgbouncer(
    dsn: str, schema_name: str, bouncer: PgBouncer, caplog: pytest.LogCaptureFixture
) -> None:
    async with Boss(bouncer.dsn, schema=schema_name, pgbouncer=True, copy_threshold=50) as boss:
        await boss.create_queues(
            [
                QueueSpec(
                    name=QUEUE,
                    retry=RetryPolicy(
                        limit=3, delay=timedelta(milliseconds=100), backoff="fixed", jitter=False
                    ),
                ),
                QueueSpec(name=FOLLOW),
                QueueSpec(name="bouncer.manual"),
            ]
        )
        processes = _start_workers(bouncer, dsn, schema_name)
        try:
            sent = await _send_everything(boss, bouncer, schema_name)
            # the manual API through the pooler
            manual = await boss.send("bouncer.manual", {"manual": True})
            [fetched] = await boss.fetch("bouncer.manual")
            assert fetched.id == manual
            assert await boss.complete(fetched.id, {"ok": True})
            assert (await boss.get_job(manual)) is not None

            follows = sum(1 for item in sent if item["follow"])
            deadline = time.monotonic() + 180
            while True:
                states = _states(dsn, schema_name)
                done = [s for s in states if s[1] == "completed"]
                if len(done) == len(sent) + follows + 1:
                    break
                assert time.monotonic() < deadline, f"not all jobs finished: {len(done)}"
                await asyncio.sleep(0.2)
        finally:
            errors = _stop_workers(processes)

    everything = "\n".join(errors) + caplog.text
    assert "prepared statement" not in everything, everything
    assert "Traceback" not in everything, everything
    states = _states(dsn, schema_name)
    assert sorted(s[0] for s in states) == sorted(
        [QUEUE] * len(sent) + [FOLLOW] * follows + ["bouncer.manual"]
    )
    assert {s[1] for s in states} == {JobState.COMPLETED.value}
    # every job ran to completion once, plus exactly the one planned failed attempt
    retried = sorted(s[2] for s in states if s[0] == QUEUE)
    assert retried == sorted(1 if item["fail_first"] else 0 for item in sent)
