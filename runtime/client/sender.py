"""The async send path: single sends (coalesced when concurrent), and batches (one INSERT, or
COPY streamed while it is encoded for big ones)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..db import AsyncConn, AsyncCursor, Store
from ..db.identifiers import validate_queue_name
from ..errors import QueuesError
from ..jobs import JobId
from .coalescer import Coalescer
from .connections import ClientConnections
from .flow_requests import (
    FlowBatch,
    batch_flow_options,
    flow_options,
    with_batch_flow,
    with_flow,
)
from .queue_cache import QueueCache
from .requests import (
    Batch,
    EncodedMany,
    Row,
    make_row,
    rows_params,
    split_for_copy,
    unwrap_many,
)

__all__ = ["SINGLETON_TRIES", "Sender", "singleton_conflict"]

#: Tries of a singleton send whose existing job finishes between the insert and the lookup
#: (the sync client uses the same number).
SINGLETON_TRIES = 5


def singleton_conflict(row: Row) -> QueuesError:
    return QueuesError(
        f'could not send to queue "{row.queue}" with singleton key {row.singleton_key!r}: '
        "the existing job kept changing state; try again"
    )


class Sender:
    def __init__(
        self,
        store: Store,
        connections: ClientConnections,
        queues: QueueCache,
        *,
        max_payload: int,
        copy_threshold: int,
        batch_size: int,
        concurrency: int,
    ) -> None:
        self._store = store
        self._connections = connections
        self._queues = queues
        self._max_payload = max_payload
        self._copy_threshold = copy_threshold
        self._coalescer = Coalescer(
            self._write_rows, max_batch=batch_size, max_inflight=concurrency
        )

    async def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
        group_key: str | None = None,
        throttle: timedelta | None = None,
        debounce: timedelta | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> JobId:
        self._connections.pool()
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        row = make_row(queue, data, self._max_payload, start_after, priority, singleton_key)
        flow = flow_options(
            group_key=group_key,
            throttle=throttle,
            debounce=debounce,
            retry_limit=retry_limit,
            expire_in=expire_in,
            singleton_key=singleton_key,
            start_after=start_after,
        )
        if flow is not None:
            row = with_flow(row, flow)
        if not known:  # checked after the arguments: bad input fails before any SQL
            await self._queues.info(queue)
        if conn is None and row.singleton_key is None and flow is None:
            await self._coalescer.submit(row)
            return row.id
        if conn is not None:
            return await self._insert_one(conn, row)
        return await self._connections.with_retry(lambda c: self._insert_one(c, row))

    async def _insert_one(self, conn: AsyncConn, row: Row) -> JobId:
        store = self._store
        stmt = row.insert(store.sql)
        for _ in range(SINGLETON_TRIES):
            found = await store.job_insert(conn, stmt)
            if found is not None:
                return found
            if row.singleton_key is None:  # the id is there already: an earlier try won
                return row.id
            found = await store.job_find_singleton(conn, row.queue, row.singleton_key)
            if found is not None:
                return found
        raise singleton_conflict(row)

    async def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]] | EncodedMany,
        *,
        conn: AsyncConn | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        group_key: str | None = None,
        retry_limit: int | None = None,
        expire_in: timedelta | None = None,
    ) -> list[JobId]:
        self._connections.pool()
        known = self._queues.get(queue) is not None
        if not known:
            validate_queue_name(queue)
        flow = batch_flow_options(group_key=group_key, retry_limit=retry_limit, expire_in=expire_in)
        source, encoded_event = unwrap_many(data)
        if flow is not None:  # one INSERT in send order, never COPY
            batch = Batch.of(queue, source, self._max_payload, start_after, priority, encoded_event)
            return await self._send_flow_batch(with_batch_flow(batch, flow), conn)
        items, streamed = split_for_copy(source, self._copy_threshold, conn is not None)
        batch = Batch.of(queue, items, self._max_payload, start_after, priority, encoded_event)
        if not known:
            await self._queues.info(queue)
        if streamed is not None:
            async with self._connections.pool().connection() as pooled, pooled.transaction():
                await self._copy(pooled, batch, streamed)
            return batch.ids
        if not batch.ids:
            return []
        if conn is not None and len(batch.ids) >= self._copy_threshold:
            await self._copy(conn, batch, iter(()))
        elif conn is not None:
            await self._store.job_insert_batch(conn, batch.insert(self._store.sql))
        else:
            stmt = batch.insert(self._store.sql)
            await self._connections.with_retry(lambda c: self._store.job_insert_batch(c, stmt))
        return batch.ids

    async def _copy(self, conn: AsyncConn, batch: Batch, rest: Iterator[object]) -> None:
        # event_copy: job_copy plus the subscribers' copies of the events it wrote
        await self._store.event_copy(
            conn,
            batch.queue,
            batch.start_after,
            batch.delay,
            lambda at: batch.stream_chunks(rest, self._max_payload, at),
            lambda: batch.ids,
        )

    async def _write_rows(self, rows: Sequence[Row]) -> None:
        """The coalescer's writer: one statement, on the send path's dedicated connection
        when it is free."""
        pool = self._connections.pool()
        dedicated = self._connections.dedicated()
        cursor = await dedicated.take(pool)
        try:
            await self._execute_rows(cursor, rows)
        finally:
            await dedicated.done(pool, cursor)

    async def _execute_rows(self, cursor: AsyncCursor, rows: Sequence[Row]) -> None:
        if len(rows) == 1:
            await self._store.job_insert(cursor, rows[0].insert(self._store.sql))
        else:
            await self._store.job_insert_rows(cursor, rows_params(rows))

    async def drain(self) -> None:
        """Wait until every coalesced send is written or has failed."""
        await self._coalescer.drain()

    # -- flow control --

    async def _send_flow_batch(self, batch: FlowBatch, conn: AsyncConn | None) -> list[JobId]:
        if self._queues.get(batch.queue) is None:
            await self._queues.info(batch.queue)
        if not batch.ids:
            return []
        stmt = batch.insert(self._store.sql)
        if conn is not None:
            await self._store.job_insert_batch(conn, stmt)
        else:
            await self._connections.with_retry(lambda c: self._store.job_insert_batch(c, stmt))
        return batch.ids
