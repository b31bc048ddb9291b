"""``SyncBoss``: the synchronous send path for sync callers (Django, scripts).

It uses psycopg's sync connections and the same SQL as ``Boss``. Pass ``conn=`` (for example
Django's ``connection.connection`` inside ``transaction.atomic()``) to enqueue inside your own
transaction; otherwise a small pool is opened on first use. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ._ident import validate_queue_name
from ._migrate import migrate_sync
from ._options import connection_kwargs, positive_int
from ._queues import QueueCache, QueueInfo
from ._send import (
    Batch,
    make_row,
    split_start_after,
    validate_priority,
    validate_singleton_key,
)
from ._sql import queries_for
from .config import resolve_dsn
from .errors import ConfigurationError, QueuesError, UnknownQueueError
from .jobs import Job, JobId
from .policy import QueueSpec

__all__ = ["SyncBoss"]

SyncConn = psycopg.Connection[Any]
T = TypeVar("T")


class SyncBoss:
    """Sends jobs and reads them back without an event loop."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "queues",
        max_payload_bytes: int = 1_000_000,
        source: str | None = None,
        max_pool_size: int = 4,
        copy_threshold: int = 2000,
    ) -> None:
        self._q = queries_for(schema)
        self.schema = schema
        self.source = source
        self._dsn = dsn
        self._max_payload = positive_int("max_payload_bytes", max_payload_bytes)
        self._max_pool_size = positive_int("max_pool_size", max_pool_size)
        self._copy_threshold = positive_int("copy_threshold", copy_threshold)
        self._pool: ConnectionPool[SyncConn] | None = None
        self._lock = threading.Lock()
        self._queues = QueueCache()

    def _get_pool(self) -> ConnectionPool[SyncConn]:
        with self._lock:
            if self._pool is None:
                dsn = resolve_dsn(self._dsn)
                if dsn is None:
                    raise ConfigurationError(
                        "no database configured: pass SyncBoss(dsn=...) or set QUEUES_DSN or "
                        "DATABASE_URL (or pass conn= to each call)"
                    )
                self._pool = ConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=self._max_pool_size,
                    kwargs=connection_kwargs(dsn, "queues-sync"),
                    open=True,
                    name=f"queues-sync-{self.schema}",
                )
            return self._pool

    def _run(self, conn: SyncConn | None, action: Callable[[SyncConn], T]) -> T:
        if conn is not None:
            return action(conn)
        with self._get_pool().connection() as pooled:
            return action(pooled)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def migrate(self, *, conn: SyncConn | None = None) -> None:
        """Apply missing migrations (safe to run from many processes at once)."""
        self._run(conn, lambda c: migrate_sync(c, self._q))

    def create_queue(self, spec: QueueSpec, *, conn: SyncConn | None = None) -> None:
        """Create a queue or update its policy."""
        if not isinstance(spec, QueueSpec):
            raise TypeError(f"create_queue takes a QueueSpec, got {spec!r}")
        self._run(conn, lambda c: c.execute(self._q["create_queue"], spec.to_params()))
        self._queues.put(QueueInfo.from_spec(spec))

    def _check_queue(self, queue: str, conn: SyncConn | None) -> None:
        if self._queues.get(queue) is not None:
            return
        self._run(conn, lambda c: self._queues.refresh_sync(c, self._q))
        if self._queues.get(queue) is None:
            raise UnknownQueueError(queue, self.schema)

    def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: SyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
    ) -> JobId:
        """Enqueue one job; with ``conn`` it joins that connection's transaction."""
        validate_queue_name(queue)
        at, delay = split_start_after(start_after)
        row = make_row(queue, data, self._max_payload, at, delay, validate_priority(priority))
        params = {
            "id": row.id,
            "queue": queue,
            "data": row.data,
            "priority": row.priority,
            "start_after": at,
            "delay": delay,
            "singleton_key": validate_singleton_key(singleton_key),
        }
        self._check_queue(queue, conn)  # after the arguments: bad input fails before any SQL
        return self._run(conn, lambda c: self._insert_one(c, params))

    def _insert_one(self, conn: SyncConn, params: dict[str, Any]) -> JobId:
        for _ in range(5):
            found = conn.execute(self._q["send_one"], params, prepare=True).fetchone()
            if found is not None:
                return JobId(found[0])
            if params["singleton_key"] is None:
                return JobId(params["id"])
            found = conn.execute(self._q["find_singleton"], params, prepare=True).fetchone()
            if found is not None:
                return JobId(found[0])
        raise QueuesError(
            f'could not send to queue "{params["queue"]}" with singleton key '
            f"{params['singleton_key']!r}: the existing job kept changing state; try again"
        )

    def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]],
        *,
        conn: SyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
    ) -> list[JobId]:
        """Enqueue many jobs in one statement (COPY for big batches); all or nothing."""
        validate_queue_name(queue)
        batch = Batch.of(queue, data, self._max_payload, start_after, priority)
        self._check_queue(queue, conn)
        if not batch.ids:
            return []
        if len(batch.ids) >= self._copy_threshold:
            if conn is not None:
                self._copy_batch(conn, batch)
            else:
                with self._get_pool().connection() as pooled, pooled.transaction():
                    self._copy_batch(pooled, batch)
        else:
            self._run(
                conn, lambda c: c.execute(self._q["send_batch"], batch.params(), prepare=True)
            )
        return batch.ids

    def _copy_batch(self, conn: SyncConn, batch: Batch) -> None:
        at = batch.start_after
        if batch.delay is not None:
            found = conn.execute(self._q["db_time"], {"delay": batch.delay}).fetchone()
            at = found[0] if found else None
        query = self._q["copy_jobs"] if at is None else self._q["copy_jobs_at"]
        with conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in batch.copy_chunks(at):
                copy.write(chunk)
        conn.execute(self._q["notify"], {"queue": batch.queue})

    def get_job(self, job_id: JobId, *, conn: SyncConn | None = None) -> Job | None:
        """The job with this id, or None."""

        def read(c: SyncConn) -> Job | None:
            with c.cursor(row_factory=dict_row) as cur:
                row = cur.execute(self._q["get_job"], {"id": job_id}).fetchone()
            return None if row is None else Job.from_row(row)

        return self._run(conn, read)
