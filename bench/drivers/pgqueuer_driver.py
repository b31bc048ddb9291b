"""pgqueuer driver: runs under pgqueuer's own virtualenv (asyncpg, its recommended driver).

Sends go through an asyncpg pool of 10 connections (as the other systems' pools); the worker is
one `PgQueuer` on its own connection. pgqueuer deletes a job when it completes and writes a row
to its log table, so "done" counts successful log rows.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver, AsyncpgPoolDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import POOL_SIZE, QUEUE, Handler, Spec, main


class PgqueuerSystem:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.pool: asyncpg.Pool | None = None
        self.queries: Queries | None = None
        self.worker: PgQueuer | None = None
        self.worker_conn: asyncpg.Connection | None = None
        self.worker_task: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        self.pool = await asyncpg.create_pool(self.spec.dsn, min_size=1, max_size=POOL_SIZE)
        self.queries = Queries(AsyncpgPoolDriver(self.pool))
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(42)")
            try:
                if not await self.queries.schema_is_installed():
                    await self.queries.install()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(42)")

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def _q(self) -> Queries:
        assert self.queries is not None
        return self.queries

    async def _scalar(self, sql: str, *args: object) -> int:
        assert self.pool is not None
        return int(await self.pool.fetchval(sql, *args))

    async def send(self, i: int) -> object:
        (job_id,) = await self._q().enqueue(QUEUE, json.dumps({"i": i}).encode(), 0)
        return job_id

    async def send_batch(self, items: Sequence[int]) -> Sequence[object]:
        payloads: list[bytes | None] = [json.dumps({"i": i}).encode() for i in items]
        return await self._q().enqueue([QUEUE] * len(payloads), payloads, [0] * len(payloads))

    async def count_queued(self) -> int:
        return await self._scalar(
            "SELECT count(*) FROM pgqueuer WHERE entrypoint = $1 AND status = 'queued'", QUEUE
        )

    async def count_done(self) -> int:
        return await self._scalar(
            "SELECT count(DISTINCT job_id) FROM pgqueuer_log"
            " WHERE entrypoint = $1 AND status = 'successful'",
            QUEUE,
        )

    async def start_worker(self, concurrency: int, handler: Handler) -> None:
        # At most `concurrency` handlers at once: pgqueuer enforces max_concurrent_tasks in its
        # dequeue query and wants it at least twice the batch size; half of it measured fastest.
        extra: dict[str, Any] = self.spec.extra or {}
        batch_size = int(extra.get("batch_size", max(1, concurrency // 2)))
        self.worker_conn = await asyncpg.connect(self.spec.dsn)
        self.worker = PgQueuer(AsyncpgDriver(self.worker_conn))

        @self.worker.entrypoint(QUEUE)
        async def bench(job: Job) -> None:
            assert job.payload is not None
            handler(json.loads(job.payload)["i"])

        self.worker_task = asyncio.create_task(
            self.worker.run(batch_size=batch_size, max_concurrent_tasks=concurrency)
        )

    async def stop_worker(self) -> None:
        assert self.worker is not None and self.worker_task is not None
        self.worker.shutdown.set()
        await self.worker_task
        if self.worker_conn is not None:
            await self.worker_conn.close()

    async def cleanup(self) -> int:
        # Finished jobs leave the queue table at once; the log rows are folded into statistics.
        await self._q().aggregate_logs()
        return await self._scalar("SELECT count(*) FROM pgqueuer_log") + await self._scalar(
            "SELECT count(*) FROM pgqueuer WHERE status <> 'queued' AND entrypoint = $1", QUEUE
        )

    def version(self) -> dict[str, Any]:
        return {"version": version("pgqueuer"), "asyncpg": version("asyncpg")}


if __name__ == "__main__":
    main(PgqueuerSystem)
