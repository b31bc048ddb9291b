"""One soak worker process: ``python -m tests.chaos.worker_proc NAME DSN RECORD_FILE PPID``.

It runs an async ``Worker`` on ``chaos.main`` and a sync handler in threads (``Boss.worker``)
on ``chaos.strict``, through the runtime's public API, and records every handler run in its
history file: a ``start`` line (worker, pid, job id, queue, attempt, fence) before the work and
an ``end`` line (``ok``, ``error``, ``perm`` or ``cancelled``) after it. The job's data says
what the run does: ``ms`` milliseconds of work, then an error on attempts up to ``fail``, or a
permanent error on the first attempt when ``perm``. The output of a successful run names the
run (worker, pid, fence, attempt), so the checker can tell which run's result was written.
Prints READY once its workers run; SIGTERM stops them gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from typed_queues.runtime import Boss, JobContext, PermanentJobError, Worker, start_workers

from . import config
from .history import Recorder
from .lifeline import die_with_parent

START_DEADLINE_S = 90.0
STOP_TIMEOUT_S = 5.0


def _outcome(data: dict[str, Any], attempt: int) -> str:
    """What a run of this job does after its work: ``ok``, ``perm`` or ``error``."""
    if data.get("perm") and attempt == 1:
        return "perm"
    if attempt <= int(data.get("fail", 0)):
        return "error"
    return "ok"


def _finish(outcome: str, ctx: JobContext, name: str, pid: int) -> dict[str, Any]:
    if outcome == "perm":
        raise PermanentJobError("permanent failure on purpose")
    if outcome == "error":
        raise RuntimeError(f"failure on purpose (attempt {ctx.attempt})")
    return {"w": name, "pid": pid, "f": ctx.fence, "a": ctx.attempt}


def make_handler(name: str, recorder: Recorder) -> Callable[[JobContext], Awaitable[object]]:
    """The async handler (``Worker``): cancelled at an ``await`` when its lease is lost."""
    pid = os.getpid()

    async def handler(ctx: JobContext) -> object:
        job, attempt, fence = str(ctx.id), ctx.attempt, ctx.fence
        recorder.write("start", w=name, pid=pid, id=job, q=ctx.queue, a=attempt, f=fence)
        outcome = "cancelled"
        try:
            await asyncio.sleep(float(ctx.data.get("ms", 0)) / 1000.0)
            outcome = _outcome(ctx.data, attempt)
        finally:
            recorder.write("end", w=name, pid=pid, id=job, a=attempt, f=fence, out=outcome)
        return _finish(outcome, ctx, name, pid)

    return handler


def make_sync_handler(name: str, recorder: Recorder) -> Callable[[JobContext], object]:
    """The sync handler (``Boss.worker``, run in a thread): it cannot be interrupted, so a run
    whose lease was lost goes on to its end, and its result is ignored."""
    pid = os.getpid()

    def handler(ctx: JobContext) -> object:
        job, attempt, fence = str(ctx.id), ctx.attempt, ctx.fence
        recorder.write("start", w=name, pid=pid, id=job, q=ctx.queue, a=attempt, f=fence)
        outcome = "cancelled"
        try:
            time.sleep(float(ctx.data.get("ms", 0)) / 1000.0)
            outcome = _outcome(ctx.data, attempt)
        finally:
            recorder.write("end", w=name, pid=pid, id=job, a=attempt, f=fence, out=outcome)
        return _finish(outcome, ctx, name, pid)

    return handler


async def start(name: str, dsn: str, recorder: Recorder) -> Boss:
    """Start the Boss and the workers, retrying (bounded) while the database is unreachable."""
    deadline = time.monotonic() + START_DEADLINE_S
    handler = make_handler(name, recorder)
    sync_handler = make_sync_handler(name, recorder)
    while True:
        boss = config.make_boss(dsn)
        try:
            await boss.start(migrate=False)
            workers = [
                Worker(
                    boss,
                    config.MAIN,
                    handler,
                    concurrency=config.CONCURRENCY,
                    label=f"{name}:main",
                    shutdown_grace=STOP_TIMEOUT_S,
                ),
                boss.worker(
                    config.STRICT,
                    sync_handler,
                    concurrency=config.CONCURRENCY,
                    label=f"{name}:strict",
                    shutdown_grace=STOP_TIMEOUT_S,
                ),
            ]
            await start_workers(*workers)
            return boss
        except Exception as exc:
            logging.warning("worker %s: start failed (%r); retrying", name, exc)
            await asyncio.wait_for(boss.stop(timeout=0), 30)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def run(name: str, dsn: str, recorder: Recorder) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    boss = await start(name, dsn, recorder)
    print("READY", flush=True)
    await stopping.wait()
    await asyncio.wait_for(boss.stop(timeout=STOP_TIMEOUT_S), 60)
    print("STOPPED", flush=True)
    return 0


def main(argv: list[str]) -> int:
    name, dsn, record_file, parent = argv
    die_with_parent(int(parent))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    recorder = Recorder(Path(record_file))
    try:
        return asyncio.run(run(name, dsn, recorder))
    finally:
        recorder.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
