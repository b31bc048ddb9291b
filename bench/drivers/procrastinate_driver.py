"""procrastinate driver: runs under procrastinate's own virtualenv (psycopg 3 connector).

The app's pool holds at most 10 connections, as the other systems' pools. The worker runs with
LISTEN/NOTIFY on and `concurrency` async jobs; procrastinate fetches one job per query, so every
handler call is one job. Finished jobs stay in `procrastinate_jobs` until a retention pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from procrastinate import App, PsycopgConnector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import POOL_SIZE, QUEUE, Handler, Spec, main


class ProcrastinateSystem:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.app = App(
            connector=PsycopgConnector(conninfo=spec.dsn, min_size=1, max_size=POOL_SIZE)
        )
        self.handler: Handler = lambda i: None

        @self.app.task(name="bench", queue=QUEUE)
        async def bench(i: int) -> None:
            self.handler(i)

        self.task = bench
        self.worker_task: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        await self.app.open_async()
        async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            await conn.execute("SELECT pg_advisory_lock(42)")
            try:
                cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
                row = await cur.fetchone()
                installed = bool(row and row[0])
            finally:
                await conn.execute("SELECT pg_advisory_unlock(42)")
        if not installed:
            await self.app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def _scalar(self, sql: str, **args: object) -> int:
        rows = await self.app.connector.execute_query_all_async(sql, **args)
        return int(next(iter(rows[0].values())))

    async def send(self, i: int) -> object:
        return await self.task.defer_async(i=i)

    async def send_batch(self, items: Sequence[int]) -> Sequence[object]:
        return await self.task.batch_defer_async(*({"i": i} for i in items))

    async def count_queued(self) -> int:
        return await self._scalar(
            "SELECT count(*) AS n FROM procrastinate_jobs"
            " WHERE queue_name = %(queue)s AND status = 'todo'",
            queue=QUEUE,
        )

    async def count_done(self) -> int:
        return await self._scalar(
            "SELECT count(*) AS n FROM procrastinate_jobs"
            " WHERE queue_name = %(queue)s AND status = 'succeeded'",
            queue=QUEUE,
        )

    async def start_worker(self, concurrency: int, handler: Handler) -> None:
        self.handler = handler
        self.worker_task = asyncio.create_task(
            self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                wait=True,
                listen_notify=True,
                install_signal_handlers=False,
                delete_jobs="never",
            )
        )
        await asyncio.sleep(0)

    async def stop_worker(self) -> None:
        assert self.worker_task is not None
        self.worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker_task

    async def cleanup(self) -> int:
        await self.app.job_manager.delete_old_jobs(nb_hours=0, queue=QUEUE)
        return await self._scalar(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE status <> 'todo'"
        )

    def version(self) -> dict[str, Any]:
        return {"version": version("procrastinate"), "psycopg": version("psycopg")}


if __name__ == "__main__":
    main(ProcrastinateSystem)
