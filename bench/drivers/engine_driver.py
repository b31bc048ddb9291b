"""This project's engine: `runtime.Boss` and a bare `runtime.Worker`, with plain dicts.

Sends are `Boss.send` / `Boss.send_many` of `{"i": n}` dicts (a pool of 10, the default);
processing is a `Worker` with an async no-op processor, one call per job (no `process_job`
logging wrapper, no payload model). The "queues" column drives the generated SDK instead
(queues_driver.py); this one shows what the typed layer costs. Retention is the worker's own
maintenance pass, run with the queue's retention set to zero.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg

from typed_queues.runtime import Boss, JobContext, QueueSpec, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import POOL_SIZE, QUEUE, Handler, Spec, main

SCHEMA = "queues"


class EngineSystem:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.boss = Boss(spec.dsn, schema=SCHEMA, max_pool_size=POOL_SIZE)
        self.worker: Worker | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def setup(self) -> None:
        await self.boss.start()
        await self.boss.create_queue(QueueSpec(QUEUE))
        self.conn = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)

    async def close(self) -> None:
        await self.boss.stop()
        if self.conn is not None:
            await self.conn.close()

    async def send(self, i: int) -> object:
        return await self.boss.send(QUEUE, {"i": i})

    async def send_batch(self, items: Sequence[int]) -> Sequence[object]:
        return await self.boss.send_many(QUEUE, ({"i": i} for i in items))

    async def _count(self, states: str) -> int:
        assert self.conn is not None
        cur = await self.conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.job WHERE queue = %s AND state IN ({states})",  # noqa: S608
            (QUEUE,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def count_queued(self) -> int:
        return await self._count("'created', 'retry'")

    async def count_done(self) -> int:
        return await self._count("'completed'")

    async def start_worker(self, concurrency: int, handler: Handler) -> None:
        async def processor(ctx: JobContext) -> None:
            handler(ctx.data["i"])

        self.worker = Worker(self.boss, QUEUE, processor, concurrency=concurrency)
        await self.worker.start()

    async def stop_worker(self) -> None:
        assert self.worker is not None
        await self.worker.stop()

    async def cleanup(self) -> int:
        # Retention zero, then the maintenance a worker runs when it starts deletes the
        # finished jobs (in batches, under its advisory lock).
        await self.boss.create_queue(QueueSpec(QUEUE, retention=timedelta(0)))
        await self.start_worker(1, lambda i: None)
        deadline = time.monotonic() + 60
        left = await self._count("'completed', 'cancelled', 'failed'")
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            left = await self._count("'completed', 'cancelled', 'failed'")
        await self.stop_worker()
        return left

    def version(self) -> dict[str, Any]:
        return {"version": describe(), "psycopg": version("psycopg")}


def describe() -> str:
    """The package version plus the commit it was measured at (read-only git call)."""
    base = version("typed-queues")
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parents[2]), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return base
    return f"{base} ({out.stdout.strip()})"


if __name__ == "__main__":
    main(EngineSystem)
