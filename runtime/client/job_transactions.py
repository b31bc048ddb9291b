"""Transactional handlers: ``job.transaction()`` and ``job.sync_transaction()``.

A handler's transaction runs on a connection of the Boss's pool (the one handlers and senders
use; the workers' own pool stays free for claims and results). When the block ends without an
error, the job's completion is written in the same transaction, fenced by the run's claim: if
the lease was lost meanwhile, the completion matches no row, the transaction rolls back and the
block raises ``LeaseLostError``. While the completion is written the worker stops heartbeating
the job (a heartbeat waiting on the row would otherwise report the lease lost once the
completion commits); once committed, the worker forgets the job and writes nothing for it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Final, Protocol

from psycopg_pool import ConnectionPool

from ..db import AsyncConn, Store, SyncConn, SyncStore
from ..db.connect import connection_kwargs
from ..errors import LeaseLostError
from ..jobs import JobContext, JobId
from .connections import ClientConnections

__all__ = ["HandlerTransactions", "TransactionHooks"]

#: Connections of the pool that sync handlers' transactions use (opened on first use).
SYNC_POOL_SIZE: Final = 10


class TransactionHooks(Protocol):
    """What the worker running a job does around its completing transaction (thread-safe:
    a sync handler calls them from its own thread)."""

    def hold(self, job_id: JobId) -> None:
        """The completion is about to be written: stop heartbeating the job."""

    def release(self, job_id: JobId) -> None:
        """The transaction did not commit: the job is the worker's again."""

    def committed(self, job_id: JobId) -> None:
        """The completion committed: forget the job, write nothing more for it."""


def _lost(job: JobContext) -> LeaseLostError:
    return LeaseLostError(
        f"job {job.id}: the worker lost its lease (the job was rescued, cancelled or claimed "
        "again), so this transaction was rolled back and nothing in it was committed"
    )


class HandlerTransactions:
    """The transactions of one Boss's transactional handlers."""

    def __init__(self, store: Store, connections: ClientConnections) -> None:
        self._store = store
        self._sync_store = SyncStore(store.schema, prepare=False)
        self._connections = connections
        self._sync_pool: ConnectionPool[SyncConn] | None = None
        self._lock = threading.Lock()

    def for_worker(self, hooks: TransactionHooks) -> WorkerTransactions:
        """What the ``JobContext``s of one worker's jobs open their transactions with."""
        return WorkerTransactions(self, hooks)

    @asynccontextmanager
    async def run(self, job: JobContext, hooks: TransactionHooks) -> AsyncIterator[AsyncConn]:
        async with self._connections.pool().connection() as conn:
            try:
                async with conn.transaction():
                    yield conn
                    hooks.hold(job.id)
                    if not await self._store.job_complete_one(conn, job.id, None, job.fence):
                        raise _lost(job)
            except BaseException:
                hooks.release(job.id)
                raise
        job.mark_completed()
        hooks.committed(job.id)

    @contextmanager
    def run_sync(self, job: JobContext, hooks: TransactionHooks) -> Iterator[SyncConn]:
        with self._pool().connection() as conn:
            try:
                with conn.transaction():
                    yield conn
                    hooks.hold(job.id)
                    if not self._sync_store.job_complete_one(conn, job.id, None, job.fence):
                        raise _lost(job)
            except BaseException:
                hooks.release(job.id)
                raise
        job.mark_completed()
        hooks.committed(job.id)

    def _pool(self) -> ConnectionPool[SyncConn]:
        with self._lock:
            if self._sync_pool is None:
                dsn = self._connections.dsn
                if dsn is None:
                    self._connections.pool()  # raises: the Boss is not started
                    raise AssertionError("unreachable")
                self._sync_pool = ConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=SYNC_POOL_SIZE,
                    kwargs=connection_kwargs(dsn, "queues-handlers"),
                    open=True,
                    name=f"queues-handlers-{self._store.schema}",
                )
            return self._sync_pool

    def close(self) -> None:
        """Close the sync handlers' pool, if it was opened."""
        with self._lock:
            pool, self._sync_pool = self._sync_pool, None
        if pool is not None:
            pool.close()


class WorkerTransactions:
    """``JobTransactions`` of one worker's jobs (see ``JobContext.transaction``)."""

    __slots__ = ("_hooks", "_owner")

    def __init__(self, owner: HandlerTransactions, hooks: TransactionHooks) -> None:
        self._owner = owner
        self._hooks = hooks

    def transaction(self, job: JobContext) -> AbstractAsyncContextManager[AsyncConn]:
        return self._owner.run(job, self._hooks)

    def sync_transaction(self, job: JobContext) -> AbstractContextManager[SyncConn]:
        return self._owner.run_sync(job, self._hooks)
