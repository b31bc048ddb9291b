"""Reading and finishing jobs by id, outside workers: fetch, complete, fail, cancel, resume,
retry, get, and queue statistics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import psycopg

from ..db import AsyncConn, FetchedJob, Store
from ..db.encoding import encode_output_strict, error_document
from ..db.identifiers import validate_queue_name
from ..errors import QueuesError, UnknownQueueError, ValidationError
from ..jobs import Job, JobId, JobState, QueueStats
from .connections import ClientConnections
from .queue_cache import QueueCache

__all__ = ["JobControl"]

T = TypeVar("T")


class JobControl:
    def __init__(
        self, store: Store, connections: ClientConnections, queues: QueueCache, lease: timedelta
    ) -> None:
        self._store = store
        self._connections = connections
        self._queues = queues
        self._lease = lease

    async def _on(self, conn: AsyncConn | None, action: Callable[[AsyncConn], Awaitable[T]]) -> T:
        if conn is not None:
            return await action(conn)
        async with self._connections.pool().connection() as pooled:
            return await action(pooled)

    async def fetch(self, queue: str, batch_size: int = 1) -> list[Job]:
        info = await self._queues.info(queue)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an int >= 1, got {batch_size!r}")
        lease = max(self._lease, info.expire_in)
        async with self._connections.pool().connection() as conn:
            rows = await self._store.job_fetch(conn, queue, batch_size, lease)
        return [fetched_job(row, queue, info.retry_limit) for row in rows]

    async def complete(self, job: JobId | Job, output: Any, conn: AsyncConn | None) -> bool:
        job_id, fence = _target(job)
        encoded = encode_output_strict(output)
        return bool(
            await self._on(conn, lambda c: self._store.job_complete_one(c, job_id, encoded, fence))
        )

    async def fail(
        self, job: JobId | Job, error: str | BaseException, conn: AsyncConn | None
    ) -> bool:
        job_id, fence = _target(job)
        document = error_document(error)
        failed = await self._on(
            conn, lambda c: self._store.job_fail_many(c, [job_id], [fence], [document], [False])
        )
        return bool(failed)

    async def change(self, name: str, job_id: JobId, conn: AsyncConn | None) -> bool:
        """``cancel``, ``resume`` or ``retry`` one job."""
        try:
            return bool(await self._on(conn, lambda c: self._store.job_change(c, name, job_id)))
        except psycopg.errors.UniqueViolation:
            raise QueuesError(
                f"cannot {name} job {job_id}: another queued or active job of its queue has "
                "the same singleton key; cancel or finish that one first"
            ) from None

    async def get(self, job_id: JobId) -> Job | None:
        return await self._connections.with_retry(lambda c: self._store.job_get(c, job_id))

    async def stats(self, queue: str | None) -> list[QueueStats]:
        if queue is not None:
            validate_queue_name(queue)
        found = await self._connections.with_retry(lambda c: self._store.queue_stats(c, queue))
        if queue is not None and not found:
            raise UnknownQueueError(queue, self._store.schema)
        return found


def _target(job: JobId | Job) -> tuple[JobId, int | None]:
    """A job's id, and its claim's fence when given the ``Job`` that ``fetch`` returned (so a
    job re-claimed since, after its lease ran out, is not finished by a stale caller)."""
    if isinstance(job, Job):
        return job.id, job.fence
    return job, None


def fetched_job(row: FetchedJob, queue: str, retry_limit: int) -> Job:
    """The ``Job`` that ``fetch`` returns for one claimed row."""
    return Job(
        id=row.id,
        queue=queue,
        state=JobState.ACTIVE,
        data=row.data,
        priority=row.priority,
        retry_count=row.retry_count,
        retry_limit=retry_limit,
        start_after=row.start_after,
        created_on=row.created_on,
        started_on=row.started_on,
        completed_on=None,
        output=None,
        singleton_key=row.singleton_key,
        fence=row.fence,
        lease_until=row.lease_until,
    )
