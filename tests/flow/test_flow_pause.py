"""Pausing a queue from the command line while a worker process runs it: no job starts after
one poll interval, running jobs finish, sends are kept, and resuming restarts them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable

from typed_queues.runtime import Boss, QueueSpec

from ._flow_support import ROOT, SLACK, FlowDb, FlowProc, wait_until

QUEUE = "flow.paused"
POLL = 0.5
#: Allowed past the poll interval for the last claim made before the worker read the pause
#: (a claim already under way, a loaded 2-core machine): a failure bound, not a measurement.
CLAIM_SLACK = 1.5


def _cli(dsn: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typed_queues.runtime.cli", *args, "--dsn", dsn, "--schema", schema],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _last_start(fdb: FlowDb) -> float:
    return float(
        await fdb.scalar(
            "SELECT extract(epoch FROM max(started_on))::float8 FROM {s}.job WHERE queue = %s",
            (QUEUE,),
        )
    )


async def test_pause_stops_new_starts_and_resume_restarts_them(
    dsn: str, schema_name: str, boss: Boss, fdb: FlowDb, spawn: Callable[..., FlowProc]
) -> None:
    await boss.create_queue(QueueSpec(QUEUE))
    proc = spawn("paused", QUEUE, concurrency=4, poll_interval=POLL)
    await proc.ready()
    await boss.send_many(QUEUE, [{"i": n, "sleep": 0.05} for n in range(200)])

    async def some_done() -> bool:
        return (await fdb.states(QUEUE)).get("completed", 0) >= 20

    await wait_until(some_done, timeout=30 + SLACK, what="the first jobs to complete")

    paused = await asyncio.to_thread(_cli, dsn, schema_name, "queue", "pause", QUEUE, "--json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout) == {"queue": QUEUE, "paused": True}
    paused_at = await fdb.now()
    sent_during_pause = await boss.send_many(QUEUE, [{"i": n, "during": True} for n in range(10)])

    async def nothing_running() -> bool:
        return await fdb.active(QUEUE) == 0

    await wait_until(nothing_running, timeout=POLL + CLAIM_SLACK + 5, what="running jobs to end")
    assert await _last_start(fdb) <= paused_at + POLL + CLAIM_SLACK
    states = await fdb.states(QUEUE)
    assert states.get("failed", 0) == 0 and states.get("created", 0) >= 10
    # Nothing starts for a while (three poll intervals), with jobs waiting.
    await asyncio.sleep(3 * POLL)
    assert await fdb.states(QUEUE) == states
    kept = await fdb.rows(
        "SELECT count(*) FROM {s}.job WHERE id = ANY(%s) AND state = 'created'",
        (sent_during_pause,),
    )
    assert kept[0][0] == 10

    resumed = await asyncio.to_thread(_cli, dsn, schema_name, "queue", "resume", QUEUE)
    assert resumed.returncode == 0 and f"queue {QUEUE} resumed" in resumed.stdout

    async def all_done() -> bool:
        return (await fdb.states(QUEUE)).get("completed", 0) == 210

    await wait_until(all_done, timeout=60 + SLACK, what="every job after the resume")
    await proc.stop()
    assert await fdb.states(QUEUE) == {"completed": 210}


async def test_pausing_an_unknown_queue_says_so(dsn: str, schema_name: str, boss: Boss) -> None:
    result = await asyncio.to_thread(_cli, dsn, schema_name, "queue", "pause", "no.such")
    assert result.returncode == 2
    assert 'unknown queue "no.such"' in result.stderr
