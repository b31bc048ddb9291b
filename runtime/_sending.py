"""The part of ``Boss`` that sends jobs: single, coalesced, batch (unnest or COPY)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from datetime import datetime, timedelta
from itertools import chain, islice
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._ident import validate_queue_name
from ._kept import KeptConnection
from ._queues import QueueCache, QueueInfo
from ._send import (
    Batch,
    Coalescer,
    Row,
    make_row,
    rows_params,
    split_start_after,
    validate_priority,
    validate_singleton_key,
)
from ._sql import Queries
from .errors import QueuesError
from .jobs import JobId

__all__ = ["SendOps"]

log = logging.getLogger("queues")
T = TypeVar("T")

AsyncConn = psycopg.AsyncConnection[Any]
AsyncCursor = psycopg.AsyncCursor[Any]


class SendOps:
    """Mixed into ``Boss``; relies on its pool, queries, queue cache and coalescer."""

    _q: Queries
    _prepare: bool
    _max_payload: int
    _copy_threshold: int
    _queues: QueueCache
    _sender: Coalescer
    _kept_send: KeptConnection | None

    def _pool_or_fail(self) -> AsyncConnectionPool[AsyncConn]:
        raise NotImplementedError

    async def _queue_info(self, queue: str) -> QueueInfo:
        raise NotImplementedError

    # -- sending -----------------------------------------------------------------------------

    async def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
    ) -> JobId:
        """Enqueue one job; with ``conn`` it joins that connection's transaction."""
        self._pool_or_fail()
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        at, delay = split_start_after(start_after)
        row = make_row(queue, data, self._max_payload, at, delay, validate_priority(priority))
        key = validate_singleton_key(singleton_key)
        if not known:  # checked after the arguments: bad input fails before any SQL
            await self._queue_info(queue)
        if conn is None and key is None:
            await self._sender.submit(row)
            return row.id
        params = {
            "id": row.id,
            "queue": queue,
            "data": row.data,
            "priority": row.priority,
            "start_after": at,
            "delay": delay,
            "singleton_key": key,
        }
        if conn is not None:
            return await self._insert_one(conn, params)
        return await self._with_retry(lambda c: self._insert_one(c, params))

    async def _insert_one(self, conn: AsyncConn, params: dict[str, Any]) -> JobId:
        for _ in range(5):
            cur = await conn.execute(self._q["send_one"], params, prepare=self._prepare)
            row = await cur.fetchone()
            if row is not None:
                return JobId(row[0])
            if params["singleton_key"] is None:  # the id is there already: an earlier try won
                return JobId(params["id"])
            cur = await conn.execute(self._q["find_singleton"], params, prepare=self._prepare)
            row = await cur.fetchone()
            if row is not None:
                return JobId(row[0])
        raise QueuesError(
            f'could not send to queue "{params["queue"]}" with singleton key '
            f"{params['singleton_key']!r}: the existing job kept changing state; try again"
        )

    async def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]],
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
    ) -> list[JobId]:
        """Enqueue many jobs in one statement (COPY for big batches); all or nothing."""
        self._pool_or_fail()
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        threshold = self._copy_threshold
        items: Iterable[object] = data
        streamed: Iterator[object] | None = None
        if conn is None:
            # In a transaction of our own a big batch (``copy_threshold`` items or more)
            # streams: its items are encoded while the COPY runs, and a bad one rolls it back.
            # In the caller's transaction every item is checked before any SQL runs instead:
            # a bad item must not leave that transaction aborted.
            rest = iter(data)
            if isinstance(data, Sized) and len(data) >= threshold:
                items, streamed = (), rest
            else:
                items = list(islice(rest, threshold))
                if len(items) >= threshold:
                    items, streamed = (), chain(items, rest)
        batch = Batch.of(queue, items, self._max_payload, start_after, priority)
        if not known:
            await self._queue_info(queue)
        if streamed is not None:
            async with self._pool_or_fail().connection() as pooled, pooled.transaction():
                await self._copy_batch(pooled, batch, streamed)
            return batch.ids
        if not batch.ids:
            return []
        if conn is not None and len(batch.ids) >= threshold:
            await self._copy_batch(conn, batch, iter(()))
        elif conn is not None:
            await conn.execute(self._q["send_batch"], batch.params(), prepare=self._prepare)
        else:
            await self._with_retry(
                lambda c: c.execute(self._q["send_batch"], batch.params(), prepare=self._prepare)
            )
        return batch.ids

    async def _copy_batch(self, conn: AsyncConn, batch: Batch, rest: Iterator[object]) -> None:
        at = batch.start_after
        if batch.delay is not None:
            cur = await conn.execute(self._q["db_time"], {"delay": batch.delay})
            found = await cur.fetchone()
            at = found[0] if found else None
        query = self._q["copy_jobs"] if at is None else self._q["copy_jobs_at"]
        async with conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in batch.stream_chunks(rest, self._max_payload, at):
                await copy.write(chunk)
        if batch.ids:
            await conn.execute(self._q["notify"], {"queue": batch.queue})

    async def _write_rows(self, rows: Sequence[Row]) -> None:
        """The coalescer's writer: one statement, on the send path's own connection when it
        is free (see ``KeptConnection``)."""
        pool = self._pool_or_fail()
        kept = self._kept_send
        assert kept is not None  # (made with the pool)
        cursor = await kept.take(pool)
        try:
            await self._execute_rows(cursor, rows)
        finally:
            await kept.done(pool, cursor)

    async def _execute_rows(self, cursor: AsyncCursor, rows: Sequence[Row]) -> None:
        if len(rows) == 1:
            row = rows[0]
            params = {
                "id": row.id,
                "queue": row.queue,
                "data": row.data,
                "priority": row.priority,
                "start_after": row.start_after,
                "delay": row.delay,
                "singleton_key": None,
            }
            await cursor.execute(self._q["send_one"], params, prepare=self._prepare)
        else:
            await cursor.execute(self._q["send_rows"], rows_params(rows), prepare=self._prepare)

    async def _with_retry(self, action: Callable[[AsyncConn], Awaitable[T]]) -> T:
        """Run ``action`` on a pooled connection, retrying when the connection is lost.

        Used only for idempotent writes (sends with ids made here).
        """
        pool = self._pool_or_fail()
        for attempt in range(3):
            try:
                async with pool.connection() as conn:
                    return await action(conn)
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise
                log.warning("database write failed (%s); retrying", exc)
                await asyncio.sleep(0.05 * 4**attempt)
        raise AssertionError("unreachable")
