"""Maintenance inside worker processes: rescue, expiry and retention, one process at a time.

Every ``maintenance_interval`` each process with workers tries ``pg_try_advisory_xact_lock``;
the one that gets it (a killed holder's lock dies with its connection) does the work:

* rescue: active jobs whose lease ran out (worker killed or partitioned) and jobs running longer
  than their queue's ``expire_in`` count as a failed attempt (retry with backoff, or failed and
  dead-lettered). It is one statement that locks with SKIP LOCKED and rechecks the state, so a
  completion racing it wins or waits, and is never undone.
* max_wait: queued jobs (created or retry) of a queue with a ``max_wait`` that have been due for
  longer than it fail at once, without retry, and are dead-lettered like any final failure
  (``WaitExpired``), in bounded batches like retention.
* activity roll-up: the figures of each minute that ended (jobs finished, the earliest due
  time of the jobs that stopped waiting) are added to ``job_minute`` for the dashboard.
* retention: finished jobs older than their queue's ``retention`` are deleted (or moved to the
  archive) in bounded batches (each its own short transaction under a statement timeout) until
  done or out of time, then archived jobs older than their queue's ``archive``. One statement
  first lists the queues that have such jobs (one index probe per queue), and only those get
  batches: a round over many queues with nothing to delete is a few statements, not a
  transaction per queue.

Every condition is evaluated on the database clock.
"""

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

from ..db import AsyncConn, QueueRow, Store
from ..db.encoding import error_document
from ..db.rows import WaitingJob
from .observer import WorkerObserver

__all__ = ["Maintenance", "MaintenanceResult"]

log = logging.getLogger("queues.maintenance")

AsyncPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

_LEASE_ERROR = error_document(
    "the worker stopped heartbeating (killed, stuck or cut off): its lease expired",
    kind="LeaseExpired",
    worker=False,  # decided by whichever process runs maintenance, not the job's worker
)
_EXPIRE_ERROR = error_document(
    "the attempt ran longer than the queue's expire_in", kind="JobExpired", worker=False
)
#: Grace past expire_in before the database expires a job (the worker's own timeout goes first).
_EXPIRE_GRACE = timedelta(seconds=1)


@dataclass(slots=True)
class MaintenanceResult:
    rescued: int = 0
    deleted: int = 0
    #: Queued jobs failed because they waited longer than their queue's max_wait.
    expired: int = 0
    #: Archived jobs deleted after their queue's archive duration (``deleted`` counts the
    #: finished jobs retention deleted or moved to the archive).
    archive_deleted: int = 0
    #: Retention and archive purge batches run (a transaction each).
    batches: int = 0


class Maintenance:
    def __init__(
        self,
        store: Store,
        pool: AsyncPool,
        *,
        interval: float,
        batch: int = 1000,
        budget: float = 10.0,
        on_queues: Callable[[Iterable[QueueRow]], None],
    ) -> None:
        self._store = store
        self._pool = pool
        self._interval = interval
        self._batch = batch
        self._budget = budget
        self._on_queues = on_queues
        self._task: asyncio.Task[None] | None = None
        #: Told about rescued jobs (metrics); None costs nothing.
        self.observer: WorkerObserver | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="queues-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                result = await self.run_once()
                if result is not None and result.expired:
                    log.info(
                        "maintenance: failed %d jobs that waited longer than their queue's "
                        "max_wait",
                        result.expired,
                    )
                if result is not None and (result.rescued or result.deleted):
                    log.info(
                        "maintenance: rescued %d jobs, deleted %d finished jobs",
                        result.rescued,
                        result.deleted,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "maintenance failed (%s: %s); next try in %.1fs",
                    type(exc).__name__,
                    exc,
                    self._interval,
                )
            await asyncio.sleep(self._interval)

    async def _rescue(self, conn: AsyncConn) -> int:
        if self.observer is None:
            return await self._store.job_rescue(
                conn, _LEASE_ERROR, _EXPIRE_ERROR, _EXPIRE_GRACE, self._batch
            )
        jobs = await self._store.job_rescue_detailed(
            conn, _LEASE_ERROR, _EXPIRE_ERROR, _EXPIRE_GRACE, self._batch
        )
        if jobs:
            self.observer.rescued(jobs)
        return len(jobs)

    async def run_once(self) -> MaintenanceResult | None:
        """One round; None when another process holds the maintenance lock."""
        result = MaintenanceResult()
        deadline = time.monotonic() + self._budget
        async with self._pool.connection() as conn:
            while True:
                async with conn.transaction():
                    if not await self._store.maintenance_lock(conn):
                        return None
                    rescued = await self._rescue(conn)
                result.rescued += rescued
                if rescued < self._batch or time.monotonic() > deadline:
                    break
            if not await self._expire_waiting(conn, result, deadline):
                return result
            if not await self._roll_minutes(conn):
                return result
            self._on_queues(await self._store.queue_list(conn))  # this process's queue cache
            for queue, archive in await self._store.queue_retention_due(conn):
                while time.monotonic() < deadline:
                    async with conn.transaction():
                        if not await self._store.maintenance_lock(conn):
                            return result
                        deleted = await self._retire(conn, queue, archive is not None)
                    result.deleted += deleted
                    result.batches += 1
                    if deleted < self._batch:
                        break
            await self._purge_archives(conn, result, deadline)
        return result

    # -- max_wait expiry --

    async def _expire_waiting(
        self, conn: psycopg.AsyncConnection[Any], result: MaintenanceResult, deadline: float
    ) -> bool:
        """Fail the jobs that waited longer than their queue's max_wait, batch by batch,
        counted in ``result``; False when the maintenance lock went to another process."""
        for queue in await self._store.queue_max_waits(conn):
            while time.monotonic() < deadline:
                async with conn.transaction():
                    if not await self._store.maintenance_lock(conn):
                        return False
                    waiting = await self._store.job_expire_waiting(
                        conn, queue.name, queue.max_wait, self._batch
                    )
                    if waiting:
                        await self._store.job_fail_many(
                            conn,
                            [job.id for job in waiting],
                            [None] * len(waiting),
                            [_wait_error(job, queue.max_wait) for job in waiting],
                            [True] * len(waiting),
                        )
                result.expired += len(waiting)
                if len(waiting) < self._batch:
                    break
        return True

    # -- dashboard activity roll-up --

    async def _roll_minutes(self, conn: AsyncConn) -> bool:
        """Add the minutes that ended since the last round to the dashboard's per-minute
        figures; False when the maintenance lock went to another process."""
        async with conn.transaction():
            if not await self._store.maintenance_lock(conn):
                return False
            await self._store.job_minute_rollup(conn)
        return True

    # -- archive --

    async def _retire(self, conn: AsyncConn, queue: str, archives: bool) -> int:
        """One batch of ``queue``'s finished jobs past retention: moved to the archive when
        the queue has one, else deleted."""
        if archives:
            return await self._store.job_archive_finished(conn, queue, self._batch)
        return await self._store.job_delete_finished(conn, queue, self._batch)

    async def _purge_archives(
        self, conn: AsyncConn, result: MaintenanceResult, deadline: float
    ) -> None:
        """Delete archived jobs older than their queue's archive duration, batch by batch, in
        the queues that have any."""
        for queue, archive in await self._store.queue_archive_purge_due(conn):
            while time.monotonic() < deadline:
                async with conn.transaction():
                    if not await self._store.maintenance_lock(conn):
                        return
                    deleted = await self._store.job_archive_purge(conn, queue, archive, self._batch)
                result.archive_deleted += deleted
                result.batches += 1
                if deleted < self._batch:
                    break


def _wait_error(job: WaitingJob, max_wait: timedelta) -> str:
    waited = timedelta(seconds=round(job.waited.total_seconds()))
    if job.retry_count == 0:
        history = "it never started"
    else:
        history = f"its {job.retry_count} earlier attempt(s) had failed"
    return error_document(
        f"the job waited {waited} to start, longer than its queue's max_wait of {max_wait} "
        f"({history}); failed without running, no retry",
        kind="WaitExpired",
        worker=False,  # no worker ever had it: maintenance decided
    )
