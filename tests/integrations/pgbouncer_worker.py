"""One worker process of the PgBouncer test, run as a script:

    python pgbouncer_worker.py POOLED_DSN DIRECT_DSN SCHEMA

Every statement goes through the pooler (``Boss(pgbouncer=True)``); notifications come from
the direct DSN (polling when it is ``-``). A job whose data says ``fail_first`` fails its first
attempt (a retry through the pooler); one that says ``follow`` sends a job to
``bouncer.follow`` from its handler; every handler heartbeats once. Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

from typed_queues.runtime import Boss, JobContext

QUEUE = "bouncer.jobs"
FOLLOW = "bouncer.follow"


async def main(pooled: str, direct: str, schema: str) -> int:
    boss = Boss(
        pooled,
        schema=schema,
        pgbouncer=True,
        listen_dsn=None if direct == "-" else direct,
        poll_interval=timedelta(milliseconds=200),
        maintenance_interval=timedelta(seconds=1),
        max_pool_size=3,
        worker_pool_size=3,
    )
    await boss.start(migrate=False)

    async def handle(job: JobContext) -> None:
        await job.heartbeat()
        if job.payload.get("fail_first") and job.attempt == 1:
            raise RuntimeError("the first attempt fails on purpose")
        if job.payload.get("follow"):
            await boss.send(FOLLOW, {"after": str(job.id)})

    async def follow(job: JobContext) -> None:
        await job.heartbeat()

    workers = [
        boss.worker(QUEUE, handle, concurrency=4),
        boss.worker(FOLLOW, follow, concurrency=2),
    ]
    for worker in workers:
        await worker.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await boss.stop(timeout=10)
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # The planned failures' log lines (with tracebacks) would hide what the test looks for:
    # the runtime's own warnings and errors.
    logging.getLogger("queues.jobs").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
