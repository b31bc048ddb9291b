"""What the workers of one Boss share: their connection pool, the result writer, the claim
connection, the notification listener and maintenance. Started by the first
``Worker.start()`` (through ``Boss.attach_worker``) and stopped by ``Boss.stop()``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..db import AsyncConn, AsyncCursor, ClaimedJob, QueueRow, Store
from ..db.dedicated import DedicatedConnection
from ..db.rows import LimitedClaim
from ..jobs import JobId
from .claim_cursor import ClaimCursor
from .listener import Listener
from .maintenance import Maintenance
from .observer import WorkerObserver
from .result_writer import ResultWriter
from .scheduler import SCHEDULES_KEY, Scheduler
from .wakeup import Signal

__all__ = ["WorkerServices", "WorkerSettings"]

log = logging.getLogger("queues.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The Boss options its workers' services run with."""

    lease: timedelta
    heartbeat_interval: float
    listen: bool
    maintenance: bool
    maintenance_interval: float
    retention_batch: int
    pool_size: int
    connection_lifetime: float
    #: Where the listener connects when the pooled DSN cannot LISTEN (a transaction pooler).
    listen_dsn: str | None = None
    #: Run a scheduler (fires the stored schedules' slots; see ``scheduler.py``).
    schedules: bool = True


class WorkerServices:
    def __init__(
        self,
        store: Store,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        settings: WorkerSettings,
        *,
        on_queues: Callable[[Iterable[QueueRow]], None],
    ) -> None:
        self._store = store
        self._lease = settings.lease
        self.pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.pool_size,
            kwargs=connect_kwargs,
            max_lifetime=settings.connection_lifetime,
            open=False,
            name=f"queues-worker-{store.schema}",
            timeout=10.0,
        )
        self._claims = DedicatedConnection(conninfo, connect_kwargs, settings.connection_lifetime)
        self.writer = ResultWriter(
            self.pool, store, lease=settings.lease, heartbeat_interval=settings.heartbeat_interval
        )
        self._wakers: dict[str, set[Signal]] = {}
        self.listener: Listener | None = None
        if settings.listen:
            listen_kwargs = dict(connect_kwargs)
            if "application_name" in listen_kwargs:
                listen_kwargs["application_name"] = "queues-listener"
            self.listener = Listener(
                store,
                settings.listen_dsn or conninfo,
                listen_kwargs,
                self._on_notify,
                self._wake_all,
            )
        self.maintenance: Maintenance | None = None
        if settings.maintenance:
            self.maintenance = Maintenance(
                store,
                self.pool,
                interval=settings.maintenance_interval,
                batch=settings.retention_batch,
                on_queues=on_queues,
            )
        self.scheduler = Scheduler(store, self.pool) if settings.schedules else None
        if self.scheduler is not None:  # woken when the schedules change
            self.subscribe(SCHEDULES_KEY, self.scheduler.wake)

    async def start(self, timeout: float) -> None:  # noqa: ASYNC109
        await self.pool.open(wait=True, timeout=timeout)
        self.writer.start()
        if self.listener is not None:
            self.listener.start()
        if self.maintenance is not None:
            self.maintenance.start()
        if self.scheduler is not None:
            self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.listener is not None:
            await self.listener.stop()
        await self.writer.stop()
        await self._claims.close()
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

    # -- claims ------------------------------------------------------------------------------

    async def claim(
        self, queue: str, limit: int, position: ClaimCursor | None = None
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs of ``queue``, on the claim path's own connection
        when it is free; with ``position``, from where it says (``claim_cursor``)."""
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        cursor = await self._claims.take(self.pool)
        try:
            if position is None:
                claimed = await self._store.job_claim(cursor, queue, limit, self._lease)
            else:
                claimed = await self._claim_from(cursor, queue, limit, position)
        finally:
            await self._claims.done(self.pool, cursor)
        if observer is not None:
            observer.claimed(queue, time.perf_counter() - started, len(claimed))
        return claimed

    async def _claim_from(
        self, conn: AsyncCursor, queue: str, limit: int, position: ClaimCursor
    ) -> list[ClaimedJob]:
        """A claim from the cursor, followed at once by one from the start for the rest when
        the cursor says so; the jobs from the start sort before the others."""
        store, lease = self._store, self._lease
        after = position.after(time.monotonic())
        claimed, last = await store.job_claim_after(conn, queue, limit, lease, after)
        if not position.claimed(after, limit, len(claimed), last, time.monotonic()):
            return claimed
        rest = limit - len(claimed)
        first, last = await store.job_claim_after(conn, queue, rest, lease, None)
        position.claimed(None, rest, len(first), last, time.monotonic())
        return first + claimed if claimed else first

    async def hand_back(self, items: list[tuple[JobId, int]]) -> int:
        """Put active jobs back in their queue, due now, without using up an attempt."""
        items.sort()
        ids = [job_id for job_id, _ in items]
        fences = [fence for _, fence in items]
        for attempt in range(3):
            try:
                async with self.pool.connection() as conn:
                    return await self._store.job_hand_back(conn, ids, fences)
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

    # -- observing (metrics) --

    @property
    def observer(self) -> WorkerObserver | None:
        """Told about claims, runs, result writes and rescues; None (the default) costs
        nothing."""
        return self.writer.observer

    def set_observer(self, observer: WorkerObserver | None) -> None:
        self.writer.observer = observer
        if self.maintenance is not None:
            self.maintenance.observer = observer

    # -- flow control --

    async def claim_limited(self, queue: str, limit: int) -> LimitedClaim:
        """Claim up to ``limit`` jobs of ``queue`` within its flow policy (``flow_claim``), on
        the claim path's own connection when it is free."""
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        cursor = await self._claims.take(self.pool)
        try:
            result = await self._store.job_claim_limited(cursor, queue, limit, self._lease)
        finally:
            await self._claims.done(self.pool, cursor)
        if observer is not None:
            observer.claimed(queue, time.perf_counter() - started, len(result.jobs))
        return result

    async def snooze(self, job_id: JobId, fence: int, delay: timedelta) -> tuple[bool, int] | None:
        """Put an active job back for ``delay`` without using an attempt (``Store.job_snooze``)."""
        async with self.pool.connection() as conn:
            return await self._store.job_snooze(conn, job_id, fence, delay)
