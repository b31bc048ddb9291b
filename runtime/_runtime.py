"""What a Boss runs once it has workers: their pool, the result writer, the listener and
maintenance. Created on the first ``Worker.start()`` and stopped by ``Boss.stop()``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._completions import CompletionWriter
from ._kept import KeptConnection
from ._listener import Listener
from ._signal import Signal
from .maintenance import Maintenance

if TYPE_CHECKING:
    from .client import Boss
    from .jobs import JobId

__all__ = ["WorkerRuntime"]

log = logging.getLogger("queues.worker")

AsyncConn = psycopg.AsyncConnection[Any]


class WorkerRuntime:
    def __init__(self, boss: Boss, conninfo: str, connect_kwargs: dict[str, Any]) -> None:
        self._boss = boss
        self.q = boss._q
        self.pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=boss.worker_pool_size,
            kwargs=connect_kwargs,
            open=False,
            name=f"queues-worker-{boss.schema}",
            timeout=10.0,
        )
        self._kept_claim = KeptConnection(conninfo, connect_kwargs)
        self.writer = CompletionWriter(
            self.pool, self.q, lease=boss.lease, heartbeat_interval=boss.heartbeat_interval
        )
        self.writer.on_lost = self._lease_lost
        self._wakers: dict[str, set[Signal]] = {}
        self.listener: Listener | None = None
        if boss.listen:
            listen_kwargs = dict(connect_kwargs)
            if "application_name" in listen_kwargs:
                listen_kwargs["application_name"] = "queues-listener"
            self.listener = Listener(
                conninfo, self.q.channel, listen_kwargs, self._on_notify, self._wake_all
            )
        self.maintenance: Maintenance | None = None
        if boss.maintenance:
            self.maintenance = Maintenance(
                self.pool,
                self.q,
                interval=boss.maintenance_interval,
                batch=boss.retention_batch,
                on_queues=boss._queues.load,
            )

    async def start(self, timeout: float) -> None:  # noqa: ASYNC109
        await self.pool.open(wait=True, timeout=timeout)
        self.writer.start()
        if self.listener is not None:
            self.listener.start()
        if self.maintenance is not None:
            self.maintenance.start()

    async def stop(self) -> None:
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.listener is not None:
            await self.listener.stop()
        await self.writer.stop()
        await self._kept_claim.close()
        await self.pool.close()

    # -- wake-ups ----------------------------------------------------------------------------

    def subscribe(self, queue: str, waker: Signal) -> None:
        self._wakers.setdefault(queue, set()).add(waker)

    def unsubscribe(self, queue: str, waker: Signal) -> None:
        wakers = self._wakers.get(queue)
        if wakers is not None:
            wakers.discard(waker)
            if not wakers:
                del self._wakers[queue]

    def _on_notify(self, queue: str) -> None:
        for waker in self._wakers.get(queue, ()):
            waker.set()

    def _wake_all(self) -> None:
        for wakers in self._wakers.values():
            for waker in wakers:
                waker.set()

    def _lease_lost(self, job_id: JobId) -> None:
        for worker in self._boss._workers:
            worker._lease_lost(job_id)

    # -- claims ------------------------------------------------------------------------------

    async def claim(self, queue: str, limit: int) -> list[tuple[Any, ...]]:
        kept = self._kept_claim
        cursor = await kept.take(self.pool)
        try:
            await cursor.execute(
                self.q["claim_work"],
                {"queue": queue, "limit": limit, "lease": self._boss.lease},
                prepare=True,
            )
            return await cursor.fetchall()
        finally:
            await kept.done(self.pool, cursor)

    async def hand_back(self, items: list[tuple[JobId, int]]) -> int:
        """Put active jobs back in their queue, due now, without using up an attempt."""
        items.sort()
        params = {"ids": [job_id for job_id, _ in items], "fences": [f for _, f in items]}
        for attempt in range(3):
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(self.q["hand_back"], params, prepare=False)
                    row = await cur.fetchone()
                    return int(row[0]) if row else 0
            except psycopg.Error as exc:
                if attempt == 2:
                    log.error(
                        "could not hand back %d jobs (%s); they return after their lease",
                        len(items),
                        exc,
                    )
                    return 0
                await asyncio.sleep(0.1 * (attempt + 1))
        return 0
