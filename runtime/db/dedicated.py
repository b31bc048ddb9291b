"""A connection of its own, with a cursor on it, for one hot path (sends, or claims).

A send after a send, or a claim after a claim, then pays neither a pool checkout nor the
making of a cursor (bench/PROFILE.md has what that saves). It is not taken from the pool, so
it can never keep the pool's connections from handlers, heartbeats or result writes: a call
that finds it busy (calls in flight at once) uses a pooled connection instead. It is opened on
first use and again after it breaks; ``close()`` closes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

__all__ = ["DedicatedConnection"]

AsyncConn = psycopg.AsyncConnection[Any]
AsyncCursor = psycopg.AsyncCursor[Any]
AsyncPool = AsyncConnectionPool[AsyncConn]

#: Seconds to wait for the kept connection to open, as long as a pool waits for a connection.
_CONNECT_TIMEOUT = 10.0


class DedicatedConnection:
    __slots__ = ("_busy", "_closed", "_conninfo", "_cursor", "_kwargs")

    def __init__(self, conninfo: str, kwargs: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._cursor: AsyncCursor | None = None
        self._busy = False
        self._closed = False

    async def take(self, pool: AsyncPool) -> AsyncCursor:
        """The kept connection's cursor if it is free, else one on a pooled connection."""
        if self._busy or self._closed:
            conn = await pool.getconn()
            return conn.cursor()
        self._busy = True
        try:
            if self._cursor is None:
                conn = await asyncio.wait_for(
                    psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs),
                    _CONNECT_TIMEOUT,
                )
                self._cursor = conn.cursor()
        except BaseException:
            self._busy = False
            raise
        return self._cursor

    async def done(self, pool: AsyncPool, cursor: AsyncCursor) -> None:
        """The call on ``cursor`` is over, well or not."""
        if cursor is not self._cursor:
            await pool.putconn(cursor.connection)
            return
        self._busy = False
        conn = cursor.connection
        # After an error or a cancellation it is kept only if it is idle and sound.
        if self._closed or conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            self._cursor = None
            await conn.close()

    async def close(self) -> None:
        """Close it now, or, if a call is using it, when that call is done."""
        self._closed = True
        if self._cursor is not None and not self._busy:
            cursor, self._cursor = self._cursor, None
            await cursor.connection.close()
