"""A worker process for the schedule tests: a Boss with one worker (so that its scheduler
runs), until SIGTERM. ``python -m tests.events._schedule_proc DSN SCHEMA``."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from typed_queues.runtime import Boss, JobContext


async def main(dsn: str, schema: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Boss(dsn, schema=schema, poll_interval=timedelta(seconds=1)) as boss:

        async def idle(job: JobContext) -> None:
            return None

        worker = boss.worker("idle.q", idle)
        await worker.start()
        print("READY", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
