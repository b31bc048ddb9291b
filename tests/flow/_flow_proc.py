"""A real worker process for the flow-control tests.

Run as ``python -m tests.flow._flow_proc '<json config>'``. It starts a ``Boss`` on the
configured schema and one ``Worker`` of the configured queue whose handler logs every run in
``flow_log`` (a table of the test's schema, see ``_flow_support.create_log``) on the database's
clock: ``start`` when it begins, then ``end`` or ``fail``. The job's data drives it (keys are
optional): ``key`` and ``i`` (its group and place, copied into the log), ``sleep`` (seconds),
``fail_attempts`` (fail every attempt up to this number), ``permanent`` (fail for good).

Prints ``READY`` once the worker runs; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import psycopg_pool
from psycopg import sql


async def _run(config: dict[str, Any]) -> int:
    from typed_queues.runtime import Boss, JobContext, PermanentJobError, Worker
    from typed_queues.runtime.logging_setup import configure_logging

    configure_logging("json", level="WARNING")
    schema = config["schema"]
    boss = Boss(
        config["dsn"],
        schema=schema,
        poll_interval=timedelta(seconds=config.get("poll_interval", 0.5)),
        lease=timedelta(seconds=config.get("lease", 30)),
        maintenance_interval=timedelta(seconds=config.get("maintenance_interval", 15)),
    )
    log_pool = psycopg_pool.AsyncConnectionPool(
        config["dsn"], min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    )
    insert = sql.SQL(
        "INSERT INTO {}.flow_log (job_id, key, i, attempt, pid, what)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
    ).format(sql.Identifier(schema))
    pid = os.getpid()

    async def record(ctx: JobContext, what: str) -> None:
        data = ctx.data
        async with log_pool.connection() as conn:
            await conn.execute(
                insert, (ctx.id, data.get("key"), data.get("i"), ctx.attempt, pid, what)
            )

    async def handler(ctx: JobContext) -> None:
        data = ctx.data
        await record(ctx, "start")
        await asyncio.sleep(float(data.get("sleep", 0)))
        if ctx.attempt <= int(data.get("fail_attempts", 0)) or data.get("permanent"):
            await record(ctx, "fail")
            if data.get("permanent"):
                raise PermanentJobError("failed for good on purpose")
            raise RuntimeError(f"attempt {ctx.attempt} failed on purpose")
        await record(ctx, "end")

    await log_pool.open(wait=True)
    await boss.start()
    worker = Worker(boss, config["queue"], handler, concurrency=config.get("concurrency", 10))
    await worker.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    print("READY", flush=True)
    await stopping.wait()
    await worker.stop(timeout=5)
    await boss.stop()
    await log_pool.close()
    print("STOPPED", flush=True)
    return 0


def main() -> int:
    return asyncio.run(_run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())
