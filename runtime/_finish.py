"""The part of ``Boss`` that reads and finishes jobs by id: fetch, complete, fail, cancel, ..."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ._ident import validate_queue_name
from ._payload import encode_output_strict, error_document
from ._queues import QueueInfo
from ._sql import Queries
from .errors import QueuesError, UnknownQueueError, ValidationError
from .jobs import Job, JobId, JobState, QueueStats

__all__ = ["JobOps"]

AsyncConn = psycopg.AsyncConnection[Any]


class JobOps:
    """Mixed into ``Boss``; relies on its pool, queries and queue cache."""

    schema: str
    lease: timedelta
    _q: Queries
    _prepare: bool

    def _pool_or_fail(self) -> AsyncConnectionPool[AsyncConn]:
        raise NotImplementedError

    async def _queue_info(self, queue: str) -> QueueInfo:
        raise NotImplementedError

    async def _fetch_rows(
        self, conn: AsyncConn | None, query: bytes, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        if conn is not None:
            cur = await conn.execute(query, params, prepare=self._prepare)
            return await cur.fetchall()
        pool = self._pool_or_fail()
        pooled = await pool.getconn()
        try:
            cur = await pooled.execute(query, params, prepare=self._prepare)
            return await cur.fetchall()
        finally:
            await pool.putconn(pooled)

    async def fetch(self, queue: str, batch_size: int = 1) -> list[Job]:
        """Claim up to ``batch_size`` due jobs; finish each with ``complete`` or ``fail``.

        A fetched job is leased for the queue's ``expire_in`` (at least the Boss's lease);
        nothing heartbeats it, so one not finished by then is rescued as a failed attempt.
        """
        info = await self._queue_info(queue)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an int >= 1, got {batch_size!r}")
        lease = max(self.lease, info.expire_in)
        rows = await self._fetch_rows(
            None, self._q["claim"], {"queue": queue, "limit": batch_size, "lease": lease}
        )
        return [
            Job(
                id=JobId(row[0]),
                queue=queue,
                state=JobState.ACTIVE,
                data=row[3],
                priority=row[4],
                retry_count=row[2],
                retry_limit=info.retry_limit,
                start_after=row[5],
                created_on=row[6],
                started_on=row[7],
                completed_on=None,
                output=None,
                singleton_key=row[8],
                fence=row[1],
                lease_until=row[9],
            )
            for row in rows
        ]

    async def complete(
        self, job_id: JobId, output: Any = None, *, conn: AsyncConn | None = None
    ) -> bool:
        """Mark an active job completed with ``output``; False if it was not active."""
        params = {"id": job_id, "output": encode_output_strict(output)}
        return bool(await self._fetch_rows(conn, self._q["complete_one"], params))

    async def fail(
        self, job_id: JobId, error: str | BaseException, *, conn: AsyncConn | None = None
    ) -> bool:
        """Fail an active job's attempt: retry (with backoff) or failed plus dead letter."""
        params = {
            "ids": [job_id],
            "fences": [None],
            "errors": [error_document(error)],
            "permanent": [False],
        }
        return bool(await self._fetch_rows(conn, self._q["fail_many"], params))

    async def cancel(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Cancel a queued or active job; False if it had already finished."""
        return bool(await self._fetch_rows(conn, self._q["cancel"], {"id": job_id}))

    async def resume(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Queue a cancelled job again, due now; False if it was not cancelled."""
        return await self._requeue(conn, "resume", job_id)

    async def retry(self, job_id: JobId, *, conn: AsyncConn | None = None) -> bool:
        """Retry a failed job now; False if it was not failed."""
        return await self._requeue(conn, "retry", job_id)

    async def _requeue(self, conn: AsyncConn | None, name: str, job_id: JobId) -> bool:
        try:
            return bool(await self._fetch_rows(conn, self._q[name], {"id": job_id}))
        except psycopg.errors.UniqueViolation:
            raise QueuesError(
                f"cannot {name} job {job_id}: another queued or active job of its queue has "
                "the same singleton key; cancel or finish that one first"
            ) from None

    async def get_job(self, job_id: JobId) -> Job | None:
        """The job with this id, or None."""
        pool = self._pool_or_fail()
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(self._q["get_job"], {"id": job_id}, prepare=self._prepare)
            row = await cur.fetchone()
        return None if row is None else Job.from_row(row)

    async def queue_stats(self, queue: str) -> QueueStats:
        """Counts of one queue's jobs by state, dead-lettered count and oldest waiting age."""
        validate_queue_name(queue)
        rows = await self._fetch_rows(None, self._q["queue_stats"], {"queue": queue})
        if not rows:
            raise UnknownQueueError(queue, self.schema)
        return QueueStats(*rows[0])

    async def all_queue_stats(self) -> list[QueueStats]:
        """``queue_stats`` of every queue, by name."""
        rows = await self._fetch_rows(None, self._q["queue_stats"], {"queue": None})
        return [QueueStats(*row) for row in rows]
