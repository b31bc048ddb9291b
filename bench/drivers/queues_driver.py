"""This project as its users call it: the SDK `queues generate` writes from a catalogue.

The benchmark catalogue (bench/benchlib/sdk.py) has one event, `tick` with payload `{"i": n}`,
on queue `bench.ticks`; the harness generates it before the run and passes the folder in the
spec (`sdk_path`). Sends are `enqueue_tick(boss, Tick(i=n))` and
`enqueue_tick_many(boss, (Tick(i=n) for n in ...))`, the models built inside the timed part as
an application builds them; processing is the generated `ticks_worker(boss, handlers)` with an
async `on_tick(payload, job)` that does nothing else (the payload is validated with the model
and the call runs inside `process_job`, as in production). Retention is the worker's own
maintenance pass, run with the queue's retention set to zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg

from typed_queues.runtime import Boss, JobContext, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import POOL_SIZE, Handler, Spec, main
from engine_driver import describe

SCHEMA = "queues"
PACKAGE = "tq_bench_sdk"  # benchlib/sdk.py PACKAGE
QUEUE = "bench.ticks"


def load_sdk(spec: Spec) -> Any:
    """The generated package (a module object: its names are only known at run time)."""
    path = (spec.extra or {}).get("sdk_path")
    if not path:
        raise RuntimeError("the spec has no sdk_path: run this driver through bench/run.py")
    sys.path.insert(0, str(path))
    return importlib.import_module(PACKAGE)


class TickHandlers:
    """The handler class a user writes for the generated `TicksHandlers` protocol."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def on_tick(self, payload: Any, job: JobContext) -> None:
        self.handler(payload.i)


class QueuesSystem:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.sdk = load_sdk(spec)
        self.bench = self.sdk.bench
        self.boss = Boss(spec.dsn, schema=SCHEMA, max_pool_size=POOL_SIZE)
        self.worker: Worker | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def setup(self) -> None:
        await self.boss.start()
        await self.sdk.create_queues(self.boss)
        self.conn = await psycopg.AsyncConnection.connect(self.spec.dsn, autocommit=True)

    async def close(self) -> None:
        await self.boss.stop()
        if self.conn is not None:
            await self.conn.close()

    async def send(self, i: int) -> object:
        return await self.bench.enqueue_tick(self.boss, self.bench.Tick(i=i))

    async def send_batch(self, items: Sequence[int]) -> Sequence[object]:
        tick = self.bench.Tick
        result: Sequence[object] = await self.bench.enqueue_tick_many(
            self.boss, (tick(i=i) for i in items)
        )
        return result

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
        self.worker = self.bench.ticks_worker(
            self.boss, TickHandlers(handler), concurrency=concurrency
        )
        assert self.worker is not None
        await self.worker.start()

    async def stop_worker(self) -> None:
        assert self.worker is not None
        await self.worker.stop()

    async def cleanup(self) -> int:
        # Retention zero, then the maintenance a worker runs when it starts deletes the
        # finished jobs (in batches, under its advisory lock).
        await self.boss.create_queue(dataclasses.replace(self.bench.TICKS, retention=timedelta(0)))
        await self.start_worker(1, lambda i: None)
        deadline = time.monotonic() + 60
        left = await self._count("'completed', 'cancelled', 'failed'")
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            left = await self._count("'completed', 'cancelled', 'failed'")
        await self.stop_worker()
        return left

    def version(self) -> dict[str, Any]:
        return {"version": describe(), "psycopg": version("psycopg"), "sdk": PACKAGE}


if __name__ == "__main__":
    main(QueuesSystem)
